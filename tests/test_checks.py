"""Unit tests for fixtures.checks (the waiter's `until`), on a fake clock (no real sleeping)."""
from __future__ import annotations

import pytest

from gitops_conformance.fixtures import checks
from gitops_conformance.fixtures.checks import CheckFailed, Observation, Outcome, Waiter, all_of, any_of
from gitops_conformance.redact import clear_secrets, register_secret


class FakeTime:
    """The waiter's clock and sleep: sleeping just advances the clock."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def progress_lines() -> list[str]:
    return []


@pytest.fixture
def waiter(fake_time, progress_lines) -> Waiter:
    """This module's waiter (not the session's): scale 1, the fake clock, progress lines kept."""
    return Waiter(clock=fake_time.clock, sleep=fake_time.sleep, report=progress_lines.append)


def sequence(*observations):
    """A probe answering the given observations in turn (exceptions are raised)."""
    it = iter(observations)

    def probe():
        value = next(it)
        if isinstance(value, BaseException):
            raise value
        return value

    return probe


def test_constructors():
    assert Observation.ok("Synced") == Observation(Outcome.OK, "Synced", "")
    assert checks.pending("OutOfSync").outcome is Outcome.PENDING
    f = checks.failed("Failed", "hook failed")
    assert (f.outcome, f.observed, f.detail) == (Outcome.FAILED, "Failed", "hook failed")


def test_returns_on_first_ok_without_sleeping(fake_time, waiter):
    obs = waiter.until(sequence(Observation.ok("Synced")), timeout=10, what="app", expected="Synced")
    assert obs.observed == "Synced"
    assert fake_time.sleeps == []


def test_retries_pending_until_ok(fake_time, waiter):
    probe = sequence(checks.pending("OutOfSync"), checks.pending("Progressing"), checks.ok("Synced"))
    assert waiter.until(probe, timeout=30, what="app", expected="Synced").observed == "Synced"
    assert len(fake_time.sleeps) == 2


def test_waits_grow_and_are_capped(fake_time, waiter):
    always = lambda: checks.pending("OutOfSync")  # noqa: E731
    with pytest.raises(CheckFailed):
        waiter.until(always, timeout=30, what="app", expected="Synced",
                     initial_wait=0.2, max_wait=3.0)
    waits = fake_time.sleeps
    assert waits[:4] == pytest.approx([0.2, 0.4, 0.8, 1.6])
    assert max(waits) <= 3.0
    assert all(a <= b for a, b in zip(waits[:5], waits[1:5]))


def test_never_sleeps_past_deadline_and_probes_at_deadline(fake_time, waiter):
    start = fake_time.now
    calls = []

    def probe():
        calls.append(fake_time.now)
        return checks.pending("OutOfSync")

    with pytest.raises(CheckFailed) as err:
        waiter.until(probe, timeout=5, what="app", expected="Synced", max_wait=3.0)
    assert fake_time.now == pytest.approx(start + 5)  # not one max_wait beyond
    assert calls[-1] == pytest.approx(start + 5)  # one last look at the deadline
    assert err.value.elapsed == pytest.approx(5)
    assert err.value.bound == 5


def test_timeout_message_shape(waiter):
    with pytest.raises(CheckFailed) as err:
        waiter.until(lambda: checks.pending("OutOfSync"), timeout=4, what="guestbook synced",
                     expected="Synced/Healthy", remediation="check the repo credentials")
    e = err.value
    assert isinstance(e, AssertionError)
    assert str(e) == ("guestbook synced: expected Synced/Healthy; observed OutOfSync after 4.0s "
                      "(bound 4s)\nOn failure: check the repo credentials")
    assert (e.what, e.expected, e.observed) == ("guestbook synced", "Synced/Healthy", "OutOfSync")
    assert e.remediation == "check the repo credentials"
    assert e.terminal is False
    assert e.evidence == {}


def test_no_remediation_line_when_not_given(waiter):
    with pytest.raises(CheckFailed) as err:
        waiter.until(lambda: checks.pending("x"), timeout=1, what="w", expected="y")
    assert "On failure" not in str(err.value)


def test_failed_is_terminal_and_stops_at_once(waiter):
    probe = sequence(checks.pending("Running"), checks.failed("Failed", "PreSync hook exited 1"))
    with pytest.raises(CheckFailed) as err:
        waiter.until(probe, timeout=300, what="sync operation", expected="Succeeded")
    e = err.value
    assert e.terminal is True
    assert e.observed == "Failed (PreSync hook exited 1)"
    assert e.elapsed < 1  # did not wait out the 300 s
    assert "observed Failed (PreSync hook exited 1) after" in str(e)


def test_probe_exception_is_pending_then_ok(waiter):
    probe = sequence(ConnectionError("apiserver down"), checks.ok("Synced"))
    assert waiter.until(probe, timeout=10, what="app", expected="Synced").observed == "Synced"


def test_probe_exception_reported_after_deadline(waiter):
    def probe():
        raise KeyError("status")

    with pytest.raises(CheckFailed) as err:
        waiter.until(probe, timeout=3, what="app", expected="Synced")
    assert err.value.observed == "KeyError: 'status'"
    assert isinstance(err.value.__cause__, KeyError)  # traceback of the probe kept


def test_non_observation_is_a_programming_error(waiter):
    with pytest.raises(TypeError, match="not an Observation"):
        waiter.until(lambda: True, timeout=10, what="app", expected="x")


def test_the_waiter_scales_every_bound_unless_told_not_to(fake_time):
    waiter = Waiter(scale=3, clock=fake_time.clock, sleep=fake_time.sleep)
    with pytest.raises(CheckFailed) as err:
        waiter.until(lambda: checks.pending("x"), timeout=10, what="a", expected="b")
    assert err.value.bound == 30
    assert err.value.elapsed == pytest.approx(30)

    with pytest.raises(CheckFailed) as err:  # a fixed window (a state that must hold)
        waiter.until(lambda: checks.pending("x"), timeout=10, scaled=False, what="a", expected="b")
    assert err.value.bound == 10


@pytest.mark.parametrize("bad", [0, -1])
def test_timeout_scale_must_be_positive(bad):
    with pytest.raises(ValueError):
        Waiter(scale=bad)


def test_evidence_collected_at_failure_time(fake_time, waiter):
    calls = []

    def evidence():
        calls.append(fake_time.now)
        return {"app.yaml": "status: OutOfSync", "events": 42}

    probe = sequence(checks.pending("a"), checks.failed("Failed", "boom"))
    with pytest.raises(CheckFailed) as err:
        waiter.until(probe, timeout=60, what="w", expected="e", evidence=evidence)
    assert err.value.evidence == {"app.yaml": "status: OutOfSync", "events": "42"}
    assert len(calls) == 1  # only at failure, not while polling


def test_evidence_not_collected_on_success(waiter):
    def evidence():
        raise AssertionError("must not be called")

    waiter.until(lambda: checks.ok("fine"), timeout=1, what="w", expected="e", evidence=evidence)


def test_evidence_error_is_recorded_not_raised(waiter):
    def evidence():
        raise RuntimeError("kubectl not found")

    with pytest.raises(CheckFailed) as err:
        waiter.until(lambda: checks.pending("x"), timeout=1, what="w", expected="e",
                     evidence=evidence)
    assert "RuntimeError: kubectl not found" in err.value.evidence["evidence-error"]


def test_progress_line_every_ten_seconds(waiter, progress_lines):
    with pytest.raises(CheckFailed):
        waiter.until(lambda: checks.pending("OutOfSync"), timeout=60, what="guestbook synced",
                     expected="Synced", max_wait=3.0)
    assert 4 <= len(progress_lines) <= 6
    first = progress_lines[0]
    assert first.startswith("waiting for guestbook synced: OutOfSync (")
    assert first.endswith("s of 60s)")
    seconds = [int(line.rsplit("(", 1)[1].split("s")[0]) for line in progress_lines]
    assert seconds[0] >= 10
    assert all(b - a >= 10 for a, b in zip(seconds, seconds[1:]))


def test_no_progress_line_for_short_waits(waiter, progress_lines):
    with pytest.raises(CheckFailed):
        waiter.until(lambda: checks.pending("x"), timeout=9, what="w", expected="e")
    assert progress_lines == []


def test_default_reporter_writes_to_real_stderr(monkeypatch, capsys):
    written = []

    class Sink:
        def write(self, s):
            written.append(s)

        def flush(self):
            pass

    monkeypatch.setattr("sys.__stderr__", Sink())
    Waiter().report("waiting for x: y (10s of 60s)")
    assert "".join(written) == "waiting for x: y (10s of 60s)\n"


def test_secrets_redacted_in_failure_and_progress(waiter, progress_lines):
    register_secret("hunter2-topsecret")
    try:
        def evidence():
            return {"log": "login with hunter2-topsecret"}

        with pytest.raises(CheckFailed) as err:
            waiter.until(lambda: checks.pending("auth failed for hunter2-topsecret"), timeout=30,
                         what="repo", expected="connected", evidence=evidence)
        assert "hunter2-topsecret" not in str(err.value)
        assert "hunter2-topsecret" not in err.value.observed
        assert "hunter2-topsecret" not in err.value.evidence["log"]
        assert progress_lines and all("hunter2-topsecret" not in line for line in progress_lines)
    finally:
        clear_secrets()


def test_real_clock_short_wait():
    """One run on the real clock, to prove the tenacity wiring actually sleeps."""
    state = {"n": 0}

    def probe():
        state["n"] += 1
        return checks.ok("ready") if state["n"] >= 3 else checks.pending("starting")

    assert Waiter().until(probe, timeout=5, what="w", expected="ready", initial_wait=0.01).observed == "ready"


# --- composition -------------------------------------------------------------

OK, PENDING, FAILED = checks.ok("a-ok"), checks.pending("b-wait"), checks.failed("c-bad", "why")


def const(obs):
    return lambda: obs


def test_all_of():
    assert all_of(const(OK), const(OK))() == checks.ok("a-ok; a-ok")
    assert all_of(const(OK), const(PENDING))().outcome is Outcome.PENDING
    failed = all_of(const(PENDING), const(FAILED), const(OK))()
    assert failed.outcome is Outcome.FAILED
    assert failed.observed == "b-wait; c-bad; a-ok"
    assert failed.detail == "why"


def test_all_of_exception_in_one_probe_is_pending():
    def boom():
        raise RuntimeError("no such app")

    obs = all_of(const(OK), boom)()
    assert obs.outcome is Outcome.PENDING
    assert "RuntimeError: no such app" in obs.observed


def test_any_of():
    assert any_of(const(PENDING), const(OK))() is OK
    assert any_of(const(PENDING), const(FAILED))().outcome is Outcome.PENDING
    assert any_of(const(FAILED), const(FAILED))().outcome is Outcome.FAILED


def test_composed_probe_with_until(waiter):
    flips = sequence(PENDING, OK)
    obs = waiter.until(all_of(const(OK), flips), timeout=10, what="both", expected="ok")
    assert obs.outcome is Outcome.OK


def test_diagnosis_leads_the_failure_message(waiter):
    asked = []

    def diagnose(cluster):
        asked.append(cluster)
        return "argocd-application-controller is not running (no process)"

    with pytest.raises(CheckFailed) as exc:
        waiter.until(lambda: Observation.pending("sync=?"), timeout=5, what="sync", expected="Synced", diagnose=diagnose)
    assert exc.value.cause == "argocd-application-controller is not running (no process)"
    assert str(exc.value).startswith("sync: cause: argocd-application-controller is not running (no process). "
                                     "expected Synced; observed sync=?")
    assert asked == [None]  # asked once, at failure time (no cluster here)


def test_diagnosis_not_asked_on_success_and_silent_when_nothing_established(waiter):
    waiter.until(lambda: Observation.ok("fine"), timeout=5, what="x", expected="y", diagnose=lambda cluster: 1 / 0)
    with pytest.raises(CheckFailed) as exc:
        waiter.until(lambda: Observation.pending("p"), timeout=1, what="x", expected="y", diagnose=lambda cluster: None)
    assert exc.value.cause == "" and str(exc.value).startswith("x: expected y; observed p")


def test_diagnosis_error_is_reported_not_raised(waiter):
    with pytest.raises(CheckFailed) as exc:
        waiter.until(lambda: Observation.pending("p"), timeout=1, what="x", expected="y", diagnose=lambda cluster: 1 / 0)
    assert "diagnosis failed: ZeroDivisionError" in exc.value.cause
