"""Offline images (testbed/images): specs, archives, image lists, availability, kind loading.

Fast tests need nothing but Python (and Go for myapp). Tests marked `images` check the real
archives `gitops-conformance testbed images` built (they skip, saying so, for an image not
built yet): each is verified end to end and its root filesystem is run in a chroot.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
import yaml

from gitops_conformance.testbed.images import build, containerfile, kind, manifests, oci, spec

FAKE_BIN = Path(__file__).parent / "fake_bin"


# ---- specs and the Containerfile -------------------------------------------------------------

@pytest.mark.parametrize("name", ["peers", "prometheus"])
def test_committed_containerfile_is_generated_from_the_spec(name):
    image = spec.all_specs()[name]
    committed = containerfile.path_for(image).read_text()
    assert committed == containerfile.render(image), (
        f"testbed/images/{name}/Containerfile is out of date: run `python -m gitops_conformance.testbed.images.containerfile {name} --write`")


def test_containerfile_installs_exactly_the_spec_packages_and_copies_its_files():
    peers = spec.all_specs()["peers"]
    text = containerfile.render(peers)
    assert text.startswith("# GENERATED") and f"FROM debian:{spec.DEBIAN_SUITE}-slim" in text
    installed = [l.strip(" \\") for l in text.split("--no-install-recommends \\\n")[1].split("&& rm")[0].splitlines()]
    assert [p for p in installed if p] == list(peers.packages)
    for f in peers.files:
        assert f"COPY {f.repo} {f.path}" in text
        assert list((spec.REPO_ROOT).glob(f.repo)), f"{f.repo} matches nothing"
    for needed in ("git", "openssh-server", "docker-registry", "python3"):
        assert needed in peers.packages


def test_a_spec_with_built_binaries_has_no_containerfile():
    with pytest.raises(spec.SpecError, match="cannot COPY"):
        containerfile.render(spec.all_specs()["argocd"])


def test_every_spec_loads_and_files_name_one_source():
    specs = spec.all_specs()
    assert {"argocd", "redis", "rollouts", "image-updater", "prometheus", "peers", "myapp"} <= set(specs)
    for s in specs.values():
        assert s.files or s.packages, s.name
        for f in s.files:
            assert f.path.startswith("/"), (s.name, f.path)


def test_myapp_images_cover_the_suites_tags_under_the_procedures_name():
    from gitops_conformance.scenarios import step2_applications as step2
    from gitops_conformance.scenarios import step4_image_updater as step4

    app = spec.all_specs()["myapp"]
    assert app.repository == step2.DEFAULT_IMAGE
    assert set(step4.TAGS) <= set(app.tags)
    refs = {names[0]: env for names, env in app.variants()}
    assert refs["ghcr.io/username/myapp:v1.1.0"] == {"MYAPP_VERSION": "v1.1.0"}
    assert refs["ghcr.io/username/myapp:v2.0.0-rc1"]["MYAPP_ERROR_RATE"] == "0.5"


# ---- references and image lists --------------------------------------------------------------

@pytest.mark.parametrize("ref, normalized", [
    ("redis", "docker.io/library/redis:latest"),
    ("redis:7", "docker.io/library/redis:7"),
    ("docker.io/redis:7", "docker.io/library/redis:7"),
    ("gitops-conformance/peers:0.1.0", "docker.io/gitops-conformance/peers:0.1.0"),
    ("quay.io/argoproj/argocd:v3.5.3", "quay.io/argoproj/argocd:v3.5.3"),
    ("localhost:5000/a/b", "localhost:5000/a/b:latest"),
    ("127.0.0.1:5000/x:v1", "127.0.0.1:5000/x:v1"),
    ("ghcr.io/x/y@sha256:" + "a" * 64, "ghcr.io/x/y@sha256:" + "a" * 64),
])
def test_normalize_ref(ref, normalized):
    assert oci.normalize_ref(ref) == normalized


def _deployment(*images, init=()):
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"},
            "spec": {"template": {"spec": {"containers": [{"name": f"c{i}", "image": im} for i, im in enumerate(images)],
                                           "initContainers": [{"name": "i", "image": im} for im in init]}}}}


def test_images_in_docs_finds_every_pod_template_and_skips_schemas():
    cron = {"kind": "CronJob", "spec": {"jobTemplate": {"spec": {"template": {"spec": {
        "containers": [{"name": "c", "image": "busybox:1"}]}}}}}}
    pod = {"kind": "Pod", "spec": {"containers": [{"name": "c", "image": "quay.io/a/b:v1"}],
                                   "ephemeralContainers": [{"name": "d", "image": "quay.io/a/debug:v1"}]}}
    rollout = {"kind": "Rollout", "spec": {"template": {"spec": {"containers": [{"name": "m", "image": "ghcr.io/username/myapp:v1.0.0"}]}}}}
    crd = {"kind": "CustomResourceDefinition", "spec": {"versions": [{"schema": {"openAPIV3Schema": {
        "properties": {"containers": {"type": "array", "items": {"properties": {"image": {"type": "string"}}}}}}}}]}}
    docs = [_deployment("redis:7", "quay.io/a/b:v1", init=["quay.io/a/init:v2"]), cron, pod, rollout, crd, None]
    assert manifests.images_in_docs(docs) == [
        "docker.io/library/redis:7", "quay.io/a/b:v1", "quay.io/a/init:v2", "docker.io/library/busybox:1",
        "quay.io/a/debug:v1", "ghcr.io/username/myapp:v1.0.0"]


def test_pinned_manifests_name_exactly_the_images_the_specs_build():
    """Argo CD, Rollouts and Image Updater install.yaml (as `testbed build` copied them)."""
    paths = {c: spec.manifest_path(c) for c in ("argocd", "rollouts", "image-updater")}
    if not all(p.exists() for p in paths.values()):
        pytest.skip("the pinned install.yaml assets are not built yet (gitops-conformance testbed build)")
    named = manifests.images_in_files(paths.values())
    built_by_specs = {r for s in spec.all_specs().values() for names, _ in s.variants() for r in names}
    unbuildable = [r for r in named if r not in built_by_specs]
    assert [oci.split_ref(r)[0] for r in unbuildable] == ["ghcr.io/dexidp/dex"], unbuildable
    assert "quay.io/argoproj/argocd:v3.5.3" in named


# ---- availability ----------------------------------------------------------------------------

def test_check_available_names_every_missing_image_with_what_to_do(tmp_path):
    archive = tmp_path / "a.tar"
    archive.write_bytes(b"x")
    docs = [_deployment("quay.io/argoproj/argocd:v3.5.3", "ghcr.io/dexidp/dex:v2.45.1", "quay.io/nobody/nothing:v1")]
    with pytest.raises(manifests.MissingImages) as err:
        manifests.check_available(docs, index={"quay.io/argoproj/argocd:v3.5.3": archive})
    text = str(err.value)
    assert err.value.missing == ["ghcr.io/dexidp/dex:v2.45.1", "quay.io/nobody/nothing:v1"]
    assert "403 Forbidden" in text and "argocd-dex-server to 0" in text
    assert "quay.io/nobody/nothing:v1: no spec in testbed/images builds it" in text


def test_check_available_accepts_a_known_absent_image_the_provider_handles(tmp_path):
    archive = tmp_path / "a.tar"
    archive.write_bytes(b"x")
    docs = [_deployment("quay.io/argoproj/argocd:v3.5.3", "ghcr.io/dexidp/dex:v2.45.1")]
    got = manifests.check_available(docs, index={"quay.io/argoproj/argocd:v3.5.3": archive},
                                    allow_absent=["ghcr.io/dexidp/dex"])
    assert got.archives == {"quay.io/argoproj/argocd:v3.5.3": archive}
    assert list(got.absent_ok) == ["ghcr.io/dexidp/dex:v2.45.1"]


def test_an_index_entry_whose_archive_was_deleted_is_missing(tmp_path):
    with pytest.raises(manifests.MissingImages, match="ghcr.io/username/myapp:v1.0.0: run `gitops-conformance testbed images myapp`"):
        manifests.check_available([_deployment("ghcr.io/username/myapp:v1.0.0")],
                                  index={"ghcr.io/username/myapp:v1.0.0": tmp_path / "gone.tar"})


# ---- archives --------------------------------------------------------------------------------

def _tiny_image(tmp_path: Path, refs=("quay.io/example/tiny:v1",)) -> Path:
    script = tmp_path / "hello.sh"
    script.write_text("#!/bin/sh\necho hello\n")
    layer1 = oci.write_layer([oci.Entry("/etc", "dir", mode=0o755), oci.Entry("/etc/motd", data=b"hi\n")], tmp_path / "l1.tar")
    layer2 = oci.write_layer([oci.Entry("/bin/hello", src=script, mode=0o755),
                              oci.Entry("/bin/hi", "symlink", target="/bin/hello")], tmp_path / "l2.tar")
    oci.write_archive(tmp_path / "img.tar", list(refs), [layer1, layer2],
                      oci.ImageConfig(entrypoint=["/bin/hello"], user="999", env={"A": "b"}))
    return tmp_path / "img.tar"


def test_archive_is_an_oci_layout_and_a_docker_archive_with_matching_digests(tmp_path):
    path = _tiny_image(tmp_path, refs=("quay.io/example/tiny:v1", "redis:7"))
    info = oci.verify_archive(path)
    assert info["refs"] == ["quay.io/example/tiny:v1", "docker.io/library/redis:7"]
    assert info["config"]["config"]["Entrypoint"] == ["/bin/hello"] and info["config"]["config"]["User"] == "999"
    with tarfile.open(path) as tar:
        names = tar.getnames()
        index = json.load(tar.extractfile("index.json"))
        docker = json.load(tar.extractfile("manifest.json"))
    assert {"oci-layout", "index.json", "manifest.json"} <= set(names)
    assert index["manifests"][0]["annotations"]["io.containerd.image.name"] == "quay.io/example/tiny:v1"
    assert docker[0]["RepoTags"] == info["refs"] and len(docker[0]["Layers"]) == 2
    assert oci.read_refs(path) == info["refs"]


def test_archives_are_reproducible(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    assert oci.file_digest(_tiny_image(a)) == oci.file_digest(_tiny_image(b))


def test_a_tampered_blob_is_caught(tmp_path):
    path = _tiny_image(tmp_path)
    info = oci.verify_archive(path)
    victim = "blobs/sha256/" + info["layers"][0].split(":")[1]
    bad = tmp_path / "bad.tar"
    with tarfile.open(path) as src, tarfile.open(bad, "w") as dst:
        for m in src:
            data = src.extractfile(m).read() if m.isfile() else None
            if m.name == victim:
                data = data[:-1] + bytes([data[-1] ^ 1])
            dst.addfile(m, None if data is None else __import__("io").BytesIO(data))
    with pytest.raises(oci.ArchiveError, match="has digest"):
        oci.verify_archive(bad)


def test_extract_rootfs_applies_layers_in_order(tmp_path):
    root = tmp_path / "root"
    oci.extract_rootfs(_tiny_image(tmp_path), root)
    assert (root / "etc/motd").read_text() == "hi\n"
    assert os.readlink(root / "bin/hi") == "/bin/hello"
    assert (root / "bin/hello").stat().st_mode & 0o777 == 0o755


@pytest.mark.skipif(shutil.which("skopeo") is None, reason="skopeo (Debian package) is not installed")
def test_skopeo_reads_both_faces_of_the_archive(tmp_path):
    path = _tiny_image(tmp_path)
    for transport in ("oci-archive", "docker-archive"):
        out = subprocess.run(["skopeo", "inspect", f"{transport}:{path}"], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["Layers"] == oci.verify_archive(path)["layers"]


# ---- kind ------------------------------------------------------------------------------------

def test_load_target_must_name_a_kind_cluster():
    assert kind.parse_target("kind:gitops") == "gitops"
    for bad in ("kind", "kind:", "docker:x"):
        with pytest.raises(kind.KindError, match="expected kind:<cluster-name>"):
            kind.parse_target(bad)


def test_load_runs_kind_load_image_archive_per_archive(tmp_path, monkeypatch):
    log = tmp_path / "kind.log"
    (tmp_path / "kind.log.clusters").write_text("gitops\n")
    monkeypatch.setenv("PATH", f"{FAKE_BIN}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_KIND_LOG", str(log))
    a = _tiny_image(tmp_path)
    assert kind.load([a], "gitops")[0].startswith(f"loaded {a.name} into kind cluster gitops")
    assert json.loads(log.read_text().splitlines()[0]) == ["load", "image-archive", str(a), "--name", "gitops"]
    with pytest.raises(kind.KindError, match='no nodes found for cluster "other"'):
        kind.load([a], "other")
    with pytest.raises(kind.KindError, match="run `gitops-conformance testbed images` first"):
        kind.load([tmp_path / "missing.tar"], "gitops")


def test_a_missing_kind_cli_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(kind.versions, "binary_path", lambda name: tmp_path / "nope")
    with pytest.raises(kind.KindError, match="the kind CLI is missing"):
        kind.kind_binary()


def test_cli_images_list_and_bad_load_target(capsys):
    from gitops_conformance import cli

    assert cli.main(["testbed", "images", "--list"]) == 0
    assert "ghcr.io/username/myapp:v1.0.0" in capsys.readouterr().out
    assert cli.main(["testbed", "images", "myapp", "--load", "docker:x"]) == 2
    assert "expected kind:<cluster-name>" in capsys.readouterr().err


def test_cli_unknown_image_spec_is_named(capsys):
    from gitops_conformance import cli

    assert cli.main(["testbed", "images", "nosuch"]) == 1
    assert "unknown image spec(s): nosuch" in capsys.readouterr().err


# ---- myapp, built for real (fast: one small Go build) ----------------------------------------

@pytest.mark.skipif(shutil.which("go") is None, reason="the Go toolchain is missing")
def test_myapp_image_runs_answers_errors_and_exports_metrics(tmp_path, monkeypatch):
    monkeypatch.setenv("GITOPS_CONFORMANCE_CACHE", str(tmp_path / "cache"))
    results, failures = build.build_images(["myapp"])
    assert not failures
    bad = next(r for r in results if r["refs"] == ["ghcr.io/username/myapp:v2.0.0-rc1"])
    info = oci.verify_archive(Path(bad["archive"]))
    root = tmp_path / "root"
    oci.extract_rootfs(Path(bad["archive"]), root)
    env = dict(e.split("=", 1) for e in info["config"]["config"]["Env"])
    assert env["MYAPP_ERROR_RATE"] == "0.5" and info["config"]["config"]["User"] == "65532"
    from tests.image_runs import run_http_binary  # the image's entrypoint, run from its rootfs

    codes, metrics = run_http_binary(root / "myapp", env, requests=4)
    assert codes == [200, 500, 200, 500]
    assert 'http_requests_total{status="500"} 2' in metrics and 'myapp_build_info{version="v2.0.0-rc1"} 1' in metrics
    # all tags share the binary layer: loading nine tags costs one binary
    assert len({r["layers"][0] for r in results}) == 1


# ---- pushing an archive to a real registry (Debian's docker-registry) -----------------------

@pytest.mark.skipif(shutil.which("docker-registry") is None, reason="docker-registry (Debian package) is not installed")
def test_push_archive_to_a_real_registry_keeps_the_digest(tmp_path):
    from gitops_conformance.testbed.images import push
    from gitops_conformance.testbed.peers import registry
    from gitops_conformance.testbed.procs import Supervisor, free_port

    path = _tiny_image(tmp_path)
    state = tmp_path / "registry"
    sup = Supervisor(state)
    reg = registry.spec(state, free_port())
    pid = sup.start(reg)
    try:
        sup.wait_healthy(reg, pid)
        url = registry.base_url(reg.port)
        name, digest = push.push_archive(path, url, "team/tiny:v1")
        assert (name, digest) == ("team/tiny:v1", oci.verify_archive(path)["manifest_digest"])
        assert registry.list_tags(url, "team/tiny") == ["v1"]
        assert push.push_archive(path, url) == ("example/tiny:v1", digest)  # its own name, blobs not re-sent
    finally:
        sup.stop(reg.name)


def test_prune_removes_only_layers_no_archive_uses(tmp_path, monkeypatch):
    monkeypatch.setenv("GITOPS_CONFORMANCE_IMAGES_CACHE", str(tmp_path))
    (tmp_path / "layers").mkdir()
    (tmp_path / "archives").mkdir()
    for name, digest in (("used", "sha256:aa"), ("stale", "sha256:bb")):
        (tmp_path / "layers" / f"{name}.tar").write_bytes(b"x")
        (tmp_path / "layers" / f"{name}.json").write_text(json.dumps({"digest": digest, "size": 1}))
    (tmp_path / "archives" / "img.tar.json").write_text(json.dumps({"layers": ["sha256:aa"]}))
    assert build.prune_layers() == [tmp_path / "layers" / "stale.tar"]
    assert sorted(p.name for p in (tmp_path / "layers").iterdir()) == ["used.json", "used.tar"]
