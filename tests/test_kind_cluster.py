"""A real kind cluster from the offline node image: created, used by a real pod, deleted.

Needs a Docker daemon (on the CI machine `.ci/dockerd.sh` starts one); builds the node image
first if the cache lacks it (`gitops-conformance testbed node-image`).
"""
from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.request
import uuid

import pytest

from gitops_conformance.testbed.kind import cluster, docker, images, lifecycle, nodeimage

pytestmark = pytest.mark.kind

POD = """\
apiVersion: v1
kind: Pod
metadata: {name: http-probe, labels: {app: http-probe}}
spec:
  containers:
  - name: etcd
    image: %(image)s
    imagePullPolicy: Never
    command: [etcd, --data-dir=/data, --listen-client-urls=http://0.0.0.0:2379,
              --advertise-client-urls=http://127.0.0.1:2379]
    ports: [{containerPort: 2379}]
    readinessProbe: {httpGet: {path: /health, port: 2379}, periodSeconds: 1}
    volumeMounts: [{name: data, mountPath: /data}]
  volumes: [{name: data, emptyDir: {}}]
"""


@pytest.fixture(scope="module")
def node_image() -> str:
    try:
        docker.require_daemon()
    except docker.DockerError as exc:
        pytest.skip(f"kind needs Docker: {exc}")
    return nodeimage.build()


@pytest.fixture
def kind_cluster(node_image, tmp_path):
    name = f"gc-kind-test-{uuid.uuid4().hex[:6]}"
    kubeconfig = tmp_path / "kubeconfig"
    config = cluster.write(tmp_path / "kind.yaml", node_image, name=name)
    try:
        lifecycle.create(name, config, kubeconfig)
        yield name, kubeconfig
    finally:
        lifecycle.delete(name)


def _port_forward(kubeconfig, target: str, port: int):
    proc = subprocess.Popen([str(lifecycle.kubectl_binary()), "--kubeconfig", str(kubeconfig), "port-forward",
                             target, f":{port}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()  # "Forwarding from 127.0.0.1:PORT -> 2379"
    m = re.search(r"127\.0\.0\.1:(\d+)", line)
    if not m:
        proc.kill()
        raise AssertionError(f"port-forward did not start: {line!r} {proc.stderr.read()[-500:]}")
    return proc, int(m.group(1))


def test_kind_cluster_serves_http_from_a_pod_and_leaves_no_container(kind_cluster):
    name, kubeconfig = kind_cluster
    lifecycle.wait_ready(kubeconfig, timeout=300)  # the node Ready, CoreDNS Ready

    etcd_image = f"registry.k8s.io/etcd:{images.etcd_image_tag()}"  # built by the project, preloaded
    subprocess.run([str(lifecycle.kubectl_binary()), "--kubeconfig", str(kubeconfig), "apply", "-f", "-"],
                   input=POD % {"image": etcd_image}, text=True, check=True, capture_output=True, timeout=60)
    lifecycle.kubectl(kubeconfig, "wait", "--for=condition=Ready", "pod/http-probe", "--timeout=120s", timeout=130)

    forward, port = _port_forward(kubeconfig, "pod/http-probe", 2379)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/version", timeout=5) as resp:
                    version = json.load(resp)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)
    finally:
        forward.kill()
        forward.wait(timeout=10)
    assert version["etcdserver"] == images.etcd_image_tag().removesuffix("-0")

    lifecycle.delete(name)
    assert lifecycle.node_containers(name) == [], "kind delete left node containers behind"
