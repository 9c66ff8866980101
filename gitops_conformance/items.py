"""The item contract: the ONE place that says what the suite certifies.

Per Validation item of the procedure (shared/seed/implement-gitops-workflow.md): its id (also
its pytest marker), title, procedure step, and the checks it declares. Results, hints, reports,
marker registration and the audit read it from here; adding an item is one entry.

A declared check is one conformance test in `suites/test_<item>.py`, named by its test name
(parametrised tests: `name[param]`). An item passes only when every check it declares ran and
passed in this run: a deselected, skipped or unreached check leaves it `not_run` or
`incomplete`, never `pass` (fixtures.results applies the rule).

Checks are declared per engine (`--engine`): Argo CD's in `checks`, Flux's in `flux` (tests
named `test_flux_*` in the same file). A run is judged against its engine's declared checks
only, and runs only those tests. An item that declares no check for an engine is `not_run` for
it, with `flux_not_run` as the reason (never a pass).

Nothing here imports the rest of the project: every layer may read it.
"""
from __future__ import annotations

import dataclasses

# The procedure's "On failure" notes, verbatim, per step.
ON_FAILURE = {
    1: ("For pod CrashLoopBackOff, check logs with kubectl logs -n argocd -l app.kubernetes.io/name=argocd-server. "
        "For repository connection failures, verify token has repo access or SSH key added to deploy keys. "
        "For Ingress SSL issues, ensure cert-manager issued certificate successfully. For login failures, retrieve "
        "password again or reset via kubectl delete secret argocd-initial-admin-secret -n argocd and restart server."),
    2: ("For sync failures, check application events with argocd app get myapp-prod and kubectl get events -n production. "
        "For Kustomize build errors, test locally with kustomize build apps/myapp/overlays/prod. For namespace errors, "
        "verify namespace exists or enable CreateNamespace sync option. For pruning issues, check finalizers and owner "
        "references with kubectl get <resource> -o yaml."),
    3: ("For circular dependencies, use sync waves to control order. For project permission errors, verify sourceRepos "
        "and destinations match application requirements. For recursive directory issues, ensure YAML files are valid "
        "and don't conflict. For missing child apps, check root app status with argocd app get root-app."),
    4: ("For registry access errors, verify image-updater has pull credentials via secret or ServiceAccount. For "
        "write-back failures, check git-creds secret has push permissions. For no updates detected, verify tag regex "
        "matches actual tags with argocd-image-updater test ghcr.io/username/myapp. For authentication issues, check "
        "image-updater logs for detailed error messages."),
    5: ("For analysis failures, verify Prometheus accessible and query returns valid results. For traffic routing "
        "issues, check Ingress annotations and canary service endpoints. For stuck rollouts, manually promote or abort. "
        "For revision mismatch, ensure Argo CD sync policy doesn't conflict with Rollouts controller updates."),
    6: ("For self-heal not triggering, verify automated sync policy enabled and refresh interval not too long "
        "(default 3m). For notification failures, test Slack token with curl and verify bot added to channels. For "
        "ignored differences not working, check JSON pointer syntax matches resource structure. For webhook errors, "
        "check endpoint accessibility and authentication headers."),
}

# The procedure's Common Pitfalls, verbatim, by the id the audit reports them under (audit/rules.py
# adds the concrete fix it recommends); the suites quote the ones they show live.
PITFALLS = {
    "prune-disabled": ("Automatic prune disabled: Resources removed from Git remain in cluster. Enable prune: true "
                       "in sync policy."),
    "no-sync-waves": ("No sync waves: Infrastructure applications deployed after apps that depend on them. Use "
                      "argocd.argoproj.io/sync-wave annotations to control order."),
    "hpa-replicas-not-ignored": ("Ignoring HPA-managed replicas: Sync fails because HPA changed replica count. Add "
                                 "/spec/replicas to ignoreDifferences."),
    "write-back-conflict": ("Write-back conflicts: Image Updater commits conflict with manual commits. Use separate "
                            "branch or fine-grained RBAC for image updater."),
    "missing-finalizer": ("Missing finalizers: Application deletion leaves orphaned resources. Add "
                          "resources-finalizer.argocd.argoproj.io to Application metadata."),
    "rollout-without-analysis": ("No analysis templates: Rollouts promote automatically without validation. "
                                 "Implement AnalysisTemplates with metrics queries."),
    "plaintext-secret": ("Secrets in Git: Plaintext secrets committed to repository. Use Sealed Secrets or External "
                         "Secrets Operator."),
    "self-heal-no-escape": ("Self-heal too aggressive: Self-heal reverts legitimate emergency changes. Use annotations "
                            "to temporarily disable or implement approval gates."),
}


