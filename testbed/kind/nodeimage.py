"""`gitops-conformance testbed node-image`: kind's node image, assembled offline.

`kind build node-image` cannot run without a registry (it fetches every image with
`ctr content fetch`), so this does what kind v0.33.0 does, from local parts:

1. base image (kind's images/base): a debootstrap'ed Debian with systemd, containerd, runc and
   the CNI plugins from Debian, plus kind's own files (entrypoint, systemd units, containerd
   config) copied from the pinned kind module, and the same clean-ups as kind's Dockerfile;
2. node image (kind's pkg/build/nodeimage): kubeadm/kubelet/kubectl into /usr/bin,
   /kind/version, the CNI and storage manifests, and every image kubeadm runs imported into
   containerd's k8s.io namespace, then `docker commit`.

Differences from kind's image, each forced by what the module proxy and Debian serve:
- kindnetd is not served (sigs.k8s.io/kindnet and github.com/aojea/kindnet: 403 from the
  proxy), so there is no default CNI DaemonSet: the cluster config sets `disableDefaultCNI`
  and the node ships a static ptp + host-local CNI config (Debian's plugins): ONE node only.
- no storage provisioner (kind's local-path images are not built): no default StorageClass.
- containerd 1.6 / runc 1.1 from Debian (kind ships containerd 2.x / runc 1.4), no crictl
  and no fuse-overlayfs snapshotter (not in Debian bookworm).
"""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from gitops_conformance.testbed import versions

from . import docker, images, rootfs, timings

NODE_REPO = "gitops-conformance/kind-node"
BASE_REPO = "gitops-conformance/kind-base"
ROOTFS_REPO = "gitops-conformance/debian-rootfs"

# kind's base image packages (images/base/Dockerfile), less what only e2e storage tests use,
# plus what kind builds from source and Debian packages: containerd, runc, CNI plugins.
NODE_PACKAGES = [
    "systemd", "conntrack", "iptables", "nftables", "iproute2", "ethtool", "util-linux", "mount", "kmod",
    "libseccomp2", "pigz", "bash", "ca-certificates", "curl", "jq", "procps",
    "containerd", "runc", "containernetworking-plugins",
]
CNI_PLUGINS = ["host-local", "loopback", "ptp", "portmap"]  # what kind's base puts in /opt/cni/bin

# kind's default pod subnet (v1alpha4 networking.podSubnet); the static CNI config hands out
# addresses from it on the single node. testbed/kind/cluster.py keeps the two in step.
POD_SUBNET = "10.244.0.0/16"
POD_MTU = 1400  # this machine's eth0 MTU; harmless (at most 100 bytes smaller) elsewhere

CNI_CONFLIST = {
    "cniVersion": "0.4.0",
    "name": "gitops-conformance-ptp",
    "plugins": [
        {"type": "ptp", "ipMasq": True, "mtu": POD_MTU,
         "ipam": {"type": "host-local", "ranges": [[{"subnet": POD_SUBNET}]], "routes": [{"dst": "0.0.0.0/0"}]}},
        {"type": "portmap", "capabilities": {"portMappings": True}},
    ],
}

# kind applies these at `kind create` (CNI only without disableDefaultCNI); both must hold an object
NO_DEFAULT_CNI = """\
# The CNI of this node image is a static ptp config (/etc/cni/net.d), not kindnetd (not served
# by the Go module proxy). Create clusters with networking.disableDefaultCNI: true.
apiVersion: v1
kind: ConfigMap
metadata: {name: gitops-conformance-cni, namespace: kube-system}
data: {cni: "static ptp + host-local from /etc/cni/net.d, single node"}
"""
NO_DEFAULT_STORAGE = """\
# No storage provisioner in this node image (kind's local-path images are not built):
# there is no default StorageClass.
apiVersion: v1
kind: ConfigMap
metadata: {name: gitops-conformance-storage, namespace: kube-system}
data: {storage: "none"}
"""

