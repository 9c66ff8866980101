"""Validation: the app-of-apps pattern deploys multiple applications (procedure step 3), in
sync-wave order (Common Pitfall "No sync waves")."""
from __future__ import annotations

import pytest

from fixtures.changes import ChangeLog
from scenarios import step3_app_of_apps as step3
from suites import app_of_apps_checks as aoa

pytestmark = pytest.mark.validation("app_of_apps")


def test_root_deploys_children_infra_first(deploy_app_of_apps, argocd, kube, record_metric, record_check, waiter):
    with ChangeLog(kube, argocd.namespace, kinds=("Application",)) as applications:  # from before the root exists
        layout = deploy_app_of_apps()
        timeline, took = aoa.children_roll_out(waiter, argocd, layout)
    record_metric("root_to_all_children_healthy_s", took)
    order = aoa.waves_put_infra_first(layout, timeline, applications)
    record_check("sync-wave order", "infra children Healthy before app children begin", order, True)


def test_children_follow_git(deploy_app_of_apps, argocd, kube, tracker, unique, record_metric, waiter):
    layout = deploy_app_of_apps()
    aoa.children_roll_out(waiter, argocd, layout)
    extra = unique("aoa-extra")
    tracker.apps.append(extra)
    tracker.namespaces.append(f"{layout.prod_namespace}-dev")
    path = step3.add_child(layout, extra)
    layout.repo.commit_and_push(f"Add child {extra}")
    record_metric("child_added_to_synced_s", aoa.child_appears(waiter, argocd, extra))
    layout.repo.delete(path)
    layout.repo.commit_and_push(f"Remove child {extra}")
    record_metric("child_removed_to_pruned_s", aoa.child_pruned(waiter, argocd, kube, extra, argocd.namespace,
                                                                root=layout.root))
