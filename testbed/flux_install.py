"""Flux and Flagger for a cluster, as their releases install them, from the pinned modules.

Flux's release renders `flux install` from flux2's kustomize bases (manifests/install, bases/<controller>,
rbac, policies), each base pulling its controller's `<controller>.crds.yaml` and
`<controller>.deployment.yaml` from the controller's GitHub release, which that release made with
`kustomize build config/crd` and `kustomize build config/manager`. This module assembles the same
tree from the pinned modules' own files (copied into the cache by `testbed build`) and runs the
pinned kustomize over it; only the release URLs become the controllers' config/ directories.

Differences from `flux install`, each on purpose:
- only the controllers this project can build and the procedure uses (source-, kustomize-,
  notification-controller): helm-controller is not used by any item; the image automation
  controllers cannot be built here (see testbed/versions.yaml), so image_promotion is not_run;
- kustomize-controller runs with `--no-cross-namespace-refs=true`, the multi-tenancy lockdown
  flux2-multi-tenancy patches onto it, which the rbac item checks (a stock install fails it).

Flagger: its own kustomize base (kustomize/base/flagger: CRDs, RBAC, Deployment) in
flagger-system, with the arguments its Helm chart gives for the nginx provider.
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import yaml

from . import versions
from .flux import CONTROLLERS, FLAGGER

FLAGGER_NAMESPACE = "flagger-system"
# the multi-tenancy lockdown (see the module's notes); a self-test renders without it
NO_CROSS_NAMESPACE_REFS = "--no-cross-namespace-refs=true"
# Flagger's Helm chart for meshProvider=nginx (its default metricsServer): the suite's
# MetricTemplates name their own Prometheus, so this address is only Flagger's built-in checks'
FLAGGER_ARGS = ["-log-level=info", "-include-label-prefix=app.kubernetes.io", "-mesh-provider=nginx",
                "-metrics-server=http://prometheus:9090"]


class RenderError(RuntimeError):
    """The pinned assets or kustomize are missing, or kustomize refused the tree."""


def _assets(component: str, *parts: str) -> Path:
    path = versions.asset_dir(component).joinpath(*parts)
    if not path.exists():
        raise RenderError(f"{path} is missing: run `gitops-conformance testbed build --engine flux` "
                          f"(it copies {component}'s manifests from its pinned module)")
    return path


def _kustomize(tree: Path) -> list[dict]:
    try:
        binary = versions.binary_path("kustomize")
    except KeyError:
        raise RenderError("no kustomize component in testbed/versions.yaml") from None
    if not binary.exists():
        raise RenderError(f"{binary} is missing: run `gitops-conformance testbed build kustomize`")
    proc = subprocess.run([str(binary), "build", str(tree)], capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise RenderError(f"kustomize build {tree.name}: {proc.stderr.strip()[-600:]}")
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


def _write(path: Path, doc: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def flux_docs(*, no_cross_namespace_refs: bool = True) -> list[dict]:
    """The Flux install for a cluster (namespace flux-system), rendered from the pinned modules."""
    manifests = _assets("flux-cli", "manifests")
    with tempfile.TemporaryDirectory(prefix="gitops-conformance-flux-") as tmp:
        tree = Path(tmp)
        for part in ("install", "rbac", "policies"):
            shutil.copytree(manifests / part, tree / part)
        for name, component in CONTROLLERS.items():
            base = tree / "bases" / name
            shutil.copytree(manifests / "bases" / name, base)
            shutil.copytree(_assets(component, "config"), base / "config")
            kust = yaml.safe_load((base / "kustomization.yaml").read_text())
            # the release URLs -> the very directories the release built them from
            kust["resources"] = [("config/crd" if r.endswith(".crds.yaml") else
                                  "config/manager" if r.endswith(".deployment.yaml") else r)
                                 for r in kust["resources"]]
            _write(base / "kustomization.yaml", kust)
        install = yaml.safe_load((tree / "install" / "kustomization.yaml").read_text())
        wanted = {f"../bases/{n}" for n in CONTROLLERS}
        install["resources"] = [r for r in install["resources"] if not r.startswith("../bases/") or r in wanted]
        install["images"] = [i for i in install.get("images", []) if i["name"].split("/")[-1] in CONTROLLERS]
        if no_cross_namespace_refs:
            install.setdefault("patches", []).append({
                "target": {"kind": "Deployment", "name": "kustomize-controller"},
                "patch": yaml.safe_dump([{"op": "add", "path": "/spec/template/spec/containers/0/args/-",
                                          "value": NO_CROSS_NAMESPACE_REFS}])})
        _write(tree / "install" / "kustomization.yaml", install)
        return _kustomize(tree / "install")


def flagger_docs() -> list[dict]:
    """Flagger for a cluster (namespace flagger-system): its kustomize base, nginx provider."""
    base = _assets(FLAGGER, "kustomize", "base", "flagger")
    with tempfile.TemporaryDirectory(prefix="gitops-conformance-flagger-") as tmp:
        tree = Path(tmp)
        shutil.copytree(base, tree / "base")
        _write(tree / "namespace.yaml", {"apiVersion": "v1", "kind": "Namespace",
                                         "metadata": {"name": FLAGGER_NAMESPACE}})
        _write(tree / "kustomization.yaml", {
            "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
            "namespace": FLAGGER_NAMESPACE, "resources": ["namespace.yaml", "base"],
            "patches": [{"target": {"kind": "Deployment", "name": "flagger"},
                         "patch": yaml.safe_dump([{"op": "add", "path": "/spec/template/spec/containers/0/args",
                                                   "value": FLAGGER_ARGS}])}]})
        return _kustomize(tree)
