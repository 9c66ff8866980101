"""The rbac checks must be able to fail: roles that grant too little, a project whose bounds
are too wide. Local testbed."""
from __future__ import annotations

import json

import pytest

from gitops_conformance.scenarios import step2_applications as step2
from gitops_conformance.suites import rbac_checks
from tests.breaking import fails_within
from gitops_conformance.scenarios import step3_app_of_apps as step3

pytestmark = [pytest.mark.testbed, pytest.mark.breaks_setup]


def _roles_granting_too_little(proj: str) -> list[dict]:
    # developer may only sync (no get); deployer may only get (no sync): each check's grant is missing
    return [{"name": "developer", "policies": [f"p, proj:{proj}:developer, applications, sync, {proj}/*, allow"]},
            {"name": "deployer", "policies": [f"p, proj:{proj}:deployer, applications, get, {proj}/*, allow"]}]


@pytest.mark.breaks("suites.rbac_checks.can_get", "suites.rbac_checks.can_sync")
def test_grant_checks_fail_when_the_roles_lack_the_grant(production_project, argocd, waiter):
    production = production_project(roles=_roles_granting_too_little)
    developer = step3.role_token(argocd, production.project, "developer")
    message = fails_within(rbac_checks.can_get, developer, production.app, "developer", bound=5)
    assert "role developer: get application" in message and "HTTP 403" in message, message

    deployer = step3.role_token(argocd, production.project, "deployer")
    message = fails_within(rbac_checks.can_sync, waiter, deployer, production.app, "deployer", timeout=10, bound=10)
    assert "the sync request was refused" in message and "HTTP 403" in message, message


@pytest.mark.breaks("suites.rbac_checks.create_is_refused")
def test_refusal_check_fails_when_the_project_allows_every_destination(production_project, argocd, kube, tracker,
                                                                       unique):
    production = production_project()
    kube.kubectl("-n", argocd.namespace, "patch", "appprojects.argoproj.io", production.project, "--type=merge",
                 "-p", json.dumps({"spec": {"destinations": [{"server": "*", "namespace": "*"}]}}))
    name = tracker.app(unique("outside-dest"))
    result = argocd.cli("app", "create", name, "--project", production.project, "--repo", production.repo_url,
                        "--path", "apps/myapp/overlays/prod", "--dest-server", step2.IN_CLUSTER,
                        "--dest-namespace", unique("staging"), check=False)
    message = fails_within(rbac_checks.create_is_refused, result, "an Application aimed at a namespace outside prod-*",
                           "do not match any of the allowed destinations in project", bound=1)
    assert "refused with the project's message" in message and "exit 0" in message, message
