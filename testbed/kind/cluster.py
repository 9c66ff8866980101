"""The kind cluster config, in one place: what the kind provider and the kind tests create.

Two kinds of settings:
- for the offline node image (testbed/kind/nodeimage.py), wherever it runs: no default CNI
  (its CNI is a static config for one node), the etcd image tag it carries;
- for this machine's quirks, added only when the machine has them (detected, never assumed):
  cgroup v1 (kubelet 1.36 refuses it unless told) and a capability bounding set without
  CAP_SYS_RESOURCE (containerd must not lower oom_score_adj).
With upstream's node image (`node_image=None`) on a normal machine only kind's defaults remain.
"""
from __future__ import annotations

from pathlib import Path

import yaml

CAP_SYS_RESOURCE = 24  # include/uapi/linux/capability.h


def host_is_cgroup_v1() -> bool:
    return not Path("/sys/fs/cgroup/cgroup.controllers").exists()


def host_can_lower_oom_score_adj() -> bool:
    """Lowering oom_score_adj needs CAP_SYS_RESOURCE; a container cannot have more than the host's bounding set."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapBnd:"):
            return bool(int(line.split()[1], 16) & (1 << CAP_SYS_RESOURCE))
    return True


def cluster_config(node_image: str | None, *, name: str | None = None) -> dict:
    """kind's v1alpha4 Cluster for a single-node cluster; `node_image` None = kind's default image."""
    from . import images, nodeimage

    node: dict = {"role": "control-plane"}
    config: dict = {"kind": "Cluster", "apiVersion": "kind.x-k8s.io/v1alpha4"}
    if name:
        config["name"] = name
    kubeadm_patches: list[str] = []
    kubelet: dict = {}  # one KubeletConfiguration patch
    containerd_patches: list[str] = []
    if node_image:
        node["image"] = node_image
    if node_image and node_image.startswith(nodeimage.NODE_REPO + ":"):
        # our node image has no kindnetd (not served by the module proxy): its static ptp CNI
        # config hands out addresses from kind's default pod subnet, on one node
        config["networking"] = {"disableDefaultCNI": True, "podSubnet": nodeimage.POD_SUBNET}
        # its etcd image carries the testbed's etcd, tagged as such (kubeadm would ask for 3.6.8-0)
        kubeadm_patches.append(yaml.safe_dump({
            "kind": "ClusterConfiguration",
            "etcd": {"local": {"imageTag": images.etcd_image_tag()}},
        }, sort_keys=False))
        # its images are loaded from archives, and the suite's registry serves myapp's same
        # bytes under another name: kubelet >= 1.33 (KEP-2535) then re-pulls a loaded image
        # whose ID it once pulled under another name ("ghcr.io/username/myapp:v1.0.0" after
        # "localhost:<port>/myapp:v1.0.0", ErrImagePull), so IfNotPresent trusts what is present
        kubelet["imagePullCredentialsVerificationPolicy"] = "NeverVerify"
    if host_is_cgroup_v1():
        # MACHINE QUIRK (cgroup v1 host): kubelet >= 1.35 refuses to start on cgroup v1 unless
        # failCgroupV1 is false. Never added on a cgroup v2 host.
        kubelet["failCgroupV1"] = False
    if not host_can_lower_oom_score_adj():
        # MACHINE QUIRK (no CAP_SYS_RESOURCE in the bounding set): runc fails every CRI pod with
        # "nsexec: failed to update /proc/self/oom_score_adj: Permission denied" unless
        # containerd keeps oom_score_adj at or above its own (kind sets this itself under userns).
        containerd_patches.append('[plugins."io.containerd.grpc.v1.cri"]\n  restrict_oom_score_adj = true\n')
    if kubelet:
        kubeadm_patches.append(yaml.safe_dump({"kind": "KubeletConfiguration", **kubelet}, sort_keys=False))
    config["nodes"] = [node]
    if kubeadm_patches:
        config["kubeadmConfigPatches"] = kubeadm_patches
    if containerd_patches:
        config["containerdConfigPatches"] = containerd_patches
    return config


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (the patches) as literal blocks, as people write kind configs."""


_Dumper.add_representer(str, lambda d, s: d.represent_scalar(
    "tag:yaml.org,2002:str", s, style="|" if "\n" in s else None))


def render(node_image: str | None, *, name: str | None = None) -> str:
    return yaml.dump(cluster_config(node_image, name=name), Dumper=_Dumper, sort_keys=False)


def write(path: Path, node_image: str | None, *, name: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(node_image, name=name))
    return path
