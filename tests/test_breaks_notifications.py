"""Every notifications/drift_alerts check must be able to fail: each test configures Step 6
wrongly on purpose and asserts the check FAILS within its bound, naming the cause.

Run serially: they change the shared argocd-notifications-cm/-secret (restored at teardown).
"""
from __future__ import annotations

import secrets

import pytest

from tests.breaking import fails_within
from gitops_conformance.scenarios import step2_applications as step2
from gitops_conformance.scenarios import step6_notifications as step6
from gitops_conformance.scenarios.step6_notifications import FAST_FAIL, IGNORE_REPLICAS
from gitops_conformance.suites import drift_alerts_checks, notifications_checks as nc

pytestmark = [pytest.mark.testbed, pytest.mark.breaks_setup]

SHORT = 15.0  # the testbed delivers in about a second (see event_to_notified_s)
NEVER = "app.status.operationState.phase in ['NeverHappens']"



@pytest.mark.breaks("suites.notifications_checks.sync_failure_reaches_slack",
                    "suites.notifications_checks.slack_message")
def test_sync_failed_check_fails_with_wrong_slack_token(slack_notifications, deploy_myapp, kube, argocd, target, waiter):
    n = slack_notifications(slack_token="xoxb-" + secrets.token_hex(16))  # not the token the Slack endpoint accepts
    app = deploy_myapp(changes={"metadata.annotations": n.subscriptions(sync_failed=True),
                                "spec.syncPolicy.retry": FAST_FAIL})
    # bound: the sync must fail first (a few seconds), then the rejected post is terminal
    sha = step2.commit_prod(app.repo, replicas=-1)
    message = fails_within(nc.sync_failure_reaches_slack, waiter, kube, argocd, target, n, app, sha, timeout=SHORT,
                           bound=SHORT + 30)
    assert "rejected" in message and "invalid_auth" in message and "auth_ok: False" in message, message
    assert n.slack_token not in message


@pytest.mark.breaks("suites.notifications_checks.template_notify")
def test_template_notify_check_fails_with_wrong_slack_api_url(slack_notifications, deploy_myapp, kube, argocd, target, waiter):
    n = slack_notifications(slack_api_url=f"{target.receiver.engine_url.rstrip('/')}/not-slack/api/")
    app = deploy_myapp()
    sent = step6.notify_on_demand(target, argocd, n, app.name)
    message = fails_within(nc.template_notify, waiter, kube, argocd, target, n, app.name, sent, timeout=SHORT,
                           bound=SHORT)
    assert "template notify app-sync-failed" in message and "failed to notify" in message and "404" in message, message


@pytest.mark.breaks("suites.notifications_checks.deployed_webhook")
def test_on_deployed_check_fails_when_trigger_never_fires(notifications, deploy_myapp, kube, argocd, target, waiter):
    n = notifications(on_deployed_when=NEVER)
    app = deploy_myapp(changes={"metadata.annotations": n.subscriptions(deployed=True)})
    message = fails_within(nc.deployed_webhook, waiter, kube, argocd, target, n, app, app.synced_revision,
                           timeout=SHORT, bound=SHORT)
    assert f"trigger {n.on_deployed}" in message and "no request for revision" in message, message


@pytest.mark.breaks("suites.notifications_checks.deployed_webhook")
def test_on_deployed_check_fails_without_the_webhook_token(notifications, deploy_myapp, kube, argocd, target, waiter):
    n = notifications(omit_webhook_secret=True)
    app = deploy_myapp(changes={"metadata.annotations": n.subscriptions(deployed=True)})
    message = fails_within(nc.deployed_webhook, waiter, kube, argocd, target, n, app, app.synced_revision,
                           timeout=SHORT, bound=SHORT)
    assert "Authorization hash differs" in message and f"literal ${n.webhook_token_key}" in message, message


@pytest.mark.breaks("suites.drift_alerts_checks.drift_is_alerted")
def test_drift_alert_check_fails_when_trigger_never_fires(notifications, deploy_myapp, kube, argocd, target, waiter):
    n = notifications(on_out_of_sync_when="app.status.sync.status == 'NeverHappens'")
    app = deploy_myapp(changes={"metadata.annotations": n.subscriptions(out_of_sync=True),
                                "spec.syncPolicy.automated.selfHeal": False})
    changed_at = step2.drift(kube, app.namespace, "hpa-scale")
    message = fails_within(drift_alerts_checks.drift_is_alerted, waiter, kube, argocd, target, n, app, since=changed_at,
                           timeout=SHORT, bound=SHORT + 10)
    assert f"trigger {n.on_out_of_sync}" in message and "no OutOfSync alert" in message, message


@pytest.mark.breaks("suites.drift_alerts_checks.ignored_replicas_stay_synced")
def test_ignore_differences_check_fails_without_ignore_differences(deploy_myapp, kube, argocd, waiter):
    app = deploy_myapp()  # the procedure's myapp-prod: no ignoreDifferences (the HPA pitfall)
    step2.drift(kube, app.namespace, "hpa-scale")
    message = fails_within(drift_alerts_checks.ignored_replicas_stay_synced, waiter, kube, argocd, app, hold=SHORT, bound=SHORT + 10)
    assert "the replica change counted as drift" in message and "ignoreDifferences" in message, message


def test_ignore_differences_check_passes_with_ignore_differences(deploy_myapp, kube, argocd, waiter):
    """The control: the same check holds once the pitfall's remedy is applied."""
    app = deploy_myapp(changes=IGNORE_REPLICAS)
    step2.drift(kube, app.namespace, "hpa-scale")
    drift_alerts_checks.ignored_replicas_stay_synced(waiter, kube, argocd, app, hold=5)


@pytest.mark.breaks("suites.notifications_checks.exactly_once_per_revision")
def test_once_per_revision_check_fails_when_a_revision_is_not_notified(notifications, deploy_myapp, argocd, waiter):
    """The on-deployed trigger never fires: the synced revision was notified zero times, not once."""
    n = notifications(on_deployed_when=NEVER)
    app = deploy_myapp(changes={"metadata.annotations": n.subscriptions(deployed=True)})
    message = fails_within(nc.exactly_once_per_revision, waiter, n, [app.synced_revision], window=3, bound=10)
    assert "a revision was not notified" in message and f"'{app.synced_revision[:10]}': 0" in message, message
