"""Step 3: the app-of-apps layout — an AppProject with roles, infra child apps (a manifests
app standing in for cert-manager, a Helm chart standing in for external-secrets, both held
in the test repo because the procedure's internet chart repositories are not reachable
everywhere), the myapp child, the root app with `directory.recurse`, and sync waves so
infra is Healthy before apps start.

Sync waves between Applications only order anything if Argo CD assesses the health of
Application resources, which it does not by default: `enable_application_health` adds the
health check Argo CD documents for this (a global argocd-cm key, set once for the run before
any test starts and restored after the last: see fixtures/hookspecs.py).

Also the procedure's AppProject `production` with its roles (`production_project`), and a
client acting as one of its roles (`role_token`).
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import pytest

from gitops_conformance import redact
from gitops_conformance.fixtures import checks, diagnose, hints, names, probes
from gitops_conformance.fixtures.argocd import ArgoCD
from gitops_conformance.fixtures.cleanup import Tracker
from gitops_conformance.fixtures.gitrepo import GitRepo
from gitops_conformance.fixtures.kube import Kube
from gitops_conformance.fixtures.plugin import Diagnostics
from gitops_conformance.fixtures.providers import Target
from gitops_conformance.scenarios import step1_install as step1
from gitops_conformance.scenarios import step2_applications as step2


ROOT_PATH = "argocd-apps"
WAVE = "argocd.argoproj.io/sync-wave"
HEALTH_KEY = "resource.customizations.health.argoproj.io_Application"
APPLICATION_HEALTH_LUA = """hs = {}
hs.status = "Progressing"
hs.message = ""
if obj.status ~= nil then
  if obj.status.health ~= nil then
    hs.status = obj.status.health.status
    if obj.status.health.message ~= nil then
      hs.message = obj.status.health.message
    end
  end
end
return hs
"""


def enable_application_health(kube: Kube, namespace: str = "argocd"):
    """Set the Application health check in argocd-cm; returns a function restoring the old value."""
    cm = kube.get("configmap", "argocd-cm", namespace) or {}
    previous = (cm.get("data") or {}).get(HEALTH_KEY)
    if previous == APPLICATION_HEALTH_LUA:
        return lambda: None  # already there (the user's, or a run's that was killed): changed nothing
    kube.patch("configmap", "argocd-cm", namespace, {"data": {HEALTH_KEY: APPLICATION_HEALTH_LUA}})

    def restore() -> None:
        kube.patch("configmap", "argocd-cm", namespace, {"data": {HEALTH_KEY: previous}})

    return restore


def project(name: str, repo_url: str) -> dict:
    """The procedure's AppProject `production` (named per test), roles developer and deployer."""
    return {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "AppProject",
        "metadata": {"name": name, "namespace": "argocd", "labels": names.standard_labels()},
        "spec": {
            "description": "Production applications",
            "sourceRepos": [repo_url],
            "destinations": [{"namespace": "prod-*", "server": step2.IN_CLUSTER}],
            "clusterResourceWhitelist": [{"group": "*", "kind": "*"}],
            "orphanedResources": {"warn": True},
            "roles": [
                {"name": "developer", "description": "Developer read-only access",
                 "policies": [f"p, proj:{name}:developer, applications, get, {name}/*, allow"],
                 "groups": ["developers"]},
                {"name": "deployer", "description": "Deploy access for CI/CD",
                 "policies": [f"p, proj:{name}:deployer, applications, sync, {name}/*, allow",
                              f"p, proj:{name}:deployer, applications, get, {name}/*, allow"]},
            ],
        },
    }


def _child(name: str, repo_url: str, path: str, dest_ns: str, wave: str | None, project: str = "default") -> dict:
    app = step2.application(name, repo_url, path, dest_ns, project=project)
    if wave is not None:
        app["metadata"]["annotations"] = {WAVE: wave}
    return app


# The infra children are stand-ins (a CRD and a controller Deployment, a local chart), not
# cert-manager and external-secrets: their pods run myapp's image, which every provider has
# (a cluster runs them for real; upstream's controller images are not built offline)
STAND_IN_IMAGE = f"{step2.DEFAULT_IMAGE}:v1.0.0"


