"""Validation: applications sync automatically from Git on commit (procedure step 2)."""
from __future__ import annotations

import pytest

from gitops_conformance.scenarios import step2_applications as step2
from gitops_conformance.suites import auto_sync_checks
from gitops_conformance.suites.flux import auto_sync_checks as flux_auto_sync

pytestmark = pytest.mark.validation("auto_sync")


def test_declarative_app_syncs_image_tag_commit(deploy_myapp, kube, argocd, record_metric, waiter):
    app = deploy_myapp()
    sha = step2.commit_prod(app.repo, tag="v1.1.0")
    record_metric("commit_to_synced_s", auto_sync_checks.commit_is_synced(waiter, kube, argocd, app, sha, tag="v1.1.0"))


def test_declarative_app_syncs_replica_commit(deploy_myapp, kube, argocd, record_metric, waiter):
    app = deploy_myapp()
    sha = step2.commit_prod(app.repo, replicas=3)
    record_metric("commit_to_synced_s", auto_sync_checks.commit_is_synced(waiter, kube, argocd, app, sha, replicas=3))


def test_cli_created_app_syncs_commit(deploy_myapp, kube, argocd, record_metric, waiter):
    """The same promise when the Application was made with `argocd app create ... --sync-policy automated`."""
    app = deploy_myapp(via_cli=True)
    sha = step2.commit_prod(app.repo, tag="v1.2.0")
    record_metric("commit_to_synced_s", auto_sync_checks.commit_is_synced(waiter, kube, argocd, app, sha, tag="v1.2.0"))

# ----- Flux (--engine flux) ------------------------------------------------------------------

def test_flux_kustomization_applies_image_tag_commit(deploy_myapp_flux, kube, flux, record_metric, waiter):
    app = deploy_myapp_flux()
    sha = step2.commit_prod(app.repo, tag="v1.1.0")
    record_metric("commit_to_synced_s", flux_auto_sync.commit_is_applied(waiter, kube, flux, app, sha, tag="v1.1.0"))


def test_flux_kustomization_applies_replica_commit(deploy_myapp_flux, kube, flux, record_metric, waiter):
    app = deploy_myapp_flux()
    sha = step2.commit_prod(app.repo, replicas=3)
    record_metric("commit_to_synced_s", flux_auto_sync.commit_is_applied(waiter, kube, flux, app, sha, replicas=3))
