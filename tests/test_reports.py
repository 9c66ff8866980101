"""Tests for the report outputs (reports/*, the junit regrouping and completed conformance.json).

Inner runs use pytester like tests/test_results.py: some items pass, repo_auth
fails with evidence, auto_sync is skipped, prune passes but records a failed
check (warn), canary fails on a plain assert. A secret is registered and then
leaked on purpose (failure message, observed value, evidence, stdout, options),
next to an unregistered token-looking value, and markup is planted in an
observed value and in evidence.
"""
pytest_plugins = ["pytester"]

import base64  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tarfile  # noqa: E402
import xml.etree.ElementTree as ET  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

import gitops_conformance.fixtures as fixtures  # noqa: E402
import gitops_conformance  # noqa: E402
from gitops_conformance.fixtures import hints  # noqa: E402
from tests import inner_runs  # noqa: E402
from gitops_conformance.fixtures.results import VALIDATION_ITEMS  # noqa: E402
from gitops_conformance.reports import archive, render  # noqa: E402

REPO_ROOT = Path(fixtures.__file__).resolve().parent.parent
PLANTED = "zq7Rt2Lm9Xv4Pw8Kd3Hs"  # registered with redact.register_secret, then leaked
TOKEN = "ghp_" + "Q8w7E6r5T4y3U2i1O0pAsDfGhJkL"  # never registered: the token pattern must catch it
XSS = "<script>alert(1)</script>"
NEEDLES = [PLANTED, base64.b64encode(PLANTED.encode()).decode().rstrip("="), TOKEN]

CONFTEST = f'''
from gitops_conformance.redact import register_secret
from gitops_conformance.fixtures.results import set_run_info

def pytest_configure(config):
    register_secret("{PLANTED}")  # as fixtures/plugin.py does with --git-token
    set_run_info(config, "options.git_url", "https://bot:{PLANTED}@git.example.com/r.git")
    set_run_info(config, "cluster", {{"provider": "kind", "context": "kind-conf",
                                     "server_version": "v1.30.2", "node_count": 3}})
    set_run_info(config, "engine", {{"name": "argocd", "argocd_api_version": "v2.12.3"}})
'''

SUITE = f'''
import base64
import pytest
from gitops_conformance.fixtures import checks

@pytest.mark.validation("install")
def test_api_answers_with_its_version(record_metric, record_check):
    for seconds in (1.0, 2.0, 3.0, 4.0, 10.0):
        record_metric("commit_to_synced_s", seconds)
    record_check("api version", "a version", "v2.12.3", True, duration_s=0.25)

@pytest.mark.validation("repo_auth")
def test_https_token_connection_is_successful(record_check, monkeypatch):
    record_check("repo listed", "Successful", "Successful", True)
    print("stdout carries {PLANTED} and {TOKEN}")
    checks.Waiter(sleep=lambda s: None).until(
        lambda: checks.pending("{XSS} auth failed for {PLANTED} with {TOKEN}"),
        timeout=0, what="repo connected", expected="ConnectionStatus Successful",
        remediation="rotate the repo credentials & re-add the repository",
        evidence=lambda: {{
            "server log": "{XSS}\\nrejected {PLANTED}\\nclient sent {TOKEN}\\n",
            "repo secret": "kind: Secret\\ndata:\\n  password: "
                           + base64.b64encode(b"{PLANTED}").decode() + "\\n",
            "big log": "line of controller log output\\n" * 2000}})

@pytest.mark.validation("auto_sync")
def test_declarative_app_syncs_image_tag_commit():
    pytest.skip("no webhook configured")

@pytest.mark.validation("self_heal")
@pytest.mark.parametrize("drift", ["scale"])
def test_out_of_band_change_is_reverted(record_metric, record_check, drift):
    record_metric("drift_to_reverted_s", 7.5)
    record_check("replicas reverted", "3", "{XSS}", True)

@pytest.mark.validation("prune")
def test_manifest_removed_from_git_is_pruned(record_check):
    record_check("orphan pruned", "gone", "still present", False, remediation="enable prune: true")

@pytest.mark.validation("canary")
def test_canary_walks_weights_and_promotes_on_healthy_analysis():
    observed = "{TOKEN}"  # whole in the message: pytest's own diff would cut it (see report)
    assert observed is None, f"canary stuck; the analysis ran with {{observed}}"

@pytest.mark.validation("canary")
def test_cli_history(record_warning):
    record_warning("history command", "revisions listed", "unknown command", "the command does not exist")
'''


@pytest.fixture(autouse=True)
def _isolate(monkeypatch):
    inner_runs.isolate(monkeypatch, "report-run-0001")


run = inner_runs.run


