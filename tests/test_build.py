"""The testbed builder's decisions, without building anything: cache hits are no-ops, failures
are one line naming the component and the cause, replace blocks are carried over correctly."""
from __future__ import annotations

import json

import pytest

from gitops_conformance.testbed import build, versions
from gitops_conformance.testbed.versions import Component


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GITOPS_CONFORMANCE_CACHE", str(tmp_path))
    return tmp_path


def _component(**kw) -> Component:
    base = dict(name="demo", module="example.com/demo", version="v1.2.3", binaries={"demo": "example.com/demo/cmd"})
    return Component(**{**base, **kw})


def test_second_build_is_a_no_op_and_says_so(cache, capsys):
    comp = _component()
    out = versions.bin_dir(comp)
    out.mkdir(parents=True)
    (out / "demo").write_text("#!/bin/sh\n")
    (out / ".built.json").write_text(json.dumps({"version": "v1.2.3"}))
    assert build.build_component(comp) is False
    out = capsys.readouterr().out
    assert "v1.2.3 cached" in out and "nothing to do" in out


def test_a_second_build_of_the_same_component_waits_for_the_first(cache, capsys, monkeypatch):
    """Two processes building one component wrote the same .partial directory: the second waits
    for the lock, then finds the first one's build cached."""
    import fcntl
    import threading

    comp = _component()
    monkeypatch.setattr(build, "LOCK_TIMEOUT", 30.0)
    (cache / "locks").mkdir()
    with open(cache / "locks" / f"build-{comp.key}.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # another process's build, in progress
        results = []
        second = threading.Thread(target=lambda: results.append(build.build_component(comp)))
        second.start()
        second.join(timeout=2)
        assert second.is_alive() and not results, "the second build must wait for the first"
        out = versions.bin_dir(comp)  # what the first build leaves behind
        out.mkdir(parents=True)
        (out / "demo").write_text("#!/bin/sh\n")
        (out / ".built.json").write_text(json.dumps({"version": "v1.2.3"}))
    second.join(timeout=10)
    assert results == [False]
    assert "v1.2.3 cached" in capsys.readouterr().out


def test_a_lock_held_elsewhere_is_waited_for_within_its_bound_then_refused(tmp_path, capsys):
    """testbed/locks.exclusive, which both the binary and the image builds take: held by another
    open file (as by another process), it says it is waiting and yields False after its bound."""
    import fcntl

    from gitops_conformance.testbed import locks

    path = tmp_path / "locks" / "x.lock"
    path.parent.mkdir()
    with open(path, "w") as other:
        fcntl.flock(other, fcntl.LOCK_EX)
        with locks.exclusive(path, timeout=1.5, waiting="waiting for x", tell_every=0.5) as held:
            assert held is False
    assert "waiting for x" in capsys.readouterr().out
    with locks.exclusive(path, timeout=1.5, waiting="waiting for x") as held:  # released: taken at once
        assert held is True


def test_cache_key_is_name_and_version(cache):
    assert versions.bin_dir(_component()).name == "demo-v1.2.3"
    assert versions.bin_dir(_component(version="v1.2.4")) != versions.bin_dir(_component())


def test_missing_go_is_one_clear_line(cache, monkeypatch):
    monkeypatch.setattr(build.shutil, "which", lambda name: None)
    with pytest.raises(build.BuildError) as err:
        build.build_component(_component())
    assert str(err.value).startswith("demo: the Go toolchain is missing")
    assert "\n" not in str(err.value)


def test_failure_cause_names_the_module_and_the_proxy():
    output = ("go: downloading k8s.io/api v0.36.3\n"
              "go: k8s.io/sample-cli-plugin@v0.36.3: reading https://proxy.golang.org/...: 403 Forbidden\n"
              "\tserver response: This module version is not available.\n")
    assert build._cause(output).startswith("go: k8s.io/sample-cli-plugin@v0.36.3")
    unreachable = "go: example.com/x@v1: Get \"https://proxy/x\": dial tcp: lookup proxy: no such host\n"
    assert build._cause(unreachable).startswith("module proxy unreachable")


def test_local_replaces_map_to_published_versions():
    k8s = _component(local_replaces="published:v0.36.3")
    assert build._local_replacement(k8s, "k8s.io/api") == "k8s.io/api@v0.36.3"
    argo = _component(local_replaces={"github.com/x/engine": "github.com/x/engine v0.0.0-2026-abc"})
    assert build._local_replacement(argo, "github.com/x/engine") == "github.com/x/engine@v0.0.0-2026-abc"
    assert build._local_replacement(argo, "github.com/x/other") is None  # dropped: required version is published


def test_versions_file_pins_every_component_once():
    comps = versions.load()
    assert set(comps) >= {"etcd", "kubernetes", "kwok", "argocd", "rollouts", "image-updater", "kustomize", "helm"}
    binaries = [b for c in comps.values() for b in c.binaries]
    assert len(binaries) == len(set(binaries)), "a binary name is built by two components"
    for comp in comps.values():
        assert comp.version.startswith("v") or comp.module is None, comp  # own code names what it stands in for
