"""The OCI registry peer against the real Debian `docker-registry` (distribution v2.8) on 127.0.0.1."""
from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import io
import json
import shutil
import subprocess
import tarfile
import time

import pytest
import requests
import yaml

from gitops_conformance.testbed.peers import registry
from gitops_conformance.testbed.procs import Supervisor, free_port, pid_alive, port_open

pytestmark = pytest.mark.skipif(
    shutil.which("docker-registry") is None,
    reason="docker-registry not installed (apt-get update && apt-get install -y docker-registry)",
)

TAGS = ["v1.0.0", "v1.1.0", "v1.2.0-rc1", "latest"]
T0 = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.timezone.utc)


def _http():
    s = requests.Session()
    s.trust_env = False
    return s


@pytest.fixture(scope="module")
def reg(tmp_path_factory):
    """A real registry in a temp state dir; stopped even when start-up or a test fails."""
    state = tmp_path_factory.mktemp("registry-state")
    sup = Supervisor(state)
    spec = registry.spec(state, free_port())
    pid = sup.start(spec)
    try:
        sup.wait_healthy(spec, pid)
        yield {"url": registry.base_url(spec.port), "spec": spec, "state": state, "pid": pid}
    finally:
        sup.stop(spec.name)
        assert not pid_alive(pid)


@pytest.fixture(scope="module")
def myapp(reg):
    """myapp with four tags, each built an hour after the previous one: tag -> digest."""
    return {tag: registry.push_image(reg["url"], "myapp", tag, created=T0 + dt.timedelta(hours=i))
            for i, tag in enumerate(TAGS)}


def _blob(url, repo, digest) -> bytes:
    resp = _http().get(f"{url}/v2/{repo}/blobs/{digest}", timeout=10)
    assert resp.status_code == 200, resp.text
    assert "sha256:" + hashlib.sha256(resp.content).hexdigest() == digest
    return resp.content


def test_config_is_ours_loopback_no_auth_no_tls(reg):
    spec, state = reg["spec"], reg["state"]
    cfg = yaml.safe_load((state / "registry" / "config.yml").read_text())
    assert cfg["version"] == 0.1
    assert cfg["http"]["addr"] == f"127.0.0.1:{spec.port}"
    assert "auth" not in cfg and "tls" not in cfg["http"] and "debug" not in cfg["http"]
    assert cfg["storage"]["delete"] == {"enabled": True}
    assert cfg["storage"]["filesystem"]["rootdirectory"].startswith(str(state.resolve()))
    assert cfg["log"]["level"] == "info"
    assert "/etc/docker/registry" not in " ".join(spec.argv)
    resp = _http().get(f"{reg['url']}/v2/", timeout=5)  # no auth challenge
    assert resp.status_code == 200
    assert resp.headers.get("Docker-Distribution-Api-Version") == "registry/2.0"


def test_list_tags_is_exactly_the_pushed_tags(reg, myapp):
    assert sorted(registry.list_tags(reg["url"], "myapp")) == sorted(TAGS)
    assert len(set(myapp.values())) == len(TAGS), "each tag has its own layer, so its own digest"
    assert "myapp" in registry.list_repositories(reg["url"])
    # the blobs are stored under the state dir, not /var/lib/docker-registry
    assert (reg["state"] / "registry" / "storage" / "docker" / "registry" / "v2" / "repositories" / "myapp").is_dir()


def test_manifests_resolve_to_the_pushed_digests(reg, myapp):
    url = reg["url"]
    for i, (tag, digest) in enumerate(myapp.items()):
        assert digest.startswith("sha256:")
        assert registry.manifest_digest(url, "myapp", tag) == digest
        body, media_type, got = registry.get_manifest(url, "myapp", tag)
        assert media_type == registry.OCI_MANIFEST and got == digest
        assert "sha256:" + hashlib.sha256(body).hexdigest() == digest
        # by digest too
        assert registry.manifest_digest(url, "myapp", digest) == digest

        manifest = json.loads(body)
        assert manifest["schemaVersion"] == 2 and manifest["config"]["mediaType"] == registry.OCI_CONFIG
        [layer] = manifest["layers"]
        assert layer["mediaType"] == registry.OCI_LAYER
        config_bytes = _blob(url, "myapp", manifest["config"]["digest"])
        assert len(config_bytes) == manifest["config"]["size"]
        config = json.loads(config_bytes)
        assert (config["architecture"], config["os"]) == ("amd64", "linux")
        created = dt.datetime.fromisoformat(config["created"].replace("Z", "+00:00"))
        assert created == T0 + dt.timedelta(hours=i)
        assert registry.image_config(url, "myapp", tag) == config

        gz = _blob(url, "myapp", layer["digest"])
        assert len(gz) == layer["size"]
        raw = gzip.decompress(gz)
        assert config["rootfs"] == {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(raw).hexdigest()]}
        with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
            [member] = tar.getmembers()
            assert tag.encode() in tar.extractfile(member).read()


