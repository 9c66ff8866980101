"""Validation: notifications sent to Slack/webhooks on sync events (procedure Step 6).

Merges its keys into the shared argocd-notifications-cm/-secret (restored at teardown); the
procedure's Slack keys are the same for every test, so the Slack tests share one xdist group.
The Flux tests change nothing shared: their Providers and Alerts live in the test's namespace.
"""
from __future__ import annotations

import time

import pytest

from gitops_conformance.scenarios import step2_applications as step2
from gitops_conformance.scenarios import step6_notifications as step6
from gitops_conformance.scenarios.step6_notifications import FAST_FAIL
from gitops_conformance.suites import auto_sync_checks, notifications_checks as nc
from gitops_conformance.suites.flux import notifications_checks as flux_nc

pytestmark = pytest.mark.validation("notifications")


def test_successful_sync_sends_one_on_deployed_webhook_per_revision(notifications, deploy_myapp, kube, argocd,
                                                                    target, record_metric, record_check, waiter):
    n = notifications()
    app = deploy_myapp(changes={"metadata.annotations": n.subscriptions(deployed=True)})
    nc.deployed_webhook(waiter, kube, argocd, target, n, app, app.synced_revision)
    sha = step2.commit_prod(app.repo, replicas=3)  # a second revision
    auto_sync_checks.commit_is_synced(waiter, kube, argocd, app, sha, replicas=3)
    body, latency = nc.deployed_webhook(waiter, kube, argocd, target, n, app, sha)
    record_metric("event_to_notified_s", latency)
    record_check("on-deployed body", "app, revision, finishedAt and the bearer token", str(body), True)
    record_check("oncePer revision", "one webhook per revision",
                 nc.exactly_once_per_revision(waiter, n, [app.synced_revision, sha]), True)


@pytest.mark.xdist_group('notifications-slack')
def test_failed_sync_is_reported_to_slack(slack_notifications, deploy_myapp, kube, argocd, target, record_metric, waiter):
    n = slack_notifications()
    app = deploy_myapp(changes={"metadata.annotations": n.subscriptions(sync_failed=True),
                                "spec.syncPolicy.retry": FAST_FAIL})
    sha = step2.commit_prod(app.repo, replicas=-1)  # When: a manifest the API server rejects
    _, latency = nc.sync_failure_reaches_slack(waiter, kube, argocd, target, n, app, sha)
    record_metric("event_to_notified_s", latency)


@pytest.mark.xdist_group('notifications-slack')
def test_template_notify_delivers_on_demand(slack_notifications, deploy_myapp, kube, argocd, target, record_metric, waiter):
    n = slack_notifications()
    app = deploy_myapp()
    sent = step6.notify_on_demand(target, argocd, n, app.name)  # When: the on-demand send
    _, latency = nc.template_notify(waiter, kube, argocd, target, n, app.name, sent)
    record_metric("command_to_notified_s", latency)


# ----- Flux (--engine flux) ------------------------------------------------------------------

def test_flux_applied_commit_is_announced_to_the_webhook(deploy_myapp_flux, flux_alerts, kube, target, record_metric,
                                                         waiter):
    app = deploy_myapp_flux()
    alerts = flux_alerts(app)
    since = time.time()
    sha = step2.commit_prod(app.repo, replicas=3)
    record_metric("event_to_notified_s", flux_nc.webhook_gets_event(
        waiter, kube, target, alerts, app, contains=(sha,), since=since,
        what=f"webhook alert of Kustomization {app.name} applying {sha[:10]}"))


def test_flux_failed_apply_is_reported_to_slack(deploy_myapp_flux, flux_alerts, kube, target, record_metric, waiter):
    app = deploy_myapp_flux()
    alerts = flux_alerts(app)
    if not alerts.slack_token:
        pytest.skip("no Slack token: the receiver has none and GITOPS_CONFORMANCE_SLACK_TOKEN is unset")
    since = time.time()
    step2.commit_prod(app.repo, replicas=-1)  # the API server refuses it: the apply fails
    record_metric("event_to_notified_s", flux_nc.slack_gets_event(
        waiter, kube, target, alerts, app, contains=("replicas",), since=since,
        what=f"Slack alert of Kustomization {app.name} failing to apply replicas=-1"))
