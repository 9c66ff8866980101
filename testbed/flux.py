"""Flux (source-controller, kustomize-controller, notification-controller) as host processes
against the testbed's kube-apiserver: `gitops-conformance testbed up --engine flux`.

Each controller runs as its Deployment in Flux's install manifests would, with the in-cluster
addresses replaced by loopback ports (flags read from each module's main.go):
- source-controller serves the artifacts it builds from Git on --storage-addr and writes
  --storage-adv-addr into every artifact URL, which kustomize-controller then downloads;
- every controller sends its events to notification-controller (--events-addr), which also
  serves the Receiver webhooks on --receiverAddr;
- out of cluster, controller-runtime takes its cluster from KUBECONFIG, and RUNTIME_NAMESPACE
  names the namespace a pod would have been in (events, leader election, SOPS secrets).

Flagger (progressive delivery, the canary item) runs beside them as its Deployment in Flagger's
own kustomize/nginx overlay would: `-mesh-provider=nginx` (canary weights as annotations on a
copy of the app's Ingress, the traffic routing the Argo CD path uses too) and `-metrics-server`
the testbed's Prometheus.
"""
from __future__ import annotations

from pathlib import Path

import yaml

from . import settings, versions
from .layout import Layout
from .procs import ProcessSpec

FLUX_NAMESPACE = "flux-system"
# component name (process, log file) -> versions.yaml component building it
CONTROLLERS = {
    "source-controller": "flux-source-controller",
    "kustomize-controller": "flux-kustomize-controller",
    "notification-controller": "flux-notification-controller",
}
# progressive delivery beside the controllers (not a Flux controller: no /readyz, its own CRDs)
FLAGGER = "flagger"


def crd_docs() -> list[dict]:
    """The CRDs of the pinned controllers, from each module's config/crd/bases."""
    docs = []
    for component in CONTROLLERS.values():
        for path in sorted((versions.asset_dir(component) / "config" / "crd" / "bases").glob("*.yaml")):
            docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs + flagger_crd_docs()


def flagger_crd_docs() -> list[dict]:
    """Flagger's CRDs (Canary, MetricTemplate, AlertProvider), from the pinned release."""
    path = versions.asset_dir(FLAGGER) / "artifacts" / "flagger" / "crd.yaml"
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _addr(lay: Layout, port_name: str) -> str:
    return f"127.0.0.1:{lay.ports[port_name]}"


def _common(lay: Layout, name: str) -> tuple[dict[str, str], list[str]]:
    env = {"KUBECONFIG": str(lay.kubeconfig), "RUNTIME_NAMESPACE": FLUX_NAMESPACE,
           "HOME": str(lay.dir("flux", name, "home")), "TMPDIR": str(lay.dir("flux", name, "tmp"))}
    argv = [str(versions.binary_path(name)),
            f"--metrics-addr={_addr(lay, f'flux-{name}-metrics')}",
            f"--health-addr={_addr(lay, f'flux-{name}-health')}",
            "--log-level=info", "--log-encoding=console",
            "--watch-all-namespaces=true"]
    return env, argv


def _spec(lay: Layout, name: str, env: dict[str, str], argv: list[str]) -> ProcessSpec:
    health = lay.ports[f"flux-{name}-health"]
    return ProcessSpec(name=name, port=health, env=env, argv=argv,
                       health_url=f"http://127.0.0.1:{health}/readyz",
                       health_timeout=settings.HEALTH_TIMEOUT.get(name, settings.HEALTH_TIMEOUT["default"]))


def events_url(lay: Layout) -> str:
    return f"http://{_addr(lay, 'flux-notification-controller-events')}/"


def source_controller(lay: Layout) -> ProcessSpec:
    env, argv = _common(lay, "source-controller")
    storage = _addr(lay, "flux-source-controller-storage")
    argv += [f"--storage-path={lay.dir('flux', 'source-controller', 'storage')}",
             f"--storage-addr={storage}", f"--storage-adv-addr={storage}",
             f"--events-addr={events_url(lay)}"]
    return _spec(lay, "source-controller", env, argv)


def kustomize_controller(lay: Layout, *, no_cross_namespace_refs: bool = True) -> ProcessSpec:
    """--no-cross-namespace-refs=true: Flux's multi-tenancy lockdown (the flux2-multi-tenancy
    setup patches it onto kustomize-controller), which a hardened user setup runs with: a
    Kustomization may only use a source in its own namespace. The rbac item checks it;
    `no_cross_namespace_refs=False` is the self-test running without it."""
    env, argv = _common(lay, "kustomize-controller")
    argv += [f"--events-addr={events_url(lay)}",
             f"--no-cross-namespace-refs={str(no_cross_namespace_refs).lower()}"]
    return _spec(lay, "kustomize-controller", env, argv)


def notification_controller(lay: Layout) -> ProcessSpec:
    env, argv = _common(lay, "notification-controller")
    argv += [f"--events-addr={_addr(lay, 'flux-notification-controller-events')}",
             f"--receiverAddr={_addr(lay, 'flux-notification-controller-receiver')}"]
    return _spec(lay, "notification-controller", env, argv)


def flagger(lay: Layout) -> ProcessSpec:
    """Flagger watching every namespace, nginx provider, the testbed's Prometheus."""
    port = lay.ports["flagger-http"]
    env = {"HOME": str(lay.dir("flux", FLAGGER, "home")), "TMPDIR": str(lay.dir("flux", FLAGGER, "tmp"))}
    argv = [str(versions.binary_path(FLAGGER)), f"-kubeconfig={lay.kubeconfig}", f"-port={port}",
            "-mesh-provider=nginx", f"-metrics-server={lay.url('prometheus')}",
            "-log-level=info", "-zap-encoding=console", "-enable-leader-election=false"]
    return ProcessSpec(name=FLAGGER, port=port, env=env, argv=argv, health_url=f"http://127.0.0.1:{port}/healthz",
                       health_timeout=settings.HEALTH_TIMEOUT.get(FLAGGER, settings.HEALTH_TIMEOUT["default"]))


def specs(lay: Layout) -> list[ProcessSpec]:
    """In start order: events go to notification-controller, so it comes first."""
    return [notification_controller(lay), source_controller(lay), kustomize_controller(lay), flagger(lay)]


def tool_dir(lay: Layout) -> Path:
    """The runner's PATH entry (`testbed env`, the suite): kubectl and the flux CLI."""
    d = lay.dir("bin")
    for name in ("kubectl", "flux"):
        link, target = d / name, versions.binary_path(name)
        if link.is_symlink() or link.exists():
            link.unlink()
        if target.exists():
            link.symlink_to(target)
    return d


def binaries_missing() -> list[str]:
    """The controllers `up` needs (the flux CLI is the runner's tool: without it only the
    `flux check` install check fails, saying so)."""
    return [b for c in (*CONTROLLERS.values(), FLAGGER) for b in versions.load()[c].binaries
            if not versions.binary_path(b).exists()]


def ca_file(lay: Layout) -> Path:
    """The testbed CA: what a GitRepository's secret carries as ca.crt for the HTTPS Git server."""
    return lay.pki / "ca.crt"
