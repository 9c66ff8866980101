"""Step 2, myapp deployed from Git: the repository layout as the procedure writes it
(`apps/myapp/base` with deployment, service, kustomization; overlays dev/staging/prod, prod in
its own namespace with 5 replicas and an image tag), its Application exactly as the procedure
writes it (created with `kubectl apply` or `argocd app create`), the `deploy_myapp` factory,
and the changes a developer (a commit) or an operator (kubectl) makes to it afterwards.

One difference, on purpose: the procedure's namespace is `production`; each test gets a
unique namespace instead, so tests are independent and leave nothing shared behind.
"""
from __future__ import annotations

import copy
import dataclasses
import time
from typing import Callable

import pytest

from gitops_conformance.fixtures import checks, diagnose, hints, names, probes
from gitops_conformance.fixtures.argocd import ArgoCD
from gitops_conformance.fixtures.cleanup import Tracker
from gitops_conformance.fixtures.gitrepo import GitRepo
from gitops_conformance.fixtures.kube import Kube
from gitops_conformance.fixtures.plugin import Diagnostics
from gitops_conformance.scenarios import step1_install as step1


# ----- the repository layout -------------------------------------------------------------

DEFAULT_IMAGE = "ghcr.io/username/myapp"  # kwok runs no container, so the image is never pulled
PROD_PATH = "apps/myapp/overlays/prod"


def base_files(image: str = DEFAULT_IMAGE, tag: str = "v1.0.0", replicas: int = 3) -> dict[str, dict]:
    return {
        "apps/myapp/base/kustomization.yaml": {
            "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
            "resources": ["deployment.yaml", "service.yaml"]},
        "apps/myapp/base/deployment.yaml": {
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "myapp"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "myapp"}},
                     "template": {"metadata": {"labels": {"app": "myapp"}},
                                  "spec": {"containers": [{"name": "myapp", "image": f"{image}:{tag}",
                                                           "ports": [{"containerPort": 8080}]}]}}}},
        "apps/myapp/base/service.yaml": {
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": "myapp"},
            "spec": {"selector": {"app": "myapp"}, "ports": [{"port": 80, "targetPort": 8080}]}},
    }


def overlay(namespace: str, replicas: int, image: str = DEFAULT_IMAGE, tag: str = "v1.0.0") -> dict:
    return {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
            "namespace": namespace, "resources": ["../../base"],
            "replicas": [{"name": "myapp", "count": replicas}],
            "images": [{"name": image, "newTag": tag}]}


def write_layout(repo: GitRepo, prod_namespace: str, *, image: str = DEFAULT_IMAGE, tag: str = "v1.0.0",
                 prod_replicas: int = 5) -> None:
    """`mkdir -p apps/myapp/...` and the procedure's files (not yet committed)."""
    for path, doc in base_files(image).items():
        repo.write_yaml(path, doc)
    repo.write_yaml(f"{PROD_PATH}/kustomization.yaml", overlay(prod_namespace, prod_replicas, image, tag))
    repo.write_yaml("apps/myapp/overlays/staging/kustomization.yaml", overlay(f"{prod_namespace}-staging", 2, image, tag))
    repo.write_yaml("apps/myapp/overlays/dev/kustomization.yaml", overlay(f"{prod_namespace}-dev", 1, image, tag))


# ----- what happens to myapp afterwards (When): a developer's commit, an operator's kubectl ----

def prod_change(*, tag: str | None = None, replicas: int | None = None) -> str:
    """A change to the prod overlay, in words: "tag=v1.1.0, replicas=3"."""
    return ", ".join(f"{k}={v}" for k, v in (("tag", tag), ("replicas", replicas)) if v is not None)


def commit_prod(repo: GitRepo, *, tag: str | None = None, replicas: int | None = None) -> str:
    """A developer's commit to the prod overlay (image tag, replica count), pushed; its sha."""
    set_prod(repo, tag=tag, replicas=replicas)
    return repo.commit_and_push(f"Change prod: {prod_change(tag=tag, replicas=replicas)}")


