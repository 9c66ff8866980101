"""The Flux checks must be able to fail: each test breaks the Flux setup on purpose (a stopped
controller, a CRD missing, a repository whose pushes announce nothing) and asserts the check
FAILS within its bound, naming the cause. Local testbed started with --engine flux
(`pytest tests/test_breaks_flux.py --engine flux`); on a cluster (`--cluster kind|existing
--engine flux`) the tests that need no testbed process run too; skipped under any other engine.
Serial: one test stops a controller and one deletes a CRD; both are restored."""
from __future__ import annotations

import contextlib
import dataclasses
import time

import pytest

from gitops_conformance.fixtures.changes import ChangeLog
from gitops_conformance.fixtures.flux import FLUX_NAMESPACE, RECEIVER
from gitops_conformance.scenarios import step2_applications as myapp
from gitops_conformance.scenarios.flux import step2_kustomizations as fluxs
from gitops_conformance.scenarios.flux import step3_app_of_apps as flux_step3
from gitops_conformance.scenarios.flux import step3_tenancy as flux_tenancy
from gitops_conformance.scenarios.flux import step5_flagger as flux_step5
from gitops_conformance.suites.flux import (app_of_apps_checks as flux_app_of_apps_checks,
                                            auto_sync_checks as flux_auto_sync, canary_checks as flux_canary_checks, install_checks as flux_install,
                                            notifications_checks as flux_notifications_checks,
                                            prune_checks as flux_prune, rbac_checks as flux_rbac_checks,
                                            repo_auth_checks as flux_repo_auth_checks,
                                            self_heal_checks as flux_self_heal)
from tests.breaking import fails_within

pytestmark = [pytest.mark.testbed, pytest.mark.breaks_setup, pytest.mark.flux]

SHORT = 8.0


@pytest.mark.breaks("suites.flux.install_checks.controllers_ready")
def test_controllers_check_fails_when_kustomize_controller_is_stopped(flux, testbed_handle, waiter):
    with testbed_handle.stopped("kustomize-controller"):
        message = fails_within(flux_install.controllers_ready, waiter, flux, timeout=SHORT, bound=SHORT)
    assert "kustomize-controller: no answer" in message and "source-controller: 200" in message, message
    flux_install.controllers_ready(waiter, flux)  # and restarted, it is Ready again


@pytest.mark.breaks("suites.flux.install_checks.controllers_ready")
def test_controllers_check_fails_when_a_controller_has_no_ready_replica(flux, kube, waiter):
    """On a cluster (kind, existing --engine flux) readiness is the kubelet's probe of /readyz:
    notification-controller scaled to 0 is named, the others still ready."""
    if flux.readyz:
        pytest.skip("the local testbed's controllers answer /readyz to the suite (the test above)")
    deployment = "deployment/notification-controller"
    kube.kubectl("-n", FLUX_NAMESPACE, "scale", deployment, "--replicas=0")
    try:
        message = fails_within(flux_install.controllers_ready, waiter, flux, timeout=SHORT, bound=SHORT)
    finally:
        kube.kubectl("-n", FLUX_NAMESPACE, "scale", deployment, "--replicas=1")
        kube.kubectl("-n", FLUX_NAMESPACE, "rollout", "status", deployment, "--timeout=120s", check=False, timeout=150)
    assert "notification-controller: scaled to 0 replicas" in message and "source-controller: 1/1 ready" in message, message
    flux_install.controllers_ready(waiter, flux)  # and scaled back, it is Ready again


