"""Argo CD (redis, repo-server, application controller, API server, notifications), Argo
Rollouts and Argo CD Image Updater as host processes, configured for loopback."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from . import settings, versions
from .layout import Layout
from .procs import ProcessSpec, port_open

ARGOCD_NAMESPACE = "argocd"
ROLLOUTS_NAMESPACE = "argo-rollouts"


def tool_dir(lay: Layout) -> Path:
    """A PATH entry for the repo-server: it calls `argocd` (git askpass), kustomize and helm by name."""
    d = lay.dir("bin")
    for name in ("argocd", "kustomize", "helm", "kubectl", "kubectl-argo-rollouts"):
        link = d / name
        target = versions.binary_path(name)
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(target)
    wrapper = d / "git-verify-wrapper.sh"
    if not wrapper.exists():
        shutil.copyfile(versions.asset_dir("argocd") / "hack" / "git-verify-wrapper.sh", wrapper)
        wrapper.chmod(0o755)
    return d


def _argocd_env(lay: Layout, role: str) -> dict[str, str]:
    return {
        # argocd is one binary: the role comes from this variable (never exported globally,
        # or the CLI would start a server)
        "ARGOCD_BINARY_NAME": role,
        # out of cluster: use KUBECONFIG as the in-cluster config (one path only)
        "ARGOCD_FAKE_IN_CLUSTER": "true",
        "KUBECONFIG": str(lay.argocd_kubeconfig),
        "ARGOCD_TLS_DATA_PATH": str(lay.dir("argocd", "tls")),
        "ARGOCD_SSH_DATA_PATH": str(lay.dir("argocd", "ssh")),
        "ARGOCD_GNUPGHOME": str(lay.dir("argocd", "gpg", "keys")),
        "ARGOCD_GPG_DATA_PATH": str(lay.dir("argocd", "gpg", "source")),
        "ARGOCD_GPG_ENABLED": "false",
        "REDIS_PASSWORD": redis_password(lay),
        "PATH": f"{tool_dir(lay)}{os.pathsep}{os.environ.get('PATH', '')}",
        "HOME": str(lay.dir("argocd", "home")),
    }


def redis_password(lay: Layout) -> str:
    path = lay.state_dir / "redis.password"
    if not path.exists():
        import secrets

        path.write_text(secrets.token_hex(16))
        path.chmod(0o600)
    return path.read_text().strip()


def redis(lay: Layout) -> ProcessSpec:
    server = shutil.which("redis-server") or "/usr/bin/redis-server"
    conf = lay.state_dir / "redis.conf"
    # the password goes into a 0600 file, not argv (argv is world-readable in ps)
    conf.write_text(f"bind 127.0.0.1\nport {lay.ports['redis']}\nsave \"\"\nappendonly no\n"
                    f"dir {lay.dir('redis')}\nrequirepass {redis_password(lay)}\nprotected-mode yes\n")
    conf.chmod(0o600)
    return ProcessSpec(name="redis", port=lay.ports["redis"], argv=[server, str(conf)],
                       health_timeout=settings.HEALTH_TIMEOUT["redis"])


def _redis_addr(lay: Layout) -> str:
    return f"127.0.0.1:{lay.ports['redis']}"


def repo_server(lay: Layout) -> ProcessSpec:
    env = _argocd_env(lay, "argocd-repo-server")
    # each process its own askpass socket, so two testbeds never share one
    env["ARGOCD_ASK_PASS_SOCK"] = str(lay.dir("run") / "reposerver-ask-pass.sock")
    env["ARGOCD_PLUGINSOCKFILEPATH"] = str(lay.dir("argocd", "plugins"))
    # repo checkouts go under the state dir, not a /tmp/_argocd-repo shared by every testbed
    env["TMPDIR"] = str(lay.dir("argocd", "tmp"))
    port = lay.ports["argocd-repo-server"]
    return ProcessSpec(
        name="argocd-repo-server", port=port, env=env,
        health_check=lambda: port_open(port), health_timeout=settings.HEALTH_TIMEOUT["argocd-repo-server"],
        argv=[str(versions.binary_path("argocd")), "--loglevel", "info",
              "--address", "127.0.0.1", "--port", str(port),
              "--metrics-address", "127.0.0.1", "--metrics-port", str(lay.ports["argocd-repo-server-metrics"]),
              "--redis", _redis_addr(lay)],
    )


def application_controller(lay: Layout, resync_seconds: int = settings.ARGOCD_RECONCILIATION_SECONDS) -> ProcessSpec:
    """resync_seconds=0 turns periodic reconciliation off (a self-test does, to prove the
    auto_sync check fails when neither webhook nor polling brings a commit in)."""
    env = _argocd_env(lay, "argocd-application-controller")
    env["HOSTNAME"] = "argocd-application-controller-0"  # shard 0 of 1, as the StatefulSet pod would be
    metrics = lay.ports["argocd-application-controller-metrics"]
    return ProcessSpec(
        name="argocd-application-controller", port=metrics, env=env,
        health_check=lambda: port_open(metrics),
        health_timeout=settings.HEALTH_TIMEOUT["argocd-application-controller"],
        argv=[str(versions.binary_path("argocd")), "--loglevel", "info",
              "--redis", _redis_addr(lay),
              "--repo-server", f"127.0.0.1:{lay.ports['argocd-repo-server']}",
              "--metrics-port", str(metrics),
              "--app-resync", str(resync_seconds),
              "--app-resync-jitter", str(settings.ARGOCD_RECONCILIATION_JITTER_SECONDS),
              "--status-processors", "10", "--operation-processors", "10",
              "--hydrator-enabled=false"],
    )


def api_server(lay: Layout) -> ProcessSpec:
    env = _argocd_env(lay, "argocd-server")
    port = lay.ports["argocd-server"]
    return ProcessSpec(
        name="argocd-server", port=port, env=env,
        health_url=f"http://127.0.0.1:{port}/healthz",
        health_timeout=settings.HEALTH_TIMEOUT["argocd-server"],
        argv=[str(versions.binary_path("argocd")), "--loglevel", "info",
              "--insecure",  # plain HTTP on loopback; auth stays ON (RBAC is enforced here)
              "--address", "127.0.0.1", "--port", str(port),
              "--metrics-address", "127.0.0.1", "--metrics-port", str(lay.ports["argocd-server-metrics"]),
              "--redis", _redis_addr(lay),
              "--repo-server", f"127.0.0.1:{lay.ports['argocd-repo-server']}",
              "--dex-server", "", "--hydrator-enabled=false"],
    )


def notifications(lay: Layout) -> ProcessSpec:
    env = _argocd_env(lay, "argocd-notifications")
    metrics = lay.ports["argocd-notifications-metrics"]
    return ProcessSpec(
        name="argocd-notifications", port=metrics, env=env,
        health_check=lambda: port_open(metrics),
        health_timeout=settings.HEALTH_TIMEOUT["argocd-notifications"],
        argv=[str(versions.binary_path("argocd")), "--loglevel", "info",
              "--metrics-port", str(metrics),
              "--argocd-repo-server", f"127.0.0.1:{lay.ports['argocd-repo-server']}"],
    )


def rollouts_controller(lay: Layout) -> ProcessSpec:
    healthz = lay.ports["rollouts-healthz"]
    return ProcessSpec(
        name="rollouts-controller", port=healthz,
        env={"POD_NAMESPACE": ROLLOUTS_NAMESPACE, "KUBECONFIG": str(lay.kubeconfig)},
        health_url=f"http://127.0.0.1:{healthz}/healthz",
        health_timeout=settings.HEALTH_TIMEOUT["rollouts-controller"],
        argv=[str(versions.binary_path("rollouts-controller")), "--kubeconfig", str(lay.kubeconfig),
              "--leader-elect=false", "--healthzPort", str(healthz),
              "--metricsPort", str(lay.ports["rollouts-metrics"]), "--loglevel", "info"],
    )


# upstream's hack/git-ask-pass.sh, which the updater's image ships on PATH: git write-back
# runs git with GIT_ASKPASS=git-ask-pass.sh and the credentials in GIT_USERNAME/GIT_PASSWORD
GIT_ASK_PASS = """#!/bin/sh
case "$1" in
Username*) echo "${GIT_USERNAME}" ;;
Password*) echo "${GIT_PASSWORD}" ;;
esac
"""


def image_updater(lay: Layout, registries_conf: Path) -> ProcessSpec:
    health = lay.ports["image-updater-health"]
    own_bin = lay.dir("image-updater", "bin")
    (own_bin / "git-ask-pass.sh").write_text(GIT_ASK_PASS)
    (own_bin / "git-ask-pass.sh").chmod(0o755)
    return ProcessSpec(
        name="argocd-image-updater", port=health,
        env={"KUBECONFIG": str(lay.argocd_kubeconfig), "HOME": str(lay.dir("image-updater", "home")),
             "PATH": f"{own_bin}{os.pathsep}{tool_dir(lay)}{os.pathsep}{os.environ.get('PATH', '')}"},
        health_url=f"http://127.0.0.1:{health}/healthz",
        health_timeout=settings.HEALTH_TIMEOUT["argocd-image-updater"],
        argv=[str(versions.binary_path("argocd-image-updater")), "run",
              "--kubeconfig", str(lay.argocd_kubeconfig),
              "--applications-api", "kubernetes", "--argocd-namespace", ARGOCD_NAMESPACE,
              "--registries-conf-path", str(registries_conf),
              "--interval", settings.IMAGE_UPDATER_INTERVAL,
              "--health-port", str(health), "--metrics-port", str(lay.ports["image-updater-metrics"]),
              "--loglevel", "debug"],
    )
