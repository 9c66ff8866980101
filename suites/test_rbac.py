"""Validation: RBAC enforces project-level access controls (procedure step 3, AppProject
`production` with roles developer and deployer, destinations prod-*, sourceRepos)."""
from __future__ import annotations

import pytest

from gitops_conformance.scenarios.flux import step3_tenancy as fluxs_tenancy
from gitops_conformance.scenarios import step1_install as step1
from gitops_conformance.scenarios import step2_applications as step2
from gitops_conformance.suites import rbac_checks
from gitops_conformance.suites.flux import rbac_checks as flux_rbac_checks
from gitops_conformance.scenarios import step3_app_of_apps as step3

pytestmark = pytest.mark.validation("rbac")


@pytest.fixture
def production(production_project):
    return production_project()


def test_developer_can_get_but_not_sync(production, argocd, record_check):
    developer = step3.role_token(argocd, production.project, "developer")
    record_check("developer get", "allowed", rbac_checks.can_get(developer, production.app, "developer"), True)
    record_check("developer sync", "denied", rbac_checks.cannot_sync(developer, production.app, "developer"), True)


def test_deployer_can_sync(production, argocd, record_check, waiter):
    deployer = step3.role_token(argocd, production.project, "deployer")
    record_check("deployer sync", "allowed", rbac_checks.can_sync(waiter, deployer, production.app, "deployer"), True)


def test_destination_outside_project_is_refused(production, argocd, tracker, unique, record_check):
    name = tracker.app(unique("outside-dest"))
    result = argocd.cli("app", "create", name, "--project", production.project, "--repo", production.repo_url,
                        "--path", "apps/myapp/overlays/prod", "--dest-server", step2.IN_CLUSTER,
                        "--dest-namespace", unique("staging"), check=False)
    seen = rbac_checks.create_is_refused(result, "an Application aimed at a namespace outside prod-*",
                                         "do not match any of the allowed destinations in project")
    record_check("destination outside prod-*", "refused by the project", seen, True)


def test_repo_outside_source_repos_is_refused(production, argocd, kube, git_repo, tracker, unique, record_check):
    other = git_repo("not-in-source-repos")
    other.write("README.md", "not for production\n")
    other.commit_and_push("init")
    step1.register_https(argocd, kube, other)  # reachable and authorised: only the project may refuse it
    name = tracker.app(unique("outside-repo"))
    result = argocd.cli("app", "create", name, "--project", production.project, "--repo", other.url,
                        "--path", ".", "--dest-server", step2.IN_CLUSTER,
                        "--dest-namespace", production.namespace, check=False)
    seen = rbac_checks.create_is_refused(result, "an Application from a repo not in sourceRepos",
                                         "is not permitted in project")
    record_check("repo outside sourceRepos", "refused by the project", seen, True)


# ----- Flux (--engine flux) ------------------------------------------------------------------

def test_flux_tenant_cannot_create_outside_its_namespace(flux_tenant, flux, kube, record_check, waiter):
    tenant = flux_tenant()
    own = tenant.add_kustomization(fluxs_tenancy.OWN_PATH)
    outside = tenant.add_kustomization(fluxs_tenancy.OUTSIDE_PATH)
    seen = flux_rbac_checks.tenant_is_confined(waiter, flux, kube, tenant, own, outside)
    record_check("tenant confined to its namespace", "own namespace applied; another refused (forbidden)", seen, True)


def test_flux_cross_namespace_source_is_refused(flux_tenant, flux, kube, record_check, waiter):
    tenant = flux_tenant()
    name = tenant.add_kustomization(fluxs_tenancy.OWN_PATH, source_namespace=tenant.platform_namespace)
    seen = flux_rbac_checks.cross_namespace_source_is_refused(waiter, flux, kube, tenant, name)
    record_check("cross-namespace sourceRef", "refused (AccessDenied)", seen, True)