@pytest.mark.breaks("suites.flux.install_checks.crds_served")
def test_crds_check_fails_when_the_receiver_crd_is_missing(flux, kube, testbed_handle):
    """A partial install (the Receiver CRD never applied): the API does not serve receivers,
    and the check names exactly that kind."""
    from gitops_conformance.testbed import flux as testbed_flux

    crd = next(d for d in testbed_flux.crd_docs() if d["metadata"]["name"] == RECEIVER)
    kube.kubectl("delete", "crd", RECEIVER, "--wait=true", timeout=60)
    try:
        message = fails_within(flux_install.crds_served, kube, bound=SHORT)
    finally:
        kube.apply(crd)
        kube.kubectl("wait", "--for=condition=Established", f"crd/{RECEIVER}", "--timeout=60s", check=False)
        testbed_handle.start_component("notification-controller")  # its Receiver informer starts afresh
    assert "NOT served: receivers.notification.toolkit.fluxcd.io/v1" in message, message
    assert "kustomizations.kustomize.toolkit.fluxcd.io/v1" in message.split("NOT served")[0], message
    flux_install.crds_served(kube)


@pytest.mark.breaks("suites.flux.auto_sync_checks.commit_is_applied")
def test_auto_sync_check_fails_without_webhook_or_polling(deploy_myapp_flux, kube, flux, waiter):
    """No Receiver (the Git host's webhook reaches nothing) and an hour-long source interval:
    the commit is never fetched within the bound, and the check says why."""
    app = deploy_myapp_flux(webhook=False, source_interval="1h")
    sha = myapp.commit_prod(app.repo, tag="v1.1.0")
    message = fails_within(flux_auto_sync.commit_is_applied, waiter, kube, flux, app, sha, tag="v1.1.0", timeout=15,
                           bound=15)
    assert "source-controller has not fetched the commit: no webhook reached the Receiver" in message, message


@pytest.mark.breaks("suites.flux.install_checks.check_pre")
def test_flux_check_pre_fails_against_an_unreachable_api(flux, target, tmp_path):
    """The runner's kubeconfig names an API server that does not answer (a stopped or wrong
    cluster): `flux check --pre` fails, and the check quotes why."""
    import socket

    with socket.socket() as s:  # a loopback port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: gone\n"
        f"clusters: [{{name: gone, cluster: {{server: 'https://127.0.0.1:{port}', insecure-skip-tls-verify: true}}}}]\n"
        "users: [{name: u, user: {token: none}}]\n"
        "contexts: [{name: gone, context: {cluster: gone, user: u}}]\n")
    env = {**target.env(), "KUBECONFIG": str(kubeconfig)}
    message = fails_within(flux_install.check_pre, env, timeout=10, bound=25)
    assert "flux check --pre" in message and "connection refused" in message, message


@pytest.mark.breaks("suites.flux.self_heal_checks.drift_is_reverted")
def test_self_heal_check_fails_when_the_kustomization_applies_hourly(deploy_myapp_flux, kube, flux, waiter):
    """spec.interval: 1h: kustomize-controller would correct the drift only at its next apply,
    an hour later; the check fails within its bound and shows the interval."""
    app = deploy_myapp_flux(interval="1h")
    changed_at = myapp.drift(kube, app.namespace, "scale")
    message = fails_within(flux_self_heal.drift_is_reverted, waiter, kube, flux, app, "scale", changed_at, timeout=20,
                           bound=20)
    assert "replicas=1" in message and "spec.interval=1h" in message, message


@pytest.mark.breaks("suites.flux.prune_checks.removed_manifest_is_pruned")
def test_prune_check_fails_with_prune_off(deploy_myapp_flux, kube, flux, waiter):
    """The pitfall: `prune: false`. The removal commit is applied, the Service stays."""
    app = deploy_myapp_flux(prune=False)
    sha = myapp.remove_service(app.repo)
    message = fails_within(flux_prune.removed_manifest_is_pruned, waiter, kube, flux, app, sha, timeout=20, bound=20)
    assert "myapp still exists" in message and "spec.prune=false" in message and "Applied revision" in message, message
    assert "Automatic prune disabled" in message, message


# ----- repo_auth -----------------------------------------------------------------------------

def _pushed_repo(git_repo, prefix: str):
    repo = git_repo(prefix)
    repo.write("README.md", "gitops\n")
    return repo, repo.commit_and_push("init")


