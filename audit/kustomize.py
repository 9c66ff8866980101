"""Kustomizations: what each one consumes, and rendering one with `kustomize build`.

The audit works offline: a kustomization that needs a remote base (a URL) or Helm charts
(`helmCharts`, which needs helm and a chart repository) anywhere in its tree is not built; the
loader reports that as a warning and audits its local resources as plain YAML.
"""
from __future__ import annotations

import os
import posixpath
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gitops_conformance.audit.model import as_list, kind_is_read, norm
from gitops_conformance.audit.yamlparse import LimitExceeded, load_all

KUSTOMIZE_VERSION = "v5.8.1"
CACHED_KUSTOMIZE = Path.home() / ".cache" / "gitops-conformance" / "bin" / f"kustomize-{KUSTOMIZE_VERSION}" / "kustomize"
KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
ORIGIN_ANNOTATION = "config.kubernetes.io/origin"
BUILD_TIMEOUT = 60
MAX_QUOTE = 400


def find_kustomize() -> str | None:
    """`kustomize` on PATH, else the copy the testbed build caches; None when neither exists."""
    found = shutil.which("kustomize")
    if found:
        return found
    return str(CACHED_KUSTOMIZE) if os.access(CACHED_KUSTOMIZE, os.X_OK) else None


@dataclass
class Kustomization:
    dir: str
    file: str
    component: bool = False
    children: set[str] = field(default_factory=set)        # kustomization dirs it consumes
    resource_files: set[str] = field(default_factory=set)  # files whose objects it deploys
    other_files: set[str] = field(default_factory=set)     # patches, generator inputs, configs
    remote: list[str] = field(default_factory=list)        # remote bases and `helmCharts` it needs
    secret_inputs: set[str] = field(default_factory=set)   # secretGenerator files and env files
    secret_literals: list[Any] = field(default_factory=list)
    has_secret_generator: bool = False


def is_remote(entry: str) -> bool:
    return "://" in entry or entry.startswith(("github.com/", "git@", "gitlab.com/", "bitbucket.org/")) or "?ref=" in entry


def read(root: Path, kdir: str, kfile: str, data: Any) -> Kustomization:
    """What the kustomization in `kdir` consumes. Never raises for odd shapes."""
    data = data if isinstance(data, dict) else {}
    k = Kustomization(kdir, kfile, component=data.get("kind") == "Component")

    def resolve(entry: Any, into: set[str], dirs_are_children: bool = True) -> None:
        if not isinstance(entry, str) or "\n" in entry:
            return
        if is_remote(entry):
            k.remote.append(entry)
            return
        rel = norm(posixpath.join(kdir, entry))
        if rel.startswith(".."):
            return
        full = root / rel
        if full.is_dir():
            if dirs_are_children and any((full / f).is_file() for f in KUSTOMIZATION_FILES):
                k.children.add(rel)
        elif full.is_file():
            into.add(rel)

    for key in ("resources", "bases", "components", "crds"):
        for e in as_list(data.get(key)):
            resolve(e, k.resource_files)
    for key in ("patchesStrategicMerge", "configurations", "generators", "transformers", "validators"):
        for e in as_list(data.get(key)):
            resolve(e, k.other_files)
    for key in ("patches", "patchesJson6902", "replacements"):
        for e in as_list(data.get(key)):
            if isinstance(e, dict):
                resolve(e.get("path"), k.other_files)
    openapi = data.get("openapi")
    if isinstance(openapi, dict):
        resolve(openapi.get("path"), k.other_files)
    if as_list(data.get("helmCharts")):
        k.remote.append("helmCharts")
    for key in ("secretGenerator", "configMapGenerator"):
        for gen in as_list(data.get(key)):
            if not isinstance(gen, dict):
                continue
            inputs: set[str] = set()
            for e in as_list(gen.get("files")) + as_list(gen.get("envs")) + [gen.get("env")]:
                if isinstance(e, str):
                    resolve(e.split("=", 1)[-1], inputs, dirs_are_children=False)
            k.other_files |= inputs
            if key == "secretGenerator":
                k.has_secret_generator = True
                k.secret_inputs |= inputs
                k.secret_literals += as_list(gen.get("literals"))
    return k


def error_line(stderr: str, root: Path) -> str:
    """kustomize's `Error:` line (its warnings come first), repository paths made relative."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("Error:")]
    line = errors[0] if errors else (lines[-1] if lines else "kustomize build failed without a message")
    line = line.replace(str(root) + os.sep, "").replace(str(root), ".")
    return line[:MAX_QUOTE]


def _origin(annotation: Any, tmp: str, root: Path) -> tuple[str | None, str | None]:
    """(repo-relative defining file, generator kind or None) from kustomize's origin annotation."""
    try:
        data = yaml.safe_load(annotation) if isinstance(annotation, str) else None
    except yaml.YAMLError:
        return None, None
    if not isinstance(data, dict) or data.get("repo"):
        return None, None  # defined in a remote base: no file in this repository
    path = data.get("path") or data.get("configuredIn")
    if not isinstance(path, str):
        return None, None
    rel = Path(os.path.relpath(os.path.normpath(os.path.join(tmp, path)), root)).as_posix()
    if rel.startswith(".."):
        return None, None
    by = data.get("configuredBy")
    return rel, (by.get("kind") if isinstance(by, dict) else None)


Rendered = list[tuple[dict, str | None, str | None]]


def build(binary: str, root: Path, kdir: str) -> tuple[Rendered | None, str | None]:
    """Render one kustomization: ([(object, origin file, generator kind)], None) or (None, error).

    The directory is built through a throw-away kustomization outside the repository that adds
    `buildMetadata: [originAnnotations]`, so each object says which file defined it."""
    target = root / kdir if kdir else root
    try:
        with tempfile.TemporaryDirectory(prefix="gitops-audit-") as tmp:
            tmp = os.path.realpath(tmp)
            wrapper = {"resources": [os.path.relpath(target, tmp)], "buildMetadata": ["originAnnotations"]}
            Path(tmp, "kustomization.yaml").write_text(yaml.safe_dump(wrapper))
            proc = subprocess.run([binary, "build", tmp], capture_output=True, text=True, timeout=BUILD_TIMEOUT)
            if proc.returncode != 0:  # build it as the user would, for an error message that names their files
                direct = subprocess.run([binary, "build", str(target)], capture_output=True, text=True,
                                        timeout=BUILD_TIMEOUT)
                return None, error_line(direct.stderr or proc.stderr, root)
            out: Rendered = []
            for obj in load_all(proc.stdout, kind_is_read):
                if not isinstance(obj, dict):
                    continue
                meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
                ann = meta.get("annotations") if isinstance(meta.get("annotations"), dict) else {}
                origin, generator = _origin(ann.pop(ORIGIN_ANNOTATION, None), tmp, root)
                if not ann:
                    meta.pop("annotations", None)
                out.append((obj, origin, generator))
            return out, None
    except subprocess.TimeoutExpired:
        return None, f"kustomize build timed out after {BUILD_TIMEOUT}s"
    except (OSError, yaml.YAMLError, UnicodeDecodeError, LimitExceeded) as exc:
        return None, f"kustomize build could not run: {type(exc).__name__}"
