"""The notification receiver, run as a real process and spoken to over HTTP."""
from __future__ import annotations

import json
import time

import pytest
import requests

from gitops_conformance.testbed.peers import receiver
from gitops_conformance.testbed.peers.receiver import ReceiverClient, redacted, sha256_hex
from gitops_conformance.testbed.procs import Supervisor, free_port

TOKEN = "xoxb-test-" + "0123456789abcdef"  # made up; only its hash is given to the receiver
WRONG = "xoxb-wrong-token-value"


@pytest.fixture(scope="module")
def rcv(tmp_path_factory):
    state = tmp_path_factory.mktemp("receiver-state")
    sup = Supervisor(state)
    port = free_port()
    spec = receiver.spec(state, port, slack_token_sha256=sha256_hex(TOKEN))
    try:
        sup.wait_healthy(spec, sup.start(spec))
        yield {"url": f"http://127.0.0.1:{port}", "state": state,
               "client": ReceiverClient(f"http://127.0.0.1:{port}")}
    finally:
        sup.stop(spec.name)


@pytest.fixture
def client(rcv) -> ReceiverClient:
    rcv["client"].clear()
    return rcv["client"]


def post(rcv, path, **kw):
    return requests.post(rcv["url"] + path, timeout=5, **kw)


def test_healthz(rcv):
    assert requests.get(rcv["url"] + "/healthz", timeout=5).status_code == 200


def test_slack_post_message_form_with_bearer(rcv, client):
    r1 = post(rcv, "/slack/api/chat.postMessage", headers={"Authorization": f"Bearer {TOKEN}"},
              data={"channel": "deploys", "text": "app myapp synced"})
    r2 = post(rcv, "/slack/api/chat.postMessage", headers={"Authorization": f"Bearer {TOKEN}"},
              data={"channel": "deploys", "text": "again"})
    b1, b2 = r1.json(), r2.json()
    assert r1.status_code == 200 and b1["ok"] is True and b1["channel"] == "C1"
    assert b1["ts"] != b2["ts"]
    [rec, _] = client.wait_for("/slack/api/chat.postMessage", timeout=5, min_count=2)
    assert rec["method"] == "POST"
    assert rec["form"] == {"channel": "deploys", "text": "app myapp synced"}
    assert rec["auth_ok"] is True
    assert rec["headers"]["Authorization"] == f"Bearer {redacted(TOKEN)}"
    assert rec["headers"]["Authorization"] == f"Bearer <redacted sha256:{sha256_hex(TOKEN)[:12]}>"
    assert rec["response"]["ts"] == b1["ts"]


def test_slack_json_body_and_token_form_field(rcv, client):
    r = post(rcv, "/slack/api/chat.postMessage", headers={"Authorization": f"Bearer {TOKEN}"},
             json={"channel": "deploys", "blocks": [{"type": "section"}]})
    assert r.json()["ok"] is True
    r = post(rcv, "/slack/api/chat.update", data={"token": TOKEN, "channel": "C1", "ts": "1.000001", "text": "x"})
    assert r.json()["ok"] is True and r.json()["channel"] == "C1" and r.json()["ts"]
    r = post(rcv, "/slack/api/conversations.list", data={"token": TOKEN})
    assert r.json() == {"ok": True}
    recs = client.received("/slack/api/")
    assert [x["path"] for x in recs] == ["/slack/api/chat.postMessage", "/slack/api/chat.update",
                                         "/slack/api/conversations.list"]
    assert recs[0]["json"] == {"channel": "deploys", "blocks": [{"type": "section"}]}
    assert recs[0]["form"] is None
    assert recs[1]["form"]["token"] == redacted(TOKEN)
    assert recs[1]["auth_ok"] is True and recs[1]["token_sha256_12"] == sha256_hex(TOKEN)[:12]
    assert TOKEN not in recs[1]["body"] and "channel=C1" in recs[1]["body"]


def test_slack_wrong_or_missing_token_is_invalid_auth(rcv, client):
    r = post(rcv, "/slack/api/chat.postMessage", headers={"Authorization": f"Bearer {WRONG}"},
             data={"channel": "deploys", "text": "hi"})
    assert r.status_code == 200 and r.json() == {"ok": False, "error": "invalid_auth"}
    r = post(rcv, "/slack/api/chat.postMessage", data={"channel": "deploys", "token": WRONG})
    assert r.json() == {"ok": False, "error": "invalid_auth"}
    r = post(rcv, "/slack/api/chat.postMessage", data={"channel": "deploys"})
    assert r.json() == {"ok": False, "error": "not_authed"}
    recs = client.received("/slack/api/chat.postMessage")
    assert [x["auth_ok"] for x in recs] == [False, False, False]
    assert recs[0]["headers"]["Authorization"] == f"Bearer {redacted(WRONG)}"


