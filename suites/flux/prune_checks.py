"""Checks for prune under Flux (procedure step 2, `--engine flux`): what leaves Git leaves the
cluster (`prune: true`).
"""
from __future__ import annotations

import time

from gitops_conformance.fixtures import checks, hints, probes
from gitops_conformance.fixtures.checks import Observation
from gitops_conformance.fixtures.flux import KUSTOMIZATION, Flux
from gitops_conformance.fixtures.kube import Kube
from gitops_conformance.scenarios.flux.step2_kustomizations import FluxApp, applied_at
from gitops_conformance.suites.flux.auto_sync_checks import with_kustomization_spec

PRUNE = 60.0


def removed_manifest_is_pruned(waiter: checks.Waiter, kube: Kube, flux: Flux, app: FluxApp, sha: str, *,
                               timeout: float = PRUNE) -> float:
    """After commit `sha` removed service.yaml from Git (scenarios.step2_applications.remove_service),
    the Kustomization must apply that commit and delete the Service from the cluster (garbage
    collection of its inventory, `prune: true`). Returns seconds from the call (right after the
    push) to pruned."""
    t0 = time.monotonic()
    applied = applied_at(flux, app.name, app.namespace, sha)

    def pruned() -> Observation:
        gone = probes.absent(kube, "service", "myapp", app.namespace)()
        at = applied()
        seen = f"{gone.observed}; {at.observed}"
        if at.outcome is checks.Outcome.FAILED:
            return Observation.failed(seen, at.detail)
        both = gone.outcome is checks.Outcome.OK and at.outcome is checks.Outcome.OK
        return Observation.ok(seen) if both else Observation.pending(seen)

    waiter.until(
        with_kustomization_spec(flux, app, pruned), timeout=timeout,
        what=f"prune of Service myapp removed from Git in {sha[:10]}",
        expected="the Kustomization applied the removal commit and Service myapp is deleted from the cluster",
        remediation=hints.PITFALLS["prune-disabled"] + " (Flux: spec.prune: true on the Kustomization.) "
                    + hints.ON_FAILURE[2],
        evidence=lambda: {"kustomization": kube.get_yaml(KUSTOMIZATION, app.name, app.namespace),
                          "events": kube.events(app.namespace)})
    return time.monotonic() - t0
