"""The canary check must be able to fail: each test breaks the Step 5 setup on purpose and
asserts the check FAILS within its bound with a message naming the cause. Local testbed,
run serially (one stops the shared Rollouts controller and restores it)."""
from __future__ import annotations

import contextlib
import dataclasses

import pytest

from gitops_conformance.fixtures.checks import Observation
from tests.breaking import fails_within
from gitops_conformance.scenarios import step5_rollouts as step5
from gitops_conformance.suites import canary_checks

pytestmark = [pytest.mark.testbed, pytest.mark.breaks_setup]

SHORT = 20.0  # the working canary walks 20→100 in ~20s with analysis; stuck, it never starts


@contextlib.contextmanager
def released(kube, traffic, app, tag: str, rate: float):
    """Given traffic answering `rate` for `tag` and the canary watched, when `tag` is committed:
    yields the recorder and the release (before, tag, sha) the canary checks take."""
    tag = traffic.release(app.metric_service, tag, rate)
    before = step5.look(kube, app.namespace)
    with canary_checks.Recorder(kube, app.namespace) as rec:
        yield rec, {"before": before, "tag": tag, "sha": step5.release(app, tag)}


@pytest.mark.breaks("suites.canary_checks.canary_progresses")
def test_canary_check_fails_when_rollouts_controller_is_stopped(deploy_rollout, kube, argocd, traffic, testbed_handle, waiter):
    app = deploy_rollout()
    testbed_handle.stop_component("rollouts-controller")
    try:
        with released(kube, traffic, app, "v9.9.9", 1.0) as (rec, release):
            message = fails_within(canary_checks.canary_progresses, waiter, kube, argocd, app, rec, **release,
                                   timeout=SHORT, bound=SHORT)
    finally:
        testbed_handle.start_component("rollouts-controller")
    assert "has not updated the Rollout status" in message and "does not progress" in message, message


@pytest.mark.breaks("suites.canary_checks.canary_progresses")
def test_canary_check_fails_when_analysis_query_returns_nothing(deploy_rollout, kube, argocd, traffic, unique, waiter):
    """The template asks for a `service=` label no traffic carries: Prometheus returns an
    empty vector, which the analysis must not pass."""
    app = deploy_rollout(metric_service=unique("no-such-service"))
    fed = dataclasses.replace(app, metric_service=f"myapp-canary.{app.namespace}")  # traffic goes elsewhere
    with released(kube, traffic, fed, "v9.9.9", 1.0) as (rec, release):
        message = fails_within(canary_checks.canary_progresses, waiter, kube, argocd, fed, rec, **release,
                               timeout=canary_checks.CANARY, bound=canary_checks.CANARY)
    assert "AnalysisRun" in message or "analysisruns" in message, message
    assert "Error" in message, message


@pytest.mark.breaks("suites.canary_checks.canary_aborts")
def test_canary_check_fails_with_the_procedures_verbatim_success_condition(deploy_rollout, kube, argocd, traffic, waiter):
    """Step 5's AnalysisTemplate verbatim (`successCondition: result >= 0.95`) compares a list
    with a number: every measurement errors and a canary at 0.5 success is promoted unverified.
    The abort check must catch that (and the suites use `result[0] >= 0.95`)."""
    app = deploy_rollout(success_condition=step5.PROCEDURE_SUCCESS_CONDITION)
    with released(kube, traffic, app, "v1.1.0", 0.5) as (rec, release):
        message = fails_within(canary_checks.canary_aborts, waiter, kube, argocd, app, rec, **release, rate=0.5,
                               bound=canary_checks.CANARY)
    assert "mismatched types" in message or "Error" in message, message


