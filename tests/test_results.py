"""Tests for the fixtures.results plugin, driving inner pytest runs with pytester."""
pytest_plugins = ["pytester"]

import base64  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import xml.etree.ElementTree as ET  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

import gitops_conformance.fixtures as fixtures  # noqa: E402
from tests import inner_runs  # noqa: E402
from gitops_conformance.fixtures.results import VALIDATION_ITEMS, percentile  # noqa: E402

REPO_ROOT = Path(fixtures.__file__).resolve().parent.parent
RESULTS_PLUGINS = ("-p", "gitops_conformance.fixtures.results", "-p", "gitops_conformance.reports.plugin")
PLANTED = "planted-S3cret-Value-9z"  # registered by the inner test, then leaked on purpose
PATTERN_ONLY = "never-registered-pw-77"  # caught by the password: pattern only

MIXED = f'''
import pytest
from gitops_conformance.fixtures import checks
from gitops_conformance.redact import register_secret

# install: every declared check passes (one records five latencies)
@pytest.mark.validation("install")
def test_api_answers_with_its_version(record_metric):
    for seconds in (1.0, 2.0, 3.0, 4.0, 10.0):
        record_metric("commit_to_synced_s", seconds)

@pytest.mark.validation("install")
def test_cli_logs_in_and_lists_apps():
    pass

@pytest.mark.validation("install")
def test_ui_endpoint_answers():
    pass

@pytest.mark.validation("install")
def test_initial_admin_secret_exists():
    pass

@pytest.mark.validation("install")
def test_runner_has_the_procedures_clis():
    pass

# repo_auth: one check times out, one fails on a plain assert, two are not collected
@pytest.mark.validation("repo_auth")
def test_https_token_connection_is_successful(record_check, monkeypatch):
    register_secret("{PLANTED}")
    record_check("repo listed", "Successful", "Successful", True)
    print("stdout also has {PLANTED}")
    checks.Waiter(sleep=lambda s: None).until(
        lambda: checks.pending("auth failed for {PLANTED}, password: {PATTERN_ONLY}"),
        timeout=0, what="repo connected", expected="ConnectionStatus Successful",
        remediation="check the repo Secret",
        evidence=lambda: {{"repo secret": "kind: Secret\\ndata:\\n  password: "
                          + __import__("base64").b64encode(b"{PLANTED}").decode() + "\\n",
                          "server log": "rejected {PLANTED}"}})

@pytest.mark.validation("repo_auth")
def test_ssh_deploy_key_connection_is_successful():
    secret = "{PLANTED}"
    assert secret == "something else", "login failed with password: {PATTERN_ONLY}"

# auto_sync: its one collected check is skipped
@pytest.mark.validation("auto_sync")
def test_declarative_app_syncs_image_tag_commit():
    pytest.skip("no webhook configured")

# self_heal: two of three variants pass, one is skipped
@pytest.mark.validation("self_heal")
@pytest.mark.parametrize("drift", ["scale", "set-image",
                                   pytest.param("delete-service", marks=pytest.mark.skip(reason="optional variant"))])
def test_out_of_band_change_is_reverted(record_metric, drift):
    if drift == "scale":
        record_metric("revert_s", 7.5)

@pytest.fixture
def broken_cluster():
    raise RuntimeError("cannot reach apiserver")

@pytest.mark.validation("prune")
def test_manifest_removed_from_git_is_pruned(broken_cluster):
    pass
'''


@pytest.fixture(autouse=True)
def _isolate(monkeypatch):
    inner_runs.isolate(monkeypatch, "unit-run-0001")


run = inner_runs.run


def load(report_dir: Path) -> dict:
    return json.loads((report_dir / "conformance.json").read_text())


@pytest.fixture
def mixed(pytester):
    pytester.makepyfile(test_conf=MIXED)
    report_dir = pytester.path / "out"
    result = run(pytester, "--report-dir", str(report_dir), "-o", "junit_logging=all")
    return result, report_dir, load(report_dir)


