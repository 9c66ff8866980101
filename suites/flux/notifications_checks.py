"""Checks for notifications and drift_alerts under Flux (procedure step 6): the events
kustomize-controller sends notification-controller reach the suite's receiver through an Alert
and a Provider: an applied commit to the generic webhook (with its Authorization header), a
failed apply to the Slack API (accepted: `ok: true`), and a drift correction (kustomize-
controller's "Deployment/<ns>/myapp configured" at its next apply) to the webhook.

Each returns seconds from the cause (the push, the kubectl change) to the receiver's record, or
raises CheckFailed with what arrived and notification-controller's own log lines about it.
"""
from __future__ import annotations

import json

from gitops_conformance.fixtures import checks, hints
from gitops_conformance.fixtures.checks import Observation
from gitops_conformance.fixtures.flux import KUSTOMIZATION
from gitops_conformance.fixtures.kube import Kube
from gitops_conformance.fixtures.peers import recorded_secret as redacted
from gitops_conformance.scenarios.flux.step2_kustomizations import FluxApp
from gitops_conformance.scenarios.flux.step6_notifications import ALERTS, FluxAlerts
from gitops_conformance.suites.notifications_checks import slack_outcome

DELIVERY = 45.0
DRIFT_ALERT = 60.0   # the drift is corrected (and announced) at the Kustomization's next apply: interval 30 s
HINT = (hints.for_item("notifications") + " Flux: the Alert's eventSources must name the Kustomization and its "
        "eventSeverity admit the event (info or error); the Provider's address and secretRef (token, headers) "
        "must be right; notification-controller logs each failed delivery.")


def _text(record: dict) -> str:
    return record.get("body") or json.dumps(record.get("json"))


def _log(target, *needles: str, keep: int = 4) -> str:
    if not target.log_reader:
        return "(no log reader for this provider)"
    lines = [ln for ln in target.log_reader("notification-controller", 400).splitlines() if any(n in ln for n in needles)]
    return "\n".join(lines[-keep:]) or f"(no notification-controller log line mentions {', '.join(needles)})"


def _summary(records: list[dict]) -> str:
    return "; ".join(f"{r['method']} {r['path']} -> {r['status']} {_text(r)[:160]}" for r in records[-3:]) or "nothing"


def _alert_spec(kube: Kube, alerts: FluxAlerts, app: FluxApp) -> str:
    """The webhook Alert's filter, in words: the usual cause when an event is not delivered."""
    spec = (kube.get(ALERTS, alerts.webhook_alert, app.namespace) or {}).get("spec") or {}
    sources = ", ".join(f"{s.get('kind')}/{s.get('name')}" for s in spec.get("eventSources") or [])
    return f"Alert {alerts.webhook_alert}: eventSeverity={spec.get('eventSeverity', 'info')}, eventSources=[{sources}]"


def _evidence(kube: Kube, target, alerts: FluxAlerts, app: FluxApp):
    return lambda: {"kustomization": kube.get_yaml(KUSTOMIZATION, app.name, app.namespace),
                    "alert": kube.get_yaml(ALERTS, alerts.webhook_alert, app.namespace),
                    "receiver-records": json.dumps(alerts.receiver.client.received("/", None)[-20:], indent=1),
                    "events": kube.events(app.namespace),
                    "log-notification-controller": target.log_reader("notification-controller", 120)
                    if target.log_reader else ""}


def webhook_gets_event(waiter: checks.Waiter, kube: Kube, target, alerts: FluxAlerts, app: FluxApp, *,
                       contains: tuple[str, ...], since: float, what: str, timeout: float = DELIVERY) -> float:
    """A POST to the Alert's generic webhook, after `since` (epoch), whose event names the
    Kustomization and holds every one of `contains`, carrying the configured bearer token.
    Returns seconds from `since` to its receipt."""
    expected_auth = f"Bearer {redacted(alerts.webhook_token)}"  # the receiver keeps a hash prefix only

    def probe() -> Observation:
        got = alerts.receiver.client.received(alerts.hook_path, since)
        mine = [r for r in got if app.name in _text(r) and all(c in _text(r) for c in contains)]
        if not mine:
            return Observation.pending(f"no event naming {app.name} with {list(contains)} under {alerts.hook_path} "
                                       f"(received: {_summary(got)}); {_alert_spec(kube, alerts, app)}; "
                                       f"notification-controller log: {_log(target, alerts.webhook_alert, app.name)}")
        auth = mine[0]["headers"].get("Authorization", "(none)")
        seen = f"{mine[0]['method']} {alerts.hook_path}: {_text(mine[0])[:300]}"
        if auth != expected_auth:
            return Observation.failed(f"{seen}; Authorization hash {auth}", "the Provider's header is not the token")
        return Observation.ok(seen)

    waiter.until(probe, timeout=timeout, what=what,
                       expected=f"a POST to {alerts.hook_path} naming {app.name} with {', '.join(contains)}, "
                                "bearing the Provider's Authorization header",
                       remediation=HINT, evidence=_evidence(kube, target, alerts, app))
    record = [r for r in alerts.receiver.client.received(alerts.hook_path, since)
              if app.name in _text(r) and all(c in _text(r) for c in contains)][0]
    return max(0.0, record["time"] - since)


