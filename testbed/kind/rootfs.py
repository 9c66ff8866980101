"""Debian root filesystems (debootstrap), cached as tar files keyed by suite and package list.

The kind node and the images that need a userland (kube-proxy runs iptables) start from
Debian's own packages: no base image is pulled from a registry.
"""
from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import time
from pathlib import Path

from gitops_conformance.testbed import versions

from . import timings

DEBOOTSTRAP_TIMEOUT = 1200  # a cold run with downloads takes about 2-4 minutes here


class RootfsError(RuntimeError):
    pass


def debian_mirror(suite: str) -> str:
    """The machine's Debian mirror for `suite`, read from APT's sources (deb822 or one-line)."""
    sources = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for path in sources:
        if not path.is_file():
            continue
        text = path.read_text(errors="replace")
        for stanza in re.split(r"\n\s*\n", text):  # deb822: URIs/Suites fields per stanza
            uris = re.search(r"^URIs:\s*(\S+)", stanza, re.M)
            suites = re.search(r"^Suites:\s*(.+)$", stanza, re.M)
            if uris and suites and suite in suites.group(1).split() and "security" not in uris.group(1):
                return uris.group(1)
        for line in text.splitlines():  # one-line: deb URI SUITE COMPONENTS
            parts = line.split()
            if len(parts) >= 3 and parts[0] == "deb" and parts[2] == suite:
                return parts[1]
    return "http://deb.debian.org/debian"


def _remove_tree(root: Path) -> None:
    """rm -rf a (half-)bootstrapped tree: a failed debootstrap can leave /proc or /sys mounted in it."""
    if not root.exists():
        return
    mounts = subprocess.run(["findmnt", "-rn", "-o", "TARGET"], capture_output=True, text=True).stdout.split()
    for target in sorted((m for m in mounts if m.startswith(f"{root}/")), reverse=True):
        subprocess.run(["umount", "-l", target], check=False)
    subprocess.run(["rm", "-rf", "--one-file-system", str(root)], check=True)


def _key(suite: str, packages: list[str]) -> str:
    return hashlib.sha256(" ".join([suite, *sorted(packages)]).encode()).hexdigest()[:12]


def rootfs_tar(name: str, packages: list[str], log=print) -> Path:
    """A tar of a minbase Debian root filesystem with `packages`, built once per package list."""
    suite = versions.debian_suite()
    out_dir = versions.cache_root() / "kind" / "rootfs"
    tar = out_dir / f"{name}-{suite}-{_key(suite, packages)}.tar"
    if tar.exists():
        return tar
    if shutil.which("debootstrap") is None:
        raise RootfsError("debootstrap is missing: apt-get install debootstrap")
    out_dir.mkdir(parents=True, exist_ok=True)
    root = out_dir / f"{tar.stem}.partial"
    _remove_tree(root)
    debs = versions.cache_root() / "kind" / "debs"  # .deb files, shared by every rootfs
    debs.mkdir(parents=True, exist_ok=True)
    mirror = debian_mirror(suite)
    started = time.monotonic()
    log(f"[rootfs {name}] debootstrap --variant=minbase {suite} + {len(packages)} packages from {mirror}")
    cmd = ["debootstrap", "--variant=minbase", f"--include={','.join(packages)}",
           f"--cache-dir={debs}", suite, str(root), mirror]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=DEBOOTSTRAP_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise RootfsError(f"debootstrap of {name} did not finish within {DEBOOTSTRAP_TIMEOUT}s") from None
    if proc.returncode != 0:
        log_file = out_dir / f"{tar.stem}.log"
        log_file.write_text(proc.stdout + proc.stderr)
        last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["(no output)"]
        raise RootfsError(f"debootstrap of {name} failed: {last[0]} (log: {log_file})")
    # what an image never needs: package lists and downloaded .debs
    for junk in ("var/lib/apt/lists", "var/cache/apt/archives", "var/cache/debconf"):
        subprocess.run(["find", str(root / junk), "-type", "f", "-delete"], check=False)
    partial = tar.with_suffix(".tar.partial")
    # --numeric-owner: the tree's owners are the rootfs's own uids, not the host's names
    subprocess.run(["tar", "--numeric-owner", "--xattrs", "-C", str(root), "-cf", str(partial), "."], check=True)
    partial.rename(tar)
    _remove_tree(root)
    timings.record(f"rootfs {name} (debootstrap)", time.monotonic() - started)
    log(f"[rootfs {name}] {tar} ({tar.stat().st_size >> 20} MiB, {time.monotonic() - started:.0f}s)")
    return tar