def test_mixed_run_statuses(mixed):
    result, _, report = mixed
    result.assert_outcomes(passed=7, failed=2, skipped=2, errors=1)
    status = {name: item["status"] for name, item in report["items"].items()}
    assert list(status) == list(VALIDATION_ITEMS)  # every item, in the fixed order
    assert status == {
        "install": "pass", "repo_auth": "fail", "auto_sync": "not_run", "self_heal": "incomplete",
        "prune": "error", "app_of_apps": "not_run", "image_promotion": "not_run",
        "canary": "not_run", "notifications": "not_run", "drift_alerts": "not_run",
        "rbac": "not_run",
    }
    assert report["summary"] == {"pass": 1, "warn": 0, "fail": 1, "error": 1, "incomplete": 1, "not_run": 7}
    assert report["verdict"] == "NOT CERTIFIED"
    for name in ("repo_auth", "prune", "auto_sync", "self_heal", "canary", "rbac"):
        assert any(reason.startswith(name + ": ") for reason in report["reasons"])
    assert not any(reason.startswith("install") for reason in report["reasons"])
    assert report["items"]["auto_sync"]["skip_reasons"] == ["no webhook configured"]
    auto = {c["test"]: c for c in report["items"]["auto_sync"]["declared_checks"]}
    assert auto["test_declarative_app_syncs_image_tag_commit"]["reason"] == "skipped: no webhook configured"
    assert auto["test_cli_created_app_syncs_commit"]["status"] == "not_run"
    assert "deselected" in auto["test_cli_created_app_syncs_commit"]["reason"]
    heal = report["items"]["self_heal"]
    assert heal["skip_reasons"] == ["optional variant"]
    assert heal["reason"] == ("1 of 3 checks did not run: test_out_of_band_change_is_reverted[delete-service] "
                              "(skipped: optional variant)")
    assert [c["status"] for c in heal["declared_checks"]] == ["pass", "pass", "not_run"]
    assert report["run_id"] == "unit-run-0001"
    assert report["schema_version"] == 2
    assert report["started_at"].endswith("Z") and report["finished_at"] >= report["started_at"]
    assert report["cluster"] == {} and report["engine"] == {}
    assert report["options"]["report_dir"].endswith("out")


def test_mixed_run_test_entries_and_checks(mixed):
    _, report_dir, report = mixed
    tests = {t["nodeid"].split("::")[1]: t for t in report["items"]["repo_auth"]["tests"]}
    timed_out = tests["test_https_token_connection_is_successful"]
    assert timed_out["outcome"] == "failed"
    assert "repo connected: expected ConnectionStatus Successful; observed" in timed_out["message"]
    assert "On failure: check the repo Secret" in timed_out["message"]
    assert timed_out["duration"] >= 0
    recorded, auto = timed_out["checks"]
    assert recorded == {"name": "repo listed", "expected": "Successful", "observed": "Successful",
                        "passed": True, "status": "pass", "remediation": ""}
    assert auto["name"] == "repo connected" and auto["passed"] is False
    assert auto["expected"] == "ConnectionStatus Successful"
    assert auto["remediation"] == "check the repo Secret"
    assert auto["evidence"] == timed_out["evidence"]
    assert sorted(timed_out["evidence"]) == [
        "evidence/repo_auth/test_conf.py_test_https_token_connection_is_successful/repo_secret.txt",
        "evidence/repo_auth/test_conf.py_test_https_token_connection_is_successful/server_log.txt",
    ]
    for rel in timed_out["evidence"]:
        assert (report_dir / rel).is_file()
    assert "password" in (report_dir / timed_out["evidence"][0]).read_text()  # keys kept
    prune = report["items"]["prune"]["tests"][0]
    assert prune["outcome"] == "error" and "cannot reach apiserver" in prune["message"]


