"""Real tests of the Git peers: testbed/peers/gitserver.py (smart HTTP) and sshgit.py (sshd).

Both peers run as host processes on 127.0.0.1 under the Supervisor, in a temporary state dir,
and are stopped in the fixture teardown whatever happens. The stock `git` CLI is the client.
"""
from __future__ import annotations

import base64
import dataclasses
import gzip
import hashlib
import http.client
import os
import secrets
import subprocess
from pathlib import Path

import pytest
import requests

from gitops_conformance.testbed.peers import gitserver, sshgit
from gitops_conformance.testbed.procs import Supervisor, free_port

GIT_TIMEOUT = 120  # seconds for any one git command
HTTP_TIMEOUT = 10

needs_sshd = pytest.mark.skipif(not Path(sshgit.SSHD).exists(),
                                reason="openssh-server not installed (apt-get install -y openssh-server)")


@dataclasses.dataclass
class Peers:
    tmp: Path
    state: Path
    root: Path
    base_url: str
    ssh_port: int | None
    writer: tuple[str, str]
    reader: tuple[str, str]
    key: Path | None = None  # authorized read/write key
    ro_key: Path | None = None  # authorized read-only key
    known_hosts: Path | None = None
    sup: Supervisor | None = None

    def http_log(self) -> str:
        return self.sup.log_path("gitserver").read_text(errors="replace")


