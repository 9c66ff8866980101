"""Checks for canary under Flux (procedure step 5, `--engine flux`): a Flagger canary, released
by a Git commit that Flux applies, walks the weights and is promoted while the success rate
holds, and is rolled back, the primary still serving, when it does not.

The checks only observe: the test releases (scenarios.flux.step5_flagger.release) inside a
Recorder it opened before, so every weight Flagger writes on the Ingress copy is seen (a watch,
not a poll: each weight lasts one analysis interval).
"""
from __future__ import annotations

import dataclasses
import time

from gitops_conformance.fixtures import checks, diagnose, hints
from gitops_conformance.fixtures.checks import Observation
from gitops_conformance.fixtures.flux import Flux
from gitops_conformance.fixtures.kube import Kube
from gitops_conformance.scenarios.flux import step2_kustomizations as fluxs
from gitops_conformance.scenarios.flux import step5_flagger as step5
from gitops_conformance.scenarios.flux.step5_flagger import CanaryView, FlaggerApp
from gitops_conformance.suites.canary_checks import WeightRecorder

# Bounds (seconds, before --timeout-scale). Flagger's analysis interval is 10s at least: a walk
# is the scale-up, four weights and the promotion (about 8 intervals); a rollback is THRESHOLD
# failed checks after the scale-up (about 4).
APPLY = 60.0
CANARY = 240.0
ROLLBACK = 180.0
SETTLE = 60.0
REMEDY = hints.for_item("canary")
NO_METRIC = ("the Canary's analysis declares no metric: Flagger promotes whatever it is given "
             "(spec.analysis.metrics is empty)")


class Recorder(WeightRecorder):
    """Looks at the Canary and remembers the phases it saw; the weights Flagger wrote on the
    Ingress copy as WeightRecorder sees them."""

    def __init__(self, kube: Kube, namespace: str):
        super().__init__(kube, namespace, step5.CANARY_INGRESS)
        self.phases: list[str] = []
        self.phase_at: dict[str, float] = {}  # phase -> when first seen (time.monotonic())

    def look(self) -> CanaryView:
        v = step5.look(self.kube, self.namespace)
        if v.phase and (not self.phases or self.phases[-1] != v.phase):
            self.phases.append(v.phase)
            self.phase_at.setdefault(v.phase, time.monotonic())
        return v

    def seen(self, v: CanaryView) -> str:
        return f"{v.describe()}; phases seen={self.phases}; weights seen={self.weights}"

    def observe(self) -> tuple[CanaryView, str, Observation | None]:
        """One look: the view, in words, and the failure every canary check shares (a Canary
        without a metric, which Flagger would promote unverified), or None."""
        v = self.look()
        seen = self.seen(v)
        return v, seen, (checks.failed(seen, NO_METRIC) if v.exists and v.metrics == 0 else None)


def _diagnose() -> diagnose.Diagnosis:
    return diagnose.components(diagnose.FLAGGER, "kustomize-controller", "source-controller")


def _applied(waiter: checks.Waiter, kube: Kube, flux: Flux, app: FlaggerApp, rec: Recorder, tag: str,
             sha: str) -> str:
    """Flux applied the release commit to the target Deployment (the recorder keeps looking: Flagger
    may start before the Kustomization reports it). Returns the released image."""
    applied = fluxs.applied_at(flux, app.name, app.namespace, sha)

    def probe() -> Observation:
        rec.look()
        return applied()

    waiter.until(probe, timeout=APPLY, what=f"Flux apply of the release {tag} ({sha[:10]})",
                 expected=f"Kustomization {app.namespace}/{app.name} Ready at {sha[:10]}", remediation=REMEDY,
                 evidence=step5.canary_evidence(kube, app), diagnose=_diagnose())
    return f"{app.image}:{tag}"


@dataclasses.dataclass
class CanaryResult:
    weights: list[int]   # canary-weight annotation values, in the order seen
    phases: list[str]    # the Canary's phases, in the order seen
    walk_s: float | None  # first Progressing sighting -> Succeeded


