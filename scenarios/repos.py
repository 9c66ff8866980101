"""Step 1's repository access: `argocd repo add` over HTTPS with a token, and over SSH with
a deploy key plus the server's host key in Argo CD's known hosts."""
from __future__ import annotations

import tempfile
from pathlib import Path

from fixtures import redact
from fixtures.argocd import ArgoCD
from fixtures.gitrepo import GitRepo


def register_https(argocd: ArgoCD, repo: GitRepo, *, username: str | None = None, token: str | None = None,
                   name: str | None = None, check: bool = True):
    """`argocd repo add URL --username U --password TOKEN --name N` (the token never reaches output)."""
    token = repo.token if token is None else token
    redact.register_secret(token)
    args = ["repo", "add", repo.url, "--username", username or repo.username, "--password", token, "--upsert"]
    if name:
        args += ["--name", name]
    return argocd.cli(*args, check=check)


def add_known_host(argocd: ArgoCD, known_hosts_line: str) -> None:
    """`argocd cert add-ssh --batch`: the Git server's host key, so SSH repos can be verified."""
    with tempfile.NamedTemporaryFile("w", suffix=".known_hosts", delete=False) as f:
        f.write(known_hosts_line.strip() + "\n")
    try:
        argocd.cli("cert", "add-ssh", "--batch", "--from", f.name, "--upsert")
    finally:
        Path(f.name).unlink(missing_ok=True)


def remove_known_host(argocd: ArgoCD, host: str) -> None:
    argocd.cli("cert", "rm", host, "--cert-type", "ssh", check=False)


def register_ssh(argocd: ArgoCD, url: str, private_key: Path, *, name: str | None = None, check: bool = True):
    """`argocd repo add git@...: --ssh-private-key-path argocd-deploy-key`"""
    args = ["repo", "add", url, "--ssh-private-key-path", str(private_key), "--upsert"]
    if name:
        args += ["--name", name]
    return argocd.cli(*args, check=check)


def connection(argocd: ArgoCD, url: str) -> dict:
    """The repository's connectionState as Argo CD reports it (status, message)."""
    return argocd.repository(url).get("connectionState") or {}
