"""Render a report dir's conformance.json into report.html, summary.md and the archive.

    python -m gitops_conformance.reports.render DIR     re-render DIR/conformance.json (prints the paths)

The results plugin calls render_all(report_dir) at session end, right after it
wrote conformance.json and junit.xml. Everything shown goes through
gitops_conformance.redact.redact() once more (the json and evidence files were redacted
when written; this pass also runs in a fresh process, where only the patterns
apply), and evidence files are read only from inside <report-dir>/evidence/.
"""
from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path

from gitops_conformance.redact import redact
from gitops_conformance.reports import archive, html, markdown

REPORT_JSON = "conformance.json"
HTML_NAME = "report.html"
MARKDOWN_NAME = "summary.md"
EVIDENCE_HEAD = 4_000  # characters kept from the start of a long evidence file
EVIDENCE_TAIL = 12_000  # ... and from its end (logs: the interesting part is last)
EVIDENCE_BUDGET = 3_000_000  # characters of evidence inlined into one report.html


@dataclasses.dataclass(frozen=True)
class Evidence:
    """One evidence file as report.html shows it: redacted, maybe cut, with a note saying so."""

    rel: str
    text: str
    size: int  # characters in the file (0 when missing)
    note: str = ""  # "" when shown whole


def read_evidence(report_dir: Path, rel: str, budget: int | None = None) -> Evidence:
    root = (report_dir / "evidence").resolve()
    path = (report_dir / rel).resolve()
    if not path.is_relative_to(root):
        return Evidence(rel, "", 0, "not shown: the path is outside the report's evidence/ folder")
    if not path.is_file():
        return Evidence(rel, "", 0, "not shown: the file is missing from the report dir")
    text = redact(path.read_text(encoding="utf-8", errors="replace"))
    size = len(text)
    if budget is not None and budget <= 0:
        return Evidence(rel, "", size, f"not inlined ({size:,} characters): the report's evidence "
                                       f"budget is used up; read the file in the archive")
    if size > EVIDENCE_HEAD + EVIDENCE_TAIL:
        omitted = size - EVIDENCE_HEAD - EVIDENCE_TAIL
        text = (text[:EVIDENCE_HEAD] + f"\n\n[... {omitted:,} characters omitted ...]\n\n"
                + text[-EVIDENCE_TAIL:])
        return Evidence(rel, text, size, f"truncated: first {EVIDENCE_HEAD:,} and last "
                                         f"{EVIDENCE_TAIL:,} of {size:,} characters shown; "
                                         f"the full file is {rel} in the archive")
    return Evidence(rel, text, size)


def collect_evidence(report_dir: Path, report: dict) -> dict[str, Evidence]:
    """Every evidence file the report references, within the size budget, in report order."""
    shown: dict[str, Evidence] = {}
    budget = EVIDENCE_BUDGET
    for item in report.get("items", {}).values():
        for test in item.get("tests", []):
            rels = list(test.get("evidence", []))
            rels += [r for c in test.get("checks", []) for r in c.get("evidence", []) or []]
            for rel in rels:
                if rel not in shown:
                    ev = shown[rel] = read_evidence(report_dir, str(rel), budget)
                    budget -= len(ev.text)
    return shown


def _write(path: Path, text: str) -> Path:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)  # a reader never sees half a report
    return path


def remove_outputs(report_dir: Path) -> None:
    """Delete rendered files (used when rendering failed, so none from an older run remain)."""
    for name in (HTML_NAME, MARKDOWN_NAME, archive.ARCHIVE_NAME):
        (Path(report_dir) / name).unlink(missing_ok=True)


def render_all(report_dir: str | Path) -> dict[str, Path]:
    """Write report.html, summary.md, then the archive of the whole dir; returns their paths."""
    report_dir = Path(report_dir)
    report = json.loads((report_dir / REPORT_JSON).read_text(encoding="utf-8"))
    evidence = collect_evidence(report_dir, report)
    written = {
        "html": _write(report_dir / HTML_NAME, html.render(report, evidence)),
        "markdown": _write(report_dir / MARKDOWN_NAME, markdown.render(report)),
    }
    written["archive"] = archive.write_archive(report_dir)
    return written


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0].startswith("-"):
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    report_dir = Path(args[0])
    if not (report_dir / REPORT_JSON).is_file():
        print(f"no {REPORT_JSON} in {report_dir}", file=sys.stderr)
        return 1
    for kind, path in render_all(report_dir).items():
        print(f"{kind:<9} {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
