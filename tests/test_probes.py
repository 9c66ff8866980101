"""Probes decide ok / pending / failed from what they read; checked here with canned objects."""
from __future__ import annotations

from gitops_conformance.fixtures import probes
from gitops_conformance.fixtures.checks import Outcome
from gitops_conformance.fixtures.engine import argocd_app_state


class FakeKube:
    def __init__(self, obj):
        self.obj = obj

    def get(self, kind, name, namespace=None):
        return self.obj


class FakeArgo:
    def __init__(self, app):
        self._app = app

    def app(self, name, refresh=None):
        return self._app


def _app(sync="Synced", revision="abc", health="Healthy", phase="Succeeded", op_revision="abc", message=""):
    return {"spec": {"syncPolicy": {"automated": {"prune": True, "selfHeal": False}}},
            "status": {"sync": {"status": sync, "revision": revision}, "health": {"status": health},
                       "operationState": {"phase": phase, "message": message, "syncResult": {"revision": op_revision}}}}


def test_presence_probes():
    live, deleting = {"metadata": {}}, {"metadata": {"deletionTimestamp": "now"}}
    assert probes.exists(FakeKube(live), "service", "s", "ns")().outcome is Outcome.OK
    assert probes.exists(FakeKube(deleting), "service", "s", "ns")().outcome is Outcome.PENDING
    assert probes.exists(FakeKube(None), "service", "s", "ns")().observed == "service ns/s does not exist"
    assert probes.absent(FakeKube(None), "service", "s", "ns")().outcome is Outcome.OK
    gone = probes.absent(FakeKube(deleting), "service", "s", "ns")()
    assert gone.outcome is Outcome.PENDING and gone.observed == "service ns/s still exists (deletion in progress)"


def test_app_synced_waits_for_the_revision_and_stops_on_a_failed_operation():
    assert probes.app_synced(FakeArgo(_app()), "a", revision="abc")().outcome is Outcome.OK
    assert probes.app_synced(FakeArgo(_app(revision="old")), "a", revision="abc")().outcome is Outcome.PENDING
    failed = probes.app_synced(FakeArgo(_app(sync="OutOfSync", phase="Failed", message="boom")), "a", revision="abc")()
    assert failed.outcome is Outcome.FAILED and "boom" in failed.observed
    assert probes.app_synced(FakeArgo(None), "a")().outcome is Outcome.PENDING


def test_with_policy_names_the_automated_flags_only_when_not_ok():
    pending = probes.with_policy(FakeArgo(_app()), "a", probes.absent(FakeKube({"metadata": {}}), "service", "s"))()
    assert "selfHeal=false" in pending.observed and "prune=true" in pending.observed
    ok = probes.with_policy(FakeArgo(_app()), "a", probes.absent(FakeKube(None), "service", "s"))()
    assert ok.observed == "service s is gone"


def test_app_state_reads_argocd_status():
    state = argocd_app_state("a", _app(sync="OutOfSync", phase="Error"))
    assert state.operation_failed and state.sync_status == "OutOfSync"
    assert not argocd_app_state("a", None).exists
