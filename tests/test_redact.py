"""Unit tests for gitops_conformance.redact: planted secrets must not survive any spelling."""
from __future__ import annotations

import base64
import json
import logging
from urllib.parse import quote, quote_plus

import pytest
import yaml

from gitops_conformance.redact import (MASK, RedactingFilter, clear_secrets, install_log_redaction,
                             redact, redact_obj, register_secret, uninstall_log_redaction)

SECRET = "Sup3r-S3cret/pa$$+w0rd=@x"


@pytest.fixture(autouse=True)
def _clean_registry():
    clear_secrets()
    yield
    clear_secrets()


def b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


def assert_clean(text: str, *needles: str) -> None:
    for needle in needles or (SECRET,):
        assert needle not in text, f"{needle!r} leaked in {text!r}"


# --- registered secrets --------------------------------------------------------

@pytest.mark.parametrize("spelling", [
    SECRET,
    b64(SECRET),
    b64(SECRET).rstrip("="),
    base64.urlsafe_b64encode(SECRET.encode()).decode(),
    b64(SECRET + "\n"),  # echo secret | base64
    quote(SECRET, safe=""),
    quote(SECRET, safe="").lower(),
    quote_plus(SECRET),
    json.dumps(SECRET)[1:-1],
])
def test_registered_secret_in_every_spelling(spelling):
    register_secret(SECRET)
    text = f"before {spelling} after"
    out = redact(text)
    assert_clean(out, spelling)
    assert out.startswith("before ") and out.endswith(" after")
    assert MASK in out


def test_secret_with_quotes_inside_json_dump():
    tricky = 'a"b\\c-long'
    register_secret(tricky)
    dump = json.dumps({"config": {"value": tricky}, "list": [tricky]})
    assert_clean(redact(dump), tricky, json.dumps(tricky)[1:-1])


def test_registered_secret_inside_json_dump():
    register_secret(SECRET)
    dump = json.dumps({"repo": "https://git.example.com", "auth": {"value": SECRET}}, indent=2)
    out = redact(dump)
    assert_clean(out)
    assert "https://git.example.com" in out


def test_registered_secret_in_exception_message():
    register_secret(SECRET)
    try:
        raise RuntimeError(f"git clone failed: remote rejected credentials {SECRET}")
    except RuntimeError as exc:
        out = redact(exc)
    assert_clean(out)
    assert out.startswith("git clone failed")


def test_short_values_are_ignored():
    for short in ("", "a", "abc", None):
        register_secret(short)
    assert redact("abc a b 123") == "abc a b 123"


def test_bytes_secret_and_multiple_secrets_longest_first():
    register_secret(b"token-one-1234")
    register_secret("token-one-1234-and-more")
    assert redact("x token-one-1234-and-more y token-one-1234") == f"x {MASK} y {MASK}"


def test_clear_secrets_forgets():
    register_secret("forget-me-please")
    clear_secrets()
    assert redact("forget-me-please") == "forget-me-please"


def test_non_string_input():
    register_secret("12345678")
    assert redact(12345678) == MASK


def test_idempotent():
    register_secret(SECRET)
    text = f"password: {SECRET} Authorization: Bearer {SECRET} https://u:{SECRET}@h/x"
    once = redact(text)
    assert redact(once) == once


# --- pattern-based (nothing registered) ----------------------------------------

