"""Validation: manual kubectl changes are reverted by self-heal (procedure steps 2 and 6)."""
from __future__ import annotations

import pytest

from gitops_conformance.scenarios import step2_applications as step2
from gitops_conformance.suites import self_heal_checks
from gitops_conformance.suites.flux import self_heal_checks as flux_self_heal

pytestmark = pytest.mark.validation("self_heal")


@pytest.mark.parametrize("drift", ["scale", "set-image", "delete-service"])
def test_out_of_band_change_is_reverted(drift, deploy_myapp, kube, argocd, record_metric, waiter):
    app = deploy_myapp()
    changed_at = step2.drift(kube, app.namespace, drift)
    record_metric("drift_to_reverted_s",
                  self_heal_checks.drift_is_reverted(waiter, kube, argocd, app, drift, since=changed_at))

# ----- Flux (--engine flux) ------------------------------------------------------------------

@pytest.mark.parametrize("drift", ["scale", "set-image", "delete-service"])
def test_flux_out_of_band_change_is_reverted(drift, deploy_myapp_flux, kube, flux, record_metric, waiter):
    app = deploy_myapp_flux()
    changed_at = step2.drift(kube, app.namespace, drift)
    record_metric("drift_to_reverted_s", flux_self_heal.drift_is_reverted(waiter, kube, flux, app, drift, changed_at))
