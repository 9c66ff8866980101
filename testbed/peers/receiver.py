"""Notification receiver: the other end of what Argo CD's notifications controller sends.

Runs as a host process (`python -m gitops_conformance.testbed.peers.receiver --port P --data-dir D`) and
records every request it is sent (except its own /healthz and /_received control
endpoints) to `<data-dir>/received.jsonl`, one JSON object a line:

    {"seq": 1, "time": 1700000000.12, "method": "POST", "path": "/slack/api/chat.postMessage",
     "query": {"a": ["1"]}, "headers": {...}, "body": "...", "form": {...} | null,
     "json": ... | null, "status": 200, "response": {...}, "auth_ok": true | false | null}

Secrets are never stored: `Authorization` (and similar) header values and any `token`
field (form, query string or JSON object) are replaced by
`<redacted sha256:first12>`, keeping the scheme (`Bearer <redacted sha256:...>`), so a
test can check that the right token arrived by hashing the one it configured
(`redacted(token)` below) without the value ever being written anywhere.

Endpoints:
  /slack/api/chat.postMessage, /slack/api/chat.update  -> {"ok": true, "channel": "C1", "ts": "<unique>"}
  /slack/api/<other method>                           -> {"ok": true}
      With --slack-token-sha256 HEX, a bearer token (Authorization header, or a `token`
      form/query/JSON field) that does not hash to HEX gets HTTP 200
      {"ok": false, "error": "invalid_auth"} (no token at all: "not_authed", as Slack
      answers) and the record has "auth_ok": false.
  /hooks/<name>...                                    -> 200 {}
  anything else                                       -> 404 {"error": "not found"} (recorded too)
  GET /_received?path_prefix=/hooks/x&since=<epoch>   -> JSON list of records (oldest first)
  DELETE /_received                                   -> clears what /_received returns
                                                         (the JSONL file keeps the full history)
  GET /healthz                                        -> 200
"""
from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import re
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable

import requests

from ..procs import ProcessSpec

REPO_ROOT = Path(__file__).resolve().parents[2]
JSONL_NAME = "received.jsonl"
MAX_BODY = 4 * 1024 * 1024  # a notification is a few KiB; refuse to buffer more than this

SECRET_HEADERS = {"authorization", "proxy-authorization", "cookie", "x-api-key", "x-auth-token"}
SECRET_FIELDS = {"token"}
CONTROL_PATHS = ("/_received", "/healthz")