@dataclasses.dataclass(frozen=True)
class Check:
    test: str     # the conformance test performing it: suites/test_<item>.py::<test>
    proves: str   # what a pass proves, in the report's words


ENGINES = ("argocd", "flux")
NOT_YET_FOR_FLUX = "not implemented for Flux yet"


@dataclasses.dataclass(frozen=True)
class Item:
    id: str
    title: str
    step: int                       # the procedure step whose "On failure" note applies
    checks: tuple[Check, ...]       # Argo CD's declared checks
    optional: bool = False          # reported (and counted) only when it ran
    enabled_by: str | None = None   # an optional item's option (dest): without it its tests are deselected
    flux: tuple[Check, ...] = ()    # Flux's declared checks (none yet: not_run for Flux)
    flux_title: str = ""            # the title under Flux, where the Argo CD one names Argo CD
    flux_not_run: str = NOT_YET_FOR_FLUX  # why the item cannot run under Flux, while `flux` is empty

    def checks_for(self, engine: str) -> tuple[Check, ...]:
        return self.flux if engine == "flux" else self.checks

    @property
    def all_checks(self) -> tuple[Check, ...]:
        """Every engine's declared checks: the tests suites/test_<item>.py holds."""
        return self.checks + self.flux

    def title_for(self, engine: str) -> str:
        return (self.flux_title or self.title) if engine == "flux" else self.title

    def not_run_reason(self, engine: str) -> str:
        """Why the item has nothing to run for this engine ("" when it declares checks for it)."""
        if self.checks_for(engine):
            return ""
        return f"{self.flux_not_run} (no check of this item is declared for --engine {engine})"

    @property
    def on_failure(self) -> str:
        return f"Procedure step {self.step}, on failure: {ON_FAILURE[self.step]}"

    @property
    def marker(self) -> str:
        return f"{self.id}: {'optional item' if self.optional else 'Validation item'}: {self.title}"