@pytest.mark.breaks("suites.flux.repo_auth_checks.source_is_ready")
def test_source_ready_check_fails_when_the_key_is_not_a_deploy_key(git_repo, git_host, flux, flux_git_source,
                                                                   target, waiter, tmp_path):
    """The procedure's failure: the SSH key was never added to the repository's deploy keys.
    The Git server refuses it; the check fails at once with Flux's message and the hint."""
    from gitops_conformance.fixtures.peers import generate_keypair

    repo, sha = _pushed_repo(git_repo, "auth-nokey")
    key, _ = generate_keypair(tmp_path, "not-a-deploy-key")
    source = flux_git_source(git_host.ssh_url(repo.url), "SSH with a key that is no deploy key",
                             lambda name, ns: fluxs.ssh_auth_secret(name, ns, key.read_text(),
                                                                    target.git.ssh_known_hosts))
    message = fails_within(flux_repo_auth_checks.source_is_ready, waiter, flux, source, sha, timeout=30, bound=30)
    assert "Ready=False" in message and "unable to authenticate" in message, message
    assert "SSH key added to deploy keys" in message and "spec.secretRef" in message, message


@pytest.mark.breaks("suites.flux.repo_auth_checks.source_is_refused")
def test_refusal_check_fails_when_the_credentials_are_right(git_repo, flux, flux_git_source, target, waiter):
    """The "wrong" token is the right one: the GitRepository connects, and the refusal check
    fails saying the credentials were accepted."""
    repo, _ = _pushed_repo(git_repo, "auth-right")
    source = flux_git_source(fluxs.https_url(repo, target.git.https_base_url), "HTTPS with the right token",
                             lambda name, ns: fluxs.auth_secret(name, ns, repo.username, repo.token,
                                                                target.git.https_ca_pem))
    message = fails_within(flux_repo_auth_checks.source_is_refused, waiter, flux, source, fluxs.AUTH_REFUSED,
                           timeout=30, bound=30)
    assert "Ready=True" in message and "fetched with credentials that should be refused" in message, message
    assert "verify token has repo access" in message, message


# ----- app_of_apps ---------------------------------------------------------------------------

@pytest.mark.breaks("suites.flux.app_of_apps_checks.children_become_ready")
def test_children_check_fails_when_infra_points_at_a_missing_path(deploy_flux_app_of_apps, flux, kube, waiter):
    """The infra child names a directory that is not in Git: it fails to build, apps waits on
    it forever; the check fails within its bound with Flux's message."""
    layout = deploy_flux_app_of_apps(infra_path="infrastructure-typo")
    layout.create_root()
    message = fails_within(flux_app_of_apps_checks.children_become_ready, waiter, flux, kube, layout,
                           timeout=40, bound=40)
    assert "infrastructure-typo" in message and "not found" in message, message
    assert "For missing child apps, check root app status" in message, message


@pytest.mark.breaks("suites.flux.app_of_apps_checks.dependency_order_holds")
def test_order_check_fails_without_depends_on(deploy_flux_app_of_apps, flux, kube, waiter):
    """The pitfall "No sync waves": apps has no dependsOn, so kustomize-controller applies it
    while infra is still becoming healthy; the watch shows apps' objects created first."""
    layout = deploy_flux_app_of_apps(depends_on=False)
    with ChangeLog(kube, layout.namespace, kinds=("Kustomization", "Deployment", "Service")) as log:
        layout.create_root()
        flux_app_of_apps_checks.children_become_ready(waiter, flux, kube, layout)
    message = fails_within(flux_app_of_apps_checks.dependency_order_holds, kube, flux, layout, log, bound=5)
    assert f"before {layout.infra} was Ready" in message, message
    assert "No sync waves" in message and "dependsOn" in message, message


