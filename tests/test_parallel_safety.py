"""Tests that change (or rely on) state every test shares run in one xdist group, one after
another: a suite test requesting a fixture, or calling a function, named in
fixtures.parallel.SHARED_STATE must carry @pytest.mark.xdist_group(<its group>)."""
from __future__ import annotations

import ast
from pathlib import Path

from gitops_conformance.fixtures.parallel import SHARED_STATE, grouped_tests, xdist_groups as _groups

SUITES = Path(__file__).resolve().parent.parent / "suites"


def _shared_state_used(test: ast.FunctionDef) -> set[str]:
    used = {a.arg for a in test.args.args} & set(SHARED_STATE)
    for node in ast.walk(test):
        if isinstance(node, ast.Call):
            name = getattr(node.func, "attr", None) or getattr(node.func, "id", None)
            if name in SHARED_STATE:
                used.add(name)
    return used


def unmarked_shared_state_tests(suites: Path = SUITES) -> list[str]:
    problems = []
    for path in sorted(suites.glob("test_*.py")):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                for used in sorted(_shared_state_used(node)):
                    if SHARED_STATE[used] not in _groups(node):
                        problems.append(f"{path.name}::{node.name} uses {used} but is not marked "
                                        f"@pytest.mark.xdist_group({SHARED_STATE[used]!r})")
    return problems


def test_every_test_touching_shared_state_is_grouped():
    assert not unmarked_shared_state_tests()


def test_the_scan_finds_the_shared_state_tests():
    """The check itself can fail: the known users of shared state are found."""
    found = {p.split("::")[1] for p in _all_users()}
    assert {"test_unknown_host_key_is_refused_readably", "test_failed_sync_is_reported_to_slack"} <= found


def _all_users() -> list[str]:
    users = []
    for path in sorted(SUITES.glob("test_*.py")):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef) and _shared_state_used(node):
                users.append(f"{path.name}::{node.name}")
    return users


def test_an_unmarked_user_is_reported(tmp_path):
    (tmp_path / "test_x.py").write_text("def test_y(slack_notifications):\n    pass\n")
    assert unmarked_shared_state_tests(tmp_path) == [
        "test_x.py::test_y uses slack_notifications but is not marked @pytest.mark.xdist_group('notifications-slack')"]


def test_the_scheduler_keeps_each_group_on_one_worker():
    """What the controller's scheduler reads: every grouped test, by node id, with its group."""
    groups = grouped_tests()
    assert groups["suites/test_notifications.py::test_failed_sync_is_reported_to_slack"] == "notifications-slack"
    assert "suites/test_drift_alerts.py::test_out_of_band_change_is_detected_and_alerted" not in groups  # webhook only
    assert "suites/test_app_of_apps.py::test_children_follow_git" not in groups  # argocd-cm is set once per run
    assert "suites/test_auto_sync.py::test_cli_created_app_syncs_commit" not in groups
