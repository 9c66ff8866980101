"""Load image archives into a kind cluster's nodes: `kind load image-archive ARCHIVE --name CLUSTER`
(kind imports each archive into every node's containerd, namespace k8s.io)."""
from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

from gitops_conformance.testbed import versions

LOAD_TIMEOUT = 600  # one archive into every node; the largest (Argo CD) takes well under this


class KindError(RuntimeError):
    pass


def kind_binary() -> str:
    """`kind` on PATH, else the one `testbed build` made (if versions.yaml pins it)."""
    found = shutil.which("kind")
    if found:
        return found
    try:
        built = versions.binary_path("kind")
    except KeyError:
        built = None
    if built and built.exists():
        return str(built)
    raise KindError("the kind CLI is missing: put `kind` on PATH (go install sigs.k8s.io/kind@<version>) "
                    "or build it with `gitops-conformance testbed build`")


def parse_target(target: str) -> str:
    """`kind:<cluster>` -> cluster name."""
    kind, _, cluster = target.partition(":")
    if kind != "kind" or not cluster:
        raise KindError(f"--load {target!r}: expected kind:<cluster-name>")
    return cluster


def load_command(archive: Path, cluster: str, kind: str = "kind") -> list[str]:
    return [kind, "load", "image-archive", str(archive), "--name", cluster]


def load(archives: list[Path], cluster: str) -> list[str]:
    """Load each archive; returns one line per archive; raises KindError on the first failure."""
    kind = kind_binary()
    done = []
    for archive in archives:
        if not archive.exists():
            raise KindError(f"{archive} is missing: run `gitops-conformance testbed images` first")
        started = time.monotonic()
        try:
            proc = subprocess.run(load_command(archive, cluster, kind), capture_output=True, text=True,
                                  timeout=LOAD_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise KindError(f"kind load image-archive {archive.name} did not finish within {LOAD_TIMEOUT}s") from None
        if proc.returncode != 0:
            why = (proc.stderr.strip() or proc.stdout.strip() or f"exit {proc.returncode}").splitlines()[-1]
            raise KindError(f"kind load image-archive {archive} --name {cluster} failed: {why}")
        done.append(f"loaded {archive.name} into kind cluster {cluster} ({time.monotonic() - started:.0f}s)")
    return done
