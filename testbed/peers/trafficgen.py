"""Traffic generator: a Prometheus exporter standing in for an application's traffic.

`python -m testbed.peers.trafficgen --port P [--rps 100] [--service NAME ...]` serves
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

from testbed.procs import ProcessSpec

REPO_ROOT = Path(__file__).resolve().parents[2]
TICK = 0.5
DEFAULT_RPS = 100.0


def _child_env() -> dict[str, str]:
    """Let `python -m testbed.peers...` import the repo without an install, keeping any PYTHONPATH."""
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


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    traffic: Traffic

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
            self._send(200, self.traffic.exposition(), "text/plain; version=0.0.4; charset=utf-8")
        elif path == "/healthz":
            self._send(200, {"ok": True})
        elif path == "/rates":
            self._send(200, self.traffic.snapshot())
        else:
            self._send(404, {"error": "not found"})

    def do_PUT(self) -> None:
        path = urllib.parse.urlsplit(self.path).path
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if 0 < length <= 65536 else b""
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
    p = argparse.ArgumentParser(prog="python -m testbed.peers.trafficgen", description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--rps", type=float, default=DEFAULT_RPS, help="requests per second per service")
    p.add_argument("--service", action="append", default=[], help="a service to export from the start (rate 1.0)")
    args = p.parse_args(argv)
    traffic = Traffic(args.rps)
    for svc in args.service:
        traffic.set(svc)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), type("Handler", (_Handler,), {"traffic": traffic}))
    server.daemon_threads = True
    ticker = threading.Thread(target=traffic.run, daemon=True)
    ticker.start()
    print(f"trafficgen listening on 127.0.0.1:{args.port}", file=sys.stderr, flush=True)
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