@pytest.fixture(scope="module")
def peers(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gitpeers")
    state, root = tmp / "state", tmp / "repos"
    writer = ("writer", "tok-" + secrets.token_urlsafe(16))
    reader = ("reader", "tok-" + secrets.token_urlsafe(16))
    users = gitserver.write_users_file(tmp / "users.json", {writer[0]: (writer[1], "write"),
                                                          reader[0]: (reader[1], "read")})
    sup = Supervisor(state)
    http_port = free_port()
    p = Peers(tmp=tmp, state=state, root=root, base_url=f"http://127.0.0.1:{http_port}", ssh_port=None,
              writer=writer, reader=reader, sup=sup)
    started: list[str] = []
    try:
        hs = gitserver.spec(state, http_port, users, root)
        pid = sup.start(hs)
        started.append(hs.name)
        sup.wait_healthy(hs, pid)
        if Path(sshgit.SSHD).exists():
            p.ssh_port = free_port()
            ss = sshgit.spec(state, p.ssh_port, root)
            pid = sup.start(ss)
            started.append(ss.name)
            sup.wait_healthy(ss, pid)
            p.key, pub = sshgit.generate_keypair(tmp / "keys", "rw")
            sshgit.add_authorized_key(state, pub)
            p.ro_key, ro_pub = sshgit.generate_keypair(tmp / "keys", "ro")
            sshgit.add_authorized_key(state, ro_pub, read_only=True)
            p.known_hosts = tmp / "known_hosts"
            p.known_hosts.write_text(sshgit.known_hosts_line(state, p.ssh_port) + "\n")
        yield p
    finally:
        for name in reversed(started):
            sup.stop(name)


# ----------------------------------------------------------------------------- helpers

def git(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
        check: bool = True) -> subprocess.CompletedProcess:
    home = Path(os.environ.get("TMPDIR", "/tmp"))
    full_env = {
        **os.environ,
        "HOME": str(home), "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_AUTHOR_NAME": "Conformance", "GIT_AUTHOR_EMAIL": "conformance@example.invalid",
        "GIT_COMMITTER_NAME": "Conformance", "GIT_COMMITTER_EMAIL": "conformance@example.invalid",
        **(env or {}),
    }
    r = subprocess.run(["git", *args], cwd=cwd, env=full_env, capture_output=True, text=True,
                       timeout=GIT_TIMEOUT, stdin=subprocess.DEVNULL)
    if check and r.returncode != 0:
        raise AssertionError(f"git {' '.join(args[:2])} failed ({r.returncode}): {r.stderr.strip()[-2000:]}")
    return r


def http_env(p: Peers, who: tuple[str, str]) -> dict[str, str]:
    return gitserver.askpass_env(p.tmp, *who)


def ssh_env(p: Peers, key: Path, known_hosts: Path | None = None) -> dict[str, str]:
    return {"GIT_SSH_COMMAND": sshgit.git_ssh_command(key, known_hosts or p.known_hosts)}


def url(p: Peers, name: str, who: tuple[str, str]) -> str:
    return gitserver.repo_url(p.base_url, name, who[0])  # user name only; the password comes via askpass


def new_repo(p: Peers, name: str) -> str:
    gitserver.create_repo(p.base_url, name, p.writer)
    return name


def commit_file(work: Path, rel: str, data: bytes, msg: str) -> str:
    f = work / rel
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_bytes(data)
    git("add", rel, cwd=work)
    git("commit", "-q", "-m", msg, cwd=work)
    return git("rev-parse", "HEAD", cwd=work).stdout.strip()


def seed(p: Peers, name: str, commits: int = 1) -> str:
    """Create repo `name`, push `commits` commits to main over HTTP; returns the head sha."""
    new_repo(p, name)
    work = p.tmp / f"seed-{name}"
    git("clone", "-q", url(p, name, p.writer), str(work), env=http_env(p, p.writer))
    sha = ""
    for i in range(commits):
        sha = commit_file(work, f"f{i}.txt", f"{name} {i}\n".encode(), f"commit {i}")
    git("push", "-q", "origin", "HEAD:main", cwd=work, env=http_env(p, p.writer))
    return sha


def remote_main(p: Peers, name: str) -> str:
    out = git("ls-remote", url(p, name, p.writer), "refs/heads/main", env=http_env(p, p.writer)).stdout
    return out.split()[0] if out.strip() else ""


def pkt(s: bytes) -> bytes:
    return b"%04x" % (len(s) + 4) + s


# ----------------------------------------------------------------------------- HTTP

def test_healthz_needs_no_auth_but_git_does(peers):
    assert requests.get(f"{peers.base_url}/healthz", timeout=HTTP_TIMEOUT).status_code == 200
    new_repo(peers, "authcheck")
    r = requests.get(f"{peers.base_url}/git/authcheck.git/info/refs", params={"service": "git-upload-pack"},
                     timeout=HTTP_TIMEOUT)
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == 'Basic realm="git"'
    r = requests.get(f"{peers.base_url}/git/authcheck.git/info/refs", params={"service": "git-upload-pack"},
                     auth=peers.reader, timeout=HTTP_TIMEOUT)
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/x-git-upload-pack-advertisement"


def test_clone_commit_push_with_write_token(peers):
    name = new_repo(peers, "app")
    work = peers.tmp / "app-w"
    git("clone", "-q", url(peers, name, peers.writer), str(work), env=http_env(peers, peers.writer))
    assert git("symbolic-ref", "HEAD", cwd=work).stdout.strip() == "refs/heads/main"
    sha = commit_file(work, "deploy/app.yaml", b"kind: ConfigMap\n", "add app")
    git("push", "-q", "origin", "main", cwd=work, env=http_env(peers, peers.writer))
    assert remote_main(peers, name) == sha
    # a second push on an existing branch (fast-forward) and a fetch back
    sha2 = commit_file(work, "deploy/app.yaml", b"kind: ConfigMap\n# v2\n", "v2")
    git("push", "-q", "origin", "main", cwd=work, env=http_env(peers, peers.writer))
    other = peers.tmp / "app-w2"
    git("clone", "-q", url(peers, name, peers.writer), str(other), env=http_env(peers, peers.writer))
    assert git("rev-parse", "HEAD", cwd=other).stdout.strip() == sha2


def test_read_only_user_clones_but_cannot_push(peers):
    sha = seed(peers, "ro")
    work = peers.tmp / "ro-r"
    git("clone", "-q", url(peers, "ro", peers.reader), str(work), env=http_env(peers, peers.reader))
    assert git("rev-parse", "HEAD", cwd=work).stdout.strip() == sha
    commit_file(work, "x.txt", b"nope\n", "should not land")
    r = git("push", "origin", "main", cwd=work, env=http_env(peers, peers.reader), check=False)
    assert r.returncode != 0
    assert "403" in r.stderr
    assert remote_main(peers, "ro") == sha
    # the raw protocol endpoints refuse too
    for method, path in (("GET", "/git/ro.git/info/refs?service=git-receive-pack"),
                         ("POST", "/git/ro.git/git-receive-pack")):
        resp = requests.request(method, peers.base_url + path, auth=peers.reader, data=b"0000",
                                timeout=HTTP_TIMEOUT)
        assert resp.status_code == 403, (method, path)
    # nor can a read user use the admin API
    resp = requests.post(f"{peers.base_url}/api/repos", json={"name": "byreader"}, auth=peers.reader,
                         timeout=HTTP_TIMEOUT)
    assert resp.status_code == 403


def test_wrong_password_is_refused(peers):
    seed(peers, "wrongpw")
    bad = (peers.writer[0], "not-the-token")
    r = git("clone", url(peers, "wrongpw", bad), str(peers.tmp / "wrongpw-x"), env=http_env(peers, bad), check=False)
    assert r.returncode != 0
    assert "Authentication failed" in r.stderr or "401" in r.stderr
    resp = requests.get(f"{peers.base_url}/git/wrongpw.git/info/refs", params={"service": "git-upload-pack"},
                        auth=bad, timeout=HTTP_TIMEOUT)
    assert resp.status_code == 401
    assert resp.headers.get("WWW-Authenticate") == 'Basic realm="git"'
    resp = requests.get(f"{peers.base_url}/git/wrongpw.git/info/refs", params={"service": "git-upload-pack"},
                        auth=("nobody", "x"), timeout=HTTP_TIMEOUT)
    assert resp.status_code == 401


def test_shallow_clone_protocol_v2(peers):
    sha = seed(peers, "shallow", commits=3)
    work = peers.tmp / "shallow-c"
    r = git("-c", "protocol.version=2", "clone", "--depth", "1", url(peers, "shallow", peers.reader), str(work),
            env={**http_env(peers, peers.reader), "GIT_TRACE_PACKET": "1"})
    assert "version 2" in r.stderr  # the server spoke protocol v2 (Git-Protocol header reached http-backend)
    assert git("rev-parse", "HEAD", cwd=work).stdout.strip() == sha
    assert git("rev-list", "--count", "HEAD", cwd=work).stdout.strip() == "1"
    assert (work / ".git" / "shallow").exists()
    # deepen it again over the same server
    git("fetch", "-q", "--unshallow", cwd=work, env=http_env(peers, peers.reader))
    assert git("rev-list", "--count", "HEAD", cwd=work).stdout.strip() == "3"
    # protocol v0 still works as well
    r = git("-c", "protocol.version=0", "clone", "-q", "--depth", "1", url(peers, "shallow", peers.reader),
            str(peers.tmp / "shallow-v0"), env=http_env(peers, peers.reader))
    assert r.returncode == 0


def test_chunked_push_of_large_commit(peers):
    name = new_repo(peers, "big")
    work = peers.tmp / "big-w"
    git("clone", "-q", url(peers, name, peers.writer), str(work), env=http_env(peers, peers.writer))
    data = os.urandom(2 * 1024 * 1024)  # incompressible: the pack is > http.postBuffer
    sha = commit_file(work, "blob.bin", data, "big blob")
    git("-c", "http.postBuffer=1024", "push", "-q", "origin", "main", cwd=work, env=http_env(peers, peers.writer))
    assert remote_main(peers, name) == sha
    lines = [ln for ln in peers.http_log().splitlines()
             if "POST /git/big.git/git-receive-pack" in ln and "chunked" in ln]
    assert lines, "git did not send the push chunked (expected with http.postBuffer=1024)"
    assert "status=200" in lines[-1]
    back = peers.tmp / "big-r"
    git("clone", "-q", url(peers, name, peers.reader), str(back), env=http_env(peers, peers.reader))
    assert hashlib.sha256((back / "blob.bin").read_bytes()).hexdigest() == hashlib.sha256(data).hexdigest()


def test_raw_chunked_and_gzip_requests_keep_alive(peers):
    """What go-git and other non-curl clients do: chunked and gzip bodies, one keep-alive connection."""
    sha = seed(peers, "raw")
    port = int(peers.base_url.rsplit(":", 1)[1])
    auth = "Basic " + base64.b64encode(f"{peers.reader[0]}:{peers.reader[1]}".encode()).decode()
    body = pkt(b"command=ls-refs\n") + b"0001" + pkt(b"symrefs\n") + b"0000"
    headers = {"Authorization": auth, "Git-Protocol": "version=2",
               "Content-Type": "application/x-git-upload-pack-request",
               "Accept": "application/x-git-upload-pack-result"}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=HTTP_TIMEOUT)
    try:
        # 1: chunked body, sent in several small chunks
        conn.request("POST", "/git/raw.git/git-upload-pack", body=iter([body[:7], body[7:20], body[20:]]),
                     headers=headers, encode_chunked=True)
        resp = conn.getresponse()
        out = resp.read()
        assert resp.status == 200, out
        assert resp.getheader("Content-Type") == "application/x-git-upload-pack-result"
        assert f"{sha} refs/heads/main".encode() in out
        assert b"symref-target:refs/heads/main" in out
        # 2: same connection, gzip-encoded and chunked
        conn.request("POST", "/git/raw.git/git-upload-pack", body=iter([gzip.compress(body)]),
                     headers={**headers, "Content-Encoding": "gzip"}, encode_chunked=True)
        resp = conn.getresponse()
        out = resp.read()
        assert resp.status == 200, out
        assert f"{sha} refs/heads/main".encode() in out
        # 3: same connection, plain Content-Length body
        conn.request("POST", "/git/raw.git/git-upload-pack", body=body, headers=headers)
        resp = conn.getresponse()
        assert resp.status == 200 and f"{sha} refs/heads/main".encode() in resp.read()
        # 4: a missing repo gives the CGI's 404 with a well-formed response
        conn.request("GET", "/git/missing.git/info/refs?service=git-upload-pack", headers={"Authorization": auth})
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 404
    finally:
        conn.close()


