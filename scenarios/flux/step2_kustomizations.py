"""Step 2 the Flux way: the same myapp layout in Git, deployed by a GitRepository (HTTPS with a
token and the Git server's CA, as a user connects a private repository) and a Kustomization of
the prod overlay with prune on; a GitHub-type Receiver so the Git host's push webhook makes
Flux fetch at once instead of waiting for its interval.

Every object lives in the test's own namespace (the one the overlay deploys to), so deleting
the namespace at teardown removes them all; each is labelled with the run id for the sweep.
"""
from __future__ import annotations

import dataclasses
import secrets
import time
from typing import Callable

import pytest

from gitops_conformance import redact
from gitops_conformance.fixtures import checks, hints, names
from gitops_conformance.fixtures.flux import (GITREPOSITORY, KUSTOMIZATION, KUSTOMIZE, NOTIFICATION, RECEIVER,
                                              SOURCE, Flux)
from gitops_conformance.fixtures.gitrepo import GitRepo
from gitops_conformance.fixtures.kube import Kube
from gitops_conformance.fixtures.plugin import Diagnostics
from gitops_conformance.fixtures.probes import deployment

from .. import step2_applications as myapp

FIRST_APPLY_TIMEOUT = 90.0
# Test-friendly timings (Flux's own examples use 1m / 10m): the webhook brings every commit in;
# the source interval is only the fallback, and the Kustomization's interval is how often Flux
# re-applies (and so corrects drift) without a new revision.
SOURCE_INTERVAL = "1m"
KUSTOMIZATION_INTERVAL = "30s"


@dataclasses.dataclass
class FluxApp:
    """Step 2 done the Flux way: myapp's layout in a fresh repo, applied by a Kustomization."""

    name: str                  # the GitRepository, Kustomization and Receiver share it
    namespace: str             # where the Flux objects live and myapp is deployed
    repo: GitRepo
    applied_revision: str
    webhook_path: str = ""     # the Receiver's status.webhookPath ("" without a receiver)
    image: str = myapp.DEFAULT_IMAGE


def _meta(name: str, namespace: str) -> dict:
    return {"name": name, "namespace": namespace, "labels": names.standard_labels()}


def auth_secret(name: str, namespace: str, username: str, token: str, ca_pem: str | None) -> dict:
    """The GitRepository's secretRef: basic auth (a token as password) and the server's CA."""
    data = {"username": username, "password": token}
    if ca_pem:
        data["ca.crt"] = ca_pem
    return {"apiVersion": "v1", "kind": "Secret", "metadata": _meta(name, namespace), "type": "Opaque",
            "stringData": data}


def ssh_auth_secret(name: str, namespace: str, identity: str, known_hosts: str) -> dict:
    """The GitRepository's secretRef over SSH: the deploy key's private half and the hosts
    whose keys are trusted (Flux refuses SSH without known_hosts)."""
    return {"apiVersion": "v1", "kind": "Secret", "metadata": _meta(name, namespace), "type": "Opaque",
            "stringData": {"identity": identity, "known_hosts": known_hosts.strip() + "\n"}}


# What a refused GitRepository's Ready message says, in the words a user acts on (go-git's
# "authentication required" for a rejected token; knownhosts' "key is unknown" / "key mismatch").
AUTH_REFUSED = ("authentication required", "authentication failed", "401", "unauthorized")
HOST_KEY_REFUSED = ("knownhosts", "host key", "key is unknown", "key mismatch")


def known_hosts_of_another_host(directory) -> str:
    """A known_hosts that trusts some other host's key (a fresh one): the Git server's host key
    is unknown to it, as when a user copies another server's line."""
    from gitops_conformance.fixtures.peers import generate_keypair

    _, public = generate_keypair(directory, "other-host-key")
    return f"git.example.invalid {' '.join(public.split()[:2])}"


