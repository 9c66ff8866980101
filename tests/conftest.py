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