# Out-of-band changes an operator makes with kubectl, which the engine must undo (self-heal).
DRIFTS = {
    "scale": ("scale", "deployment/myapp", "--replicas=1"),
    "set-image": ("set", "image", "deployment/myapp", "myapp=ghcr.io/username/myapp:hotfix"),
    "delete-service": ("delete", "service", "myapp", "--wait=true"),
    "hpa-scale": ("scale", "deployment/myapp", "--replicas=2"),  # what an HPA would do (step 6's drift alerts)
}


def drift(kube, namespace: str, how: str) -> float:
    """`kubectl scale|set image|delete service` on myapp (DRIFTS); returns when, time.monotonic()."""
    kube.kubectl("-n", namespace, *DRIFTS[how])
    return time.monotonic()


PRUNE_COMMIT_REPLICAS = 4  # the removal commit also scales myapp: an apply the watch can see


def remove_service(repo: GitRepo) -> str:
    """A commit that removes service.yaml from Git (and scales myapp to 4, so that the sync also
    applies something: PruneLast orders the prune after it), pushed; its sha."""
    base = repo.read_yaml("apps/myapp/base/kustomization.yaml")[0]
    base["resources"] = [r for r in base["resources"] if r != "service.yaml"]
    repo.write_yaml("apps/myapp/base/kustomization.yaml", base)
    repo.delete("apps/myapp/base/service.yaml")
    set_prod(repo, replicas=PRUNE_COMMIT_REPLICAS)
    return repo.commit_and_push(f"Remove the myapp Service, scale myapp to {PRUNE_COMMIT_REPLICAS}")


def delete_application(kube, argocd, name: str) -> list[str]:
    """`kubectl delete application <name>` (not waited for); the finalizers it carried."""
    finalizers = ((argocd.app(name) or {}).get("metadata") or {}).get("finalizers") or []
    kube.kubectl("-n", argocd.namespace, "delete", "application", name, "--wait=false")
    return finalizers


def set_prod(repo: GitRepo, *, tag: str | None = None, replicas: int | None = None) -> None:
    """Edit the prod overlay as a developer would (image tag, replica count)."""
    path = f"{PROD_PATH}/kustomization.yaml"
    doc = repo.read_yaml(path)[0]
    if tag is not None:
        doc["images"][0]["newTag"] = tag
    if replicas is not None:
        doc["replicas"][0]["count"] = replicas
    repo.write_yaml(path, doc)


# ----- the Application, declarative or through the CLI ------------------------------------

IN_CLUSTER = "https://kubernetes.default.svc"
RESOURCES_FINALIZER = "resources-finalizer.argocd.argoproj.io"


def application(name: str, repo_url: str, path: str, dest_namespace: str, *, project: str = "default",
                revision: str = "main", automated: bool = True, prune: bool = True, self_heal: bool = True,
                finalizer: bool = True, namespace: str = "argocd") -> dict:
    """The procedure's myapp-prod Application (automated prune + selfHeal, allowEmpty false,
    CreateNamespace, PruneLast, retry with backoff, the resources finalizer, history limit)."""
    spec = {
        "project": project,
        "source": {"repoURL": repo_url, "targetRevision": revision, "path": path},
        "destination": {"server": IN_CLUSTER, "namespace": dest_namespace},
        "syncPolicy": {
            "syncOptions": ["CreateNamespace=true", "PruneLast=true"],
            # namespaces made by CreateNamespace carry the run label, so the sweep finds them
            "managedNamespaceMetadata": {"labels": names.standard_labels()},
            "retry": {"limit": 5, "backoff": {"duration": "5s", "factor": 2, "maxDuration": "3m"}},
        },
        "revisionHistoryLimit": 10,
    }
    if automated:
        spec["syncPolicy"]["automated"] = {"prune": prune, "selfHeal": self_heal, "allowEmpty": False}
    meta = {"name": name, "namespace": namespace, "labels": names.standard_labels()}
    if finalizer:
        meta["finalizers"] = [RESOURCES_FINALIZER]
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application", "metadata": meta, "spec": spec}


