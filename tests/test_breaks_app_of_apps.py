"""The app_of_apps checks must be able to fail: the sync waves removed, a child that cannot
render, a root that does not prune. Local testbed, run serially (the session's argocd-cm
carries the Application health check the waves need)."""
from __future__ import annotations

import json

import pytest

from gitops_conformance.fixtures.changes import ChangeLog
from gitops_conformance.scenarios import step3_app_of_apps as step3
from gitops_conformance.suites import app_of_apps_checks as aoa
from tests.breaking import fails_within

pytestmark = [pytest.mark.testbed, pytest.mark.breaks_setup]

SHORT = 20.0


@pytest.mark.breaks("suites.app_of_apps_checks.waves_put_infra_first")
def test_wave_order_check_fails_without_sync_waves(deploy_app_of_apps, argocd, kube, waiter):
    """The pitfall "No sync waves": every child is in wave 0, so the root creates the app child
    together with the infra children, before they are Healthy."""
    with ChangeLog(kube, argocd.namespace, kinds=("Application",)) as applications:
        layout = deploy_app_of_apps(waves=False)
        timeline, _ = aoa.children_roll_out(waiter, argocd, layout)  # everything still deploys
    message = fails_within(aoa.waves_put_infra_first, layout, timeline, applications, bound=1)
    assert "sync-wave order" in message and "No sync waves" in message, message
    assert "after the last infra child was Healthy" in message, message


@pytest.mark.breaks("suites.app_of_apps_checks.child_pruned", "suites.app_of_apps_checks.child_appears")
def test_child_checks_fail_with_a_root_that_does_not_prune_and_a_broken_child(deploy_app_of_apps, argocd, kube,
                                                                              tracker, unique, waiter):
    layout = deploy_app_of_apps()
    aoa.children_roll_out(waiter, argocd, layout)
    kube.kubectl("-n", argocd.namespace, "patch", "applications.argoproj.io", layout.root, "--type=merge",
                 "-p", json.dumps({"spec": {"syncPolicy": {"automated": {"prune": False, "selfHeal": True}}}}))
    kept = unique("aoa-kept")
    tracker.apps.append(kept)
    path = step3.add_child(layout, kept)
    layout.repo.commit_and_push(f"Add child {kept}")
    aoa.child_appears(waiter, argocd, kept)
    layout.repo.delete(path)
    layout.repo.commit_and_push(f"Remove child {kept}")
    message = fails_within(aoa.child_pruned, waiter, argocd, kube, kept, argocd.namespace, timeout=SHORT, bound=SHORT,
                           root=layout.root)
    assert f"{kept} still exists" in message and "prune=false" in message, message

    broken = unique("aoa-broken")
    tracker.apps.append(broken)
    path = step3.add_child(layout, broken)
    child = layout.repo.read_yaml(path)[0]
    child["spec"]["source"]["path"] = "apps/myapp/overlays/no-such-overlay"  # a typo in the child's path
    layout.repo.write_yaml(path, child)
    layout.repo.commit_and_push(f"Add child {broken} (wrong path)")
    message = fails_within(aoa.child_appears, waiter, argocd, broken, timeout=SHORT, bound=SHORT)
    # the engine's own words lead the failure
    assert "cause: Argo CD reports ComparisonError" in message and "no-such-overlay" in message, message
