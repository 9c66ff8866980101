"""Fixtures for the harness's self-tests that need the local testbed."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def testbed_handle(target):
    """The running testbed, to break a component on purpose (and restore it)."""
    if target.provider != "local":
        pytest.skip("breaking components on purpose needs the local testbed (--cluster local)")
    from testbed.stack import Testbed

    return Testbed(target.info["testbed_state_dir"])


@pytest.fixture(autouse=True)
def _own_run_id_for_inner_sessions(request):
    """pytester runs sessions in this process: each must compute its own run id (from its
    environment), and the outer session's id (its labels, its sweep) must survive them."""
    if "pytester" not in request.fixturenames:
        yield
        return
    from fixtures import names

    saved = names._run_id
    names._reset_run_id()
    yield
    names._run_id = saved


@pytest.fixture(autouse=True)
def _session_secrets_survive():
    """Unit tests clear the redaction registry; the outer session's secrets come back after each."""
    from fixtures import redact

    with redact.saved_secrets():
        yield
