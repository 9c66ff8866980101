"""The checks behind Validation item `drift_alerts` (procedure Step 6) and the Common Pitfall
"Ignoring HPA-managed replicas": drift is detected, diffed and alerted; a replica change the
Application ignores is not drift."""
from __future__ import annotations

import time

from gitops_conformance.fixtures import checks, diagnose, hints, probes
from gitops_conformance.fixtures.argocd import ArgoCD
from gitops_conformance.fixtures.checks import Observation
from gitops_conformance.fixtures.kube import Kube
from gitops_conformance.fixtures.providers import Target
from gitops_conformance.scenarios.step2_applications import DeployedApp
from gitops_conformance.scenarios.step6_notifications import NOTIFIED, Notifications
from gitops_conformance.suites.notifications_checks import (DELIVERY, controller_log, evidence, notified,
                                                            request_body, summary)

# Bounds (seconds, before --timeout-scale).
OUT_OF_SYNC = 60.0
HOLD_SYNCED = 10.0  # how long an ignored replica change must leave the app Synced (drift shows in ~3s)


def drift_is_alerted(waiter: checks.Waiter, kube: Kube, argocd: ArgoCD, target: Target, n: Notifications,
                     app: DeployedApp, *, since: float, timeout: float = DELIVERY) -> tuple[str, float]:
    """After `kubectl scale --replicas=2` (scenarios.step2_applications.drift "hpa-scale", made
    at `since`, time.monotonic()) with selfHeal off, the app is OutOfSync, `argocd app diff` names
    `replicas`, and the on-out-of-sync trigger posts an alert listing Deployment/myapp.
    Returns (the diff, seconds from the kubectl change to the alert's receipt)."""
    t0 = time.time() - (time.monotonic() - since)  # the receiver stamps requests with epoch seconds
    waiter.until(probes.with_policy(argocd, app.name, probes.app_out_of_sync(argocd, app.name)),
                 timeout=OUT_OF_SYNC, what=f"drift detection of `kubectl scale --replicas=2` in {app.namespace}",
                 expected="application OutOfSync", remediation=hints.for_item("drift_alerts"))
    diff = argocd.cli("app", "diff", app.name, check=False)
    text = diff.stdout + diff.stderr
    checks.expect(diff.returncode == 1 and "replicas" in text, what=f"`argocd app diff {app.name}`",
                  expected="exit 1 (differences) and a diff naming the changed field `replicas`",
                  observed=f"exit {diff.returncode}: {text.strip()[:600]}", remediation=hints.for_item("drift_alerts"))

    def alerted() -> Observation:
        got = n.receiver.received(n.hook_path, since=t0)
        hits = [r for r in got if request_body(r).get("syncStatus") == "OutOfSync" and request_body(r).get("app") == app.name]
        if hits:
            return Observation.ok(f"alert listing {request_body(hits[0]).get('outOfSync')}")
        return Observation.pending(f"no OutOfSync alert under {n.hook_path} since the change (received: {summary(got)}); "
                                   f"{NOTIFIED}={notified(argocd, app.name)}; controller log: "
                                   f"{controller_log(target, app.name, n.on_out_of_sync, keep=3)}")

    waiter.until(alerted, timeout=timeout, what=f"drift alert for {app.name} (trigger {n.on_out_of_sync}, "
                 f"service webhook.{n.hook})",
                 expected=f"a POST to {n.hook_path} with syncStatus OutOfSync after the kubectl change",
                 remediation=hints.for_item("drift_alerts"), evidence=evidence(kube, argocd, target, n, app.name),
                 diagnose=diagnose.components(diagnose.NOTIFICATIONS))
    rec = [r for r in n.receiver.received(n.hook_path, since=t0) if request_body(r).get("syncStatus") == "OutOfSync"][0]
    drifted = request_body(rec).get("outOfSync") or []
    checks.expect("Deployment/myapp" in drifted, what="drift alert content", expected="outOfSync lists Deployment/myapp",
                  observed=f"outOfSync={drifted}", remediation=hints.for_item("drift_alerts"))
    return text, max(0.0, rec["time"] - t0)


def ignored_replicas_stay_synced(waiter: checks.Waiter, kube: Kube, argocd: ArgoCD, app: DeployedApp, *,
                                 hold: float = HOLD_SYNCED) -> str:
    """The HPA pitfall: with ignoreDifferences /spec/replicas and RespectIgnoreDifferences=true,
    a replica change (scenarios.step2_applications.drift "hpa-scale", made before) leaves the app
    Synced (after a hard refresh, so the comparison is a fresh one) and is not reverted, for
    `hold` seconds."""
    argocd.app(app.name, refresh="hard")
    t0 = time.monotonic()
    dep = probes.deployment(kube, app.namespace, "myapp", replicas=2, available=False)

    def probe() -> Observation:
        s = probes.app_state(argocd, app.name)
        d = dep()
        seen = f"{s.describe()}; {d.observed}"
        if s.sync_status != "Synced" or d.outcome is not checks.Outcome.OK:
            return Observation.failed(seen, "the replica change counted as drift")
        if time.monotonic() - t0 < hold:
            return Observation.pending(f"{seen} (holding {hold:g}s)")
        return Observation.ok(seen)

    return waiter.until(probes.with_policy(argocd, app.name, probe), timeout=hold + 10, scaled=False,
                        what="ignoreDifferences /spec/replicas after `kubectl scale --replicas=2` and a hard refresh",
                        expected=f"application Synced and replicas left at 2 for {hold:g}s",
                        remediation=hints.PITFALLS["hpa-replicas-not-ignored"] + " " + hints.ON_FAILURE[6]).observed
