"""Validation: Argo CD installed and accessible via UI/CLI (procedure step 1)."""
from __future__ import annotations

import pytest

from gitops_conformance.suites import install_checks
from gitops_conformance.suites.flux import install_checks as flux_install

pytestmark = pytest.mark.validation("install")


def test_api_answers_with_its_version(argocd, record_check, waiter):
    version = install_checks.api_version(waiter, argocd)
    record_check("api version", "GET /api/version answers with a version", version, True)


def test_cli_logs_in_and_lists_apps(argocd, kube, target, record_check):
    listed = install_checks.cli_login_and_list(argocd, kube, target)
    record_check("argocd login + app list", "login succeeds, `argocd app list` prints its header", listed, True)


def test_ui_endpoint_answers(argocd, record_check, record_warning, waiter):
    page = install_checks.ui_answers(waiter, argocd.url)
    if page.placeholder:  # the endpoint answered, but what a user would see was not proven
        record_warning("web UI page", "Argo CD's web UI at /", page.observed, install_checks.PLACEHOLDER_REASON)
    else:
        record_check("web UI endpoint", "HTTP 200 text/html with Argo CD's page at /", page.observed, True)


def test_initial_admin_secret_exists(kube, target, record_check):
    """Step 1 reads the password from argocd-initial-admin-secret; its absence is a finding."""
    seen = install_checks.admin_secret_exists(kube, target.argocd_namespace)
    record_check("initial admin secret", "present", seen, True)


def test_runner_has_the_procedures_clis(target, argocd, kube, record_check):
    """The procedure's Inputs: argocd, kubectl and the kubectl-argo-rollouts plugin installed on
    the machine that runs it, at versions that fit the cluster (checked with testinfra)."""
    observed = install_checks.runner_tools(target.env()["PATH"], argocd.version().get("Version", ""),
                                           kube.server_version())
    record_check("runner CLIs", "argocd matching the server's minor, kubectl within one minor, rollouts plugin",
                 observed, True)


# ----- Flux (--engine flux) ------------------------------------------------------------------

def test_flux_controllers_are_ready(flux, record_check, waiter):
    observed = flux_install.controllers_ready(waiter, flux)
    record_check("flux controllers", "source-, kustomize- and notification-controller Ready", observed, True)


def test_flux_crds_are_served(flux, kube, record_check):
    observed = flux_install.crds_served(kube)
    record_check("flux CRDs", "every Flux kind of the procedure served by the API", observed, True)


def test_flux_check_pre_passes(flux, target, record_check):
    observed = flux_install.check_pre(target.env())
    record_check("flux check --pre", "exit 0: prerequisites checks passed", observed, True)
