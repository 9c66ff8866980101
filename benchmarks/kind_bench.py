"""kind figures: the node image's cold build, `kind create` -> node and CoreDNS Ready, memory at peak.

    python -m benchmarks.kind_bench [--runs 1] [--rebuild-node-image]

A script, not a test; needs a Docker daemon (CI machine: `.ci/dockerd.sh`). Cold build steps
are not re-run (they take many minutes and the network): their wall times are what the real
builds on this machine recorded (Go components: `.built.json`; debootstrap, image archives,
base and node image: ~/.cache/gitops-conformance/kind/timings.json). `--rebuild-node-image`
re-times the last step (assembly from cached parts). Clusters are created now and deleted in
a `finally`.

Memory: the host's used memory (MemTotal - MemAvailable) sampled every 0.5 s above its value
before `kind create`, and the node container's own peak (its memory cgroup's max usage).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from gitops_conformance.testbed import versions  # noqa: E402
from gitops_conformance.testbed.kind import cluster, docker, lifecycle, nodeimage, timings  # noqa: E402


def _used_mib() -> float:
    info = {l.split(":")[0]: int(l.split()[1]) for l in Path("/proc/meminfo").read_text().splitlines()}
    return (info["MemTotal"] - info["MemAvailable"]) / 1024


class PeakSampler(threading.Thread):
    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.base, self.peak, self._done = _used_mib(), 0.0, threading.Event()

    def run(self) -> None:
        while not self._done.wait(0.5):
            self.peak = max(self.peak, _used_mib() - self.base)

    def stop(self) -> float:
        self._done.set()
        self.join()
        return self.peak


def cold_build() -> None:
    print("\nnode image, cold build steps (recorded by the real builds on this machine)")
    total = 0.0
    for name in ("kind", "kubernetes-node", "coredns", "pause"):
        stamp = versions.bin_dir(versions.load()[name]) / ".built.json"
        if stamp.exists():
            data = json.loads(stamp.read_text())
            total += data["build_seconds"]
            print(f"  go build {name:<40} {data['build_seconds']:>7.1f} s  ({data['built_at'][:19]})")
        else:
            print(f"  go build {name:<40} {'-':>7}    not built")
    for step, data in timings.load().items():
        total += data["seconds"]
        print(f"  {step:<49} {data['seconds']:>7.1f} s  ({data['at']})")
    print(f"  {'total (sequential; the testbed`s own k8s/etcd builds not counted)':<49} {total:>7.1f} s "
          f"({total / 60:.1f} min)")


def create_once(image: str) -> dict:
    name = f"gc-kind-bench-{uuid.uuid4().hex[:6]}"
    with tempfile.TemporaryDirectory(prefix="kind-bench-") as tmp:
        kubeconfig = Path(tmp) / "kubeconfig"
        config = cluster.write(Path(tmp) / "kind.yaml", image, name=name)
        sampler = PeakSampler()
        sampler.start()
        t0 = time.monotonic()
        try:
            lifecycle.create(name, config, kubeconfig)
            created = time.monotonic() - t0
            lifecycle.wait_ready(kubeconfig, timeout=300)
            ready = time.monotonic() - t0
            node_peak = lifecycle.node_memory_peak(name)
        finally:
            try:
                host_peak = sampler.stop()
            finally:
                t1 = time.monotonic()
                lifecycle.delete(name)
                deleted = time.monotonic() - t1
        left = lifecycle.node_containers(name)
    return {"create": created, "ready": ready, "delete": deleted, "host_peak_mib": host_peak,
            "node_peak_mib": node_peak / 2**20 if node_peak else None, "left": left}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--rebuild-node-image", action="store_true", help="re-time the node image assembly")
    args = ap.parse_args()
    docker.require_daemon()
    print(f"date      {dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%d %H:%M:%S UTC')}")
    print(f"machine   {os.cpu_count()} CPU(s), {_used_mib():.0f} MiB in use before the runs")
    comps = versions.load()
    print(f"versions  kind {comps['kind'].version}, kubernetes {comps['kubernetes'].version}, "
          f"etcd {comps['etcd'].version}, coredns {comps['coredns'].version}, debian {versions.debian_suite()}")
    t0 = time.monotonic()
    image = nodeimage.build(force=args.rebuild_node_image, log=lambda *_: None)
    print(f"node image {image} ({'assembled' if args.rebuild_node_image else 'found'} in "
          f"{time.monotonic() - t0:.1f} s; size {int(docker.run(['image', 'inspect', '--format', '{{.Size}}', image]).strip()) >> 20} MiB)")
    cold_build()
    print(f"\nkind create -> node Ready and CoreDNS Ready ({args.runs} run(s))")
    for i in range(args.runs):
        r = create_once(image)
        node = f"{r['node_peak_mib']:.0f} MiB" if r["node_peak_mib"] else "n/a"
        print(f"  run {i + 1}: kind create {r['create']:.1f} s, Ready after {r['ready']:.1f} s, "
              f"kind delete {r['delete']:.1f} s; memory peak: host +{r['host_peak_mib']:.0f} MiB, node container {node}; "
              f"containers left: {len(r['left'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