@pytest.mark.parametrize("text, leaked", [
    ("Authorization: Bearer abc.def-ghi_jkl", "abc.def-ghi_jkl"),
    ("authorization: basic dXNlcjpodW50ZXIy", "dXNlcjpodW50ZXIy"),
    ("{'Authorization': 'Bearer tok123456'}", "tok123456"),
    ('curl -H "Authorization: Basic YWRtaW46aHVudGVyMg==" https://x', "YWRtaW46aHVudGVyMg"),
    ("sent header bearer abcdefghijklmnopqrstuvwxyz012345", "abcdefghijklmnopqrstuvwxyz012345"),
    ('{"password": "hunter2-json"}', "hunter2-json"),
    ('{"password":"hu\\"nter2"}', "nter2"),
    ("{'db_password': 'hunter2-repr'}", "hunter2-repr"),
    ("password: hunter2-yaml", "hunter2-yaml"),
    ("  password: 'hunter2-quoted'", "hunter2-quoted"),
    ("admin.password: hunter2 with spaces", "hunter2 with spaces"),
    ("GET /api?user=x&token=abc123def&page=2", "abc123def"),
    ("grant_type=password&password=hunter2-form&client_secret=cs-999", "hunter2-form"),
    ("client_secret=cs-999&x=1", "cs-999"),
    ("access_token=ya29.abcdef", "ya29.abcdef"),
    ("argocd login --password hunter2-cli --username admin", "hunter2-cli"),
    ("argocd repo add x --auth-token tok-cli-123", "tok-cli-123"),
    ("cloning https://bob:hunter2-url@github.com/org/repo.git", "hunter2-url"),
    ("https://x-access-token:p@ss-with-at@github.com/o/r", "ss-with-at"),
    ("auth-token: eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZG1pbiJ9.c2lnbmF0dXJl", "eyJzdWIiOiJhZG1pbiJ9"),
    ("argocd.token=eyJhbGciOiJIUzI1NiJ9.eyJqdGkiOiIxIn0.AbC_dEf-123 trailing",
     "eyJqdGkiOiIxIn0"),
    ("header eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJhcmdvY2QifQ.sig", "eyJpc3MiOiJhcmdvY2QifQ"),
    ("GH token ghp_abcdefghijklmnopqrstuvwxyz0123456789", "ghp_abcdefghij"),
    ("sshPrivateKey: |\n  -----BEGIN OPENSSH PRIVATE KEY-----\n  b3BlbnNzaC1rZXktdjEAAAA\n"
     "  -----END OPENSSH PRIVATE KEY-----\n", "b3BlbnNzaC1rZXktdjEAAAA"),
])
def test_patterns_without_registration(text, leaked):
    out = redact(text)
    assert_clean(out, leaked)
    assert MASK in out


@pytest.mark.parametrize("text", [
    "clone https://github.com/argoproj/argocd-example-apps.git",
    "ssh://git@github.com/org/repo.git",
    "Application guestbook: Synced/Healthy after 12.3s",
    "Authorization failed for project default",
    "secretName: argocd-repo-creds",
    "kind: ConfigMap\ndata:\n  policy.csv: |\n    p, role:dev, applications, get, dev/*, allow\n",
    "the token was rejected",
])
def test_ordinary_text_is_left_alone(text):
    assert redact(text) == text


def test_url_userinfo_keeps_user_and_host():
    assert redact("https://bob:hunter2@github.com/o/r") == f"https://bob:{MASK}@github.com/o/r"


# --- Kubernetes Secrets ----------------------------------------------------------

SECRET_YAML = """\
apiVersion: v1
data:
  password: aHVudGVyMi15YW1s
  sshPrivateKey: LS0tLS1CRUdJTiBPUEVOU1NIIFBSSVZBVEUgS0VZLS0tLS0=
  url: aHR0cHM6Ly9naXRodWIuY29tL29yZy9yZXBv
kind: Secret
metadata:
  annotations:
    kubectl.kubernetes.io/last-applied-configuration: |
      {"apiVersion":"v1","data":{"password":"aHVudGVyMi1hbm5vdA=="},"kind":"Secret","metadata":{"name":"repo"}}
  labels:
    argocd.argoproj.io/secret-type: repository
  name: private-repo
  namespace: argocd
stringData:
  note: |
    line one hunter2-multiline
    line two
type: Opaque
"""


def test_kubectl_yaml_of_a_secret_keeps_keys_masks_values():
    out = redact(SECRET_YAML)
    for leaked in ("aHVudGVyMi15YW1s", "LS0tLS1CRUdJTi", "aHR0cHM6Ly9naXRodWIuY29tL29yZy9yZXBv",
                   "aHVudGVyMi1hbm5vdA", "hunter2-multiline"):
        assert_clean(out, leaked)
    doc = yaml.safe_load(out)
    assert set(doc["data"]) == {"password", "sshPrivateKey", "url"}
    assert set(doc["data"].values()) == {MASK}
    assert doc["metadata"]["name"] == "private-repo"
    assert doc["metadata"]["labels"] == {"argocd.argoproj.io/secret-type": "repository"}
    assert doc["type"] == "Opaque"


def test_secret_in_a_kubectl_list():
    listing = yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "a"},
         "data": {"token": "dG9rZW4tdmFsdWUtMQ=="}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "b"},
         "data": {"cert": "Y2VydC12YWx1ZS0y"}},
    ]})
    out = redact(listing)
    assert_clean(out, "dG9rZW4tdmFsdWUtMQ", "Y2VydC12YWx1ZS0y")
    items = yaml.safe_load(out)["items"]
    assert [i["data"] for i in items] == [{"token": MASK}, {"cert": MASK}]