def test_no_secret_in_any_report_file(mixed):
    result, report_dir, _ = mixed
    files = [p for p in report_dir.rglob("*") if p.is_file()]
    names = {p.name for p in files}
    assert {"conformance.json", "junit.xml", "repo_secret.txt", "server_log.txt"} <= names
    needles = [PLANTED, base64.b64encode(PLANTED.encode()).decode().rstrip("="), PATTERN_ONLY]
    for path in files:
        text = path.read_text(errors="replace")
        for needle in needles:
            assert needle not in text, f"{needle} leaked into {path}"
    # the terminal output is redacted too
    for needle in needles:
        assert needle not in result.stdout.str()
    # junit.xml is well-formed and carries the (redacted) failure
    root = ET.parse(report_dir / "junit.xml").getroot()
    failures = root.findall(".//failure")
    assert len(failures) == 2
    assert any("repo connected: expected" in (f.get("message") or "") for f in failures)


def test_metrics_p50_p95(mixed):
    _, _, report = mixed
    metric = report["items"]["install"]["metrics"]["commit_to_synced_s"]
    assert sorted(metric["values"]) == [1.0, 2.0, 3.0, 4.0, 10.0]
    assert metric["p50"] == pytest.approx(3.0)
    assert metric["p95"] == pytest.approx(8.8)  # linear interpolation between 4 and 10
    single = report["items"]["self_heal"]["metrics"]["revert_s"]
    assert single == {"values": [7.5]}  # no percentiles from one value


def test_percentile_helper():
    assert percentile([5.0], 95) == 5.0
    assert percentile([1.0, 2.0], 50) == 1.5
    assert percentile([3.0, 1.0, 2.0], 100) == 3.0


def _all_items(pytester, **overrides: str) -> None:
    """One file per Validation item holding every check it declares (each passing unless
    `overrides` gives the item another file)."""
    pytester.makepyfile(**{f"test_{name}": overrides.get(name) or inner_runs.declared_source(name)
                           for name in VALIDATION_ITEMS})


def test_all_items_pass_is_certified(pytester):
    _all_items(pytester)
    report_dir = pytester.path / "out"
    total = sum(len(inner_runs.declared_names(n)) for n in VALIDATION_ITEMS)
    run(pytester, "--report-dir", str(report_dir)).assert_outcomes(passed=total)
    report = load(report_dir)
    assert report["verdict"] == "CERTIFIED"
    assert report["reasons"] == [] and report["warnings"] == []
    assert report["summary"] == {"pass": 11, "warn": 0, "fail": 0, "error": 0, "incomplete": 0, "not_run": 0}
    assert all(c["status"] == "pass" for i in report["items"].values() for c in i["declared_checks"])


@pytest.mark.parametrize("selection", [["-k", "not scale"],
                                       ["--deselect", "test_self_heal.py::test_out_of_band_change_is_reverted[scale]"],
                                       ["test_self_heal.py::test_out_of_band_change_is_reverted[set-image]"]])
def test_a_partial_selection_is_never_certified(pytester, selection):
    """Reproduction 1 of issue 9: -k, --deselect or node ids remove a check without trace."""
    _all_items(pytester)
    report_dir = pytester.path / "out"
    run(pytester, "--report-dir", str(report_dir), *selection)
    report = load(report_dir)
    heal = report["items"]["self_heal"]
    assert heal["status"] in ("incomplete", "not_run") if len(selection) == 1 else heal["status"] == "incomplete"
    missing = [c for c in heal["declared_checks"] if c["status"] == "not_run"]
    assert "test_out_of_band_change_is_reverted[scale]" in [c["test"] for c in missing]
    assert all("deselected" in c["reason"] for c in missing)
    assert report["verdict"] == "NOT CERTIFIED"
    assert any(r.startswith("self_heal: incomplete") for r in report["reasons"])


def test_a_skip_inside_an_item_is_never_a_pass(pytester):
    """Reproduction 1 of issue 9: repo_auth with its SSH checks skipped is incomplete."""
    ssh_skipped = inner_runs.declared_source("repo_auth", body=(
        "if 'ssh' in __import__('inspect').stack()[0].function or 'host_key' in __import__('inspect').stack()[0].function:\n"
        "    pytest.skip('no SSH endpoint on this provider')"))
    _all_items(pytester, repo_auth=ssh_skipped)
    report_dir = pytester.path / "out"
    run(pytester, "--report-dir", str(report_dir))
    report = load(report_dir)
    repo = report["items"]["repo_auth"]
    assert repo["status"] == "incomplete"
    assert repo["reason"].startswith("2 of 4 checks did not run")
    assert "skipped: no SSH endpoint on this provider" in repo["reason"]
    assert report["verdict"] == "NOT CERTIFIED"


