"""What a run changes outside its own namespaces is undone: the repository Secrets `argocd repo
add` makes (and the declared bad-credential one) carry the run label the sweep selects on; the
unknown-host test trusts the Git server's host key again afterwards; --keep-on-failure keeps
the failed test's own objects but restores the shared notification settings; the run's registry
repositories and SSH deploy keys are removed; no clone, CLI config or provider file is left in
the temp dir (a CI run once left 1,900 clones there)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gitops_conformance.fixtures import cleanup, names
from gitops_conformance.scenarios import step6_notifications as step6
from gitops_conformance.scenarios import step1_install as step1

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.testbed
PLUGINS = [arg for name in ("fixtures.results", "fixtures.plugin", "scenarios.step1_install", "scenarios.step2_applications",
                          "scenarios.step3_app_of_apps", "scenarios.step6_notifications")
           for arg in ("-p", f"gitops_conformance.{name}")]


def _inner(args: list[str], run_id: str, tmp_path: Path, testbed_handle, **env: str) -> str:
    """An inner pytest run against the session's testbed; returns its output."""
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", *args, "-p", "no:cacheprovider", "-s",
         "--reuse-testbed", str(testbed_handle.state_dir), "--report-dir", str(tmp_path / "report")],
        cwd=ROOT, env={**os.environ, "GITOPS_CONFORMANCE_RUN_ID": run_id, "PYTHONPATH": str(ROOT), **env},
        capture_output=True, text=True, timeout=300)
    return proc.stdout + proc.stderr


def test_repository_secrets_carry_the_run_label(git_repo, argocd, kube, tracker, unique):
    repo = git_repo("labelled")
    repo.write("README.md", "gitops\n")
    repo.commit_and_push("init")
    step1.register_https(argocd, kube, repo)
    made = step1.label_repository_secret(kube, argocd.namespace, repo.url)
    bad = unique("repo-bad-cred")
    tracker.other.append(("secret", bad, argocd.namespace))
    step1.declare_repository_secret(kube, argocd.namespace, bad, repo.url + "-other", repo.username, "wrong")
    swept = cleanup.labelled(kube, "secrets", names.label_selector(), argocd.namespace)  # the sweep's own lookup
    assert made and set(made) <= set(swept), (made, swept)
    assert bad in swept, swept


def test_unknown_host_test_trusts_the_host_again(target, argocd, kube, testbed_handle, tmp_path):
    host = target.git.ssh_known_hosts.split()[0]
    step1.add_known_host(argocd, target.git.ssh_known_hosts)  # trusted, as after Step 1's SSH setup
    before = step1.known_host_lines(kube, argocd.namespace, host)
    out = _inner(["suites/test_repo_auth.py", "-k", "unknown_host"], f"hostkey-{os.getpid()}", tmp_path, testbed_handle)
    assert "1 passed" in out, out[-3000:]
    assert before and step1.known_host_lines(kube, argocd.namespace, host) == before, out[-2000:]


KEEP_INNER = '''
def test_fails_after_configuring_notifications(notifications, namespace):
    n = notifications()
    print(f"KEPT hook={n.hook} namespace={namespace('kept')}")
    assert False, "failing on purpose"
'''


def test_keep_on_failure_keeps_own_objects_and_restores_shared_settings(argocd, kube, testbed_handle, tmp_path):
    cm_before = (kube.get("configmap", step6.CM, argocd.namespace) or {}).get("data") or {}
    secret_before = (kube.get("secret", step6.SECRET, argocd.namespace) or {}).get("data") or {}
    test_file = tmp_path / "test_keep.py"
    test_file.write_text(textwrap.dedent(KEEP_INNER))
    out = _inner([*PLUGINS, str(test_file), "--keep-on-failure", "--rootdir", str(tmp_path)],
                 f"keep-{os.getpid()}", tmp_path, testbed_handle)
    found = re.search(r"KEPT hook=(\S+) namespace=(\S+)", out)
    assert found and "1 failed" in out, out[-3000:]
    hook, ns = found.groups()
    try:
        kept = kube.get("namespace", ns)
        assert kept and kept["metadata"]["labels"].get(cleanup.KEEP_LABEL) == "true", out[-2000:]
        assert "--keep-on-failure: kept the resources" in out and ns in out, out[-2000:]
    finally:
        kube.kubectl("delete", "namespace", ns, "--ignore-not-found", "--wait=false", check=False)
    cm_after = (kube.get("configmap", step6.CM, argocd.namespace) or {}).get("data") or {}
    secret_after = (kube.get("secret", step6.SECRET, argocd.namespace) or {}).get("data") or {}
    assert not [k for k in cm_after if hook in k], f"the kept test's notification settings stayed: {sorted(cm_after)}"
    assert cm_after == cm_before and secret_after.keys() == secret_before.keys()


