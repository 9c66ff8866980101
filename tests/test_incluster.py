"""The in-cluster peers' manifests and the in-pod bind rule (no cluster needed; the real
deployment runs in the kind certification)."""
from __future__ import annotations

import json

import pytest
import yaml

from gitops_conformance import redact
from gitops_conformance.fixtures import incluster
from gitops_conformance.testbed.peers import bind


def test_in_pod_bind_is_refused_outside_a_pod(monkeypatch):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    assert bind.listen_host(False) == "127.0.0.1"
    with pytest.raises(SystemExit, match="not in a Kubernetes pod"):
        bind.listen_host(True)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    assert bind.listen_host(True) == "0.0.0.0"


@pytest.fixture(scope="module")
def creds():
    return incluster.make_credentials("peers-ns")


def test_credentials_are_fresh_and_registered_for_redaction(creds):
    other = incluster.make_credentials("peers-ns")
    assert creds.writer_token != other.writer_token and creds.slack_token.startswith("xoxb-")
    assert redact.redact(f"x {creds.writer_token} y") != f"x {creds.writer_token} y"
    assert "BEGIN CERTIFICATE" in creds.tls_cert and creds.ssh_host_public.startswith("ssh-ed25519 ")
    assert creds.writer_token not in repr(creds)


def test_objects_hold_no_credential_outside_the_secret(creds):
    docs = incluster.objects("peers-ns", creds, "peers:1", "prom:1", ["172.18.0.2"])
    text = yaml.safe_dump_all(docs)
    for value in (creds.writer_token, creds.reader_token, creds.slack_token, creds.tls_key, creds.ssh_host_key):
        assert value not in text
    secret = json.dumps(incluster.secret("peers-ns", creds))
    assert creds.writer_token in secret and creds.slack_token in secret  # for the run's xdist workers
    pod = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "peers")["spec"]["template"]
    mounted = next(v for v in pod["spec"]["volumes"] if v["name"] == "creds")["secret"]["items"]
    assert "slack-token" not in {i["key"] for i in mounted}  # the receiver itself gets a hash only


def test_network_policy_admits_only_the_engine_namespaces_and_the_nodes_for_the_registry(creds):
    docs = incluster.objects("peers-ns", creds, "peers:1", "prom:1", ["172.18.0.2"])
    policy = next(d for d in docs if d["kind"] == "NetworkPolicy")
    assert policy["spec"]["podSelector"] == {} and policy["spec"]["policyTypes"] == ["Ingress"]
    rules = policy["spec"]["ingress"]
    values = rules[0]["from"][0]["namespaceSelector"]["matchExpressions"][0]["values"]
    assert values == ["argocd", "argo-rollouts", "flux-system", "flagger-system"]
    assert rules[-1] == {"from": [{"ipBlock": {"cidr": "172.18.0.2/32"}}],
                         "ports": [{"protocol": "TCP", "port": incluster.PORTS["registry"]}]}


def test_every_object_carries_the_run_label(creds):
    from gitops_conformance.fixtures import names

    for doc in incluster.objects("peers-ns", creds, "peers:1", "prom:1", []):
        assert doc["metadata"]["labels"][names.RUN_ID_LABEL] == names.run_id(), doc["kind"]


def test_peer_servers_listen_in_pod_and_prometheus_labels_series_by_service(creds):
    docs = incluster.objects("peers-ns", creds, "peers:1", "prom:1", [])
    pod = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "peers")
    for c in pod["spec"]["template"]["spec"]["containers"]:
        assert c["name"] == "registry" or "--in-pod" in c["args"], c["name"]
    relabel = incluster.prometheus_config("peers-ns")["scrape_configs"][0]["relabel_configs"]
    assert {"source_labels": ["__meta_kubernetes_service_name", "__meta_kubernetes_namespace"],
            "separator": ".", "target_label": "service"} in relabel