def test_a_recorded_check_that_did_not_hold_fails_its_item(pytester):
    failing = inner_runs.declared_source("prune", args="record_check", body=(
        "record_check('PruneLast', 'the prune after the apply', 'the prune first', False, 'order it')"))
    _all_items(pytester, prune=failing)
    report_dir = pytester.path / "out"
    run(pytester, "--report-dir", str(report_dir))
    report = load(report_dir)
    assert report["items"]["prune"]["status"] == "fail"
    assert report["items"]["prune"]["reason"].startswith("3 of 3 checks failed: test_manifest_removed_from_git_is_pruned")
    first = report["items"]["prune"]["declared_checks"][0]
    assert first["reason"] == "the test passed but recorded checks that did not hold: PruneLast"
    assert report["items"]["prune"]["remediation"] == ["order it"]
    assert report["verdict"] == "NOT CERTIFIED"


def test_a_warning_is_shown_and_certified_only_with_warnings(pytester):
    warned = inner_runs.declared_source("canary", args="request, record_warning", body=(
        "if request.node.name == 'test_cli_history':\n"
        "    record_warning('history command', 'a revision list', 'unknown command', "
        "'the procedure\\'s command does not exist')"))
    _all_items(pytester, canary=warned)
    report_dir = pytester.path / "out"
    run(pytester, "--report-dir", str(report_dir))
    report = load(report_dir)
    canary = report["items"]["canary"]
    assert canary["status"] == "warn"
    assert canary["reason"] == "test_cli_history: history command: the procedure's command does not exist"
    assert report["verdict"] == "CERTIFIED WITH WARNINGS"
    assert report["warnings"] == ["canary: " + canary["reason"]]
    assert "the procedure&#x27;s command does not exist" in (report_dir / "report.html").read_text()
    assert "## Warnings" in (report_dir / "summary.md").read_text()


def test_a_session_with_other_tests_writes_no_verdict_and_leaves_no_stale_one(pytester, capfd):
    """Reproduction 2 of issue 9: self-tests and suites in one session never yield a verdict."""
    _all_items(pytester)
    report_dir = pytester.path / "out"
    run(pytester, "--report-dir", str(report_dir))
    assert load(report_dir)["verdict"] == "CERTIFIED"
    pytester.makepyfile(test_selftest="def test_a_failing_self_test():\n    assert False\n")
    result = run(pytester, "--report-dir", str(report_dir))
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert "no certification verdict is written" in capfd.readouterr().err
    assert not (report_dir / "conformance.json").exists()
    assert not (report_dir / "report.html").exists()


def test_an_undeclared_conformance_test_is_a_usage_error(pytester):
    pytester.makepyfile(test_bad='''
        import pytest
        @pytest.mark.validation("rbac")
        def test_something_new():
            pass
    ''')
    result = run(pytester, "--report-dir", str(pytester.path / "out"))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "not one of the checks that item declares in gitops_conformance/items.py" in result.stderr.str()


def test_unknown_item_is_a_usage_error(pytester):
    pytester.makepyfile(test_bad='''
        import pytest
        @pytest.mark.validation("self-heal")
        def test_x():
            pass
    ''')
    result = run(pytester, "--report-dir", str(pytester.path / "out"))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert "test_bad.py::test_x" in err and "'self-heal'" in err and "self_heal" in err
    # the run is never certified, and the report says why
    report = load(pytester.path / "out")
    assert report["verdict"] == "NOT CERTIFIED"
    assert any("exit status 4" in r for r in report["reasons"])


def test_validation_marker_needs_exactly_one_item(pytester):
    pytester.makepyfile(test_bad='''
        import pytest
        @pytest.mark.validation("install", "rbac")
        def test_x():
            pass
    ''')
    assert run(pytester).ret == pytest.ExitCode.USAGE_ERROR


