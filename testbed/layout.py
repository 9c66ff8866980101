"""Where a testbed's files live and which ports it uses (persisted in state.json)."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from .procs import free_port

PORT_NAMES = [
    "etcd", "etcd-peer", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok",
    "redis", "argocd-repo-server", "argocd-repo-server-metrics", "argocd-server", "argocd-server-metrics",
    "argocd-application-controller-metrics", "argocd-notifications-metrics",
    "rollouts-healthz", "rollouts-metrics", "image-updater-health", "image-updater-metrics",
    "git-http", "git-https", "git-ssh", "registry", "receiver", "trafficgen", "prometheus",
    # Flux (`up --engine flux`, testbed/flux.py)
    "flux-source-controller-metrics", "flux-source-controller-health", "flux-source-controller-storage",
    "flux-kustomize-controller-metrics", "flux-kustomize-controller-health",
    "flux-notification-controller-metrics", "flux-notification-controller-health",
    "flux-notification-controller-events", "flux-notification-controller-receiver", "flagger-http",
]


@dataclasses.dataclass
class Layout:
    state_dir: Path
    ports: dict[str, int]

    @classmethod
    def allocate(cls, state_dir: Path) -> "Layout":
        """Fresh free ports on 127.0.0.1, so two testbeds can run side by side."""
        ports: dict[str, int] = {}
        while len(ports) < len(PORT_NAMES):  # free_port may hand out a port twice; keep them distinct
            p = free_port()
            if p not in ports.values():
                ports[PORT_NAMES[len(ports)]] = p
        return cls(Path(state_dir).resolve(), ports)

    @classmethod
    def load(cls, state_dir: Path) -> "Layout":
        data = json.loads((Path(state_dir) / "state.json").read_text())
        return cls(Path(data["state_dir"]), {k: int(v) for k, v in data["ports"].items()})

    def save(self, extra: dict | None = None) -> None:
        data = {"state_dir": str(self.state_dir), "ports": self.ports, **(extra or {})}
        (self.state_dir / "state.json").write_text(json.dumps(data, indent=2))

    def dir(self, *parts: str) -> Path:
        p = self.state_dir.joinpath(*parts)
        p.mkdir(parents=True, exist_ok=True)
        return p

    @property
    def pki(self) -> Path:
        return self.dir("pki")

    @property
    def kubeconfig(self) -> Path:
        """Admin kubeconfig (what `env` exports as KUBECONFIG)."""
        return self.state_dir / "kubeconfig"

    @property
    def argocd_kubeconfig(self) -> Path:
        """Same identity, default namespace `argocd`: Argo CD out of cluster takes its namespace from here."""
        return self.state_dir / "argocd.kubeconfig"

    def url(self, name: str, scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.ports[name]}"
