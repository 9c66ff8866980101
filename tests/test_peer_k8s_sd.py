"""The http_sd sidecar gives Prometheus what kubernetes_sd_configs (role endpoints) would."""
from gitops_conformance.testbed.peers import k8s_sd


def _slice(ns, service, pod, ip, ready=True):
    return {"metadata": {"namespace": ns, "labels": {"kubernetes.io/service-name": service}},
            "ports": [{"name": "http", "port": 8080}],
            "endpoints": [{"addresses": [ip], "conditions": {"ready": ready},
                           "targetRef": {"kind": "Pod", "name": pod, "namespace": ns}}]}


def _pod(ns, name, **labels):
    return {"metadata": {"namespace": ns, "name": name, "labels": labels}}


def test_targets_carry_the_kubernetes_sd_labels_of_pods_behind_services():
    pods = [_pod("app", "myapp-1", app="myapp", **{"rollouts-pod-template-hash": "abc"})]
    groups = k8s_sd.targets([_slice("app", "myapp-canary", "myapp-1", "10.244.0.7"),
                             _slice("app", "other", "not-selected", "10.244.0.8")], pods)
    assert groups == [{"targets": ["10.244.0.7:8080"], "labels": {
        "__meta_kubernetes_namespace": "app", "__meta_kubernetes_service_name": "myapp-canary",
        "__meta_kubernetes_pod_name": "myapp-1", "__meta_kubernetes_endpoint_ready": "true",
        "__meta_kubernetes_pod_label_app": "myapp", "__meta_kubernetes_pod_label_rollouts_pod_template_hash": "abc",
        "__meta_kubernetes_endpoint_port_name": "http"}}]


def test_slices_without_a_service_or_pod_target_are_skipped():
    orphan = _slice("app", "x", "myapp-1", "10.244.0.7")
    orphan["metadata"]["labels"] = {}
    node_target = _slice("app", "y", "myapp-1", "10.244.0.7")
    node_target["endpoints"][0]["targetRef"]["kind"] = "Node"
    assert k8s_sd.targets([orphan, node_target], [_pod("app", "myapp-1", app="myapp")]) == []
