"""report.html: one self-contained page (inline CSS and SVG; no JS, fonts or external URLs).

render(report, evidence) is pure: `report` is the parsed conformance.json and
`evidence` maps a file path (relative to the report dir) to the redacted, maybe
truncated text reports.render read. Every value goes through esc(): redacted,
then HTML-escaped, so nothing from the cluster can become markup.
"""
from __future__ import annotations

import datetime as dt
import math
import re
from html import escape
from typing import Any, Iterable

from gitops_conformance.redact import redact
from gitops_conformance.items import BY_ID

STATUS_LABEL = {"pass": "PASS", "fail": "FAIL", "error": "ERROR", "warn": "WARN",
                "incomplete": "INCOMPLETE", "not_run": "NOT RUN"}
NOT_PASSING = ("fail", "error", "warn", "incomplete", "not_run")  # the order counts are shown in
OBSERVED_LIMIT = 1500  # characters of a check's observed value shown in the table

CSS = """
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
 color:#1f2328;background:#f6f8fa}
main{max-width:1180px;margin:0 auto;padding:0 24px 48px}
h1,h2,h3{line-height:1.25;margin:0}
h2{font-size:20px;margin:28px 0 12px}
code,pre{font:12.5px/1.45 ui-monospace,SFMono-Regular,Menlo,Consolas,"Liberation Mono",monospace}
a{color:#0969da;text-decoration:none}a:hover{text-decoration:underline}
.verdict{color:#fff;padding:28px 24px 24px}
.verdict .inner{max-width:1180px;margin:0 auto;padding:0 24px}
.verdict.ok{background:#1a7f37}.verdict.bad{background:#b42318}
.verdict .kicker{font-size:13px;letter-spacing:.08em;text-transform:uppercase;opacity:.9}
.verdict .big{font-size:48px;font-weight:800;letter-spacing:.02em;margin:4px 0 6px}
.verdict .sub{font-size:15px;opacity:.95}
.card{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:16px 18px;margin:0 0 14px}
.reasons{border-left:6px solid #b42318}
.reasons ul{margin:6px 0 0;padding-left:20px}
.counts{display:flex;gap:10px;flex-wrap:wrap;margin:16px 0 14px}
.count{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:8px 14px;min-width:104px}
.count b{display:block;font-size:22px}
dl.meta{display:grid;grid-template-columns:max-content 1fr max-content 1fr;gap:6px 18px;margin:0}
dl.meta dt{color:#57606a}dl.meta dd{margin:0;overflow-wrap:anywhere}
table{border-collapse:collapse;width:100%;background:#fff}
th,td{border:1px solid #d0d7de;padding:6px 9px;text-align:left;vertical-align:top}
th{background:#f0f3f6;font-weight:600}
td.num{text-align:right;white-space:nowrap}
.badge{display:inline-block;border-radius:999px;padding:1px 10px;font-size:12px;font-weight:700;
 white-space:nowrap;border:1px solid transparent}
.s-pass,.o-passed{background:#dafbe1;color:#116329;border-color:#4ac26b}
.s-fail,.o-failed,.o-xfailed{background:#ffebe9;color:#a40e26;border-color:#ff8182}
.s-error,.o-error{background:#fff1e5;color:#953800;border-color:#fb8f44}
.s-warn{background:#fff8c5;color:#7d4e00;border-color:#d4a72c}
.s-not_run,.o-skipped{background:#eaeef2;color:#424a53;border-color:#afb8c1}
.s-incomplete{background:#fbefff;color:#6e40c9;border-color:#c297ff}
.item{border-left:6px solid #afb8c1}
.item.st-pass{border-left-color:#2da44e}.item.st-fail{border-left-color:#cf222e}
.item.st-error{border-left-color:#fb8f44}.item.st-warn{border-left-color:#d4a72c}
.item.st-incomplete{border-left-color:#8250df}
.verdict.warn{background:#9a6700}
.item h3{font-size:17px;display:flex;gap:10px;align-items:center;flex-wrap:wrap}
.item .req{color:#57606a;margin:2px 0 8px}
.remedy{background:#fff8c5;border:1px solid #d4a72c;border-radius:6px;padding:8px 12px;margin:8px 0}
.remedy ul{margin:4px 0 0;padding-left:20px}
.test{border-top:1px solid #d8dee4;padding:10px 0 4px;margin-top:8px}
.test-head{display:flex;gap:8px;align-items:baseline;flex-wrap:wrap}
.test-head code{font-weight:600;overflow-wrap:anywhere}
.dur{color:#57606a;font-size:12px}
pre{white-space:pre-wrap;overflow-wrap:anywhere;margin:6px 0;background:#f6f8fa;border:1px solid #d8dee4;
 border-radius:6px;padding:8px 10px}
pre.msg{background:#ffebe9;border-color:#ffcecb}
table.checks{margin:6px 0;font-size:13px}
table.checks td.val{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px;
 white-space:pre-wrap;overflow-wrap:anywhere;max-width:420px}
tr.fix td{background:#fff8c5}
details{margin:4px 0}
summary{cursor:pointer;color:#0969da}
details pre{max-height:520px;overflow:auto}
.note{color:#7d4e00;font-size:12px;margin:4px 0}
.muted{color:#57606a}
svg text{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif}
footer{color:#57606a;font-size:12px;margin-top:28px}
@media print{details{display:block}body{background:#fff}}
"""