@pytest.mark.breaks("suites.flux.app_of_apps_checks.child_appears")
def test_child_check_fails_when_the_child_is_outside_the_root_path(deploy_flux_app_of_apps, flux, kube, unique,
                                                                  waiter):
    """A child committed under clusters/staging/, which the root does not read: never created."""
    layout = deploy_flux_app_of_apps()
    layout.create_root()
    extra = unique("extra")
    flux_step3.add_extra_child(layout.repo, layout, extra, where="clusters/staging")
    sha = layout.repo.commit_and_push(f"Add child {extra} outside the root path")
    message = fails_within(flux_app_of_apps_checks.child_appears, waiter, flux, kube, layout, extra, sha,
                           timeout=20, bound=20)
    assert f"Kustomization {extra} does not exist" in message and "For missing child apps" in message, message


@pytest.mark.breaks("suites.flux.app_of_apps_checks.child_pruned")
def test_child_prune_check_fails_with_root_prune_off(deploy_flux_app_of_apps, flux, kube, unique, waiter):
    """The root has `prune: false`: a child removed from Git stays, and so does what it deployed."""
    layout = deploy_flux_app_of_apps(prune=False)
    layout.create_root()
    extra = unique("extra")
    path = flux_step3.add_extra_child(layout.repo, layout, extra)
    sha = layout.repo.commit_and_push(f"Add child {extra}")
    flux_app_of_apps_checks.child_appears(waiter, flux, kube, layout, extra, sha)
    layout.repo.delete(path)
    layout.repo.commit_and_push(f"Remove child {extra}")
    message = fails_within(flux_app_of_apps_checks.child_pruned, waiter, flux, kube, layout, extra,
                           timeout=20, bound=20)
    assert "root spec.prune=false" in message and "Automatic prune disabled" in message, message


# ----- rbac (multi-tenancy) ------------------------------------------------------------------

@pytest.mark.breaks("suites.flux.rbac_checks.tenant_is_confined")
def test_tenancy_check_fails_without_service_account(flux_tenant, flux, kube, waiter):
    """The tenant's Kustomizations carry no serviceAccountName (and the controller has no
    --default-service-account): they apply with kustomize-controller's own rights, and the
    ConfigMap lands in the platform namespace."""
    tenant = flux_tenant(service_account=False)
    own = tenant.add_kustomization(flux_tenancy.OWN_PATH)
    outside = tenant.add_kustomization(flux_tenancy.OUTSIDE_PATH)
    message = fails_within(flux_rbac_checks.tenant_is_confined, waiter, flux, kube, tenant, own, outside,
                           timeout=30, bound=30)
    assert f"ConfigMap {tenant.platform_namespace}/{flux_tenancy.CONFIGMAP} EXISTS" in message, message
    assert "serviceAccountName" in message and "For project permission errors" in message, message


@pytest.mark.breaks("suites.flux.rbac_checks.cross_namespace_source_is_refused")
def test_cross_namespace_check_fails_without_the_lockdown_flag(flux_tenant, flux, kube, testbed_handle, waiter):
    """kustomize-controller restarted without --no-cross-namespace-refs (Flux's default): the
    tenant's Kustomization uses the platform namespace's GitRepository and applies."""
    testbed_handle.start_component("kustomize-controller", no_cross_namespace_refs=False)
    try:
        tenant = flux_tenant()
        name = tenant.add_kustomization(flux_tenancy.OWN_PATH, source_namespace=tenant.platform_namespace)
        message = fails_within(flux_rbac_checks.cross_namespace_source_is_refused, waiter, flux, kube, tenant, name,
                               timeout=30, bound=30)
    finally:
        testbed_handle.start_component("kustomize-controller")
    assert "Ready=True" in message or "EXISTS" in message, message
    assert "--no-cross-namespace-refs=true" in message and "applied what it must not" in message, message


# ----- notifications, drift_alerts -----------------------------------------------------------