def slack_gets_event(waiter: checks.Waiter, kube: Kube, target, alerts: FluxAlerts, app: FluxApp, *,
                     contains: tuple[str, ...], since: float, what: str, timeout: float = DELIVERY) -> float:
    """An accepted chat.postMessage (`ok: true`) to the Alert's channel, after `since`, naming the
    Kustomization and holding every one of `contains`. A post the Slack API rejects (invalid_auth)
    is terminal: Slack would not deliver it either. Returns seconds from `since` to receipt."""
    def posts() -> list[dict]:
        return [r for r in alerts.receiver.client.received("/slack/api/chat.postMessage", since)
                if (r.get("json") or {}).get("channel") == alerts.channel]

    def probe() -> Observation:
        mine = posts()
        return slack_outcome(mine, alerts.channel, lambda r: app.name in _text(r) and all(c in _text(r) for c in contains),
                             waiting_for=f"naming {app.name} with {list(contains)}", seen=_summary(mine),
                             log=f"notification-controller log: {_log(target, alerts.slack_alert, app.name, 'slack')}",
                             cause="the Provider's token is not accepted by the Slack API")

    waiter.until(probe, timeout=timeout, what=what,
                 expected=f"a Slack message to {alerts.channel} naming {app.name} with {', '.join(contains)}",
                 remediation=HINT, evidence=_evidence(kube, target, alerts, app))
    first = [r for r in posts() if (r.get("response") or {}).get("ok")][0]
    return max(0.0, first["time"] - since)


def drift_correction_is_alerted(waiter: checks.Waiter, kube: Kube, target, alerts: FluxAlerts, app: FluxApp,
                                since: float, *, timeout: float = DRIFT_ALERT) -> float:
    """After `kubectl scale deployment/myapp --replicas=1` at `since` (epoch; step2.drift "scale"),
    kustomize-controller corrects it at its next apply and says so in an info event
    ("Deployment/<ns>/myapp configured"), which the Alert must deliver to the webhook. Returns
    seconds from the change to the alert."""
    return webhook_gets_event(waiter, kube, target, alerts, app, contains=(f"Deployment/{app.namespace}/myapp configured",),
                              since=since, what=f"drift alert for `kubectl scale` of myapp in {app.namespace}",
                              timeout=timeout)


REPLICAS_HOLD = 30.0


def replicas_left_to_the_cluster_stay(waiter: checks.Waiter, kube: Kube, flux, app: FluxApp, requested: str, *,
                                      timeout: float = REPLICAS_HOLD) -> str:
    """The pitfall "Ignoring HPA-managed replicas", the Flux way: Git leaves spec.replicas out, so
    a replica change (what an HPA does; step2.drift "hpa-scale": `kubectl scale --replicas=2`) is
    no drift. After the test requested a reconcile (`requested`: request_reconcile, as `flux
    reconcile kustomization` does), once kustomize-controller has handled it, Ready, the replicas
    must still be 2. Reverted is terminal."""
    ns = app.namespace

    def probe() -> Observation:
        obj = kube.get(KUSTOMIZATION, app.name, ns) or {}
        handled = (obj.get("status") or {}).get("lastHandledReconcileAt") == requested
        ready = flux.ready_condition(KUSTOMIZATION, app.name, ns).get("status") == "True"
        replicas = ((kube.get("deployment", "myapp", ns) or {}).get("spec") or {}).get("replicas")
        seen = (f"deployment {ns}/myapp replicas={replicas}; Kustomization {app.name} "
                f"{'handled' if handled else 'has not yet handled'} the reconcile request, Ready={ready}")
        if replicas != 2:
            return Observation.failed(seen, "the apply reverted the replica change: Git sets spec.replicas")
        return Observation.ok(seen) if handled and ready else Observation.pending(seen)

    return waiter.until(probe, timeout=timeout, what=f"replicas left to the cluster after `kubectl scale` in {ns}",
                        expected="replicas still 2 after kustomize-controller applied the Kustomization again",
                        remediation=hints.PITFALLS["hpa-replicas-not-ignored"] + " (Flux: leave spec.replicas out "
                                    "of Git for a Deployment an HPA scales; the apply then never owns it.) "
                                    + hints.ON_FAILURE[6],
                        evidence=lambda: {"kustomization": kube.get_yaml(KUSTOMIZATION, app.name, ns),
                                          "deployment": kube.get_yaml("deployment", "myapp", ns)}).observed
