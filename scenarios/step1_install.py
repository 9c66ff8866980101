"""Step 1, Argo CD installed and the Git repository added. The install itself is done when the
session opens its target (fixtures/install.py on a cluster, the testbed locally); here is what
Step 1 does with Git: `argocd repo add` over HTTPS with a token, and over SSH with a deploy key
(the `deploy_key` factory) plus the server's host key in Argo CD's known hosts.

The token is typed at the CLI's own `Password:` prompt (stdin), never passed as `--password`:
argv is world-readable in `ps`. The repository Secret Argo CD makes for each `repo add` gets
the run's label, so the session sweep removes it even when the test never reached teardown.
"""
from __future__ import annotations

import base64
import tempfile
from pathlib import Path
from typing import Callable

import pytest

from gitops_conformance import redact
from gitops_conformance.fixtures import checks, cleanup, names
from gitops_conformance.fixtures.argocd import ArgoCD
from gitops_conformance.fixtures.cleanup import Tracker
from gitops_conformance.fixtures.gitrepo import GitRepo
from gitops_conformance.fixtures.kube import Kube
from gitops_conformance.fixtures.peers import GitHost, generate_keypair


KNOWN_HOSTS_CM = "argocd-ssh-known-hosts-cm"


def register_https(argocd: ArgoCD, kube: Kube, repo: GitRepo, *, username: str | None = None,
                   token: str | None = None, name: str | None = None, check: bool = True):
    """`argocd repo add URL --username U --name N`, answering the Password prompt with the token."""
    token = repo.token if token is None else token
    redact.register_secret(token)
    args = ["repo", "add", repo.url, "--username", username or repo.username, "--upsert"]
    if name:
        args += ["--name", name]
    result = argocd.cli(*args, stdin=token + "\n", check=check)
    if result.returncode == 0:
        label_repository_secret(kube, argocd.namespace, repo.url)
    return result


def label_repository_secret(kube: Kube, namespace: str, url: str) -> list[str]:
    """Put the run label on the repository Secret(s) Argo CD stored for `url`; returns their names."""
    found = []
    for secret in kube.core.list_namespaced_secret(namespace, label_selector=cleanup.REPOSITORY_SECRET_TYPE).items:
        stored = base64.b64decode((secret.data or {}).get("url", "")).decode(errors="replace")
        if stored == url:
            found.append(secret.metadata.name)
    if found:
        kube.label("secret", found, namespace, {names.RUN_ID_LABEL: names.run_id()})
    return found


def add_known_host(argocd: ArgoCD, known_hosts_line: str, waiter: checks.Waiter | None = None, target=None) -> None:
    """`argocd cert add-ssh --batch`: the Git server's host key, so SSH repos can be verified.
    With `target`, also waits until the repo-server reads it (a ConfigMap volume: see
    repo_server_knows)."""
    with tempfile.NamedTemporaryFile("w", suffix=".known_hosts", delete=False) as f:
        f.write(known_hosts_line.strip() + "\n")
    try:
        argocd.cli("cert", "add-ssh", "--batch", "--from", f.name, "--upsert")
    finally:
        Path(f.name).unlink(missing_ok=True)
    if target is not None:
        repo_server_knows(waiter, target, known_hosts_line.split()[0], True)


def remove_known_host(argocd: ArgoCD, host: str) -> None:
    argocd.cli("cert", "rm", host, "--cert-type", "ssh", check=False)


def _names_host(line: str, host: str) -> bool:
    return bool(line.strip()) and not line.startswith("#") and host in line.split(" ", 1)[0].split(",")


def known_host_lines(kube: Kube, namespace: str, host: str) -> list[str]:
    """The lines of Argo CD's known hosts (argocd-ssh-known-hosts-cm) that name `host`."""
    data = (kube.get("configmap", KNOWN_HOSTS_CM, namespace) or {}).get("data") or {}
    return [line for line in data.get("ssh_known_hosts", "").splitlines() if _names_host(line, host)]


# The kubelet refreshes a ConfigMap volume at its sync period (1 min by default) plus its cache's
# TTL; the repo-server reads only the file. Measured on kind: tens of seconds.
KNOWN_HOSTS_PROPAGATION = 150.0


