"""The images kubeadm and kind run inside a node, built from the testbed's binaries.

Each is an image archive (testbed/kind/imagearchive.py) named exactly as the node asks for
it, so the node's containerd never pulls. Built once per version into the cache.
"""
from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

from gitops_conformance.testbed import build, versions

from . import imagearchive, rootfs, timings

# kube-proxy (iptables mode) runs iptables-restore and conntrack: a Debian userland under it
IPTABLES_PACKAGES = ["iptables", "nftables", "conntrack"]


@dataclasses.dataclass(frozen=True)
class NodeImages:
    kubernetes: str      # e.g. v1.36.3
    etcd_tag: str        # the tag of registry.k8s.io/etcd we build; the cluster config names it
    archives: dict[str, Path]  # image name -> archive

    @property
    def names(self) -> list[str]:
        return sorted(self.archives)


def etcd_image_tag() -> str:
    """Our etcd image is tagged with the etcd it holds (the testbed's pin), in kubeadm's form
    "<version>-0"; kubeadm v1.36.3 would default to 3.6.8-0, so the cluster config sets
    ClusterConfiguration.etcd.local.imageTag to this (testbed/kind/cluster.py)."""
    return versions.load()["etcd"].version.removeprefix("v") + "-0"


def pause_image() -> str:
    return f"registry.k8s.io/pause:{versions.load()['pause'].version}"


def build_binaries(log=print) -> None:
    """Everything the node and its images are made of (no-ops when cached)."""
    comps = versions.load()
    for name in ("kubernetes", "kubernetes-node", "etcd", "coredns", "pause", "kind"):
        build.build_component(comps[name])


def _single_binary_image(work: Path, name: str, binary: Path, image_path: str, entrypoint: list[str] | None,
                         base: list[imagearchive.Layer] = ()) -> Path:
    layer = imagearchive.files_layer({image_path: binary}, work / f"{_slug(name)}.layer.tar.gz")
    out = work / f"{_slug(name)}.tar"
    imagearchive.write_archive(out, [name], [*base, layer], entrypoint=entrypoint)
    layer.path.unlink()
    return out


def _slug(image: str) -> str:
    return image.replace("/", "_").replace(":", "_")


def build_images(log=print) -> NodeImages:
    """Image archives for kubeadm's control plane, kube-proxy, CoreDNS and the pod sandbox."""
    comps = versions.load()
    k8s = comps["kubernetes"].version
    etcd_tag = etcd_image_tag()
    inputs = {n: json.loads((versions.bin_dir(comps[n]) / ".built.json").read_text())["built_at"]
              for n in ("kubernetes", "kubernetes-node", "etcd", "coredns", "pause")}
    inputs["iptables_rootfs"] = IPTABLES_PACKAGES
    inputs["format"] = 1  # bump when this function changes what it writes
    work = versions.cache_root() / "kind" / f"images-{k8s}"
    stamp = work / ".built.json"
    if stamp.exists() and json.loads(stamp.read_text()).get("inputs") == inputs:
        archives = {k: Path(v) for k, v in json.loads(stamp.read_text())["archives"].items()}
        if all(p.exists() for p in archives.values()):
            return NodeImages(k8s, etcd_tag, archives)
    work.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    coredns = comps["coredns"].version
    bin_ = versions.binary_path
    archives: dict[str, Path] = {}
    for component in ("kube-apiserver", "kube-controller-manager", "kube-scheduler"):
        name = f"registry.k8s.io/{component}:{k8s}"
        # kubeadm's static pods name the command (`kube-apiserver ...`): it must be on PATH
        archives[name] = _single_binary_image(work, name, bin_(component), f"/usr/local/bin/{component}",
                                              [f"/usr/local/bin/{component}"])
    name = f"registry.k8s.io/etcd:{etcd_tag}"
    archives[name] = _single_binary_image(work, name, bin_("etcd"), "/usr/local/bin/etcd", ["/usr/local/bin/etcd"])
    name = f"registry.k8s.io/coredns/coredns:{coredns}"  # kubeadm's Deployment passes only args
    archives[name] = _single_binary_image(work, name, bin_("coredns"), "/coredns", ["/coredns"])
    name = pause_image()
    archives[name] = _single_binary_image(work, name, bin_("pause"), "/pause", ["/pause"])
    log(f"[node images] Debian userland for kube-proxy ({', '.join(IPTABLES_PACKAGES)})")
    rootfs_started = time.monotonic()
    userland_tar = rootfs.rootfs_tar("iptables", IPTABLES_PACKAGES, log=log)  # timed on its own
    rootfs_seconds = time.monotonic() - rootfs_started
    userland = imagearchive.tar_layer(userland_tar, work / "iptables-rootfs.layer.tar.gz")
    name = f"registry.k8s.io/kube-proxy:{k8s}"
    archives[name] = _single_binary_image(work, name, bin_("kube-proxy"), "/usr/local/bin/kube-proxy",
                                          ["/usr/local/bin/kube-proxy"], base=[userland])
    userland.path.unlink()
    timings.record("image archives (control plane, kube-proxy, CoreDNS, pause)",
                   time.monotonic() - started - rootfs_seconds)
    stamp.write_text(json.dumps({"inputs": inputs, "archives": {k: str(v) for k, v in archives.items()}}, indent=2))
    log(f"[node images] {len(archives)} image archives in {work}")
    return NodeImages(k8s, etcd_tag, archives)