def make_sample_run(pytester, report_dir: Path):
    """The mixed run above; returns the inner result (shared with the browser test)."""
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_sample=SUITE, test_install_rest=inner_runs.declared_source(
        "install", skip={"test_api_answers_with_its_version"}))
    return run(pytester, "--report-dir", str(report_dir), "-o", "junit_logging=all")


@pytest.fixture
def sample(pytester):
    report_dir = pytester.path / "out"
    stale = report_dir / "evidence" / "rbac" / "old_run" / "stale.txt"
    stale.parent.mkdir(parents=True)
    stale.write_text("evidence of an earlier run")
    result = make_sample_run(pytester, report_dir)
    result.assert_outcomes(passed=8, failed=2, skipped=1)
    report = json.loads((report_dir / "conformance.json").read_text())
    return result, report_dir, report


def test_outputs_exist_and_html_is_self_contained(sample):
    _, report_dir, _ = sample
    html = (report_dir / "report.html").read_text()
    assert (report_dir / "summary.md").is_file() and (report_dir / archive.ARCHIVE_NAME).is_file()
    assert html.startswith("<!DOCTYPE html>")
    lowered = html.lower()
    for banned in ("<script", "<link", "src=", "url(", "@import", "<iframe", "<object", "<embed"):
        assert banned not in lowered, banned
    assert all(href.startswith("#") for href in re.findall(r'href="([^"]*)"', html))
    assert not re.search(r"(?i)\b(?:href|src|action|xmlns)\s*=\s*['\"]?\s*https?:", html)
    assert '<div class="big" id="verdict">NOT CERTIFIED</div>' in html
    for item in VALIDATION_ITEMS:
        assert f'id="item-{item}"' in html and f"<code>{item}</code>" in html
    assert "<details>" in html and "<svg" in html  # evidence collapsible, latency chart inline
    assert "p50 3.00 s \u00b7 p95 8.80 s \u00b7 n=5" in html  # install's 5 samples, labelled
    assert "rotate the repo credentials &amp; re-add the repository" in html
    assert "enable prune: true" in html and ">WARN<" in html and ">INCOMPLETE<" in html
    assert "the command does not exist" in html


def test_planted_markup_is_escaped_everywhere(sample):
    _, report_dir, _ = sample
    html = (report_dir / "report.html").read_text()
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    assert XSS not in html
    assert html.count(escaped) >= 3  # an observed value, a failure message, an evidence file
    evidence_pre = html[html.index("server_log.txt"):]
    assert escaped in evidence_pre[:evidence_pre.index("</details>")]
    md = (report_dir / "summary.md").read_text()
    assert "<script" not in md and "&lt;script&gt;" in md


def test_no_secret_in_any_file_or_archive_member(sample):
    result, report_dir, report = sample
    files = [p for p in report_dir.rglob("*") if p.is_file()]
    assert {"conformance.json", "junit.xml", "report.html", "summary.md", archive.ARCHIVE_NAME,
            "server_log.txt", "repo_secret.txt", "big_log.txt"} <= {p.name for p in files}
    for path in files:
        data = path.read_bytes()
        for needle in NEEDLES:
            assert needle.encode() not in data, f"{needle} leaked into {path}"
    with tarfile.open(report_dir / archive.ARCHIVE_NAME) as tar:
        members = {m.name: m for m in tar.getmembers()}
        for member in members.values():
            if member.isfile():
                data = tar.extractfile(member).read()
                for needle in NEEDLES:
                    assert needle.encode() not in data, f"{needle} leaked into {member.name} (tar)"
    top = archive.TOP
    assert {f"{top}/conformance.json", f"{top}/junit.xml", f"{top}/report.html",
            f"{top}/summary.md"} <= set(members)
    assert f"{top}/{archive.ARCHIVE_NAME}" not in members
    assert not any(name.endswith(".tmp") for name in members)
    evidence = {rel for i in report["items"].values() for t in i["tests"] for rel in t["evidence"]}
    assert {f"{top}/{rel}" for rel in evidence} <= set(members)
    assert not any("stale" in name for name in members)  # pruned: an earlier run's evidence
    assert not (report_dir / "evidence" / "rbac").exists()
    # the planted values were really there to leak (redaction did the work)
    assert "***" in (report_dir / "evidence/repo_auth/test_sample.py_test_https_token_connection_is_successful/server_log.txt").read_text()
    for needle in NEEDLES:
        assert needle not in result.stdout.str()