def test_unknown_tag_and_repository(reg, myapp):
    assert registry.manifest_digest(reg["url"], "myapp", "v9.9.9") is None
    assert registry.list_tags(reg["url"], "no-such-repo") == []


def test_same_layer_bytes_and_created_give_the_same_digest(reg):
    url = reg["url"]
    a = registry.push_image(url, "same", "a", layer_bytes=b"identical\n", created=T0)
    b = registry.push_image(url, "same", "b", layer_bytes=b"identical\n", created=T0)
    c = registry.push_image(url, "same", "c", layer_bytes=b"identical\n", created=T0 + dt.timedelta(seconds=1))
    assert a == b != c
    assert sorted(registry.list_tags(url, "same")) == ["a", "b", "c"]


def test_retag_moves_a_tag_to_a_new_digest(reg):
    url, repo = reg["url"], "team/promo"  # a nested repository name
    first = registry.push_image(url, repo, "build-1", created=T0)
    second = registry.push_image(url, repo, "build-2", created=T0 + dt.timedelta(minutes=5))
    assert first != second
    assert registry.retag(url, repo, "build-1", "staging-abc") == first
    assert registry.manifest_digest(url, repo, "staging-abc") == first

    assert registry.retag(url, repo, "build-2", "staging-abc") == second
    assert registry.manifest_digest(url, repo, "staging-abc") == second
    assert registry.manifest_digest(url, repo, "build-1") == first  # the source tags are untouched
    assert registry.manifest_digest(url, repo, "build-2") == second
    assert registry.image_config(url, repo, "staging-abc")["created"].startswith("2026-01-01T12:05:00")
    assert sorted(registry.list_tags(url, repo)) == ["build-1", "build-2", "staging-abc"]


def test_delete_tag_leaves_other_tags_on_the_same_digest(reg):
    url, repo = reg["url"], "deletes"
    d = registry.push_image(url, repo, "keep")
    registry.retag(url, repo, "keep", "drop")
    other = registry.push_image(url, repo, "other")
    registry.delete_tag(url, repo, "drop")
    assert registry.manifest_digest(url, repo, "drop") is None
    assert registry.manifest_digest(url, repo, "keep") == d
    assert registry.manifest_digest(url, repo, "other") == other
    assert sorted(registry.list_tags(url, repo)) == ["keep", "other"]
    registry.delete_tag(url, repo, "keep")
    registry.delete_tag(url, repo, "other")
    assert registry.list_tags(url, repo) == []


def test_delete_repository_removes_it_from_tags_and_catalog(reg):
    url, repo = reg["url"], "run-x/iu-1/myapp"
    registry.push_image(url, repo, "v1.0.0")
    registry.push_image(url, repo, "v1.1.0")
    registry.retag(url, repo, "v1.1.0", "latest")
    registry.push_image(url, "run-x/iu-2/myapp", "v1.0.0")  # a sibling under the same run: untouched
    assert repo in registry.list_repositories(url)
    registry.delete_repository(url, repo, registry.storage_dir(reg["state"]))
    assert registry.list_tags(url, repo) == []
    assert registry.manifest_digest(url, repo, "latest") is None
    assert repo not in registry.list_repositories(url)
    assert "run-x/iu-2/myapp" in registry.list_repositories(url)
    assert not (registry.storage_dir(reg["state"]) / "docker/registry/v2/repositories/run-x/iu-1").exists()
    with pytest.raises(registry.RegistryError):  # only ever inside the registry's own storage
        registry.delete_repository(url, "../../etc", registry.storage_dir(reg["state"]))


