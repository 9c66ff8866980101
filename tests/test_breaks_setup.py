"""Every check must be able to fail: each test sets a scenario up wrongly on purpose and
asserts the item's check FAILS, within its bound, with a message that names the cause.

These run on the local testbed and must run serially: some restart a component of the
shared testbed (the application controller, the API server) and restore it afterwards.
"""
from __future__ import annotations

import pytest

from gitops_conformance.fixtures.changes import ChangeLog
from gitops_conformance.scenarios import step1_install as step1
from gitops_conformance.scenarios import step2_applications as step2
from gitops_conformance.scenarios import step3_app_of_apps as step3
from gitops_conformance.suites import app_of_apps_checks as aoa
from gitops_conformance.suites import (auto_sync_checks, install_checks, prune_checks, rbac_checks,
                                       repo_auth_checks, self_heal_checks)
from tests.breaking import fails_within

pytestmark = [pytest.mark.testbed, pytest.mark.breaks_setup]

SHORT = 15.0  # a bound the working setup meets many times over (see the suites' metrics)


@pytest.mark.breaks("suites.self_heal_checks.drift_is_reverted")
def test_self_heal_check_fails_when_self_heal_is_off(deploy_myapp, kube, argocd, waiter):
    app = deploy_myapp(changes={"spec.syncPolicy.automated.selfHeal": False})
    changed_at = step2.drift(kube, app.namespace, "scale")
    message = fails_within(self_heal_checks.drift_is_reverted, waiter, kube, argocd, app, "scale", since=changed_at,
                           timeout=SHORT, bound=SHORT)
    assert "replicas back to 5" in message and "replicas=1" in message
    assert "selfHeal=false" in message, message


@pytest.mark.breaks("suites.prune_checks.removed_manifest_is_pruned")
def test_prune_check_fails_when_prune_is_off(deploy_myapp, kube, argocd, waiter):
    app = deploy_myapp(changes={"spec.syncPolicy.automated.prune": False})
    sha = step2.remove_service(app.repo)
    message = fails_within(prune_checks.removed_manifest_is_pruned, waiter, kube, argocd, app, sha, timeout=SHORT,
                           bound=SHORT)
    assert f"service {app.namespace}/myapp still exists" in message
    assert "prune=false" in message, message


@pytest.mark.breaks("suites.auto_sync_checks.commit_is_synced")
def test_auto_sync_check_fails_without_webhook_and_polling(deploy_myapp, kube, argocd, testbed_handle, waiter):
    app = deploy_myapp()
    app.repo.on_push = None  # no webhook for this push ...
    testbed_handle.start_component("argocd-application-controller", resync_seconds=0)  # ... and no polling
    try:
        sha = step2.commit_prod(app.repo, tag="v9.9.9")
        message = fails_within(auto_sync_checks.commit_is_synced, waiter, kube, argocd, app, sha, tag="v9.9.9",
                               timeout=SHORT, bound=SHORT)
    finally:
        testbed_handle.start_component("argocd-application-controller")
    assert "has not picked up the commit" in message, message


@pytest.mark.breaks("suites.install_checks.api_version")
def test_install_check_fails_when_api_server_is_stopped(argocd, testbed_handle, waiter):
    testbed_handle.stop_component("argocd-server")
    try:
        message = fails_within(install_checks.api_version, waiter, argocd, timeout=5, bound=5)
    finally:
        testbed_handle.start_component("argocd-server")
    assert "no answer from" in message, message
    assert "cause: argocd-server is not running" in message, message  # the diagnosis names it
    install_checks.api_version(waiter, argocd)  # and the restored server answers again


@pytest.mark.breaks("suites.repo_auth_checks.connection_successful")
def test_repo_auth_check_fails_with_a_wrong_credential(git_repo, argocd, kube, tracker, unique, waiter):
    repo = git_repo("bad-cred")
    repo.write("README.md", "gitops\n")
    repo.commit_and_push("init")
    # declared as a repository Secret (`argocd repo add` would refuse a wrong token outright)
    name = unique("repo-bad-cred")
    tracker.other.append(("secret", name, argocd.namespace))
    step1.declare_repository_secret(kube, argocd.namespace, name, repo.url, repo.username, "wrong-" + repo.token[:6])
    message = fails_within(repo_auth_checks.connection_successful, waiter, argocd, repo.url, "HTTP(S) with a token",
                     timeout=SHORT, bound=SHORT)
    assert "authentication required" in message, message
    assert repo.token[:6] not in message


