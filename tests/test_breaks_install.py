"""The install checks must be able to fail: each test breaks Step 1's setup on purpose (a
wrong admin password, a stopped API server, a runner without the procedure's CLIs) and
asserts the check FAILS within its bound, naming the cause. Local testbed, run serially
(one stops the shared argocd-server and one rewrites argocd-initial-admin-secret; both are
restored)."""
from __future__ import annotations

import base64
import contextlib
import functools
import http.server
import secrets
import threading

import pytest

from gitops_conformance.suites import install_checks
from tests.breaking import fails_within

pytestmark = [pytest.mark.testbed, pytest.mark.breaks_setup]

SHORT = 5.0
ADMIN_SECRET = "argocd-initial-admin-secret"


@pytest.mark.breaks("suites.install_checks.cli_login_and_list")
def test_cli_login_check_fails_with_a_wrong_admin_password(argocd, kube, target):
    """argocd-initial-admin-secret no longer holds the admin's password (it was rotated, or the
    secret re-created): the procedure's `argocd login` with it is refused, and the check says so."""
    saved = kube.core.read_namespaced_secret(ADMIN_SECRET, target.argocd_namespace).data["password"]
    wrong = base64.b64encode(("wrong-" + secrets.token_hex(8)).encode()).decode()
    kube.core.patch_namespaced_secret(ADMIN_SECRET, target.argocd_namespace, {"data": {"password": wrong}})
    try:
        message = fails_within(install_checks.cli_login_and_list, argocd, kube, target, bound=60)
    finally:
        kube.core.patch_namespaced_secret(ADMIN_SECRET, target.argocd_namespace, {"data": {"password": saved}})
    assert "argocd login as admin" in message and "Invalid username or password" in message, message
    install_checks.cli_login_and_list(argocd, kube, target)  # and the restored one logs in


@pytest.mark.breaks("suites.install_checks.ui_answers")
def test_ui_check_fails_when_the_server_is_stopped(argocd, testbed_handle, waiter):
    with testbed_handle.stopped("argocd-server"):
        message = fails_within(install_checks.ui_answers, waiter, argocd.url, timeout=SHORT, bound=SHORT)
    assert "no answer" in message and "cause: argocd-server is not running" in message, message


@pytest.mark.breaks("suites.install_checks.ui_answers")
def test_ui_check_fails_when_the_page_is_not_argo_cds(tmp_path, waiter):
    """The URL answers with some other web page (a port-forward or Ingress to the wrong Service):
    neither Argo CD's UI nor the Go module's placeholder, so the check fails at once, saying so."""
    (tmp_path / "index.html").write_text("<html><body>Welcome to nginx!</body></html>")
    with static_site(tmp_path) as url:
        message = fails_within(install_checks.ui_answers, waiter, url, timeout=SHORT, bound=SHORT)
    assert "the page is not Argo CD's UI" in message and "nginx" in message, message


def test_ui_check_reports_the_modules_placeholder_as_such(argocd, waiter):
    """The testbed's server is built from the Go module: the check answers, flagged placeholder
    (the suite records a warning, never a pass)."""
    page = install_checks.ui_answers(waiter, argocd.url, timeout=SHORT)
    assert page.placeholder and "placeholder" in page.observed, page


@contextlib.contextmanager
def static_site(directory):
    """An HTTP server for `directory` on loopback (Python's http.server), for the test's length."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _path_with(tmp_path, target, *tools: str) -> str:
    """A PATH holding only `tools`, linked from the testbed's bin directory."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in tools:
        (bin_dir / tool).symlink_to(target.bin_dir / tool)
    return str(bin_dir)


@pytest.mark.breaks("suites.install_checks.runner_tools")
def test_runner_check_fails_without_the_rollouts_plugin(argocd, kube, target, tmp_path):
    path = _path_with(tmp_path, target, "argocd", "kubectl")  # step 5's plugin not installed
    message = fails_within(install_checks.runner_tools, path, argocd.version().get("Version", ""),
                           kube.server_version(), bound=30)
    assert "kubectl-argo-rollouts on the runner" in message and "exit 127" in message, message


@pytest.mark.breaks("suites.install_checks.runner_tools")
def test_runner_check_fails_with_an_argocd_cli_of_another_minor(argocd, kube, target, tmp_path):
    """The server reports another minor than the runner's CLI (an upgrade of one of them only)."""
    path = _path_with(tmp_path, target, "argocd", "kubectl", "kubectl-argo-rollouts")
    message = fails_within(install_checks.runner_tools, path, "v2.0.0+unknown", kube.server_version(), bound=30)
    assert "argocd CLI version" in message and "the server's major.minor (v2.0.0+unknown)" in message, message
