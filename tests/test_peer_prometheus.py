"""Traffic generator + real Prometheus: the query path Argo Rollouts' Prometheus provider uses."""
from __future__ import annotations

import re
import time

import pytest
import requests

from gitops_conformance.testbed.peers import prometheus, trafficgen
from gitops_conformance.testbed.peers.prometheus import QueryError, query
from gitops_conformance.testbed.peers.trafficgen import TrafficClient
from gitops_conformance.testbed.procs import Supervisor, free_port

SVC = "myapp-canary"


def success_ratio(window: str, svc: str = SVC) -> str:
    return (f'sum(rate(http_requests_total{{service="{svc}",status=~"2.."}}[{window}])) / '
            f'sum(rate(http_requests_total{{service="{svc}"}}[{window}]))')


def poll(fn, until, timeout: float, interval: float = 0.25):
    """Call fn until until(value) holds; return (value, seconds taken) or fail naming the last value."""
    started = time.monotonic()
    value = None
    while time.monotonic() - started < timeout:
        value = fn()
        if until(value):
            return value, time.monotonic() - started
        time.sleep(interval)
    pytest.fail(f"not reached within {timeout:.0f}s; last value {value!r}")


def counts(metrics: str, svc: str) -> dict[str, int]:
    return {m.group(1): int(m.group(2)) for m in re.finditer(
        rf'^http_requests_total\{{service="{re.escape(svc)}",status="(\d+)"\}} (\d+)$', metrics, re.M)}


@pytest.fixture(scope="module")
def traffic(tmp_path_factory):
    state = tmp_path_factory.mktemp("trafficgen-state")
    sup = Supervisor(state)
    port = free_port()
    spec = trafficgen.spec(state, port, services=["preexisting"])
    try:
        sup.wait_healthy(spec, sup.start(spec))
        yield {"url": f"http://127.0.0.1:{port}", "port": port, "state": state,
               "client": TrafficClient(f"http://127.0.0.1:{port}")}
    finally:
        sup.stop(spec.name)


@pytest.fixture(scope="module")
def prom(traffic):
    try:
        prometheus.binary()
    except prometheus.PrometheusMissing as e:
        pytest.fail(str(e))
    state = traffic["state"]
    sup = Supervisor(state)
    port = free_port()
    traffic["client"].set_success_rate(SVC, 1.0)  # before the first scrape
    spec = prometheus.spec(state, port, [f"127.0.0.1:{traffic['port']}"])
    try:
        sup.wait_healthy(spec, sup.start(spec))
        yield {"url": f"http://127.0.0.1:{port}", "spec": spec, "state": state}
    finally:
        sup.stop(spec.name)


def test_trafficgen_counters_follow_the_success_rate(traffic):
    c = traffic["client"]
    assert requests.get(traffic["url"] + "/healthz", timeout=5).status_code == 200
    assert c.set_success_rate("tg-half", 0.5) == {"service": "tg-half", "success_rate": 0.5, "rps": 100.0}
    assert c.rates()["preexisting"] == {"success_rate": 1.0, "rps": 100.0}
    before = counts(c.metrics(), "tg-half")
    assert set(before) == {"200", "500"}
    time.sleep(2.2)
    text = c.metrics()
    assert "# TYPE http_requests_total counter" in text
    after = counts(text, "tg-half")
    ok, bad = after["200"] - before["200"], after["500"] - before["500"]
    assert 150 <= ok + bad <= 300  # 100/s for ~2 s, in 0.5 s steps
    assert abs(ok - bad) <= 1
    pre = counts(text, "preexisting")
    assert pre["200"] > 0 and pre["500"] == 0
    # validation
    r = requests.put(traffic["url"] + "/rates/x", json={"success_rate": 1.5}, timeout=5)
    assert r.status_code == 400
    r = requests.put(traffic["url"] + "/rates/x", data="not json", timeout=5)
    assert r.status_code == 400
    # an empty body creates the service at the default rate
    r = requests.put(traffic["url"] + "/rates/tg-default", timeout=5)
    assert r.status_code == 200 and r.json()["success_rate"] == 1.0