def esc(value: Any) -> str:
    """Redact, then HTML-escape (quotes too): the only way values enter the page."""
    if value is None:
        return "&mdash;"
    return escape(redact(value if isinstance(value, str) else str(value)), quote=True)


def _id(name: str) -> str:
    return "item-" + re.sub(r"[^A-Za-z0-9_-]+", "-", str(name))


def seconds(value: Any) -> str:
    """A duration for people: 0.42 s, 3.1 s, 2 min 05 s."""
    try:
        s = float(value)
    except (TypeError, ValueError):
        return "&mdash;" if value in (None, "") else esc(value)
    if s < 10:
        return f"{s:.2f} s"
    if s < 120:
        return f"{s:.1f} s"
    return f"{int(s // 60)} min {int(s % 60):02d} s"


def _badge(status: str, prefix: str = "s") -> str:
    label = STATUS_LABEL.get(status, status) if prefix == "s" else status
    return f'<span class="badge {prefix}-{esc(status)}">{esc(label)}</span>'


def _elapsed(report: dict) -> str:
    try:
        start, end = (dt.datetime.strptime(report[k], "%Y-%m-%dT%H:%M:%SZ")
                      for k in ("started_at", "finished_at"))
    except (KeyError, TypeError, ValueError):
        return ""
    return f" ({seconds((end - start).total_seconds())})"


# --- header and run metadata ----------------------------------------------------

def _header(report: dict) -> str:
    verdict = str(report.get("verdict", "NOT CERTIFIED"))
    tone = {"CERTIFIED": "ok", "CERTIFIED WITH WARNINGS": "warn"}.get(verdict, "bad")
    items = report.get("items", {})
    counts = report.get("summary", {})
    passed = counts.get("pass", sum(i.get("status") == "pass" for i in items.values()))
    sub = f"{passed} of {len(items)} Validation items pass"
    rest = [f"{counts[k]} {STATUS_LABEL[k].lower()}" for k in NOT_PASSING if counts.get(k)]
    if rest:
        sub += " &middot; " + " &middot; ".join(esc(r) for r in rest)
    return (f'<header class="verdict {tone}"><div class="inner">'
            f'<div class="kicker">GitOps conformance verdict</div>'
            f'<div class="big" id="verdict">{esc(verdict)}</div>'
            f'<div class="sub">{sub} &middot; run {esc(report.get("run_id"))} &middot; '
            f'{esc(report.get("finished_at"))}</div></div></header>')


