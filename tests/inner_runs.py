"""Shared by the self-tests that run inner pytest sessions (pytester) with the results plugin."""
from __future__ import annotations


def isolate(monkeypatch, run_id: str) -> None:
    """The inner session's own report dir default and run id (the registry of secrets is
    restored after every test by tests/conftest.py)."""
    monkeypatch.delenv("GITOPS_CONFORMANCE_REPORT_DIR", raising=False)
    monkeypatch.setenv("GITOPS_CONFORMANCE_RUN_ID", run_id)


def run(pytester, *args):
    return pytester.runpytest("-p", "fixtures.results", "--strict-markers", "-p", "no:cacheprovider", *args)
