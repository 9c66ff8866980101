"""Validation: Git repository connected with proper authentication (procedure step 1)."""
from __future__ import annotations

import pytest

from scenarios import step1_install as step1
from suites import repo_auth_checks

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
