"""The checks behind Validation item `notifications` (procedure Step 6), shared by the suites
and by the self-tests that break the setup on purpose. drift_alerts_checks.py uses the
receiver's and the controller's evidence helpers from here.

Each returns what it measured or raises `CheckFailed` naming the trigger/service involved,
what the receiver saw and, from the notifications controller's log, why (e.g. Slack's
`invalid_auth`). Delivery latency is measured from the event (the sync's finishedAt, the
out-of-band change) to the moment the receiver recorded the request.
"""
from __future__ import annotations

import datetime
import json
import time
from typing import Callable

from gitops_conformance.fixtures import checks, diagnose, hints, probes
from gitops_conformance.fixtures.argocd import ArgoCD
from gitops_conformance.fixtures.checks import Observation
from gitops_conformance.fixtures.kube import Kube
from gitops_conformance.fixtures.peers import recorded_secret as redacted
from gitops_conformance.fixtures.providers import Target
from gitops_conformance.scenarios.step2_applications import DeployedApp
from gitops_conformance.scenarios.step6_notifications import NOTIFIED, Notifications, OnDemand

# Bounds (seconds, before --timeout-scale). The testbed delivers within ~1-2 s.
DELIVERY = 45.0
SYNC_FAILS = 60.0
NO_DUPLICATE_WINDOW = 6.0   # quiet period in which a second on-deployed for a revision would show

HINT = hints.for_item("notifications")


def _epoch(rfc3339: str) -> float:
    return datetime.datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp()


def _deployed_at(argocd: ArgoCD, app_name: str, revision: str) -> str | None:
    """When the sync of `revision` finished: its status.history entry (deployedAt is the
    operation's finishedAt). operationState alone is not enough: a later operation (a
    self-heal, the next commit) may already be Running, with no finishedAt yet."""
    status = (argocd.app(app_name) or {}).get("status") or {}
    for entry in reversed(status.get("history") or []):
        if entry.get("revision") == revision and entry.get("deployedAt"):
            return entry["deployedAt"]
    op = status.get("operationState") or {}
    if ((op.get("syncResult") or {}).get("revision")) == revision:
        return op.get("finishedAt")
    return None


def _is_time(text: str) -> bool:
    try:
        _epoch(text)
        return True
    except ValueError:
        return False


def request_body(record: dict) -> dict:
    if isinstance(record.get("json"), dict):
        return record["json"]
    try:
        return json.loads(record.get("body") or "")
    except ValueError:
        return {}


def controller_log(target: Target, *needles: str, lines: int = 300, keep: int = 6) -> str:
    """The notifications controller's recent log lines that mention any needle (app, trigger,
    service): where "invalid_auth", "connection refused" or a template error shows up."""
    if not target.log_reader:
        return "(no log reader for this provider)"
    text = target.log_reader("argocd-notifications", lines)
    hits = [ln for ln in text.splitlines() if any(n in ln for n in needles)]
    return "\n".join(hits[-keep:]) or "(no controller log line mentions " + ", ".join(needles) + ")"


def notified(argocd: ArgoCD, app: str) -> str:
    ann = ((argocd.app(app) or {}).get("metadata") or {}).get("annotations") or {}
    return ann.get(NOTIFIED, "(none)")


def evidence(kube: Kube, argocd: ArgoCD, target: Target, n: Notifications, app: str):
    def collect() -> dict[str, str]:
        return {"application": kube.get_yaml("applications.argoproj.io", app, argocd.namespace),
                "receiver-records": json.dumps(n.receiver.received("/", None)[-20:], indent=1),
                "log-argocd-notifications": target.log_reader("argocd-notifications", 120) if target.log_reader else ""}
    return collect


def summary(records: list[dict]) -> str:
    return "; ".join(f"{r['method']} {r['path']} -> {r['status']} {json.dumps(r.get('response'))[:80]} "
                     f"auth_ok={r.get('auth_ok')}" for r in records[-3:]) or "nothing"


# ----- notifications: on-deployed webhook --------------------------------------------------

