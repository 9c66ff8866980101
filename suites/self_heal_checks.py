"""The check behind Validation item `self_heal` (procedure steps 2 and 6): an out-of-band
change is undone by the engine."""
from __future__ import annotations

import time

from gitops_conformance.fixtures import checks, hints, probes
from gitops_conformance.fixtures.argocd import ArgoCD
from gitops_conformance.fixtures.kube import Kube
from gitops_conformance.scenarios.step2_applications import DeployedApp
from gitops_conformance.suites.auto_sync_checks import app_diagnosis, app_evidence

SELF_HEAL = 60.0  # seconds, before --timeout-scale


# what each drift (scenarios.step2_applications.DRIFTS) changed, and the state Git declares, which must come back
REVERTED = {
    "scale": ("kubectl scale deployment/myapp --replicas=1", "replicas back to 5 (from Git)"),
    "set-image": ("kubectl set image ... myapp:hotfix", "image back to {image} (from Git)"),
    "delete-service": ("kubectl delete service myapp", "Service myapp recreated (from Git)"),
}


def drift_is_reverted(waiter: checks.Waiter, kube: Kube, argocd: ArgoCD, app: DeployedApp, drift: str, *,
                      since: float, timeout: float = SELF_HEAL) -> float:
    """After an out-of-band change (scenarios.step2_applications.drift, made at `since`, time.monotonic()),
    the engine must undo it. Returns seconds from the change to the reverted state."""
    ns = app.namespace
    expected_image = f"{app.image}:v1.0.0"
    probe = {"scale": lambda: probes.deployment(kube, ns, "myapp", replicas=5, available=False),
             "set-image": lambda: probes.deployment(kube, ns, "myapp", image=expected_image, available=False),
             "delete-service": lambda: probes.exists(kube, "service", "myapp", ns)}[drift]()
    what, expected = REVERTED[drift]
    waiter.until(
        probes.with_policy(argocd, app.name, probe), timeout=timeout, what=f"self-heal of `{what}` in {ns}",
        expected=expected.format(image=expected_image),
        remediation=hints.for_item("self_heal") + " The Application needs syncPolicy.automated.selfHeal: true.",
        evidence=app_evidence(kube, argocd, app), diagnose=app_diagnosis(argocd, app))
    return time.monotonic() - since
