"""Where a peer server listens: 127.0.0.1 on the local testbed, every interface only in a pod.

A peer's `--in-pod` flag makes it listen on 0.0.0.0 so its Service reaches it; outside a
Kubernetes pod (no KUBERNETES_SERVICE_HOST, which the kubelet sets in every container) the
flag is refused, so a host process of the testbed never listens beyond loopback.
"""
from __future__ import annotations

import os

LOOPBACK = "127.0.0.1"
ALL_INTERFACES = "0.0.0.0"


class NotInPod(SystemExit):
    pass


def listen_host(in_pod: bool) -> str:
    if not in_pod:
        return LOOPBACK
    if not os.environ.get("KUBERNETES_SERVICE_HOST"):
        raise NotInPod("--in-pod: this process is not in a Kubernetes pod (no KUBERNETES_SERVICE_HOST); "
                       "outside a pod the peers listen on 127.0.0.1 only")
    return ALL_INTERFACES
