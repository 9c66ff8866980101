"""One exclusive file lock, waited for within a bound: the builds that share a cache (several
checkouts, `setup.sh` beside `testbed node-image`) take turns instead of writing the same files."""
from __future__ import annotations

import contextlib
import fcntl
from pathlib import Path
from typing import Iterator

from gitops_conformance.waiter import Waiter


@contextlib.contextmanager
def exclusive(path: Path, *, timeout: float, waiting: str, tell_every: float = 60.0) -> Iterator[bool]:
    """Hold an exclusive flock on `path` for the block, printing `waiting` every `tell_every`
    seconds while another process holds it. Yields False (holding nothing) when it could not be
    taken within `timeout` seconds: the caller says what that means for it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        def take() -> bool:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True

        locked = Waiter().poll(take, timeout=timeout, initial_wait=1, max_wait=2, retry_on=(BlockingIOError,),
                               progress=lambda *_: print(waiting, flush=True), progress_every=tell_every)
        yield locked.done
