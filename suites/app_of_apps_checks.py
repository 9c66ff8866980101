"""Checks for app_of_apps (procedure step 3): the root creates every child, children follow
Git (added ones appear, removed ones are pruned), and the sync waves put infra first.

The wave order is proven from observations, not inferred from configuration: while the
root syncs, every child is polled a few times a second and the moments it first exists and
first reports Healthy are recorded; every app child must appear only after every infra
child was Healthy. The API's own timestamps (creationTimestamp, finishedAt) are checked too.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import time

from fixtures import checks, diagnose, hints, probes
from fixtures.argocd import ArgoCD
from fixtures.checks import Observation
from fixtures.engine import argocd_app_state
from fixtures.kube import Kube
from scenarios.app_of_apps import AppOfApps

ROLLOUT = 150.0   # the root, four waves, and each child's own sync
CHILD_CHANGE = 60.0
POLL = 0.25


@dataclasses.dataclass
class Timeline:
    first_seen: dict[str, float] = dataclasses.field(default_factory=dict)
    first_healthy: dict[str, float] = dataclasses.field(default_factory=dict)
    apps: dict[str, dict] = dataclasses.field(default_factory=dict)  # last Application seen, per child

    def describe(self, t0: float) -> str:
        def rel(d: dict, n: str) -> str:
            return f"{d[n] - t0:.2f}s" if n in d else "never"
        return "; ".join(f"{n}: seen {rel(self.first_seen, n)}, healthy {rel(self.first_healthy, n)}"
                         for n in sorted(set(self.first_seen) | set(self.first_healthy)))


def children_roll_out(argocd: ArgoCD, layout: AppOfApps, *, timeout: float = ROLLOUT) -> tuple[Timeline, float]:
    """Watch the root create every child until all are Synced and Healthy; returns the timeline."""
    timeline, t0 = Timeline(), time.monotonic()

    def probe() -> Observation:
        now = time.monotonic()
        missing, waiting = [], []
        for name in layout.children:
            app = argocd.app(name)
            if app is None:
                missing.append(name)
                continue
            timeline.apps[name] = app
            timeline.first_seen.setdefault(name, now)
            state = argocd_app_state(name, app)
            if state.health == "Healthy":
                timeline.first_healthy.setdefault(name, now)
            if not (state.health == "Healthy" and state.sync_status == "Synced"):
                waiting.append(f"{name} ({state.sync_status or '?'}/{state.health or '?'})")
        root = probes.app_state(argocd, layout.root)
        seen = (f"root {root.describe()}; missing children: {', '.join(missing) or 'none'}; "
                f"not yet Synced/Healthy: {', '.join(waiting) or 'none'}")
        if root.operation_failed:
            return Observation.failed(seen, "the root app's sync failed")
        return Observation.ok(seen) if not missing and not waiting else Observation.pending(seen)

    checks.eventually(probe, timeout=timeout, initial_wait=POLL, max_wait=POLL,
                      what=f"app-of-apps {layout.root} deploys its children",
                      expected=f"every child ({', '.join(layout.children)}) created, Synced and Healthy",
                      remediation=hints.ON_FAILURE[3], diagnose=diagnose.for_app(argocd, layout.root))
    return timeline, time.monotonic() - t0


def _ts(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def waves_put_infra_first(layout: AppOfApps, timeline: Timeline) -> str:
    """Every app child first appeared after every infra child was Healthy (observed), and the
    API agrees: app children were created no earlier than the infra syncs finished."""
    infra_healthy = max(timeline.first_healthy[n] for n in layout.infra)
    apps_began = min(timeline.first_seen[n] for n in layout.apps)
    t0 = min(timeline.first_seen.values())
    observed = f"observed: {timeline.describe(t0)}"
    checks.expect(apps_began >= infra_healthy, what="sync-wave order of the app-of-apps",
                  expected="app children appear only after every infra child is Healthy",
                  observed=observed, remediation=hints.PITFALLS["sync_waves"] + " " + hints.ON_FAILURE[3])
    infra_finished = [_ts(((timeline.apps[n].get("status") or {}).get("operationState") or {}).get("finishedAt"))
                      for n in layout.infra]
    app_created = [_ts(timeline.apps[n]["metadata"]["creationTimestamp"]) for n in layout.apps]
    if all(infra_finished):
        api = f"API: infra syncs finished {max(infra_finished).isoformat()}, apps created {min(app_created).isoformat()}"
        checks.expect(min(app_created) >= max(infra_finished).replace(microsecond=0),
                      what="sync-wave order (API timestamps)", expected="apps created after infra syncs finished",
                      observed=api, remediation=hints.PITFALLS["sync_waves"])
        observed += "; " + api
    return observed


def child_appears(argocd: ArgoCD, name: str, timeout: float = CHILD_CHANGE) -> float:
    t0 = time.monotonic()
    checks.eventually(probes.app_synced(argocd, name), timeout=timeout,
                      what=f"child {name} added in Git", expected="the root creates it and it syncs",
                      remediation=hints.ON_FAILURE[3], diagnose=diagnose.for_app(argocd, name))
    return time.monotonic() - t0


def child_pruned(argocd: ArgoCD, kube: Kube, name: str, namespace: str, timeout: float = CHILD_CHANGE, *,
                 root: str = "") -> float:
    t0 = time.monotonic()
    checks.eventually(probes.absent(kube, "applications.argoproj.io", name, namespace), timeout=timeout,
                      what=f"child {name} removed from Git", expected="the root prunes the Application",
                      remediation=hints.PITFALLS["prune"] + " " + hints.ON_FAILURE[3],
                      diagnose=diagnose.for_app(argocd, root) if root else diagnose.components(diagnose.APP_CONTROLLER))
    return time.monotonic() - t0
