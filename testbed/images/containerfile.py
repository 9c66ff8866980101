"""A Containerfile for `docker build` / `podman build`, generated from an image spec.

Only specs whose files all come from the repository (or are symlinks) can have one: the build
context is the repository root. The generated file is committed next to the spec
(testbed/images/<name>/Containerfile); tests/test_images.py fails when it is out of date.

    python -m gitops_conformance.testbed.images.containerfile peers           # print it
    python -m gitops_conformance.testbed.images.containerfile peers --write   # (re)write the committed file
    docker build -f testbed/images/peers/Containerfile -t gitops-conformance/peers:0.1.0 .
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from .spec import DEBIAN_SUITE, SPEC_DIR, ImageSpec, SpecError, all_specs


def path_for(spec: ImageSpec) -> Path:
    return SPEC_DIR / spec.name / "Containerfile"


def render(spec: ImageSpec) -> str:
    if spec.base != "debian":
        raise SpecError(f"{spec.name}: only Debian-based specs have a Containerfile")
    lines = [
        f"# GENERATED from testbed/images/{spec.name}.yaml by `python -m gitops_conformance.testbed.images.containerfile {spec.name} --write`.",
        "# Do not edit: change the spec. The offline build (`gitops-conformance testbed images "
        f"{spec.name}`) makes the same image.",
        "# Build context: the repository root.",
        f"FROM debian:{DEBIAN_SUITE}-slim",
        "ARG DEBIAN_FRONTEND=noninteractive",
    ]
    if spec.dpkg_excludes:
        lines.append("RUN printf '%s\\n' " + " ".join(shlex.quote(f"path-exclude={p}") for p in spec.dpkg_excludes)
                     + " > /etc/dpkg/dpkg.cfg.d/gitops-conformance-excludes")
    lines += [
        "RUN apt-get update \\\n"
        "    && apt-get install -y --no-install-recommends \\\n"
        + "".join(f"       {p} \\\n" for p in spec.packages)
        + "    && rm -rf /var/lib/apt/lists/*",
    ]
    if spec.run:
        lines.append("RUN " + " \\\n    && ".join(spec.run))
    post: list[str] = []
    for f in spec.files:
        if f.symlink:
            post.append(f"ln -s {shlex.quote(f.symlink)} {shlex.quote(f.path)}")
            continue
        if not f.repo:
            raise SpecError(f"{spec.name}: {f.path} comes from {f.source_kind}, which a Containerfile cannot COPY")
        lines.append(f"COPY {f.repo} {f.path}")
        target = f.path + "*" if f.path.endswith("/") else f.path  # a glob copied into a directory
        if f.mode != 0o644:
            post.append(f"chmod {f.mode:o} {target}")
        if f.owner != (0, 0):
            post.append(f"chown {f.owner[0]}:{f.owner[1]} {target}")
    if post:
        lines.append("RUN " + " \\\n    && ".join(post))
    cfg = spec.config
    for k, v in cfg.env.items():
        lines.append(f"ENV {k}={shlex.quote(v)}")
    for port in cfg.exposed_ports:
        lines.append(f"EXPOSE {port}")
    if cfg.workdir:
        lines.append(f"WORKDIR {cfg.workdir}")
    if cfg.user:
        lines.append(f"USER {cfg.user}")
    if cfg.entrypoint:
        lines.append(f"ENTRYPOINT {json.dumps(cfg.entrypoint)}")
    if cfg.cmd:
        lines.append(f"CMD {json.dumps(cfg.cmd)}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m gitops_conformance.testbed.images.containerfile", description=__doc__.splitlines()[0])
    ap.add_argument("spec")
    ap.add_argument("--write", action="store_true", help="write testbed/images/<spec>/Containerfile")
    args = ap.parse_args(argv)
    spec = all_specs()[args.spec]
    text = render(spec)
    if args.write:
        path_for(spec).parent.mkdir(parents=True, exist_ok=True)
        path_for(spec).write_text(text)
        print(f"wrote {path_for(spec)}")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