def _cert_manager_stand_in(group: str) -> dict[str, object]:
    """A CRD plus a controller Deployment: what an infra app like cert-manager installs first."""
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": f"certificates.{group}"},
           "spec": {"group": group, "scope": "Namespaced",
                    "names": {"plural": "certificates", "singular": "certificate", "kind": "Certificate"},
                    "versions": [{"name": "v1", "served": True, "storage": True,
                                  "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}]}}
    deploy = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "cert-manager"},
              "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "cert-manager"}},
                       "template": {"metadata": {"labels": {"app": "cert-manager"}},
                                    "spec": {"containers": [{"name": "controller", "image": STAND_IN_IMAGE}]}}}}
    return {"infra-src/cert-manager/crd.yaml": crd, "infra-src/cert-manager/deployment.yaml": deploy}


def _external_secrets_chart() -> dict[str, str]:
    """A small local Helm chart (the repo-server renders it with helm, as for a chart repo)."""
    return {
        "charts/external-secrets/Chart.yaml": "apiVersion: v2\nname: external-secrets\nversion: 0.9.0\n",
        "charts/external-secrets/values.yaml": f"replicas: 1\nimage: {STAND_IN_IMAGE}\n",
        "charts/external-secrets/templates/deployment.yaml": (
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}\nspec:\n"
            "  replicas: {{ .Values.replicas }}\n  selector:\n    matchLabels: {app: external-secrets}\n"
            "  template:\n    metadata:\n      labels: {app: external-secrets}\n    spec:\n"
            "      containers:\n      - name: controller\n        image: {{ .Values.image }}\n"),
    }


@dataclasses.dataclass
class AppOfApps:
    root: str
    project: str
    infra: list[str]
    apps: list[str]
    prod_namespace: str
    repo: GitRepo

    @property
    def children(self) -> list[str]:
        return self.infra + self.apps

    @property
    def namespaces(self) -> list[str]:
        """Namespaces the children create (CreateNamespace), for cleanup."""
        prefix = self.root.removesuffix("-root-app")
        return [self.prod_namespace, f"{self.prod_namespace}-dev", f"{prefix}-cert-manager", f"{prefix}-external-secrets"]


def write_layout(repo: GitRepo, prefix: str, *, child_dir_for_myapp: str = f"{ROOT_PATH}/apps",
                 waves: bool = True) -> AppOfApps:
    """Write projects/, infra/ and apps/ under argocd-apps/ plus their sources (not committed).
    Self-tests break it: `child_dir_for_myapp` puts the myapp child outside the root's path,
    `waves=False` leaves out the sync-wave annotations (the pitfall "No sync waves")."""
    infra_wave, app_wave = ("-1", "1") if waves else (None, None)
    proj = f"{prefix}-production"
    prod_ns = f"prod-{prefix}"
    cert_manager, external_secrets, app = f"{prefix}-cert-manager", f"{prefix}-external-secrets", f"{prefix}-myapp"
    repo.write_yaml(f"{ROOT_PATH}/projects/production.yaml", project(proj, repo.url))
    for path, doc in _cert_manager_stand_in(f"{prefix}.conformance.example.com").items():
        repo.write_yaml(path, doc)
    for path, text in _external_secrets_chart().items():
        repo.write(path, text)
    repo.write_yaml(f"{ROOT_PATH}/infra/cert-manager.yaml",
                    _child(cert_manager, repo.url, "infra-src/cert-manager", f"{prefix}-cert-manager", infra_wave))
    repo.write_yaml(f"{ROOT_PATH}/infra/external-secrets.yaml",
                    _child(external_secrets, repo.url, "charts/external-secrets", f"{prefix}-external-secrets", infra_wave))
    step2.write_layout(repo, prod_ns)
    repo.write_yaml(f"{child_dir_for_myapp}/myapp.yaml", _child(app, repo.url, step2.PROD_PATH, prod_ns, app_wave, project=proj))
    return AppOfApps(root=f"{prefix}-root-app", project=proj, infra=[cert_manager, external_secrets], apps=[app],
                     prod_namespace=prod_ns, repo=repo)


def root_app(layout: AppOfApps) -> dict:
    """The procedure's root-app: path argocd-apps, directory.recurse, automated prune+selfHeal."""
    app = step2.application(layout.root, layout.repo.url, ROOT_PATH, "argocd")
    app["spec"]["source"]["directory"] = {"recurse": True, "jsonnet": {}}
    app["spec"]["syncPolicy"]["syncOptions"] = []  # the procedure's root app has none
    return app


