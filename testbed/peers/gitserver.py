"""Git smart-HTTP server peer: `git http-backend` behind a threaded http.server.

Run it:  python -m gitops_conformance.testbed.peers.gitserver --root DIR --users FILE --port N

URL layout (repos are bare, created through the admin API or by hand under --root):

    http://127.0.0.1:PORT/git/<name>.git        clone / fetch / push (smart HTTP, protocol v0/v1/v2)
    POST   /api/repos        {"name": "x"}     create bare repo x.git (default branch main)  [write user]
    DELETE /api/repos/<name>                    delete it                                      [write user]
    GET    /api/repos                           list repo names                                 [any user]
    GET    /healthz                             200, no auth

Every request except /healthz needs HTTP Basic credentials of a user from the users file
({"name": {"password": "...", "access": "write"|"read"}}; a "token" is just a password). The
file is re-read when it changes, so a test can add users without a restart. A `read` user gets
403 for anything touching git-receive-pack. One log line per request goes to stderr:
client, method, path, user name, status, request body bytes (and "chunked" when the
request came chunked), response body bytes: never a credential.

The HTTP side is strict on purpose (go-git, used by Argo CD Image Updater, is less forgiving
than curl): chunked request bodies are decoded here and handed to the CGI with a real
CONTENT_LENGTH, a gzip Content-Encoding passes through as HTTP_CONTENT_ENCODING (http-backend
inflates it), the CGI's Status and headers are forwarded, and the response carries either the
CGI's Content-Length or is sent chunked (HTTP/1.1 keep-alive stays correct either way).
"""
from __future__ import annotations

import argparse
import base64
import hmac
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterable
from urllib.parse import urlsplit

from ..procs import ProcessSpec

HOST = "127.0.0.1"
REALM = "git"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
MAX_BODY = 2 * 1024**3  # a request body larger than this is refused (413)
BACKEND_TIMEOUT = 600.0  # seconds one git http-backend run may take before it is killed
SOCKET_TIMEOUT = 120.0  # idle socket timeout per connection
PROJECT_ROOT = Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------- helpers for fixtures

def write_users_file(path: Path, users: dict) -> Path:
    """Write a users file. `users` maps name -> {"password", "access"} or name -> (password, access)."""
    out = {}
    for name, v in users.items():
        if isinstance(v, (tuple, list)):
            password, access = v
        else:
            password, access = v["password"], v.get("access", "read")
        if access not in ("read", "write"):
            raise ValueError(f"user {name}: access must be 'read' or 'write'")
        out[name] = {"password": password, "access": access}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(out, f, indent=2)
    os.replace(tmp, path)
    return path


def repo_url(base_url: str, name: str, username: str | None = None) -> str:
    """Clone URL of repo `name`, optionally with a user name (never a password) in it."""
    name = name[:-4] if name.endswith(".git") else name
    parts = urlsplit(base_url.rstrip("/"))
    netloc = f"{username}@{parts.netloc}" if username else parts.netloc
    return f"{parts.scheme}://{netloc}/git/{name}.git"


def create_repo(base_url: str, name: str, auth: tuple[str, str], timeout: float = 10.0) -> str:
    """Create bare repo `name` through the admin API; returns its clone URL (no credentials)."""
    import requests

    r = requests.post(f"{base_url.rstrip('/')}/api/repos", json={"name": name}, auth=auth, timeout=timeout)
    if r.status_code not in (200, 201):
        raise RuntimeError(f"create_repo {name}: HTTP {r.status_code}: {r.text.strip()[:200]}")
    return r.json()["url"]


def delete_repo(base_url: str, name: str, auth: tuple[str, str], timeout: float = 10.0,
                missing_ok: bool = True) -> bool:
    """Delete repo `name`; returns False when it did not exist (and missing_ok)."""
    import requests

    name = name[:-4] if name.endswith(".git") else name
    r = requests.delete(f"{base_url.rstrip('/')}/api/repos/{name}", auth=auth, timeout=timeout)
    if r.status_code == 404 and missing_ok:
        return False
    if r.status_code not in (200, 204):
        raise RuntimeError(f"delete_repo {name}: HTTP {r.status_code}: {r.text.strip()[:200]}")
    return True