ITEMS: tuple[Item, ...] = (
    Item("install", "Argo CD installed and reachable via UI/CLI", 1, (
        Check("test_api_answers_with_its_version", "GET /api/version answers with a version"),
        Check("test_cli_logs_in_and_lists_apps", "`argocd login` as admin and `argocd app list` work"),
        Check("test_ui_endpoint_answers", "the web UI answers with Argo CD's page"),
        Check("test_initial_admin_secret_exists", "argocd-initial-admin-secret exists, as step 1 reads it"),
        Check("test_runner_has_the_procedures_clis", "argocd, kubectl and the rollouts plugin fit the cluster"),
    ), flux_title="Flux installed: controllers Ready, CRDs served", flux=(
        Check("test_flux_controllers_are_ready", "source-, kustomize- and notification-controller answer Ready"),
        Check("test_flux_crds_are_served", "the API serves every kind of the installed controllers' CRDs"),
        Check("test_flux_check_pre_passes", "`flux check --pre` passes against the cluster"),
    )),
    Item("repo_auth", "Git repository connected with proper authentication", 1, (
        Check("test_https_token_connection_is_successful", "a repository over HTTP(S) with a token connects"),
        Check("test_ssh_deploy_key_connection_is_successful", "a repository over SSH with a deploy key connects"),
        Check("test_wrong_token_is_refused_readably", "a wrong token is refused with an authentication error"),
        Check("test_unknown_host_key_is_refused_readably", "an unknown SSH host key is refused with a host-key error"),
    ), flux=(
        Check("test_flux_https_token_source_is_ready",
              "a GitRepository over HTTPS with a token (and the server's CA) is Ready at the pushed commit"),
        Check("test_flux_ssh_deploy_key_source_is_ready",
              "a GitRepository over SSH with a deploy key and known_hosts is Ready at the pushed commit"),
        Check("test_flux_wrong_token_is_refused_readably",
              "a wrong token leaves the GitRepository Ready=False with an authentication error"),
        Check("test_flux_unknown_host_key_is_refused_readably",
              "a known_hosts without the server's key leaves it Ready=False with a host-key error"),
    )),
    Item("auto_sync", "Applications sync automatically from Git on commit", 2, (
        Check("test_declarative_app_syncs_image_tag_commit", "a commit of a new image tag ends Synced at that commit"),
        Check("test_declarative_app_syncs_replica_commit", "a commit of new replicas ends Synced at that commit"),
        Check("test_cli_created_app_syncs_commit", "an `argocd app create` app follows a commit too"),
    ), flux=(
        Check("test_flux_kustomization_applies_image_tag_commit",
              "a commit of a new image tag, announced by the Receiver webhook, is applied at that commit"),
        Check("test_flux_kustomization_applies_replica_commit", "a commit of new replicas is applied at that commit"),
    )),
    Item("self_heal", "Manual kubectl changes reverted by self-heal", 6, (
        Check("test_out_of_band_change_is_reverted[scale]", "`kubectl scale` is undone"),
        Check("test_out_of_band_change_is_reverted[set-image]", "`kubectl set image` is undone"),
        Check("test_out_of_band_change_is_reverted[delete-service]", "a deleted managed Service is recreated"),
    ), flux=(
        Check("test_flux_out_of_band_change_is_reverted[scale]", "`kubectl scale` is undone at the next apply"),
        Check("test_flux_out_of_band_change_is_reverted[set-image]", "`kubectl set image` is undone"),
        Check("test_flux_out_of_band_change_is_reverted[delete-service]", "a deleted managed Service is recreated"),
    )),
    Item("prune", "Resources removed from Git are pruned", 2, (
        Check("test_manifest_removed_from_git_is_pruned", "a manifest removed from Git is deleted from the cluster"),
        Check("test_application_with_finalizer_deletes_its_resources",
              "deleting an Application with the resources finalizer deletes its resources"),
        Check("test_application_without_finalizer_orphans_its_resources",
              "without the finalizer they are orphaned (the pitfall, shown live)"),
    ), flux=(
        Check("test_flux_manifest_removed_from_git_is_pruned",
              "a manifest removed from Git is deleted from the cluster (prune: true)"),
    )),
    Item("app_of_apps", "App-of-apps deploys multiple applications", 3, (
        Check("test_root_deploys_children_infra_first", "the root creates every child, infra Healthy before apps start"),
        Check("test_children_follow_git", "a child added in Git appears; one removed is pruned"),
    ), flux_title="Kustomizations of Kustomizations deploy multiple applications", flux=(
        Check("test_flux_root_deploys_children_infra_first",
              "the root creates every child Kustomization, each Ready; infra Ready before apps' objects exist "
              "(dependsOn)"),
        Check("test_flux_children_follow_git", "a child added in Git appears; one removed is pruned with its objects"),
    )),
    Item("image_promotion", "Image Updater promotes new images by tag pattern", 4, (
        Check("test_semver_promotes_highest_stable_tag_via_git",
              "semver moves to the highest allowed tag and writes it back to Git"),
        Check("test_digest_strategy_follows_moved_tag", "the digest strategy follows a moved tag"),
    ), flux_not_run="image-reflector/automation controllers cannot be built here (the Go module proxy refuses "
                    "their modules), so the suite has no Flux image automation checks that were ever shown to "
                    "fail; not run on any cluster, whether or not it runs those controllers"),
    Item("canary", "Argo Rollouts canary deployments", 5, (
        Check("test_canary_walks_weights_and_promotes_on_healthy_analysis",
              "canary steps advance and promote with a healthy analysis"),
        Check("test_canary_aborts_and_stable_keeps_serving_on_failed_analysis",
              "a failing analysis aborts; the stable version keeps serving"),
        Check("test_cli_set_image_promote_abort_undo", "the plugin's set image, promote, abort and undo work"),
        Check("test_cli_history", "the Rollout's revision history is listed"),
    ), flux_title="Flagger canary deployments", flux=(
        Check("test_flux_canary_walks_weights_and_promotes_on_healthy_metric",
              "a release committed to Git walks the weights and is promoted while the metric holds"),
        Check("test_flux_canary_rolls_back_and_primary_keeps_serving_on_failed_metric",
              "a failing metric rolls the release back; the primary keeps serving"),
    )),
    Item("notifications", "Notifications on sync events", 6, (
        Check("test_successful_sync_sends_one_on_deployed_webhook_per_revision",
              "on-deployed reaches the webhook once per revision"),
        Check("test_failed_sync_is_reported_to_slack", "on-sync-failed reaches the Slack API"),
        Check("test_template_notify_delivers_on_demand", "`argocd admin notifications template notify` delivers"),
    ), flux_title="Notifications on Kustomization events (Provider + Alert)", flux=(
        Check("test_flux_applied_commit_is_announced_to_the_webhook",
              "an applied commit reaches a generic webhook Provider, with its Authorization header"),
        Check("test_flux_failed_apply_is_reported_to_slack", "a failed apply reaches the Slack API (slack Provider)"),
    )),
    Item("drift_alerts", "Drift detection alerts on out-of-band changes", 6, (
        Check("test_out_of_band_change_is_detected_and_alerted", "an out-of-band change is OutOfSync and alerted"),
        Check("test_ignored_replicas_do_not_drift", "ignored /spec/replicas do not drift"),
    ), flux=(
        Check("test_flux_drift_correction_is_alerted",
              "kustomize-controller's correction of a `kubectl scale` reaches the webhook through an Alert"),
        Check("test_flux_replicas_left_to_the_cluster_do_not_drift",
              "with spec.replicas left out of Git (an HPA's), a replica change survives the next apply"),
    )),
    Item("rbac", "RBAC enforces project-level access controls", 3, (
        Check("test_developer_can_get_but_not_sync", "the developer role can get but not sync"),
        Check("test_deployer_can_sync", "the deployer role can sync"),
        Check("test_destination_outside_project_is_refused", "a destination outside prod-* is refused"),
        Check("test_repo_outside_source_repos_is_refused", "a repository outside sourceRepos is refused"),
    ), flux_title="Multi-tenancy: tenant Kustomizations confined to their namespace and sources", flux=(
        Check("test_flux_tenant_cannot_create_outside_its_namespace",
              "a Kustomization with serviceAccountName applies in its namespace and is forbidden outside it"),
        Check("test_flux_cross_namespace_source_is_refused",
              "a sourceRef to another namespace's GitRepository is refused (--no-cross-namespace-refs)"),
    )),
    Item("pitfalls", "The Common Pitfalls audit of a GitOps repository (--audit-repo)", 2, (
        Check("test_gitops_repository_has_no_error_findings", "the repository has no error-severity finding"),
    ), optional=True, enabled_by="audit_repo"),
)

BY_ID = {item.id: item for item in ITEMS}
VALIDATION_ITEMS = tuple(item.id for item in ITEMS if not item.optional)
OPTIONAL_ITEMS = tuple(item.id for item in ITEMS if item.optional)
ALL_ITEMS = VALIDATION_ITEMS + OPTIONAL_ITEMS


def on_failure(item_id: str) -> str:
    """The procedure's "On failure" note for an item ("" for an unknown id)."""
    item = BY_ID.get(item_id)
    return item.on_failure if item else ""