@pytest.mark.parametrize("indent", [None, 2, 4])
def test_kubectl_json_of_a_secret(indent):
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "repo", "annotations": {
        "kubectl.kubernetes.io/last-applied-configuration": json.dumps(
            {"kind": "Secret", "data": {"password": "aW5uZXItcGFzcw=="}})}},
        "data": {"password": "b3V0ZXItcGFzcw==", "username": "YWRtaW4="}, "type": "Opaque"}
    out = redact(json.dumps(secret, indent=indent))
    assert_clean(out, "b3V0ZXItcGFzcw", "aW5uZXItcGFzcw", "YWRtaW4=")
    parsed = json.loads(out)  # still valid JSON
    assert parsed["data"] == {"password": MASK, "username": MASK}
    assert parsed["metadata"]["name"] == "repo"


def test_registered_secret_in_secret_yaml_base64():
    register_secret("plain-repo-password")
    manifest = yaml.safe_dump({"kind": "Secret", "data": {"x": b64("plain-repo-password")}})
    assert_clean(redact(manifest), b64("plain-repo-password"))
    # even in a ConfigMap (not a Secret) the registered value is caught
    cm = f"kind: ConfigMap\ndata:\n  leaked: {b64('plain-repo-password')}\n"
    assert_clean(redact(cm), b64("plain-repo-password"), b64("plain-repo-password").rstrip("="))


# --- redact_obj -------------------------------------------------------------------

def test_redact_obj_nested():
    register_secret(SECRET)
    obj = {
        "message": f"failed with {SECRET}",
        "headers": {"Authorization": "Bearer abcdefghijklmnop", "Accept": "json"},
        "creds": [{"username": "admin", "password": "hunter2-obj"}, ("tuple", SECRET)],
        "apiKey": 12345,
        "count": 3,
        "manifest": {"kind": "Secret", "data": {"a": "YQ==", "b": "Yg=="}, "metadata": {"name": "n"}},
        "configmap": {"kind": "ConfigMap", "data": {"policy.csv": "p, role:x"}},
    }
    out = redact_obj(obj)
    dumped = json.dumps(out)
    assert_clean(dumped, SECRET, "abcdefghijklmnop", "hunter2-obj", "12345", "YQ==")
    assert out["creds"][0] == {"username": "admin", "password": MASK}
    assert out["creds"][1] == ("tuple", MASK)
    assert out["count"] == 3
    assert out["manifest"]["data"] == {"a": MASK, "b": MASK}
    assert out["manifest"]["metadata"] == {"name": "n"}
    assert out["configmap"]["data"] == {"policy.csv": "p, role:x"}
    assert obj["creds"][0]["password"] == "hunter2-obj"  # input untouched


# --- logging ----------------------------------------------------------------------

def test_logging_filter_and_record_factory(caplog):
    register_secret(SECRET)
    logger = logging.getLogger("gitops-conformance-test")
    handler_filter = RedactingFilter()
    record = logger.makeRecord("n", logging.INFO, __file__, 1, "pw=%s", (SECRET,), None)
    handler_filter.filter(record)
    assert_clean(record.getMessage())

    installed = install_log_redaction()
    try:
        with caplog.at_level(logging.INFO):
            logger.info("logging in with %s and password: hunter2-log", SECRET)
        assert_clean(caplog.text, SECRET, "hunter2-log")
        assert "logging in with" in caplog.text
    finally:
        if installed:
            uninstall_log_redaction()


def test_secret_shortened_by_pytest_assertion_output_is_masked():
    """pytest's saferepr cuts long strings to 'head...tail': neither half may survive."""
    register_secret("s3cr3t-value-0123456789abcdefghij")
    shortened = "assert 'x' == 's3cr3t-value-01...456789abcdefghij'"
    out = redact(shortened)
    assert "s3cr3t-value" not in out and "abcdefghij" not in out, out
    unregistered = "E   AssertionError: 'ghp_Q8w7E6r5...1O0pAsDfGhJkL'"
    assert "Q8w7E6r5" not in redact(unregistered)
    assert redact("ordinary text... and more") == "ordinary text... and more"


def test_saved_secrets_restores_the_registry():
    from gitops_conformance.redact import saved_secrets

    register_secret("session-admin-password")
    with saved_secrets():
        clear_secrets()
        assert redact("session-admin-password") == "session-admin-password"
    assert redact("session-admin-password") == MASK