def ordered_reasons(reasons: list) -> list:
    """Failures first, then errors, warnings, not-run items; other reasons (exit status) last."""
    rank = {status: n for n, status in enumerate(NOT_PASSING)}

    def key(reason: Any) -> int:
        m = re.match(r"^[\w-]+: (\w+)", str(reason))
        return rank.get(m.group(1), len(rank)) if m else len(rank)

    return sorted(reasons, key=key)


def _reasons(report: dict) -> str:
    reasons = ordered_reasons(report.get("reasons") or [])
    warnings = report.get("warnings") or []
    parts = []
    if reasons and not str(report.get("verdict", "")).startswith("CERTIFIED"):
        lis = "".join(f"<li>{esc(r)}</li>" for r in reasons)
        parts.append(f'<section class="card reasons" id="why"><b>Why not certified</b> '
                     f'<span class="muted">(CERTIFIED needs every check of every Validation item to '
                     f'run and pass in one run)</span><ul>{lis}</ul></section>')
    if warnings:
        lis = "".join(f"<li>{esc(w)}</li>" for w in warnings)
        parts.append(f'<section class="card reasons" id="warnings"><b>Warnings</b> <span class="muted">'
                     f'(results that are neither a pass nor a failure)</span><ul>{lis}</ul></section>')
    return "".join(parts)


def _counts(report: dict) -> str:
    counts = report.get("summary", {})
    cells = "".join(f'<div class="count">{_badge(k)}<b>{esc(counts.get(k, 0))}</b></div>'
                    for k in ("pass", *NOT_PASSING))
    return f'<div class="counts">{cells}</div>'


def _pairs(pairs: Iterable[tuple[str, Any]]) -> str:
    return "".join(f"<dt>{esc(k)}</dt><dd>{v}</dd>" for k, v in pairs)


def _run_meta(report: dict) -> str:
    project = report.get("project") or {}
    cluster = dict(report.get("cluster") or {})
    engine = dict(report.get("engine") or {})
    commit = str(project.get("commit") or "unknown")
    short = commit[:12] if commit != "unknown" else commit
    pairs = [
        ("Run id", f"<code>{esc(report.get('run_id'))}</code>"),
        ("Suite", f"{esc(project.get('name', 'gitops-conformance'))} {esc(project.get('version'))} "
                  f'(commit <code title="{esc(commit)}">{esc(short)}</code>)'),
        ("Started", esc(report.get("started_at"))),
        ("Finished", esc(report.get("finished_at")) + esc(_elapsed(report))),
        ("Cluster provider", esc(cluster.pop("provider", None))),
        ("Kube context", esc(cluster.pop("context", None))),
        ("Kubernetes server", esc(cluster.pop("server_version", None))),
        ("Nodes", esc(cluster.pop("node_count", None))),
        ("pytest exit status", esc(report.get("exit_status"))),
        ("Schema version", esc(report.get("schema_version"))),
    ]
    pairs += [(f"Cluster {k}", esc(v)) for k, v in cluster.items()]
    pairs += [(f"Engine {k}", esc(v)) for k, v in engine.items()]
    options = report.get("options") or {}
    rows = "".join(f"<tr><th>{esc(k)}</th><td><code>{esc(v)}</code></td></tr>"
                   for k, v in options.items())
    opts = (f'<details><summary>Resolved options ({len(options)}, secrets redacted)</summary>'
            f'<table>{rows}</table></details>') if options else ""
    return (f'<section id="run"><h2>Run</h2><div class="card"><dl class="meta">{_pairs(pairs)}</dl>'
            f'{opts}</div></section>')


# --- item table ------------------------------------------------------------------

def _test_counts(item: dict) -> str:
    outcomes = [t.get("outcome") for t in item.get("tests", [])]
    ran = [o for o in outcomes if o != "skipped"]
    text = f"{ran.count('passed')}/{len(ran)} passed"
    if len(ran) != len(outcomes):
        text += f", {len(outcomes) - len(ran)} skipped"
    return esc(text)


