"""Kubernetes control plane as host processes: etcd, kube-apiserver, kube-controller-manager,
kube-scheduler, and kwok for nodes and pod status (no container ever runs)."""
from __future__ import annotations

from pathlib import Path

import yaml

from . import settings, versions
from .layout import Layout
from .procs import ProcessSpec, http_ok


def _bin(name: str) -> str:
    return str(versions.binary_path(name))


def etcd(lay: Layout) -> ProcessSpec:
    client, peer = lay.url("etcd"), lay.url("etcd-peer")
    return ProcessSpec(
        name="etcd", port=lay.ports["etcd"], health_url=f"{client}/health",
        health_timeout=settings.HEALTH_TIMEOUT["etcd"],
        argv=[_bin("etcd"), "--name", "testbed", "--data-dir", str(lay.dir("etcd")),
              "--listen-client-urls", client, "--advertise-client-urls", client,
              "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
              "--initial-cluster", f"testbed={peer}",
              "--unsafe-no-fsync",  # test data only: fsync dominates API latency on small disks
              "--quota-backend-bytes", str(2 * 1024**3), "--log-level", "warn"],
    )


def kube_apiserver(lay: Layout) -> ProcessSpec:
    pki = lay.pki
    return ProcessSpec(
        name="kube-apiserver", port=lay.ports["kube-apiserver"],
        health_check=lambda: http_ok(f"{lay.url('kube-apiserver', 'https')}/readyz"),
        health_timeout=settings.HEALTH_TIMEOUT["kube-apiserver"],
        argv=[_bin("kube-apiserver"),
              "--etcd-servers", lay.url("etcd"),
              "--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1",
              "--secure-port", str(lay.ports["kube-apiserver"]),
              "--tls-cert-file", str(pki / "apiserver.crt"), "--tls-private-key-file", str(pki / "apiserver.key"),
              "--client-ca-file", str(pki / "ca.crt"),
              "--token-auth-file", str(lay.state_dir / "tokens.csv"),
              "--authorization-mode", "RBAC",
              "--anonymous-auth=true",  # only for /readyz, /livez, /version (RBAC still applies)
              "--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
              "--service-account-key-file", str(pki / "sa.pub"),
              "--service-account-signing-key-file", str(pki / "sa.key"),
              "--service-cluster-ip-range", "10.96.0.0/16",
              "--allow-privileged=true",
              "--enable-priority-and-fairness=false",
              "--profiling=false", "--v=1"],
    )


def _component_kubeconfig_flags(lay: Layout) -> list[str]:
    k = str(lay.kubeconfig)
    return ["--kubeconfig", k, "--authentication-kubeconfig", k, "--authorization-kubeconfig", k]


def kube_controller_manager(lay: Layout) -> ProcessSpec:
    pki = lay.pki
    port = lay.ports["kube-controller-manager"]
    return ProcessSpec(
        name="kube-controller-manager", port=port,
        health_url=f"https://127.0.0.1:{port}/healthz",
        health_timeout=settings.HEALTH_TIMEOUT["kube-controller-manager"],
        argv=[_bin("kube-controller-manager"), *_component_kubeconfig_flags(lay),
              "--bind-address", "127.0.0.1", "--secure-port", str(port), "--leader-elect=false",
              "--service-account-private-key-file", str(pki / "sa.key"),
              "--root-ca-file", str(pki / "ca.crt"),
              "--cluster-signing-cert-file", str(pki / "ca.crt"), "--cluster-signing-key-file", str(pki / "ca.key"),
              "--use-service-account-credentials=false",
              # no cloud, no real nodes: skip controllers that only make sense with kubelets
              "--controllers", "*,-nodeipam,-service-lb-controller,-route,-cloud-node-lifecycle,-persistentvolume-binder,-attachdetach,-persistentvolume-expander,-ephemeral-volume,-pv-protection,-pvc-protection",
              "--v=1"],
    )


def kube_scheduler(lay: Layout) -> ProcessSpec:
    port = lay.ports["kube-scheduler"]
    return ProcessSpec(
        name="kube-scheduler", port=port, health_url=f"https://127.0.0.1:{port}/healthz",
        health_timeout=settings.HEALTH_TIMEOUT["kube-scheduler"],
        argv=[_bin("kube-scheduler"), *_component_kubeconfig_flags(lay),
              "--bind-address", "127.0.0.1", "--secure-port", str(port), "--leader-elect=false", "--v=1"],
    )


KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node"


def kwok_stages_file(lay: Layout) -> Path:
    """kwok v0.8 standalone has no built-in stages: take the stock node and pod stages
    from the pinned kwok module (copied at build time) and hand them over with --config."""
    root = versions.asset_dir("kwok") / "kustomize" / "stage"
    docs = []
    for sub in ("node/fast", "node/heartbeat", "pod/fast"):
        for f in sorted((root / sub).glob("*.yaml")):
            if f.name != "kustomization.yaml":
                docs.extend(d for d in yaml.safe_load_all(f.read_text()) if d)
    out = lay.state_dir / "kwok-stages.yaml"
    out.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return out


def kwok(lay: Layout) -> ProcessSpec:
    port = lay.ports["kwok"]
    return ProcessSpec(
        name="kwok", port=port, health_url=f"http://127.0.0.1:{port}/healthz",
        health_timeout=settings.HEALTH_TIMEOUT["kwok"],
        argv=[_bin("kwok"), "--kubeconfig", str(lay.kubeconfig),
              "--manage-nodes-with-annotation-selector", f"{KWOK_NODE_ANNOTATION}=fake",
              "--node-ip", "127.0.0.1", "--server-address", f"127.0.0.1:{port}",
              "--cidr", "10.244.0.0/16", "--config", str(kwok_stages_file(lay))],
    )


def fake_nodes(count: int) -> list[dict]:
    """Node objects kwok manages; its stages make them Ready and keep them heartbeating."""
    return [{
        "apiVersion": "v1", "kind": "Node",
        "metadata": {
            "name": f"kwok-node-{i}",
            "annotations": {KWOK_NODE_ANNOTATION: "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {"kubernetes.io/hostname": f"kwok-node-{i}", "kubernetes.io/os": "linux",
                       "kubernetes.io/arch": "amd64", "type": "kwok"},
        },
        "status": {"allocatable": {"cpu": "32", "memory": "256Gi", "pods": "110"},
                   "capacity": {"cpu": "32", "memory": "256Gi", "pods": "110"}},
    } for i in range(count)]
