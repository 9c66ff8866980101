"""Step 6's notifications, as the procedure configures them: `argocd-notifications-cm` with a
Slack service, the app-sync-failed template and on-sync-failed trigger, a webhook service
with an Authorization header, the app-deployed template and on-deployed trigger (oncePer
the sync revision), and `argocd-notifications-secret` holding the tokens.

Two adaptations, on purpose:
- Slack's `apiURL` points at the receiver's Slack stand-in (`<receiver>/slack/api/`) and
  the webhook at `<receiver>/hooks/<name>`, so every delivery can be inspected.
- The ConfigMap and Secret are shared by the whole Argo CD, so keys are MERGED (patch), and
  restored to their previous value (or removed) at teardown. The webhook service, its
  templates and triggers get names unique to the test (`service.webhook.<hook>`,
  `trigger.on-deployed-<hook>` ...): their content is the procedure's, only the name
  differs. The Slack keys keep the procedure's names (`service.slack`,
  `template.app-sync-failed`, `trigger.on-sync-failed`, `slack-token`), because users
  subscribe with `on-sync-failed.slack` and notify with `--recipient slack:<channel>`: the tests
  that set them (`slack_notifications`) run one after another, in one xdist group; the others
  (`notifications`, webhook only) run concurrently.

Tokens go to the cluster in the body of an API merge patch, never in argv or an error message,
and are registered with the redaction filter.
"""
from __future__ import annotations

import base64
import dataclasses
import os
import secrets
import subprocess
import time
from typing import Callable

import pytest
import yaml

from gitops_conformance import redact
from gitops_conformance.fixtures.argocd import ArgoCD
from gitops_conformance.fixtures.cleanup import Tracker
from gitops_conformance.fixtures.kube import Kube
from gitops_conformance.fixtures.peers import Receiver
from gitops_conformance.fixtures.plugin import Diagnostics
from gitops_conformance.fixtures.providers import Target


CM, SECRET = "argocd-notifications-cm", "argocd-notifications-secret"
SUBSCRIBE = "notifications.argoproj.io/subscribe"
NOTIFIED = "notified.notifications.argoproj.io"  # the controller's record of what it sent
ENV_SLACK_TOKEN = "GITOPS_CONFORMANCE_SLACK_TOKEN"

# The procedure's conditions (Step 6), and the one users add for drift alerts.
ON_SYNC_FAILED_WHEN = "app.status.operationState.phase in ['Error', 'Failed']"
ON_DEPLOYED_WHEN = "app.status.operationState.phase in ['Succeeded']"
ON_OUT_OF_SYNC_WHEN = "app.status.sync.status == 'OutOfSync'"

# Application changes (dotted paths, scenarios.step2_applications.with_changes) the Step 6 tests deploy with:
# a short retry: the procedure's (5 attempts, backoff 5s..3m; Argo CD's default is 5 too) holds the
# phase at Running, so on-sync-failed would fire only after ~2.5 min
FAST_FAIL = {"limit": 1, "backoff": {"duration": "1s", "factor": 2, "maxDuration": "2s"}}
# the procedure's myapp-strict: replicas left to an HPA (Common Pitfall "Ignoring HPA-managed replicas")
IGNORE_REPLICAS = {
    "spec.ignoreDifferences": [{"group": "apps", "kind": "Deployment", "jsonPointers": ["/spec/replicas"]}],
    "spec.syncPolicy.syncOptions": ["CreateNamespace=true", "PruneLast=true", "RespectIgnoreDifferences=true"],
}

APP_SYNC_FAILED = """\
message: |
  Application {{.app.metadata.name}} sync failed.
  Reason: {{.app.status.operationState.message}}
  Repository: {{.app.spec.source.repoURL}}
  Revision: {{.app.status.sync.revision}}
slack:
  attachments: |
    [{
      "title": "{{.app.metadata.name}}",
      "title_link": "{{.context.argocdUrl}}/applications/{{.app.metadata.name}}",
      "color": "#ff0000",
      "fields": [{
        "title": "Sync Status",
        "value": "{{.app.status.sync.status}}",
        "short": true
      }]
    }]
"""

APP_DEPLOYED_BODY = """\
{
  "app": "{{.app.metadata.name}}",
  "revision": "{{.app.status.sync.revision}}",
  "timestamp": "{{.app.status.operationState.finishedAt}}"
}
"""

# Drift alert: which app, its sync status, and which resources drifted ("" ends the list
# so the trailing comma of the range stays valid JSON).
APP_OUT_OF_SYNC_BODY = """\
{
  "app": "{{.app.metadata.name}}",
  "syncStatus": "{{.app.status.sync.status}}",
  "revision": "{{.app.status.sync.revision}}",
  "outOfSync": [{{range .app.status.resources}}{{if eq .status "OutOfSync"}}"{{.kind}}/{{.name}}", {{end}}{{end}}""]
}
"""


