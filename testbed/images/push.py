"""Push a built image archive to a registry (Docker Registry HTTP API v2): how myapp's tags
reach the in-cluster registry, and how a registry mirror can serve the upstream images to a
cluster whose manifests say `imagePullPolicy: Always`.

    python -m gitops_conformance.testbed.images.push ARCHIVE http://127.0.0.1:5000 [REPOSITORY:TAG]

Blobs stream from the archive (HEAD first: a blob the registry has is not sent again); the
manifest is PUT byte for byte, so the pushed digest is the archive's digest.
"""
from __future__ import annotations

import argparse
import json
import sys
import tarfile
from pathlib import Path

from gitops_conformance.testbed.peers import registry

from . import oci


def push_archive(archive: Path, base_url: str, target: str | None = None) -> tuple[str, str]:
    """Push the archive's image as `target` (repository:tag; default: its own name without the
    registry host). Returns (repository:tag, manifest digest)."""
    info = oci.verify_archive(archive)
    if target is None:
        repo, tag = oci.split_ref(info["refs"][0])
        repo = repo.split("/", 1)[1]  # drop the original registry host
    else:
        repo, _, tag = target.rpartition(":")
        if not repo or "/" in tag:
            raise ValueError(f"{target!r}: expected REPOSITORY:TAG")
    session = registry._session()
    with tarfile.open(archive, "r") as tar:
        index = json.load(tar.extractfile("index.json"))
        desc = index["manifests"][0]
        manifest_bytes = tar.extractfile("blobs/sha256/" + desc["digest"].split(":", 1)[1]).read()
        manifest = json.loads(manifest_bytes)
        for blob in [manifest["config"], *manifest["layers"]]:
            member = tar.getmember("blobs/sha256/" + blob["digest"].split(":", 1)[1])
            registry.upload_blob_stream(base_url, repo, tar.extractfile(member), member.size, blob["digest"],
                                        session=session)
    digest = registry.put_manifest(base_url, repo, tag, manifest_bytes, desc["mediaType"], session=session)
    return f"{repo}:{tag}", digest


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m gitops_conformance.testbed.images.push", description=__doc__.splitlines()[0])
    ap.add_argument("archive", type=Path)
    ap.add_argument("registry", help="base URL, e.g. http://127.0.0.1:5000")
    ap.add_argument("target", nargs="?", help="REPOSITORY:TAG (default: the image's own name)")
    args = ap.parse_args(argv)
    name, digest = push_archive(args.archive, args.registry, args.target)
    print(f"pushed {name} {digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
