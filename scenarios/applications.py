"""Step 2's Application, exactly as the procedure writes it, created either declaratively
(`kubectl apply`) or through the CLI (`argocd app create ...`)."""
from __future__ import annotations

import copy

from fixtures import names
from fixtures.argocd import ArgoCD
from fixtures.cleanup import Tracker
from fixtures.kube import Kube

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