@pytest.mark.breaks("suites.flux.notifications_checks.webhook_gets_event")
def test_webhook_check_fails_when_the_alert_admits_errors_only(deploy_myapp_flux, flux_alerts, kube, target, waiter):
    """The webhook's Alert has eventSeverity: error (to cut the noise): an applied commit is an
    info event, so the webhook never hears of it."""
    app = deploy_myapp_flux()
    alerts = flux_alerts(app, webhook_severity="error")
    since = time.time()
    sha = myapp.commit_prod(app.repo, replicas=3)
    message = fails_within(flux_notifications_checks.webhook_gets_event, waiter, kube, target, alerts, app,
                           contains=(sha,), since=since, what="webhook alert", timeout=20, bound=20)
    assert f"no event naming {app.name}" in message and "eventSeverity=error" in message, message
    assert "For webhook errors, check endpoint accessibility" in message, message


@pytest.mark.breaks("suites.flux.notifications_checks.slack_gets_event")
def test_slack_check_fails_with_a_wrong_token(deploy_myapp_flux, flux_alerts, kube, target, waiter):
    """The Slack Provider's Secret holds a token the Slack API does not accept: every post is
    answered invalid_auth, and the check fails at once saying so."""
    app = deploy_myapp_flux()
    alerts = flux_alerts(app, slack_token="xoxb-not-the-bot-token")
    since = time.time()
    myapp.commit_prod(app.repo, replicas=-1)
    message = fails_within(flux_notifications_checks.slack_gets_event, waiter, kube, target, alerts, app,
                           contains=("replicas",), since=since, what="Slack alert", timeout=30, bound=30)
    assert "invalid_auth" in message and "token is not accepted" in message, message
    assert "test Slack token with curl" in message, message


@pytest.mark.breaks("suites.flux.notifications_checks.drift_correction_is_alerted")
def test_drift_alert_check_fails_when_the_kustomization_applies_hourly(deploy_myapp_flux, flux_alerts, kube, target,
                                                                     waiter):
    """spec.interval: 1h: the drift is not corrected within the bound, so no correction event
    exists to alert on; the check says nothing arrived."""
    app = deploy_myapp_flux(interval="1h")
    alerts = flux_alerts(app)
    since = time.time()
    myapp.drift(kube, app.namespace, "scale")
    message = fails_within(flux_notifications_checks.drift_correction_is_alerted, waiter, kube, target, alerts, app,
                           since, timeout=20, bound=20)
    assert f"Deployment/{app.namespace}/myapp configured" in message and "no event naming" in message, message


@pytest.mark.breaks("suites.flux.notifications_checks.replicas_left_to_the_cluster_stay")
def test_replicas_check_fails_when_git_sets_replicas(deploy_myapp_flux, kube, flux, waiter):
    """The pitfall itself: Git sets spec.replicas (5), so the next apply takes the HPA's (here
    kubectl's) 2 back; the check fails naming the field and quoting the pitfall."""
    app = deploy_myapp_flux()  # replicas in Git
    myapp.drift(kube, app.namespace, "hpa-scale")
    requested = fluxs.request_reconcile(kube, app)
    message = fails_within(flux_notifications_checks.replicas_left_to_the_cluster_stay, waiter, kube, flux, app,
                           requested, timeout=30, bound=30)
    assert "replicas=5" in message and "Git sets spec.replicas" in message, message
    assert "Ignoring HPA-managed replicas" in message, message


# ----- canary: Flagger (procedure step 5) ---------------------------------------------------------

@contextlib.contextmanager
def flagger_release(kube, traffic, app, tag: str, rate: float):
    """Given traffic answering `rate` for `tag` and the canary watched, when `tag` is committed:
    yields the recorder and the release the Flux canary checks take."""
    tag = traffic.release(app.metric_service, tag, rate)
    before = flux_step5.look(kube, app.namespace)
    with flux_canary_checks.Recorder(kube, app.namespace) as rec:
        yield rec, {"before": before, "tag": tag, "sha": flux_step5.release(app, tag)}