def git_repository(name: str, namespace: str, url: str, secret: str, interval: str = SOURCE_INTERVAL) -> dict:
    return {"apiVersion": SOURCE, "kind": "GitRepository", "metadata": _meta(name, namespace),
            "spec": {"interval": interval, "url": url, "ref": {"branch": "main"}, "secretRef": {"name": secret},
                     "timeout": "30s"}}


def kustomization(name: str, namespace: str, path: str, *, prune: bool = True,
                  interval: str = KUSTOMIZATION_INTERVAL, source: str | None = None,
                  source_namespace: str | None = None, depends_on: tuple[str, ...] = (), wait: bool = False,
                  service_account: str | None = None) -> dict:
    """A Kustomization of `path` from the GitRepository `source` (default: its own name).
    depends_on: Kustomizations (same namespace) that must be Ready first; wait: Ready only once
    what it applied is healthy; service_account: apply as that ServiceAccount (multi-tenancy)."""
    source_ref = {"kind": "GitRepository", "name": source or name}
    if source_namespace:
        source_ref["namespace"] = source_namespace
    spec = {"interval": interval, "path": f"./{path}", "prune": prune, "timeout": "1m", "sourceRef": source_ref}
    if depends_on:
        spec["dependsOn"] = [{"name": d} for d in depends_on]
    if wait:
        spec["wait"] = True
    if service_account:
        spec["serviceAccountName"] = service_account
    return {"apiVersion": KUSTOMIZE, "kind": "Kustomization", "metadata": _meta(name, namespace), "spec": spec}


def receiver(name: str, namespace: str, secret: str) -> dict:
    return {"apiVersion": NOTIFICATION, "kind": "Receiver", "metadata": _meta(name, namespace),
            "spec": {"type": "github", "events": ["ping", "push"], "secretRef": {"name": secret},
                     "resources": [{"apiVersion": SOURCE, "kind": "GitRepository", "name": name}]}}


def https_url(repo: GitRepo, https_base_url: str | None) -> str:
    """The repository's HTTPS address: Flux refuses basic auth over plain HTTP."""
    if not https_base_url:
        pytest.skip("this Git host has no HTTPS endpoint (Flux sends credentials over HTTPS only)")
    return f"{https_base_url}/{repo.url.rstrip('/').rsplit('/', 1)[-1]}"


@dataclasses.dataclass(frozen=True)
class FluxSource:
    """A GitRepository of step 1 (repository connection), and how it authenticates."""

    name: str
    namespace: str
    url: str
    how: str   # "HTTPS with a token", "SSH with a deploy key"


@pytest.fixture
def flux_git_source(kube: Kube, diagnostics: Diagnostics, namespace: Callable[..., str],
                    unique: Callable[[str], str]) -> Callable[..., FluxSource]:
    """flux_git_source(url, how, secret_doc_maker) -> a GitRepository of `url` in a fresh
    namespace, its Secret made by `secret_doc_maker(name, namespace)` (auth_secret or
    ssh_auth_secret). Deleted with the namespace at teardown."""
    def make(url: str, how: str, secret: Callable[[str, str], dict]) -> FluxSource:
        ns, name = namespace("auth"), unique("source")
        diagnostics.objects.append((GITREPOSITORY, name, ns))
        diagnostics.components = ["source-controller"]
        kube.apply([secret(f"{name}-auth", ns), git_repository(name, ns, url, f"{name}-auth")])
        return FluxSource(name=name, namespace=ns, url=url, how=how)

    return make


def wait_source_ready(waiter: checks.Waiter, flux: Flux, name: str, namespace: str, sha: str,
                      timeout: float = 45.0) -> None:
    """Set-up: the GitRepository has an artifact of `sha`, so Kustomizations made next start from
    it (made earlier, they first report "Source artifact not found")."""
    def probe() -> checks.Observation:
        obj = flux.kube.get(GITREPOSITORY, name, namespace) or {}
        revision = ((obj.get("status") or {}).get("artifact") or {}).get("revision", "")
        ready = flux.ready_condition(GITREPOSITORY, name, namespace)
        seen = f"GitRepository {namespace}/{name}: Ready={ready.get('status', '?')} {ready.get('message', '')}"
        return checks.Observation.ok(seen) if sha in revision else checks.Observation.pending(seen)

    waiter.until(probe, timeout=timeout, what=f"GitRepository {namespace}/{name} fetched (set-up)",
                 expected=f"an artifact at {sha[:10]}", remediation=hints.ON_FAILURE[1])