def test_admin_api_create_delete(peers):
    base = peers.base_url
    r = requests.post(f"{base}/api/repos", json={"name": "adm"}, auth=peers.writer, timeout=HTTP_TIMEOUT)
    assert r.status_code == 201
    assert r.json()["url"] == f"{base}/git/adm.git"
    head = (peers.root / "adm.git" / "HEAD").read_text().strip()
    assert head == "ref: refs/heads/main"
    assert requests.post(f"{base}/api/repos", json={"name": "adm"}, auth=peers.writer,
                         timeout=HTTP_TIMEOUT).status_code == 409
    for bad in ("../etc", "a/b", "", ".hidden"):
        assert requests.post(f"{base}/api/repos", json={"name": bad}, auth=peers.writer,
                             timeout=HTTP_TIMEOUT).status_code == 400, bad
    assert requests.post(f"{base}/api/repos", json={"name": "x"}, timeout=HTTP_TIMEOUT).status_code == 401
    assert "adm" in requests.get(f"{base}/api/repos", auth=peers.reader, timeout=HTTP_TIMEOUT).json()["repos"]
    assert requests.delete(f"{base}/api/repos/adm", auth=peers.reader, timeout=HTTP_TIMEOUT).status_code == 403
    assert gitserver.delete_repo(base, "adm", peers.writer) is True
    assert not (peers.root / "adm.git").exists()
    assert gitserver.delete_repo(base, "adm", peers.writer) is False


