"""Real Prometheus (the Debian package's binary) as the metrics source for canary analysis.

Only the binary is used: its config, TSDB and log live in the testbed's state dir, and
it listens on 127.0.0.1 only. The Debian package's own service (and the node exporter
it recommends) must not run: `install()` installs with --no-install-recommends and
stops/disables the packaged service if apt started it.

    python -m gitops_conformance.testbed.peers.prometheus install        # apt-get install if /usr/bin/prometheus is missing
    python -m gitops_conformance.testbed.peers.prometheus query URL EXPR # one instant query, prints the value

`spec(state_dir, port, targets)` writes `<state>/prometheus/prometheus.yml` scraping the
targets every second. `query(base_url, promql)` asks it the way Argo Rollouts'
Prometheus provider does: POST form `query` + `time` to `/api/v1/query` (GET on request).
"""
from __future__ import annotations

import argparse
import math
import os
import shutil
import subprocess
import time
from pathlib import Path

import requests
import yaml

from ..procs import ProcessSpec

BINARY = "/usr/bin/prometheus"
DEBIAN_PACKAGE = "prometheus"
PACKAGED_SERVICES = ("prometheus", "prometheus-node-exporter")


class PrometheusMissing(RuntimeError):
    pass


def binary() -> str:
    """The prometheus binary, or a clear error saying how to install it."""
    path = BINARY if os.access(BINARY, os.X_OK) else shutil.which("prometheus")
    if not path:
        raise PrometheusMissing(
            f"{BINARY} is missing: run `python -m gitops_conformance.testbed.peers.prometheus install` "
            f"(apt-get install --no-install-recommends {DEBIAN_PACKAGE}, as root)")
    return path


def install(timeout: float = 600.0) -> list[str]:
    """Install Debian's prometheus if missing and make sure its packaged services do not run.
    Returns what it did, one line per step (for the caller to print)."""
    done: list[str] = []
    if not os.access(BINARY, os.X_OK):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        deadline = time.monotonic() + timeout
        subprocess.run(["apt-get", "update"], check=True, env=env, timeout=timeout, stdout=subprocess.DEVNULL)
        subprocess.run(
            ["apt-get", "-o", "DPkg::Lock::Timeout=240", "install", "-y", "--no-install-recommends", DEBIAN_PACKAGE],
            check=True, env=env, timeout=max(60.0, deadline - time.monotonic()), stdout=subprocess.DEVNULL)
        done.append(f"installed Debian package {DEBIAN_PACKAGE}")
    done += stop_packaged_services()
    return done


