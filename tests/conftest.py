"""Fixtures for the harness's self-tests that need the local testbed."""
from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A Flux self-test under another engine is skipped at collection, before its session-scoped
    fixtures (the `flux` fixture ends the session when the target runs no Flux) are set up."""
    if config.getoption("engine", default="argocd") == "flux":
        return
    skip = pytest.mark.skip(reason="a Flux self-test: run with --engine flux")
    for item in items:
        if item.get_closest_marker("flux"):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def testbed_handle(target):
    """The running testbed, to break a component on purpose (and restore it)."""
    if target.provider != "local":
        pytest.skip("breaking components on purpose needs the local testbed (--cluster local)")
    from gitops_conformance.testbed.stack import Testbed

    return Testbed(target.info["testbed_state_dir"])


@pytest.fixture(autouse=True)
def _own_run_id_for_inner_sessions(request, monkeypatch):
    """pytester runs sessions in this process: each gets its own run id (a test sets one, or
    the inner session generates one into the environment), and the outer session's id (its
    labels, its sweep) comes back with the environment afterwards."""
    if "pytester" in request.fixturenames:
        from gitops_conformance.fixtures import names

        monkeypatch.delenv(names.ENV_RUN_ID, raising=False)


@pytest.fixture(autouse=True)
def _session_secrets_survive():
    """Unit tests clear the redaction registry; the outer session's secrets come back after each."""
    from gitops_conformance import redact

    with redact.saved_secrets():
        yield