def test_junit_has_one_testsuite_per_item(sample):
    _, report_dir, _ = sample
    root = ET.parse(report_dir / "junit.xml").getroot()
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert list(suites) == list(VALIDATION_ITEMS)
    assert suites["install"].get("tests") == "5" and suites["install"].get("failures") == "0"
    assert root.get("failures") == "2"
    (repo_case,) = suites["repo_auth"].findall("testcase")
    failure = repo_case.find("failure")
    assert "repo connected: expected ConnectionStatus Successful" in failure.get("message")
    assert "rotate the repo credentials & re-add the repository" in failure.get("message")
    out = repo_case.find("system-out").text
    assert "--- evidence evidence/repo_auth/" in out and XSS in out  # XML-escaped on disk
    assert "characters omitted" in out  # big_log.txt was cut
    canary = suites["canary"].find("testcase/failure")
    assert "canary stuck" in canary.get("message")
    assert hints.for_item("canary") in canary.get("message")  # plain assert: the procedure's note
    placeholder = suites["rbac"].find("testcase")
    assert placeholder.get("name") == "not_run" and placeholder.find("skipped") is not None
    statuses = {name: s.find("properties/property[@name='status']").get("value")
                for name, s in suites.items()}
    assert statuses["prune"] == "fail" and statuses["install"] == "pass"
    assert statuses["self_heal"] == "incomplete" and statuses["canary"] == "fail"


def test_conformance_json_is_complete(sample):
    _, _, report = sample
    assert report["project"]["version"] == gitops_conformance.__version__
    assert report["project"]["name"] == "gitops-conformance"
    assert report["project"]["commit"] == "unknown" or re.fullmatch(r"[0-9a-f]{40,64}",
                                                                    report["project"]["commit"])
    assert report["cluster"] == {"provider": "kind", "context": "kind-conf",
                                 "server_version": "v1.30.2", "node_count": 3}
    assert report["engine"]["argocd_api_version"] == "v2.12.3"
    assert report["options"]["git_url"] == "https://bot:***@git.example.com/r.git"
    status = {name: i["status"] for name, i in report["items"].items()}
    assert status["install"] == "pass" and status["repo_auth"] == "fail"
    assert status["auto_sync"] == "not_run" and status["prune"] == "fail"
    assert status["self_heal"] == "incomplete" and status["canary"] == "fail"
    assert report["summary"]["incomplete"] == 1 and report["summary"]["pass"] == 1
    assert report["verdict"] == "NOT CERTIFIED"
    assert any(r.startswith("prune: fail") for r in report["reasons"])
    history = [c for c in report["items"]["canary"]["declared_checks"] if c["test"] == "test_cli_history"]
    assert history[0]["status"] == "warn" and "the command does not exist" in history[0]["reason"]
    items = report["items"]
    assert items["repo_auth"]["remediation"] == ["rotate the repo credentials & re-add the repository"]
    assert items["canary"]["remediation"] == [hints.for_item("canary")]
    assert items["prune"]["remediation"] == ["enable prune: true"]
    assert items["install"]["remediation"] == []
    failed_check = items["repo_auth"]["tests"][0]["checks"][1]
    assert failed_check["elapsed_s"] >= 0 and len(failed_check["evidence"]) == 3
    api = [t for t in items["install"]["tests"] if t["nodeid"].endswith("test_api_answers_with_its_version")]
    assert api[0]["checks"][0]["duration_s"] == 0.25
    assert items["install"]["metrics"]["commit_to_synced_s"]["p95"] == pytest.approx(8.8)


def test_summary_markdown(sample):
    _, report_dir, _ = sample
    md = (report_dir / "summary.md").read_text()
    assert md.startswith("# ❌ GitOps conformance: **NOT CERTIFIED**")
    assert "## Why not certified" in md
    assert "- repo\\_auth: fail (1 of 4 checks failed: test\\_https\\_token\\_connection\\_is\\_successful)" in md
    assert "- prune: fail" in md and "- self\\_heal: incomplete" in md
    for item in VALIDATION_ITEMS:
        assert f"| `{item}` |" in md
    assert "| `install` | `commit_to_synced_s` | 5 | 3.00 | 8.80 | 10.00 |" in md
    assert "**Remediation:** rotate the repo credentials &amp; re-add the repository" in md
    table = [line for line in md.splitlines() if line.startswith("| `")]
    assert all(line.count(" | ") == 4 for line in table[:len(VALIDATION_ITEMS)])


