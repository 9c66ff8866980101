"""summary.md: the verdict and item table in GitHub-flavoured Markdown (job-summary friendly).

Short on purpose (GitHub caps a job summary at 1 MiB): verdict, why not
certified, the item table, latencies, and one line per failed test with its
remediation. Every value is redacted and escaped: `<`, `>` and `&` become
entities (GitHub renders raw HTML in Markdown), Markdown punctuation and table
pipes get a backslash (\\ ` * _ [ ] | ~), newlines become spaces.
"""
from __future__ import annotations

import re
from typing import Any

from gitops_conformance.redact import redact
from gitops_conformance.reports.html import NOT_PASSING, _title, ordered_reasons

ICON = {"pass": "✅", "fail": "❌", "error": "💥", "warn": "⚠️", "incomplete": "🧩", "not_run": "⏭️"}
CELL_LIMIT = 300  # characters of free text per table cell / bullet


def md(value: Any, limit: int = CELL_LIMIT) -> str:
    """Redacted, one line, no markup: safe in a table cell and in running text."""
    text = " ".join(redact("" if value is None else str(value)).split())
    if len(text) > limit:
        text = text[:limit - 1] + "…"
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return re.sub(r"([\\`*_\[\]|~])", r"\\\1", text)


def code(value: Any) -> str:
    """An identifier in a code span (backticks dropped; pipes escaped for tables)."""
    text = redact(str(value)).replace("`", "'").replace("\n", " ")
    return "`" + text.replace("|", "\\|") + "`"


def _num(v: Any) -> str:
    return f"{float(v):.2f}" if isinstance(v, (int, float)) else "–"


def render(report: dict) -> str:
    verdict = str(report.get("verdict", "NOT CERTIFIED"))
    ok = verdict.startswith("CERTIFIED")
    items = report.get("items", {})
    project = report.get("project") or {}
    cluster = report.get("cluster") or {}
    engine = report.get("engine") or {}
    counts = report.get("summary", {})
    icon = {"CERTIFIED": "✅", "CERTIFIED WITH WARNINGS": "⚠️"}.get(verdict, "❌")
    lines = [f"# {icon} GitOps conformance: **{md(verdict)}**", ""]
    passed = counts.get("pass", sum(i.get("status") == "pass" for i in items.values()))
    lines.append(f"{passed} of {len(items)} Validation items pass · " + " · ".join(
        f"{ICON.get(k, '')} {counts[k]} {k}" for k in ("pass", *NOT_PASSING)
        if counts.get(k)))
    lines.append("")
    commit = str(project.get("commit") or "unknown")
    facts = [
        ("Run", code(report.get("run_id", "?"))),
        ("Time", f"{md(report.get('started_at'))} → {md(report.get('finished_at'))}"),
        ("Suite", f"gitops-conformance {md(project.get('version', '?'))} "
                  f"(commit {code(commit[:12] if commit != 'unknown' else commit)})"),
        ("Cluster", ", ".join(md(f"{k} {v}") for k, v in (
            ("provider", cluster.get("provider")), ("context", cluster.get("context")),
            ("server", cluster.get("server_version")), ("nodes", cluster.get("node_count")))
            if v not in (None, "")) or "–"),
        ("Engine", ", ".join(md(f"{k} {v}") for k, v in engine.items() if v not in (None, "")) or "–"),
    ]
    lines += [f"- **{k}:** {v}" for k, v in facts] + [""]
    if not ok:
        lines += ["## Why not certified", ""]
        lines += [f"- {md(r, 600)}" for r in ordered_reasons(report.get("reasons") or ["(no reason recorded)"])]
        lines.append("")
    if report.get("warnings"):
        lines += ["## Warnings", ""] + [f"- {md(w, 600)}" for w in report["warnings"]] + [""]
    lines += ["## Validation items", "", "| Item | Requirement | Status | Tests | Notes |",
              "|---|---|---|---|---|"]
    for name, item in items.items():
        status = str(item.get("status"))
        declared = item.get("declared_checks") or []
        tests = f"{sum(c.get('status') == 'pass' for c in declared)}/{len(declared)} checks passed"
        lines.append(f"| {code(name)} | {md(_title(name, item))} | "
                     f"{ICON.get(status, '')} {md(status)} | {tests} | {md(item.get('reason') or '')} |")
    lines.append("")
    metrics = [(name, metric, m) for name, item in items.items()
               for metric, m in (item.get("metrics") or {}).items() if m.get("values")]
    if metrics:
        lines += ["## Latencies (seconds)", "", "| Item | Metric | n | p50 | p95 | max |",
                  "|---|---|---:|---:|---:|---:|"]
        for name, metric, m in metrics:
            values = [v for v in m["values"] if isinstance(v, (int, float))]
            lines.append(f"| {code(name)} | {code(metric)} | {len(values)} | {_num(m.get('p50'))} | "
                         f"{_num(m.get('p95'))} | {_num(max(values) if values else None)} |")
        lines.append("")
    problems = [(name, item) for name, item in items.items()
                if item.get("status") in NOT_PASSING]
    if problems:
        lines += ["## What failed and what to do", ""]
        for name, item in problems:
            lines.append(f"### {ICON.get(item['status'], '')} {md(name)}: {md(item['status'])}")
            lines.append("")
            for c in item.get("declared_checks") or []:
                if c.get("status") != "pass":
                    lines.append(f"- check {code(c.get('test'))}: {md(c.get('status'))}, "
                                 f"{md(c.get('reason') or '', 600)}")
            for t in item.get("tests", []):
                if t.get("outcome") in ("failed", "xfailed", "error"):
                    lines.append(f"- {code(t.get('nodeid'))} ({md(t.get('outcome'))}): "
                                 f"{md(t.get('message') or 'no message')}")
                for c in t.get("checks") or []:
                    if c.get("status", "pass") == "fail" and t.get("outcome") == "passed":
                        lines.append(f"- {code(t.get('nodeid'))}: check {md(c.get('name'))} expected "
                                     f"{md(c.get('expected'))}, observed {md(c.get('observed'))}")
            for r in item.get("remediation") or []:
                lines.append(f"- **Remediation:** {md(r, 800)}")
            lines.append("")
    lines.append("Full details, evidence and latency chart: `report.html` "
                 "(all files: `conformance-report.tar.gz`).")
    return "\n".join(lines) + "\n"
