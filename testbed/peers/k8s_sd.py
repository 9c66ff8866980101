"""Prometheus HTTP service discovery of the pods behind Services, for a cluster.

Debian's `prometheus` package (the only Prometheus the project may build from) is compiled
without `kubernetes_sd_configs` (its binary has no discovery/kubernetes package; a config
naming it fails with `field kubernetes_sd_configs not found in type config.ScrapeConfig`),
but it has `http_sd_configs`. This sidecar of the Prometheus pod answers that protocol with
what `kubernetes_sd_configs: [{role: endpoints}]` would discover: one target per ready or
not-ready address of each Service's EndpointSlices whose target is a pod, carrying the same
`__meta_kubernetes_*` labels (namespace, service name, pod name, pod labels, port name), so
the scrape config's relabelling is the one the kubernetes discovery would use.

    python -m gitops_conformance.testbed.peers.k8s_sd --port 8083 [--pod-selector app=myapp]

It listens on 127.0.0.1 only (Prometheus is in the same pod) and reads the API with the
pod's service account (list endpointslices and pods, cluster-wide).
  GET /targets  -> [{"targets": ["10.244.0.7:8080"], "labels": {"__meta_kubernetes_...": ..}}, ...]
  GET /healthz  -> 200
"""
from __future__ import annotations

import argparse
import json
import os
import re
import ssl
import sys
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
API_TIMEOUT = 10


def label_name(key: str) -> str:
    """Prometheus' sanitising of a Kubernetes label key into a label name."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", key)


def targets(slices: list[dict], pods: list[dict]) -> list[dict]:
    """Target groups from EndpointSlices and the pods they point at (pods not given are left out)."""
    pod_labels = {(p["metadata"]["namespace"], p["metadata"]["name"]): p["metadata"].get("labels") or {} for p in pods}
    groups = []
    for s in slices:
        meta = s["metadata"]
        service = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
        if not service:
            continue
        ns = meta["namespace"]
        for endpoint in s.get("endpoints") or []:
            ref = endpoint.get("targetRef") or {}
            if ref.get("kind") != "Pod" or (ns, ref.get("name")) not in pod_labels:
                continue
            labels = {"__meta_kubernetes_namespace": ns, "__meta_kubernetes_service_name": service,
                      "__meta_kubernetes_pod_name": ref["name"],
                      "__meta_kubernetes_endpoint_ready": str(bool((endpoint.get("conditions") or {}).get("ready"))).lower(),
                      **{f"__meta_kubernetes_pod_label_{label_name(k)}": v for k, v in pod_labels[(ns, ref["name"])].items()}}
            for port in s.get("ports") or []:
                for address in endpoint.get("addresses") or []:
                    host = f"[{address}]" if ":" in address else address
                    groups.append({"targets": [f"{host}:{port['port']}"],
                                   "labels": {**labels, "__meta_kubernetes_endpoint_port_name": port.get("name") or ""}})
    return groups


class Api:
    """The Kubernetes API with the pod's service account token."""

    def __init__(self) -> None:
        host, port = os.environ["KUBERNETES_SERVICE_HOST"], os.environ["KUBERNETES_SERVICE_PORT"]
        self.base = f"https://{host}:{port}" if ":" not in host else f"https://[{host}]:{port}"
        self.context = ssl.create_default_context(cafile=str(SERVICE_ACCOUNT / "ca.crt"))

    def items(self, path: str, **query: str) -> list[dict]:
        token = (SERVICE_ACCOUNT / "token").read_text().strip()  # re-read: the kubelet rotates it
        url = self.base + path + ("?" + urllib.parse.urlencode(query) if query else "")
        req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}", "Accept": "application/json"})
        with urllib.request.urlopen(req, context=self.context, timeout=API_TIMEOUT) as resp:
            return json.load(resp)["items"]


def make_handler(api: Api, pod_selector: str):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, fmt: str, *args) -> None:  # one line per error only
            pass

        def _send(self, code: int, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path == "/healthz":
                return self._send(200, b"{}")
            if self.path != "/targets":
                return self._send(404, b"{}")
            try:
                pods = api.items("/api/v1/pods", **({"labelSelector": pod_selector} if pod_selector else {}))
                slices = api.items("/apis/discovery.k8s.io/v1/endpointslices")
            except Exception as exc:  # Prometheus keeps the last targets on an error answer
                print(f"k8s_sd: listing failed: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
                return self._send(500, b"[]")
            self._send(200, json.dumps(targets(slices, pods)).encode())

    return Handler


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m gitops_conformance.testbed.peers.k8s_sd", description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pod-selector", default="", help="only pods matching this label selector (e.g. app=myapp)")
    args = ap.parse_args(argv)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(Api(), args.pod_selector))
    server.daemon_threads = True
    print(f"k8s_sd listening on 127.0.0.1:{args.port}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