def wait_receiver_path(waiter: checks.Waiter, flux: Flux, name: str, namespace: str, timeout: float = 30.0) -> str:
    """The Receiver's webhook path, once notification-controller has made it Ready."""
    def probe() -> checks.Observation:
        obj = flux.kube.get(RECEIVER, name, namespace) or {}
        path = (obj.get("status") or {}).get("webhookPath", "")
        ready = flux.ready_condition(RECEIVER, name, namespace)
        seen = f"Receiver {namespace}/{name}: Ready={ready.get('status', '?')} {ready.get('message', '')} path={path or '-'}"
        return checks.Observation.ok(seen) if path and ready.get("status") == "True" else checks.Observation.pending(seen)

    waiter.until(probe, timeout=timeout, what=f"Receiver {namespace}/{name} ready",
                 expected="Ready=True with a status.webhookPath",
                 remediation="notification-controller must be running and watching Receivers")
    return flux.kube.get(RECEIVER, name, namespace)["status"]["webhookPath"]


def connect_receiver(kube: Kube, flux: Flux, waiter: checks.Waiter, repo: GitRepo, name: str, namespace: str) -> str:
    """A GitHub-type Receiver (and its token Secret) for the GitRepository `name`, and the
    repo's pushes announced to it, as the Git host's webhook would. Returns its webhook path."""
    token = secrets.token_hex(20)
    redact.register_secret(token)
    kube.apply([{"apiVersion": "v1", "kind": "Secret", "metadata": _meta(f"{name}-webhook", namespace),
                 "type": "Opaque", "stringData": {"token": token}},
                receiver(name, namespace, f"{name}-webhook")])
    path = wait_receiver_path(waiter, flux, name, namespace)

    def on_push(r: GitRepo, before: str, after: str, changed: list[str]) -> None:
        resp = flux.notify_push(path, token, r.web_url, r.branch, before, after, changed)
        if resp.status_code >= 300:
            raise AssertionError(f"Flux's receiver refused the push event: HTTP {resp.status_code} {resp.text[:200]}")

    repo.on_push = on_push
    return path


@pytest.fixture
def connect_flux(kube: Kube, flux: Flux, diagnostics: Diagnostics, target, settings,
                 waiter: checks.Waiter) -> Callable[..., str]:
    """connect_flux(repo, name, namespace, path, *, webhook=True, source_interval=..., **kustomization)
    -> the Receiver's webhook path ("" without one). Step 2's wiring of one repository, as every
    Flux scenario makes it: the HTTPS token Secret, the GitRepository `name`, a Kustomization
    `name` of `path` (`kustomization` options: prune, interval, ...) and, unless `webhook=False`
    or --no-webhook, a Receiver the repository's pushes are announced to."""
    def connect(repo: GitRepo, name: str, ns: str, path: str, *, webhook: bool = True,
                source_interval: str = SOURCE_INTERVAL, **kustomization_options) -> str:
        diagnostics.objects += [(GITREPOSITORY, name, ns), (KUSTOMIZATION, name, ns)]
        kube.apply([auth_secret(f"{name}-auth", ns, repo.username, repo.token, target.git.https_ca_pem),
                    git_repository(name, ns, https_url(repo, target.git.https_base_url), f"{name}-auth",
                                   source_interval),
                    kustomization(name, ns, path, **kustomization_options)])
        if not webhook or settings.no_webhook:
            return ""
        diagnostics.objects.append((RECEIVER, name, ns))
        return connect_receiver(kube, flux, waiter, repo, name, ns)

    return connect


