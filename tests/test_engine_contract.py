"""Declared checks per engine: a Flux run is judged against Flux's declared checks, and an item
declaring none for Flux is not_run with the contract's reason, never a pass."""
from __future__ import annotations

from gitops_conformance.fixtures import verdict
from gitops_conformance.fixtures.engine import flux_kustomization_state
from gitops_conformance.items import BY_ID, ITEMS


def _passed(test: str) -> dict:
    return {"nodeid": f"suites/test_x.py::{test}", "outcome": "passed", "duration": 1.0, "message": "", "checks": []}


def test_a_flux_run_is_judged_against_flux_checks_only():
    install = BY_ID["install"]
    tests = [_passed(c.test) for c in install.flux]
    judged = verdict.judge_item("install", tests, "flux")
    assert judged["status"] == "pass"
    assert [c["test"] for c in judged["declared_checks"]] == [c.test for c in install.flux]
    # the same passing Flux tests prove nothing for an Argo CD run
    assert verdict.judge_item("install", tests, "argocd")["status"] == "not_run"


def test_an_item_without_flux_checks_is_not_run_with_its_reason():
    promo = verdict.judge_item("image_promotion", [], "flux")  # no Flux check can be declared here
    assert promo["status"] == "not_run"
    assert "image-reflector/automation controllers cannot be built here" in promo["reason"]
    assert verdict.verdict({"install": "pass", "image_promotion": promo["status"]}, True) == verdict.NOT_CERTIFIED
    # every other Validation item declares Flux checks (canary: Flagger)
    assert [i.id for i in ITEMS if not i.flux and not i.optional] == ["image_promotion"]


def test_argo_and_flux_checks_never_share_a_test_name():
    for item in ITEMS:
        assert not {c.test for c in item.checks} & {c.test for c in item.flux}, item.id


def test_kustomization_status_maps_to_the_engine_state():
    ready = {"status": {"lastAppliedRevision": "main@sha1:abc123", "lastAttemptedRevision": "main@sha1:abc123",
                        "conditions": [{"type": "Ready", "status": "True", "reason": "ReconciliationSucceeded",
                                        "message": "Applied revision: main@sha1:abc123"}]}}
    s = flux_kustomization_state("myapp", ready)
    assert (s.sync_status, s.revision, s.health, s.operation_failed) == ("Synced", "abc123", "Healthy", False)
    failed = {"status": {"lastAppliedRevision": "main@sha1:abc123", "lastAttemptedRevision": "main@sha1:def456",
                         "conditions": [{"type": "Ready", "status": "False", "reason": "BuildFailed",
                                         "message": "kustomize build failed"}]}}
    s = flux_kustomization_state("myapp", failed)
    assert s.operation_failed and s.operation_revision == "def456" and s.revision == "abc123"
    assert "kustomize build failed" in s.describe()
    assert not flux_kustomization_state("gone", None).exists
