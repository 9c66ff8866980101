"""Step 3's project roles, acted as: a client holding a token of an AppProject role."""
from __future__ import annotations

from fixtures import redact
from fixtures.argocd import ArgoCD


def role_token(argocd: ArgoCD, project: str, role: str) -> ArgoCD:
    """`argocd proj role create-token <project> <role>`: an API client acting as that role."""
    token = argocd.cli("proj", "role", "create-token", project, role, "--token-only").stdout.strip()
    redact.register_secret(token)
    return argocd.with_token(token)
