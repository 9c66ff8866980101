"""The check behind Validation item `auto_sync` (procedure step 2): a commit reaches the
cluster. Also the evidence and diagnosis of the myapp Application that the Step 2 items
(auto_sync, self_heal, prune) share.

Every check function either returns what it measured or raises `CheckFailed` saying what was
expected, what was seen, and the procedure's "On failure" hint.
"""
from __future__ import annotations

import time

from gitops_conformance.fixtures import checks, diagnose, hints, probes
from gitops_conformance.fixtures.argocd import ArgoCD
from gitops_conformance.fixtures.checks import Observation
from gitops_conformance.fixtures.kube import Kube
from gitops_conformance.scenarios import step2_applications as step2
from gitops_conformance.scenarios.step2_applications import DeployedApp

# Bounds (seconds, before --timeout-scale). The testbed answers in seconds; these leave
# room for a busy CI runner and for a real cluster's reconciliation.
SYNC_AFTER_COMMIT = 60.0


def app_evidence(kube: Kube, argocd: ArgoCD, app: DeployedApp):
    def collect() -> dict[str, str]:
        return {"application": kube.get_yaml("applications.argoproj.io", app.name, argocd.namespace),
                "events": kube.events(app.namespace)}
    return collect


def app_diagnosis(argocd: ArgoCD, app: DeployedApp) -> diagnose.Diagnosis:
    return diagnose.for_app(argocd, app.name, namespace=app.namespace, deployments=["myapp"])


def commit_is_live(waiter: checks.Waiter, kube: Kube, namespace: str, image: str, engine_has_it: checks.Probe, *,
                   tag: str | None, replicas: int | None, timeout: float, **until) -> float:
    """The shape every engine's auto-sync check shares: wait until the engine reports the commit
    applied (`engine_has_it`) and the Deployment myapp shows its change (`tag`, `replicas`);
    `until` says the rest (what, expected, remediation, evidence, diagnose). Returns seconds
    from the call (right after the push) to both."""
    t0 = time.monotonic()
    waiter.until(checks.all_of(engine_has_it,
                               probes.deployment(kube, namespace, "myapp", replicas=replicas,
                                                 image=f"{image}:{tag}" if tag else None)),
                 timeout=timeout, **until)
    return time.monotonic() - t0


def commit_is_synced(waiter: checks.Waiter, kube: Kube, argocd: ArgoCD, app: DeployedApp, sha: str, *,
                     tag: str | None = None, replicas: int | None = None, timeout: float = SYNC_AFTER_COMMIT) -> float:
    """After a commit `sha` to the prod overlay (scenarios.step2_applications.commit_prod: `tag`, `replicas`),
    the app must become Synced at that commit and the Deployment must change. Returns seconds
    from the call (right after the push) to synced."""
    change = step2.prod_change(tag=tag, replicas=replicas)
    synced = probes.app_synced(argocd, app.name, revision=sha)

    def seen_commit() -> Observation:
        obs = synced()
        state = probes.app_state(argocd, app.name)
        if obs.outcome is checks.Outcome.PENDING and state.revision != sha:
            return Observation.pending(f"{obs.observed} (Git is at {sha[:10]}: the engine has not picked up the commit)")
        return obs

    return commit_is_live(
        waiter, kube, app.namespace, app.image, seen_commit, tag=tag, replicas=replicas, timeout=timeout,
        what=f"auto-sync of commit {sha[:10]} ({change}) to {app.name}",
        expected=f"application Synced at {sha[:10]} and Deployment myapp with {change}",
        remediation=hints.for_item("auto_sync") + " Check that the Git webhook reaches Argo CD or that "
                    "timeout.reconciliation polls within the bound.",
        evidence=app_evidence(kube, argocd, app), diagnose=app_diagnosis(argocd, app))