def test_docker_schema2_image_round_trips(reg):
    url, repo = reg["url"], "legacy"
    digest = registry.push_image(url, repo, "v2.0.0", media_type="docker", created=T0)
    body, media_type, got = registry.get_manifest(url, repo, "v2.0.0")
    assert (media_type, got) == (registry.DOCKER_MANIFEST, digest)
    manifest = json.loads(body)
    assert manifest["mediaType"] == registry.DOCKER_MANIFEST
    assert manifest["config"]["mediaType"] == registry.DOCKER_CONFIG
    assert manifest["layers"][0]["mediaType"] == registry.DOCKER_LAYER
    # a client that accepts only schema2 gets it, with the same digest
    resp = _http().head(f"{url}/v2/{repo}/manifests/v2.0.0", headers={"Accept": registry.DOCKER_MANIFEST}, timeout=5)
    assert resp.status_code == 200 and resp.headers["Docker-Content-Digest"] == digest
    assert registry.image_config(url, repo, "v2.0.0")["architecture"] == "amd64"
    assert registry.retag(url, repo, "v2.0.0", "stable") == digest
    with pytest.raises(ValueError):
        registry.push_image(url, repo, "x", media_type="schema1")


def test_upload_location_query_handling():
    assert registry._with_query("http://h/v2/r/blobs/uploads/u?_state=abc", digest="sha256:00") == \
        "http://h/v2/r/blobs/uploads/u?_state=abc&digest=sha256%3A00"
    assert registry._with_query("http://h/v2/r/blobs/uploads/u", digest="sha256:00") == \
        "http://h/v2/r/blobs/uploads/u?digest=sha256%3A00"
    assert registry._same_origin("http://127.0.0.1:5/", "/v2/x?y=1") == "http://127.0.0.1:5/v2/x?y=1"
    with pytest.raises(registry.RegistryError):
        registry._same_origin("http://127.0.0.1:5", "http://elsewhere.example/v2/x")


def _skopeo(*args, timeout=60):
    if shutil.which("skopeo") is None:
        pytest.skip("skopeo not installed (Debian package `skopeo`: apt-get install -y skopeo)")
    return subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("media_type", ["oci", "docker"])
def test_skopeo_reads_the_pushed_image(reg, myapp, tmp_path, media_type):
    """An independent client (skopeo) inspects and copies the image, verifying every digest."""
    url = reg["url"]
    host = url.removeprefix("http://")
    if media_type == "oci":
        repo, tag, digest = "myapp", "v1.0.0", myapp["v1.0.0"]
    else:
        repo, tag = "skopeo-docker", "v1.0.0"
        digest = registry.push_image(url, repo, tag, media_type="docker", created=T0)
    proc = _skopeo("inspect", "--tls-verify=false", "--no-creds", f"docker://{host}/{repo}:{tag}")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["Digest"] == digest
    assert (info["Architecture"], info["Os"]) == ("amd64", "linux")
    assert dt.datetime.fromisoformat(info["Created"].replace("Z", "+00:00")) == T0
    manifest = json.loads(registry.get_manifest(url, repo, tag)[0])
    assert info["Layers"] == [manifest["layers"][0]["digest"]]

    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
    proc = _skopeo("--policy", str(policy), "copy", "--src-tls-verify=false", "--src-no-creds",
                   f"docker://{host}/{repo}:{tag}", f"oci:{tmp_path / 'out'}:{tag}")
    assert proc.returncode == 0, proc.stderr
    index = json.loads((tmp_path / "out" / "index.json").read_text())
    assert index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] == tag


def test_stop_ends_the_process_and_frees_the_port(tmp_path):
    sup = Supervisor(tmp_path)
    spec = registry.spec(tmp_path, free_port(), name="registry-stop")
    pid = sup.start(spec)
    try:
        sup.wait_healthy(spec, pid)
        assert port_open(spec.port)
    finally:
        started = time.monotonic()
        sup.stop(spec.name)
    assert time.monotonic() - started < 10
    assert not pid_alive(pid)
    # pid_alive() calls the Go thread-group leader dead once it is a zombie; the other
    # threads may hold the socket a few ms longer, so the port gets a short bounded wait
    deadline = time.monotonic() + 5
    while port_open(spec.port) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not port_open(spec.port)
