"""The built images really work: each archive is verified, unpacked layer by layer, and its
programs run from the unpacked root filesystem (chroot in fresh mount/PID namespaces, as the
image's user), the way a container runtime would start them.

Marked `images`: needs root, `unshare`, and the archives `gitops-conformance testbed images`
wrote; an image not built yet is skipped with the command that builds it.
"""
from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import subprocess
from pathlib import Path

import pytest
import requests

from gitops_conformance.testbed.images import build, oci, spec
from tests.image_runs import free_port, run_in, start_in, stop, wait_http

pytestmark = [
    pytest.mark.images,
    pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None, reason="chroot runs need root and unshare"),
]


def _rootfs(name: str, tmp_path_factory) -> tuple[Path, dict]:
    specs = spec.all_specs()
    try:
        ref = specs[name].variants()[0][0][0]
    except spec.SpecError as exc:
        pytest.skip(str(exc))
    archive = build.built_archives().get(ref)
    if archive is None:
        pytest.skip(f"{ref} is not built: run `gitops-conformance testbed images {name}`")
    info = oci.verify_archive(archive)
    root = tmp_path_factory.mktemp(f"rootfs-{name}")
    oci.extract_rootfs(archive, root)
    return root, info["config"]["config"]


def _env(config: dict, **extra: str) -> dict[str, str]:
    return {**dict(e.split("=", 1) for e in config.get("Env", [])), **extra}


@pytest.fixture(scope="module")
def argocd(tmp_path_factory):
    return _rootfs("argocd", tmp_path_factory)


@pytest.fixture(scope="module")
def peers(tmp_path_factory):
    return _rootfs("peers", tmp_path_factory)


def test_argocd_image_runs_argocd_as_user_999_with_its_tools(argocd):
    root, config = argocd
    assert config["User"] == "999" and config["Entrypoint"] == ["/usr/bin/tini", "--"]
    env = _env(config)
    out = run_in(root, ["argocd", "version", "--client", "--short"], user="999:999", env=env, workdir="/home/argocd")
    assert out.returncode == 0 and "v3.5.3" in out.stdout, out.stdout + out.stderr
    for argv, expect in ((["git", "--version"], "git version"), (["git", "lfs", "version"], "git-lfs/"),
                         (["gpg", "--version"], "gpg (GnuPG)"), (["ssh", "-V"], "OpenSSH"),
                         (["kustomize", "version"], "v5.8.1"), (["helm", "version", "--short"], "v3.20.2"),
                         (["tini", "--version"], "tini version"), (["connect-proxy", "-h"], "")):
        got = run_in(root, argv, user="999:999", env=env)
        assert expect in got.stdout + got.stderr, (argv, got.returncode, got.stdout, got.stderr)
    for name in ("argocd-server", "argocd-repo-server", "argocd-application-controller", "argocd-notifications",
                 "argocd-applicationset-controller", "argocd-dex", "argocd-cmp-server", "argocd-commit-server",
                 "argocd-k8s-auth"):
        assert os.readlink(root / "usr/local/bin" / name) == "/usr/local/bin/argocd"
    for script in ("git-verify-wrapper.sh", "gpg-wrapper.sh", "entrypoint.sh"):
        assert os.access(root / "usr/local/bin" / script, os.X_OK), script
    # the repo-server's init container copies the binary with the image's own sh and cp
    copy = run_in(root, ["sh", "-c", "/bin/cp /usr/local/bin/argocd /tmp/argocd && /bin/ln -sf /tmp/argocd /tmp/argocd-cmp-server"],
                  user="999:999", env=env)
    assert copy.returncode == 0, copy.stderr
    assert (root / "etc/ssh/ssh_known_hosts").is_symlink() and (root / "app/config/gpg/keys").is_dir()


