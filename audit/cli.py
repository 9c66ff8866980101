"""`gitops-conformance audit PATH [--format text|json] [--kustomize BIN]`.

Exit codes: 0 no error-severity finding, 1 at least one, 2 usage error (e.g. PATH is not a
directory), 3 internal error of the audit itself (never a traceback: one line on stderr, or a JSON
error object on stdout under --format json).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from gitops_conformance.audit import audit, loader

INTERNAL_ERROR = 3


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("audit", help="static Common Pitfalls audit of a GitOps repository (no cluster)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("path", help="the GitOps repository (a directory)")
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.add_argument("--kustomize", default=None, metavar="BIN",
                   help=f"kustomize binary (default: on PATH, else {loader.CACHED_KUSTOMIZE})")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    path = Path(args.path)
    if not path.is_dir():
        print(f"gitops-conformance audit: error: {args.path}: no such directory", file=sys.stderr)
        return 2
    try:
        report = audit(path, kustomize=args.kustomize if args.kustomize is not None else loader.AUTO)
        out = report.to_json() + "\n" if args.format == "json" else report.to_text()
    except Exception as exc:  # noqa: BLE001 - a bug in the audit: say so in the format asked for
        what = f"{type(exc).__name__}: {str(exc)[:200]}"
        if args.format == "json":
            print(json.dumps({"error": {"type": "internal-error", "message": what,
                                        "exit_code": INTERNAL_ERROR}}, indent=2))
        else:
            print(f"gitops-conformance audit: internal error: {what} (please report it)", file=sys.stderr)
        return INTERNAL_ERROR
    try:
        sys.stdout.write(out)
        sys.stdout.flush()
    except BrokenPipeError:  # `audit ... | head`: the reader left; no traceback at exit either
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return report.exit_code


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="gitops-conformance")
    add_parser(ap.add_subparsers(dest="command", required=True))
    args = ap.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