def canary_progresses(waiter: checks.Waiter, kube: Kube, flux: Flux, app: FlaggerApp, rec: Recorder, *,
                      tag: str, sha: str, timeout: float = CANARY) -> CanaryResult:
    """After a release of `tag` (commit `sha`) under healthy traffic, watched by `rec` from before
    the commit: Flux applies it, Flagger shifts 20→40→60→80 with the metric holding and promotes
    (the primary runs `tag`, phase Succeeded), then routes everything back to the primary and
    scales the canary to 0, Flux still Ready at `sha` (no fight)."""
    new_image = _applied(waiter, kube, flux, app, rec, tag, sha)

    def promoted() -> Observation:
        v, seen, unverified = rec.observe()
        if unverified:
            return unverified
        if v.phase == "Failed":
            return checks.failed(seen, f"Flagger rolled {tag} back although its traffic was healthy; Flagger "
                                       f"says: {step5.flagger_says(kube, app.namespace)}")
        done = v.phase == "Succeeded" and v.primary_image == new_image and "Progressing" in rec.phases
        return checks.ok(seen) if done else checks.pending(seen)

    what = f"Flagger canary of {new_image} in {app.namespace}"
    waiter.until(promoted, timeout=timeout, what=what, remediation=REMEDY,
                 expected=f"weights {'→'.join(map(str, step5.WEIGHTS))} with the success rate >= "
                          f"{step5.MIN_SUCCESS_RATE}, then promoted: phase Succeeded, {step5.PRIMARY} running {tag}",
                 evidence=step5.canary_evidence(kube, app), diagnose=_diagnose())
    walked = [w for w in rec.weights if w > 0]
    checks.expect(all(w in walked for w in step5.WEIGHTS) and walked == sorted(walked),
                  what=f"{what}: traffic weights", observed=f"canary-weight sequence {rec.weights}, phases {rec.phases}",
                  expected=f"the Ingress copy's weight rising through {list(step5.WEIGHTS)}", remediation=REMEDY)
    applied = fluxs.applied_at(flux, app.name, app.namespace, sha)

    def settled() -> Observation:
        v = rec.look()
        ok = v.ingress_weight == 0 and v.target_replicas == 0 and v.primary_image == new_image
        return (checks.ok if ok else checks.pending)(rec.seen(v))

    waiter.until(checks.all_of(settled, applied), timeout=SETTLE, what=f"{what}: after promotion",
                 remediation=REMEDY, evidence=step5.canary_evidence(kube, app), diagnose=_diagnose(),
                 expected=f"canary weight 0, {step5.TARGET} scaled to 0, {step5.PRIMARY} on {tag}, and the "
                          f"Kustomization still Ready at {sha[:10]} (Flux does not fight Flagger)")
    start, end = rec.phase_at.get("Progressing"), rec.phase_at.get("Succeeded")
    return CanaryResult(rec.weights, rec.phases, end - start if start is not None and end is not None else None)


def canary_rolls_back(waiter: checks.Waiter, kube: Kube, flux: Flux, app: FlaggerApp, rec: Recorder, *,
                      before: CanaryView, tag: str, sha: str, rate: float, timeout: float = ROLLBACK) -> float | None:
    """After a release of `tag` (commit `sha`) whose traffic succeeds at `rate` only, watched by
    `rec` from before the commit: Flagger counts failed metric checks up to the threshold and
    rolls back (phase Failed), the primary keeps `before`'s image with every replica ready, the
    canary weight is 0. Returns seconds from the first Progressing sighting to Failed."""
    new_image = _applied(waiter, kube, flux, app, rec, tag, sha)

    def rolled_back() -> Observation:
        v, seen, unverified = rec.observe()
        if unverified:
            return unverified
        if v.primary_image == new_image:
            return checks.failed(seen, f"promoted {tag} although its success rate was {rate}: the metric did "
                                       f"not fail it (does the MetricTemplate read this canary's traffic?); "
                                       f"Flagger says: {step5.flagger_says(kube, app.namespace)}")
        return checks.ok(seen) if v.phase == "Failed" else checks.pending(seen)

    what = f"Flagger canary of {new_image} with success rate {rate} in {app.namespace}"
    waiter.until(rolled_back, timeout=timeout, what=what, remediation=REMEDY,
                 expected=f"{step5.THRESHOLD} failed checks of the success rate (>= {step5.MIN_SUCCESS_RATE}), "
                          f"then rolled back: phase Failed",
                 evidence=step5.canary_evidence(kube, app), diagnose=_diagnose())

    def primary_serves() -> Observation:
        v = rec.look()
        ok = (v.primary_image == before.primary_image and v.primary_serving and v.ingress_weight == 0
              and v.target_replicas == 0)
        return (checks.ok if ok else checks.pending)(rec.seen(v))

    waiter.until(primary_serves, timeout=SETTLE, what=f"{what}: primary after the rollback", remediation=REMEDY,
                 expected=f"{step5.PRIMARY} still on {before.primary_image} with every replica ready, canary weight 0, "
                          f"{step5.TARGET} scaled to 0",
                 evidence=step5.canary_evidence(kube, app), diagnose=_diagnose())
    start, end = rec.phase_at.get("Progressing"), rec.phase_at.get("Failed")
    return end - start if start is not None and end is not None else None