def test_redis_image_serves_with_argocds_arguments(tmp_path_factory):
    root, config = _rootfs("redis", tmp_path_factory)
    port, password = free_port(), secrets.token_hex(8)
    # install.yaml's args, verbatim shape: options only, the entrypoint adds redis-server
    args = ["--save", "", "--appendonly", "no", f"--requirepass {password}", "--port", str(port), "--bind", "127.0.0.1"]
    server = start_in(root, [*config["Entrypoint"], *args], user="999:999", env=_env(config), workdir=config["WorkingDir"])
    try:
        for _ in range(50):
            ping = run_in(root, ["redis-cli", "-p", str(port), "ping"], user="999:999", env={"REDISCLI_AUTH": password})
            if ping.stdout.strip() == "PONG":
                break
            subprocess.run(["sleep", "0.2"])
        assert ping.stdout.strip() == "PONG", ping.stdout + ping.stderr
        denied = run_in(root, ["redis-cli", "-p", str(port), "ping"], user="999:999")
        assert "NOAUTH" in denied.stdout + denied.stderr
    finally:
        stop(server)


def test_peers_image_serves_git_over_http_from_the_repo_code(peers, tmp_path):
    root, config = peers
    env = _env(config)
    for argv in (["python3", "-c", "import testbed.peers.gitserver, testbed.peers.sshgit, testbed.peers.receiver, "
                  "testbed.peers.trafficgen, testbed.peers.registry, testbed.peers.prometheus"],
                 ["docker-registry", "--version"], ["/usr/sbin/sshd", "-t", "-f", "/dev/null", "-h", "/dev/null"],
                 ["git", "--version"], ["test", "-x", "/usr/lib/git-core/git-http-backend"], ["openssl", "version"]):
        out = run_in(root, argv, env=env)
        if argv[0] == "/usr/sbin/sshd":  # no host key given: sshd says so, which proves it runs
            assert "no hostkeys available" in out.stderr or out.returncode == 0, out.stderr
        else:
            assert out.returncode == 0, (argv, out.stdout, out.stderr)
    token = secrets.token_hex(8)
    (root / "var/lib/peers/repos").mkdir(parents=True, exist_ok=True)
    (root / "var/lib/peers/users.json").write_text(json.dumps({"suite": {"password": token, "access": "write"}}))
    port = free_port()
    server = start_in(root, ["python3", "-m", "testbed.peers.gitserver", "--root", "/var/lib/peers/repos",
                             "--users", "/var/lib/peers/users.json", "--port", str(port)],
                      env=env, workdir=config["WorkingDir"])
    try:
        base = f"http://127.0.0.1:{port}"
        wait_http(base + "/healthz", proc=server)
        s = requests.Session()
        s.trust_env, s.auth = False, ("suite", token)
        assert s.post(base + "/api/repos", json={"name": "demo"}, timeout=10).status_code in (200, 201)
        header = "Authorization: Basic " + base64.b64encode(f"suite:{token}".encode()).decode()
        git_env = {**os.environ, "GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "http.extraHeader",
                   "GIT_CONFIG_VALUE_0": header, "GIT_TERMINAL_PROMPT": "0"}

        def git(*argv, cwd=tmp_path):
            out = subprocess.run(["git", *argv], cwd=cwd, env=git_env, capture_output=True, text=True, timeout=60)
            assert out.returncode == 0, (argv, out.stderr)
            return out.stdout

        git("clone", f"{base}/git/demo.git", "work")
        (tmp_path / "work/README").write_text("served from the peers image\n")
        git("-c", "user.name=t", "-c", "user.email=t@example.com", "add", "README", cwd=tmp_path / "work")
        git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-m", "first", cwd=tmp_path / "work")
        git("push", "origin", "HEAD:main", cwd=tmp_path / "work")
        git("clone", "--branch", "main", f"{base}/git/demo.git", "again")
        assert (tmp_path / "again/README").read_text() == "served from the peers image\n"
    finally:
        stop(server)