# kind's Dockerfile RUN steps (images/base/Dockerfile), adapted to Debian's package paths
BASE_DOCKERFILE = """\
FROM {rootfs}
COPY files/ /
RUN chmod 755 /kind /kind/bin /kind/bin/* /usr/local/bin/entrypoint \\
    && find /lib/systemd/system/sysinit.target.wants/ -name "systemd-tmpfiles-setup.service" -delete \\
    && rm -f /lib/systemd/system/multi-user.target.wants/* \\
    && rm -f /etc/systemd/system/*.wants/* \\
    && rm -f /lib/systemd/system/local-fs.target.wants/* \\
    && rm -f /lib/systemd/system/sockets.target.wants/*udev* \\
    && rm -f /lib/systemd/system/sockets.target.wants/*initctl* \\
    && rm -f /lib/systemd/system/basic.target.wants/* \\
    && echo "ReadKMsg=no" >> /etc/systemd/journald.conf \\
    && ln -sf /usr/lib/systemd/systemd /sbin/init \\
    && for b in containerd ctr containerd-shim-runc-v2; do ln -sf /usr/bin/$b /usr/local/bin/$b; done \\
    && ln -sf /usr/sbin/runc /usr/local/sbin/runc \\
    && mkdir -p /opt/cni/bin && for p in {cni_plugins}; do cp /usr/lib/cni/$p /opt/cni/bin/; done \\
    && ctr oci spec \\
        | jq '.hooks.createContainer[.hooks.createContainer| length] |= . + {{"path": "/kind/bin/mount-product-files.sh"}}' \\
        | jq 'del(.process.rlimits)' > /etc/containerd/cri-base.json \\
    && systemctl enable kubelet.service containerd.service undo-mount-hacks.service \\
    && systemctl mask systemd-binfmt.service \\
    && mkdir -p /etc/kubernetes/manifests
ENV container=docker
STOPSIGNAL SIGRTMIN+3
ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]
"""

CONTAINERD_TIMEOUT = 30
IMPORT_TIMEOUT = 600


class NodeImageError(RuntimeError):
    pass


def node_image_name() -> str:
    """The tag the kind provider passes as `--image` (documented in the README)."""
    return f"{NODE_REPO}:{versions.load()['kubernetes'].version}"


def _kind_files() -> Path:
    return versions.asset_dir("kind") / "images" / "base" / "files"


def _containerd_config(kind_config: str) -> str:
    """kind's containerd config without the fuse-overlayfs proxy snapshotter (not in Debian)."""
    lines, skip = [], False
    for line in kind_config.splitlines():
        if line.startswith("[proxy_plugins"):
            skip = True
            continue
        if skip and line.startswith("["):
            skip = False
        if not skip:
            lines.append(line)
    return "\n".join(lines) + "\n"


def _base_context(ctx: Path, rootfs_image: str) -> None:
    files = ctx / "files"
    shutil.copytree(_kind_files(), files)
    cfg = files / "etc" / "containerd" / "config.toml"
    cfg.write_text(_containerd_config(cfg.read_text()))
    cni = files / "etc" / "cni" / "net.d"
    cni.mkdir(parents=True)
    (cni / "10-gitops-conformance-ptp.conflist").write_text(json.dumps(CNI_CONFLIST, indent=2) + "\n")
    manifests = files / "kind" / "manifests"
    manifests.mkdir(parents=True)
    (manifests / "default-cni.yaml").write_text(NO_DEFAULT_CNI)
    (manifests / "default-storage.yaml").write_text(NO_DEFAULT_STORAGE)
    (ctx / "Dockerfile").write_text(BASE_DOCKERFILE.format(rootfs=rootfs_image, cni_plugins=" ".join(CNI_PLUGINS)))


def _tree_digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(root)).encode() + b"\0" + p.read_bytes())
    return h.hexdigest()[:12]


def build_base(log=print) -> str:
    """kind's base image from Debian packages and kind's files; cached by its inputs."""
    tar = rootfs.rootfs_tar("kind-node", NODE_PACKAGES, log=log)
    rootfs_image = f"{ROOTFS_REPO}:{tar.stem}"
    started = time.monotonic()
    if not docker.image_exists(rootfs_image):
        log(f"[node image] docker import {tar.name}")
        docker.run(["import", str(tar), rootfs_image], timeout=600)
    with tempfile.TemporaryDirectory(prefix="kind-base-") as tmp:
        ctx = Path(tmp)
        _base_context(ctx, rootfs_image)
        base = f"{BASE_REPO}:{versions.load()['kind'].version}-{_tree_digest(ctx)}"
        if docker.image_exists(base):
            return base
        log(f"[node image] docker build {base}")
        # the classic builder works offline with a local FROM (BuildKit would look for a registry)
        docker.run(["build", "-q", "-t", base, str(ctx)], timeout=900, env={"DOCKER_BUILDKIT": "0"})
        timings.record("base image (docker import + build)", time.monotonic() - started)
    return base


