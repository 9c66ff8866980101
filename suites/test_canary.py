"""Validation: Argo Rollouts (Flagger under --engine flux) perform progressive canary deployments (procedure step 5)."""
from __future__ import annotations

import pytest

from gitops_conformance.scenarios import step5_rollouts as step5
from gitops_conformance.scenarios.flux import step5_flagger as flux_step5
from gitops_conformance.suites import canary_checks
from gitops_conformance.suites.flux import canary_checks as flux_canary_checks

pytestmark = pytest.mark.validation("canary")


def test_canary_walks_weights_and_promotes_on_healthy_analysis(deploy_rollout, kube, argocd, traffic, metrics,
                                                               record_metric, record_check, record_evidence, waiter):
    app = deploy_rollout()                                     # Given: the Rollout, deployed from Git
    tag = traffic.release(app.metric_service, "v1.1.0", 1.0)  # Given: the new release answers every request
    before = step5.look(kube, app.namespace)
    with canary_checks.Recorder(kube, app.namespace) as rec:   # Given: the canary watched from here on
        sha = step5.release(app, tag)                          # When: the new tag is committed to Git
        result = canary_checks.canary_progresses(waiter, kube, argocd, app, rec, before=before, tag=tag, sha=sha)
    if traffic.real:  # a cluster: what the real pods served, as Prometheus and the pods saw it
        record_evidence("real-traffic", step5.real_traffic_evidence(kube, metrics, traffic, app.namespace))
    record_check("canary weight sequence", "20→40→60→80(→100) then 0", f"weights {result.weights}, steps {result.steps}",
                 True)
    if result.decision_s is not None:
        record_metric("analysis_decision_s", result.decision_s)


def test_canary_aborts_and_stable_keeps_serving_on_failed_analysis(deploy_rollout, kube, argocd, traffic, metrics,
                                                                    record_metric, record_evidence, waiter):
    app = deploy_rollout()                                     # Given: the Rollout, deployed from Git
    tag = traffic.release(app.metric_service, "v1.1.0", 0.5)  # Given: the new release fails half its requests
    before = step5.look(kube, app.namespace)
    with canary_checks.Recorder(kube, app.namespace) as rec:
        sha = step5.release(app, tag)                          # When: the new tag is committed to Git
        decision = canary_checks.canary_aborts(waiter, kube, argocd, app, rec, before=before, tag=tag, sha=sha,
                                               rate=0.5)
    if traffic.real:
        record_evidence("real-traffic", step5.real_traffic_evidence(kube, metrics, traffic, app.namespace))
    if decision is not None:
        record_metric("analysis_decision_s", decision)


def test_cli_set_image_promote_abort_undo(deploy_rollout, kube, argocd, traffic, waiter):
    """The procedure's imperative commands on a Rollout whose first pause is `pause: {}`.
    They edit the Rollout's spec out of band, which the procedure's selfHeal would revert
    (the "revision mismatch" note of step 5), so this Application has selfHeal off."""
    app = deploy_rollout(indefinite_pause=True, changes={"spec.syncPolicy.automated.selfHeal": False})
    traffic.release(app.metric_service, "v1.1.0", 1.0)
    v1 = f"{app.image}:v1.0.0"
    step5.set_image(kube, app, "v1.1.0")
    canary_checks.set_image_pauses(waiter, kube, argocd, app, "v1.1.0")
    step5.promote(kube, app)
    stable = canary_checks.promote_completes(waiter, kube, argocd, app)
    step5.set_image(kube, app, "v1.2.0")
    canary_checks.set_image_pauses(waiter, kube, argocd, app, "v1.2.0")
    step5.abort(kube, app)
    canary_checks.abort_returns_to_stable(waiter, kube, argocd, app, stable.stable_rs)
    step5.undo(kube, app)
    back = canary_checks.undo_rolls_back(waiter, kube, argocd, app, stable.image)
    assert back.stable_rs == stable.stable_rs and back.image != v1, back.describe()


def test_cli_history(deploy_rollout, kube, argocd, traffic, record_check, record_warning, waiter):
    """`kubectl argo rollouts history myapp -n production`, as step 5 writes it, after a second
    release (so there is a history). The plugin has no `history` command: the revisions are read
    from `get rollout`, and the missing command is recorded apart, as a warning (never a pass)."""
    app = deploy_rollout()
    tag = traffic.release(app.metric_service, "v1.1.0", 1.0)
    before = step5.look(kube, app.namespace)
    with canary_checks.Recorder(kube, app.namespace) as rec:  # the second release, completed
        sha = step5.release(app, tag)
        canary_checks.canary_progresses(waiter, kube, argocd, app, rec, before=before, tag=tag, sha=sha)
    history = canary_checks.history_lists_revisions(kube, app)
    record_check("rollout revision history", "every kept revision listed by `get rollout`", history.listed, True)
    if history.warning:  # WARN, never a pass: the step as the procedure writes it cannot be performed
        record_warning("`kubectl argo rollouts history`", "the procedure's command lists the revisions",
                       "not a command of the plugin", history.warning)


# ----- Flux (--engine flux): a Flagger canary ---------------------------------------------------

def test_flux_canary_walks_weights_and_promotes_on_healthy_metric(deploy_flagger_canary, kube, flux, traffic, metrics,
                                                                 record_metric, record_check, record_evidence, waiter):
    app = deploy_flagger_canary()                               # Given: the Canary, applied from Git
    tag = traffic.release(app.metric_service, "v1.1.0", 1.0)   # Given: the new release answers every request
    with flux_canary_checks.Recorder(kube, app.namespace) as rec:  # Given: the canary watched from here on
        sha = flux_step5.release(app, tag)                      # When: the new tag is committed to Git
        result = flux_canary_checks.canary_progresses(waiter, kube, flux, app, rec, tag=tag, sha=sha)
    record_check("canary weight sequence", "20→40→60→80 then 0", f"weights {result.weights}, phases {result.phases}",
                 True)
    if traffic.real:
        record_evidence("real-traffic", step5.real_traffic_evidence(kube, metrics, traffic, app.namespace))
    if result.walk_s is not None:
        record_metric("canary_walk_s", result.walk_s)


def test_flux_canary_rolls_back_and_primary_keeps_serving_on_failed_metric(deploy_flagger_canary, kube, flux, traffic,
                                                                          metrics, record_metric, record_check,
                                                                          record_evidence, waiter):
    app = deploy_flagger_canary()                               # Given: the Canary, applied from Git
    tag = traffic.release(app.metric_service, "v1.1.0", 0.5)   # Given: the new release fails half its requests
    before = flux_step5.look(kube, app.namespace)
    with flux_canary_checks.Recorder(kube, app.namespace) as rec:
        sha = flux_step5.release(app, tag)                      # When: the new tag is committed to Git
        decision = flux_canary_checks.canary_rolls_back(waiter, kube, flux, app, rec, before=before, tag=tag,
                                                        sha=sha, rate=0.5)
        record_check("rollback", f"phase Failed, {flux_step5.PRIMARY} still on {before.primary_image} and serving",
                     rec.seen(rec.look()), True)
    if traffic.real:
        record_evidence("real-traffic", step5.real_traffic_evidence(kube, metrics, traffic, app.namespace))
    if decision is not None:
        record_metric("analysis_decision_s", decision)
