"""Validation: manual kubectl changes are reverted by self-heal (procedure steps 2 and 6)."""
from __future__ import annotations

import pytest

from suites import flux_checks, item_checks

pytestmark = pytest.mark.validation("self_heal")


@pytest.mark.parametrize("drift", ["scale", "set-image", "delete-service"])
def test_out_of_band_change_is_reverted(drift, deploy_myapp, kube, argocd, record_metric):
    app = deploy_myapp()
    record_metric("drift_to_reverted_s", item_checks.drift_is_reverted(kube, argocd, app, drift))


# ----- Flux (--engine flux) ------------------------------------------------------------------

@pytest.mark.parametrize("drift", ["scale", "set-image", "delete-service"])
def test_flux_out_of_band_change_is_reverted(drift, deploy_myapp_flux, kube, flux, record_metric):
    app = deploy_myapp_flux()
    record_metric("drift_to_reverted_s", flux_checks.drift_is_reverted(kube, flux, app, drift))