def stop_packaged_services() -> list[str]:
    """Stop and disable the packaged prometheus/node-exporter services if an init system runs them."""
    done: list[str] = []
    systemd_running = Path("/run/systemd/system").is_dir() and shutil.which("systemctl")
    for svc in PACKAGED_SERVICES:
        if systemd_running:
            active = subprocess.run(["systemctl", "is-active", "--quiet", svc], timeout=30).returncode == 0
            enabled = subprocess.run(["systemctl", "is-enabled", "--quiet", svc], timeout=30,
                                     stderr=subprocess.DEVNULL).returncode == 0
            if active or enabled:
                subprocess.run(["systemctl", "disable", "--now", svc], timeout=60, check=False,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                done.append(f"systemctl disable --now {svc}")
        elif Path(f"/etc/init.d/{svc}").exists():
            st = subprocess.run([f"/etc/init.d/{svc}", "status"], timeout=30,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if st.returncode == 0:  # LSB: 0 = running
                subprocess.run([f"/etc/init.d/{svc}", "stop"], timeout=60, check=False,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                done.append(f"/etc/init.d/{svc} stop")
    return done


def write_config(data_dir: Path, targets: list[str], scrape_interval: str = "1s", job: str = "trafficgen") -> Path:
    for t in targets:
        host = t.rsplit(":", 1)[0]
        if host not in ("127.0.0.1", "localhost"):
            raise ValueError(f"scrape target {t!r} is not on 127.0.0.1")
    cfg = {
        "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval,
                   "scrape_timeout": scrape_interval},
        "scrape_configs": [{
            "job_name": job,
            "scrape_interval": scrape_interval,
            "scrape_timeout": scrape_interval,
            "honor_labels": True,
            "static_configs": [{"targets": list(targets)}],
        }],
    }
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "prometheus.yml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def spec(state_dir: Path, port: int, targets: list[str] | tuple[str, ...], scrape_interval: str = "1s",
         name: str = "prometheus", retention: str = "1h") -> ProcessSpec:
    """A ProcessSpec for Prometheus scraping `targets` ("127.0.0.1:PORT"); writes its config now."""
    data_dir = Path(state_dir) / name
    config = write_config(data_dir, list(targets), scrape_interval)
    argv = [
        binary(),
        f"--config.file={config}",
        f"--storage.tsdb.path={data_dir / 'data'}",
        f"--storage.tsdb.retention.time={retention}",
        f"--web.listen-address=127.0.0.1:{port}",
        f"--web.external-url=http://127.0.0.1:{port}/",
        "--web.enable-lifecycle",  # POST /-/reload after the config is rewritten
        "--storage.tsdb.wal-compression",
        "--query.max-concurrency=4",
        "--log.level=info",
    ]
    return ProcessSpec(name=name, argv=argv, port=port, health_url=f"http://127.0.0.1:{port}/-/ready",
                       health_timeout=60.0, cwd=str(data_dir))


class QueryError(RuntimeError):
    pass


def query(base_url: str, promql: str, method: str = "POST", at: float | None = None,
          timeout: float = 5.0) -> float | None:
    """One instant query, asked like Argo Rollouts' Prometheus provider asks it.

    POST form-encoded `query` and `time` to `<base_url>/api/v1/query` (method="GET": the
    same as URL parameters). Returns the value of a one-element vector or a scalar (NaN
    as float('nan')), None for an empty vector; raises QueryError on an API error or a
    vector of more than one series (Rollouts would not know which to use either)."""
    url = base_url.rstrip("/") + "/api/v1/query"
    params = {"query": promql, "time": f"{time.time() if at is None else at:.3f}"}
    if method.upper() == "POST":
        r = requests.post(url, data=params, timeout=timeout)
    elif method.upper() == "GET":
        r = requests.get(url, params=params, timeout=timeout)
    else:
        raise ValueError(f"method must be POST or GET, not {method!r}")
    try:
        body = r.json()
    except ValueError:
        raise QueryError(f"{method} {url}: HTTP {r.status_code}, not JSON: {r.text[:200]!r}") from None
    if body.get("status") != "success":
        raise QueryError(f"{method} {url} {promql!r}: {body.get('errorType')}: {body.get('error')}")
    data = body["data"]
    if data["resultType"] == "scalar":
        return float(data["result"][1])
    if data["resultType"] == "vector":
        result = data["result"]
        if not result:
            return None
        if len(result) > 1:
            raise QueryError(f"{promql!r} returned {len(result)} series: {[s['metric'] for s in result]}")
        return float(result[0]["value"][1])
    raise QueryError(f"{promql!r}: unsupported result type {data['resultType']}")


def is_nan(v: float | None) -> bool:
    return v is not None and math.isnan(v)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m gitops_conformance.testbed.peers.prometheus")
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("install", help="apt-get install prometheus if missing; stop its packaged services")
    q = sub.add_parser("query", help="one instant query")
    q.add_argument("base_url")
    q.add_argument("promql")
    q.add_argument("--method", default="POST", choices=["POST", "GET"])
    args = p.parse_args(argv)
    if args.cmd == "install":
        for line in install() or ["prometheus already installed; no packaged service running"]:
            print(line)
        print(binary())
    elif args.cmd == "query":
        print(query(args.base_url, args.promql, args.method))


if __name__ == "__main__":
    main()