def test_registry_repositories_and_deploy_keys_are_removed(target, registry, tracker, unique, deploy_key, git_repo,
                                                           tmp_path):
    from gitops_conformance.scenarios import step4_image_updater as step4
    from gitops_conformance.testbed.peers import registry as oci, sshgit

    base = registry.api_url
    image = step4.new_image(registry, unique, tracker)
    image.push("v1.0.0")
    repo = git_repo("keys")
    deploy_key(repo)
    authorized = sshgit._paths(target.info["testbed_state_dir"])["authorized_keys"]
    assert image.repository in oci.list_repositories(base)
    assert names.run_label() in authorized.read_text()

    assert tracker.cleanup() == []  # what the test's teardown does
    tracker.finalizers.clear()
    assert image.repository not in oci.list_repositories(base)
    assert names.run_label() not in authorized.read_text()

    # a killed test never reaches its teardown: the session sweep finds them by the run label
    stray = f"{names.run_label()}/{unique('stray')}/myapp"
    oci.push_image(base, stray, "v1.0.0")
    _, pub = sshgit.generate_keypair(tmp_path, "stray", comment=names.run_label())
    sshgit.add_authorized_key(target.info["testbed_state_dir"], pub, read_only=True)
    swept = cleanup.sweep_testbed_peers(target.info["testbed_state_dir"], base)
    assert f"registry repository {stray}" in swept and "1 SSH deploy key(s)" in swept, swept
    assert stray not in oci.list_repositories(base)
    assert names.run_label() not in authorized.read_text()


def test_sweep_leaves_the_targets_own_peers_namespace_to_its_teardown(kube, waiter, monkeypatch):
    """The in-cluster peers' namespace carries the run label but belongs to the target, whose
    teardown deletes it after the sweep: the sweep must neither delete nor report it as a leftover."""
    monkeypatch.setenv(names.ENV_RUN_ID, f"sweep-{os.getpid()}")  # its own id: nothing else of the session matches
    stray, owned = names.unique_name("stray"), names.unique_name("gitops-conformance-peers")
    try:
        kube.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n, "labels": names.standard_labels()}}
                    for n in (stray, owned)])
        swept = cleanup.sweep(waiter, kube, "argocd", owned_by_target=[owned])
        assert swept == [f"namespace/{stray}"], swept
        assert kube.get("namespace", owned)["status"]["phase"] == "Active"
    finally:
        kube.kubectl("delete", "namespace", stray, owned, "--ignore-not-found", "--wait=false", check=False)


def test_no_clone_cli_config_or_provider_file_is_left_in_the_temp_dir(testbed_handle, tmp_path):
    """Two workers (the controller's provider dir, each worker's Argo CD CLI config), tests that
    clone repositories, and the CLI login check, which stores a session token."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    out = _inner(["suites/test_prune.py", "suites/test_install.py::test_cli_logs_in_and_lists_apps", "-n", "2",
                  "-k", "not flux"], f"tmpdir-{os.getpid()}", tmp_path, testbed_handle, TMPDIR=str(tmp))
    assert "4 passed" in out, out[-3000:]
    left = sorted(p.name for p in tmp.iterdir() if not p.name.startswith("pytest-of-"))  # pytest's own, kept by its policy
    assert not left, f"left in the temp dir: {left}"


def test_shared_settings_are_set_once_for_a_parallel_run_and_restored(kube, argocd, testbed_handle, tmp_path):
    """The app-of-apps tests need Argo CD's Application health check in argocd-cm: the xdist
    controller sets it before the workers start (the wave-order check fails without it) and
    puts back what was there after the last test, so no worker changes argocd-cm mid-run."""
    from gitops_conformance.scenarios import step3_app_of_apps as step3

    def health_key():
        return ((kube.get("configmap", "argocd-cm", argocd.namespace) or {}).get("data") or {}).get(step3.HEALTH_KEY)

    before = health_key()
    out = _inner(["suites/test_app_of_apps.py", "-n", "2"], f"shared-{os.getpid()}", tmp_path, testbed_handle)
    assert "2 passed" in out, out[-3000:]
    assert health_key() == before, "argocd-cm's Application health check was not restored"