def askpass_env(state_dir: Path, username: str, password: str) -> dict[str, str]:
    """Environment for a `git` child so it answers the 401 challenge via GIT_ASKPASS.

    The password only lives in this env dict (and so the child's environment), not in argv,
    a URL or a file. Merge it over os.environ when running git.
    """
    script = Path(state_dir) / "git-askpass.sh"
    if not script.exists():
        script.parent.mkdir(parents=True, exist_ok=True)
        script.write_text(
            '#!/bin/sh\ncase "$1" in\n  Username*) printf "%s\\n" "$TESTBED_GIT_USERNAME" ;;\n'
            '  *) printf "%s\\n" "$TESTBED_GIT_PASSWORD" ;;\nesac\n')
        script.chmod(0o700)
    return {
        "GIT_ASKPASS": str(script),
        "GIT_TERMINAL_PROMPT": "0",
        "TESTBED_GIT_USERNAME": username,
        "TESTBED_GIT_PASSWORD": password,
        # no credential helper from the user's config may store or supply anything
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "credential.helper",
        "GIT_CONFIG_VALUE_0": "",
    }


def spec(state_dir: Path, port: int, users_file: Path, root: Path, name: str = "gitserver",
         tls: tuple[Path, Path] | None = None) -> ProcessSpec:
    """ProcessSpec for the Supervisor. Creates `root` if missing. `tls=(cert, key)` serves HTTPS
    (Image Updater v0.12 takes username/password write-back credentials for https:// URLs only)."""
    Path(root).mkdir(parents=True, exist_ok=True)
    Path(state_dir).mkdir(parents=True, exist_ok=True)
    pythonpath = os.pathsep.join(p for p in (str(PROJECT_ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return ProcessSpec(
        name=name,
        argv=[sys.executable, "-m", "gitops_conformance.testbed.peers.gitserver",
              "--root", str(Path(root).resolve()), "--users", str(Path(users_file).resolve()),
              "--port", str(port)] + (["--tls-cert", str(tls[0]), "--tls-key", str(tls[1])] if tls else []),
        env={"PYTHONPATH": pythonpath, "PYTHONUNBUFFERED": "1"},
        port=port,
        health_url=f"{'https' if tls else 'http'}://{HOST}:{port}/healthz",
        health_timeout=30.0,
        cwd=str(PROJECT_ROOT),
    )


# --------------------------------------------------------------------------- server

class Users:
    """The users file, re-read when its mtime/size changes."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._stamp: tuple[float, int] | None = None
        self._users: dict[str, dict] = {}

    def get(self) -> dict[str, dict]:
        with self._lock:
            try:
                st = self.path.stat()
                stamp = (st.st_mtime, st.st_size)
                if stamp != self._stamp:
                    data = json.loads(self.path.read_text())
                    if not isinstance(data, dict):
                        raise ValueError("users file must hold a JSON object")
                    self._users, self._stamp = data, stamp
            except (OSError, ValueError) as e:
                log(f"users file {self.path}: {type(e).__name__}; keeping the previous user list")
            return self._users

    def check(self, header: str | None) -> tuple[str | None, str | None]:
        """(username, access) for a valid `Authorization: Basic` header, else (None, None)."""
        if not header or not header[:6].lower() == "basic ":
            return None, None
        try:
            raw = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            return None, None
        username, sep, password = raw.partition(":")
        if not sep:
            return None, None
        entry = self.get().get(username)
        if not isinstance(entry, dict) or not isinstance(entry.get("password"), str):
            hmac.compare_digest(password.encode(), b"x" * 16)  # similar timing for unknown users
            return None, None
        if not hmac.compare_digest(password.encode(), entry["password"].encode()):
            return None, None
        access = entry.get("access", "read")
        return username, ("write" if access == "write" else "read")


_log_lock = threading.Lock()


def log(msg: str) -> None:
    with _log_lock:
        sys.stderr.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} gitserver {msg}\n")
        sys.stderr.flush()


class BadRequest(Exception):
    def __init__(self, status: int, msg: str):
        super().__init__(msg)
        self.status = status


class _Null:
    def write(self, b) -> int:
        return len(b)


class GitHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "testbed-gitserver/1"
    timeout = SOCKET_TIMEOUT

    # set on the class by make_server()
    root: Path
    users: Users
    git: str

    # ---- plumbing

    def log_request(self, code="-", size="-"):  # noqa: D401 - replaced by our own line
        try:
            self._status = int(code)
        except (TypeError, ValueError):
            pass

    def log_message(self, fmt, *args):  # errors from http.server's parser
        log(f"{self.client_address[0]} {fmt % args}")

    def _reset(self) -> None:
        self._status = 0
        self._user = None
        self._body_read = False
        self._sent = 0
        self._received = 0
        self._chunked = False
        if self.headers.get("Expect", "").lower() != "100-continue":
            self._expect_refused = False

    def _finish_log(self) -> None:
        path = self.path.split("?", 1)[0] if isinstance(self.path, str) else "-"
        query = self.path.split("?", 1)[1] if "?" in self.path else ""
        shown = path + ("?" + query if query.startswith("service=") else "")
        log(f"{self.client_address[0]} {self.command} {shown} user={self._user or '-'} "
            f"status={self._status or '-'} in={self._received}{' chunked' if self._chunked else ''} "
            f"out={self._sent}")

    def _dispatch(self) -> None:
        self._reset()
        try:
            self._route()
        except BadRequest as e:
            self._simple(e.status, str(e))
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            self.close_connection = True
        except Exception as e:  # noqa: BLE001 - a handler must answer, not die
            log(f"internal error on {self.command} {self.path.split('?', 1)[0]}: {type(e).__name__}: {e}")
            self.close_connection = True
            if not self._status:
                try:
                    self._simple(500, "internal error")
                except OSError:
                    pass
        finally:
            self._finish_log()

    do_GET = do_POST = do_HEAD = do_DELETE = do_PUT = _dispatch

    def _simple(self, status: int, text: str, headers: dict[str, str] | None = None,
                ctype: str = "text/plain; charset=utf-8") -> None:
        body = (text + "\n").encode() if not ctype.startswith("application/json") else text.encode()
        if self._has_body() and not self._body_read and not self._drain_body():
            self.close_connection = True  # we did not read what the client sent: do not reuse
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-cache")
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
            self._sent += len(body)

    def _json(self, status: int, obj) -> None:
        self._simple(status, json.dumps(obj) + "\n", ctype="application/json")

    def handle_expect_100(self) -> bool:
        """Send `100 Continue` only to a request we will accept; otherwise answer without the body."""
        self._expect_refused = False
        path = self.path.split("?", 1)[0]
        user, access = self.users.check(self.headers.get("Authorization"))
        pushing = path.endswith("/git-receive-pack") or "service=git-receive-pack" in self.path
        if path != "/healthz" and (user is None or (pushing and access != "write")):
            self._expect_refused = True  # the final status goes out instead of 100; the body is never sent
            return True
        return super().handle_expect_100()

    def _drain_body(self) -> bool:
        """Read and drop a small unread request body so the connection can be reused."""
        if getattr(self, "_expect_refused", False):
            return False
        cl = self.headers.get("Content-Length", "")
        if self.headers.get("Transfer-Encoding") or not cl.strip().isdigit() or int(cl) > (1 << 20):
            return False
        try:
            self._read_body_to(_Null())
            return True
        except (BadRequest, OSError):
            return False

    def _has_body(self) -> bool:
        te = self.headers.get("Transfer-Encoding", "")
        cl = self.headers.get("Content-Length")
        return bool(te) or (cl is not None and cl.strip() not in ("", "0"))

    def _auth(self) -> tuple[str, str] | None:
        user, access = self.users.check(self.headers.get("Authorization"))
        if user is None:
            self._simple(401, "authentication required", {"WWW-Authenticate": f'Basic realm="{REALM}"'})
            return None
        self._user = user
        return user, access

    # ---- request bodies

    def _read_body_to(self, out) -> int:
        """Read the request body (Content-Length or chunked) into file `out`; returns its size."""
        te = [t.strip().lower() for t in self.headers.get("Transfer-Encoding", "").split(",") if t.strip()]
        if te:
            if te != ["chunked"]:
                raise BadRequest(501, f"unsupported Transfer-Encoding {','.join(te)}")
            self._chunked = True
            n = self._read_chunked(out)
        else:
            cl = self.headers.get("Content-Length")
            if cl is None or cl.strip() == "":
                n = 0  # HTTP/1.1 request without either: no body
            else:
                try:
                    length = int(cl)
                except ValueError:
                    raise BadRequest(400, "bad Content-Length") from None
                if length < 0:
                    raise BadRequest(400, "bad Content-Length")
                if length > MAX_BODY:
                    raise BadRequest(413, "request body too large")
                n = self._copy(out, length)
        self._body_read = True
        self._received = n
        return n

    def _copy(self, out, length: int) -> int:
        left = length
        while left:
            buf = self.rfile.read(min(left, 1 << 16))
            if not buf:
                raise BadRequest(400, "request body shorter than Content-Length")
            out.write(buf)
            left -= len(buf)
        return length

    def _read_chunked(self, out) -> int:
        total = 0
        while True:
            line = self.rfile.readline(1026)
            if not line.endswith(b"\n"):
                raise BadRequest(400, "bad chunk header")
            size_s = line.split(b";", 1)[0].strip()
            try:
                size = int(size_s, 16)
            except ValueError:
                raise BadRequest(400, "bad chunk size") from None
            if size < 0:
                raise BadRequest(400, "bad chunk size")
            if size == 0:
                break
            total += size
            if total > MAX_BODY:
                raise BadRequest(413, "request body too large")
            self._copy(out, size)
            if self.rfile.read(2) not in (b"\r\n",):
                raise BadRequest(400, "chunk not followed by CRLF")
        # trailers (ignored) up to the blank line
        for _ in range(100):
            line = self.rfile.readline(8192)
            if line in (b"\r\n", b"\n", b""):
                return total
        raise BadRequest(400, "too many trailers")

    # ---- routing

    def _route(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/healthz" and self.command in ("GET", "HEAD"):
            return self._simple(200, "ok")
        if path == "/api/repos" or path.startswith("/api/repos/"):
            return self._api(path)
        if path.startswith("/git/"):
            return self._git(path)
        if self._auth() is None:
            return
        self._simple(404, "not found")

    def _api(self, path: str) -> None:
        who = self._auth()
        if who is None:
            return
        _, access = who
        if path == "/api/repos" and self.command == "GET":
            names = sorted(p.name[:-4] for p in self.root.glob("*.git") if (p / "HEAD").exists())
            return self._json(200, {"repos": names})
        if access != "write":
            return self._simple(403, "write access required")
        if path == "/api/repos" and self.command == "POST":
            with tempfile.TemporaryFile() as f:
                n = self._read_body_to(f)
                if n > 64 * 1024:
                    raise BadRequest(413, "body too large")
                f.seek(0)
                try:
                    data = json.loads(f.read() or b"{}")
                    name = data["name"]
                except (ValueError, KeyError, TypeError):
                    raise BadRequest(400, 'body must be JSON {"name": "..."}') from None
            name = self._valid_name(name)
            return self._create(name)
        if path.startswith("/api/repos/") and self.command == "DELETE":
            name = self._valid_name(path[len("/api/repos/"):])
            repo = self.root / f"{name}.git"
            if not (repo / "HEAD").exists():
                return self._simple(404, f"no repo {name}")
            shutil.rmtree(repo)
            log(f"deleted repo {name} (by {self._user})")
            return self._simple(200, f"deleted {name}")
        self._simple(405, "method not allowed")

    @staticmethod
    def _valid_name(name) -> str:
        if not isinstance(name, str):
            raise BadRequest(400, "name must be a string")
        if name.endswith(".git"):
            name = name[:-4]
        if not NAME_RE.match(name) or ".." in name:
            raise BadRequest(400, "bad repo name (letters, digits, '.', '_', '-')")
        return name

    def _create(self, name: str) -> None:
        repo = self.root / f"{name}.git"
        if repo.exists():
            return self._json(409, {"error": "exists", "name": name})
        tmp = self.root / f".{name}.git.tmp-{os.getpid()}-{threading.get_ident()}"
        try:
            for argv in ([self.git, "init", "--quiet", "--bare", "-b", "main", str(tmp)],
                         [self.git, "--git-dir", str(tmp), "config", "http.receivepack", "true"],
                         [self.git, "--git-dir", str(tmp), "config", "uploadpack.allowFilter", "true"]):
                subprocess.run(argv, check=True, capture_output=True, timeout=30, env=self._git_env())
            try:
                tmp.rename(repo)
            except OSError:
                return self._json(409, {"error": "exists", "name": name})
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        log(f"created repo {name} (by {self._user})")
        host = self.headers.get("Host") or f"{HOST}:{self.server.server_address[1]}"
        self._json(201, {"name": name, "url": f"http://{host}/git/{name}.git"})

    def _git_env(self) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.root),
            "GIT_CONFIG_NOSYSTEM": "1",
            # repos may be owned by another uid (e.g. made by a test as another user)
            "GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "safe.directory", "GIT_CONFIG_VALUE_0": "*",
        }

    # ---- git smart HTTP through the CGI

    def _git(self, path: str) -> None:
        who = self._auth()
        if who is None:
            return
        user, access = who
        query = self.path.split("?", 1)[1] if "?" in self.path else ""
        path_info = path[len("/git"):]
        if ".." in path_info.split("/"):
            return self._simple(404, "not found")
        wants_push = path_info.endswith("/git-receive-pack") or "service=git-receive-pack" in query
        if wants_push and access != "write":
            return self._simple(403, f"user {user} has read-only access")
        if self.command not in ("GET", "POST", "HEAD"):
            return self._simple(405, "method not allowed")

        with tempfile.TemporaryFile() as body:
            length = self._read_body_to(body)
            body.seek(0)
            env = {
                **self._git_env(),
                "GIT_PROJECT_ROOT": str(self.root),
                "GIT_HTTP_EXPORT_ALL": "1",
                "GATEWAY_INTERFACE": "CGI/1.1",
                "SERVER_PROTOCOL": self.request_version,
                "SERVER_SOFTWARE": self.server_version,
                "SERVER_NAME": HOST,
                "SERVER_PORT": str(self.server.server_address[1]),
                "REQUEST_METHOD": self.command,
                "PATH_INFO": path_info,
                "QUERY_STRING": query,
                "REMOTE_ADDR": self.client_address[0],
                "REMOTE_USER": user,
                "AUTH_TYPE": "Basic",
                "CONTENT_LENGTH": str(length),
            }
            if self.headers.get("Content-Type"):
                env["CONTENT_TYPE"] = self.headers["Content-Type"]
            if self.headers.get("Content-Encoding"):
                env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
            if self.headers.get("Git-Protocol"):
                env["GIT_PROTOCOL"] = env["HTTP_GIT_PROTOCOL"] = self.headers["Git-Protocol"]
            if self.headers.get("Accept"):
                env["HTTP_ACCEPT"] = self.headers["Accept"]
            self._run_cgi(env, body)

    def _run_cgi(self, env: dict[str, str], stdin) -> None:
        proc = subprocess.Popen([self.git, "http-backend"], env=env, stdin=stdin,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        timer = threading.Timer(BACKEND_TIMEOUT, proc.kill)
        timer.daemon = True
        timer.start()
        err_chunks: list[bytes] = []
        err_thread = threading.Thread(target=lambda: err_chunks.append(proc.stderr.read()), daemon=True)
        err_thread.start()
        try:
            status, headers = self._cgi_headers(proc.stdout)
            self._send_cgi_response(status, headers, proc.stdout)
        finally:
            try:
                proc.stdout.close()
            except OSError:
                pass
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
            timer.cancel()
            err_thread.join(timeout=10)
            err = b"".join(err_chunks).decode(errors="replace").strip()
            if err:
                for line in err.splitlines()[:20]:
                    log(f"http-backend: {line}")
            if proc.returncode not in (0, None) and proc.returncode != -9:
                log(f"http-backend exited {proc.returncode} on {env['REQUEST_METHOD']} {env['PATH_INFO']}")

    @staticmethod
    def _cgi_headers(out) -> tuple[int, list[tuple[str, str]]]:
        status = 200
        headers: list[tuple[str, str]] = []
        for _ in range(200):
            line = out.readline(65536)
            if not line:
                if not headers:
                    raise RuntimeError("http-backend produced no output")
                break
            line = line.rstrip(b"\r\n")
            if not line:
                break
            key, _, value = line.decode("latin-1").partition(":")
            key, value = key.strip(), value.strip()
            if key.lower() == "status":
                status = int(value.split()[0])
            else:
                headers.append((key, value))
        return status, headers

    def _send_cgi_response(self, status: int, headers: list[tuple[str, str]], out) -> None:
        hop = {"connection", "transfer-encoding", "keep-alive"}
        length = None
        self.send_response(status)
        for k, v in headers:
            if k.lower() in hop:
                continue
            if k.lower() == "content-length":
                length = int(v)
            self.send_header(k, v)
        head = self.command == "HEAD"
        chunked = length is None and not head
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if head:
            return
        if length is not None:
            left = length
            while left:
                buf = out.read1(min(left, 1 << 16)) if hasattr(out, "read1") else out.read(min(left, 1 << 16))
                if not buf:
                    self.close_connection = True  # short body: the client must not reuse this
                    break
                self.wfile.write(buf)
                self._sent += len(buf)
                left -= len(buf)
            return
        while True:
            buf = out.read1(1 << 16) if hasattr(out, "read1") else out.read(1 << 16)
            if not buf:
                break
            self.wfile.write(b"%x\r\n%s\r\n" % (len(buf), buf))
            self._sent += len(buf)
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


class GitHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64


def make_server(root: Path, users_file: Path, port: int, host: str = HOST) -> GitHTTPServer:
    from .bind import ALL_INTERFACES, listen_host

    if host == ALL_INTERFACES:
        listen_host(True)  # every interface only inside a pod
    elif host != HOST:
        raise ValueError(f"the git server binds only to {HOST} (or, in a pod, {ALL_INTERFACES})")
    git = shutil.which("git")
    if not git:
        raise RuntimeError("git not found on PATH")
    root = Path(root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    handler = type("BoundGitHandler", (GitHandler,), {"root": root, "users": Users(users_file), "git": git})
    return GitHTTPServer((host, port), handler)


def main(argv: Iterable[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m gitops_conformance.testbed.peers.gitserver", description=__doc__.splitlines()[0])
    ap.add_argument("--root", required=True, type=Path, help="directory holding the bare repos <name>.git")
    ap.add_argument("--users", required=True, type=Path, help="JSON users file")
    ap.add_argument("--port", required=True, type=int)
    ap.add_argument("--host", default=HOST, help=f"only {HOST} is allowed (see --in-pod)")
    ap.add_argument("--in-pod", action="store_true", help="listen on every interface (refused outside a Kubernetes pod)")
    ap.add_argument("--tls-cert", type=Path, help="serve HTTPS with this certificate (PEM) ...")
    ap.add_argument("--tls-key", type=Path, help="... and this key")
    args = ap.parse_args(list(argv) if argv is not None else None)
    if not args.users.exists():
        ap.error(f"users file {args.users} does not exist")
    from .bind import listen_host

    if args.host != HOST:
        ap.error(f"--host: only {HOST} is allowed (a pod passes --in-pod)")
    srv = make_server(args.root, args.users, args.port, listen_host(args.in_pod))
    if args.tls_cert:
        import ssl

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    n = len(Users(args.users).get())
    log(f"listening on {'https' if args.tls_cert else 'http'}://{srv.server_address[0]}:{srv.server_address[1]}/git/ root={args.root} users={n}")
    import signal

    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=srv.shutdown, daemon=True).start())
    try:
        srv.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        pass
    finally:
        srv.server_close()
        log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
