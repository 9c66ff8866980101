"""Diagnose, don't just time out: each test causes one kind of failure on the testbed and
asserts the failure message leads with the cause (fixtures/diagnose.py), not just with what
was last observed. Local testbed, run serially: two stop a shared component and restart it."""
from __future__ import annotations

import pytest

from gitops_conformance.fixtures import diagnose
from gitops_conformance.scenarios import step2_applications as step2
from gitops_conformance.suites import auto_sync_checks
from tests.breaking import fails_within

pytestmark = [pytest.mark.testbed, pytest.mark.breaks_setup]

SHORT = 15.0


def _cause(message: str) -> str:
    assert "cause: " in message, message
    return message.split("cause: ", 1)[1].split(". expected ", 1)[0]


@pytest.mark.breaks("suites.auto_sync_checks.commit_is_synced")
def test_stopped_application_controller_is_named(deploy_myapp, kube, argocd, testbed_handle, waiter):
    """An Application made while the application controller is down has no status at all."""
    with testbed_handle.stopped(diagnose.APP_CONTROLLER):
        app = deploy_myapp(wait=False)
        sha = step2.commit_prod(app.repo, tag="v1.1.0")
        message = fails_within(auto_sync_checks.commit_is_synced, waiter, kube, argocd, app, sha, tag="v1.1.0",
                               timeout=SHORT, bound=SHORT)
    cause = _cause(message)
    assert cause.startswith("the application controller is not reconciling: "
                            f"Application {app.name} has no status at all"), message
    assert "argocd-application-controller is not running" in cause and "its last log lines: " in cause, message


@pytest.mark.breaks("suites.auto_sync_checks.commit_is_synced")
def test_stopped_kube_controller_manager_is_named(deploy_myapp, kube, argocd, testbed_handle, waiter):
    """Argo CD applies the new image, but no Deployment controller makes its ReplicaSet: the app
    stays Progressing. The cause is the cluster's controllers, not Argo CD."""
    app = deploy_myapp()
    with testbed_handle.stopped(diagnose.CONTROLLER_MANAGER):
        sha = step2.commit_prod(app.repo, tag="v1.1.0")
        message = fails_within(auto_sync_checks.commit_is_synced, waiter, kube, argocd, app, sha, tag="v1.1.0",
                               timeout=SHORT, bound=SHORT)
    cause = _cause(message)
    assert cause.startswith("the cluster's controllers are not acting: "
                            f"Deployment {app.namespace}/myapp generation"), message
    assert "kube-controller-manager is not running" in cause, message


@pytest.mark.breaks("suites.auto_sync_checks.commit_is_synced")
def test_broken_kustomization_is_reported_in_argo_cds_words(deploy_myapp, kube, argocd, waiter):
    """A kustomization naming a file that is not in Git: Argo CD cannot render the app and
    says why in a ComparisonError; the failure quotes it."""
    app = deploy_myapp()
    overlay = app.repo.read_yaml(f"{step2.PROD_PATH}/kustomization.yaml")[0]
    overlay["resources"].append("hpa.yaml")  # committed without the file
    app.repo.write_yaml(f"{step2.PROD_PATH}/kustomization.yaml", overlay)
    sha = step2.commit_prod(app.repo, tag="v1.1.0")
    message = fails_within(auto_sync_checks.commit_is_synced, waiter, kube, argocd, app, sha, tag="v1.1.0",
                           timeout=SHORT, bound=SHORT)
    cause = _cause(message)
    assert cause.startswith("Argo CD reports ComparisonError: "), message
    assert "hpa.yaml" in cause, message
