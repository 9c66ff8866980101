"""The Debian layer of an image: mmdebstrap (a Debian package) makes the root filesystem.

Why mmdebstrap: it writes a reproducible tarball directly (SOURCE_DATE_EPOCH), installs a
package list in one resolver pass, runs the packages' maintainer scripts (users, alternatives,
CA bundle) like `apt-get install` in a Containerfile does, and needs no container runtime.
Its tar output is used as the layer unchanged except for /dev (a runtime provides /dev).

The packages come from this machine's own apt sources (/etc/apt/sources.list.d/*.sources and
/etc/apt/sources.list), so the build reaches exactly the Debian mirror apt already uses.
Downloaded .deb files are kept in the cache, so the second image downloads only what it adds.
The base is `--variant=minbase` with the doc/man/locale excludes, like debian:<suite>-slim,
the FROM of the generated Containerfiles.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shlex
import shutil
import subprocess
from pathlib import Path

from . import oci
from .spec import DEBIAN_SUITE, ImageSpec

LAYER_FORMAT = 1  # bump when the way the layer is made changes (invalidates cached layers)
SLIM_DPKG_OPTS = (  # what debian:*-slim leaves out
    "path-exclude=/usr/share/doc/*", "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/man/*", "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/locale/*", "path-exclude=/usr/share/lintian/*",
)
TIMEOUT = 1800  # one rootfs: downloads plus installs; bounded like every wait


class DebianError(RuntimeError):
    pass


def apt_sources() -> list[Path]:
    """The machine's apt sources, handed to mmdebstrap as they are (override with
    GITOPS_CONFORMANCE_DEBIAN_SOURCES=path1:path2)."""
    override = os.environ.get("GITOPS_CONFORMANCE_DEBIAN_SOURCES")
    if override:
        return [Path(p) for p in override.split(":") if p]
    found = sorted(Path("/etc/apt/sources.list.d").glob("*.sources"))
    legacy = Path("/etc/apt/sources.list")
    if legacy.exists() and any(l.strip() and not l.lstrip().startswith("#") for l in legacy.read_text().splitlines()):
        found.append(legacy)
    return found


def layer_key(spec: ImageSpec) -> str:
    """Everything the Debian layer depends on: suite, packages, set-up commands, apt sources."""
    h = hashlib.sha256(json.dumps({
        "format": LAYER_FORMAT, "suite": DEBIAN_SUITE, "packages": sorted(spec.packages), "run": list(spec.run),
        "slim": SLIM_DPKG_OPTS, "excludes": list(spec.dpkg_excludes), "sources": [p.read_text() for p in apt_sources()],
    }, sort_keys=True).encode())
    return h.hexdigest()[:16]


def mmdebstrap_command(spec: ImageSpec, deb_cache: Path) -> list[str]:
    cmd = ["mmdebstrap", "--variant=minbase", "--format=tar", "--skip=essential/unlink",
           "--include=" + ",".join(spec.packages)]
    cmd += [f"--dpkgopt={o}" for o in (*SLIM_DPKG_OPTS, *(f"path-exclude={p}" for p in spec.dpkg_excludes))]
    # keep the downloaded .debs between images (the man page's sync-in/sync-out recipe)
    cmd += ["--setup-hook=mkdir -p \"$1\"/var/cache/apt/archives/",
            f"--setup-hook=sync-in {shlex.quote(str(deb_cache))} /var/cache/apt/archives/"]
    for line in spec.run:
        cmd.append(f"--customize-hook=chroot \"$1\" sh -ec {shlex.quote(line)}")
    cmd.append(f"--customize-hook=sync-out /var/cache/apt/archives {shlex.quote(str(deb_cache))}")
    cmd += [DEBIAN_SUITE, "-", *map(str, apt_sources())]
    return cmd


def build_layer(spec: ImageSpec, cache: Path, log) -> oci.Blob:
    """The spec's Debian layer (cached by layer_key). Needs root (mmdebstrap's root mode)."""
    key = layer_key(spec)
    out = cache / "layers" / f"debian-{spec.name}-{key}.tar"
    meta = out.with_suffix(".json")
    if out.exists() and meta.exists():
        m = json.loads(meta.read_text())
        return oci.Blob(oci.MEDIA_LAYER, m["digest"], m["size"], path=out)
    for tool in ("mmdebstrap", "mmtarfilter"):
        if shutil.which(tool) is None:
            raise DebianError(f"{spec.name}: `{tool}` is missing: apt-get install mmdebstrap")
    if os.geteuid() != 0:
        raise DebianError(f"{spec.name}: building a Debian root filesystem needs root (mmdebstrap --mode=root)")
    if not apt_sources():
        raise DebianError(f"{spec.name}: no apt sources found (/etc/apt/sources.list.d/*.sources)")
    deb_cache = cache / "debs"
    deb_cache.mkdir(parents=True, exist_ok=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".partial")
    env = {**os.environ, "SOURCE_DATE_EPOCH": str(oci.EPOCH), "DEBIAN_FRONTEND": "noninteractive"}
    cmd = mmdebstrap_command(spec, deb_cache)
    log.write(f"\n$ {shlex.join(cmd)} | mmtarfilter --path-exclude='/dev/*'\n")
    log.flush()
    with open(cache / "debs.lock", "w") as lock, open(tmp, "wb") as sink:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one mmdebstrap at a time shares the .deb cache
        strap = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, env=env)
        filt = subprocess.Popen(["mmtarfilter", "--path-exclude=/dev/*"], stdin=strap.stdout, stdout=sink, stderr=log)
        strap.stdout.close()
        try:
            strap_rc = strap.wait(timeout=TIMEOUT)
            filt_rc = filt.wait(timeout=60)
        except subprocess.TimeoutExpired:
            strap.kill()
            filt.kill()
            raise DebianError(f"{spec.name}: mmdebstrap did not finish within {TIMEOUT}s (log: {log.name})")
    if strap_rc != 0 or filt_rc != 0:
        tmp.unlink(missing_ok=True)
        raise DebianError(f"{spec.name}: mmdebstrap failed (exit {strap_rc}, filter {filt_rc}); "
                          f"its last lines are in {log.name}")
    tmp.rename(out)
    blob = oci.Blob.of_file(out, oci.MEDIA_LAYER)
    meta.write_text(json.dumps({"digest": blob.digest, "size": blob.size, "packages": list(spec.packages)}))
    return blob
