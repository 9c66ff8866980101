"""`gitops-conformance`: the project's one command line.

  gitops-conformance testbed build|up|down|status|env [--state-dir DIR] [--engine argocd|flux]
  gitops-conformance testbed node-image [--force]  kind's node image, assembled offline (needs Docker)
  gitops-conformance testbed kind-config          the kind cluster config for that image, on this machine
  gitops-conformance testbed images [NAME ...] [--engine argocd|flux] [--force] [--list] [--load kind:CLUSTER]
                                                every image a cluster needs, as archives (offline)
  gitops-conformance certify [pytest options]   run the suites, print verdict and report paths;
                                                exit 0 only when CERTIFIED (pytest's code if it failed, else 1)
  gitops-conformance audit PATH [--format text|json]   the Common Pitfalls audit of a GitOps repo
"""
from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path

from gitops_conformance.audit import cli as audit_cli

REPO_ROOT = Path(__file__).resolve().parent.parent


def _testbed(args: argparse.Namespace) -> int:
    from gitops_conformance.testbed import build
    from gitops_conformance.testbed.stack import Testbed, TestbedError

    if args.action == "build":
        return build.build_all(args.components or None, force=args.force, engine=args.engine)
    if args.action in ("node-image", "kind-config"):
        return _kind(args)
    if args.action == "images":
        return _images(args)
    try:
        tb = Testbed(args.state_dir, engine=args.engine)
        if args.action == "up":
            if tb.is_up():
                print(f"testbed already up in {tb.state_dir} (engine {tb.running_engine()})")
            else:
                tb.up()
            for name, url in tb.endpoints().items():
                print(f"  {name:<16} {url}")
            print(f"  {'kubeconfig':<16} {tb.layout.kubeconfig}")
            print(f"  {'logs':<16} {tb.state_dir / 'logs'}")
            print(f'use it: eval "$(gitops-conformance testbed env --state-dir {tb.state_dir})"')
        elif args.action == "down":
            tb.down()
        elif args.action == "status":
            rows = tb.status()
            if not rows:
                print(f"no testbed in {tb.state_dir}")
                return 1
            for r in rows:
                health = "healthy" if r["healthy"] else ("running, not answering" if r["alive"] else "DEAD")
                print(f"  {r['component']:<31} pid {r['pid']:<7} port {r['port'] or '-':<6} {health}")
            return 0 if all(r["healthy"] for r in rows) else 1
        elif args.action == "env":
            if not tb.is_up():
                print(f"no running testbed in {tb.state_dir}", file=sys.stderr)
                return 1
            for k, v in tb.env().items():
                print(f"export {k}={shlex.quote(v)}")
    except TestbedError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def _kind(args: argparse.Namespace) -> int:
    from gitops_conformance.testbed.build import BuildError
    from gitops_conformance.testbed.kind import cluster, docker, nodeimage
    from gitops_conformance.testbed.kind.rootfs import RootfsError

    if args.action == "kind-config":
        print(cluster.render(nodeimage.node_image_name()), end="")
        return 0
    try:
        print(nodeimage.build(force=args.force))
    except (BuildError, RootfsError, docker.DockerError, nodeimage.NodeImageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def _images(args: argparse.Namespace) -> int:
    """Build the image archives (cached), optionally load them into a kind cluster."""
    from gitops_conformance.testbed.images import build as images, kind

    if args.list:
        for name, spec in images.all_specs().items():
            try:
                refs = [r for names, _ in spec.variants() for r in names]
            except images.SpecError as exc:
                refs = [f"(names unknown: {exc})"]
            for ref in refs:
                have = images.built_archives().get(ref)
                print(f"  {name:<14} {ref:<62} {have or '(not built)'}")
        return 0
    cluster = None
    if args.load:
        try:
            cluster = kind.parse_target(args.load)
        except kind.KindError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    results, failures = images.build_images(args.components or None, force=args.force, engine=args.engine)
    if failures:
        print(f"{len(failures)} image spec(s) failed:", file=sys.stderr)
        for line in failures:
            print(f"  {line}", file=sys.stderr)
        return 1
    if cluster:
        try:
            for line in kind.load([Path(r["archive"]) for r in results], cluster):
                print(line)
        except kind.KindError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    return 0


def _certify(args: argparse.Namespace, rest: list[str]) -> int:
    """Run the suites; print verdict and report paths.

    Exit code: pytest's when it is not 0 (failures, usage or internal errors);
    1 when pytest passed but the verdict is NOT CERTIFIED (e.g. not_run or incomplete
    items, a `-m`/`-k` subset) or this run wrote no report; 0 only when CERTIFIED (with
    or without warnings, which are printed).
    """
    from gitops_conformance.fixtures.results import DEFAULT_REPORT_DIR, REPORT_OUTPUTS
    from gitops_conformance.fixtures.verdict import CERTIFIED, CERTIFIED_WITH_WARNINGS

    report_dir = Path(args.report_dir) if args.report_dir else REPO_ROOT / DEFAULT_REPORT_DIR
    for name in REPORT_OUTPUTS:  # a stale verdict must never be printed as this run's
        (report_dir / name).unlink(missing_ok=True)
    # -p: the suite's plugins are asked for explicitly (the pytest11 entry point is inert otherwise)
    cmd = [sys.executable, "-m", "pytest", "-p", "gitops_conformance.plugin", str(REPO_ROOT / "suites"),
           "--report-dir", str(report_dir), *rest]
    code = subprocess.call(cmd, cwd=REPO_ROOT)
    result = report_dir / "conformance.json"
    if not result.exists():
        print(f"\nthis run wrote no report to {report_dir} (pytest exit code {code}): nothing was certified",
              file=sys.stderr)
        return code or 1
    report = json.loads(result.read_text())
    verdict = report.get("verdict", "?")
    print(f"\nverdict: {verdict}\nreport:  {report_dir.resolve()}")
    for line in report.get("reasons", []) + [f"warning: {w}" for w in report.get("warnings", [])]:
        print(f"  {line}")
    for label, name in (("html", "report.html"), ("summary", "summary.md"),
                        ("archive", "conformance-report.tar.gz")):
        path = report_dir / name
        print(f"{label + ':':<8} {path.resolve() if path.exists() else f'(not written: {name})'}")
    if code:
        return code
    return 0 if verdict in (CERTIFIED, CERTIFIED_WITH_WARNINGS) else 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="gitops-conformance", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    tb = sub.add_parser("testbed", help="the local testbed (real control plane and Argo stack as host processes)")
    tb.add_argument("action", choices=["build", "up", "down", "status", "env", "node-image", "kind-config", "images"])
    tb.add_argument("components", nargs="*", help="build/images: only these components or image specs (default: all the engine's)")
    tb.add_argument("--state-dir", default=None, help="state, logs, kubeconfig (default: .testbed/ in the checkout)")
    tb.add_argument("--force", action="store_true", help="build, node-image: rebuild even if cached; images: rewrite "
                    "the archives (Debian layers stay cached by their inputs)")
    tb.add_argument("--engine", choices=["argocd", "flux"], default="argocd",
                    help="up: the GitOps engine the testbed runs (one at a time); build/images: also build its binaries/images")
    tb.add_argument("--load", metavar="kind:CLUSTER", help="images: load the archives into this kind cluster")
    tb.add_argument("--list", action="store_true", help="images: list every image, its name and archive")
    cert = sub.add_parser("certify", help="run the conformance suites and write the report (extra args go to pytest)")
    cert.add_argument("--report-dir", default=None,
                      help="where the report goes (default: the results plugin's, reports/latest in the checkout)")
    audit_cli.add_parser(sub)
    args, rest = ap.parse_known_args(argv)
    if args.command == "audit":
        return ap.error(f"unrecognised arguments: {' '.join(rest)}") if rest else audit_cli.run(args)
    if args.command == "testbed":
        if rest:
            ap.error(f"unrecognised arguments: {' '.join(rest)}")
        return _testbed(args)
    return _certify(args, rest)


if __name__ == "__main__":
    sys.exit(main())