@pytest.mark.breaks("suites.canary_checks.set_image_holds")
def test_set_image_check_fails_when_self_heal_reverts_it(deploy_rollout, kube, argocd, traffic, waiter):
    """Step 5's `kubectl argo rollouts set image` next to step 2's Application (selfHeal: true):
    Argo CD puts Git's image back (the "revision mismatch" note of step 5). The check says so."""
    app = deploy_rollout(indefinite_pause=True)
    traffic.release(app.metric_service, "v1.1.0", 1.0)
    step5.set_image(kube, app, "v1.1.0")
    message = fails_within(canary_checks.set_image_holds, waiter, kube, argocd, app, "v1.1.0",
                           bound=canary_checks.CANARY)
    assert "selfHeal=true" in message or "reverted" in message, message


@pytest.mark.breaks("suites.canary_checks.promote_completes", "suites.canary_checks.abort_returns_to_stable",
                    "suites.canary_checks.undo_rolls_back", "suites.canary_checks.set_image_pauses")
def test_cli_checks_fail_when_rollouts_controller_is_stopped(deploy_rollout, kube, argocd, traffic, testbed_handle, waiter):
    """The plugin's commands only write the Rollout; the controller acts on them. With it stopped,
    each command exits 0 and nothing happens: each check fails within its bound and the diagnosis
    names the stopped controller."""
    app = deploy_rollout(indefinite_pause=True, changes={"spec.syncPolicy.automated.selfHeal": False})
    traffic.release(app.metric_service, "v1.1.0", 1.0)
    stable = step5.look(kube, app.namespace)
    step5.set_image(kube, app, "v1.1.0")
    canary_checks.set_image_pauses(waiter, kube, argocd, app, "v1.1.0")  # paused at 20%, the controller still up
    with testbed_handle.stopped("rollouts-controller"):
        for act, check, args in ((lambda: step5.promote(kube, app), canary_checks.promote_completes, ()),
                                 (lambda: step5.abort(kube, app), canary_checks.abort_returns_to_stable, (stable.stable_rs,)),
                                 (lambda: step5.undo(kube, app), canary_checks.undo_rolls_back, (stable.image,)),
                                 (lambda: step5.set_image(kube, app, "v1.2.0"), canary_checks.set_image_pauses, ("v1.2.0",))):
            act()  # the command only writes the Rollout: it succeeds with the controller stopped
            message = fails_within(check, waiter, kube, argocd, app, *args, timeout=SHORT, bound=SHORT)
            assert "cause: rollouts-controller is not running" in message, (check.__name__, message)
            assert "kubectl argo rollouts" in message, (check.__name__, message)


@pytest.mark.breaks("suites.canary_checks.history_lists_revisions")
def test_history_check_fails_when_the_rollout_keeps_no_history(deploy_rollout, kube, argocd, traffic, waiter):
    """revisionHistoryLimit: 0 (set through the Application's kustomize patches): after a second
    release the Rollout keeps only the current revision, so there is nothing to undo to."""
    patch = "- op: replace\n  path: /spec/revisionHistoryLimit\n  value: 0\n"
    app = deploy_rollout(changes={"spec.source.kustomize": {"patches": [
        {"target": {"group": "argoproj.io", "kind": "Rollout", "name": step5.ROLLOUT}, "patch": patch}]}})
    with released(kube, traffic, app, "v1.1.0", 1.0) as (rec, release):
        canary_checks.canary_progresses(waiter, kube, argocd, app, rec, **release)

    def old_revision_dropped() -> Observation:
        kept = canary_checks.kept_revisions(kube, app.namespace)
        return (Observation.ok if len(kept) < 2 else Observation.pending)(f"revisions kept {kept}")

    # the old ReplicaSet goes after the canary's scaleDownDelaySeconds (30s by default)
    waiter.until(old_revision_dropped, timeout=90, what="the Rollout drops its previous revision",
                 expected="one revision kept (revisionHistoryLimit 0)")
    message = fails_within(canary_checks.history_lists_revisions, kube, app, bound=30)
    assert "at least 2 revisions kept" in message and "revisionHistoryLimit=0" in message, message