def add_child(layout: AppOfApps, name: str) -> str:
    """A new child Application committed under argocd-apps/apps (the root must pick it up)."""
    path = f"{ROOT_PATH}/apps/{name}.yaml"
    # the dev overlay sets its own namespace (kustomize), so that is the destination to create
    layout.repo.write_yaml(path, _child(name, layout.repo.url, "apps/myapp/overlays/dev", f"{layout.prod_namespace}-dev", "1"))
    return path


def role_token(argocd: ArgoCD, project: str, role: str) -> ArgoCD:
    """`argocd proj role create-token <project> <role>`: an API client acting as that role."""
    token = argocd.cli("proj", "role", "create-token", project, role, "--token-only").stdout.strip()
    redact.register_secret(token)
    return argocd.with_token(token)


def pytest_conformance_shared_settings(target: Target, kube: Kube):
    """Argo CD's documented health check for Application resources, so sync waves between
    child apps wait for health (step 3): set once for the run (fixtures/hookspecs.py)."""
    if target.engine != "argocd":
        return None
    return enable_application_health(kube, target.argocd_namespace)


@pytest.fixture
def deploy_app_of_apps(kube: Kube, argocd: ArgoCD, tracker: Tracker, diagnostics: Diagnostics,
                       git_repo: Callable[..., GitRepo], unique: Callable[[str], str]):
    """deploy_app_of_apps(myapp_dir=..., waves=True) -> AppOfApps: the step 3 layout committed and the root
    app applied with kubectl (not waited for: the suites observe the rollout themselves)."""
    def make(*, myapp_dir: str = f"{ROOT_PATH}/apps", waves: bool = True) -> AppOfApps:
        repo = git_repo("gitops-repo")
        layout = write_layout(repo, unique("aoa"), child_dir_for_myapp=myapp_dir, waves=waves)
        repo.commit_and_push("Add app-of-apps structure")
        step1.register_https(argocd, kube, repo)
        tracker.projects.append(layout.project)
        tracker.namespaces.extend(layout.namespaces)
        diagnostics.apps.extend([layout.root, *layout.children])
        root = root_app(layout)
        tracker.app(layout.root)
        tracker.apps.extend(layout.children)  # normally deleted by the root's cascade; swept if not
        kube.apply(root)
        return layout

    return make


@dataclasses.dataclass
class ProductionProject:
    project: str
    app: str
    namespace: str
    repo_url: str


@pytest.fixture
def production_project(kube: Kube, argocd: ArgoCD, tracker: Tracker, diagnostics: Diagnostics,
                       git_repo: Callable[..., GitRepo], namespace: Callable[..., str],
                       unique: Callable[[str], str], waiter: checks.Waiter) -> Callable[..., ProductionProject]:
    """production_project(roles=None) -> the procedure's AppProject `production` (named per
    test) and the myapp Application in it. `roles(project_name)` replaces the project's roles
    (a self-test grants too much on purpose)."""
    def make(*, roles: Callable[[str], list[dict]] | None = None) -> ProductionProject:
        repo = git_repo("prod-repo")
        ns = namespace("prod", create=False)
        step2.write_layout(repo, ns)
        sha = repo.commit_and_push("Add myapp application manifests")
        step1.register_https(argocd, kube, repo)
        proj = project(unique("production"), repo.url)
        if roles is not None:
            proj["spec"]["roles"] = roles(proj["metadata"]["name"])
        tracker.projects.append(proj["metadata"]["name"])
        kube.apply(proj)
        name = unique("myapp-prod")
        diagnostics.apps.append(name)
        step2.apply(kube, tracker, step2.application(
            name, repo.url, step2.PROD_PATH, ns, project=proj["metadata"]["name"]))
        waiter.until(probes.app_synced(argocd, name, revision=sha), timeout=step2.FIRST_SYNC_TIMEOUT,
                     what=f"first sync of {name} in project {proj['metadata']['name']}",
                     expected="Synced and Healthy", remediation=hints.ON_FAILURE[3],
                     diagnose=diagnose.for_app(argocd, name, namespace=ns, deployments=["myapp"]))
        return ProductionProject(project=proj["metadata"]["name"], app=name, namespace=ns, repo_url=repo.url)

    return make
