"""Projects Argo CD's ConfigMaps into files, as the kubelet does for the real pods.

Argo CD reads SSH known hosts and TLS certificates from files
(`argocd-ssh-known-hosts-cm` -> $ARGOCD_SSH_DATA_PATH/ssh_known_hosts,
`argocd-tls-certs-cm` -> $ARGOCD_TLS_DATA_PATH/<host>); in a cluster those are
ConfigMap volumes. Out of cluster nothing writes them, so this small process
watches the two ConfigMaps and writes the files (upstream's Procfile runs a
"dev-mounter" for the same reason).

Run: python -m gitops_conformance.testbed.mounter --kubeconfig K --namespace argocd --ssh-dir D --tls-dir D
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from kubernetes import client, config, watch

MOUNTS = {"argocd-ssh-known-hosts-cm": "ssh", "argocd-tls-certs-cm": "tls"}


def write_atomically(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def project(data: dict[str, str] | None, target: Path) -> None:
    data = data or {}
    for key, value in data.items():
        write_atomically(target / key, value)
    for stale in target.iterdir():  # keys removed from the ConfigMap disappear, like a volume
        if stale.is_file() and stale.name not in data and not stale.name.startswith(".tmp-"):
            stale.unlink()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kubeconfig", required=True)
    ap.add_argument("--namespace", default="argocd")
    ap.add_argument("--ssh-dir", required=True)
    ap.add_argument("--tls-dir", required=True)
    args = ap.parse_args()
    dirs = {"ssh": Path(args.ssh_dir), "tls": Path(args.tls_dir)}
    config.load_kube_config(args.kubeconfig)
    api = client.CoreV1Api()
    while True:
        try:
            for name, kind in MOUNTS.items():
                try:
                    cm = api.read_namespaced_config_map(name, args.namespace)
                    project(cm.data, dirs[kind])
                except client.ApiException as exc:
                    if exc.status != 404:
                        raise
            w = watch.Watch()
            for event in w.stream(api.list_namespaced_config_map, args.namespace, timeout_seconds=300):
                cm = event["object"]
                kind = MOUNTS.get(cm.metadata.name)
                if kind:
                    project(cm.data if event["type"] != "DELETED" else {}, dirs[kind])
                    print(f"projected {cm.metadata.name} ({event['type']})", flush=True)
        except Exception as exc:  # API restarts must not kill the mounter
            print(f"mounter: {type(exc).__name__}: {exc}; retrying", file=sys.stderr, flush=True)
            time.sleep(1)


if __name__ == "__main__":
    sys.exit(main())