def repo_server_knows(waiter: checks.Waiter, target, host: str, present: bool,
                      timeout: float = KNOWN_HOSTS_PROPAGATION) -> None:
    """Waits until the known hosts file the repo-server reads names `host` (present) or no longer
    does, so what follows tests Argo CD's behaviour, not the volume's refresh."""
    if target.repo_server_file is None:
        return

    def probe() -> checks.Observation:
        text = target.repo_server_file(KNOWN_HOSTS_CM, "ssh_known_hosts")
        named = text is not None and any(_names_host(line, host) for line in text.splitlines())
        seen = f"the repo-server's ssh_known_hosts {'names' if named else 'does not name'} {host}"
        return checks.ok(seen) if named == present else checks.pending(seen)

    waiter.until(probe, timeout=timeout, what=f"{KNOWN_HOSTS_CM} as the repo-server reads it",
                 expected=f"{host} {'present' if present else 'absent'} in /app/config/ssh/ssh_known_hosts",
                 remediation="the kubelet refreshes ConfigMap volumes (argocd-ssh-known-hosts-cm is one) "
                             "within about a minute; check the repo-server pod's mounts and the kubelet")


def untrust_host(argocd: ArgoCD, kube: Kube, host: str, waiter: checks.Waiter | None = None,
                 target=None) -> Callable[[], None]:
    """`argocd cert rm HOST --cert-type ssh`; returns what puts its known-hosts lines back. With
    `target`, both wait until the repo-server's file shows the change."""
    saved = known_host_lines(kube, argocd.namespace, host)
    remove_known_host(argocd, host)
    if target is not None:
        repo_server_knows(waiter, target, host, False)

    def restore_known_host() -> None:
        for line in saved:
            add_known_host(argocd, line, waiter, target)

    return restore_known_host


def declare_repository_secret(kube: Kube, namespace: str, name: str, url: str, username: str, password: str) -> None:
    """A repository as Argo CD's declarative setup documents it (a labelled Secret), with the
    run label so the sweep removes it; the password travels on stdin (kubectl apply -f -)."""
    redact.register_secret(password)
    kube.apply({"apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": name, "namespace": namespace,
                             "labels": {"argocd.argoproj.io/secret-type": "repository", **names.standard_labels()}},
                "stringData": {"type": "git", "url": url, "username": username, "password": password}})


def register_ssh(argocd: ArgoCD, kube: Kube, url: str, private_key: Path, *, name: str | None = None,
                 check: bool = True):
    """`argocd repo add git@...: --ssh-private-key-path argocd-deploy-key`"""
    args = ["repo", "add", url, "--ssh-private-key-path", str(private_key), "--upsert"]
    if name:
        args += ["--name", name]
    result = argocd.cli(*args, check=check)
    if result.returncode == 0:
        label_repository_secret(kube, argocd.namespace, url)
    return result


def connection(argocd: ArgoCD, url: str) -> dict:
    """The repository's connectionState as Argo CD reports it (status, message)."""
    return argocd.repository(url).get("connectionState") or {}


@pytest.fixture
def deploy_key(git_host: GitHost, tracker: Tracker, tmp_path_factory) -> Callable[[GitRepo], tuple]:
    """deploy_key(repo) -> (private key path, SSH URL): `ssh-keygen -t ed25519 -f argocd-deploy-key`
    and the public key added as a read-only deploy key on the Git host. Skipped where the suite
    cannot add keys (a --git-url repository on a host of the user's). The key is removed at
    teardown; it is labelled with the run id, so the session sweep finds it otherwise."""
    if not (git_host.ssh_base_url and git_host.deploy_keys):
        pytest.skip("SSH deploy keys can only be added on the suite's own Git host (not with --git-url)")

    def make(repo: GitRepo) -> tuple:
        key, pub = generate_keypair(tmp_path_factory.mktemp("deploy-key"), "argocd-deploy-key",
                                    comment=names.run_label())
        git_host.deploy_keys.authorize(pub, read_only=True)
        tracker.finalizers.append(lambda: git_host.deploy_keys.revoke(pub))
        return key, git_host.ssh_url(repo.url)

    return make
