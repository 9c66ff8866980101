"""Checks for app_of_apps (procedure step 3): the root creates every child, children follow
Git (added ones appear, removed ones are pruned), and the sync waves put infra first.

The wave order is proven from observations, not inferred from configuration: while the
root syncs, every child is polled a few times a second and the moments it first exists and
first reports Healthy are recorded; every app child must appear at a later poll than the
one that saw every infra child Healthy. Argo CD's own timestamps (creationTimestamp, the
first sync's startedAt/finishedAt, health.lastTransitionTime) must agree, strictly.
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
from scenarios.step3_app_of_apps import AppOfApps

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


def children_roll_out(waiter: checks.Waiter, argocd: ArgoCD, layout: AppOfApps, *,
                      timeout: float = ROLLOUT) -> tuple[Timeline, float]:
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

    waiter.until(probe, timeout=timeout, initial_wait=POLL, max_wait=POLL,
                 what=f"app-of-apps {layout.root} deploys its children",
                 expected=f"every child ({', '.join(layout.children)}) created, Synced and Healthy",
                 remediation=hints.ON_FAILURE[3], diagnose=diagnose.for_app(argocd, layout.root))
    return timeline, time.monotonic() - t0


def _ts(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def _first_sync(app: dict) -> tuple[str | None, str | None]:
    """(startedAt, finishedAt) of the Application's first sync, as Argo CD recorded it: its
    oldest history entry (a later operation may have replaced operationState), else the
    current operation."""
    status = app.get("status") or {}
    history = status.get("history") or []
    if history:
        first = min(history, key=lambda h: h.get("id", 0))
        return first.get("deployStartedAt"), first.get("deployedAt")
    op = status.get("operationState") or {}
    return op.get("startedAt"), op.get("finishedAt")


def _infra_healthy_at(app: dict) -> tuple[str | None, str]:
    """When Argo CD says the infra child became Healthy: health.lastTransitionTime where the
    engine records it, never earlier than its first sync's finishedAt."""
    _, finished = _first_sync(app)
    health = (app.get("status") or {}).get("health") or {}
    moved = health.get("lastTransitionTime") if health.get("status") == "Healthy" else None
    if finished and moved and _ts(moved) > _ts(finished):
        return moved, "health.lastTransitionTime"
    return finished, "first sync finishedAt"


def waves_put_infra_first(layout: AppOfApps, timeline: Timeline) -> str:
    """Strictly infra first, proven twice, both sides present (a missing time is a failure):
    observed: every app child first appeared at a later poll than the one that saw the last
    infra child Healthy (same poll = a tie at the polling resolution: not a pass);
    API: every app child was created, and its first sync started, strictly after the last
    infra child was Healthy by Argo CD's own timestamps (whole seconds: a tie is not a pass).
    Argo CD waits for a wave's health plus ARGOCD_SYNC_WAVE_DELAY (2s) before the next."""
    what = "sync-wave order of the app-of-apps"
    remedy = hints.PITFALLS["no-sync-waves"] + " " + hints.ON_FAILURE[3]
    t0 = min(timeline.first_seen.values(), default=0.0)
    observed = f"observed: {timeline.describe(t0)}"
    missing = ([f"{n} never seen Healthy" for n in layout.infra if n not in timeline.first_healthy]
               + [f"{n} never seen" for n in layout.apps if n not in timeline.first_seen])
    checks.expect(not missing, what=what, expected="every infra child seen Healthy and every app child seen",
                  observed=f"{'; '.join(missing)}; {observed}", remediation=remedy)
    infra_healthy = max(timeline.first_healthy[n] for n in layout.infra)
    apps_began = min(timeline.first_seen[n] for n in layout.apps)
    checks.expect(apps_began > infra_healthy, what=what,
                  expected=f"app children appear at a later poll (every {POLL:g}s) than the one that saw every "
                           f"infra child Healthy",
                  observed=f"apps first seen {apps_began - infra_healthy:+.2f}s after the last infra child was "
                           f"Healthy; {observed}", remediation=remedy)

    stamps, gaps = [], []
    infra_at = {}
    for n in layout.infra:
        at, source = _infra_healthy_at(timeline.apps[n])
        infra_at[n] = at
        stamps.append(f"{n} Healthy at {at or '?'} ({source})")
        if not at:
            gaps.append(f"{n} has no finishedAt for its first sync")
    app_at = {}
    for n in layout.apps:
        created = timeline.apps[n]["metadata"].get("creationTimestamp")
        started, _ = _first_sync(timeline.apps[n])
        app_at[n] = [t for t in (created, started) if t]
        stamps.append(f"{n} created {created or '?'}, first sync started {started or '?'}")
        if not created or not started:
            gaps.append(f"{n} has no {'creationTimestamp' if not created else 'startedAt for its first sync'}")
    api = "API: " + "; ".join(stamps)
    checks.expect(not gaps, what=f"{what} (Argo CD's timestamps)", expected="both sides' timestamps present",
                  observed=f"{'; '.join(gaps)}; {api}", remediation=remedy)
    last_infra = max(_ts(t) for t in infra_at.values())
    first_app = min(_ts(t) for ts in app_at.values() for t in ts)
    checks.expect(first_app > last_infra, what=f"{what} (Argo CD's timestamps)",
                  expected="every app child created and started strictly after the last infra child was Healthy "
                           "(whole seconds: a tie is not a pass)",
                  observed=f"first app child time {first_app.isoformat()} vs last infra Healthy "
                           f"{last_infra.isoformat()}; {api}", remediation=remedy)
    return f"{observed}; {api}"


def child_appears(waiter: checks.Waiter, argocd: ArgoCD, name: str, timeout: float = CHILD_CHANGE) -> float:
    t0 = time.monotonic()
    waiter.until(probes.app_synced(argocd, name), timeout=timeout,
                 what=f"child {name} added in Git", expected="the root creates it and it syncs",
                 remediation=hints.ON_FAILURE[3], diagnose=diagnose.for_app(argocd, name))
    return time.monotonic() - t0


def child_pruned(waiter: checks.Waiter, argocd: ArgoCD, kube: Kube, name: str, namespace: str,
                 timeout: float = CHILD_CHANGE, *,
                 root: str = "") -> float:
    t0 = time.monotonic()
    gone = probes.absent(kube, "applications.argoproj.io", name, namespace)
    waiter.until(probes.with_policy(argocd, root, gone) if root else gone, timeout=timeout,
                 what=f"child {name} removed from Git", expected="the root prunes the Application",
                 remediation=hints.PITFALLS["prune-disabled"] + " " + hints.ON_FAILURE[3],
                 diagnose=diagnose.for_app(argocd, root) if root else diagnose.components(diagnose.APP_CONTROLLER))
    return time.monotonic() - t0
