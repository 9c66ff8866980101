"""Checks for repo_auth under Flux (procedure step 1): a GitRepository over HTTPS with a token
and over SSH with a deploy key + known_hosts fetches the repository (Ready=True with an
artifact at the pushed commit); wrong credentials are refused readably (Ready=False, the
message naming the cause), read from the GitRepository's own status condition.
"""
from __future__ import annotations

from gitops_conformance.fixtures import checks, hints
from gitops_conformance.fixtures.checks import Observation
from gitops_conformance.fixtures.flux import GITREPOSITORY, Flux
from gitops_conformance.scenarios.flux.step2_kustomizations import FluxSource

CONNECT = 45.0  # the first fetch is at once; source-controller retries a failure with backoff
REFUSED = 45.0
FLUX_SOURCE_HINT = ("Flux reads the credentials from the GitRepository's spec.secretRef: username/password "
                    "(a token) and ca.crt over HTTPS, identity and known_hosts over SSH; "
                    "`flux get sources git -A` shows its Ready message.")


def _state(flux: Flux, source: FluxSource) -> tuple[dict, str, str]:
    """(Ready condition, artifact revision, one line saying both)."""
    obj = flux.kube.get(GITREPOSITORY, source.name, source.namespace)
    if obj is None:
        return {}, "", f"GitRepository {source.namespace}/{source.name} not found"
    ready = flux.ready_condition(GITREPOSITORY, source.name, source.namespace)
    revision = (((obj.get("status") or {}).get("artifact") or {}).get("revision", ""))
    seen = (f"GitRepository {source.namespace}/{source.name}: Ready={ready.get('status', '?')} "
            f"reason={ready.get('reason', '-')} message={ready.get('message', '')!r} artifact={revision or '-'}")
    return ready, revision, seen


def _evidence(flux: Flux, source: FluxSource):
    return lambda: {"gitrepository": flux.kube.get_yaml(GITREPOSITORY, source.name, source.namespace),
                    "events": flux.kube.events(source.namespace)}


def source_is_ready(waiter: checks.Waiter, flux: Flux, source: FluxSource, sha: str, *,
                    timeout: float = CONNECT) -> str:
    """The GitRepository is Ready=True with an artifact of the pushed commit: source-controller
    authenticated and fetched. Ready=False (a failed fetch, not progress) is terminal."""
    def probe() -> Observation:
        ready, revision, seen = _state(flux, source)
        if ready.get("status") == "True" and sha in revision:
            return Observation.ok(seen)
        if ready.get("status") == "False" and ready.get("reason") not in ("Progressing", None):
            return Observation.failed(seen, "source-controller could not fetch the repository")
        return Observation.pending(seen)

    return waiter.until(probe, timeout=timeout, what=f"Flux GitRepository of {source.url} over {source.how}",
                        expected=f"Ready=True with an artifact at {sha[:10]}",
                        remediation=hints.ON_FAILURE[1] + " " + FLUX_SOURCE_HINT,
                        evidence=_evidence(flux, source)).observed


def source_is_refused(waiter: checks.Waiter, flux: Flux, source: FluxSource, readable: tuple[str, ...], *,
                      timeout: float = REFUSED) -> str:
    """Wrong credentials: the GitRepository must end Ready=False with a message naming the
    cause (one of `readable`), and no artifact. Ready=True means they were not checked: terminal."""
    def probe() -> Observation:
        ready, revision, seen = _state(flux, source)
        if ready.get("status") == "True" or revision:
            return Observation.failed(seen, "source-controller fetched with credentials that should be refused")
        if ready.get("status") != "False" or ready.get("reason") in ("Progressing", None):
            return Observation.pending(seen)
        message = ready.get("message", "").lower()
        if any(word in message for word in readable):
            return Observation.ok(seen)
        return Observation.failed(seen, f"refused, but the message names none of: {', '.join(readable)}")

    return waiter.until(probe, timeout=timeout, what=f"Flux GitRepository of {source.url} over {source.how}",
                        expected=f"Ready=False with a message naming the cause (one of: {', '.join(readable)})",
                        remediation=hints.ON_FAILURE[1] + " " + FLUX_SOURCE_HINT,
                        evidence=_evidence(flux, source)).observed
