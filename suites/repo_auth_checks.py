"""Checks for repo_auth (procedure step 1): the repository shows a successful connection over
HTTP(S) with a token and over SSH with a deploy key; bad credentials fail readably."""
from __future__ import annotations

from gitops_conformance.fixtures import checks, diagnose, hints
from gitops_conformance.fixtures.argocd import ArgoCD
from gitops_conformance.fixtures.checks import Observation
from gitops_conformance.scenarios import step1_install as step1

CONNECT = 30.0


def connection_successful(waiter: checks.Waiter, argocd: ArgoCD, url: str, how: str, timeout: float = CONNECT) -> str:
    """`argocd repo list` shows STATUS Successful for the repository (as `argocd repo get`)."""
    def probe() -> Observation:
        state = step1.connection(argocd, url)
        seen = f"{state.get('status', '?')}: {state.get('message', '')}".strip(": ")
        if state.get("status") == "Successful":
            return Observation.ok(seen)
        if state.get("status") == "Failed":
            return Observation.failed(seen, "Argo CD could not connect to the repository")
        return Observation.pending(seen)

    return waiter.until(probe, timeout=timeout, what=f"connection to {url} over {how}",
                        expected="connection state Successful", remediation=hints.ON_FAILURE[1],
                        diagnose=diagnose.components(diagnose.REPO_SERVER)).observed


def add_is_refused(result, what: str, readable: tuple[str, ...]) -> str:
    """`argocd repo add` with bad credentials must fail, with a message a user can act on."""
    output = (result.stderr or result.stdout).strip()
    checks.expect(result.returncode != 0, what=what, expected="argocd repo add refuses the repository",
                  observed=f"exit 0: {output[:200]}", remediation=hints.ON_FAILURE[1])
    checks.expect(any(word in output.lower() for word in readable), what=what,
                  expected=f"an error naming the cause (one of: {', '.join(readable)})",
                  observed=output[:300], remediation=hints.ON_FAILURE[1])
    return output.splitlines()[-1][:300] if output else ""
