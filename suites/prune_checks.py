"""The checks behind Validation item `prune` (the Common Pitfalls "Automatic prune disabled" and
"Missing finalizers"): what Git no longer declares leaves the cluster, in the right order, and
deleting an Application deletes (or, without the finalizer, orphans) its resources."""
from __future__ import annotations

import time

from gitops_conformance.fixtures import checks, hints, probes
from gitops_conformance.fixtures.argocd import ArgoCD
from gitops_conformance.fixtures.changes import ChangeLog
from gitops_conformance.fixtures.checks import Observation
from gitops_conformance.fixtures.kube import Kube
from gitops_conformance.scenarios.step2_applications import DeployedApp
from gitops_conformance.suites.auto_sync_checks import app_diagnosis, app_evidence

PRUNE = 60.0  # seconds, before --timeout-scale


def removed_manifest_is_pruned(waiter: checks.Waiter, kube: Kube, argocd: ArgoCD, app: DeployedApp, sha: str, *,
                               timeout: float = PRUNE) -> float:
    """After the commit `sha` that removed service.yaml from Git (scenarios step2.remove_service),
    the Service must be deleted from the cluster and the app synced at that commit. Returns
    seconds from the call (right after the push) to pruned."""
    t0 = time.monotonic()

    def pruned() -> Observation:
        gone = probes.absent(kube, "service", "myapp", app.namespace)()
        state = probes.app_state(argocd, app.name)
        seen = f"{gone.observed}; {state.describe()}"
        if gone.outcome is checks.Outcome.OK and state.revision == sha:
            return Observation.ok(seen)
        if state.operation_failed and state.operation_revision == sha:
            return Observation.failed(seen, "the sync of the removal failed")
        return Observation.pending(seen)

    waiter.until(
        probes.with_policy(argocd, app.name, pruned), timeout=timeout, what=f"prune of Service myapp removed from Git in {sha[:10]}",
        expected="Service myapp deleted from the cluster and the app synced at the removal commit",
        remediation=hints.PITFALLS["prune-disabled"] + " " + hints.ON_FAILURE[2],
        evidence=app_evidence(kube, argocd, app), diagnose=app_diagnosis(argocd, app))
    return time.monotonic() - t0


PRUNE_LAST_EVENTS = 30.0


def prune_last(waiter: checks.Waiter, changes: ChangeLog, app: DeployedApp, *,
               timeout: float = PRUNE_LAST_EVENTS) -> str:
    """PruneLast, observed: in the sync of the removal commit, the cluster saw Deployment myapp
    applied (its spec changed) strictly before Service myapp was pruned (deletion requested).
    Without PruneLast Argo CD prunes first, within the same wave. The order is the API server's
    own (resourceVersions, see fixtures.changes); both events must have been seen."""
    def both_seen() -> Observation:
        applied = changes.spec_changed("Deployment", "myapp")
        pruned = changes.deletion("Service", "myapp")
        seen = (f"apply: {applied.describe(changes.started_at) if applied else 'not seen'}; "
                f"prune: {pruned.describe(changes.started_at) if pruned else 'not seen'}"
                + (f"; watch errors: {changes.errors[-1]}" if changes.errors else ""))
        return Observation.ok(seen) if applied and pruned else Observation.pending(seen)

    what = f"PruneLast in the sync that removed Service myapp ({app.namespace})"
    seen = waiter.until(both_seen, timeout=timeout, what=what,
                        expected="the cluster's watch shows the Deployment's apply and the Service's prune",
                        remediation=hints.ON_FAILURE[2]).observed
    applied = changes.spec_changed("Deployment", "myapp")
    pruned = changes.deletion("Service", "myapp")
    checks.expect(pruned.resource_version > applied.resource_version, what=what,
                  expected="Service myapp pruned after Deployment myapp was applied (PruneLast=true in syncOptions)",
                  observed=f"the prune came first: {seen}",
                  remediation="Add PruneLast=true to spec.syncPolicy.syncOptions (procedure step 2). " + hints.ON_FAILURE[2])
    return seen


# ----- finalizer (Common Pitfall "Missing finalizers") ----------------------------------------

def app_deletion_outcome(waiter: checks.Waiter, kube: Kube, argocd: ArgoCD, app: DeployedApp,
                         finalizers: list[str], *, expect_cascade: bool, timeout: float = PRUNE) -> str:
    """After `kubectl delete application` (scenarios step2.delete_application, which saw the
    Application's `finalizers`): with the resources finalizer its Deployment must be deleted
    too; without it the Deployment stays behind, orphaned (the pitfall)."""
    had = f"the Application had finalizers {finalizers}"  # the cause, either way
    waiter.until(probes.absent(kube, "applications.argoproj.io", app.name, argocd.namespace), timeout=timeout,
                 what=f"deletion of Application {app.name}", expected="the Application is gone",
                 remediation=hints.ON_FAILURE[2])
    if expect_cascade:
        waiter.until(probes.absent(kube, "deployment", "myapp", app.namespace), timeout=timeout,
                     what=f"cascade of deleting {app.name} (resources finalizer; {had})",
                     expected="Deployment myapp deleted with its Application",
                     remediation=hints.PITFALLS["missing-finalizer"])
        return "Deployment deleted with the Application"
    still = kube.get("deployment", "myapp", app.namespace)
    checks.expect(still is not None and not still["metadata"].get("deletionTimestamp"),
                  what=f"deleting {app.name} without the resources finalizer ({had})",
                  expected="Deployment myapp left running (orphaned), as the pitfall says",
                  observed="Deployment deleted" if still is None else "Deployment being deleted",
                  remediation=hints.PITFALLS["missing-finalizer"])
    return "Deployment left behind, orphaned"