def test_dash_m_selects_one_item(pytester):
    _all_items(pytester)
    report_dir = pytester.path / "out"
    result = run(pytester, "--report-dir", str(report_dir), "-m", "self_heal")
    total = sum(len(inner_runs.declared_names(n)) for n in VALIDATION_ITEMS)
    result.assert_outcomes(passed=3, deselected=total - 3)
    report = load(report_dir)
    assert report["items"]["self_heal"]["status"] == "pass"
    assert len(report["items"]["self_heal"]["tests"]) == 3
    others = {n: i["status"] for n, i in report["items"].items() if n != "self_heal"}
    assert set(others.values()) == {"not_run"}
    assert report["verdict"] == "NOT CERTIFIED"
    assert report["options"]["markexpr"] == "self_heal"


def test_run_info_sections_and_redaction(pytester):
    pytester.makeconftest('''
        from gitops_conformance.fixtures.results import set_run_info
        def pytest_addoption(parser):
            parser.addoption("--git-token")
        def pytest_configure(config):
            set_run_info(config, "options.timeout_scale", 2.5)  # as fixtures.plugin records the options
            set_run_info(config, "cluster", {"kubernetes": "v1.30.2", "nodes": 3})
            set_run_info(config, "engine.argocd", "v2.12.0")
            set_run_info(config, "options.repo", "https://bob:hunter2-opt@git.example.com/r.git")
    ''')
    pytester.makepyfile(test_one=inner_runs.declared_source("install"))
    report_dir = pytester.path / "out"
    run(pytester, "--report-dir", str(report_dir), "--git-token", "tok-secret-in-argv")
    report = load(report_dir)
    assert report["cluster"] == {"kubernetes": "v1.30.2", "nodes": 3}
    assert report["engine"] == {"argocd": "v2.12.0"}
    assert report["options"]["repo"] == "https://bob:***@git.example.com/r.git"
    assert report["options"]["timeout_scale"] == 2.5
    assert "--git-token ***" in report["options"]["args"]
    text = (report_dir / "conformance.json").read_text()
    assert "hunter2-opt" not in text and "tok-secret-in-argv" not in text


def test_set_run_info_rejects_unknown_sections():
    from gitops_conformance.fixtures.results import set_run_info

    class Cfg:
        stash = pytest.Stash()

    with pytest.raises(ValueError):
        set_run_info(Cfg(), "clusters.x", 1)
    with pytest.raises(TypeError):
        set_run_info(Cfg(), "cluster", "not a dict")


def test_report_dir_from_env_and_default(pytester, monkeypatch):
    pytester.makepyfile(test_one=inner_runs.declared_source("rbac"))
    run(pytester)
    default = pytester.path / "reports" / "latest"
    assert load(default)["items"]["rbac"]["status"] == "pass"
    assert (default / "junit.xml").is_file()

    monkeypatch.setenv("GITOPS_CONFORMANCE_REPORT_DIR", str(pytester.path / "from-env"))
    run(pytester)
    assert load(pytester.path / "from-env")["items"]["rbac"]["status"] == "pass"


def test_user_junit_path_is_respected(pytester):
    pytester.makepyfile(test_one=inner_runs.declared_source("rbac"))
    report_dir = pytester.path / "out"
    run(pytester, "--report-dir", str(report_dir), "--junit-xml", str(pytester.path / "mine.xml"))
    assert (pytester.path / "mine.xml").is_file()
    assert not (report_dir / "junit.xml").exists()
    assert (report_dir / "conformance.json").is_file()


def test_no_conformance_test_writes_no_verdict(pytester):
    """The harness's own tests (no validation marker) must not overwrite a real report."""
    pytester.makepyfile(test_one="def test_x():\n    pass\n")
    report_dir = pytester.path / "out"
    run(pytester, "--report-dir", str(report_dir))
    assert not (report_dir / "conformance.json").exists()


