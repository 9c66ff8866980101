"""The whole testbed: start in dependency order, wait for health, describe, stop.

`Testbed(state_dir)` is the Python API the fixtures use; the CLI's `testbed up |
down | status | env` are thin wrappers over it.
"""
from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import yaml

from . import argo, certs, controlplane, flux, peers_setup, versions
from .layout import Layout
from .procs import ComponentFailed, ProcessSpec, Supervisor, pid_alive, port_open

DEFAULT_STATE_DIR = Path(__file__).resolve().parent.parent / ".testbed"
# The GitOps engine a testbed runs beside the control plane and the peers: one at a time, so
# the machine's two cores are not shared by two idle engines and nothing of one engine can
# act on the other's objects.
ENGINES = ("argocd", "flux")


class TestbedError(RuntimeError):
    """A testbed operation failed; the message is one readable line (plus a log tail)."""

    __test__ = False  # not a pytest test class, despite the name


class Testbed:
    __test__ = False  # not a pytest test class

    def __init__(self, state_dir: Path | str | None = None, out: Callable[[str], None] | None = None,
                 engine: str = "argocd"):
        if engine not in ENGINES:
            raise TestbedError(f"engine {engine!r}: the testbed runs one of {', '.join(ENGINES)}")
        self.engine = engine  # what `up` starts; an attached testbed says its own (running_engine)
        self.state_dir = Path(state_dir or os.environ.get("GITOPS_CONFORMANCE_TESTBED_DIR") or DEFAULT_STATE_DIR).resolve()
        self.sup = Supervisor(self.state_dir)
        self.out = out or (lambda line: print(line, flush=True))
        self._started: list[str] = []
        self._started_here = False

    # ----- queries -------------------------------------------------------------
    @property
    def layout(self) -> Layout:
        return Layout.load(self.state_dir)

    def mounted_config(self, configmap: str) -> Path:
        """The directory the ConfigMap mounter writes `configmap`'s keys to (Argo CD's files)."""
        from gitops_conformance.testbed.mounter import MOUNTS

        return self.layout.dir("argocd", MOUNTS[configmap])

    def is_up(self) -> bool:
        if not (self.state_dir / "state.json").exists():
            return False
        pids = self.sup.pids()
        return bool(pids) and all(pid_alive(p) for p in pids.values())

    def running(self) -> dict[str, int]:
        """Component -> PID of what this state dir's records say still runs (any of it)."""
        return {name: pid for name, pid in self.sup.pids().items() if pid_alive(pid)}

    def running_engine(self) -> str:
        """The engine this state dir's testbed was started with (argocd for older state files)."""
        return json.loads((self.state_dir / "state.json").read_text()).get("engine", "argocd")

    def endpoints(self) -> dict[str, str]:
        return json.loads((self.state_dir / "state.json").read_text()).get("endpoints", {})

    def status(self) -> list[dict]:
        if not (self.state_dir / "state.json").exists():
            return []
        data = json.loads((self.state_dir / "state.json").read_text())
        rows = []
        for name, pid in self.sup.pids().items():
            port = data.get("component_ports", {}).get(name)
            alive = pid_alive(pid)
            rows.append({"component": name, "pid": pid, "port": port, "alive": alive,
                         "healthy": alive and (port is None or port_open(port))})
        return rows

    def env(self) -> dict[str, str]:
        """Shell exports for a user's terminal (`eval "$(gitops-conformance testbed env)"`)."""
        e = self.endpoints()
        engine = {"ARGOCD_SERVER": e["argocd_server"].removeprefix("http://"),
                  "ARGOCD_OPTS": "--plaintext"} if "argocd_server" in e else {}  # plain HTTP on loopback
        return {
            "KUBECONFIG": str(self.layout.kubeconfig),
            **engine,
            "GITOPS_TESTBED_GIT_URL": e["git_http"],
            "GITOPS_TESTBED_GIT_SSH_URL": e["git_ssh"],
            "GITOPS_TESTBED_REGISTRY": e["registry"],
            "GITOPS_TESTBED_RECEIVER_URL": e["receiver"],
            "GITOPS_TESTBED_PROMETHEUS_URL": e["prometheus"],
            "PATH": f"{self.state_dir / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        }

    # ----- lifecycle -------------------------------------------------------------
    def __enter__(self) -> "Testbed":
        if self.is_up():
            self.out(f"testbed already up in {self.state_dir}; attaching")
        else:
            self.up()
            self._started_here = True
        return self

    def __exit__(self, *exc) -> None:
        if self._started_here:
            self.down()

    def up(self) -> dict[str, str]:
        missing = [b for c in versions.load().values() if c.needed_by == "testbed"
                   for b in c.binaries if not versions.binary_path(b).exists()]
        if missing:
            raise TestbedError(f"binaries not built: {', '.join(missing)}; run `gitops-conformance testbed build`")
        if self.engine == "flux" and flux.binaries_missing():
            raise TestbedError(f"Flux binaries not built: {', '.join(flux.binaries_missing())}; run "
                               "`gitops-conformance testbed build --engine flux`")
        self._clean_stale()
        t0 = time.monotonic()
        lay = Layout.allocate(self.state_dir)
        lay.save()
        try:
            self._up(lay, t0)
        except (ComponentFailed, subprocess.CalledProcessError, TestbedError) as exc:
            if isinstance(exc, subprocess.CalledProcessError):  # say what kubectl said, not just its exit code
                exc = TestbedError(f"`{' '.join(map(str, exc.cmd[3:]))}` failed: {(exc.stderr or '').strip()[-500:]}")
            self.out(f"testbed up failed: {exc}")
            if isinstance(exc, ComponentFailed):
                self.out(f"--- last lines of {exc.component}'s log ({self.sup.log_path(exc.component)}) ---\n{exc.log_tail}")
            self.out("stopping everything that was started")
            self.down(quiet=True)
            raise TestbedError(str(exc)) from exc
        except BaseException:  # Ctrl-C during up: leave nothing running
            self.down(quiet=True)
            raise
        self.out(f"testbed up in {time.monotonic() - t0:.1f}s ({self.state_dir})")
        return self.endpoints()

    def _start(self, spec: ProcessSpec, t0: float) -> None:
        pid = self.sup.start(spec)
        self._started.append(spec.name)
        self.sup.wait_healthy(spec, pid)
        self._ports[spec.name] = spec.port
        self.out(f"  {spec.name:<31} pid {pid:<7} {('127.0.0.1:' + str(spec.port)) if spec.port else '':<16} healthy ({time.monotonic() - t0:.1f}s)")

    def _up(self, lay: Layout, t0: float) -> None:
        self._ports: dict[str, int | None] = {}
        certs.ensure_pki(lay.pki)
        tokens = certs.ensure_tokens(lay.state_dir / "tokens.csv")
        server = lay.url("kube-apiserver", "https")
        lay.kubeconfig.write_text(certs.kubeconfig(server, lay.pki / "ca.crt", tokens["admin"]))
        lay.argocd_kubeconfig.write_text(certs.kubeconfig(server, lay.pki / "ca.crt", tokens["admin"], namespace=argo.ARGOCD_NAMESPACE))
        for f in (lay.kubeconfig, lay.argocd_kubeconfig):
            f.chmod(0o600)

        self.out("control plane")
        for spec in (controlplane.etcd(lay), controlplane.kube_apiserver(lay)):
            self._start(spec, t0)
        self._bootstrap_cluster(lay)
        for spec in (controlplane.kube_controller_manager(lay), controlplane.kube_scheduler(lay), controlplane.kwok(lay)):
            self._start(spec, t0)

        self.out("peers")
        peer_endpoints = {}
        for spec, endpoint in peers_setup.peer_specs(lay):
            self._start(spec, t0)
            peer_endpoints.update(endpoint)

        endpoints = {"kube_apiserver": lay.url("kube-apiserver", "https"), **peer_endpoints}
        if self.engine == "flux":
            endpoints.update(self._up_flux(lay, t0))
        else:
            endpoints.update(self._up_argo(lay, t0))
        lay.save({"engine": self.engine, "endpoints": endpoints, "component_ports": self._ports,
                  "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})

    def _up_argo(self, lay: Layout, t0: float) -> dict[str, str]:
        self.out("argo")
        self._bootstrap_argo(lay)
        self._start(argo.redis(lay), t0)
        self._start(self._mounter(lay), t0)
        for spec in (argo.repo_server(lay), argo.application_controller(lay), argo.api_server(lay),
                     argo.notifications(lay), argo.rollouts_controller(lay),
                     argo.image_updater(lay, peers_setup.registries_conf(lay))):
            self._start(spec, t0)
        return {"argocd_server": lay.url("argocd-server")}

    def _up_flux(self, lay: Layout, t0: float) -> dict[str, str]:
        self.out("flux")
        self._apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": flux.FLUX_NAMESPACE}}],
                    "the flux-system namespace")
        self._apply_crds(flux.crd_docs(), "Flux CRDs")
        flux.tool_dir(lay)
        for spec in flux.specs(lay):
            self._start(spec, t0)
        return {"flux_receiver": lay.url("flux-notification-controller-receiver"),
                "flux_events": flux.events_url(lay).rstrip("/")}

    # ----- one component (self-tests break the setup on purpose, then restore it) ------------
    def component_spec(self, name: str, **overrides) -> ProcessSpec:
        lay = self.layout
        builders = {
            "argocd-application-controller": argo.application_controller, "argocd-server": argo.api_server,
            "argocd-repo-server": argo.repo_server, "argocd-notifications": argo.notifications,
            "rollouts-controller": argo.rollouts_controller,
            "argocd-image-updater": lambda lay, **kw: argo.image_updater(lay, peers_setup.registries_conf(lay), **kw),
            "kube-controller-manager": controlplane.kube_controller_manager,
            "source-controller": flux.source_controller, "kustomize-controller": flux.kustomize_controller,
            "notification-controller": flux.notification_controller, flux.FLAGGER: flux.flagger,
        }
        if name not in builders:
            raise TestbedError(f"component {name!r} cannot be restarted on its own (one of: {', '.join(builders)})")
        return builders[name](lay, **overrides)

    def stop_component(self, name: str) -> None:
        self.sup.stop(name)

    @contextlib.contextmanager
    def stopped(self, name: str):
        """`with testbed.stopped("rollouts-controller"):` the component is down inside, up again after."""
        self.stop_component(name)
        try:
            yield
        finally:
            self.start_component(name)

    def start_component(self, name: str, **overrides) -> None:
        """(Re)start one component, e.g. start_component("argocd-application-controller", resync_seconds=0)."""
        spec = self.component_spec(name, **overrides)
        self.sup.stop(name)
        pid = self.sup.start(spec)
        self.sup.wait_healthy(spec, pid)

    def _mounter(self, lay: Layout) -> ProcessSpec:
        return ProcessSpec(
            name="configmap-mounter",
            argv=[sys.executable, "-m", "gitops_conformance.testbed.mounter", "--kubeconfig", str(lay.kubeconfig),
                  "--namespace", argo.ARGOCD_NAMESPACE, "--ssh-dir", str(lay.dir("argocd", "ssh")),
                  "--tls-dir", str(lay.dir("argocd", "tls"))],
            env={"PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
            health_check=lambda: (lay.dir("argocd", "ssh") / "ssh_known_hosts").exists(),
            health_timeout=20,
        )

    # ----- bootstrap (what `kubectl apply -f install.yaml` would have created) ---------------
    def kubectl(self, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run([str(versions.binary_path("kubectl")), "--kubeconfig", str(self.layout.kubeconfig), *args],
                              input=stdin, capture_output=True, text=True, check=check, timeout=120)

    def _apply(self, docs: list[dict], what: str) -> None:
        proc = self.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-",
                            stdin=yaml.safe_dump_all(docs, sort_keys=False), check=False)
        if proc.returncode != 0:
            raise TestbedError(f"applying {what} failed: {proc.stderr.strip()[-500:]}")

    def _apply_crds(self, crds: list[dict], what: str) -> None:
        """Apply CRDs and wait until every one is Established (served)."""
        self._apply(crds, what)
        # kubectl wait fails at once (not waiting) on a CRD whose .status.conditions is still
        # unset right after apply ("accessor error: <nil>", kubernetes/kubernetes#66439): retry, bounded
        established = self.sup.waiter.poll(
            lambda: self.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s", check=False),
            timeout=60, done=lambda proc: proc.returncode == 0, initial_wait=0.5, max_wait=0.5)
        if not established.done:
            raise TestbedError(f"{what} not Established within {established.bound:.0f}s: "
                               f"{established.value.stderr.strip()[-500:]}")

    def _bootstrap_cluster(self, lay: Layout) -> None:
        engine_namespaces = (argo.ARGOCD_NAMESPACE, argo.ROLLOUTS_NAMESPACE) if self.engine == "argocd" else ()
        ns = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}} for n in engine_namespaces]
        self._apply(ns + controlplane.fake_nodes(controlplane.settings.KWOK_NODES), "namespaces and kwok nodes")

    def _bootstrap_argo(self, lay: Layout) -> None:
        """CRDs and stock ConfigMaps/Secrets from the pinned releases' own install manifests."""
        keep = {"CustomResourceDefinition", "ConfigMap", "Secret"}
        docs = []
        for component in ("argocd", "rollouts", "image-updater"):
            for doc in yaml.safe_load_all((versions.asset_dir(component) / "manifests" / "install.yaml").read_text()):
                if doc and doc.get("kind") in keep:
                    if doc["kind"] != "CustomResourceDefinition":
                        doc["metadata"]["namespace"] = argo.ARGOCD_NAMESPACE
                    docs.append(doc)
        self._apply_crds([d for d in docs if d["kind"] == "CustomResourceDefinition"], "Argo CRDs")
        self._apply([d for d in docs if d["kind"] != "CustomResourceDefinition"], "Argo config maps and secrets")
        self.kubectl("-n", argo.ARGOCD_NAMESPACE, "patch", "configmap", "argocd-cm", "--type", "merge", "-p", json.dumps({"data": {
            "timeout.reconciliation": f"{controlplane.settings.ARGOCD_RECONCILIATION_SECONDS}s",
            "url": lay.url("argocd-server"),
            "admin.enabled": "true",
        }}))
        # Argo CD trusts the HTTPS Git server (testbed CA) as a stock install trusts GitHub's
        self.kubectl("-n", argo.ARGOCD_NAMESPACE, "patch", "configmap", "argocd-tls-certs-cm", "--type", "merge",
                     "-p", json.dumps({"data": {"127.0.0.1": (lay.pki / "ca.crt").read_text()}}))

    def _clean_stale(self) -> None:
        """A crashed run leaves PID files behind: stop whatever of it still runs."""
        stale = self.sup.pids()
        if stale:
            self.out(f"cleaning {len(stale)} stale process record(s) from an earlier run")
            self.sup.stop_all()

    def down(self, quiet: bool = False) -> None:
        order = list(reversed(self._started)) if self._started else list(reversed(START_ORDER))
        names = list(self.sup.pids())
        self.sup.stop_all(order=order)
        if not quiet:
            self.out(f"stopped {len(names)} process(es)" if names else "nothing was running")
        self._started = []


# Stop order for `down` when the starting process is gone: reverse of this.
START_ORDER = [
    "etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok",
    "git-http", "git-https", "git-ssh", "registry", "receiver", "trafficgen", "prometheus",
    "redis", "configmap-mounter", "argocd-repo-server", "argocd-application-controller", "argocd-server",
    "argocd-notifications", "rollouts-controller", "argocd-image-updater",
    "notification-controller", "source-controller", "kustomize-controller",
]