def deployed_webhook(waiter: checks.Waiter, kube: Kube, argocd: ArgoCD, target: Target, n: Notifications,
                     app: DeployedApp,
                     revision: str, *, timeout: float = DELIVERY) -> tuple[dict, float]:
    """The on-deployed webhook for `revision` arrives with the app name, the revision, the sync's
    finishedAt and the configured bearer token. Returns (body, seconds from finishedAt to receipt)."""

    finished_seen: set[str] = set()  # finishedAt of every Succeeded operation at `revision` seen while waiting

    def probe() -> Observation:
        op = ((argocd.app(app.name) or {}).get("status") or {}).get("operationState") or {}
        if op.get("phase") == "Succeeded" and (op.get("syncResult") or {}).get("revision") == revision:
            finished_seen.add(op.get("finishedAt"))
        got = n.receiver.received(n.hook_path)
        mine = [r for r in got if request_body(r).get("revision") == revision]
        if mine:
            return Observation.ok(f"{len(mine)} on-deployed request(s) for {revision[:10]}")
        state = probes.app_state(argocd, app.name)
        return Observation.pending(
            f"no request for revision {revision[:10]} under {n.hook_path} (received: {summary(got)}); "
            f"app {state.describe()}; {NOTIFIED}={notified(argocd, app.name)}; controller log: "
            f"{controller_log(target, app.name, n.on_deployed, n.hook, keep=3)}")

    waiter.until(probe, timeout=timeout, what=f"on-deployed webhook of {app.name} (trigger {n.on_deployed}, "
                 f"service webhook.{n.hook})",
                 expected=f"a POST to {n.hook_path} for revision {revision[:10]} after the sync succeeded",
                 remediation=HINT, evidence=evidence(kube, argocd, target, n, app.name),
                 diagnose=diagnose.components(diagnose.NOTIFICATIONS))
    rec = [r for r in n.receiver.received(n.hook_path) if request_body(r).get("revision") == revision][0]
    body = request_body(rec)
    deployed = _deployed_at(argocd, app.name, revision)
    # the template renders operationState.finishedAt of the operation that fired; the history's
    # deployedAt is written for that operation too, up to a second apart (whole seconds)
    stamp = body.get("timestamp") or ""
    finished = stamp if stamp in finished_seen or (
        deployed and _is_time(stamp) and abs(_epoch(stamp) - _epoch(deployed)) <= 1.0) else deployed
    auth = rec["headers"].get("Authorization", "(none)")
    expected_auth = f"Bearer {redacted(n.webhook_token)}"  # the receiver stores a hash prefix only
    seen_auth = "matches" if auth == expected_auth else f"differs: {auth}"
    if auth == f"Bearer {redacted('$' + n.webhook_token_key)}":
        seen_auth += f" (the literal ${n.webhook_token_key}: that key is missing from argocd-notifications-secret)"
    checks.expect(body.get("app") == app.name and finished and body.get("timestamp") == finished and auth == expected_auth,
                  what=f"on-deployed webhook body and headers ({n.on_deployed})",
                  expected=f"app={app.name}, revision={revision[:10]}, timestamp=finishedAt {finished}, "
                           f"and the configured webhook token as the bearer credential",
                  observed=f"body={json.dumps(body)}, Authorization hash {seen_auth}", remediation=HINT)
    return body, max(0.0, rec["time"] - _epoch(finished))


def exactly_once_per_revision(waiter: checks.Waiter, n: Notifications, revisions: list[str], *,
                              window: float = NO_DUPLICATE_WINDOW) -> str:
    """oncePer app.status.sync.revision: after a quiet window, each revision was posted once."""
    def counts() -> dict[str, int]:
        got = [request_body(r).get("revision") for r in n.receiver.received(n.hook_path)]
        return {rev[:10]: got.count(rev) for rev in revisions}

    t0 = time.monotonic()

    def probe() -> Observation:
        c = counts()
        if any(v > 1 for v in c.values()):
            return Observation.failed(f"per-revision counts {c}", "a revision was notified more than once")
        if time.monotonic() - t0 < window:
            return Observation.pending(f"per-revision counts {c} (watching for duplicates)")
        return Observation.ok(f"per-revision counts {c}") if all(v == 1 for v in c.values()) else \
            Observation.failed(f"per-revision counts {c}", "a revision was not notified")

    return waiter.until(probe, timeout=window + 5, scaled=False, what=f"on-deployed once per revision ({n.on_deployed})",
                        expected="exactly one webhook per synced revision", remediation=HINT).observed


# ----- notifications: on-sync-failed to Slack ---------------------------------------------

def _slack_posts(n: Notifications, since: float | None = None) -> list[dict]:
    return [r for r in n.receiver.received("/slack/api/chat.postMessage", since)
            if (r.get("form") or {}).get("channel") == n.channel or (r.get("json") or {}).get("channel") == n.channel]


