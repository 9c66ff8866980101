"""Unit tests for the order checks' decisions (PruneLast, sync waves) on recorded data: the
breaking self-tests on the testbed (test_breaks_prune.py, test_breaks_app_of_apps.py) show
them fail on a real cluster; these pin the edge cases (ties, missing sides)."""
from __future__ import annotations

import pytest

from gitops_conformance.fixtures.changes import Change, ChangeLog
from gitops_conformance.fixtures.checks import CheckFailed, Waiter
from gitops_conformance.scenarios.step3_app_of_apps import AppOfApps
from gitops_conformance.suites import app_of_apps_checks as aoa
from gitops_conformance.suites import prune_checks


def _log(*changes: Change) -> ChangeLog:
    log = ChangeLog(None, "ns")
    log.started_at = 100.0
    log.initial_generation = {("Deployment", "myapp"): 1, ("Service", "myapp"): 1}
    log.changes = list(changes)
    return log


def _c(kind, rv, *, type="MODIFIED", generation=1, deleting=False):
    return Change(kind=kind, type=type, name="myapp", resource_version=rv, generation=generation,
                  deleting=deleting, seen_at=100.0 + rv / 1000)


class _App:
    namespace = "ns"


@pytest.fixture
def waiter() -> Waiter:
    """Not the session's (no cluster needed): the recorded data is all there is."""
    return Waiter()


def test_prune_last_passes_when_the_prune_follows_the_apply(waiter):
    log = _log(_c("Deployment", 10, generation=2), _c("Service", 12, deleting=True), _c("Service", 13, type="DELETED"))
    assert "Service/myapp deletion requested" in prune_checks.prune_last(waiter, log, _App(), timeout=0.1)


def test_prune_last_fails_when_the_prune_comes_first(waiter):
    log = _log(_c("Service", 9, deleting=True), _c("Deployment", 10, generation=2))
    with pytest.raises(CheckFailed, match="the prune came first"):
        prune_checks.prune_last(waiter, log, _App(), timeout=0.1)


def test_prune_last_fails_when_a_side_is_missing(waiter):
    log = _log(_c("Service", 9, type="DELETED"), _c("Deployment", 10, generation=1))  # no spec change seen
    with pytest.raises(CheckFailed, match="apply: not seen"):
        prune_checks.prune_last(waiter, log, _App(), timeout=0.1)


LAYOUT = AppOfApps(root="r", project="p", infra=["infra"], apps=["app"], prod_namespace="n", repo=None)


def _app(created, started, finished, health="Healthy", moved=None):
    status = {"health": {"status": health, **({"lastTransitionTime": moved} if moved else {})},
              "operationState": {"startedAt": started, "finishedAt": finished}}
    return {"metadata": {"creationTimestamp": created}, "status": status}


def _timeline(infra_healthy=5.0, app_seen=7.5, infra=None, app=None):
    t = aoa.Timeline(first_seen={"infra": 1.0, "app": app_seen}, first_healthy={"infra": infra_healthy})
    t.apps = {"infra": infra or _app("2026-11-30T10:00:00Z", "2026-11-30T10:00:00Z", "2026-11-30T10:00:03Z"),
              "app": app or _app("2026-11-30T10:00:06Z", "2026-11-30T10:00:06Z", "2026-11-30T10:00:07Z")}
    return t


def _app_log(infra_healthy_rv=20, app_added_rv=25, *, initial=None, listed_at=10, healthy_since=None, later=()):
    """The Application watch: infra added, then Healthy at `infra_healthy_rv` (carrying
    `healthy_since` as its lastTransitionTime); app added at `app_added_rv`; `later` more changes."""
    def change(name, rv, type, health=None, since=None):
        return Change(kind="Application", type=type, name=name, resource_version=rv, generation=1,
                      deleting=False, seen_at=100.0 + rv / 1000, health=health, health_since=since)

    log = ChangeLog(None, "argocd", kinds=("Application",))
    log.listed_at = {"Application": listed_at}
    log.initial = initial or {}
    log.changes = sorted([change("infra", 11, "ADDED"),
                          change("infra", infra_healthy_rv, "MODIFIED", "Healthy", healthy_since),
                          change("app", app_added_rv, "ADDED"), *(change(*c) for c in later)],
                         key=lambda c: c.resource_version)
    return log


def test_waves_pass_when_strictly_ordered_by_the_watch_and_argo_cds_clock():
    assert "API:" in aoa.waves_put_infra_first(LAYOUT, _timeline(), _app_log())


