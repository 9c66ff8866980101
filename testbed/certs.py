"""PKI and credentials for the testbed's API server, made with the openssl CLI.

A CA, a serving certificate valid for the names Argo CD uses for the in-cluster
destination (kubernetes.default.svc), a service-account key pair, and a token
file with the identities the testbed hands out. Files holding secrets are 0600.
"""
from __future__ import annotations

import csv
import io
import secrets
import subprocess
from pathlib import Path

SERVING_SANS = [
    "DNS:localhost", "DNS:kubernetes", "DNS:kubernetes.default", "DNS:kubernetes.default.svc",
    "DNS:kubernetes.default.svc.cluster.local", "IP:127.0.0.1", "IP:10.96.0.1",
]

# name -> groups. admin drives the control plane and the suite; the others exist so
# RBAC tests have real, unprivileged identities to act as.
TOKEN_USERS = {
    "admin": ["system:masters"],
    "developer": [],
    "viewer": [],
}


def _openssl(*args: str, cwd: Path) -> None:
    proc = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {proc.stderr.strip().splitlines()[-1:]}")


def ensure_pki(pki: Path) -> None:
    """Create the CA, serving cert and SA keys once; later `up`s reuse them."""
    pki.mkdir(parents=True, exist_ok=True)
    if not (pki / "ca.crt").exists():
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
                 "-days", "3650", "-subj", "/CN=gitops-conformance-testbed-ca", cwd=pki)
    if not (pki / "apiserver.crt").exists():
        (pki / "san.ext").write_text(
            "subjectAltName=" + ",".join(SERVING_SANS) + "\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature,keyEncipherment\n")
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "apiserver.key", "-out", "apiserver.csr",
                 "-subj", "/CN=kube-apiserver", cwd=pki)
        _openssl("x509", "-req", "-in", "apiserver.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                 "-out", "apiserver.crt", "-days", "3650", "-extfile", "san.ext", cwd=pki)
    if not (pki / "sa.key").exists():
        _openssl("genrsa", "-out", "sa.key", "2048", cwd=pki)
        _openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=pki)
    for key in pki.glob("*.key"):
        key.chmod(0o600)


def ensure_tokens(path: Path) -> dict[str, str]:
    """The API server's --token-auth-file; returns user -> token."""
    if path.exists():
        tokens = {row[1]: row[0] for row in csv.reader(path.read_text().splitlines()) if row}
        if set(tokens) >= set(TOKEN_USERS):
            return tokens
    tokens = {user: secrets.token_hex(24) for user in TOKEN_USERS}
    buf = io.StringIO()
    writer = csv.writer(buf)
    for i, (user, groups) in enumerate(TOKEN_USERS.items()):
        writer.writerow([tokens[user], user, f"uid-{i}", ",".join(groups)] if groups else [tokens[user], user, f"uid-{i}"])
    path.write_text(buf.getvalue())
    path.chmod(0o600)
    return tokens


def kubeconfig(server: str, ca_file: Path, token: str, user: str = "admin", context: str = "testbed",
               namespace: str = "default") -> str:
    import base64

    ca = base64.b64encode(ca_file.read_bytes()).decode()
    return f"""apiVersion: v1
kind: Config
clusters:
- name: testbed
  cluster:
    server: {server}
    certificate-authority-data: {ca}
users:
- name: {user}
  user:
    token: {token}
contexts:
- name: {context}
  context:
    cluster: testbed
    user: {user}
    namespace: {namespace}
current-context: {context}
"""