def _title(name: str, item: dict) -> str:
    return item.get("title") or (BY_ID[name].title if name in BY_ID else "")


def _items_table(report: dict) -> str:
    rows = []
    for name, item in report.get("items", {}).items():
        duration = sum(float(t.get("duration") or 0) for t in item.get("tests", []))
        rows.append(
            f'<tr><td><a href="#{_id(name)}"><code>{esc(name)}</code></a></td>'
            f'<td>{esc(_title(name, item))}</td><td>{_badge(str(item.get("status")))}</td>'
            f'<td class="num">{_test_counts(item)}</td>'
            f'<td class="num">{seconds(duration) if item.get("tests") else "&mdash;"}</td>'
            f'<td>{esc(item.get("reason") or "")}</td></tr>')
    return (f'<section id="items"><h2>Validation items</h2><table class="items"><thead><tr>'
            f'<th>Item</th><th>Requirement</th><th>Status</th><th>Tests</th><th>Time</th>'
            f'<th>Notes</th></tr></thead><tbody>{"".join(rows)}</tbody></table></section>')


# --- latency chart ------------------------------------------------------------------

def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    exp = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * exp:
            return step * exp
    return 10 * exp


def _num(v: float) -> str:
    return f"{v:.2f}" if v < 10 else f"{v:.1f}"


def latency_chart(report: dict) -> str:
    """Inline SVG: one row per metric, range bar, a dot per value, p50 and p95 marks, labelled."""
    rows = []
    for name, item in report.get("items", {}).items():
        for metric, m in (item.get("metrics") or {}).items():
            values = [float(v) for v in m.get("values", []) if isinstance(v, (int, float))]
            if values:
                rows.append((name, metric, values, m.get("p50"), m.get("p95")))
    if not rows:
        return ('<section id="latency"><h2>Latencies</h2><p class="muted">'
                'No latencies were recorded in this run.</p></section>')
    top = _nice_max(max(max(r[2]) for r in rows))
    label_w, bar_x, bar_w, row_h, head = 270, 280, 520, 36, 28
    width, height = 1130, head + row_h * len(rows) + 34

    def x(v: float) -> float:
        return bar_x + bar_w * min(max(v, 0.0), top) / top

    parts = [f'<svg role="img" viewBox="0 0 {width} {height}" '
             f'width="100%" style="max-width:{width}px;background:#fff;border:1px solid #d0d7de;'
             f'border-radius:8px" aria-label="Recorded latencies in seconds">',
             '<title>Recorded latencies (seconds): p50 and p95 per metric</title>',
             f'<g font-size="12"><rect x="{bar_x}" y="9" width="10" height="10" fill="#9ecbff"/>'
             f'<text x="{bar_x + 15}" y="18">min&#8211;max</text>'
             f'<circle cx="{bar_x + 98}" cy="14" r="3.5" fill="#57606a"/>'
             f'<text x="{bar_x + 107}" y="18">sample</text>'
             f'<rect x="{bar_x + 170}" y="6" width="3" height="16" fill="#0550ae"/>'
             f'<text x="{bar_x + 178}" y="18">p50</text>'
             f'<rect x="{bar_x + 215}" y="6" width="3" height="16" fill="#bc4c00"/>'
             f'<text x="{bar_x + 223}" y="18">p95</text></g>']
    for i, (name, metric, values, p50, p95) in enumerate(rows):
        y = head + i * row_h
        mid = y + row_h / 2
        lo, hi = min(values), max(values)
        parts.append(f'<rect x="0" y="{y}" width="{width}" height="{row_h}" '
                     f'fill="{"#f6f8fa" if i % 2 else "#ffffff"}"/>')
        parts.append(f'<text x="12" y="{mid + 4:.1f}" font-size="13"><tspan font-weight="600">'
                     f'{esc(name)}</tspan> &#183; {esc(metric)}</text>')
        parts.append(f'<rect x="{bar_x}" y="{mid - 7:.1f}" width="{bar_w}" height="14" fill="#eaeef2" rx="3"/>')
        parts.append(f'<rect x="{x(lo):.1f}" y="{mid - 7:.1f}" width="{max(x(hi) - x(lo), 2):.1f}" '
                     f'height="14" fill="#9ecbff" rx="3"/>')
        for v in values:
            parts.append(f'<circle cx="{x(v):.1f}" cy="{mid:.1f}" r="3.5" fill="#57606a">'
                         f'<title>{esc(_num(v))} s</title></circle>')
        label = f"n={len(values)} \u00b7 max {_num(hi)} s"
        if isinstance(p50, (int, float)) and isinstance(p95, (int, float)):
            for v, colour in ((p50, "#0550ae"), (p95, "#bc4c00")):
                parts.append(f'<rect x="{x(v) - 1.5:.1f}" y="{mid - 12:.1f}" width="3" height="24" '
                             f'fill="{colour}"/>')
            label = f"p50 {_num(p50)} s \u00b7 p95 {_num(p95)} s \u00b7 {label}"
        else:
            label = f"{_num(values[0])} s  (n=1, no percentiles)" if len(values) == 1 else label
        parts.append(f'<text x="{bar_x + bar_w + 12}" y="{mid + 4:.1f}" font-size="12.5">'
                     f'{esc(label)}</text>')
    axis_y = head + row_h * len(rows) + 6
    parts.append(f'<line x1="{bar_x}" y1="{axis_y}" x2="{bar_x + bar_w}" y2="{axis_y}" stroke="#8c959f"/>')
    for k in range(5):
        v = top * k / 4
        parts.append(f'<line x1="{x(v):.1f}" y1="{axis_y}" x2="{x(v):.1f}" y2="{axis_y + 5}" stroke="#8c959f"/>'
                     f'<text x="{x(v):.1f}" y="{axis_y + 18}" font-size="11" text-anchor="middle" '
                     f'fill="#57606a">{esc(_num(v))} s</text>')
    parts.append("</svg>")
    return f'<section id="latency"><h2>Latencies</h2>{"".join(parts)}</section>'


