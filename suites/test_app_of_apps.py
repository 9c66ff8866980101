"""Validation: the app-of-apps pattern deploys multiple applications (procedure step 3), in
sync-wave order (Common Pitfall "No sync waves")."""
from __future__ import annotations

import pytest

from gitops_conformance.fixtures.changes import ChangeLog
from gitops_conformance.scenarios.flux import step3_app_of_apps as flux_step3
from gitops_conformance.scenarios import step3_app_of_apps as step3
from gitops_conformance.suites import app_of_apps_checks as aoa
from gitops_conformance.suites.flux import app_of_apps_checks as flux_aoa

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


# ----- Flux (--engine flux) ------------------------------------------------------------------

def test_flux_root_deploys_children_infra_first(deploy_flux_app_of_apps, flux, kube, record_metric, record_check,
                                               waiter):
    layout = deploy_flux_app_of_apps()
    with ChangeLog(kube, layout.namespace, kinds=("Kustomization", "Deployment", "Service")) as log:  # before the root
        layout.create_root()
        record_metric("root_to_all_children_ready_s", flux_aoa.children_become_ready(waiter, flux, kube, layout))
    order = flux_aoa.dependency_order_holds(kube, flux, layout, log)
    record_check("dependsOn order", "infra Ready before apps' objects are created", order, True)


def test_flux_children_follow_git(deploy_flux_app_of_apps, flux, kube, unique, record_metric, waiter):
    layout = deploy_flux_app_of_apps()
    layout.create_root()
    extra = unique("extra")
    path = flux_step3.add_extra_child(layout.repo, layout, extra)
    sha = layout.repo.commit_and_push(f"Add child {extra}")
    record_metric("child_added_to_synced_s", flux_aoa.child_appears(waiter, flux, kube, layout, extra, sha))
    layout.repo.delete(path)
    layout.repo.commit_and_push(f"Remove child {extra}")
    record_metric("child_removed_to_pruned_s", flux_aoa.child_pruned(waiter, flux, kube, layout, extra))