def test_prometheus_config_is_local_and_light(prom):
    argv = prom["spec"].argv
    assert argv[0] == prometheus.BINARY or argv[0].endswith("/prometheus")
    assert any(a.startswith("--web.listen-address=127.0.0.1:") for a in argv)
    assert "--storage.tsdb.retention.time=1h" in argv
    assert f"--storage.tsdb.path={prom['state'] / 'prometheus' / 'data'}" in argv
    cfg = (prom["state"] / "prometheus" / "prometheus.yml").read_text()
    assert "scrape_interval: 1s" in cfg
    with pytest.raises(ValueError):
        prometheus.write_config(prom["state"] / "other", ["10.0.0.1:9090"])
    assert requests.get(prom["url"] + "/-/ready", timeout=5).status_code == 200


def test_query_results_and_errors(prom):
    assert query(prom["url"], 'http_requests_total{service="no-such-service"}') is None
    assert query(prom["url"], "1 + 1") == 2.0
    assert query(prom["url"], "1 + 1", method="GET") == 2.0
    with pytest.raises(QueryError, match="bad_data"):
        query(prom["url"], "sum(rate(")


def test_rollouts_query_path_and_switch_lag(prom, traffic):
    c = traffic["client"]
    c.set_success_rate(SVC, 1.0)
    url = prom["url"]
    q30, q10 = success_ratio("30s"), success_ratio("10s")

    # the way Rollouts asks: POST form query+time; and its GET fallback
    v, took = poll(lambda: query(url, q30, method="POST"), lambda v: v is not None and v >= 0.95, timeout=30)
    assert query(url, q30, method="GET") >= 0.95
    assert query(url, q10, method="POST") >= 0.95
    raw = requests.post(url + "/api/v1/query", data={"query": q30, "time": f"{time.time():.3f}"}, timeout=5).json()
    assert raw["status"] == "success" and raw["data"]["resultType"] == "vector"
    print(f"\nfirst ratio >= 0.95 after {took:.1f}s (Prometheus ready -> first scrapes)")

    # steady state first: the [30s] window must hold 30 s of all-good samples, or the
    # measured lag below would be that of a half-empty window (shorter than in a real run)
    full = f'count_over_time(http_requests_total{{service="{SVC}",status="200"}}[30s])'
    v, took = poll(lambda: query(url, full), lambda v: v is not None and v >= 29, timeout=45, interval=0.5)
    print(f"[30s] window full ({v:.0f} samples) {took:.1f}s later")
    assert query(url, q30) >= 0.95

    # switch to 50 % success and measure how long each window takes to fall below 0.95
    c.set_success_rate(SVC, 0.5)
    switched = time.monotonic()
    fell: dict[str, float] = {}
    last: dict[str, float | None] = {}
    while len(fell) < 2 and time.monotonic() - switched < 30:
        for name, q in (("30s", q30), ("10s", q10)):
            for method in ("POST", "GET"):
                last[f"{name}/{method}"] = val = query(url, q, method=method)
                if name not in fell and method == "GET" and val is not None and val < 0.95 \
                        and last[f"{name}/POST"] is not None and last[f"{name}/POST"] < 0.95:
                    fell[name] = time.monotonic() - switched
        time.sleep(0.2)
    assert set(fell) == {"30s", "10s"}, f"not both below 0.95 within 30s: fell={fell} last={last}"
    print(f"switch 1.0 -> 0.5: ratio < 0.95 after {fell['30s']:.1f}s with [30s], {fell['10s']:.1f}s with [10s]")
    # and it keeps falling towards 0.5
    v, took = poll(lambda: query(url, q10), lambda v: v is not None and v < 0.6, timeout=25)
    print(f"[10s] ratio < 0.6 after {time.monotonic() - switched:.1f}s")
