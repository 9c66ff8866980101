"""Checks for auto_sync under Flux (procedure step 2, `--engine flux`): a commit reaches the
cluster through a GitRepository and a Kustomization. Also `with_kustomization_spec`, which the
self_heal and prune checks share.
"""
from __future__ import annotations

from gitops_conformance.fixtures import checks, hints
from gitops_conformance.fixtures.checks import Observation
from gitops_conformance.fixtures.flux import GITREPOSITORY, KUSTOMIZATION, Flux
from gitops_conformance.fixtures.kube import Kube
from gitops_conformance.scenarios import step2_applications as step2
from gitops_conformance.scenarios.flux.step2_kustomizations import FluxApp, applied_at
from gitops_conformance.suites.auto_sync_checks import commit_is_live

SYNC_AFTER_COMMIT = 60.0


def commit_is_applied(waiter: checks.Waiter, kube: Kube, flux: Flux, app: FluxApp, sha: str, *,
                      tag: str | None = None, replicas: int | None = None, timeout: float = SYNC_AFTER_COMMIT) -> float:
    """After a commit `sha` to the prod overlay (scenarios.step2_applications.commit_prod: `tag`,
    `replicas`; the push announces it to the Receiver), the Kustomization must be Ready at that
    commit and the Deployment changed. Returns seconds from the call (right after the push) to applied."""
    change = step2.prod_change(tag=tag, replicas=replicas)
    applied = applied_at(flux, app.name, app.namespace, sha)

    def seen_commit() -> Observation:
        obs = applied()
        if obs.outcome is checks.Outcome.PENDING:
            source = flux.kube.get(GITREPOSITORY, app.name, app.namespace) or {}
            fetched = ((source.get("status") or {}).get("artifact") or {}).get("revision", "")
            if sha not in fetched:
                why = ("source-controller has not fetched the commit: no webhook reached the Receiver and "
                       "the GitRepository's interval has not come round" if not app.webhook_path else
                       "source-controller has not fetched the commit yet")
                return Observation.pending(f"{obs.observed}; GitRepository at {fetched or '-'} ({why})")
        return obs

    return commit_is_live(
        waiter, kube, app.namespace, app.image, seen_commit, tag=tag, replicas=replicas, timeout=timeout,
        what=f"Flux apply of commit {sha[:10]} ({change}) to {app.namespace}",
        expected=f"Kustomization {app.name} Ready at {sha[:10]} and Deployment myapp with {change}",
        remediation=hints.for_item("auto_sync") + " Check that the Git host's webhook reaches the Flux "
                    "Receiver, or that the GitRepository's interval polls within the bound.",
        evidence=lambda: {"kustomization": kube.get_yaml(KUSTOMIZATION, app.name, app.namespace),
                          "gitrepository": kube.get_yaml(GITREPOSITORY, app.name, app.namespace),
                          "events": kube.events(app.namespace)})


def with_kustomization_spec(flux: Flux, app: FluxApp, probe):
    """The probe, its observation annotated with the Kustomization's prune and interval: the
    usual cause when drift is not corrected or a removal is not pruned."""
    def annotated() -> Observation:
        obs = probe()
        if obs.outcome is checks.Outcome.OK:
            return obs
        spec = (flux.kube.get(KUSTOMIZATION, app.name, app.namespace) or {}).get("spec") or {}
        policy = f"spec.prune={str(bool(spec.get('prune'))).lower()}, spec.interval={spec.get('interval', '?')}"
        return Observation(obs.outcome, f"{obs.observed} [{policy}]", obs.detail)
    return annotated
