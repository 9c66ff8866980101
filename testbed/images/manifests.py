"""Which images a set of Kubernetes manifests names, and whether each one is at hand.

A provider calls `check_available(docs)` with the manifests it is about to apply: every image
they name must be a built archive (or be listed as knowingly absent with the reason and what
the provider does about it); otherwise one clear error names each missing image, long before a
pod would sit in ImagePullBackOff. On kind, what it returns is what to load:

    docs = [d for p in install_yamls for d in yaml.safe_load_all(p.read_text()) if d]
    found = check_available(docs, allow_absent=["ghcr.io/dexidp/dex"])   # dex scaled to 0
    kind.load(sorted(set(found.archives.values())), cluster)
"""
from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Iterable, Iterator

import yaml

from . import oci

# Pod templates live at different depths: Deployment/StatefulSet/DaemonSet/Job/ReplicaSet and
# Argo Rollouts' Rollout at spec.template.spec, CronJob at spec.jobTemplate.spec.template.spec,
# a Pod at spec. Walking every mapping for container lists covers them all (and CRDs' own
# schemas are skipped: their "containers" hold a schema, not a list of containers).
_CONTAINER_KEYS = ("containers", "initContainers", "ephemeralContainers")

# Images a manifest names that cannot be built from served modules and Debian packages, the
# exact reason, and what a provider does so the image is never needed.
KNOWN_ABSENT = {
    "ghcr.io/dexidp/dex": (
        "github.com/dexidp/dex cannot be built: its v2 releases are not a v2 module, and the module "
        "proxy refuses the v2.45.1 commit (`go list -m github.com/dexidp/dex@11d2eeb52b42`: 403 Forbidden, "
        "\"This module version is not available\")",
        "scale Deployment argocd-dex-server to 0 replicas (SSO is not used: the suite signs in as the "
        "local admin and with project tokens)"),
}


def _walk(node) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _CONTAINER_KEYS and isinstance(value, list):
                for c in value:
                    if isinstance(c, dict) and isinstance(c.get("image"), str):
                        yield c["image"]
            elif key != "openAPIV3Schema":
                yield from _walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item)


def images_in_docs(docs: Iterable[dict | None]) -> list[str]:
    """Every image (normalized, de-duplicated, in order of appearance) the documents name."""
    seen: dict[str, None] = {}
    for doc in docs:
        if doc:
            for image in _walk(doc):
                seen.setdefault(oci.normalize_ref(image.strip()), None)
    return list(seen)


_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: Argo CD's install.yaml is 1.5 MB


@functools.lru_cache(maxsize=32)
def _images_in_file(path: str, mtime_ns: int) -> tuple[str, ...]:
    return tuple(images_in_docs(yaml.load_all(Path(path).read_text(), Loader=_Loader)))


def images_in_files(paths: Iterable[Path]) -> list[str]:
    seen: dict[str, None] = {}
    for p in paths:
        for ref in _images_in_file(str(p), Path(p).stat().st_mtime_ns):
            seen.setdefault(ref, None)
    return list(seen)


def known_absent(ref: str) -> tuple[str, str] | None:
    """(why it cannot be built, what the provider does instead) for an image known to be absent."""
    repo = oci.split_ref(ref)[0] if "@" not in ref else ref.split("@")[0]
    return KNOWN_ABSENT.get(repo)


class MissingImages(RuntimeError):
    """One line per image the manifests name and nothing provides."""

    def __init__(self, missing: list[str], hints: dict[str, str]):
        self.missing = missing
        lines = [f"{len(missing)} image(s) named by the manifests are not available (no archive built):"]
        lines += [f"  - {ref}: {hints.get(ref, 'no spec in testbed/images builds it')}" for ref in missing]
        super().__init__("\n".join(lines))


@dataclasses.dataclass
class Availability:
    archives: dict[str, Path]                 # image -> archive that provides it
    absent_ok: dict[str, str]                 # image -> what the provider must do instead
    missing: list[str]


def check_available(docs: Iterable[dict | None], *, allow_absent: Iterable[str] = (),
                    index: dict[str, Path] | None = None) -> Availability:
    """Each image in `docs` must have a built archive. Images in KNOWN_ABSENT are accepted only
    if their repository is in `allow_absent` (the provider says it handles them, e.g. scales dex
    to 0). Raises MissingImages naming every other image that is missing, with how to build it."""
    from . import build  # the build index (what `testbed images` has written)

    have = build.built_archives() if index is None else index
    allowed = {oci.split_ref(oci.normalize_ref(a + (":x" if ":" not in a.rsplit("/", 1)[-1] else "")))[0]
               for a in allow_absent}
    result = Availability({}, {}, [])
    hints: dict[str, str] = {}
    for ref in images_in_docs(docs):
        if ref in have and Path(have[ref]).exists():
            result.archives[ref] = Path(have[ref])
            continue
        absent = known_absent(ref)
        if absent and oci.split_ref(ref)[0] in allowed:
            result.absent_ok[ref] = absent[1]
            continue
        result.missing.append(ref)
        if absent:
            hints[ref] = f"cannot be built ({absent[0]}); instead: {absent[1]}"
        else:
            spec = build.spec_for(ref)
            hints[ref] = (f"run `gitops-conformance testbed images {spec}`" if spec
                          else "no spec in testbed/images builds it")
    if result.missing:
        raise MissingImages(result.missing, hints)
    return result
