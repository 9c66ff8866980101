"""Shared by the "every check can fail" self-tests (tests/test_breaks_*.py)."""
from __future__ import annotations

import time

import pytest

from gitops_conformance.fixtures.checks import CheckFailed

SLACK = 10.0  # seconds a failing check may take past its bound (one last probe, evidence)


def check_failure(fn, *args, bound: float, **kwargs) -> CheckFailed:
    """Run a check that must FAIL, and fail within its bound (no hang); returns the failure."""
    t0 = time.monotonic()
    with pytest.raises(CheckFailed) as failure:
        fn(*args, **kwargs)
    elapsed = time.monotonic() - t0
    assert elapsed < bound + SLACK, f"the check took {elapsed:.0f}s to fail; its bound was {bound}s"
    print(f"\n--- {fn.__name__} failed as expected after {elapsed:.1f}s:\n{failure.value}")  # shown with -s
    return failure.value


def fails_within(fn, *args, bound: float, **kwargs) -> str:
    """check_failure(...), as the message text."""
    return str(check_failure(fn, *args, bound=bound, **kwargs))