@pytest.mark.breaks("suites.app_of_apps_checks.children_roll_out")
def test_app_of_apps_check_fails_when_a_child_is_outside_the_root_path(deploy_app_of_apps, argocd, waiter):
    layout = deploy_app_of_apps(myapp_dir="other-apps")  # committed, but not under argocd-apps/
    message = fails_within(aoa.children_roll_out, waiter, argocd, layout, timeout=30, bound=30)
    assert f"missing children: {layout.apps[0]}" in message, message


@pytest.mark.breaks("suites.rbac_checks.cannot_sync")
def test_rbac_check_fails_when_a_role_grants_sync_to_everyone(production_project, argocd):
    production = production_project(roles=lambda proj: [
        {"name": "developer", "policies": [f"p, proj:{proj}:developer, applications, *, {proj}/*, allow"]}])
    developer = step3.role_token(argocd, production.project, "developer")
    message = fails_within(rbac_checks.cannot_sync, developer, production.app, "developer", bound=5)
    assert "the role grants sync" in message, message


@pytest.mark.breaks("suites.repo_auth_checks.add_is_refused")
def test_refusal_check_fails_when_the_credential_is_accepted(git_repo, argocd, kube):
    """The "wrong token is refused" check, handed a token that is right: `argocd repo add` succeeds
    and the check must say it was not refused."""
    repo = git_repo("auth-not-bad")
    repo.write("README.md", "gitops\n")
    repo.commit_and_push("init")
    result = step1.register_https(argocd, kube, repo, check=False)  # the real token
    message = fails_within(repo_auth_checks.add_is_refused, result, "argocd repo add with a wrong token",
                           ("authentication", "auth", "401", "credentials"), bound=1)
    assert "argocd repo add refuses the repository" in message and "exit 0" in message, message
    assert repo.token not in message


@pytest.mark.breaks("suites.prune_checks.prune_last")
def test_prune_last_check_fails_without_prune_last(deploy_myapp, kube, argocd, waiter):
    """syncOptions without PruneLast=true: Argo CD prunes the Service first, in the same wave as
    the Deployment's apply, and the cluster's own watch shows it."""
    app = deploy_myapp(changes={"spec.syncPolicy.syncOptions": ["CreateNamespace=true"]})
    with ChangeLog(kube, app.namespace) as changes:
        sha = step2.remove_service(app.repo)
        prune_checks.removed_manifest_is_pruned(waiter, kube, argocd, app, sha)  # prune itself still works
        message = fails_within(prune_checks.prune_last, waiter, changes, app, timeout=SHORT, bound=SHORT)
    assert "the prune came first" in message and "Service/myapp deletion" in message, message
    assert "Deployment/myapp modified" in message and "PruneLast=true" in message, message


@pytest.mark.breaks("suites.prune_checks.app_deletion_outcome")
def test_finalizer_check_fails_without_the_finalizer(deploy_myapp, kube, argocd, waiter):
    app = deploy_myapp(changes={"metadata.finalizers": None})  # the pitfall "Missing finalizers"
    finalizers = step2.delete_application(kube, argocd, app.name)
    message = fails_within(prune_checks.app_deletion_outcome, waiter, kube, argocd, app, finalizers,
                           expect_cascade=True, timeout=SHORT, bound=2 * SHORT)
    assert "the Application had finalizers []" in message and "deployment" in message.lower(), message
    assert "still exists" in message and "resources-finalizer.argocd.argoproj.io" in message, message


@pytest.mark.breaks("suites.prune_checks.app_deletion_outcome")
def test_orphan_check_fails_when_the_finalizer_cascades(deploy_myapp, kube, argocd, waiter):
    """The pitfall demonstration expects an orphan; with the procedure's finalizer there is none."""
    app = deploy_myapp()
    finalizers = step2.delete_application(kube, argocd, app.name)
    message = fails_within(prune_checks.app_deletion_outcome, waiter, kube, argocd, app, finalizers,
                           expect_cascade=False, timeout=2 * SHORT, bound=2 * SHORT)
    assert "resources-finalizer.argocd.argoproj.io" in message and "left running (orphaned)" in message, message
    assert "observed Deployment deleted" in message or "observed Deployment being deleted" in message, message
