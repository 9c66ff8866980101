"""Unit tests for fixtures.names."""
from __future__ import annotations

import os
import re
import threading

import pytest

from gitops_conformance.fixtures import names
from gitops_conformance.fixtures.names import DNS_LABEL, label_selector, run_id, standard_labels, unique_name


@pytest.fixture(autouse=True)
def fresh_run_id(monkeypatch):
    """No run id in the environment; the session's own comes back afterwards (monkeypatch)."""
    monkeypatch.setenv(names.ENV_RUN_ID, "placeholder")  # so that monkeypatch restores it
    monkeypatch.delenv(names.ENV_RUN_ID)


def test_generated_run_id_shape_and_stability():
    rid = run_id()
    assert re.fullmatch(r"\d{8}-\d{6}-[0-9a-f]{4}", rid)
    assert run_id() == rid  # stable for the process


def test_generated_run_id_is_shared_through_the_environment():
    """The xdist workers and every command the suite starts inherit it."""
    rid = run_id()
    assert os.environ[names.ENV_RUN_ID] == rid


def test_run_id_from_env_is_lowercased_and_label_safe(monkeypatch):
    monkeypatch.setenv(names.ENV_RUN_ID, "CI_Build#1234")
    assert run_id() == "ci-build-1234"


def test_run_id_from_env_is_cut_to_a_label_value(monkeypatch):
    monkeypatch.setenv(names.ENV_RUN_ID, "x" * 100)
    assert len(run_id()) == 63


def test_run_id_env_without_usable_characters(monkeypatch):
    monkeypatch.setenv(names.ENV_RUN_ID, "###")
    with pytest.raises(ValueError, match=names.ENV_RUN_ID):
        run_id()


@pytest.mark.parametrize("prefix", [
    "guestbook", "Guest_Book App", "9lives", "-leading-", "", "***", "app.of.apps",
    "a" * 200, "ünïcode-näme", "x",
])
def test_unique_name_is_an_rfc1123_label(prefix):
    name = unique_name(prefix)
    assert DNS_LABEL.match(name), name
    assert len(name) <= 63
    assert name[0].isalpha()


def test_unique_name_includes_run_fragment_and_prefix(monkeypatch):
    monkeypatch.setenv(names.ENV_RUN_ID, "ci-run-7788")
    name = unique_name("guestbook")
    assert re.fullmatch(r"guestbook-7788-\d+-[0-9a-f]{3}", name), name


def test_unique_names_differ():
    generated = [unique_name("app") for _ in range(500)]
    assert len(set(generated)) == 500


def test_unique_names_differ_across_threads():
    out: list[str] = []

    def work():
        out.extend(unique_name("t") for _ in range(200))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(out)) == 800


@pytest.mark.parametrize("max_len", [63, 40, 20, 16])
def test_long_prefixes_truncated_but_unique(max_len):
    prefix = "a-very-long-application-name-that-goes-on-and-on-and-on-forever"
    generated = [unique_name(prefix, max_len=max_len) for _ in range(50)]
    assert len(set(generated)) == 50
    for name in generated:
        assert len(name) <= max_len and DNS_LABEL.match(name), name
        assert name.startswith("a")


def test_truncation_does_not_leave_a_dash_before_the_suffix():
    # Cut lands right after a '-': the name must not contain '--'.
    for cut in range(1, 30):
        name = unique_name("ab-" * 20, max_len=cut + 20)
        assert "--" not in name and DNS_LABEL.match(name), name


def test_max_len_too_small():
    with pytest.raises(ValueError):
        unique_name("app", max_len=5)


def test_labels(monkeypatch):
    monkeypatch.setenv(names.ENV_RUN_ID, "run-42")
    assert label_selector() == "gitops-conformance/run-id=run-42"
    assert standard_labels() == {"app.kubernetes.io/managed-by": "gitops-conformance",
                                 "gitops-conformance/run-id": "run-42"}


def test_generated_run_id_is_a_valid_label_value():
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9_.]*[a-z0-9])?", run_id())
    assert len(run_id()) <= 63
