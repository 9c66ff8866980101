"""Checks for app_of_apps (procedure step 3): the root creates every child, children follow
Git (added ones appear, removed ones are pruned), and the sync waves put infra first.

The wave order is proven from what the cluster did, not inferred from configuration: a watch
on the Applications, begun before the root exists, records the write that created each child
and the first write that reported it Healthy; the API server's resourceVersions (etcd
revisions: one strictly increasing sequence, as PruneLast's check uses) must put every app
child's creation after every infra child's Healthy. Polling could not decide that under load
(one slow poll sees both at once). Argo CD's own timestamps (creationTimestamp, the first
sync's startedAt/finishedAt, health.lastTransitionTime) must agree, strictly. The polled
times stay in the evidence for people.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import time

from gitops_conformance.fixtures import checks, diagnose, hints, probes
from gitops_conformance.fixtures.changes import ChangeLog
from gitops_conformance.fixtures.argocd import ArgoCD
from gitops_conformance.fixtures.checks import Observation
from gitops_conformance.fixtures.engine import argocd_app_state
from gitops_conformance.fixtures.kube import Kube
from gitops_conformance.scenarios.step3_app_of_apps import AppOfApps

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


def _infra_healthy_at(app: dict, first_healthy_since: str | None = None) -> tuple[str | None, str]:
    """When Argo CD says the infra child became Healthy: the health.lastTransitionTime that its
    first Healthy write carried (a later Healthy -> Progressing -> Healthy moves the current one
    past the waves: seen on a loaded runner), else the current one; never earlier than its first
    sync's finishedAt."""
    _, finished = _first_sync(app)
    health = (app.get("status") or {}).get("health") or {}
    moved = first_healthy_since or (health.get("lastTransitionTime") if health.get("status") == "Healthy" else None)
    source = ("health.lastTransitionTime of its first Healthy write" if first_healthy_since
              else "health.lastTransitionTime")
    if finished and moved and _ts(moved) > _ts(finished):
        return moved, source
    return finished, "first sync finishedAt"


def first_healthy_since(log: ChangeLog, name: str) -> str | None:
    """Argo CD's health.lastTransitionTime on the first watched write of `name` reporting Healthy
    (or on the object the watch began with, when it was Healthy already)."""
    initial = ((log.initial.get(("Application", name)) or {}).get("status") or {}).get("health") or {}
    if initial.get("status") == "Healthy":
        return initial.get("lastTransitionTime")
    change = log.first("Application", name, lambda c: c.type != "DELETED" and c.health == "Healthy")
    return change.health_since if change else None


def watched_order(layout: AppOfApps, log: ChangeLog) -> tuple[dict[str, int], dict[str, int], list[str]]:
    """From the Application watch: (infra child -> resourceVersion of its first Healthy write,
    app child -> resourceVersion of its creation, what is missing). An infra child already
    Healthy when the watch began counts at the watch's start (an upper bound)."""
    healthy, created, missing = {}, {}, []
    began = log.listed_at.get("Application", 0)
    for n in layout.infra:
        if ((log.initial.get(("Application", n)) or {}).get("status") or {}).get("health", {}).get("status") == "Healthy":
            healthy[n] = began
            continue
        change = log.first("Application", n, lambda c: c.type != "DELETED" and c.health == "Healthy")
        if change:
            healthy[n] = change.resource_version
        else:
            missing.append(f"{n}: no write reporting it Healthy was watched")
    for n in layout.apps:
        if ("Application", n) in log.initial:
            missing.append(f"{n}: already existed when the watch began")
            continue
        change = log.first("Application", n, lambda c: c.type == "ADDED")
        if change:
            created[n] = change.resource_version
        else:
            missing.append(f"{n}: its creation was not watched")
    if log.errors:
        missing.extend(log.errors[:3])
    return healthy, created, missing


def waves_put_infra_first(layout: AppOfApps, timeline: Timeline, log: ChangeLog) -> str:
    """Strictly infra first, proven twice, both sides present (a missing side is a failure):
    watched: every app child was created by a write after the write that reported the last infra
    child Healthy (resourceVersions; equal is impossible, earlier is the pitfall);
    API: every app child was created, and its first sync started, strictly after the last
    infra child was Healthy by Argo CD's own timestamps (whole seconds: a tie is not a pass).
    Argo CD waits for a wave's health plus ARGOCD_SYNC_WAVE_DELAY (2s) before the next."""
    what = "sync-wave order of the app-of-apps"
    remedy = hints.PITFALLS["no-sync-waves"] + " " + hints.ON_FAILURE[3]
    t0 = min(timeline.first_seen.values(), default=0.0)
    polled = f"polled: {timeline.describe(t0)}"
    healthy, created, missing = watched_order(layout, log)
    watched = "watched: " + "; ".join([f"{n} Healthy at resourceVersion {rv}" for n, rv in healthy.items()]
                                      + [f"{n} created at resourceVersion {rv}" for n, rv in created.items()])
    checks.expect(not missing, what=what, expected="every infra child's Healthy and every app child's creation watched",
                  observed=f"{'; '.join(missing)}; {watched}; {polled}", remediation=remedy)
    last_infra_child = max(healthy, key=healthy.get)
    first_app_child = min(created, key=created.get)
    checks.expect(created[first_app_child] > healthy[last_infra_child], what=what,
                  expected="every app child created by a later write than the one reporting the last infra child "
                           "Healthy",
                  observed=f"{first_app_child} created at resourceVersion {created[first_app_child]}, not after the "
                           f"last infra child was Healthy ({last_infra_child} at resourceVersion "
                           f"{healthy[last_infra_child]}); {watched}; {polled}",
                  remediation=remedy)
    observed = f"{watched}; {polled}"

    stamps, gaps = [], []
    infra_at = {}
    for n in layout.infra:
        at, source = _infra_healthy_at(timeline.apps[n], first_healthy_since(log, n))
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
