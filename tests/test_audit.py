"""The Common Pitfalls audit (`gitops-conformance audit PATH`): static rules over small fixture repos.

Each repo under tests/audit_repos/<rule>/ triggers exactly that rule; `clean` triggers none, and
mutations of a copy of `clean` exercise each rule's edges (what counts as an escape, a dedicated
branch, an ignored replica count).
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from gitops_conformance.audit import audit
from gitops_conformance.audit.cli import main
from gitops_conformance.audit.loader import find_kustomize
from gitops_conformance.audit.rules import RULES

REPOS = Path(__file__).parent / "audit_repos"
KUSTOMIZE = find_kustomize()
needs_kustomize = pytest.mark.skipif(KUSTOMIZE is None, reason="kustomize binary not available")

PLANTED = ["Planted-Data-Value-77", "UGxhbnRlZC1EYXRhLVZhbHVlLTc3", "Planted-StringData-Value-88",
           "Planted-Generator-Literal-99"]


def rules_of(report) -> set[str]:
    return {f.rule for f in report.findings}


def cli(capsys, *argv: str) -> tuple[int, str]:
    code = main(["audit", *map(str, argv)])
    return code, capsys.readouterr().out


@pytest.fixture
def clean(tmp_path) -> Path:
    dst = tmp_path / "repo"
    shutil.copytree(REPOS / "clean", dst)
    return dst


def with_argo_cd(repo: Path) -> Path:
    """Make `repo` an Argo CD repository (one AppProject): without Argo CD objects the audit is
    not applicable and runs no rule."""
    (repo / "project.yaml").write_text("apiVersion: argoproj.io/v1alpha1\nkind: AppProject\n"
                                       "metadata: {name: default, namespace: argocd}\nspec: {}\n")
    return repo


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new))


# ---- one repo per rule, and the clean one ---------------------------------------------------------

@needs_kustomize
@pytest.mark.parametrize("rule", sorted(RULES))
def test_each_rule_repo_triggers_exactly_that_rule(rule):
    report = audit(REPOS / rule)
    assert rules_of(report) == {rule}, report.to_text()
    assert len(report.findings) == 1


@needs_kustomize
def test_clean_repo_has_no_findings_and_exits_0(capsys):
    code, out = cli(capsys, REPOS / "clean")
    assert code == 0
    assert out.startswith("no findings; 13 YAML file(s) scanned"), out


def test_every_rule_has_a_fixture_repo():
    assert {p.name for p in REPOS.iterdir() if p.name in RULES} == set(RULES)


def test_finding_fields_for_a_multi_document_file():
    [f] = audit(REPOS / "plaintext-secret").findings
    assert (f.rule, f.severity, f.file, f.line) == ("plaintext-secret", "error", "workloads/db/secret.yaml", 8)
    assert f.object == {"kind": "Secret", "namespace": "", "name": "db-credentials"}
    assert "data keys password" in f.message and "stringData keys api-token" in f.message
    assert "Use Sealed Secrets or External Secrets Operator" in f.remediation


def test_line_is_the_first_key_after_comments_and_separators():
    [f] = audit(REPOS / "prune-disabled").findings
    assert (f.file, f.line) == ("apps/web.yaml", 2)  # line 1 is a comment


# ---- rule edges on a copy of the clean repo ------------------------------------------------------

@needs_kustomize
def test_hpa_ignore_without_respect_is_a_warning(clean):
    edit(clean / "apps/web.yaml", "      - RespectIgnoreDifferences=true\n", "")
    report = audit(clean)
    [f] = report.findings
    assert (f.rule, f.severity, f.object["name"]) == ("hpa-replicas-not-ignored", "warning", "web")
    assert f.file == "workloads/web/kustomization.yaml" and f.origin == "workloads/web/deployment.yaml:1"
    assert report.exit_code == 0


@needs_kustomize
def test_hpa_without_ignore_on_a_rendered_workload_is_an_error(clean):
    edit(clean / "apps/web.yaml", "      jsonPointers:\n        - /spec/replicas\n",
         "      jsonPointers:\n        - /spec/template\n")
    [f] = audit(clean).findings
    assert (f.rule, f.severity) == ("hpa-replicas-not-ignored", "error")


@needs_kustomize
def test_hpa_workload_without_replicas_needs_no_ignore(clean):
    edit(clean / "apps/web.yaml", "/spec/replicas", "/spec/template")
    edit(clean / "workloads/web/deployment.yaml", "  replicas: 2\n", "")
    assert audit(clean).findings == []


@needs_kustomize
def test_hpa_ignore_by_managed_fields_manager_counts(clean):
    edit(clean / "apps/web.yaml", "      jsonPointers:\n        - /spec/replicas\n",
         "      managedFieldsManagers:\n        - kube-controller-manager\n")
    assert audit(clean).findings == []


@needs_kustomize
def test_self_heal_escapes(clean):
    project = clean / "apps/project.yaml"
    edit(project, "    - kind: deny\n", "    - kind: allow\n")
    edit(project, "      manualSync: true\n", "")
    report = audit(clean)
    assert rules_of(report) == {"self-heal-no-escape"}
    assert {f.object["name"] for f in report.findings} == {"root", "cert-manager", "sealed-secrets", "web", "checkout"}

    # an annotation on one Application is its escape
    edit(clean / "apps/web.yaml", "  annotations:\n", "  annotations:\n    example.com/pause-self-heal: \"false\"\n")
    assert "web" not in {f.object["name"] for f in audit(clean).findings}

    # a runbook elsewhere in the repository is no Application's escape
    (clean / "docs").mkdir()
    (clean / "docs/RUNBOOK.md").write_text("## Incidents\nTo pause self-heal, set selfHeal: false on the app.\n")
    assert {f.object["name"] for f in audit(clean).findings} == {"root", "cert-manager", "sealed-secrets", "checkout"}

    # in the Application's source directory, with both terms in one section, it is that Application's escape
    (clean / "workloads/checkout/README.md").write_text(
        "# Checkout\nSelf-heal is on.\n\n## Deploying\nTo disable a release, revert the commit.\n")
    assert "checkout" in {f.object["name"] for f in audit(clean).findings}  # the terms in two sections
    (clean / "workloads/checkout/README.md").write_text("# Checkout\n## Incidents\nTo pause self-heal, annotate it.\n")
    assert {f.object["name"] for f in audit(clean).findings} == {"root", "cert-manager", "sealed-secrets"}


@needs_kustomize
def test_sync_window_must_select_the_application(clean):
    edit(clean / "apps/project.yaml", 'applications: ["*"]', 'applications: ["web", "check*"]')
    report = audit(clean)
    assert {f.object["name"] for f in report.findings} == {"root", "cert-manager", "sealed-secrets"}


@needs_kustomize
@pytest.mark.parametrize("branch, conflict", [
    (None, True), ("main", True), ("main:main", True), ("HEAD", True), ("main:master", True),
    ("image-updates", False), ("main:image-updater-{{.SHA256}}", False), (":image-updater", False),
])
def test_write_back_branch(clean, branch, conflict):
    line = '    argocd-image-updater.argoproj.io/git-branch: "main:image-updater-{{.SHA256}}"\n'
    edit(clean / "apps/web.yaml", line, "" if branch is None else line.replace("main:image-updater-{{.SHA256}}", branch))
    assert rules_of(audit(clean)) == ({"write-back-conflict"} if conflict else set())


@needs_kustomize
def test_sync_waves_must_put_infra_first(clean):
    edit(clean / "apps/infra.yaml", 'sync-wave: "-2"\n  finalizers:\n    - resources-finalizer.argocd.argoproj.io\n',
         'sync-wave: "1"\n  finalizers:\n    - resources-finalizer.argocd.argoproj.io\n')
    [f] = audit(clean).findings
    assert (f.rule, f.object["name"]) == ("no-sync-waves", "cert-manager")
    assert "cert-manager (wave 1)" in f.message and "web (wave 1)" in f.message


@needs_kustomize
def test_rollout_with_only_an_analysis_step_passes(clean):
    edit(clean / "workloads/checkout/rollout.yaml", "      analysis:\n        templates:\n", "      x-removed:\n        templates:\n")
    assert audit(clean).findings == []


@needs_kustomize
def test_automation_switched_off_needs_no_prune(clean):
    edit(clean / "apps/web.yaml", "    automated:\n      prune: true\n      selfHeal: true\n",
         "    automated:\n      enabled: false\n")
    assert audit(clean).findings == []


# ---- kustomize -----------------------------------------------------------------------------------

@needs_kustomize
def test_overlay_application_is_audited_as_rendered():
    report = audit(REPOS / "kustomize-overlay-app")
    [f] = report.findings  # prod's patch adds prune; the patch file itself is not an Application
    assert f.rule == "prune-disabled" and f.object["name"] == "staging-web"
    assert (f.file, f.line, f.origin) == ("overlays/staging/kustomization.yaml", 1, "base/app.yaml:2")


@needs_kustomize
def test_secret_generator_in_an_overlay_is_a_plaintext_secret(capsys):
    report = audit(REPOS / "kustomize-secret-generator")
    [f] = report.findings
    assert f.rule == "plaintext-secret" and f.object["name"].startswith("api-db-")
    assert f.object["namespace"] == "api-prod"
    assert (f.file, f.origin) == ("overlays/prod/kustomization.yaml", "overlays/prod/kustomization.yaml:6")
    assert "DB_PASSWORD, DB_USER" in f.message and "secretGenerator" in f.message
    for fmt in ("text", "json"):
        code, out = cli(capsys, REPOS / "kustomize-secret-generator", "--format", fmt)
        assert code == 1
        assert "Planted-Generator-Literal-99" not in out and "UGxhbnRlZC1HZW5lcmF0b3ItTGl0ZXJhbC05OQ" not in out


@needs_kustomize
def test_overlays_of_one_base_report_a_problem_once(tmp_path):
    shutil.copytree(REPOS / "kustomize-overlay-app", tmp_path / "r")
    for overlay in ("staging", "prod"):
        (tmp_path / f"r/overlays/{overlay}/kustomization.yaml").write_text("resources:\n  - ../../base\n")
    [f] = audit(tmp_path / "r").findings
    assert f.rule == "prune-disabled" and f.object["name"] == "web"


def test_without_kustomize_resources_are_audited_plain_and_a_notice_given():
    report = audit(REPOS / "kustomize-overlay-app", kustomize="/nonexistent/kustomize")
    assert rules_of(report) == {"prune-disabled", "kustomize-unavailable"}
    prune = next(f for f in report.findings if f.rule == "prune-disabled")
    assert (prune.file, prune.line, prune.object["name"]) == ("base/app.yaml", 2, "web")
    notice = next(f for f in report.findings if f.rule == "kustomize-unavailable")
    assert notice.severity == "warning" and "not rendered" in notice.message


@needs_kustomize
def test_malformed_yaml_and_build_error_are_findings_and_the_rest_is_audited(capsys):
    report = audit(REPOS / "broken")
    assert rules_of(report) == {"yaml-parse-error", "kustomize-build-error", "missing-finalizer"}
    parse = next(f for f in report.findings if f.rule == "yaml-parse-error")
    assert (parse.file, parse.line, parse.severity) == ("apps/apps.yaml", 12, "error")
    build = next(f for f in report.findings if f.rule == "kustomize-build-error")
    assert build.file == "workloads/bad-overlay/kustomization.yaml" and build.severity == "error"
    assert "workloads/bad-overlay" in build.message and "does-not-exist.yaml" in build.message
    assert "\n" not in build.message
    missing = next(f for f in report.findings if f.rule == "missing-finalizer")
    assert (missing.file, missing.line) == ("apps/apps.yaml", 14)  # the document after the broken one
    code, out = cli(capsys, REPOS / "broken")
    assert code == 1 and "Traceback" not in out


def test_parse_error_never_quotes_the_offending_line(tmp_path, capsys):
    (tmp_path / "secret.yaml").write_text(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: x}\nstringData:\n  token: Planted-Broken-Value-55: [\n")
    for fmt in ("text", "json"):
        code, out = cli(capsys, tmp_path, "--format", fmt)
        assert code == 1 and "yaml-parse-error" in out
        assert "Planted-Broken-Value-55" not in out


# ---- secrets never printed -----------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["text", "json"])
def test_planted_secret_values_never_appear(capsys, fmt):
    code, out = cli(capsys, REPOS / "plaintext-secret", "--format", fmt)
    assert code == 1 and "db-credentials" in out and "api-token" in out
    for value in PLANTED:
        assert value not in out


def test_report_masks_a_value_that_leaks_into_a_message():
    from gitops_conformance.audit.model import Finding
    from gitops_conformance.audit.report import Report
    leak = Finding("kustomize-build-error", "error", "k/kustomization.yaml", 1,
                   "kustomize said: map[password:Planted-Data-Value-77]", "fix it")
    report = Report.build([leak], 1, {"Planted-Data-Value-77", 'quo"te-value'})
    assert "Planted-Data-Value-77" not in report.to_text() and "Planted-Data-Value-77" not in report.to_json()
    assert "map[password:***]" in report.to_text()


# ---- CLI: exit codes and output shapes -----------------------------------------------------------

def test_exit_codes(capsys, tmp_path):
    assert cli(capsys, REPOS / "prune-disabled")[0] == 1       # an error
    assert cli(capsys, REPOS / "missing-finalizer")[0] == 0    # warnings only
    assert cli(capsys, tmp_path)[0] == 0                       # empty repo
    code, out = cli(capsys, tmp_path / "nope")
    assert code == 2 and out == ""
    (tmp_path / "file.yaml").write_text("a: 1\n")
    assert cli(capsys, tmp_path / "file.yaml")[0] == 2
    with pytest.raises(SystemExit) as exc:
        main(["audit"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main(["audit", str(tmp_path), "--format", "xml"])
    assert exc.value.code == 2


def test_json_schema(capsys):
    code, out = cli(capsys, REPOS / "write-back-conflict", "--format", "json")
    data = json.loads(out)
    assert code == 0
    assert set(data) == {"findings", "summary", "files_scanned", "applicable"} and data["applicable"] is True
    assert data["files_scanned"] == 1
    assert set(data["summary"]) == {"total", "error", "warning", "by_rule", "exit_code"}
    assert data["summary"] == {"total": 1, "error": 0, "warning": 1, "by_rule": {"write-back-conflict": 1},
                               "exit_code": 0}
    [f] = data["findings"]
    assert set(f) == {"rule", "severity", "file", "line", "object", "origin", "message", "remediation"}
    assert f["object"] == {"kind": "Application", "namespace": "argocd", "name": "web"}
    assert f["line"] == 1 and f["file"] == "apps/web.yaml" and f["origin"] is None


def test_text_format(capsys):
    code, out = cli(capsys, REPOS / "self-heal-no-escape")
    lines = out.splitlines()
    assert lines[0].startswith("WARNING self-heal-no-escape apps/web.yaml:1 Application argocd/web: ")
    assert lines[1].startswith('  remediation: Common Pitfalls: "Self-heal too aggressive:')
    assert lines[-1] == "1 finding(s): 0 error(s), 1 warning(s); 1 YAML file(s) scanned"


# ---- what is read ------------------------------------------------------------------------------

def test_git_dir_non_yaml_and_helm_templates_are_skipped(tmp_path):
    secret = "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {k: Planted-StringData-Value-88}\n"
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git/leak.yaml").write_text(secret)
    (tmp_path / "notes.txt").write_text(secret)
    (tmp_path / "chart/templates").mkdir(parents=True)
    (tmp_path / "chart/Chart.yaml").write_text("apiVersion: v2\nname: chart\nversion: 0.1.0\n")
    (tmp_path / "chart/templates/deploy.yaml").write_text("{{- if .Values.enabled }}\nkind: {{ .Values.kind }}\n")
    report = audit(tmp_path)
    assert report.findings == [] and report.files_scanned == 1


def test_list_kinds_are_expanded_with_item_lines(tmp_path):
    with_argo_cd(tmp_path)
    (tmp_path / "list.yaml").write_text(
        "apiVersion: v1\nkind: List\nitems:\n"
        "  - apiVersion: v1\n    kind: ConfigMap\n    metadata: {name: c}\n"
        "  - apiVersion: v1\n    kind: Secret\n    metadata: {name: s}\n    data: {k: dmFsdWU=}\n")
    [f] = audit(tmp_path).findings
    assert (f.rule, f.line, f.object["name"]) == ("plaintext-secret", 7, "s")


def test_sealed_and_external_secrets_and_empty_secrets_are_fine(tmp_path):
    with_argo_cd(tmp_path)
    (tmp_path / "s.yaml").write_text(
        "apiVersion: bitnami.com/v1alpha1\nkind: SealedSecret\nmetadata: {name: a}\nspec: {encryptedData: {k: AgB}}\n"
        "---\napiVersion: external-secrets.io/v1beta1\nkind: ExternalSecret\nmetadata: {name: b}\nspec: {}\n"
        "---\napiVersion: v1\nkind: Secret\nmetadata: {name: c}\ntype: kubernetes.io/service-account-token\n")
    assert audit(tmp_path).findings == []


def test_tabs_that_kustomize_accepts_are_not_parse_errors(tmp_path):
    with_argo_cd(tmp_path)
    (tmp_path / "s.yaml").write_text("apiVersion: v1\t\nkind: Secret\nmetadata:\n  name:\ts\ndata: {k: dmFsdWU=}\n")
    [f] = audit(tmp_path).findings
    assert (f.rule, f.object["name"]) == ("plaintext-secret", "s")
    (tmp_path / "s.yaml").write_text("apiVersion: v1\t\nkind: Secret\nmetadata:\n\tname: s\n")  # tab indentation
    [f] = audit(tmp_path).findings
    assert (f.rule, f.line) == ("yaml-parse-error", 4)


def test_copies_in_two_plain_files_are_two_problems(tmp_path):
    for cluster in ("a", "b"):
        (tmp_path / cluster).mkdir()
        shutil.copy(REPOS / "missing-finalizer/apps/web.yaml", tmp_path / cluster / "web.yaml")
    assert [f.file for f in audit(tmp_path).findings] == ["a/web.yaml", "b/web.yaml"]
