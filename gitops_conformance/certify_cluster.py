"""A kind cluster made for `pytest suites --cluster existing` (CI): the project's node image and
kind config, every image the manifests name loaded from the built archives, and Step 1
(fixtures/install.py: the pinned install.yamls, applied unchanged, pull policy adapted to the
loaded images; with --engine flux, fixtures/flux_install.py: Flux and Flagger from the pinned
modules' manifests). The suite then treats it as any cluster of a user's.

    python -m gitops_conformance.certify_cluster up NAME KUBECONFIG [--engine flux]   create, load, install; print the context
    python -m gitops_conformance.certify_cluster down NAME             delete it
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from gitops_conformance.testbed.kind import cluster as kind_cluster, lifecycle, nodeimage


def up(name: str, kubeconfig: Path, engine: str = "argocd") -> str:
    import os

    from gitops_conformance.fixtures import flux_install, install
    from gitops_conformance.fixtures.kube import Kube
    # the same checks and loads as --cluster kind
    from gitops_conformance.fixtures.providers import _kind_images
    from gitops_conformance.fixtures.options import Settings

    settings = Settings(cluster="existing", reuse_testbed=None, kubeconfig=None, context=None, engine=engine,
                        keep_on_failure=False, timeout_scale=1.0, allow_context=None, install=False, git_url=None,
                        git_username=None, git_token=None, kind_bin=None, no_webhook=False)
    archives = _kind_images(settings)
    with tempfile.TemporaryDirectory() as tmp:
        config = kind_cluster.write(Path(tmp) / "kind.yaml", nodeimage.node_image_name(), name=name)
        lifecycle.create(name, config, kubeconfig)
    lifecycle.wait_ready(kubeconfig)
    _load_images_named(archives, name)
    context = f"kind-{name}"
    kube = Kube(kubeconfig, context, dict(os.environ))
    if engine == "flux":
        flux_install.apply_installs(kube)
    else:
        install.apply_installs(kube, pull=False)
    return context


def _load_images_named(archives: dict, name: str) -> None:
    from gitops_conformance.testbed.images import kind as kind_load

    kind_load.load(sorted({Path(a) for a in archives.values()}), name)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m gitops_conformance.certify_cluster", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    u = sub.add_parser("up")
    u.add_argument("name")
    u.add_argument("kubeconfig", type=Path)
    u.add_argument("--engine", choices=["argocd", "flux"], default="argocd", help="the engine Step 1 installs")
    d = sub.add_parser("down")
    d.add_argument("name")
    args = ap.parse_args(argv)
    if args.cmd == "up":
        print(up(args.name, args.kubeconfig, args.engine))
    else:
        lifecycle.delete(args.name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
