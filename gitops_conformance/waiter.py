"""The one bounded wait: call something until it is done or its bound has passed.

Every wait of the project goes through a `Waiter`: the suite's checks (fixtures/checks.py
builds `until` on it), the cleanup, the testbed's start-up and shutdown, the peers' clients.
The waiter owns the timeout scale (--timeout-scale: slow clusters), so a bound written in
the code is the bound on a normal machine, and the scale is applied in one place. The
session's waiter lives in `config.stash` (fixtures/plugin.py); code outside a session (the
testbed's own command line) uses `Waiter()`, scale 1.

Retrying is tenacity's; this module decides when to stop: the pauses grow from
`initial_wait` to `max_wait` and are clipped to the bound, so there is always one last
attempt right at the bound.
"""
from __future__ import annotations

import dataclasses
import sys
import time
from typing import Callable, Generic, TypeVar

from tenacity import Retrying, retry_if_exception_type, retry_if_result, wait_exponential

T = TypeVar("T")


def stderr_report(line: str) -> None:
    # sys.__stderr__, not sys.stderr: pytest swaps sys.stderr for a capture buffer.
    print(line, file=sys.__stderr__, flush=True)


@dataclasses.dataclass(frozen=True)
class Polled(Generic[T]):
    """How a wait ended: the last value seen, whether it was done, and the time it took."""

    value: T | None
    done: bool
    elapsed: float
    bound: float
    error: BaseException | None = None  # the last attempt's exception, when it raised


@dataclasses.dataclass(frozen=True)
class Waiter:
    scale: float = 1.0
    report: Callable[[str], None] = stderr_report  # live progress lines
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep

    def __post_init__(self) -> None:
        if not self.scale > 0:
            raise ValueError(f"timeout scale must be > 0, got {self.scale!r}")

    def bound(self, timeout: float, *, scaled: bool = True) -> float:
        """`timeout` seconds as this waiter waits them."""
        return timeout * self.scale if scaled else timeout

    def poll(self, attempt: Callable[[], T], *, timeout: float, done: Callable[[T], bool] = bool,
             initial_wait: float = 0.2, max_wait: float = 1.0, scaled: bool = True,
             retry_on: tuple[type[BaseException], ...] = (),
             progress: Callable[[T | None, float, float], None] | None = None,
             progress_every: float = 10.0) -> Polled[T]:
        """Call `attempt()` until `done(value)` or the bound has passed; never raises for time.

        An exception of a `retry_on` type counts as "not yet" (value None); any other
        propagates. `progress(value, elapsed, bound)` is called every `progress_every`
        seconds while waiting; `scaled=False` waits exactly `timeout` (a fixed window).
        """
        bound = self.bound(timeout, scaled=scaled)
        start = self.clock()
        deadline = start + bound
        next_report = [start + progress_every]
        backoff = wait_exponential(multiplier=initial_wait, min=initial_wait, max=max_wait)

        def pause(state) -> float:
            return max(0.0, min(backoff(state), deadline - self.clock()))

        def before_sleep(state) -> None:
            now = self.clock()
            if progress is not None and now >= next_report[0]:
                next_report[0] = now + progress_every
                progress(None if state.outcome.failed else state.outcome.result(), now - start, bound)

        retrying = Retrying(
            retry=retry_if_result(lambda value: not done(value)) | retry_if_exception_type(retry_on),
            stop=lambda state: self.clock() >= deadline,
            wait=pause,
            sleep=lambda seconds: self.sleep(seconds),
            before_sleep=before_sleep,
            retry_error_callback=lambda state: _OutOfTime(state.outcome),
        )
        result = retrying(attempt)
        elapsed = self.clock() - start
        if not isinstance(result, _OutOfTime):
            return Polled(result, True, elapsed, bound)
        if result.outcome.failed:
            return Polled(None, False, elapsed, bound, result.outcome.exception())
        return Polled(result.outcome.result(), False, elapsed, bound)


@dataclasses.dataclass(frozen=True)
class _OutOfTime:
    outcome: object  # tenacity's Future of the last attempt