def test_request_log_has_users_not_secrets(peers):
    requests.get(f"{peers.base_url}/api/repos", auth=peers.reader, timeout=HTTP_TIMEOUT)
    log = peers.http_log()
    assert "user=reader" in log and "status=200" in log
    for secret in (peers.writer[1], peers.reader[1], "not-the-token"):
        assert secret not in log


# ----------------------------------------------------------------------------- SSH

@needs_sshd
def test_ssh_clone_sees_http_push_and_push_back(peers):
    sha = seed(peers, "shared")
    work = peers.tmp / "shared-ssh"
    git("clone", "-q", sshgit.ssh_url(peers.ssh_port, "shared"), str(work), env=ssh_env(peers, peers.key))
    assert git("rev-parse", "HEAD", cwd=work).stdout.strip() == sha
    # push over SSH, visible over HTTP: one set of repos
    sha2 = commit_file(work, "ssh.txt", b"via ssh\n", "via ssh")
    git("push", "-q", "origin", "main", cwd=work, env=ssh_env(peers, peers.key))
    assert remote_main(peers, "shared") == sha2
    # shallow, protocol v2 and the scp-like form work too
    r = git("-c", "protocol.version=2", "clone", "--depth", "1",
            f"{sshgit.SSH_USER}@127.0.0.1:git/shared.git", str(peers.tmp / "shared-scp"),
            env={**ssh_env(peers, peers.key),
                 "GIT_SSH_COMMAND": sshgit.git_ssh_command(peers.key, peers.known_hosts) + f" -p {peers.ssh_port}",
                 "GIT_TRACE_PACKET": "1"})
    assert "version 2" in r.stderr
    assert git("rev-list", "--count", "HEAD", cwd=peers.tmp / "shared-scp").stdout.strip() == "1"