def test_generic_webhook_and_unknown_path(rcv, client):
    r = post(rcv, "/hooks/github?x=1", headers={"X-Custom": "yes"}, json={"state": "success"})
    assert r.status_code == 200 and r.json() == {}
    r = requests.put(rcv["url"] + "/hooks/other/sub/path", data="plain text", timeout=5)
    assert r.status_code == 200 and r.json() == {}
    r = requests.get(rcv["url"] + "/nowhere", timeout=5)
    assert r.status_code == 404
    [rec] = client.received("/hooks/github")
    assert rec["query"] == {"x": ["1"]} and rec["headers"]["X-Custom"] == "yes"
    assert rec["json"] == {"state": "success"} and json.loads(rec["body"]) == {"state": "success"}
    [rec] = client.received("/hooks/other")
    assert rec["method"] == "PUT" and rec["body"] == "plain text" and rec["json"] is None
    assert [x["path"] for x in client.received("/nowhere")] == ["/nowhere"]


def test_query_since_clear_and_wait_for(rcv, client):
    post(rcv, "/hooks/a", json={"n": 1})
    time.sleep(0.05)
    mark = time.time()
    post(rcv, "/hooks/a", json={"n": 2})
    post(rcv, "/hooks/b", json={"n": 3})
    assert [x["json"]["n"] for x in client.received("/hooks/a")] == [1, 2]
    assert [x["json"]["n"] for x in client.received("/hooks/a", since=mark)] == [2]
    assert len(client.received("/hooks/")) == 3
    got = client.wait_for("/hooks/", lambda r: r["json"]["n"] >= 2, timeout=5)
    assert [x["json"]["n"] for x in got] == [2, 3]

    def n_is_99(r):
        return r["json"]["n"] == 99

    started = time.monotonic()
    with pytest.raises(TimeoutError) as exc:
        client.wait_for("/hooks/a", n_is_99, timeout=1.0)
    assert time.monotonic() - started < 3
    msg = str(exc.value)
    assert "/hooks/a" in msg and "n_is_99" in msg and "saw 2" in msg and '"n": 2' in msg
    assert client.clear() == 3
    assert client.received("/") == []


def test_wait_for_sees_a_late_request(rcv, client):
    import threading
    threading.Timer(0.5, lambda: post(rcv, "/hooks/late", data="x")).start()
    got = client.wait_for("/hooks/late", timeout=10)
    assert got[0]["body"] == "x"


def test_jsonl_file_has_every_request_and_no_secret(rcv, client):
    post(rcv, "/slack/api/chat.postMessage", headers={"Authorization": f"Bearer {TOKEN}"},
         data={"channel": "deploys", "text": "jsonl", "token": TOKEN})
    post(rcv, "/hooks/jsonl?token=" + TOKEN, headers={"Authorization": f"Basic {TOKEN}"},
         json={"token": TOKEN, "msg": "hi"})
    client.wait_for("/hooks/jsonl", timeout=5)
    path = receiver.jsonl_path(rcv["state"])
    text = path.read_text()
    assert TOKEN not in text and WRONG not in text  # every test's requests are in this file
    lines = [json.loads(line) for line in text.splitlines()]
    assert lines and all({"time", "method", "path", "query", "headers", "body"} <= set(x) for x in lines)
    last = lines[-1]
    assert last["path"] == "/hooks/jsonl"
    assert last["headers"]["Authorization"] == f"Basic {redacted(TOKEN)}"
    assert last["query"] == {"token": [redacted(TOKEN)]} and last["json"]["token"] == redacted(TOKEN)
    assert last["json"]["msg"] == "hi"
    log = (rcv["state"] / "logs" / "receiver.log").read_text()
    assert "/hooks/jsonl" in log and TOKEN not in log
    # the query endpoint answers the same redacted facts
    assert client.received("/hooks/jsonl")[0]["headers"]["Authorization"] == f"Basic {redacted(TOKEN)}"