# --- per item ------------------------------------------------------------------------

def _evidence_block(rel: str, evidence: dict) -> str:
    ev = evidence.get(rel)
    name = rel.rsplit("/", 1)[-1]
    if ev is None:
        return f'<p class="note">evidence {esc(rel)}: not read</p>'
    size = f" ({ev.size:,} characters)" if ev.size else ""
    note = f'<p class="note">{esc(ev.note)}</p>' if ev.note else ""
    body = f"<pre>{escape(ev.text, quote=True)}</pre>" if ev.text else ""
    return (f'<details><summary><code>{esc(name)}</code>{esc(size)}</summary>'
            f'<p class="muted">{esc(rel)}</p>{note}{body}</details>')


def _check_rows(checks: list[dict]) -> str:
    rows = []
    for c in checks:
        passed = bool(c.get("passed"))
        observed = str(c.get("observed", ""))
        if len(observed) > OBSERVED_LIMIT:
            observed = observed[:OBSERVED_LIMIT] + f" [... {len(observed) - OBSERVED_LIMIT:,} more characters in conformance.json]"
        duration = c.get("elapsed_s", c.get("duration_s"))
        bound = f" of {seconds(c['bound_s'])}" if c.get("bound_s") else ""
        rows.append(f'<tr><td>{esc(c.get("name"))}</td><td class="val">{esc(c.get("expected", ""))}</td>'
                    f'<td class="val">{esc(observed)}</td>'
                    f'<td>{_badge("passed" if passed else "failed", "o")}</td>'
                    f'<td class="num">{seconds(duration) if duration is not None else "&mdash;"}{bound}</td></tr>')
        extra = []
        if not passed and c.get("remediation"):
            extra.append(f"<b>Remediation:</b> {esc(c['remediation'])}")
        if c.get("evidence"):
            extra.append("<b>Evidence:</b> " + ", ".join(
                f"<code>{esc(str(r).rsplit('/', 1)[-1])}</code>" for r in c["evidence"]))
        if extra:
            rows.append(f'<tr class="fix"><td colspan="5">{"<br>".join(extra)}</td></tr>')
    return rows and ('<table class="checks"><thead><tr><th>Check</th><th>Expected</th><th>Observed</th>'
                     '<th>Result</th><th>Duration</th></tr></thead><tbody>' + "".join(rows)
                     + "</tbody></table>") or ""