def build(force: bool = False, log=print) -> str:
    """Build (or find cached) the node image; return its name."""
    started = time.monotonic()
    docker.require_daemon()
    images.build_binaries(log=log)
    node_images = images.build_images(log=log)
    base = build_base(log=log)
    name = node_image_name()
    comps = versions.load()
    bins = {b: versions.binary_path(b) for b in ("kubeadm", "kubelet", "kubectl")}
    inputs = hashlib.sha256(json.dumps({
        "base": docker.image_id(base),
        "binaries": {b: json.loads((p.parent / ".built.json").read_text())["built_at"] for b, p in bins.items()},
        "images": {n: p.stat().st_mtime for n, p in node_images.archives.items()},
    }, sort_keys=True).encode()).hexdigest()[:16]
    if not force and docker.image_label(name, "gitops-conformance.inputs") == inputs:
        log(f"[node image] {name} cached (inputs {inputs})")
        return name
    assembly_started = time.monotonic()
    container = f"gitops-conformance-kind-build-{uuid.uuid4().hex[:8]}"
    # like kind: a plain (unprivileged) container that sleeps while we exec into it
    docker.run(["run", "-d", "--entrypoint=sleep", f"--name={container}", "--security-opt", "seccomp=unconfined",
                base, "infinity"])
    try:
        for b, path in bins.items():
            docker.run(["cp", str(path), f"{container}:/usr/bin/{b}"])
        _exec(container, "chmod 0755 /usr/bin/kubeadm /usr/bin/kubelet /usr/bin/kubectl")
        _exec(container, f"printf %s {comps['kubernetes'].version} > /kind/version")
        _import_images(container, node_images, log)
        docker.run(["commit", "--change", 'ENTRYPOINT [ "/usr/local/bin/entrypoint", "/sbin/init" ]',
                    "--change", f"LABEL gitops-conformance.inputs={inputs}", container, name], timeout=900)
    finally:
        docker.run(["rm", "-f", "-v", container], check=False)
    timings.record("node image (binaries in, images imported, commit)", time.monotonic() - assembly_started)
    log(f"[node image] {name} built in {time.monotonic() - started:.0f}s")
    return name


def _exec(container: str, script: str, stdin=None, timeout: float = 120) -> str:
    return docker.run(["exec", *(["-i"] if stdin else []), container, "bash", "-c", script],
                      stdin=stdin, timeout=timeout)


def _import_images(container: str, node_images: images.NodeImages, log) -> None:
    """Preload every image into containerd's k8s.io namespace, as kind's imageimporter does."""
    _exec(container, "nohup containerd > /var/log/containerd-build.log 2>&1 &")
    _exec(container, f"for i in $(seq {CONTAINERD_TIMEOUT}); do [ -S /run/containerd/containerd.sock ] && "
                     "ctr version >/dev/null 2>&1 && exit 0; sleep 1; done; "
                     "echo 'containerd did not start' >&2; tail -n 20 /var/log/containerd-build.log >&2; exit 1")
    for image, archive in node_images.archives.items():
        log(f"[node image] import {image}")
        with open(archive, "rb") as f:
            _exec(container, "ctr --namespace=k8s.io images import --label=io.cri-containerd.pinned=pinned "
                             "--all-platforms --no-unpack --digests -", stdin=f, timeout=IMPORT_TIMEOUT)
    have = set(_exec(container, "ctr --namespace=k8s.io images list -q").split())
    missing = [n for n in node_images.names if n not in have]
    _exec(container, "pkill containerd; for i in $(seq 30); do pgrep -x containerd >/dev/null || exit 0; sleep 1; done")
    if missing:
        raise NodeImageError(f"not in the node's containerd after import: {', '.join(missing)}")
