"""Wall time of each cold build step of the node image, recorded when it really ran (the benchmark
prints them: a cached step costs nothing and says nothing about a cold build)."""
from __future__ import annotations

import datetime as _dt
import json

from gitops_conformance.testbed import versions


def _file():
    return versions.cache_root() / "kind" / "timings.json"


def record(step: str, seconds: float) -> None:
    path = _file()
    path.parent.mkdir(parents=True, exist_ok=True)
    data = load()
    data[step] = {"seconds": round(seconds, 1), "at": _dt.datetime.now(_dt.timezone.utc).isoformat()[:19]}
    path.write_text(json.dumps(data, indent=2))


def load() -> dict:
    path = _file()
    return json.loads(path.read_text()) if path.exists() else {}
