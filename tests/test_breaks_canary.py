"""The canary check must be able to fail: each test breaks the Step 5 setup on purpose and
asserts the check FAILS within its bound with a message naming the cause. Local testbed,
run serially (one stops the shared Rollouts controller and restores it)."""
from __future__ import annotations

import dataclasses

import pytest

from tests.breaking import fails_within
from scenarios import rollouts
from suites import canary_checks

pytestmark = [pytest.mark.testbed, pytest.mark.breaks_setup]

SHORT = 20.0  # the working canary walks 20→100 in ~20s with analysis; stuck, it never starts



def test_canary_check_fails_when_rollouts_controller_is_stopped(deploy_rollout, kube, argocd, traffic, testbed_handle):
    app = deploy_rollout()
    testbed_handle.stop_component("rollouts-controller")
    try:
        message = fails_within(canary_checks.canary_progresses, kube, argocd, traffic, app, tag="v9.9.9",
                         timeout=SHORT, bound=SHORT)
    finally:
        testbed_handle.start_component("rollouts-controller")
    assert "has not updated the Rollout status" in message and "does not progress" in message, message


def test_canary_check_fails_when_analysis_query_returns_nothing(deploy_rollout, kube, argocd, traffic, unique):
    """The template asks for a `service=` label no traffic carries: Prometheus returns an
    empty vector, which the analysis must not pass."""
    app = deploy_rollout(metric_service=unique("no-such-service"))
    fed = dataclasses.replace(app, metric_service=f"myapp-canary.{app.namespace}")  # traffic goes elsewhere
    message = fails_within(canary_checks.canary_progresses, kube, argocd, traffic, fed, tag="v9.9.9",
                     timeout=canary_checks.CANARY, bound=canary_checks.CANARY)
    assert "AnalysisRun" in message or "analysisruns" in message, message
    assert "Error" in message, message


def test_canary_check_fails_with_the_procedures_verbatim_success_condition(deploy_rollout, kube, argocd, traffic):
    """Step 5's AnalysisTemplate verbatim (`successCondition: result >= 0.95`) compares a list
    with a number: every measurement errors and a canary at 0.5 success is promoted unverified.
    The abort check must catch that (and the suites use `result[0] >= 0.95`)."""
    app = deploy_rollout(success_condition=rollouts.PROCEDURE_SUCCESS_CONDITION)
    message = fails_within(canary_checks.canary_aborts, kube, argocd, traffic, app, tag="v1.1.0", rate=0.5,
                     bound=canary_checks.CANARY)
    assert "mismatched types" in message or "Error" in message, message


def test_set_image_check_fails_when_self_heal_reverts_it(deploy_rollout, kube, argocd, traffic):
    """Step 5's `kubectl argo rollouts set image` next to step 2's Application (selfHeal: true):
    Argo CD puts Git's image back (the "revision mismatch" note of step 5). The check says so."""
    app = deploy_rollout(indefinite_pause=True)
    traffic.release(app.metric_service, "v1.1.0", 1.0)
    message = fails_within(canary_checks.set_image_holds, kube, argocd, app, "v1.1.0", bound=canary_checks.CANARY)
    assert "selfHeal=true" in message or "reverted" in message, message