def test_rerender_from_the_command_line(sample, tmp_path):
    _, report_dir, _ = sample
    (report_dir / "report.html").unlink()
    (report_dir / "summary.md").unlink()
    proc = subprocess.run([sys.executable, "-m", "gitops_conformance.reports.render", str(report_dir)],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "report.html" in proc.stdout and (report_dir / "report.html").is_file()
    assert (report_dir / "summary.md").is_file()
    html = (report_dir / "report.html").read_text()
    for needle in NEEDLES:  # a fresh process knows no registered secret: the files were clean
        assert needle not in html
    missing = subprocess.run([sys.executable, "-m", "gitops_conformance.reports.render", str(tmp_path)],
                             cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert missing.returncode == 1 and "conformance.json" in missing.stderr


def test_certified_run_renders_green(pytester):
    pytester.makepyfile(**{f"test_{name}": inner_runs.declared_source(name) for name in VALIDATION_ITEMS})
    report_dir = pytester.path / "out"
    run(pytester, "--report-dir", str(report_dir)).assert_outcomes(
        passed=sum(len(inner_runs.declared_names(n)) for n in VALIDATION_ITEMS))
    html = (report_dir / "report.html").read_text()
    assert '<header class="verdict ok">' in html and ">CERTIFIED</div>" in html
    assert 'id="why"' not in html and "No latencies were recorded" in html
    md = (report_dir / "summary.md").read_text()
    assert md.startswith("# ✅ GitOps conformance: **CERTIFIED**") and "Why not certified" not in md


def test_evidence_is_read_only_from_the_evidence_folder(tmp_path):
    (tmp_path / "evidence").mkdir()
    (tmp_path / "secret.txt").write_text("outside")
    (tmp_path / "evidence" / "big.txt").write_text("x" * 50_000)
    outside = render.read_evidence(tmp_path, "../secret.txt")
    assert outside.text == "" and "outside" in outside.note
    assert render.read_evidence(tmp_path, "secret.txt").text == ""
    big = render.read_evidence(tmp_path, "evidence/big.txt")
    assert big.size == 50_000 and "truncated" in big.note
    assert len(big.text) < render.EVIDENCE_HEAD + render.EVIDENCE_TAIL + 100
    assert render.read_evidence(tmp_path, "evidence/big.txt", budget=0).text == ""
    assert "missing" in render.read_evidence(tmp_path, "evidence/nope.txt").note


def test_render_failure_leaves_no_stale_outputs(pytester, monkeypatch):
    from gitops_conformance.reports import html as html_mod

    pytester.makepyfile(test_one=inner_runs.declared_source("rbac"))
    report_dir = pytester.path / "out"
    report_dir.mkdir()
    (report_dir / "report.html").write_text("an earlier run's report")

    def boom(*a, **k):
        raise RuntimeError("renderer broke")

    monkeypatch.setattr(html_mod, "render", boom)
    result = run(pytester, "--report-dir", str(report_dir))
    result.assert_outcomes(passed=4)
    assert (report_dir / "conformance.json").is_file()
    assert not (report_dir / "report.html").exists()


@pytest.mark.parametrize("pytest_code, verdict, expected", [
    (0, "CERTIFIED", 0), (0, "CERTIFIED WITH WARNINGS", 0), (0, "NOT CERTIFIED", 1),
    (1, "NOT CERTIFIED", 1), (2, "NOT CERTIFIED", 2), (0, None, 1),
])
def test_certify_exit_code_and_paths(tmp_path, monkeypatch, capsys, pytest_code, verdict, expected):
    from gitops_conformance import cli

    def fake_call(cmd, cwd):
        assert "--report-dir" in cmd
        if verdict:
            (tmp_path / "conformance.json").write_text(json.dumps({"verdict": verdict}))
            (tmp_path / "report.html").write_text("x")
            (tmp_path / "summary.md").write_text("x")
        return pytest_code

    monkeypatch.setattr(cli.subprocess, "call", fake_call)
    assert cli.main(["certify", "--report-dir", str(tmp_path), "-m", "install"]) == expected
    out, err = capsys.readouterr()
    if not verdict:
        assert "this run wrote no report" in err
    if verdict:
        assert f"verdict: {verdict}" in out
        assert str(tmp_path / "report.html") in out and str(tmp_path / "summary.md") in out


def test_archive_skips_symlinks_and_itself(tmp_path):
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / "evidence").mkdir()
    (tmp_path / "evidence" / "b.txt").write_text("b")
    (tmp_path / "link.txt").symlink_to("/etc/hostname")
    (tmp_path / "x.tmp").write_text("partial")
    archive.write_archive(tmp_path)
    path = archive.write_archive(tmp_path)  # twice: the first archive is not packed into the second
    with tarfile.open(path) as tar:
        names = sorted(tar.getnames())
        assert {m.uname for m in tar.getmembers()} == {""}
        assert tar.extractfile(f"{archive.TOP}/evidence/b.txt").read() == b"b"
    assert names == [f"{archive.TOP}/a.txt", f"{archive.TOP}/evidence", f"{archive.TOP}/evidence/b.txt"]
    assert io.BytesIO(path.read_bytes()).read(2) == b"\x1f\x8b"
