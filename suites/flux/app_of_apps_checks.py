"""Checks for app_of_apps under Flux (procedure step 3): a root Kustomization creates its child
Kustomizations, each Ready at the root's commit; infra is Ready before apps' objects exist
(`dependsOn`); a child added in Git appears and one removed is pruned with what it deployed.

The order is proven as the Argo CD check proves sync waves, from what the cluster did: a watch
on the namespace (begun before the root exists) gives the resourceVersion of the write that
made infra Ready and of the creation of each object apps applied (etcd revisions: one strictly
increasing sequence); Flux's own timestamps (infra's and apps' Ready lastTransitionTime, the
applied objects' creationTimestamp) must agree, strictly (whole seconds: a tie is not a pass).
"""
from __future__ import annotations

import datetime as dt
import time

from gitops_conformance.fixtures import checks, hints, probes
from gitops_conformance.fixtures.changes import ChangeLog
from gitops_conformance.fixtures.checks import Observation
from gitops_conformance.fixtures.flux import KUSTOMIZATION, Flux
from gitops_conformance.fixtures.kube import Kube
from gitops_conformance.scenarios.flux.step2_kustomizations import applied_at
from gitops_conformance.scenarios.flux.step3_app_of_apps import FluxAppOfApps

ROLLOUT = 120.0      # infra's apply and health, then apps at the controller's next dependency check (30 s)
CHILD_CHANGE = 60.0
APPS_OBJECTS = (("Deployment", "myapp"), ("Service", "myapp"))  # what the apps child applies
ORDER_REMEDY = (hints.PITFALLS["no-sync-waves"] + " (Flux: `dependsOn` the infra Kustomization on the apps "
                "Kustomization, and `wait: true` on infra so it is Ready only once healthy.) " + hints.ON_FAILURE[3])


def _evidence(kube: Kube, layout: FluxAppOfApps):
    return lambda: {**{f"kustomization-{n}": kube.get_yaml(KUSTOMIZATION, n, layout.namespace)
                       for n in (layout.root, *layout.children)},
                    "events": kube.events(layout.namespace)}


def children_become_ready(waiter: checks.Waiter, flux: Flux, kube: Kube, layout: FluxAppOfApps, *,
                          timeout: float = ROLLOUT) -> float:
    """Every child Kustomization the root created is Ready at the root's commit (a failed apply
    of that commit is terminal). Returns seconds waited."""
    t0 = time.monotonic()
    waiter.until(checks.all_of(*(applied_at(flux, n, layout.namespace, layout.revision) for n in layout.children)),
                 timeout=timeout, what=f"the children of Kustomization {layout.namespace}/{layout.root}",
                 expected=f"{', '.join(layout.children)} each Ready at {layout.revision[:10]}",
                 remediation=hints.ON_FAILURE[3], evidence=_evidence(kube, layout))
    return time.monotonic() - t0