def leave_replicas_to_the_cluster(repo: GitRepo) -> None:
    """The Flux answer to the pitfall "Ignoring HPA-managed replicas": Git does not set
    spec.replicas (neither the base nor the prod overlay), so kustomize-controller's server-side
    apply never owns the field and leaves what an HPA (or `kubectl scale`) sets."""
    base = repo.read_yaml("apps/myapp/base/deployment.yaml")[0]
    base["spec"].pop("replicas", None)
    repo.write_yaml("apps/myapp/base/deployment.yaml", base)
    path = f"{myapp.PROD_PATH}/kustomization.yaml"
    overlay = repo.read_yaml(path)[0]
    overlay.pop("replicas", None)
    repo.write_yaml(path, overlay)


@pytest.fixture
def deploy_myapp_flux(kube: Kube, flux: Flux, diagnostics: Diagnostics, connect_flux: Callable[..., str],
                      git_repo: Callable[..., GitRepo], namespace: Callable[..., str], unique: Callable[[str], str],
                      waiter: checks.Waiter) -> Callable[..., FluxApp]:
    """deploy_myapp_flux(**changes) -> FluxApp, applied at its first commit. `webhook=False`
    leaves the Receiver out (a self-test: then only the source's interval brings commits in);
    `source_interval`, `interval` (the Kustomization's) and `prune` break the setup on purpose;
    `replicas_in_git=False` leaves spec.replicas to the cluster (an HPA's)."""

    def make(*, webhook: bool = True, source_interval: str = SOURCE_INTERVAL, prune: bool = True,
             interval: str = KUSTOMIZATION_INTERVAL, replicas_in_git: bool = True) -> FluxApp:
        repo = git_repo("myapp")
        ns = namespace("prod")
        myapp.write_layout(repo, ns)
        if not replicas_in_git:
            leave_replicas_to_the_cluster(repo)
        sha = repo.commit_and_push("Add myapp application manifests")
        name = unique("myapp")
        diagnostics.components = ["source-controller", "kustomize-controller", "notification-controller"]
        path = connect_flux(repo, name, ns, myapp.PROD_PATH, webhook=webhook, source_interval=source_interval,
                            prune=prune, interval=interval)
        replicas = 5 if replicas_in_git else None
        waiter.until(
            checks.all_of(applied_at(flux, name, ns, sha), deployment(kube, ns, "myapp", replicas=replicas)),
            timeout=FIRST_APPLY_TIMEOUT, what=f"first apply of Kustomization {ns}/{name} (procedure step 2)",
            expected=f"Ready at {sha[:10]}, Deployment myapp with {replicas or 'its'} replicas available in {ns}",
            remediation=hints.ON_FAILURE[2])
        return FluxApp(name=name, namespace=ns, repo=repo, applied_revision=sha, webhook_path=path)

    return make


RECONCILE_REQUESTED = "reconcile.fluxcd.io/requestedAt"  # what `flux reconcile kustomization` sets


def request_reconcile(kube: Kube, app: "FluxApp") -> str:
    """`flux reconcile kustomization <app>` (When): kustomize-controller applies again now instead of
    at its interval. Returns the request's token, which status.lastHandledReconcileAt echoes."""
    requested = str(time.time())
    kube.kubectl("-n", app.namespace, "annotate", "--overwrite", KUSTOMIZATION, app.name,
                 f"{RECONCILE_REQUESTED}={requested}")
    return requested


def applied_at(flux: Flux, name: str, namespace: str, sha: str):
    """Probe: the Kustomization is Ready with lastAppliedRevision at `sha`; a failed apply of
    that revision is terminal."""
    def probe() -> checks.Observation:
        s = flux.kustomization(name, namespace)
        if not s.exists:
            return checks.Observation.pending(s.describe())
        if s.operation_failed and s.operation_revision == sha:
            return checks.Observation.failed(s.describe(), "the Kustomization failed to apply that revision")
        done = s.sync_status == "Synced" and s.revision == sha
        return checks.Observation.ok(s.describe()) if done else checks.Observation.pending(s.describe())
    return probe
