"""Step 6's notifications the Flux way: notification-controller Providers and Alerts beside
the app's Kustomization (scenarios.flux.step2_kustomizations.FluxApp), in its namespace:

- a `generic` Provider (a webhook: the event as JSON, an Authorization header from its Secret's
  `headers`) with an Alert for the Kustomization's info events (applies, drift corrections);
- a `slack` Provider (chat.postMessage with the bot token from its Secret's `token`, a channel
  of the test's own) with an Alert for its error events (a failed apply).

Their addresses point at the suite's receiver (the webhook sink and Slack API stand-in), so
every delivery can be inspected. Flux objects are per namespace, so nothing shared changes:
unlike Argo CD's notifications, these tests run in parallel. Tokens reach the cluster through
kubectl's stdin and are registered with the redaction filter.
"""
from __future__ import annotations

import dataclasses
import secrets
from typing import Callable

import pytest

from gitops_conformance import redact
from gitops_conformance.fixtures import names
from gitops_conformance.fixtures.flux import NOTIFICATION_BETA
from gitops_conformance.fixtures.kube import Kube
from gitops_conformance.fixtures.peers import Receiver
from gitops_conformance.fixtures.plugin import Diagnostics

from ..step6_notifications import slack_token_for
from .step2_kustomizations import FluxApp

ALERTS = "alerts.notification.toolkit.fluxcd.io"
PROVIDERS = "providers.notification.toolkit.fluxcd.io"


@dataclasses.dataclass
class FluxAlerts:
    receiver: Receiver
    hook: str                                        # the webhook's path name (unique to the test)
    webhook_token: str = dataclasses.field(repr=False)
    channel: str = ""                                # the Slack channel (unique to the test)
    slack_token: str | None = dataclasses.field(default=None, repr=False)
    webhook_alert: str = ""
    slack_alert: str = ""

    @property
    def hook_path(self) -> str:
        return f"/hooks/{self.hook}"


def _doc(kind: str, name: str, namespace: str, spec: dict) -> dict:
    return {"apiVersion": NOTIFICATION_BETA, "kind": kind,
            "metadata": {"name": name, "namespace": namespace, "labels": names.standard_labels()}, "spec": spec}


def _secret(name: str, namespace: str, data: dict[str, str]) -> dict:
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "stringData": data,
            "metadata": {"name": name, "namespace": namespace, "labels": names.standard_labels()}}


def alert(name: str, namespace: str, provider: str, kustomization: str, severity: str) -> dict:
    return _doc("Alert", name, namespace, {"providerRef": {"name": provider}, "eventSeverity": severity,
                                           "eventSources": [{"kind": "Kustomization", "name": kustomization}]})


@pytest.fixture
def flux_alerts(kube: Kube, target, diagnostics: Diagnostics, unique: Callable[[str], str]) -> Callable[..., FluxAlerts]:
    """flux_alerts(app, **breakage) -> webhook and Slack Providers + Alerts for the app's
    Kustomization. `webhook_severity` (default info) and `slack_token` break them on purpose."""
    if target.receiver is None:
        pytest.skip("this target has no notification receiver")

    def make(app: FluxApp, *, webhook_severity: str = "info", slack_token: str | None = None) -> FluxAlerts:
        ns, base = app.namespace, unique("alerts")
        webhook_token = secrets.token_hex(16)
        redact.register_secret(webhook_token)
        token = slack_token or slack_token_for(target.receiver)
        redact.register_secret(token)
        alerts = FluxAlerts(receiver=target.receiver, hook=unique("flux-hook"), webhook_token=webhook_token,
                            channel=f"#{unique('flux')}", slack_token=token,
                            webhook_alert=f"{base}-webhook", slack_alert=f"{base}-slack")
        docs = [_secret(f"{base}-webhook", ns, {"headers": f"Authorization: Bearer {webhook_token}\n"}),
                _doc("Provider", f"{base}-webhook", ns, {"type": "generic", "secretRef": {"name": f"{base}-webhook"},
                                                         "address": f"{target.receiver.engine_url}{alerts.hook_path}"}),
                alert(alerts.webhook_alert, ns, f"{base}-webhook", app.name, webhook_severity)]
        if token:
            docs += [_secret(f"{base}-slack", ns, {"token": token}),
                     _doc("Provider", f"{base}-slack", ns, {
                         "type": "slack", "channel": alerts.channel, "secretRef": {"name": f"{base}-slack"},
                         "address": f"{target.receiver.engine_url}/slack/api/chat.postMessage"}),
                     alert(alerts.slack_alert, ns, f"{base}-slack", app.name, "error")]
        kube.apply(docs)
        diagnostics.objects += [(ALERTS, alerts.webhook_alert, ns), (PROVIDERS, f"{base}-webhook", ns)]
        diagnostics.components = [*diagnostics.components, "notification-controller"]
        return alerts

    return make