@dataclasses.dataclass
class Notifications:
    """What a test configured, and how to see what was delivered."""

    receiver: object             # what arrived: .received(path_prefix, since), .wait_for(...) (runner's view)
    receiver_url: str            # the receiver as the notifications controller reaches it
    hook: str                    # webhook service name (unique to the test)
    webhook_token: str = dataclasses.field(repr=False)
    channel: str                 # Slack channel (unique to the test)
    slack_token: str | None = dataclasses.field(repr=False)  # None: Slack is not configured
    on_deployed: str = ""        # trigger names
    on_out_of_sync: str = ""
    on_sync_failed: str = "on-sync-failed"

    @property
    def hook_path(self) -> str:
        return f"/hooks/{self.hook}"

    @property
    def webhook_token_key(self) -> str:
        """The argocd-notifications-secret key the Authorization header names."""
        return f"webhook-token-{self.hook}"

    def subscriptions(self, *, deployed: bool = False, sync_failed: bool = False,
                      out_of_sync: bool = False) -> dict[str, str]:
        """The Application annotations that subscribe it (Step 6's `subscribe.<trigger>.<service>`)."""
        ann = {}
        if deployed:
            ann[f"{SUBSCRIBE}.{self.on_deployed}.{self.hook}"] = ""
        if out_of_sync:
            ann[f"{SUBSCRIBE}.{self.on_out_of_sync}.{self.hook}"] = ""
        if sync_failed:
            ann[f"{SUBSCRIBE}.{self.on_sync_failed}.slack"] = self.channel
        return ann


def slack_token_for(receiver: Receiver | None) -> str | None:
    """The bot token the Slack endpoint accepts: the suite's receiver's own (made per run), else
    the GITOPS_CONFORMANCE_SLACK_TOKEN environment variable, else None (Slack parts skip)."""
    token = (receiver.slack_token if receiver else None) or os.environ.get(ENV_SLACK_TOKEN) or None
    redact.register_secret(token)
    return token


def _patch(kube: Kube, kind: str, name: str, ns: str, patch: dict) -> None:
    kube.patch(kind, name, ns, patch)  # the body, never argv: the patch may hold a token


