"""Validation: Git repository connected with proper authentication (procedure step 1)."""
from __future__ import annotations

import pytest

from gitops_conformance.scenarios.flux import step2_kustomizations as fluxs
from gitops_conformance.scenarios import step1_install as step1
from gitops_conformance.suites import repo_auth_checks
from gitops_conformance.suites.flux import repo_auth_checks as flux_repo_auth_checks

pytestmark = pytest.mark.validation("repo_auth")


def test_https_token_connection_is_successful(git_repo, argocd, kube, record_check, waiter):
    repo = git_repo("auth-https")
    repo.write("README.md", "gitops\n")
    repo.commit_and_push("init")
    step1.register_https(argocd, kube, repo)
    seen = repo_auth_checks.connection_successful(waiter, argocd, repo.url, "HTTP(S) with a token")
    record_check("https token connection", "Successful", seen, True)


@pytest.mark.xdist_group('ssh-known-hosts')
def test_ssh_deploy_key_connection_is_successful(git_repo, argocd, kube, target, record_check, deploy_key, waiter):
    repo = git_repo("auth-ssh")
    repo.write("README.md", "gitops\n")
    repo.commit_and_push("init")
    key, url = deploy_key(repo)
    step1.add_known_host(argocd, target.git.ssh_known_hosts, waiter, target)
    step1.register_ssh(argocd, kube, url, key)
    seen = repo_auth_checks.connection_successful(waiter, argocd, url, "SSH with a deploy key")
    record_check("ssh deploy key connection", "Successful", seen, True)


def test_wrong_token_is_refused_readably(git_repo, argocd, kube, record_check):
    repo = git_repo("auth-bad")
    repo.write("README.md", "gitops\n")
    repo.commit_and_push("init")
    result = step1.register_https(argocd, kube, repo, token="not-the-token-" + repo.token[:4], check=False)
    seen = repo_auth_checks.add_is_refused(result, "argocd repo add with a wrong token",
                                           ("authentication", "auth", "401", "credentials"))
    record_check("wrong token", "refused with an authentication error", seen, True)


@pytest.mark.xdist_group('ssh-known-hosts')
def test_unknown_host_key_is_refused_readably(git_repo, argocd, kube, target, tracker, record_check, deploy_key,
                                              waiter):
    repo = git_repo("auth-hostkey")
    repo.write("README.md", "gitops\n")
    repo.commit_and_push("init")
    key, url = deploy_key(repo)
    host = target.git.ssh_known_hosts.split()[0]
    # the Git server's key is not (or no longer) trusted; trusted again at teardown, as before
    tracker.restores.append(step1.untrust_host(argocd, kube, host, waiter, target))
    result = step1.register_ssh(argocd, kube, url, key, check=False)
    seen = repo_auth_checks.add_is_refused(result, "argocd repo add over SSH with an unknown host key",
                                           ("host key", "knownhosts", "known_hosts", "key is unknown"))
    record_check("unknown host key", "refused with a host-key error", seen, True)


# ----- Flux (--engine flux) ------------------------------------------------------------------

def _flux_repo(git_repo, prefix: str):
    repo = git_repo(prefix)
    repo.write("README.md", "gitops\n")
    return repo, repo.commit_and_push("init")


def test_flux_https_token_source_is_ready(git_repo, flux, flux_git_source, target, record_check, waiter):
    repo, sha = _flux_repo(git_repo, "auth-https")
    source = flux_git_source(fluxs.https_url(repo, target.git.https_base_url), "HTTPS with a token",
                             lambda name, ns: fluxs.auth_secret(name, ns, repo.username, repo.token,
                                                                target.git.https_ca_pem))
    seen = flux_repo_auth_checks.source_is_ready(waiter, flux, source, sha)
    record_check("https token GitRepository", f"Ready at {sha[:10]}", seen, True)


@pytest.mark.xdist_group('ssh-known-hosts')  # deploy_key's group (fixtures.parallel)
def test_flux_ssh_deploy_key_source_is_ready(git_repo, flux, flux_git_source, target, deploy_key, record_check,
                                             waiter):
    repo, sha = _flux_repo(git_repo, "auth-ssh")
    key, url = deploy_key(repo)
    source = flux_git_source(url, "SSH with a deploy key",
                             lambda name, ns: fluxs.ssh_auth_secret(name, ns, key.read_text(),
                                                                    target.git.ssh_known_hosts))
    seen = flux_repo_auth_checks.source_is_ready(waiter, flux, source, sha)
    record_check("ssh deploy key GitRepository", f"Ready at {sha[:10]}", seen, True)


def test_flux_wrong_token_is_refused_readably(git_repo, flux, flux_git_source, target, record_check, waiter):
    repo, _ = _flux_repo(git_repo, "auth-bad")
    source = flux_git_source(fluxs.https_url(repo, target.git.https_base_url), "HTTPS with a wrong token",
                             lambda name, ns: fluxs.auth_secret(name, ns, repo.username, "not-the-token-0000",
                                                                target.git.https_ca_pem))
    seen = flux_repo_auth_checks.source_is_refused(waiter, flux, source, fluxs.AUTH_REFUSED)
    record_check("wrong token", "Ready=False with an authentication error", seen, True)


@pytest.mark.xdist_group('ssh-known-hosts')  # deploy_key's group (fixtures.parallel)
def test_flux_unknown_host_key_is_refused_readably(git_repo, flux, flux_git_source, deploy_key, record_check,
                                                   waiter, tmp_path):
    repo, _ = _flux_repo(git_repo, "auth-hostkey")
    key, url = deploy_key(repo)
    known_hosts = fluxs.known_hosts_of_another_host(tmp_path)  # the Git server's key is not among them
    source = flux_git_source(url, "SSH with an unknown host key",
                             lambda name, ns: fluxs.ssh_auth_secret(name, ns, key.read_text(), known_hosts))
    seen = flux_repo_auth_checks.source_is_refused(waiter, flux, source, fluxs.HOST_KEY_REFUSED)
    record_check("unknown host key", "Ready=False with a host-key error", seen, True)
