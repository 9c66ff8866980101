"""Traffic generator: a Prometheus exporter standing in for an application's traffic.

`python -m gitops_conformance.testbed.peers.trafficgen --port P [--rps 100] [--service NAME ...]` serves
`/metrics` (Prometheus text format 0.0.4) with one counter

    http_requests_total{service="<svc>",status="200"|"500"}

per service. A background thread advances every counter every 0.5 s by `rps * 0.5`
requests, split by that service's success rate (fractions are carried, so over time
the split is exact). Both status series are always exported, so `rate()` of either is
defined from the first scrape on.

Control API (what the tests use):
  PUT /rates/<service>  {"success_rate": 0.5[, "rps": 100]}  -> 200 the service's settings
                        (an unknown service is created; success_rate defaults to 1.0)
  GET /rates            -> {"<svc>": {"success_rate": .., "rps": ..}, ...}
  GET /healthz          -> 200

Real traffic (in a cluster, against an application's real pods):
  PUT /targets/<name>   {"url": "http://myapp.<ns>.svc/", "rps": 20}  -> GET that URL rps times a
                        second until deleted; what came back is exported as
                        trafficgen_responses_total{target="<name>",status="200"|"500"|"error"}
  DELETE /targets/<name>
  GET /targets          -> {"<name>": {"url": .., "rps": .., "responses": {"200": n, ...}}, ...}
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests

from ..procs import ProcessSpec

REPO_ROOT = Path(__file__).resolve().parents[2]
TICK = 0.5
DEFAULT_RPS = 100.0


def _child_env() -> dict[str, str]:
    """Let `python -m gitops_conformance.testbed.peers...` import the repo without an install, keeping any PYTHONPATH."""
    extra = os.environ.get("PYTHONPATH")
    return {"PYTHONPATH": str(REPO_ROOT) + (os.pathsep + extra if extra else ""), "PYTHONUNBUFFERED": "1"}


class Traffic:
    """The counters and the thread that advances them."""

    def __init__(self, default_rps: float = DEFAULT_RPS):
        self.default_rps = default_rps
        self.lock = threading.Lock()
        self.settings: dict[str, dict[str, float]] = {}
        self.counts: dict[str, dict[str, int]] = {}
        self.carry: dict[str, dict[str, float]] = {}
        self.stop = threading.Event()
        self.ticks = 0

    def set(self, service: str, success_rate: float | None = None, rps: float | None = None) -> dict:
        with self.lock:
            cur = self.settings.setdefault(service, {"success_rate": 1.0, "rps": self.default_rps})
            self.counts.setdefault(service, {"200": 0, "500": 0})
            self.carry.setdefault(service, {"200": 0.0, "500": 0.0})
            if success_rate is not None:
                cur["success_rate"] = float(success_rate)
            if rps is not None:
                cur["rps"] = float(rps)
            return dict(cur)

    def advance(self, dt: float) -> None:
        with self.lock:
            for svc, s in self.settings.items():
                n = s["rps"] * dt
                for status, share in (("200", s["success_rate"]), ("500", 1.0 - s["success_rate"])):
                    exact = self.carry[svc][status] + n * share
                    whole = int(exact)
                    self.counts[svc][status] += whole
                    self.carry[svc][status] = exact - whole
            self.ticks += 1

    def run(self) -> None:
        nxt = time.monotonic()
        while not self.stop.is_set():
            nxt += TICK
            self.stop.wait(max(0.0, nxt - time.monotonic()))
            if not self.stop.is_set():
                self.advance(TICK)

    def exposition(self) -> str:
        lines = ["# HELP http_requests_total Requests served, by service and status (synthetic).",
                 "# TYPE http_requests_total counter"]
        with self.lock:
            for svc in sorted(self.counts):
                esc = svc.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
                for status in ("200", "500"):
                    lines.append(f'http_requests_total{{service="{esc}",status="{status}"}} {self.counts[svc][status]}')
            lines += ["# HELP trafficgen_ticks_total Times the counters advanced.",
                      "# TYPE trafficgen_ticks_total counter",
                      f"trafficgen_ticks_total {self.ticks}"]
        return "\n".join(lines) + "\n"

    def snapshot(self) -> dict:
        with self.lock:
            return {svc: dict(s) for svc, s in self.settings.items()}


class Load:
    """Real requests: one thread per target GETs its URL `rps` times a second."""

    def __init__(self):
        self.lock = threading.Lock()
        self.targets: dict[str, dict] = {}

    def set(self, name: str, url: str, rps: float) -> dict:
        self.delete(name)
        t = {"url": url, "rps": float(rps), "responses": {}, "stop": threading.Event()}
        with self.lock:
            self.targets[name] = t
        threading.Thread(target=self._run, args=(t,), daemon=True).start()
        return self._public(t)

    def delete(self, name: str) -> bool:
        with self.lock:
            t = self.targets.pop(name, None)
        if t:
            t["stop"].set()
        return t is not None

    def _run(self, t: dict) -> None:
        period = 1.0 / t["rps"] if t["rps"] > 0 else 1.0
        nxt = time.monotonic()
        while not t["stop"].is_set():
            # a new connection per request: a Service balances connections, not requests (kube-proxy
            # picks an endpoint per connection), so a kept-alive one would pin every request to one
            # pod and the canary would see no traffic at all; like users, each request picks anew
            with requests.Session() as session:
                session.trust_env = False  # in-cluster names: never through a proxy
                try:
                    status = str(session.get(t["url"], timeout=2, headers={"Connection": "close"}).status_code)
                except requests.RequestException:
                    status = "error"
            with self.lock:
                t["responses"][status] = t["responses"].get(status, 0) + 1
            nxt += period
            t["stop"].wait(max(0.0, nxt - time.monotonic()))

    @staticmethod
    def _public(t: dict) -> dict:
        return {"url": t["url"], "rps": t["rps"], "responses": dict(t["responses"])}

    def snapshot(self) -> dict:
        with self.lock:
            return {n: self._public(t) for n, t in self.targets.items()}

    def exposition(self) -> list[str]:
        lines = ["# HELP trafficgen_responses_total Responses to the real requests sent, by target and status.",
                 "# TYPE trafficgen_responses_total counter"]
        with self.lock:
            for name in sorted(self.targets):
                for status, n in sorted(self.targets[name]["responses"].items()):
                    lines.append(f'trafficgen_responses_total{{target="{name}",status="{status}"}} {n}')
        return lines


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    traffic: Traffic
    load: Load

    def log_message(self, fmt: str, *args: Any) -> None:
        if "/metrics" not in (self.path or ""):  # scraped every second: keep the log readable
            sys.stderr.write("%s %s\n" % (self.log_date_time_string(), fmt % args))

    def _send(self, status: int, body: str | dict, ctype: str = "application/json") -> None:
        data = (json.dumps(body) if isinstance(body, (dict, list)) else body).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        path = urllib.parse.urlsplit(self.path).path
        if path == "/metrics":
            text = self.traffic.exposition() + "\n".join(self.load.exposition()) + "\n"
            self._send(200, text, "text/plain; version=0.0.4; charset=utf-8")
        elif path == "/healthz":
            self._send(200, {"ok": True})
        elif path == "/rates":
            self._send(200, self.traffic.snapshot())
        elif path == "/targets":
            self._send(200, self.load.snapshot())
        else:
            self._send(404, {"error": "not found"})

    def do_DELETE(self) -> None:
        path = urllib.parse.urlsplit(self.path).path
        if not path.startswith("/targets/"):
            self._send(404, {"error": "DELETE /targets/<name>"})
            return
        self._send(200, {"deleted": self.load.delete(urllib.parse.unquote(path[len("/targets/"):]))})

    def _put_target(self, name: str, raw: bytes) -> None:
        try:
            body = json.loads(raw or b"{}")
            url, rps = body.get("url"), body.get("rps", 10)
            if not (isinstance(url, str) and url.startswith(("http://", "https://"))):
                raise ValueError("url must be an http(s) URL")
            if not (isinstance(rps, (int, float)) and 0 < rps <= 200):
                raise ValueError("rps must be a number in (0, 200]")
        except (ValueError, AttributeError) as e:
            self._send(400, {"error": str(e)})
            return
        self._send(200, {"target": name, **self.load.set(name, url, rps)})

    def do_PUT(self) -> None:
        path = urllib.parse.urlsplit(self.path).path
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if 0 < length <= 65536 else b""
        if path.startswith("/targets/") and len(path) > len("/targets/"):
            self._put_target(urllib.parse.unquote(path[len("/targets/"):]), raw)
            return
        if not path.startswith("/rates/") or len(path) <= len("/rates/"):
            self._send(404, {"error": "PUT /rates/<service>"})
            return
        service = urllib.parse.unquote(path[len("/rates/"):])
        try:
            body = json.loads(raw or b"{}")
            if not isinstance(body, dict):
                raise ValueError("body must be a JSON object")
            rate = body.get("success_rate")
            rps = body.get("rps")
            if rate is not None and not (isinstance(rate, (int, float)) and 0.0 <= rate <= 1.0):
                raise ValueError("success_rate must be a number in [0, 1]")
            if rps is not None and not (isinstance(rps, (int, float)) and 0.0 <= rps <= 1e6):
                raise ValueError("rps must be a number in [0, 1e6]")
        except ValueError as e:
            self._send(400, {"error": str(e)})
            return
        self._send(200, {"service": service, **self.traffic.set(service, rate, rps)})


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m gitops_conformance.testbed.peers.trafficgen", description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--rps", type=float, default=DEFAULT_RPS, help="requests per second per service")
    p.add_argument("--service", action="append", default=[], help="a service to export from the start (rate 1.0)")
    p.add_argument("--in-pod", action="store_true", help="listen on every interface (refused outside a Kubernetes pod)")
    args = p.parse_args(argv)
    from .bind import listen_host

    host = listen_host(args.in_pod)
    traffic = Traffic(args.rps)
    for svc in args.service:
        traffic.set(svc)
    server = ThreadingHTTPServer((host, args.port), type("Handler", (_Handler,), {"traffic": traffic, "load": Load()}))
    server.daemon_threads = True
    ticker = threading.Thread(target=traffic.run, daemon=True)
    ticker.start()
    print(f"trafficgen listening on {host}:{args.port}", file=sys.stderr, flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        traffic.stop.set()
        server.server_close()


def spec(state_dir: Path, port: int, services: list[str] | tuple[str, ...] = (), rps: float = DEFAULT_RPS,
         name: str = "trafficgen") -> ProcessSpec:
    argv = [sys.executable, "-m", "testbed.peers.trafficgen", "--port", str(port), "--rps", str(rps)]
    for svc in services:
        argv += ["--service", svc]
    return ProcessSpec(
        name=name, argv=argv, env=_child_env(), port=port,
        health_url=f"http://127.0.0.1:{port}/healthz", health_timeout=15.0, cwd=str(REPO_ROOT),
    )


class TrafficClient:
    def __init__(self, base_url: str, request_timeout: float = 5.0):
        self.base_url = base_url.rstrip("/")
        self.request_timeout = request_timeout

    def set_success_rate(self, service: str, rate: float, rps: float | None = None) -> dict:
        body: dict[str, float] = {"success_rate": rate}
        if rps is not None:
            body["rps"] = rps
        r = requests.put(f"{self.base_url}/rates/{urllib.parse.quote(service, safe='')}", json=body,
                         timeout=self.request_timeout)
        r.raise_for_status()
        return r.json()

    def send_requests(self, name: str, url: str, rps: float = 10) -> dict:
        """Real GETs to `url` (as the traffic source reaches it), `rps` a second, until stop_requests."""
        r = requests.put(f"{self.base_url}/targets/{urllib.parse.quote(name, safe='')}", json={"url": url, "rps": rps},
                         timeout=self.request_timeout)
        r.raise_for_status()
        return r.json()

    def stop_requests(self, name: str) -> None:
        requests.delete(f"{self.base_url}/targets/{urllib.parse.quote(name, safe='')}", timeout=self.request_timeout)

    def targets(self) -> dict:
        r = requests.get(f"{self.base_url}/targets", timeout=self.request_timeout)
        r.raise_for_status()
        return r.json()

    def rates(self) -> dict:
        r = requests.get(f"{self.base_url}/rates", timeout=self.request_timeout)
        r.raise_for_status()
        return r.json()

    def metrics(self) -> str:
        r = requests.get(f"{self.base_url}/metrics", timeout=self.request_timeout)
        r.raise_for_status()
        return r.text


if __name__ == "__main__":
    main()
