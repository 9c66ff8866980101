"""Step 3's access control the Flux way (multi-tenancy, as in Flux's flux2-multi-tenancy
setup): a tenant namespace with its own GitRepository and a ServiceAccount bound to
`cluster-admin` by a RoleBinding, so it has every right in its namespace and none outside it;
the tenant's Kustomizations apply as that ServiceAccount (`serviceAccountName`). A second
namespace (`platform`) holds a GitRepository of its own, which the tenant must not use:
kustomize-controller refuses cross-namespace source references when it runs with
`--no-cross-namespace-refs=true` (the lockdown).

Git holds two paths: `tenant/own/` (a ConfigMap in the tenant namespace) and `tenant/outside/`
(a ConfigMap in the platform namespace, which the tenant must not be able to create).
Both namespaces are the test's own, deleted at teardown with everything in them.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import pytest

from gitops_conformance.fixtures import checks, names
from gitops_conformance.fixtures.flux import GITREPOSITORY, KUSTOMIZATION, Flux
from gitops_conformance.fixtures.gitrepo import GitRepo
from gitops_conformance.fixtures.kube import Kube
from gitops_conformance.fixtures.plugin import Diagnostics

from . import step2_kustomizations as fluxs

OWN_PATH = "tenant/own"
OUTSIDE_PATH = "tenant/outside"
CONFIGMAP = "tenant-config"


@dataclasses.dataclass
class FluxTenant:
    namespace: str
    service_account: str | None     # None: the tenant's Kustomizations apply as the controller itself
    platform_namespace: str         # another team's namespace, with a GitRepository of its own
    source: str                     # the GitRepository's name (the same in both namespaces)
    repo: GitRepo
    revision: str
    add_kustomization: Callable[..., str]  # add_kustomization(path, source_namespace=None) -> its name


def _labelled(doc: dict) -> dict:
    doc["metadata"]["labels"] = names.standard_labels()
    return doc


def tenant_rbac(namespace: str, service_account: str) -> list[dict]:
    """The tenant's reconciler identity: all rights in its namespace (cluster-admin through a
    RoleBinding, as flux2-multi-tenancy does), nothing cluster-wide."""
    meta = {"name": service_account, "namespace": namespace}
    return [_labelled({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": dict(meta)}),
            _labelled({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": dict(meta),
                       "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                   "name": "cluster-admin"},
                       "subjects": [{"kind": "ServiceAccount", "name": service_account, "namespace": namespace}]})]


def _configmap(namespace: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": CONFIGMAP, "namespace": namespace},
            "data": {"owner": "tenant"}}


@pytest.fixture
def flux_tenant(kube: Kube, flux: Flux, diagnostics: Diagnostics, git_repo: Callable[..., GitRepo],
                namespace: Callable[..., str], unique: Callable[[str], str], target,
                waiter: checks.Waiter) -> Callable[..., FluxTenant]:
    """flux_tenant(service_account=True) -> the tenant set up (RBAC, both GitRepositories);
    `service_account=False` leaves serviceAccountName off the tenant's Kustomizations (the
    self-test: then they apply with the controller's own rights)."""

    def make(*, service_account: bool = True) -> FluxTenant:
        repo = git_repo("tenant")
        ns, platform = namespace("tenant"), namespace("platform")
        repo.write_yaml(f"{OWN_PATH}/configmap.yaml", _configmap(ns))
        repo.write_yaml(f"{OUTSIDE_PATH}/configmap.yaml", _configmap(platform))
        sha = repo.commit_and_push("The tenant's manifests")
        source, sa = unique("tenant-source"), unique("tenant-reconciler")
        url = fluxs.https_url(repo, target.git.https_base_url)
        docs = tenant_rbac(ns, sa)
        for where in (ns, platform):
            docs += [fluxs.auth_secret(f"{source}-auth", where, repo.username, repo.token, target.git.https_ca_pem),
                     fluxs.git_repository(source, where, url, f"{source}-auth")]
            diagnostics.objects.append((GITREPOSITORY, source, where))
        kube.apply(docs)
        diagnostics.components = ["source-controller", "kustomize-controller"]
        for where in (ns, platform):
            fluxs.wait_source_ready(waiter, flux, source, where, sha)

        def add_kustomization(path: str, *, source_namespace: str | None = None) -> str:
            name = unique("tenant-" + path.rsplit("/", 1)[-1])
            diagnostics.objects.append((KUSTOMIZATION, name, ns))
            kube.apply(fluxs.kustomization(name, ns, path, source=source, source_namespace=source_namespace,
                                           service_account=sa if service_account else None))
            return name

        return FluxTenant(namespace=ns, service_account=sa if service_account else None, platform_namespace=platform,
                          source=source, repo=repo, revision=sha, add_kustomization=add_kustomization)

    return make