def test_waves_fail_when_an_app_child_was_created_before_infra_was_healthy():
    with pytest.raises(CheckFailed, match="app created at resourceVersion 15, not after the last infra child"):
        aoa.waves_put_infra_first(LAYOUT, _timeline(), _app_log(infra_healthy_rv=20, app_added_rv=15))


def test_waves_a_tie_in_one_slow_poll_is_decided_by_the_watch():
    """Both seen by the same poll (a loaded machine): the watch's order decides, not the poll."""
    assert "API:" in aoa.waves_put_infra_first(LAYOUT, _timeline(infra_healthy=5.0, app_seen=5.0), _app_log())


def test_waves_an_app_child_present_before_the_watch_is_not_a_pass():
    with pytest.raises(CheckFailed, match="already existed when the watch began"):
        aoa.waves_put_infra_first(LAYOUT, _timeline(), _app_log(initial={("Application", "app"): {}}))


def test_waves_unwatched_healthy_is_a_failure_not_dropped():
    log = _app_log()
    log.changes = [c for c in log.changes if c.health != "Healthy"]
    with pytest.raises(CheckFailed, match="no write reporting it Healthy"):
        aoa.waves_put_infra_first(LAYOUT, _timeline(), log)


def test_waves_tie_in_argo_cds_whole_seconds_is_not_a_pass():
    app = _app("2026-11-30T10:00:03Z", "2026-11-30T10:00:04Z", "2026-11-30T10:00:05Z")
    with pytest.raises(CheckFailed, match="a tie is not a pass"):
        aoa.waves_put_infra_first(LAYOUT, _timeline(app=app), _app_log())


def test_waves_missing_finished_at_is_a_failure_not_dropped():
    infra = _app("2026-11-30T10:00:00Z", "2026-11-30T10:00:00Z", None)
    with pytest.raises(CheckFailed, match="infra has no finishedAt"):
        aoa.waves_put_infra_first(LAYOUT, _timeline(infra=infra), _app_log())


def test_waves_missing_started_at_is_a_failure_not_dropped():
    app = _app("2026-11-30T10:00:06Z", None, None)
    with pytest.raises(CheckFailed, match="app has no startedAt"):
        aoa.waves_put_infra_first(LAYOUT, _timeline(app=app), _app_log())


def test_waves_use_the_health_transition_when_later_than_the_sync():
    infra = _app("2026-11-30T10:00:00Z", "2026-11-30T10:00:00Z", "2026-11-30T10:00:01Z", moved="2026-11-30T10:00:06Z")
    with pytest.raises(CheckFailed, match="health.lastTransitionTime"):
        aoa.waves_put_infra_first(LAYOUT, _timeline(infra=infra), _app_log())


def test_waves_a_later_health_flap_does_not_move_the_infra_healthy_time():
    """Seen on a loaded runner: infra Healthy before the app child was created, then Healthy ->
    Progressing -> Healthy 48 s later; the current lastTransitionTime is the flap's, the first
    Healthy write carried the one that orders the waves."""
    infra = _app("2026-11-30T10:00:00Z", "2026-11-30T10:00:00Z", "2026-11-30T10:00:01Z", moved="2026-11-30T10:00:50Z")
    flap = [("infra", 30, "MODIFIED", "Progressing", "2026-11-30T10:00:08Z"),
            ("infra", 40, "MODIFIED", "Healthy", "2026-11-30T10:00:50Z")]
    order = aoa.waves_put_infra_first(LAYOUT, _timeline(infra=infra),
                                      _app_log(healthy_since="2026-11-30T10:00:03Z", later=flap))
    assert "infra Healthy at 2026-11-30T10:00:03Z (health.lastTransitionTime of its first Healthy write)" in order


def test_waves_fail_when_the_first_healthy_write_is_after_the_app_child():
    """The first Healthy write's own timestamp still has to precede the app child: the watch's
    choice of timestamp never turns a wrong order into a pass."""
    infra = _app("2026-11-30T10:00:00Z", "2026-11-30T10:00:00Z", "2026-11-30T10:00:01Z", moved="2026-11-30T10:00:09Z")
    with pytest.raises(CheckFailed, match="its first Healthy write"):
        aoa.waves_put_infra_first(LAYOUT, _timeline(infra=infra), _app_log(healthy_since="2026-11-30T10:00:09Z"))
