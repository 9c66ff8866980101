"""Step 3 the Flux way: Kustomizations of Kustomizations. A root Kustomization applies
`clusters/prod/`, which holds two child Kustomizations: `infra` (a CRD and a controller
Deployment standing in for cert-manager, as the Argo CD scenario's infra child; `wait: true`,
so it is Ready only once they are healthy) and `apps` (myapp's prod overlay) with
`dependsOn: infra` — Flux's answer to the pitfall "No sync waves".

The stand-in controller has `minReadySeconds`, so infra takes a few seconds to become Ready:
without `dependsOn`, apps would be applied inside that window (the self-test that drops it
relies on this), with it, only after.

Everything is in the test's namespace, plus the stand-in CRD (cluster-scoped, removed at
teardown).
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import pytest

from gitops_conformance.fixtures import checks, hints, names
from gitops_conformance.fixtures.cleanup import Tracker
from gitops_conformance.fixtures.flux import KUSTOMIZATION, Flux
from gitops_conformance.fixtures.gitrepo import GitRepo
from gitops_conformance.fixtures.plugin import Diagnostics

from .. import step2_applications as myapp
from ..step3_app_of_apps import STAND_IN_IMAGE
from . import step2_kustomizations as fluxs

ROOT_PATH = "clusters/prod"
INFRA_PATH = "infrastructure"
CHILD_INTERVAL = "1m"
INFRA_MIN_READY_SECONDS = 4  # how long infra stays not-Ready after its apply: the window apps must not use
ROOT_APPLY_TIMEOUT = 60.0


@dataclasses.dataclass
class FluxAppOfApps:
    root: str
    namespace: str
    infra: str             # the infra child Kustomization
    apps: str              # the apps child Kustomization (dependsOn infra, unless broken on purpose)
    crd: str               # the stand-in CRD infra installs
    repo: GitRepo
    revision: str          # the commit the root is created at
    create_root: Callable[[], None]  # apply the GitRepository and the root Kustomization; wait until it applied

    @property
    def children(self) -> list[str]:
        return [self.infra, self.apps]


def child_file(name: str) -> str:
    return f"{ROOT_PATH}/{name}.yaml"


def _infra_manifests(namespace: str, group: str) -> dict[str, dict]:
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": f"certificates.{group}", "labels": names.standard_labels()},
           "spec": {"group": group, "scope": "Namespaced",
                    "names": {"plural": "certificates", "singular": "certificate", "kind": "Certificate"},
                    "versions": [{"name": "v1", "served": True, "storage": True,
                                  "schema": {"openAPIV3Schema": {"type": "object",
                                                                 "x-kubernetes-preserve-unknown-fields": True}}}]}}
    deploy = {"apiVersion": "apps/v1", "kind": "Deployment",
              "metadata": {"name": "cert-manager", "namespace": namespace},
              "spec": {"replicas": 1, "minReadySeconds": INFRA_MIN_READY_SECONDS,
                       "selector": {"matchLabels": {"app": "cert-manager"}},
                       "template": {"metadata": {"labels": {"app": "cert-manager"}},
                                    "spec": {"containers": [{"name": "controller", "image": STAND_IN_IMAGE}]}}}}
    return {f"{INFRA_PATH}/crd.yaml": crd, f"{INFRA_PATH}/cert-manager.yaml": deploy,
            f"{INFRA_PATH}/kustomization.yaml": {"apiVersion": "kustomize.config.k8s.io/v1beta1",
                                                 "kind": "Kustomization",
                                                 "resources": ["crd.yaml", "cert-manager.yaml"]}}


def write_child(repo: GitRepo, name: str, namespace: str, source: str, path: str, *,
                depends_on: tuple[str, ...] = (), wait: bool = False, where: str = ROOT_PATH) -> str:
    """A child Kustomization file under the root's path (or `where`); returns its path."""
    doc = fluxs.kustomization(name, namespace, path, interval=CHILD_INTERVAL, source=source,
                              depends_on=depends_on, wait=wait)
    file = f"{where}/{name}.yaml"
    repo.write_yaml(file, doc)
    return file


def add_extra_child(repo: GitRepo, layout: FluxAppOfApps, name: str, *, where: str = ROOT_PATH) -> str:
    """A third child, `extra-<name>/` holding one ConfigMap; returns the child's file."""
    repo.write_yaml(f"extra/{name}/configmap.yaml", {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": layout.namespace},
        "data": {"child": name}})
    return write_child(repo, name, layout.namespace, layout.root, f"extra/{name}", where=where)


@pytest.fixture
def deploy_flux_app_of_apps(flux: Flux, tracker: Tracker, diagnostics: Diagnostics,
                            connect_flux: Callable[..., str], git_repo: Callable[..., GitRepo],
                            namespace: Callable[..., str], unique: Callable[[str], str],
                            waiter: checks.Waiter) -> Callable[..., FluxAppOfApps]:
    """deploy_flux_app_of_apps(**breakage) -> the layout, pushed to Git in a fresh namespace; its
    create_root() then creates the root (a check watching the namespace starts in between).
    `depends_on=False` drops apps' dependsOn (the pitfall), `infra_path` points infra
    elsewhere, `prune=False` turns the root's prune off."""

    def make(*, depends_on: bool = True, infra_path: str = INFRA_PATH, prune: bool = True) -> FluxAppOfApps:
        repo = git_repo("flux-aoa")
        ns = namespace("prod")
        root = unique("root")
        infra, apps = f"{root}-infra", f"{root}-apps"
        group = f"{unique('certs')}.example.com"
        for path, doc in _infra_manifests(ns, group).items():
            repo.write_yaml(path, doc)
        myapp.write_layout(repo, ns)
        write_child(repo, infra, ns, root, infra_path, wait=True)
        write_child(repo, apps, ns, root, myapp.PROD_PATH, depends_on=(infra,) if depends_on else (), wait=True)
        sha = repo.commit_and_push("Add the infra and apps Kustomizations")
        crd = f"certificates.{group}"
        tracker.other.append(("crd", crd, None))
        diagnostics.objects += [(KUSTOMIZATION, infra, ns), (KUSTOMIZATION, apps, ns)]  # the root's: connect_flux
        diagnostics.components = ["source-controller", "kustomize-controller", "notification-controller"]

        def create_root() -> None:
            connect_flux(repo, root, ns, ROOT_PATH, prune=prune)
            waiter.until(fluxs.applied_at(flux, root, ns, sha), timeout=ROOT_APPLY_TIMEOUT,
                         what=f"root Kustomization {ns}/{root} applied (procedure step 3)",
                         expected=f"Ready at {sha[:10]}, the child Kustomizations created",
                         remediation=hints.ON_FAILURE[3])

        return FluxAppOfApps(root=root, namespace=ns, infra=infra, apps=apps, crd=crd, repo=repo, revision=sha,
                             create_root=create_root)

    return make
