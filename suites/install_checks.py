"""Checks for the install item (procedure step 1): the API, the CLI login, the UI endpoint."""
from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import requests

from gitops_conformance.fixtures import checks, diagnose, hints
from gitops_conformance.fixtures.argocd import ArgoCD, admin_password
from gitops_conformance.fixtures.checks import Observation

API_TIMEOUT = 30.0


def api_version(waiter: checks.Waiter, argocd: ArgoCD, timeout: float = API_TIMEOUT) -> str:
    def probe() -> Observation:
        try:
            resp = argocd.request("GET", "/api/version", timeout=5)
        except requests.RequestException as exc:
            return Observation.pending(f"no answer from {argocd.url}: {type(exc).__name__}")
        if resp.status_code != 200:
            return Observation.pending(f"HTTP {resp.status_code} from /api/version")
        version = resp.json().get("Version", "")
        return Observation.ok(version) if version else Observation.pending(f"no Version in {resp.text[:100]}")

    return waiter.until(probe, timeout=timeout, what=f"Argo CD API at {argocd.url}",
                        expected="HTTP 200 from /api/version with a version",
                        remediation=hints.ON_FAILURE[1], diagnose=diagnose.components("argocd-server")).observed


def cli_login_and_list(argocd: ArgoCD, kube, target) -> str:
    """`argocd login <server> --username admin --plaintext|--insecure`, the password typed at its
    Password prompt (stdin: a `--password` flag would show in `ps`), then `argocd app list` on the
    stored session, with a private CLI config (the user's ~/.config/argocd is never touched) that
    is removed afterwards with the session token the login stored in it."""
    import urllib.parse

    password = admin_password(kube, target.argocd_namespace)
    server = urllib.parse.urlparse(argocd.url)
    with tempfile.TemporaryDirectory(prefix="argocd-cli-login-") as config_dir:
        user = ArgoCD(url=argocd.url, token="", env=argocd.env, config_dir=Path(config_dir), namespace=argocd.namespace)
        return _login_and_list(user, server.netloc, "--plaintext" if server.scheme == "http" else "--insecure", password)


def _login_and_list(user: ArgoCD, server: str, flag: str, password: str) -> str:
    proc = user.cli("login", server, "--username", "admin", flag, stdin=password + "\n", check=False)
    checks.expect(proc.returncode == 0, what="argocd login as admin", expected="login succeeds",
                  observed=(proc.stderr or proc.stdout).strip()[:300], remediation=hints.ON_FAILURE[1])
    proc = user.cli("app", "list", check=False)
    checks.expect(proc.returncode == 0 and "NAME" in proc.stdout, what="argocd app list after login",
                  expected="a table with a NAME header", observed=(proc.stderr or proc.stdout).strip()[:300],
                  remediation=hints.ON_FAILURE[1])
    return proc.stdout.splitlines()[0]


# What Argo CD's server serves at / when it was built from its Go module rather than a release
# image: the module's ui/dist/app holds only a `gitkeep` file and an empty assets folder (the
# release build compiles the UI into it), and the server lists that folder.
MODULE_PLACEHOLDER = '<a href="gitkeep">gitkeep</a>'
PLACEHOLDER_REASON = ("Argo CD's server was built from its Go module, which carries no compiled web UI "
                      "(ui/dist/app holds a placeholder): the UI endpoint answered, the page a user would "
                      "see was not proven")


@dataclasses.dataclass(frozen=True)
class UiPage:
    observed: str
    placeholder: bool  # the Go module's placeholder listing: the endpoint answers, there is no UI


def ui_answers(waiter: checks.Waiter, url: str, timeout: float = API_TIMEOUT) -> UiPage:
    """The web UI at `url`/: HTTP 200 text/html with Argo CD's own page. A server built from the
    Go module answers with its placeholder listing instead: returned as such (the test records
    a warning, never a pass); any other page fails at once."""
    def probe() -> Observation:
        try:
            resp = requests.get(f"{url}/", timeout=5, verify=False)
        except requests.RequestException as exc:
            return Observation.pending(f"no answer: {type(exc).__name__}")
        seen = f"HTTP {resp.status_code} {resp.headers.get('Content-Type', '')}"
        if resp.status_code != 200 or "text/html" not in resp.headers.get("Content-Type", ""):
            return Observation.pending(seen)
        if "Argo CD" in resp.text:
            return Observation.ok(seen)
        if MODULE_PLACEHOLDER in resp.text:
            return Observation.ok(seen + ", the Go module's placeholder listing (no compiled UI)")
        return Observation.failed(seen + ", but the page is not Argo CD's UI", detail=resp.text[:120].strip())

    observed = waiter.until(probe, timeout=timeout, what=f"web UI at {url}/",
                            expected="HTTP 200 text/html with Argo CD's page", remediation=hints.ON_FAILURE[1],
                            diagnose=diagnose.components("argocd-server")).observed
    return UiPage(observed, placeholder="placeholder" in observed)


def admin_secret_exists(kube, namespace: str) -> str:
    """Step 1 reads the initial admin password from argocd-initial-admin-secret."""
    secret = kube.get("secret", "argocd-initial-admin-secret", namespace)
    checks.expect(secret is not None and bool((secret.get("data") or {}).get("password")),
                  what=f"argocd-initial-admin-secret in {namespace}",
                  expected="the Secret exists with a password, as step 1 reads it",
                  observed="Secret not found" if secret is None else "Secret without a password key",
                  remediation=hints.ON_FAILURE[1])
    return "present, with a password"


def _minor(version: str) -> tuple[int, int] | None:
    import re

    m = re.search(r"v?(\d+)\.(\d+)", version)
    return (int(m.group(1)), int(m.group(2))) if m else None


def runner_tools(path: str, argocd_server_version: str, kube_server_version: str) -> str:
    """testinfra on the local host: each CLI exists and reports a version that fits."""
    import shlex

    import testinfra

    host = testinfra.get_host("local://")

    def run(command: str) -> tuple[int, str]:
        result = host.run(f"env PATH={shlex.quote(path)} {command}")
        return result.rc, (result.stdout or result.stderr).strip()

    found = {}
    for tool, command in (("argocd", "argocd version --client --short"),
                          ("kubectl", "kubectl version --client"),
                          ("kubectl-argo-rollouts", "kubectl-argo-rollouts version --short")):
        rc, out = run(command)
        checks.expect(rc == 0, what=f"{tool} on the runner", expected=f"`{command}` prints a version",
                      observed=f"exit {rc}: {out[:200]}", remediation="Install it as in the procedure's step 1 / step 5.")
        found[tool] = out.splitlines()[0] if out else ""
    client, server = _minor(found["argocd"]), _minor(argocd_server_version)
    checks.expect(client is not None and client == server, what="argocd CLI version",
                  expected=f"the server's major.minor ({argocd_server_version})", observed=found["argocd"],
                  remediation="Install the argocd CLI release matching the server (step 1).")
    kubectl, cluster = _minor(found["kubectl"].replace("Client Version:", "")), _minor(kube_server_version)
    checks.expect(kubectl is not None and cluster is not None and kubectl[0] == cluster[0] and abs(kubectl[1] - cluster[1]) <= 1,
                  what="kubectl version", expected=f"within one minor of the cluster ({kube_server_version})",
                  observed=found["kubectl"], remediation="kubectl's version skew policy: within one minor of the API server.")
    return "; ".join(f"{k}: {v}" for k, v in found.items())
