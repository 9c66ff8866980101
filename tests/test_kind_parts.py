"""The kind path's parts that need no Docker: the cluster config, image archives, the runc wrapper."""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import importlib.util
from importlib.machinery import SourceFileLoader
from pathlib import Path

import yaml

from gitops_conformance.testbed.kind import cluster, imagearchive, images, nodeimage

REPO = Path(__file__).resolve().parent.parent


def test_config_for_our_node_image_disables_default_cni_and_names_our_etcd(monkeypatch):
    monkeypatch.setattr(cluster, "host_is_cgroup_v1", lambda: False)
    monkeypatch.setattr(cluster, "host_can_lower_oom_score_adj", lambda: True)
    cfg = yaml.safe_load(cluster.render(nodeimage.node_image_name(), name="x"))
    assert cfg["name"] == "x"
    assert cfg["nodes"] == [{"role": "control-plane", "image": nodeimage.node_image_name()}]
    assert cfg["networking"] == {"disableDefaultCNI": True, "podSubnet": nodeimage.POD_SUBNET}
    patches = [yaml.safe_load(p) for p in cfg["kubeadmConfigPatches"]]
    assert patches == [{"kind": "ClusterConfiguration", "etcd": {"local": {"imageTag": images.etcd_image_tag()}}},
                       {"kind": "KubeletConfiguration", "imagePullCredentialsVerificationPolicy": "NeverVerify"}]
    assert "containerdConfigPatches" not in cfg  # a normal machine: no quirk


def test_machine_quirks_are_added_only_when_detected(monkeypatch):
    monkeypatch.setattr(cluster, "host_is_cgroup_v1", lambda: True)
    monkeypatch.setattr(cluster, "host_can_lower_oom_score_adj", lambda: False)
    cfg = yaml.safe_load(cluster.render(None))
    assert "networking" not in cfg and "image" not in cfg["nodes"][0]  # upstream's image: kind's defaults
    assert [yaml.safe_load(p) for p in cfg["kubeadmConfigPatches"]] == [
        {"kind": "KubeletConfiguration", "failCgroupV1": False}]
    assert "restrict_oom_score_adj = true" in cfg["containerdConfigPatches"][0]


def test_image_archive_is_a_docker_save_archive(tmp_path):
    binary = tmp_path / "hello"
    binary.write_bytes(b"\x7fELF not really")
    layer = imagearchive.files_layer({"/usr/local/bin/hello": binary}, tmp_path / "layer.tar.gz")
    image_id = imagearchive.write_archive(tmp_path / "img.tar", ["example.org/hello:v1"], [layer],
                                          entrypoint=["/usr/local/bin/hello"])
    with tarfile.open(tmp_path / "img.tar") as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
        assert manifest[0]["RepoTags"] == ["example.org/hello:v1"]
        config_bytes = tar.extractfile(manifest[0]["Config"]).read()
        assert f"sha256:{hashlib.sha256(config_bytes).hexdigest()}" == image_id
        layer_bytes = gzip.decompress(tar.extractfile(manifest[0]["Layers"][0]).read())
    config = json.loads(config_bytes)
    assert config["rootfs"]["diff_ids"] == [f"sha256:{hashlib.sha256(layer_bytes).hexdigest()}"]
    assert config["config"]["Entrypoint"] == ["/usr/local/bin/hello"]
    with tarfile.open(fileobj=io.BytesIO(layer_bytes)) as inner:
        member = inner.getmember("usr/local/bin/hello")
        assert member.mode == 0o755 and member.uid == 0 and inner.extractfile(member).read() == binary.read_bytes()


def test_containerd_config_drops_only_the_fuse_overlayfs_proxy():
    kind = ('version = 2\n\n[proxy_plugins]\n[proxy_plugins."fuse-overlayfs"]\n  type = "snapshot"\n\n'
            '[plugins."io.containerd.grpc.v1.cri"]\n  sandbox_image = "registry.k8s.io/pause:3.10"\n')
    out = nodeimage._containerd_config(kind)
    assert "proxy_plugins" not in out and "fuse" not in out
    assert 'sandbox_image = "registry.k8s.io/pause:3.10"' in out and out.startswith("version = 2")


def test_runc_wrapper_drops_capabilities_missing_from_the_bounding_set(tmp_path, monkeypatch):
    loader = SourceFileLoader("runc_capfilter", str(REPO / ".ci" / "runc-capfilter"))
    spec = importlib.util.spec_from_loader("runc_capfilter", loader)
    wrapper = importlib.util.module_from_spec(spec)
    loader.exec_module(wrapper)
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    caps = ["CAP_CHOWN", "CAP_SYS_RESOURCE", "CAP_SYS_ADMIN"]
    (bundle / "config.json").write_text(json.dumps({"process": {"capabilities": {
        "bounding": caps, "effective": caps, "permitted": caps}}}))
    process = tmp_path / "process.json"
    process.write_text(json.dumps({"capabilities": {"bounding": caps}}))
    monkeypatch.setattr(wrapper, "missing_caps", lambda: {"CAP_SYS_RESOURCE"})
    execs = []
    monkeypatch.setattr(wrapper.os, "execv", lambda path, argv: execs.append(argv))
    monkeypatch.setattr(wrapper.sys, "argv", ["runc", "--root", "/r", "create", "--bundle", str(bundle), "id"])
    wrapper.main()
    monkeypatch.setattr(wrapper.sys, "argv", ["runc", "exec", "--process", str(process), "id"])
    wrapper.main()
    kept = ["CAP_CHOWN", "CAP_SYS_ADMIN"]
    assert json.loads((bundle / "config.json").read_text())["process"]["capabilities"] == {
        "bounding": kept, "effective": kept, "permitted": kept}
    assert json.loads(process.read_text())["capabilities"] == {"bounding": kept}
    assert execs[0] == ["/usr/sbin/runc", "--root", "/r", "create", "--bundle", str(bundle), "id"]  # argv unchanged
