"""Validation: drift detection alerts on out-of-band changes (procedure Step 6), and the
Common Pitfall "Ignoring HPA-managed replicas".

Merges keys named for the test into the shared argocd-notifications-cm/-secret (restored at
teardown), so it runs concurrently with the others.
"""
from __future__ import annotations

import time

import pytest

from gitops_conformance.scenarios import step2_applications as step2
from gitops_conformance.scenarios.flux import step2_kustomizations as fluxs
from gitops_conformance.scenarios.step6_notifications import IGNORE_REPLICAS
from gitops_conformance.suites import drift_alerts_checks
from gitops_conformance.suites.flux import notifications_checks as flux_nc

pytestmark = pytest.mark.validation("drift_alerts")

def test_out_of_band_change_is_detected_and_alerted(notifications, deploy_myapp, kube, argocd, target,
                                                    record_metric, record_check, waiter):
    n = notifications()
    # selfHeal off: the drift must stay visible long enough to be diffed and alerted
    app = deploy_myapp(changes={"metadata.annotations": n.subscriptions(out_of_sync=True),
                                "spec.syncPolicy.automated.selfHeal": False})
    changed_at = step2.drift(kube, app.namespace, "hpa-scale")
    diff, latency = drift_alerts_checks.drift_is_alerted(waiter, kube, argocd, target, n, app, since=changed_at)
    record_metric("event_to_notified_s", latency)
    record_check("argocd app diff", "names the changed field replicas", diff[-400:], True)


def test_ignored_replicas_do_not_drift(deploy_myapp, kube, argocd, record_check, waiter):
    app = deploy_myapp(changes=IGNORE_REPLICAS)  # the procedure's myapp-strict: selfHeal on
    step2.drift(kube, app.namespace, "hpa-scale")
    record_check("ignoreDifferences /spec/replicas", "Synced and replicas kept after kubectl scale",
                 drift_alerts_checks.ignored_replicas_stay_synced(waiter, kube, argocd, app), True)


# ----- Flux (--engine flux) ------------------------------------------------------------------

def test_flux_drift_correction_is_alerted(deploy_myapp_flux, flux_alerts, kube, target, record_metric, waiter):
    app = deploy_myapp_flux()
    alerts = flux_alerts(app)
    since = time.time()
    step2.drift(kube, app.namespace, "scale")  # When: an out-of-band change kustomize-controller corrects
    record_metric("drift_to_alerted_s", flux_nc.drift_correction_is_alerted(waiter, kube, target, alerts, app, since))


def test_flux_replicas_left_to_the_cluster_do_not_drift(deploy_myapp_flux, kube, flux, record_check, waiter):
    app = deploy_myapp_flux(replicas_in_git=False)  # as for an HPA-managed Deployment
    step2.drift(kube, app.namespace, "hpa-scale")   # When: what an HPA does
    requested = fluxs.request_reconcile(kube, app)  # and Flux applies again
    record_check("spec.replicas not in Git", "replicas kept after `kubectl scale` and a reconcile",
                 flux_nc.replicas_left_to_the_cluster_stay(waiter, kube, flux, app, requested), True)
