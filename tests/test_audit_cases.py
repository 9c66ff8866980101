"""The audit on what real repositories contain (issue 10): each tests/audit_repos/<case>/ is a small
repository, written for this suite, that reproduces one false positive, miss or crash seen on
public GitOps repositories; the table says exactly which findings it must produce.

Also here: masking that never corrupts the output, bounded work on hostile YAML, the CLI's exit
code 3 on an internal error.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from gitops_conformance.audit import audit, yamlparse
from gitops_conformance.audit.cli import main
from gitops_conformance.audit.kustomize import find_kustomize
from gitops_conformance.audit.masking import Masker

REPOS = Path(__file__).parent / "audit_repos"
needs_kustomize = pytest.mark.skipif(find_kustomize() is None, reason="kustomize binary not available")

# case -> {(rule, file, line, severity)}
CASES = {
    # false positives
    "fp-hpa-pairing": set(),
    "fp-rollout-gates": {("rollout-without-analysis", "rollouts/manual-gate.yaml", 1, "warning")},
    "fp-partial-application": set(),
    "fp-readme-scope": {("self-heal-no-escape", "apps/search.yaml", 1, "warning")},
    "cmp-directory": set(),
    "write-back-chart-source": set(),
    "kustomize-remote-base": {("kustomize-remote-base", "tools/kustomization.yaml", 1, "warning"),
                              ("plaintext-secret", "tools/secret.yaml", 1, "error")},
    # misses
    "miss-multi-source-write-back": {("write-back-conflict", "apps/frontend.yaml", 1, "warning")},
    "miss-applicationset": {("prune-disabled", "appsets/metrics.yaml", 1, "error"),
                            ("prune-disabled", "appsets/logging.yaml", 1, "error")},
    "miss-image-updater-resource": {("write-back-conflict", "updaters/shop.yaml", 1, "warning")},
    "not-applicable": set(),
    # crashes
    "crash-control-characters": {("yaml-parse-error", "apps/mixed.yaml", 8, "error"),
                                 ("yaml-parse-error", "apps/mixed.yaml", 13, "error"),
                                 ("missing-finalizer", "apps/mixed.yaml", 15, "warning"),
                                 ("prune-disabled", "apps/ok.yaml", 1, "error")},
    "crash-spec-string": {("invalid-manifest", "apps/odd.yaml", 1, "error"),
                          ("prune-disabled", "apps/real.yaml", 1, "error")},
    "unknown-tags": set(),
    # Flux (issue 15)
    "flux": {("prune-disabled", "clusters/prod/apps.yaml", 1, "error"),
             ("rollout-without-analysis", "apps/prod/canary.yaml", 1, "error")},
}
NEEDS_KUSTOMIZE = {"kustomize-error-line", "crash-kustomization-shapes"}


def found(report) -> set[tuple[str, str, int, str]]:
    return {(f.rule, f.file, f.line, f.severity) for f in report.findings}


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["audit", *map(str, argv)])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("case", sorted(CASES))
def test_case(case):
    assert found(audit(REPOS / case)) == CASES[case]


def test_every_case_directory_is_in_the_table():
    cases = {p.name for p in REPOS.iterdir() if p.name.startswith(("fp-", "miss-", "crash-"))}
    assert cases <= set(CASES) | NEEDS_KUSTOMIZE


def test_applicationset_findings_name_the_applicationset():
    report = audit(REPOS / "miss-applicationset")
    assert {f.object["kind"] for f in report.findings} == {"ApplicationSet"}
    assert {f.object["name"] for f in report.findings} == {"metrics", "logging"}  # tracing's patch is a template


def test_image_updater_finding_names_the_selected_applications():
    [f] = audit(REPOS / "miss-image-updater-resource").findings
    assert f.object == {"kind": "ImageUpdater", "namespace": "argocd", "name": "shop"}
    assert "storefront" in f.message and "payments" not in f.message


def test_multi_source_write_back_names_the_git_branch_not_the_chart_version():
    [f] = audit(REPOS / "miss-multi-source-write-back").findings
    assert "'deploy'" in f.message and "18.2.3" not in f.message


def test_not_applicable_is_said(capsys):
    code, out, _ = cli(capsys, REPOS / "not-applicable")
    assert code == 0 and out.startswith("not applicable: no Argo CD objects")
    code, out, _ = cli(capsys, REPOS / "not-applicable", "--format", "json")
    data = json.loads(out)
    assert data["applicable"] is False and data["note"] == "not applicable: no Argo CD objects"


def test_remote_base_warning_says_why():
    f = next(f for f in audit(REPOS / "kustomize-remote-base").findings if f.rule == "kustomize-remote-base")
    assert "https://git.example.com/platform/tools//base?ref=v1.2.0" in f.message and "offline" in f.message


@needs_kustomize
def test_build_error_quotes_kustomizes_error_line_not_its_warnings():
    [f] = audit(REPOS / "kustomize-error-line").findings
    assert (f.rule, f.file) == ("kustomize-build-error", "overlays/prod/kustomization.yaml")
    assert "failed: Error: " in f.message and "missing-service.yaml" in f.message
    assert "deprecated" not in f.message


@needs_kustomize
def test_odd_kustomization_shapes_are_build_errors_not_crashes(capsys):
    report = audit(REPOS / "crash-kustomization-shapes")
    assert found(report) == {("kustomize-build-error", "gen/kustomization.yaml", 1, "error"),
                             ("kustomize-build-error", "files/kustomization.yaml", 1, "error")}
    code, out, err = cli(capsys, REPOS / "crash-kustomization-shapes", "--format", "json")
    assert code == 1 and json.loads(out)["summary"]["error"] == 2 and "Traceback" not in err


def test_odd_kustomization_shapes_without_kustomize():
    report = audit(REPOS / "crash-kustomization-shapes", kustomize="/nonexistent/kustomize")
    assert {f.rule for f in report.findings} == {"kustomize-unavailable"}


# ---- masking -------------------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["true", "error", "default", "warning", "severity", "rule"])
def test_a_secret_value_that_is_a_common_word_changes_nothing(tmp_path, capsys, value):
    (tmp_path / "apps").mkdir()
    (tmp_path / "apps/web.yaml").write_text((REPOS / "prune-disabled/apps/web.yaml").read_text())
    plain = {fmt: cli(capsys, tmp_path, "--format", fmt)[1] for fmt in ("text", "json")}
    (tmp_path / "invalid-secret.yaml").write_text(
        f"apiVersion: v1\nkind: Secret\nmetadata: {{name: s}}\nstringData: {{a: '{value}'}}\ndata: {{b: '{value}'}}\n")
    for fmt in ("text", "json"):
        out = cli(capsys, tmp_path, "--format", fmt)[1]
        assert "***" not in out
        assert "invalid-secret.yaml" in out
        if fmt == "json":
            data = json.loads(out)
            assert {f["severity"] for f in data["findings"]} == {"error"}
            assert [f for f in data["findings"] if f["rule"] == "prune-disabled"] == \
                [f for f in json.loads(plain["json"])["findings"] if f["rule"] == "prune-disabled"]
        else:  # every line of the report without the Secret is still there, unchanged
            assert set(plain["text"].splitlines()[:-1]) <= set(out.splitlines())


def test_masker_is_one_pass_and_handles_overlaps():
    m = Masker(["Planted-Value-12", "Value-1234", "abcdefgh"])
    assert m.mask("x Planted-Value-1234 y abcdefgh z") == "x *** y *** z"
    assert m.mask("no secrets here") == "no secrets here"
    many = Masker(f"secret-value-{i:06d}" for i in range(20_000))
    text = "secret-value-019999 " * 2000
    start = time.perf_counter()
    assert many.mask(text) == "*** " * 2000
    assert time.perf_counter() - start < 5  # a bound against a hang, not a benchmark


@needs_kustomize
def test_a_value_quoted_by_kustomize_is_masked(tmp_path, capsys):
    """kustomize quotes a literal it cannot parse; the value of a plain Secret of the repository,
    8+ characters, is masked in that quote."""
    (tmp_path / "app").mkdir()
    (tmp_path / "app/secret.yaml").write_text(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {k: Planted-Quoted-Value-42}\n")
    (tmp_path / "app/kustomization.yaml").write_text(
        "resources: [secret.yaml]\nconfigMapGenerator:\n  - name: c\n    literals: [Planted-Quoted-Value-42]\n")
    (tmp_path / "apps.yaml").write_text((REPOS / "prune-disabled/apps/web.yaml").read_text()
                                        .replace("path: workloads/web", "path: app"))
    for fmt in ("text", "json"):
        code, out, _ = cli(capsys, tmp_path, "--format", fmt)
        assert "kustomize-build-error" in out and "Planted-Quoted-Value-42" not in out


# ---- bounded work ------------------------------------------------------------------------------------

LAUGHS = "".join(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]\n" for i in range(1, 10))


def test_alias_bomb_in_a_secret_is_one_finding_in_bounded_time(tmp_path, capsys):
    (tmp_path / "apps.yaml").write_text((REPOS / "prune-disabled/apps/web.yaml").read_text())
    bomb = "stringData:\n  l0: &l0 Planted-Laugh-Value-10\n" + "".join("  " + ln + "\n" for ln in LAUGHS.splitlines())
    (tmp_path / "secret.yaml").write_text(f"apiVersion: v1\nkind: Secret\nmetadata: {{name: s}}\n{bomb}")
    start = time.perf_counter()
    code, out, _ = cli(capsys, tmp_path, "--format", "json")
    assert time.perf_counter() - start < 30
    limits = [f for f in json.loads(out)["findings"] if f["rule"] == "audit-limit"]
    assert [(f["file"], f["severity"]) for f in limits] == [("secret.yaml", "warning")]
    assert "alias" in limits[0]["message"]


@pytest.mark.parametrize("text, what", [
    ("[" * 50_000 + "]" * 50_000, "nesting deeper"),
    ("a: &a [*a]\n", "recursive"),
    ("- " * 30_000 + "x\n", "nesting deeper"),
])
def test_hostile_structure_is_a_limit_finding(text, what):
    start = time.perf_counter()
    objs, findings = yamlparse.parse_yaml(text, "f.yaml")
    assert time.perf_counter() - start < 10
    assert objs == [] and [f.rule for f in findings] == ["audit-limit"] and what in findings[0].message


def test_file_and_document_caps(monkeypatch):
    monkeypatch.setattr(yamlparse, "MAX_FILE_BYTES", 1000)
    _, [f] = yamlparse.parse_yaml("a: b\n" * 300, "big.yaml")
    assert (f.rule, f.line, f.severity) == ("audit-limit", 1, "warning") and "MiB" in f.message
    monkeypatch.setattr(yamlparse, "MAX_DOCUMENTS", 3)
    objs, [f] = yamlparse.parse_yaml("---\n".join(f"n: {i}\n" for i in range(10)), "many.yaml")
    assert len(objs) == 3 and f.rule == "audit-limit" and f.line == 7


# ---- the CLI never shows a traceback -----------------------------------------------------------------

def test_internal_error_is_exit_3_and_a_json_object(monkeypatch, capsys, tmp_path):
    def broken(*_a, **_k):
        raise RuntimeError("simulated bug")
    monkeypatch.setattr("gitops_conformance.audit.cli.audit", broken)
    code, out, err = cli(capsys, tmp_path, "--format", "json")
    assert code == 3 and "Traceback" not in out + err
    assert json.loads(out) == {"error": {"type": "internal-error", "message": "RuntimeError: simulated bug",
                                         "exit_code": 3}}
    code, out, err = cli(capsys, tmp_path)
    assert code == 3 and out == "" and "internal error: RuntimeError: simulated bug" in err


def test_a_rule_that_trips_reports_that_document_and_goes_on(monkeypatch):
    from gitops_conformance.audit import rules

    real = rules.RULES["missing-finalizer"]

    def tripping(ctx):
        def check(app):
            if app.name == "ok":
                raise KeyError("an unexpected shape")
            return []
        return [*rules.each(ctx.apps, "missing-finalizer", check), *real(ctx)]
    monkeypatch.setitem(rules.RULES, "missing-finalizer", tripping)
    report = audit(REPOS / "crash-control-characters")
    assert ("audit-internal-error", "apps/ok.yaml", 1, "error") in found(report)
    assert ("missing-finalizer", "apps/mixed.yaml", 15, "warning") in found(report)
