"""Common Pitfall "Automatic prune disabled": a manifest removed from Git is removed from the
cluster (prune: true, with PruneLast)."""
from __future__ import annotations

import pytest

from gitops_conformance.fixtures.changes import ChangeLog
from gitops_conformance.scenarios import step2_applications as step2
from gitops_conformance.suites import prune_checks
from gitops_conformance.suites.flux import prune_checks as flux_prune

pytestmark = pytest.mark.validation("prune")


def test_manifest_removed_from_git_is_pruned(deploy_myapp, kube, argocd, record_metric, record_check, waiter):
    app = deploy_myapp()
    with ChangeLog(kube, app.namespace) as changes:  # watching from before the commit
        sha = step2.remove_service(app.repo)
        record_metric("removal_to_pruned_s", prune_checks.removed_manifest_is_pruned(waiter, kube, argocd, app, sha))
        order = prune_checks.prune_last(waiter, changes, app)
    record_check("PruneLast", "the cluster saw the Service pruned after the sync's other apply", order, True)


def test_application_with_finalizer_deletes_its_resources(deploy_myapp, kube, argocd, record_check, waiter):
    app = deploy_myapp()
    finalizers = step2.delete_application(kube, argocd, app.name)
    seen = prune_checks.app_deletion_outcome(waiter, kube, argocd, app, finalizers, expect_cascade=True)
    record_check("resources finalizer", "deleting the Application deletes its resources", seen, True)


def test_application_without_finalizer_orphans_its_resources(deploy_myapp, kube, argocd, record_check, waiter):
    """The pitfall shown live: why the procedure's Application carries the finalizer."""
    app = deploy_myapp(changes={"metadata.finalizers": None})
    finalizers = step2.delete_application(kube, argocd, app.name)
    seen = prune_checks.app_deletion_outcome(waiter, kube, argocd, app, finalizers, expect_cascade=False)
    record_check("no finalizer", "deleting the Application leaves its resources orphaned", seen, True)


# ----- Flux (--engine flux) ------------------------------------------------------------------

def test_flux_manifest_removed_from_git_is_pruned(deploy_myapp_flux, kube, flux, record_metric, waiter):
    app = deploy_myapp_flux()
    sha = step2.remove_service(app.repo)
    record_metric("removal_to_pruned_s", flux_prune.removed_manifest_is_pruned(waiter, kube, flux, app, sha))