def _test_block(test: dict, evidence: dict) -> str:
    outcome = str(test.get("outcome", ""))
    head = (f'<div class="test-head">{_badge(outcome, "o")}<code>{esc(test.get("nodeid"))}</code>'
            f'<span class="dur">{seconds(test.get("duration"))}</span></div>')
    message = test.get("message") or ""
    msg = ""
    if message:
        msg = f'<pre class="{"msg" if outcome != "skipped" else ""}">{esc(message)}</pre>'
    checks = _check_rows(test.get("checks") or [])
    rels = list(dict.fromkeys([*test.get("evidence", []),
                               *[r for c in test.get("checks") or [] for r in c.get("evidence") or []]]))
    ev = ""
    if rels:
        ev = (f'<div class="evidence"><b>Evidence</b> <span class="muted">({len(rels)} files, '
              f'redacted; click to expand)</span>' + "".join(_evidence_block(r, evidence) for r in rels)
              + "</div>")
    return f'<div class="test">{head}{msg}{checks}{ev}</div>'


def _declared_checks(declared: list) -> str:
    """The item's contract: each declared check with its result in this run and why."""
    if not declared:
        return ""
    rows = "".join(f'<tr><td><code>{esc(c.get("test"))}</code></td><td>{esc(c.get("proves"))}</td>'
                   f'<td>{_badge(str(c.get("status")))}</td><td>{esc(c.get("reason") or "")}</td></tr>'
                   for c in declared)
    return ('<table class="checks declared"><tr><th>declared check</th><th>proves</th><th>result</th>'
            f'<th>why</th></tr>{rows}</table>')


def _item_section(name: str, item: dict, evidence: dict) -> str:
    status = str(item.get("status"))
    parts = [f'<section class="card item st-{esc(status)}" id="{_id(name)}">'
             f'<h3><code>{esc(name)}</code>{_badge(status)}</h3>'
             f'<div class="req">{esc(_title(name, item))}'
             + (f' &middot; {esc(item["reason"])}' if item.get("reason") else "") + "</div>"]
    remedies = item.get("remediation") or []
    if remedies and status in ("fail", "error", "warn"):
        parts.append('<div class="remedy"><b>Remediation</b><ul>'
                     + "".join(f"<li>{esc(r)}</li>" for r in remedies) + "</ul></div>")
    parts.append(_declared_checks(item.get("declared_checks") or []))
    tests = item.get("tests") or []
    if not tests:
        parts.append('<p class="muted">No test of this item ran in this run.</p>')
    parts += [_test_block(t, evidence) for t in tests]
    parts.append("</section>")
    return "".join(parts)


def render(report: dict, evidence: dict | None = None) -> str:
    evidence = evidence or {}
    verdict = esc(report.get("verdict", "NOT CERTIFIED"))
    items = report.get("items", {})
    body = [_header(report), "<main>", _counts(report), _reasons(report), _run_meta(report),
            _items_table(report), latency_chart(report), '<h2 id="details">Items in detail</h2>']
    body += [_item_section(name, item, evidence) for name, item in items.items()]
    body.append(f'<footer>Rendered from conformance.json (schema {esc(report.get("schema_version"))}) '
                f'by gitops-conformance. Evidence and values are redacted; the full evidence files are '
                f'in conformance-report.tar.gz.</footer></main>')
    return ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<title>{verdict} &#8211; GitOps conformance report {esc(report.get("run_id"))}</title>'
            f'<style>{CSS}</style></head><body>' + "".join(body) + "</body></html>\n")