def test_xfail_and_teardown_error(pytester):
    pytester.makepyfile(test_x='''
        import pytest
        @pytest.mark.validation("canary")
        @pytest.mark.xfail(reason="known broken")
        def test_cli_history():
            assert False
        @pytest.fixture
        def leaky():
            yield
            raise RuntimeError("cleanup failed")
        @pytest.mark.validation("notifications")
        def test_failed_sync_is_reported_to_slack(leaky):
            pass
    ''')
    report_dir = pytester.path / "out"
    run(pytester, "--report-dir", str(report_dir))
    items = load(report_dir)["items"]
    assert items["canary"]["status"] == "fail"  # an expected failure does not validate
    assert items["notifications"]["status"] == "error"
    assert "cleanup failed" in items["notifications"]["tests"][0]["message"]


def test_record_evidence_fixture(pytester):
    pytester.makepyfile(test_ev='''
        import pytest
        @pytest.mark.validation("drift_alerts")
        def test_ignored_replicas_do_not_drift(record_evidence):
            path = record_evidence("alert payload", "Authorization: Bearer abcdefghijklmnopqrstu")
            assert path.startswith("evidence/drift_alerts/")
    ''')
    report_dir = pytester.path / "out"
    run(pytester, "--report-dir", str(report_dir)).assert_outcomes(passed=1)
    test = load(report_dir)["items"]["drift_alerts"]["tests"][0]
    (rel,) = test["evidence"]
    assert (report_dir / rel).read_text() == "Authorization: Bearer ***"


def test_live_progress_reaches_stderr_despite_capture(pytester, monkeypatch):
    """Subprocess run: the progress line must escape pytest's fd-level capture."""
    monkeypatch.setenv("PYTHONPATH", str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    pytester.makepyfile(test_wait='''
        import pytest
        from gitops_conformance.fixtures import checks

        from gitops_conformance.fixtures.results import live_reporter

        @pytest.mark.validation("prune")
        def test_manifest_removed_from_git_is_pruned(pytestconfig):
            now = [0.0]
            waiter = checks.Waiter(report=live_reporter(pytestconfig), clock=lambda: now[0],
                                   sleep=lambda s: now.__setitem__(0, now[0] + s))
            with pytest.raises(checks.CheckFailed):
                waiter.until(lambda: checks.pending("OutOfSync"), timeout=25, what="orphan pruned", expected="gone")
    ''')
    result = pytester.runpytest_subprocess(*RESULTS_PLUGINS, "-p", "no:cacheprovider",
                                           "--report-dir", str(pytester.path / "out"))
    result.assert_outcomes(passed=1)
    assert "waiting for orphan pruned: OutOfSync (" in result.stderr.str()


def test_a_distributed_run_writes_one_complete_report(pytester, monkeypatch):
    """pytest-xdist: the controller collects nothing itself; the workers' reports make the one
    report, as complete as a serial run's (and a deselected check still leaves its item incomplete)."""
    monkeypatch.setenv("PYTHONPATH", str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    _all_items(pytester)
    report_dir = pytester.path / "out"
    stale = report_dir / "conformance.json"
    report_dir.mkdir()
    stale.write_text('{"verdict": "CERTIFIED"}')
    result = pytester.runpytest_subprocess(*RESULTS_PLUGINS, "-p", "no:cacheprovider", "-n", "2",
                                           "--report-dir", str(report_dir), "--deselect",
                                           "test_rbac.py::test_deployer_can_sync")
    total = sum(len(inner_runs.declared_names(n)) for n in VALIDATION_ITEMS)
    result.assert_outcomes(passed=total - 1)
    report = load(report_dir)
    assert report["items"]["rbac"]["status"] == "incomplete"
    assert {n: i["status"] for n, i in report["items"].items() if n != "rbac"} == dict.fromkeys(
        [n for n in VALIDATION_ITEMS if n != "rbac"], "pass")
    assert report["verdict"] == "NOT CERTIFIED"


def test_an_xdist_group_suffix_is_not_part_of_the_check_name():
    from gitops_conformance.fixtures.verdict import test_name

    assert test_name("suites/test_x.py::test_y[p]@notifications-config") == "test_y[p]"
    assert test_name("suites/test_x.py::test_y[a@b]") == "test_y[a@b]"