@pytest.mark.breaks("suites.flux.canary_checks.canary_progresses")
def test_flux_canary_check_fails_when_flagger_is_stopped(deploy_flagger_canary, kube, flux, traffic, testbed_handle,
                                                         waiter):
    """Flagger down: Flux applies the release to the target, and nothing walks the canary."""
    app = deploy_flagger_canary()
    testbed_handle.stop_component("flagger")
    try:
        with flagger_release(kube, traffic, app, "v1.1.0", 1.0) as (rec, release):
            release.pop("before")
            message = fails_within(flux_canary_checks.canary_progresses, waiter, kube, flux, app, rec, **release,
                                   timeout=30, bound=30)
    finally:
        testbed_handle.start_component("flagger")
    assert "flagger is not running" in message, message


@pytest.mark.breaks("suites.flux.canary_checks.canary_progresses", "suites.flux.canary_checks.canary_rolls_back")
def test_flux_canary_checks_fail_when_the_canary_declares_no_metric(deploy_flagger_canary, kube, flux, traffic,
                                                                    waiter):
    """An analysis without metrics: Flagger would promote anything. Both checks say so."""
    app = deploy_flagger_canary(metrics_declared=False)
    with flagger_release(kube, traffic, app, "v1.1.0", 0.5) as (rec, release):
        before = release.pop("before")
        progress = fails_within(flux_canary_checks.canary_progresses, waiter, kube, flux, app, rec, **release,
                                bound=flux_canary_checks.APPLY + SHORT)
        rollback = fails_within(flux_canary_checks.canary_rolls_back, waiter, kube, flux, app, rec, **release,
                                before=before, rate=0.5, bound=flux_canary_checks.APPLY + SHORT)
    for message in (progress, rollback):
        assert "declares no metric" in message, message


@pytest.mark.breaks("suites.flux.canary_checks.canary_progresses")
def test_flux_canary_check_fails_when_the_metric_reads_nothing(deploy_flagger_canary, kube, flux, traffic, unique,
                                                               waiter):
    """The MetricTemplate asks for a `service=` label no traffic carries: Prometheus answers an
    empty vector, Flagger halts and rolls a healthy release back; the check names Flagger's reason."""
    app = deploy_flagger_canary(metric_service=unique("no-such-service"))
    fed = dataclasses.replace(app, metric_service=flux_step5.traffic_series(app.namespace))  # traffic goes here
    with flagger_release(kube, traffic, fed, "v1.1.0", 1.0) as (rec, release):
        release.pop("before")
        message = fails_within(flux_canary_checks.canary_progresses, waiter, kube, flux, fed, rec, **release,
                               bound=flux_canary_checks.CANARY)
    assert "rolled v1.1.0 back although its traffic was healthy" in message, message
    assert "no values found" in message, message


@pytest.mark.breaks("suites.flux.canary_checks.canary_rolls_back")
def test_flux_rollback_check_fails_when_the_metric_reads_a_healthy_series_elsewhere(deploy_flagger_canary, kube, flux,
                                                                                    traffic, unique, waiter):
    """The MetricTemplate reads another app's healthy traffic: a release failing half its requests
    is promoted, and the rollback check says so."""
    if traffic.real:
        pytest.skip("needs a healthy series of another app: the testbed's synthetic traffic writes one; "
                    "a cluster's real traffic goes to this app's canary only")
    elsewhere = f"{unique('healthy')}.elsewhere"
    traffic.release(elsewhere, "v1.0.0", 1.0)
    app = deploy_flagger_canary(metric_service=elsewhere)
    fed = dataclasses.replace(app, metric_service=flux_step5.traffic_series(app.namespace))
    with flagger_release(kube, traffic, fed, "v1.1.0", 0.5) as (rec, release):
        message = fails_within(flux_canary_checks.canary_rolls_back, waiter, kube, flux, fed, rec, **release,
                               rate=0.5, bound=flux_canary_checks.ROLLBACK)
    assert "promoted v1.1.0 although its success rate was 0.5" in message, message
