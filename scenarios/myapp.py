"""Step 2's Git repository layout, as the procedure writes it: `apps/myapp/base` (deployment,
service, kustomization) and overlays dev/staging/prod (prod: its own namespace, 5
replicas, an image tag).

One difference, on purpose: the procedure's namespace is `production`; each test gets a
unique namespace instead, so tests are independent and leave nothing shared behind.
"""
from __future__ import annotations

import time

from fixtures.gitrepo import GitRepo

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
}


def drift(kube, namespace: str, how: str) -> float:
    """`kubectl scale|set image|delete service` on myapp (DRIFTS); returns when, time.monotonic()."""
    kube.kubectl("-n", namespace, *DRIFTS[how])
    return time.monotonic()


def set_prod(repo: GitRepo, *, tag: str | None = None, replicas: int | None = None) -> None:
    """Edit the prod overlay as a developer would (image tag, replica count)."""
    path = f"{PROD_PATH}/kustomization.yaml"
    doc = repo.read_yaml(path)[0]
    if tag is not None:
        doc["images"][0]["newTag"] = tag
    if replicas is not None:
        doc["replicas"][0]["count"] = replicas
    repo.write_yaml(path, doc)