def merge_keys(kube: Kube, tracker: Tracker, ns: str, *, cm: dict[str, str], secret: dict[str, str]) -> None:
    """Merge keys into the shared ConfigMap and Secret; teardown puts back what was there."""
    old_cm = (kube.get("configmap", CM, ns) or {}).get("data") or {}
    old_secret = (kube.get("secret", SECRET, ns) or {}).get("data") or {}
    for value in old_secret.values():  # other users' tokens may show in a failed patch
        redact.register_secret(base64.b64decode(value).decode(errors="replace"))
    if kube.get("secret", SECRET, ns) is None:
        kube.apply({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": SECRET, "namespace": ns}})
    restore_cm = {k: old_cm.get(k) for k in cm}
    restore_secret = {k: old_secret.get(k) for k in secret}

    def restore() -> None:
        _patch(kube, "configmap", CM, ns, {"data": restore_cm})
        _patch(kube, "secret", SECRET, ns, {"data": restore_secret})

    tracker.restores.append(restore)  # shared settings: put back even under --keep-on-failure
    enc = {k: base64.b64encode(v.encode()).decode() for k, v in secret.items()}
    _patch(kube, "secret", SECRET, ns, {"data": enc})
    _patch(kube, "configmap", CM, ns, {"data": cm})


def _block(obj) -> str:
    return yaml.safe_dump(obj, sort_keys=False, width=1000)


def config(n: Notifications, *, slack_api_url: str | None = None, on_deployed_when: str = ON_DEPLOYED_WHEN,
           on_out_of_sync_when: str = ON_OUT_OF_SYNC_WHEN) -> tuple[dict[str, str], dict[str, str]]:
    """(ConfigMap keys, Secret keys) for `n`; the *_when overrides let self-tests break a trigger."""
    token_key = n.webhook_token_key
    tpl_deployed, tpl_drift = f"app-deployed-{n.hook}", f"app-out-of-sync-{n.hook}"
    cm = {
        f"service.webhook.{n.hook}": _block({
            "url": f"{n.receiver_url}{n.hook_path}",
            "headers": [{"name": "Authorization", "value": f"Bearer ${token_key}"}]}),
        f"trigger.{n.on_deployed}": _block([{"when": on_deployed_when, "oncePer": "app.status.sync.revision",
                                             "send": [tpl_deployed]}]),
        f"template.{tpl_deployed}": _block({"webhook": {n.hook: {"method": "POST", "body": APP_DEPLOYED_BODY}}}),
        f"trigger.{n.on_out_of_sync}": _block([{"when": on_out_of_sync_when, "send": [tpl_drift]}]),
        f"template.{tpl_drift}": _block({"webhook": {n.hook: {"method": "POST", "body": APP_OUT_OF_SYNC_BODY}}}),
    }
    secret = {token_key: n.webhook_token}
    if n.slack_token is not None:
        cm["service.slack"] = _block({"token": "$slack-token",
                                      "apiURL": slack_api_url or f"{n.receiver_url}/slack/api/"})
        cm["template.app-sync-failed"] = APP_SYNC_FAILED
        cm[f"trigger.{n.on_sync_failed}"] = _block([{"when": ON_SYNC_FAILED_WHEN, "send": ["app-sync-failed"]}])
        secret["slack-token"] = n.slack_token
    return cm, secret


def _configure(target: Target, kube: Kube, tracker: Tracker, diagnostics: Diagnostics, unique: Callable[[str], str],
               *, slack: bool, slack_token: str | None = None, slack_api_url: str | None = None,
               on_deployed_when: str = ON_DEPLOYED_WHEN, on_out_of_sync_when: str = ON_OUT_OF_SYNC_WHEN,
               omit_webhook_secret: bool = False) -> Notifications:
    receiver = target.receiver
    if receiver is None:
        pytest.skip(f"provider {target.provider!r} has no notification receiver the engine can reach")
    token = None
    if slack:
        token = slack_token or slack_token_for(receiver)
        if token is None:
            pytest.skip(f"no Slack bot token for the Slack endpoint: set {ENV_SLACK_TOKEN}")
        redact.register_secret(token)
    hook = unique("hook")
    webhook_token = secrets.token_hex(20)
    redact.register_secret(webhook_token)
    n = Notifications(receiver=receiver.client, receiver_url=receiver.engine_url.rstrip("/"),
                      hook=hook, webhook_token=webhook_token, channel=unique("ch"), slack_token=token,
                      on_deployed=f"on-deployed-{hook}", on_out_of_sync=f"on-out-of-sync-{hook}")
    cm, secret = config(n, slack_api_url=slack_api_url, on_deployed_when=on_deployed_when,
                        on_out_of_sync_when=on_out_of_sync_when)
    if omit_webhook_secret:  # the mistake of never creating the secret key the header names
        secret.pop(n.webhook_token_key)
    merge_keys(kube, tracker, target.argocd_namespace, cm=cm, secret=secret)
    diagnostics.components.append("argocd-notifications")
    diagnostics.objects.append(("configmap", CM, target.argocd_namespace))
    return n


@dataclasses.dataclass(frozen=True)
class OnDemand:
    """What `notify_on_demand` ran and when: the check reads its output and waits for delivery."""
    command: str                       # as a user would type it
    proc: subprocess.CompletedProcess
    at: float                          # time.time() just before it ran


def notify_on_demand(target: Target, argocd: ArgoCD, n: Notifications, app_name: str) -> OnDemand:
    """Step 6's on-demand send (When): `argocd admin notifications template notify app-sync-failed
    <app> --recipient slack:<channel>`, run where the notifications controller runs (its pod on a
    cluster: the Slack API it posts to has an in-cluster name), as Argo CD's notifications docs run it."""
    at = time.time()
    proc = target.notifications_cli(argocd, "template", "notify", "app-sync-failed", app_name,
                                    "--recipient", f"slack:{n.channel}", "-n", target.argocd_namespace, timeout=60)
    return OnDemand(f"argocd admin notifications template notify app-sync-failed {app_name} "
                    f"--recipient slack:{n.channel}", proc, at)


@pytest.fixture
def notifications(target: Target, kube: Kube, tracker: Tracker, diagnostics: Diagnostics,
                  unique: Callable[[str], str]) -> Callable[..., Notifications]:
    """notifications(on_deployed_when=..., on_out_of_sync_when=..., omit_webhook_secret=False) ->
    Notifications: Step 6's webhook service, templates and triggers, every key named for the test,
    merged into the shared ConfigMap and Secret (so tests using it run concurrently); the
    overrides break it on purpose (self-tests). Skips where the engine cannot reach a receiver."""
    def make(**overrides) -> Notifications:
        return _configure(target, kube, tracker, diagnostics, unique, slack=False, **overrides)

    return make


@pytest.fixture
def slack_notifications(target: Target, kube: Kube, tracker: Tracker, diagnostics: Diagnostics,
                        unique: Callable[[str], str]) -> Callable[..., Notifications]:
    """slack_notifications(slack_token=None, slack_api_url=None, ...) -> Notifications: the
    webhook part as `notifications`, plus the procedure's Slack keys, which keep their names
    (`service.slack`, `template.app-sync-failed`, `slack-token`) and so are shared by every test
    that uses them: those tests run in one xdist group (fixtures/parallel.py). Skips also where no
    accepted Slack token is known."""
    def make(**overrides) -> Notifications:
        return _configure(target, kube, tracker, diagnostics, unique, slack=True, **overrides)

    return make
