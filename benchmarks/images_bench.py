"""Image build figures: cold and warm `gitops-conformance testbed images`, per image, and sizes.

    python -m benchmarks.images_bench [--cold] [--specs argocd,redis,...]

A script, not a test. Every measurement builds into a fresh temporary image cache
($GITOPS_CONFORMANCE_IMAGES_CACHE), removed afterwards; the binaries come from the
`testbed build` cache as in a real run (their build is `testbed build`'s figure, not this one).

  cold          empty image cache: mmdebstrap downloads every .deb and installs it, every layer
                and archive is written (needs the network to the Debian mirror; minutes). Only
                with --cold, otherwise the .deb cache of the real image cache is copied in first,
                so the figure is "cold, .debs already downloaded" (no network).
  warm          the same cache again: every archive is up to date (the no-op a second run costs)
  verify        oci.verify_archive over every archive (hashing every blob)

Prints one line per figure and a JSON summary.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from gitops_conformance.testbed.images import build, oci  # noqa: E402
from gitops_conformance.testbed.images.spec import all_specs  # noqa: E402


def _timed_build(specs: list[str]) -> tuple[float, dict[str, float], list[dict], list[str]]:
    per_spec: dict[str, float] = {}
    results: list[dict] = []
    failures: list[str] = []
    started = time.monotonic()
    for name in specs:
        t = time.monotonic()
        with contextlib.redirect_stdout(io.StringIO()):
            r, f = build.build_images([name])
        per_spec[name] = time.monotonic() - t
        results += r
        failures += f
    return time.monotonic() - started, per_spec, results, failures


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.images_bench", description=__doc__.splitlines()[0])
    ap.add_argument("--cold", action="store_true", help="also download every .deb (network, minutes)")
    ap.add_argument("--specs", default=",".join(all_specs()), help="comma-separated image specs (default: all)")
    args = ap.parse_args(argv)
    specs = [s for s in args.specs.split(",") if s]
    real_debs = build.cache_dir() / "debs"
    with tempfile.TemporaryDirectory(prefix="images-bench-") as tmp:
        os.environ["GITOPS_CONFORMANCE_IMAGES_CACHE"] = tmp
        if not args.cold and real_debs.is_dir():
            shutil.copytree(real_debs, Path(tmp) / "debs")
        label = "cold (empty cache, .debs downloaded)" if args.cold else "cold (empty cache, .debs already downloaded)"
        cold, per_spec, results, failures = _timed_build(specs)
        if failures:
            print("\n".join(failures), file=sys.stderr)
            return 1
        warm, _, warm_results, _ = _timed_build(specs)
        assert all(r["cached"] for r in warm_results), "a warm build rebuilt something"
        t = time.monotonic()
        for r in results:
            oci.verify_archive(Path(r["archive"]))
        verify = time.monotonic() - t
        sizes = {r["refs"][0]: r["size"] for r in results}
    print(f"date {dt.date.today()}  host {platform.node()}  cpus {os.cpu_count()}")
    print(f"{label}: {cold:.0f} s for {len(results)} images from {len(specs)} specs")
    for name, secs in per_spec.items():
        print(f"  {name:<14} {secs:6.1f} s")
    print(f"warm (all cached): {warm:.1f} s")
    print(f"verify every archive (sha256 of every blob): {verify:.1f} s")
    print("archive sizes:")
    for ref, size in sizes.items():
        print(f"  {ref:<62} {size / 1e6:7.1f} MB")
    print(json.dumps({"cold_s": round(cold, 1), "cold_with_downloads": args.cold, "warm_s": round(warm, 1),
                      "verify_s": round(verify, 1), "per_spec_s": {k: round(v, 1) for k, v in per_spec.items()},
                      "sizes_mb": {k: round(v / 1e6, 1) for k, v in sizes.items()}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
