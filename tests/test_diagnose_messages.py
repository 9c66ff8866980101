"""Unit tests for the diagnosis wording taken from Argo CD's own status (fixtures/diagnose.py);
tests/test_diagnose.py causes each diagnosis on the testbed."""
from __future__ import annotations

from gitops_conformance.fixtures import diagnose


def test_comparison_error_is_quoted_verbatim():
    app = {"status": {"conditions": [
        {"type": "ComparisonError", "message": "Failed to load target state: accumulating resources: hpa.yaml"},
        {"type": "OrphanedResourceWarning", "message": "not a cause"}]}}
    assert diagnose._engine_says(app) == ("Argo CD reports ComparisonError: Failed to load target state: "
                                          "accumulating resources: hpa.yaml")


def test_failed_operation_names_the_failed_resources():
    app = {"status": {"operationState": {"phase": "Failed", "message": "one or more objects failed to apply",
                                         "syncResult": {"resources": [
                                             {"kind": "Deployment", "name": "myapp", "status": "SyncFailed",
                                              "message": "spec.replicas: Invalid value: -1"},
                                             {"kind": "Service", "name": "myapp", "status": "Synced"}]}}}}
    assert diagnose._engine_says(app) == ("the sync operation Failed: one or more objects failed to apply "
                                          "(Deployment/myapp: spec.replicas: Invalid value: -1)")


def test_nothing_established_is_none():
    assert diagnose._engine_says({"status": {"operationState": {"phase": "Succeeded"}}}) is None
    assert diagnose.components("anything")(None) is None  # no cluster (outside a session): nothing to look at


def test_first_of_takes_the_first_cause():
    assert diagnose.first_of(None, lambda c: None, lambda c: "b", lambda c: "c")(None) == "b"
    assert diagnose.first_of(lambda c: None)(None) is None
