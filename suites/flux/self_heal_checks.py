"""Checks for self_heal under Flux (procedure step 2, `--engine flux`): kustomize-controller
undoes an out-of-band kubectl change at its next apply.
"""
from __future__ import annotations

import time

from gitops_conformance.fixtures import checks, hints, probes
from gitops_conformance.fixtures.flux import KUSTOMIZATION, Flux
from gitops_conformance.fixtures.kube import Kube
from gitops_conformance.scenarios import step2_applications as step2
from gitops_conformance.scenarios.flux.step2_kustomizations import FluxApp
from gitops_conformance.suites.flux.auto_sync_checks import with_kustomization_spec

SELF_HEAL = 60.0


def drift_is_reverted(waiter: checks.Waiter, kube: Kube, flux: Flux, app: FluxApp, drift: str, changed_at: float, *,
                      timeout: float = SELF_HEAL) -> float:
    """After an out-of-band change with kubectl at `changed_at` (scenarios.step2_applications.drift:
    `scale`, `set-image`, `delete-service`), kustomize-controller must undo it when it next applies
    the Kustomization (its interval, no commit needed). Returns seconds from the change to reverted."""
    ns = app.namespace
    expected_image = f"{app.image}:v1.0.0"
    if drift == "scale":
        probe = probes.deployment(kube, ns, "myapp", replicas=5, available=False)
        expected = "replicas back to 5 (from Git)"
    elif drift == "set-image":
        probe = probes.deployment(kube, ns, "myapp", image=expected_image, available=False)
        expected = f"image back to {expected_image} (from Git)"
    elif drift == "delete-service":
        probe = probes.exists(kube, "service", "myapp", ns)
        expected = "Service myapp recreated (from Git)"
    else:
        raise ValueError(f"unknown drift {drift!r}")
    what = "kubectl " + " ".join(step2.DRIFTS[drift])
    waiter.until(
        with_kustomization_spec(flux, app, probe), timeout=timeout, what=f"Flux drift correction of `{what}` in {ns}",
        expected=expected,
        remediation=hints.for_item("self_heal") + " Flux corrects drift each time it applies the "
                    "Kustomization: its spec.interval must be shorter than the time you allow.",
        evidence=lambda: {"kustomization": kube.get_yaml(KUSTOMIZATION, app.name, ns), "events": kube.events(ns)})
    return time.monotonic() - changed_at