def sha256_hex(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def redacted(secret: str) -> str:
    """How a secret value appears in the records: `<redacted sha256:first12>`."""
    return f"<redacted sha256:{sha256_hex(secret)[:12]}>"


def redact_header_value(value: str) -> str:
    """Keep an auth scheme word (`Bearer`, `Basic`), hash the credential after it."""
    scheme, sep, cred = value.partition(" ")
    if sep and cred and scheme.isalpha():
        return f"{scheme} {redacted(cred.strip())}"
    return redacted(value)


def _redact_json(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: (redacted(str(v)) if k.lower() in SECRET_FIELDS and isinstance(v, str)
                    else _redact_json(v)) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_redact_json(v) for v in obj]
    return obj


def _redact_pairs(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(k, redacted(v) if k.lower() in SECRET_FIELDS else v) for k, v in pairs]


def _bearer(value: str | None) -> str | None:
    if not value:
        return None
    scheme, _, cred = value.strip().partition(" ")
    if scheme.lower() == "bearer" and cred.strip():
        return cred.strip()
    return None


def _child_env() -> dict[str, str]:
    """Let `python -m gitops_conformance.testbed.peers...` import the repo without an install, keeping any PYTHONPATH."""
    extra = os.environ.get("PYTHONPATH")
    return {"PYTHONPATH": str(REPO_ROOT) + (os.pathsep + extra if extra else ""), "PYTHONUNBUFFERED": "1"}


class _Store:
    """The records: in memory for /_received, appended to the JSONL file for the record."""

    def __init__(self, data_dir: Path):
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = data_dir / JSONL_NAME
        self.lock = threading.Lock()
        self.records: list[dict] = []
        self.seq = itertools.count(1)

    def add(self, record: dict) -> None:
        with self.lock:
            record["seq"] = next(self.seq)
            self.records.append(record)
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps(record, sort_keys=True) + "\n")

    def query(self, path_prefix: str, since: float | None) -> list[dict]:
        with self.lock:
            return [r for r in self.records
                    if r["path"].startswith(path_prefix) and (since is None or r["time"] >= since)]

    def clear(self) -> int:
        with self.lock:
            n = len(self.records)
            self.records.clear()
            return n


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "gitops-conformance-receiver/1"
    # set on the subclass made by make_server
    store: _Store
    slack_token_sha256: str | None = None
    ts_counter: itertools.count

    def log_message(self, fmt: str, *args: Any) -> None:
        # one line per request, no headers, no query string (it may carry ?token=)
        line = re.sub(r"\?[^\s'\"]*", "?<query omitted>", fmt % args)
        sys.stderr.write("%s %s\n" % (self.log_date_time_string(), line))

    # --- plumbing -------------------------------------------------------------------
    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks, total = [], 0
            while True:
                size_line = self.rfile.readline(1024)
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    break
                total += size
                if total > MAX_BODY:
                    raise ValueError("body too large")
                chunks.append(self.rfile.read(size))
                self.rfile.readline(1024)
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise ValueError("body too large")
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    # --- dispatch -------------------------------------------------------------------
    def _handle(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        path = url.path
        try:
            raw = self._read_body()
        except ValueError as e:
            self.close_connection = True
            self._send(413, {"error": str(e)})
            return
        if path == "/healthz":
            self._send(200, {"ok": True})
            return
        if path == "/_received":
            self._control(url)
            return
        self._record_and_answer(url, raw)

    def _control(self, url: urllib.parse.SplitResult) -> None:
        q = urllib.parse.parse_qs(url.query)
        if self.command == "GET":
            try:
                since = float(q["since"][0]) if q.get("since") else None
            except ValueError:
                self._send(400, {"error": "since must be a float epoch"})
                return
            prefix = q.get("path_prefix", ["/"])[0]
            self._send(200, self.store.query(prefix, since))
        elif self.command == "DELETE":
            self._send(200, {"cleared": self.store.clear()})
        else:
            self._send(405, {"error": "GET or DELETE"})

    def _record_and_answer(self, url: urllib.parse.SplitResult, raw: bytes) -> None:
        text = raw.decode("utf-8", errors="replace")
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        query_pairs = urllib.parse.parse_qsl(url.query, keep_blank_values=True)

        form_pairs: list[tuple[str, str]] | None = None
        if ctype == "application/x-www-form-urlencoded":
            form_pairs = urllib.parse.parse_qsl(text, keep_blank_values=True)
        parsed_json: Any = None
        if ctype.endswith("json") or (not ctype and text.lstrip()[:1] in ("{", "[")):
            try:
                parsed_json = json.loads(text) if text.strip() else None
            except ValueError:
                parsed_json = None

        # the token the request carries, found before anything is redacted
        presented = _bearer(self.headers.get("Authorization"))
        for k, v in (form_pairs or []) + query_pairs:
            if presented is None and k == "token" and v:
                presented = v
        if presented is None and isinstance(parsed_json, dict) and isinstance(parsed_json.get("token"), str):
            presented = parsed_json["token"]

        status, response, auth_ok = self._answer(url.path, presented)

        headers: dict[str, str] = {}
        for k, v in self.headers.items():
            v = redact_header_value(v) if k.lower() in SECRET_HEADERS else v
            headers[k] = f"{headers[k]}, {v}" if k in headers else v
        body = text
        form = None
        if form_pairs is not None:
            safe = _redact_pairs(form_pairs)
            body = urllib.parse.urlencode(safe)
            form = {}
            for k, v in safe:
                form.setdefault(k, []).append(v)
            form = {k: (v[0] if len(v) == 1 else v) for k, v in form.items()}
        if parsed_json is not None:
            parsed_json = _redact_json(parsed_json)
            if any(s in text for s in SECRET_FIELDS):
                body = json.dumps(parsed_json)
        if presented and presented in body:  # e.g. an unparsed body that quotes the token
            body = body.replace(presented, redacted(presented))
        query: dict[str, list[str]] = {}
        for k, v in _redact_pairs(query_pairs):
            query.setdefault(k, []).append(v)

        self.store.add({
            "time": time.time(),
            "method": self.command,
            "path": url.path,
            "query": query,
            "headers": headers,
            "body": body,
            "form": form,
            "json": parsed_json,
            "status": status,
            "response": response,
            "auth_ok": auth_ok,
            "token_sha256_12": sha256_hex(presented)[:12] if presented else None,
        })
        self._send(status, response)

    def _answer(self, path: str, presented: str | None) -> tuple[int, dict, bool | None]:
        if path.startswith("/slack/api/"):
            method = path[len("/slack/api/"):].strip("/")
            auth_ok: bool | None = None
            if self.slack_token_sha256:
                auth_ok = bool(presented) and sha256_hex(presented).lower() == self.slack_token_sha256
                if not auth_ok:
                    return 200, {"ok": False, "error": "invalid_auth" if presented else "not_authed"}, False
            if method in ("chat.postMessage", "chat.update"):
                ts = f"{int(time.time())}.{next(self.ts_counter):06d}"
                return 200, {"ok": True, "channel": "C1", "ts": ts}, auth_ok
            return 200, {"ok": True}, auth_ok
        if path.startswith("/hooks/") and len(path) > len("/hooks/"):
            return 200, {}, None
        return 404, {"error": "not found"}, None

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle


def make_server(port: int, data_dir: Path, slack_token_sha256: str | None = None,
                host: str = "127.0.0.1") -> ThreadingHTTPServer:
    handler = type("Handler", (_Handler,), {
        "store": _Store(Path(data_dir)),
        "slack_token_sha256": slack_token_sha256.lower() if slack_token_sha256 else None,
        "ts_counter": itertools.count(1),
    })
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m gitops_conformance.testbed.peers.receiver", description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--data-dir", required=True)
    p.add_argument("--slack-token-sha256", default=None, help="hex sha256 of the Slack bot token to accept")
    p.add_argument("--in-pod", action="store_true", help="listen on every interface (refused outside a Kubernetes pod)")
    args = p.parse_args(argv)
    from .bind import listen_host

    host = listen_host(args.in_pod)
    server = make_server(args.port, Path(args.data_dir), args.slack_token_sha256, host)
    print(f"receiver listening on {host}:{args.port}, recording to {Path(args.data_dir) / JSONL_NAME}",
          file=sys.stderr, flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def spec(state_dir: Path, port: int, slack_token_sha256: str | None = None, name: str = "receiver") -> ProcessSpec:
    data_dir = Path(state_dir) / name
    argv = [sys.executable, "-m", "gitops_conformance.testbed.peers.receiver", "--port", str(port), "--data-dir", str(data_dir)]
    if slack_token_sha256:
        argv += ["--slack-token-sha256", slack_token_sha256]
    return ProcessSpec(
        name=name, argv=argv, env=_child_env(), port=port,
        health_url=f"http://127.0.0.1:{port}/healthz", health_timeout=15.0, cwd=str(REPO_ROOT),
    )


def jsonl_path(state_dir: Path, name: str = "receiver") -> Path:
    return Path(state_dir) / name / JSONL_NAME


class ReceiverClient:
    """What a test uses to see what the notifications controller sent."""

    def __init__(self, base_url: str, request_timeout: float = 5.0):
        self.base_url = base_url.rstrip("/")
        self.request_timeout = request_timeout
        self.session = requests.Session()

    def received(self, path_prefix: str = "/", since: float | None = None) -> list[dict]:
        params: dict[str, str] = {"path_prefix": path_prefix}
        if since is not None:
            params["since"] = repr(float(since))
        r = self.session.get(f"{self.base_url}/_received", params=params, timeout=self.request_timeout)
        r.raise_for_status()
        return r.json()

    def wait_for(self, path_prefix: str, predicate: Callable[[dict], bool] | None = None,
                 timeout: float = 30.0, since: float | None = None, min_count: int = 1,
                 interval: float = 0.25, waiter=None) -> list[dict]:
        """Poll until at least `min_count` recorded requests under `path_prefix` match
        `predicate` (any request when None); return the matching ones. On timeout raise
        TimeoutError naming what was awaited and summarising what did arrive. `waiter`
        (gitops_conformance.waiter) bounds the wait: the session's, or scale 1."""
        # imported here: this module also runs in the peers image, which has no tenacity
        from gitops_conformance.waiter import Waiter

        seen: list[dict] = []
        last_error: Exception | None = None

        def matching() -> list[dict]:
            nonlocal seen, last_error
            try:
                seen, last_error = self.received(path_prefix, since), None
            except requests.RequestException as e:
                last_error = e
                return []
            return [r for r in seen if predicate is None or predicate(r)]

        polled = (waiter or Waiter()).poll(matching, timeout=timeout, done=lambda found: len(found) >= min_count,
                                           initial_wait=interval, max_wait=interval)
        if polled.done:
            return polled.value
        what = getattr(predicate, "__name__", repr(predicate)) if predicate else "any request"
        lines = [f"{r['method']} {r['path']} -> {r['status']} body={r['body'][:160]!r}" for r in seen[-5:]]
        msg = (f"waited {polled.bound:.1f}s at {self.base_url} for {min_count} request(s) under {path_prefix!r} "
               f"matching {what}; saw {len(seen)} under that prefix"
               + (":\n  " + "\n  ".join(lines) if lines else "")
               + (f"\n  last error: {last_error}" if last_error else ""))
        raise TimeoutError(msg)

    def clear(self) -> int:
        r = self.session.delete(f"{self.base_url}/_received", timeout=self.request_timeout)
        r.raise_for_status()
        return r.json()["cleared"]


if __name__ == "__main__":
    main()