def test_prometheus_image_starts_and_answers_queries(tmp_path_factory):
    root, config = _rootfs("prometheus", tmp_path_factory)
    port = free_port()
    argv = [*config["Entrypoint"], "--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus",
            f"--web.listen-address=127.0.0.1:{port}"]
    server = start_in(root, argv, user="65534:65534", env=_env(config), workdir=config["WorkingDir"])
    try:
        wait_http(f"http://127.0.0.1:{port}/-/ready", timeout=60, proc=server)
        got = requests.get(f"http://127.0.0.1:{port}/api/v1/query", params={"query": "1+1"}, timeout=10).json()
        assert got["status"] == "success" and got["data"]["result"][1] == "2"
    finally:
        stop(server)


@pytest.mark.parametrize("name, argv, expect", [
    ("rollouts", ["/bin/rollouts-controller", "--version"], "v1.9.2"),
    ("image-updater", ["/usr/local/bin/argocd-image-updater", "version"], "v0.12.2"),
])
def test_controller_images_run_their_binary(name, argv, expect, tmp_path_factory):
    root, config = _rootfs(name, tmp_path_factory)
    user = config.get("User") or "0"
    out = run_in(root, argv, user=f"{user}:{user}", env=_env(config))
    assert expect in out.stdout + out.stderr, (out.returncode, out.stdout, out.stderr)
    assert (root / "etc/ssl/certs/ca-certificates.crt").exists()


# ---- containerd: what `kind load image-archive` runs on each node ---------------------------

@pytest.fixture(scope="module")
def containerd(tmp_path_factory):
    """A private containerd (Debian's package) with its own root, state and socket."""
    if shutil.which("containerd") is None or shutil.which("ctr") is None:
        pytest.skip("containerd (Debian package) is not installed")
    base = tmp_path_factory.mktemp("containerd")
    sock = base / "containerd.sock"
    (base / "config.toml").write_text(
        f'version = 2\nroot = "{base}/root"\nstate = "{base}/state"\n[grpc]\n  address = "{sock}"\n')
    proc = subprocess.Popen(["containerd", "--config", str(base / "config.toml")], stdout=subprocess.DEVNULL,
                            stderr=open(base / "containerd.log", "w"))
    ctr = ["ctr", "-a", str(sock), "-n", "k8s.io"]
    try:
        for _ in range(100):
            if subprocess.run([*ctr, "version"], capture_output=True, timeout=10).returncode == 0:
                break
            subprocess.run(["sleep", "0.1"])
        else:
            pytest.fail(f"containerd did not start: {(base / 'containerd.log').read_text()[-1000:]}")
        yield ctr
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_containerd_imports_every_built_archive_under_its_exact_names(containerd):
    """`kind load image-archive` runs `ctr --namespace=k8s.io images import --all-platforms --digests`."""
    built = build.built_archives()
    if not built:
        pytest.skip("no image built: run `gitops-conformance testbed images`")
    for archive in sorted(set(built.values())):
        out = subprocess.run([*containerd, "images", "import", "--all-platforms", "--digests", str(archive)],
                             capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, (archive, out.stderr)
    listed = subprocess.run([*containerd, "images", "ls", "-q"], capture_output=True, text=True, timeout=60).stdout.split()
    missing = [ref for ref in built if ref not in listed]
    assert not missing, f"imported but not listed under their names: {missing}"


def test_containerd_runs_the_peers_image(containerd):
    ref = spec.all_specs()["peers"].variants()[0][0][0]
    if ref not in build.built_archives():
        pytest.skip(f"{ref} is not built: run `gitops-conformance testbed images peers`")
    subprocess.run([*containerd, "images", "import", "--digests", str(build.built_archives()[ref])],
                   capture_output=True, timeout=600, check=True)
    out = subprocess.run([*containerd, "run", "--rm", ref, "peers-smoke", "python3", "-c",
                          "import testbed.peers.gitserver, testbed.peers.receiver, testbed.peers.trafficgen; print('ok')"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