@needs_sshd
def test_ssh_read_only_key_cannot_push(peers):
    sha = seed(peers, "sshro")
    work = peers.tmp / "sshro-c"
    git("clone", "-q", sshgit.ssh_url(peers.ssh_port, "sshro"), str(work), env=ssh_env(peers, peers.ro_key))
    commit_file(work, "no.txt", b"no\n", "no")
    r = git("push", "origin", "main", cwd=work, env=ssh_env(peers, peers.ro_key), check=False)
    assert r.returncode != 0
    assert "read-only" in r.stderr
    assert remote_main(peers, "sshro") == sha


@needs_sshd
def test_ssh_unknown_key_is_refused(peers):
    seed(peers, "sshunk")
    stranger, _ = sshgit.generate_keypair(peers.tmp / "keys", "stranger")
    r = git("clone", sshgit.ssh_url(peers.ssh_port, "sshunk"), str(peers.tmp / "sshunk-c"),
            env=ssh_env(peers, stranger), check=False)
    assert r.returncode != 0
    assert "Permission denied" in r.stderr


@needs_sshd
def test_ssh_removed_deploy_keys_no_longer_clone(peers):
    """A run's deploy keys go at teardown (one by one) or at the session sweep (by the run label)."""
    seed(peers, "sshgone")
    one, one_pub = sshgit.generate_keypair(peers.tmp / "keys", "one", comment="run-a")
    two, two_pub = sshgit.generate_keypair(peers.tmp / "keys", "two", comment="run-a")
    sshgit.add_authorized_key(peers.state, one_pub, read_only=True)
    sshgit.add_authorized_key(peers.state, two_pub, read_only=True)

    def clones(key: Path, into: str) -> bool:
        return git("clone", "-q", sshgit.ssh_url(peers.ssh_port, "sshgone"), str(peers.tmp / into),
                   env=ssh_env(peers, key), check=False).returncode == 0

    assert clones(one, "gone-1") and clones(two, "gone-2")
    assert sshgit.remove_authorized_key(peers.state, one_pub) == 1
    assert not clones(one, "gone-3") and clones(two, "gone-4")
    assert sshgit.remove_labelled_keys(peers.state, "run-a") == 1
    assert not clones(two, "gone-5")
    assert clones(peers.key, "gone-6")  # other keys stay


@needs_sshd
def test_ssh_wrong_host_key_fails_verification(peers):
    seed(peers, "sshhk")
    _, other_pub = sshgit.generate_keypair(peers.tmp / "keys", "fakehost")
    bad = peers.tmp / "known_hosts.bad"
    bad.write_text(f"[127.0.0.1]:{peers.ssh_port} {' '.join(other_pub.split()[:2])}\n")
    r = git("clone", sshgit.ssh_url(peers.ssh_port, "sshhk"), str(peers.tmp / "sshhk-c"),
            env=ssh_env(peers, peers.key, bad), check=False)
    assert r.returncode != 0
    assert "Host key verification failed" in r.stderr or "REMOTE HOST IDENTIFICATION HAS CHANGED" in r.stderr


@needs_sshd
def test_ssh_only_git_commands_and_known_repos(peers):
    ssh = sshgit.git_ssh_command(peers.key, peers.known_hosts).split()  # no spaces in tmp paths
    base = [*ssh, "-p", str(peers.ssh_port), f"{sshgit.SSH_USER}@127.0.0.1"]
    for cmd, expect in (("id", "only git-upload-pack"),
                        ("git-upload-pack '/git/../../etc.git'", "must be /git/"),
                        ("git-upload-pack '/git/nosuch.git'", "not found")):
        r = subprocess.run([*base, cmd], capture_output=True, text=True, timeout=GIT_TIMEOUT,
                           stdin=subprocess.DEVNULL)
        assert r.returncode != 0 and expect in r.stderr, (cmd, r.stderr)
    line = sshgit.known_hosts_line(peers.state, peers.ssh_port)
    assert line.startswith(f"[127.0.0.1]:{peers.ssh_port} ssh-ed25519 AAAA")
