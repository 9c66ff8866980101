"""Checks for rbac (procedure step 3): AppProject roles and boundaries hold.

Role tokens are real Argo CD project role JWTs (`argocd proj role create-token`); requests
made with them go to the same API a CI system would call.
"""
from __future__ import annotations

from gitops_conformance import redact
from gitops_conformance.fixtures import checks, hints
from gitops_conformance.fixtures.argocd import ArgoCD
from gitops_conformance.fixtures.checks import Observation

REMEDIATION = hints.ON_FAILURE[3]
IN_PROGRESS = "another operation is already in progress"


def _sync(client: ArgoCD, app: str):
    return client.request("POST", f"/api/v1/applications/{app}/sync", json={})


def can_get(client: ArgoCD, app: str, role: str) -> str:
    resp = client.request("GET", f"/api/v1/applications/{app}")
    observed = f"HTTP {resp.status_code} {redact.redact(resp.text[:150]) if resp.status_code != 200 else ''}".strip()
    checks.expect(resp.status_code == 200, what=f"role {role}: get application {app}",
                  expected="allowed (HTTP 200)", observed=observed, remediation=REMEDIATION)
    return observed


def cannot_sync(client: ArgoCD, app: str, role: str) -> str:
    resp = _sync(client, app)
    observed = f"HTTP {resp.status_code}: {redact.redact(resp.text[:200])}"
    # HTTP 400 "another operation is already in progress" is answered only after RBAC let the
    # request through: the role may sync, it merely met the app's own auto-sync
    allowed = resp.status_code < 300 or (resp.status_code == 400 and IN_PROGRESS in resp.text)
    checks.expect(resp.status_code == 403, what=f"role {role}: sync application {app}",
                  expected="denied (HTTP 403 permission denied): the role only grants get",
                  observed=observed + (" — the role grants sync" if allowed else ""),
                  remediation=REMEDIATION)
    return observed


def can_sync(waiter: checks.Waiter, client: ArgoCD, app: str, role: str, timeout: float = 30.0) -> str:
    """Allowed: HTTP 200. The app syncs itself (automated), so a request may meet a running
    operation (HTTP 400 "another operation is already in progress", answered only after RBAC
    allowed it): retry until the role's own sync starts; a 403 is terminal."""
    def probe() -> Observation:
        resp = _sync(client, app)
        observed = f"HTTP {resp.status_code}" + ("" if resp.status_code == 200 else f": {redact.redact(resp.text[:200])}")
        if resp.status_code == 200:
            return Observation.ok(observed)
        if resp.status_code == 400 and IN_PROGRESS in resp.text:
            return Observation.pending(observed)
        return Observation.failed(observed, "the sync request was refused")

    return waiter.until(probe, timeout=timeout, what=f"role {role}: sync application {app}",
                        expected="allowed (HTTP 200, sync operation started)", remediation=REMEDIATION).observed


def create_is_refused(result, what: str, phrase: str) -> str:
    """`argocd app create ... --project production` outside the project's bounds must be refused
    with the project's own message."""
    output = (result.stderr or result.stdout).strip()
    checks.expect(result.returncode != 0 and phrase in output, what=what,
                  expected=f"refused with the project's message ({phrase!r})",
                  observed=f"exit {result.returncode}: {output[-300:]}", remediation=REMEDIATION)
    return output.splitlines()[-1][-300:]