def _ts(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def _ready_since(flux: Flux, name: str, namespace: str) -> str | None:
    ready = flux.ready_condition(KUSTOMIZATION, name, namespace)
    return ready.get("lastTransitionTime") if ready.get("status") == "True" else None


def dependency_order_holds(kube: Kube, flux: Flux, layout: FluxAppOfApps, log: ChangeLog) -> str:
    """Strictly infra first, proven twice, both sides present (a missing side is a failure):
    watched: every object of apps was created by a write after the one that made infra Ready;
    API: apps' objects' creationTimestamps and apps' Ready lastTransitionTime are strictly after
    infra's Ready lastTransitionTime."""
    what = "dependsOn order of the Kustomizations"
    ns = layout.namespace
    missing = list(log.errors[:3])
    if ("Kustomization", layout.infra) in log.initial:
        missing.append(f"{layout.infra} already existed when the watch began")
    infra_ready = log.first("Kustomization", layout.infra, lambda c: c.type != "DELETED" and c.ready == "True")
    if infra_ready is None:
        missing.append(f"{layout.infra}: no write making it Ready was watched")
    created = {}
    for kind, name in APPS_OBJECTS:
        change = log.first(kind, name, lambda c: c.type == "ADDED")
        if change is None:
            missing.append(f"{kind}/{name}: its creation was not watched")
        else:
            created[f"{kind}/{name}"] = change.resource_version
    watched = "watched: " + "; ".join(
        ([f"{layout.infra} Ready at resourceVersion {infra_ready.resource_version}"] if infra_ready else [])
        + [f"{obj} created at resourceVersion {rv}" for obj, rv in created.items()])
    checks.expect(not missing, what=what, expected="infra's Ready and the creation of every apps object watched",
                  observed=f"{'; '.join(missing)}; {watched}", remediation=ORDER_REMEDY)
    first_obj = min(created, key=created.get)
    checks.expect(created[first_obj] > infra_ready.resource_version, what=what,
                  expected=f"every object of {layout.apps} created by a later write than the one making "
                           f"{layout.infra} Ready",
                  observed=f"{first_obj} created at resourceVersion {created[first_obj]}, before {layout.infra} was "
                           f"Ready (resourceVersion {infra_ready.resource_version}); {watched}",
                  remediation=ORDER_REMEDY)

    infra_at, apps_at = _ready_since(flux, layout.infra, ns), _ready_since(flux, layout.apps, ns)
    stamps = {f"{kind}/{name}": ((kube.get(kind.lower(), name, ns) or {}).get("metadata") or {}).get("creationTimestamp")
              for kind, name in APPS_OBJECTS}
    api = (f"API: {layout.infra} Ready since {infra_at or '?'}, {layout.apps} Ready since {apps_at or '?'}, "
           + ", ".join(f"{obj} created {t or '?'}" for obj, t in stamps.items()))
    gaps = [n for n, t in ((layout.infra, infra_at), (layout.apps, apps_at), *stamps.items()) if not t]
    checks.expect(not gaps, what=f"{what} (Flux's timestamps)", expected="every timestamp present",
                  observed=f"none for {', '.join(gaps)}; {api}", remediation=ORDER_REMEDY)
    first_apps = min(_ts(t) for t in (apps_at, *stamps.values()))
    checks.expect(first_apps > _ts(infra_at), what=f"{what} (Flux's timestamps)",
                  expected=f"apps' objects created and {layout.apps} Ready strictly after {layout.infra} was Ready "
                           "(whole seconds: a tie is not a pass)",
                  observed=f"first apps time {first_apps.isoformat()} vs infra Ready {infra_at}; {api}",
                  remediation=ORDER_REMEDY)
    return f"{watched}; {api}"


def child_appears(waiter: checks.Waiter, flux: Flux, kube: Kube, layout: FluxAppOfApps, name: str, sha: str, *,
                  timeout: float = CHILD_CHANGE) -> float:
    """A child Kustomization added under the root's path in commit `sha` is created by the root,
    Ready at that commit, and its ConfigMap exists. Returns seconds waited."""
    t0 = time.monotonic()
    waiter.until(checks.all_of(applied_at(flux, name, layout.namespace, sha),
                               probes.exists(kube, "configmap", name, layout.namespace)),
                 timeout=timeout, what=f"child Kustomization {name} added in Git ({sha[:10]})",
                 expected=f"the root {layout.root} creates it (it reads {layout.root}'s path only) and it is "
                          f"Ready at {sha[:10]} with its ConfigMap",
                 remediation=hints.ON_FAILURE[3], evidence=_evidence(kube, layout))
    return time.monotonic() - t0


def child_pruned(waiter: checks.Waiter, flux: Flux, kube: Kube, layout: FluxAppOfApps, name: str, *,
                 timeout: float = CHILD_CHANGE) -> float:
    """A child removed from Git: the root prunes the Kustomization, and its own prune the
    ConfigMap it deployed. Returns seconds waited."""
    t0 = time.monotonic()
    gone = checks.all_of(probes.absent(kube, KUSTOMIZATION, name, layout.namespace),
                         probes.absent(kube, "configmap", name, layout.namespace))

    def annotated() -> Observation:
        obs = gone()
        if obs.outcome is checks.Outcome.OK:
            return obs
        spec = (kube.get(KUSTOMIZATION, layout.root, layout.namespace) or {}).get("spec") or {}
        return Observation(obs.outcome, f"{obs.observed} [root spec.prune={str(bool(spec.get('prune'))).lower()}]",
                           obs.detail)

    waiter.until(annotated, timeout=timeout, what=f"child Kustomization {name} removed from Git",
                 expected="the root prunes the Kustomization and the ConfigMap it deployed is deleted",
                 remediation=hints.PITFALLS["prune-disabled"] + " (Flux: spec.prune: true on the root "
                             "Kustomization.) " + hints.ON_FAILURE[3], evidence=_evidence(kube, layout))
    return time.monotonic() - t0
