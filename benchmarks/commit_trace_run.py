"""The pytest side of benchmarks/commit_trace.py (not a test of the project: run by that script).

It uses the suite's own fixtures (a fresh repo and Application as auto_sync's tests make them)
and its own check, and writes one timeline per commit to $GITOPS_CONFORMANCE_TRACE_OUT."""
from __future__ import annotations

import json
import os
import time

from gitops_conformance.fixtures.changes import ChangeLog
from gitops_conformance.scenarios import step2_applications as step2
from gitops_conformance.suites import auto_sync_checks

SETTLE = 1.0  # seconds to keep watching after the check returned: late events still arrive


def _timeline(app, sha: str, started: float, marks: dict[str, float], apps: ChangeLog, deployments: ChangeLog) -> dict:
    mine = [c for c in apps.snapshot() if c.name == app.name]

    def first(pred) -> float | None:
        change = next((c for c in mine if pred(c)), None)
        return None if change is None else change.seen_at - started

    applied = deployments.spec_changed("Deployment", "myapp")
    return {
        **{k: v - started for k, v in marks.items()},
        "refresh": first(lambda c: c.annotation("argocd.argoproj.io/refresh")),
        "compared": first(lambda c: c.revision == sha),
        "sync": first(lambda c: c.revision == sha and c.operation == "Running"),
        "applied": None if applied is None else applied.seen_at - started,
        "done": first(lambda c: c.revision == sha and c.operation == "Succeeded" and c.sync == "Synced"
                      and c.health == "Healthy"),
    }


def test_trace_commits_to_synced(deploy_myapp, kube, argocd, waiter):
    app = deploy_myapp()
    notify = app.repo.on_push
    traces = []
    for i in range(int(os.environ.get("GITOPS_CONFORMANCE_TRACE_COMMITS", "10"))):
        replicas = 4 + i % 2  # the layout starts at 3: every commit changes the Deployment
        marks: dict[str, float] = {}

        def timed_notify(repo, before, after, changed):
            marks["pushed"] = time.time()
            notify(repo, before, after, changed)
            marks["webhook"] = time.time()

        app.repo.on_push = timed_notify
        with ChangeLog(kube, argocd.namespace, kinds=("Application",)) as apps, \
                ChangeLog(kube, app.namespace, kinds=("Deployment",)) as deployments:
            started = time.time()
            sha = step2.commit_prod(app.repo, replicas=replicas)
            auto_sync_checks.commit_is_synced(waiter, kube, argocd, app, sha, replicas=replicas)
            marks["seen"] = time.time()
            time.sleep(SETTLE)
        traces.append(_timeline(app, sha, started, marks, apps, deployments))
    app.repo.on_push = notify
    with open(os.environ["GITOPS_CONFORMANCE_TRACE_OUT"], "w") as out:
        json.dump(traces, out)