def with_changes(app: dict, **paths) -> dict:
    """A copy with dotted-path changes, e.g. with_changes(app, **{"spec.syncPolicy.automated.selfHeal": False})."""
    out = copy.deepcopy(app)
    for dotted, value in paths.items():
        node = out
        *parents, leaf = dotted.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        if value is None:
            node.pop(leaf, None)
        else:
            node[leaf] = value
    return out


def apply(kube: Kube, tracker: Tracker, app: dict) -> str:
    """`kubectl apply -f argocd-apps/myapp-prod.yaml`"""
    tracker.app(app["metadata"]["name"])
    kube.apply(app)
    return app["metadata"]["name"]


def create_with_cli(argocd: ArgoCD, tracker: Tracker, name: str, repo_url: str, path: str, dest_namespace: str,
                    *, revision: str = "main") -> str:
    """`argocd app create myapp-prod --repo ... --sync-policy automated --auto-prune --self-heal`
    (plus CreateNamespace, since the CLI path has no namespace of its own), then labelled
    for the session sweep."""
    tracker.app(name)
    argocd.cli("app", "create", name, "--repo", repo_url, "--path", path, "--revision", revision,
               "--dest-server", IN_CLUSTER, "--dest-namespace", dest_namespace,
               "--sync-policy", "automated", "--auto-prune", "--self-heal",
               "--sync-option", "CreateNamespace=true",
               "--label", f"{names.RUN_ID_LABEL}={names.run_id()}",
               "--label", f"app.kubernetes.io/managed-by={names.MANAGED_BY}")
    return name


# ----- the factory: step 2 done, synced (Given) ---------------------------------------------

FIRST_SYNC_TIMEOUT = 90.0


@dataclasses.dataclass
class DeployedApp:
    """Step 2 done: the myapp layout in a fresh repo and its Application, synced."""

    name: str
    namespace: str
    repo: GitRepo
    manifest: dict
    synced_revision: str
    image: str = DEFAULT_IMAGE


@pytest.fixture
def deploy_myapp(kube: Kube, argocd: ArgoCD, tracker: Tracker, diagnostics: Diagnostics,
                 git_repo: Callable[..., GitRepo], namespace: Callable[..., str],
                 unique: Callable[[str], str], waiter: checks.Waiter) -> Callable[..., DeployedApp]:
    """deploy_myapp(**changes) -> DeployedApp. `changes` alter the procedure's Application
    (dotted paths, e.g. {"spec.syncPolicy.automated.selfHeal": False}); the self-tests use
    them to break the setup on purpose. `via_cli=True` creates it with `argocd app create`.
    `repo_url(repo)` names another URL of the same repo in Argo CD (e.g. HTTPS, for Image Updater)."""
    def make(*, via_cli: bool = False, wait: bool = True, image: str = DEFAULT_IMAGE,
             changes: dict | None = None, repo_url: Callable[[GitRepo], str] | None = None) -> DeployedApp:
        repo = git_repo("myapp")
        ns = namespace("prod", create=False)  # CreateNamespace=true makes it, as in the procedure
        write_layout(repo, ns, image=image)
        sha = repo.commit_and_push("Add myapp application manifests")
        url = repo_url(repo) if repo_url else repo.url
        step1.register_https(argocd, kube, dataclasses.replace(repo, url=url))
        name = unique("myapp-prod")
        manifest = application(name, url, PROD_PATH, ns)
        if changes:
            manifest = with_changes(manifest, **changes)
        diagnostics.apps.append(name)
        if via_cli:
            create_with_cli(argocd, tracker, name, url, PROD_PATH, ns)
        else:
            apply(kube, tracker, manifest)
        if wait:
            waiter.until(
                checks.all_of(probes.app_synced(argocd, name, revision=sha),
                              probes.deployment(kube, ns, "myapp", replicas=5)),
                timeout=FIRST_SYNC_TIMEOUT, what=f"first sync of {name} (procedure step 2)",
                expected=f"Synced at {sha[:10]}, Healthy, Deployment myapp with 5 replicas available in {ns}",
                remediation=hints.ON_FAILURE[2],
                diagnose=diagnose.for_app(argocd, name, namespace=ns, deployments=["myapp"]))
        return DeployedApp(name=name, namespace=ns, repo=repo, manifest=manifest, synced_revision=sha, image=image)

    return make
