"""Create, wait for and delete a kind cluster with the project's kind binary (for tests and benchmarks;
the suite's provider drives the same binary through pytest-kind)."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from gitops_conformance.waiter import Waiter
from gitops_conformance.testbed import versions

from . import docker

CREATE_TIMEOUT = 600
DELETE_TIMEOUT = 120


class KindError(RuntimeError):
    pass


def kind_binary() -> Path:
    return versions.binary_path("kind")


def kubectl_binary() -> Path:
    return versions.binary_path("kubectl")


def _env() -> dict[str, str]:
    # kind finds `docker` on PATH, as on any machine; the node image is local, so nothing is pulled
    return dict(os.environ)


def create(name: str, config: Path, kubeconfig: Path, timeout: float = CREATE_TIMEOUT) -> None:
    cmd = [str(kind_binary()), "create", "cluster", "--name", name, "--config", str(config),
           "--kubeconfig", str(kubeconfig), "--retain"]  # --retain: keep a failed node for its logs
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=_env())
    except subprocess.TimeoutExpired:
        raise KindError(f"`kind create cluster --name {name}` did not finish within {timeout:.0f}s") from None
    if proc.returncode != 0:
        raise KindError(f"`kind create cluster --name {name}` failed:\n{(proc.stderr or proc.stdout)[-3000:]}")


def delete(name: str, timeout: float = DELETE_TIMEOUT) -> None:
    subprocess.run([str(kind_binary()), "delete", "cluster", "--name", name], capture_output=True, text=True,
                   timeout=timeout, env=_env(), check=True)


def node_containers(name: str) -> list[str]:
    """Docker containers of cluster `name` (kind labels its nodes)."""
    out = docker.run(["ps", "-aq", "--filter", f"label=io.x-k8s.kind.cluster={name}"], timeout=30)
    return out.split()


def kubectl(kubeconfig: Path, *args: str, timeout: float = 60) -> str:
    proc = subprocess.run([str(kubectl_binary()), "--kubeconfig", str(kubeconfig), *args],
                          capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise KindError(f"kubectl {' '.join(args)}: {proc.stderr.strip()[-600:]}")
    return proc.stdout


def wait_ready(kubeconfig: Path, timeout: float = 300) -> float:
    """Until every node is Ready and CoreDNS answers (its pods Ready); return seconds waited."""
    def all_ready() -> bool:
        nodes = json.loads(kubectl(kubeconfig, "get", "nodes", "-o", "json", timeout=20))["items"]
        dns = json.loads(kubectl(kubeconfig, "-n", "kube-system", "get", "pods", "-l", "k8s-app=kube-dns",
                                 "-o", "json", timeout=20))["items"]
        return bool(nodes and dns) and all(_ready(n) for n in nodes) and all(_ready(p) for p in dns)

    # errors mean the API server may still be starting
    polled = Waiter().poll(all_ready, timeout=timeout, initial_wait=2, max_wait=2,
                           retry_on=(KindError, subprocess.TimeoutExpired, ValueError))
    if not polled.done:
        raise KindError(f"nodes and CoreDNS not Ready within {polled.bound:.0f}s:\n" + _describe(kubeconfig))
    return polled.elapsed


def _ready(obj: dict) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in obj.get("status", {}).get("conditions", []))


def _describe(kubeconfig: Path) -> str:
    try:
        return kubectl(kubeconfig, "get", "nodes,pods", "-A", "-o", "wide", timeout=20)
    except (KindError, subprocess.TimeoutExpired) as exc:
        return f"(cluster not reachable: {exc})"


def node_memory_peak(name: str) -> int | None:
    """Peak memory (bytes) of the cluster's node containers, from their memory cgroups (v1 or v2)."""
    total = 0
    for cid in node_containers(name):
        full = docker.run(["inspect", "--format", "{{.Id}}", cid], timeout=30).strip()
        for path in (Path(f"/sys/fs/cgroup/memory/docker/{full}/memory.max_usage_in_bytes"),
                     Path(f"/sys/fs/cgroup/system.slice/docker-{full}.scope/memory.peak")):
            if path.exists():
                total += int(path.read_text())
                break
        else:
            return None
    return total