def slack_outcome(posts: list[dict], channel: str, matches: Callable[[dict], bool], *, waiting_for: str,
                  seen: str, log: str, cause: str) -> Observation:
    """What the Slack API stand-in made of the chat.postMessage requests to `channel`: ok once it
    accepted (`ok: true`) one that `matches`; failed when it rejected every one (invalid_auth:
    terminal, Slack would not deliver them either; `cause` names the setting); else pending."""
    if any((r.get("response") or {}).get("ok") and matches(r) for r in posts):
        return Observation.ok(f"chat.postMessage to {channel} accepted")
    if posts and all(not (r.get("response") or {}).get("ok") for r in posts):
        errors = sorted({str((r.get("response") or {}).get("error")) for r in posts})
        return Observation.failed(f"the Slack endpoint rejected {len(posts)} chat.postMessage to {channel}: "
                                  f"{', '.join(errors)} (auth_ok: {posts[-1].get('auth_ok')}); {log}", cause)
    return Observation.pending(f"no accepted chat.postMessage to {channel} {waiting_for} (seen: {seen}); {log}")


def slack_message(waiter: checks.Waiter, kube: Kube, argocd: ArgoCD, target: Target, n: Notifications, app_name: str, *,
                  must_contain: tuple[str, ...], since: float | None = None, what: str,
                  timeout: float = DELIVERY) -> dict:
    """A chat.postMessage to n.channel, accepted (ok: true), whose text contains `must_contain`.
    A rejected post (invalid_auth) is terminal: Slack would not deliver it either."""

    def probe() -> Observation:
        posts = _slack_posts(n, since)
        return slack_outcome(posts, n.channel,
                             lambda r: all(s in (r.get("form") or {}).get("text", "") for s in must_contain),
                             waiting_for=f"containing {list(must_contain)}", seen=summary(posts),
                             log=f"controller log: {controller_log(target, app_name, 'slack', keep=3)}",
                             cause="service.slack token is not accepted by the Slack API")

    waiter.until(probe, timeout=timeout, what=what,
                 expected=f"a Slack message to {n.channel} naming {', '.join(must_contain)}",
                 remediation=HINT, evidence=evidence(kube, argocd, target, n, app_name),
                 diagnose=diagnose.components(diagnose.NOTIFICATIONS))
    return _slack_posts(n, since)[-1]


def sync_failure_reaches_slack(waiter: checks.Waiter, kube: Kube, argocd: ArgoCD, target: Target, n: Notifications,
                               app: DeployedApp, sha: str, *,
                               timeout: float = DELIVERY) -> tuple[dict, float]:
    """After commit `sha` with a manifest the API server rejects (replicas: -1): the sync fails
    and on-sync-failed posts app-sync-failed to the subscribed channel, naming the app and the
    reason. Returns (the post, seconds from the operation's finishedAt to receipt)."""

    def failed() -> Observation:
        s = probes.app_state(argocd, app.name)
        if s.operation_failed and s.operation_revision == sha:
            return Observation.ok(s.describe())
        return Observation.pending(s.describe())

    waiter.until(failed, timeout=SYNC_FAILS, what=f"failed sync of {sha[:10]} (invalid replicas)",
                 expected="operation phase Failed or Error at the broken commit", remediation=hints.ON_FAILURE[2])
    op = ((argocd.app(app.name) or {}).get("status") or {}).get("operationState") or {}
    # the reason must carry the API server's rejection, not just "sync failed"
    rec = slack_message(waiter, kube, argocd, target, n, app.name,
                        must_contain=(f"Application {app.name} sync failed", "spec.replicas: Invalid value: -1"),
                        what=f"on-sync-failed Slack message for {app.name} (trigger {n.on_sync_failed}, service slack)",
                        timeout=timeout)
    return rec, max(0.0, rec["time"] - _epoch(op["finishedAt"]))


def template_notify(waiter: checks.Waiter, kube: Kube, argocd: ArgoCD, target: Target, n: Notifications,
                    app_name: str, sent: OnDemand, *,
                    timeout: float = DELIVERY) -> tuple[dict, float]:
    """After step6.notify_on_demand (`argocd admin notifications template notify app-sync-failed
    <app> --recipient slack:<channel>`, which reads the ConfigMap/Secret and sends itself): the
    command reported no error and the message arrived. Returns (the post, seconds from the
    command to receipt)."""
    t0, proc = sent.at, sent.proc
    # the CLI exits 0 even when delivery failed; its "failed to notify" line says why
    lines = (proc.stdout + proc.stderr).splitlines()
    errors = [ln.strip()[-300:] for ln in lines if "failed to notify" in ln or '"level":"error"' in ln]
    what = f"on-demand `{sent.command}`"
    if proc.returncode != 0 or errors:
        checks.fail_now(what=what, expected="exit 0 and a Slack message",
                        observed=f"exit {proc.returncode}: " + ("; ".join(errors) or "\n".join(lines[-3:])[-600:]),
                        remediation=HINT)
    rec = slack_message(waiter, kube, argocd, target, n, app_name, must_contain=(app_name, "sync failed"), since=t0,
                        what=what, timeout=timeout)
    return rec, max(0.0, rec["time"] - t0)
