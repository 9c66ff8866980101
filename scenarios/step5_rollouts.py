"""Step 5: myapp converted to an Argo Rollouts canary (rollout.yaml, services.yaml,
analysis-template.yaml, plus the Ingress the nginx traffic routing needs), deployed from
Git by the procedure's Application.

Differences from the procedure, on purpose:
  * the timings below (ONE place; the procedure's values in comments);
  * the AnalysisTemplate's Prometheus address is the target's Prometheus;
  * the prod overlay sets the analysis arg `service-name` to `myapp-canary.<namespace>`,
    so each test reads its own series from the shared traffic source;
  * the prod overlay sets replicas with a patch: kustomize's `replicas:` field only knows
    Deployment/StatefulSet/ReplicaSet/ReplicationController and refuses a Rollout
    ("resource with name myapp does not match a config with the following GVK").
"""
from __future__ import annotations

import dataclasses
import json
import subprocess
from typing import Callable

import pytest
import yaml

from gitops_conformance.fixtures import checks, diagnose, hints, probes
from gitops_conformance.fixtures.argocd import ArgoCD
from gitops_conformance.fixtures.cleanup import Tracker
from gitops_conformance.fixtures.gitrepo import GitRepo
from gitops_conformance.fixtures.kube import Kube
from gitops_conformance.fixtures.peers import Metrics, Traffic
from gitops_conformance.fixtures.plugin import Diagnostics
from gitops_conformance.scenarios import step1_install as step1
from gitops_conformance.scenarios import step2_applications as step2


# ---- test timings: the procedure's steps, shortened so a run takes seconds ---------------
CANARY_PAUSE = "2s"        # procedure: pause {duration: 5m} between weights
ANALYSIS_INTERVAL = "3s"   # procedure: interval: 1m
# procedure: rate(...[1m]). Prometheus scrapes every 1-2s; a short window keeps the stable pods'
# samples (the canary Service selected them before the update) from diluting a failing canary's
RATE_WINDOW = "10s"
# The procedure's successCondition compares `result`, but Rollouts' Prometheus provider hands a
# vector query's result over as a list ([]float64): every measurement then Errors with
# "invalid operation: >= (mismatched types []float64 and float64)" and a background analysis
# that only errored ends "Successful (Run Terminated)" when the rollout completes. The
# scenarios use the indexed form; one test runs the verbatim one to show the defect.
PROCEDURE_SUCCESS_CONDITION = "result >= 0.95"
SUCCESS_CONDITION = "result[0] >= 0.95"
# -------------------------------------------------------------------------------------------

WEIGHTS = (20, 40, 60, 80, 100)
ANALYSIS_STEP = 2  # startingStep: the background analysis begins at setWeight 40
ROLLOUT, STABLE_SVC, CANARY_SVC, INGRESS, TEMPLATE = "myapp", "myapp-stable", "myapp-canary", "myapp-ingress", "success-rate"
CANARY_INGRESS = f"{ROLLOUT}-{INGRESS}-canary"  # the name the nginx traffic router gives its copy
BASE = "apps/myapp/base"
FIRST_SYNC_TIMEOUT = 90.0


def steps(indefinite_pause: bool = False) -> list[dict]:
    """setWeight 20/40/60/80/100 with pauses; indefinite_pause makes the first one `pause: {}`
    (the CLI checks need a rollout that waits for `promote`)."""
    out: list[dict] = []
    for i, w in enumerate(WEIGHTS):
        out.append({"setWeight": w})
        if w != WEIGHTS[-1]:
            out.append({"pause": {} if (indefinite_pause and i == 0) else {"duration": CANARY_PAUSE}})
    return out


def rollout(image: str, tag: str, indefinite_pause: bool = False) -> dict:
    return {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "metadata": {"name": ROLLOUT},
        "spec": {
            "replicas": 5, "revisionHistoryLimit": 3, "selector": {"matchLabels": {"app": "myapp"}},
            "template": {"metadata": {"labels": {"app": "myapp"}},
                         "spec": {"containers": [{"name": "myapp", "image": f"{image}:{tag}",
                                                  "ports": [{"containerPort": 8080}]}]}},
            "strategy": {"canary": {
                "steps": steps(indefinite_pause),
                "canaryService": CANARY_SVC, "stableService": STABLE_SVC,
                "trafficRouting": {"nginx": {"stableIngress": INGRESS,
                                             "annotationPrefix": "nginx.ingress.kubernetes.io"}},
                "analysis": {"templates": [{"templateName": TEMPLATE}], "startingStep": ANALYSIS_STEP,
                             "args": [{"name": "service-name", "value": CANARY_SVC}]},
            }},
        },
    }


def services() -> list[dict]:
    return [{"apiVersion": "v1", "kind": "Service", "metadata": {"name": n},
             "spec": {"selector": {"app": "myapp"}, "ports": [{"port": 80, "targetPort": 8080}]}}
            for n in (STABLE_SVC, CANARY_SVC)]


def analysis_template(prometheus_url: str, success_condition: str = SUCCESS_CONDITION) -> dict:
    sel = '{service="{{args.service-name}}"'
    query = (f'sum(rate(http_requests_total{sel},status=~"2.."}}[{RATE_WINDOW}]))\n/\n'
             f'sum(rate(http_requests_total{sel}}}[{RATE_WINDOW}]))\n')
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisTemplate", "metadata": {"name": TEMPLATE},
            "spec": {"args": [{"name": "service-name"}],
                     "metrics": [{"name": "success-rate", "interval": ANALYSIS_INTERVAL,
                                  "successCondition": success_condition,
                                  "provider": {"prometheus": {"address": prometheus_url, "query": query}}}]}}


def ingress() -> dict:
    """The stable Ingress `stableIngress: myapp-ingress` names (the procedure assumes it exists)."""
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": INGRESS},
            "spec": {"ingressClassName": "nginx", "rules": [{"host": "myapp.example.com", "http": {"paths": [
                {"path": "/", "pathType": "Prefix",
                 "backend": {"service": {"name": STABLE_SVC, "port": {"number": 80}}}}]}}]}}


def prod_overlay(namespace: str, metric_service: str, image: str, tag: str) -> dict:
    patch = [{"op": "replace", "path": "/spec/replicas", "value": 5},
             {"op": "replace", "path": "/spec/strategy/canary/analysis/args/0/value", "value": metric_service}]
    return {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "namespace": namespace,
            "resources": ["../../base"], "images": [{"name": image, "newTag": tag}],
            "patches": [{"target": {"kind": "Rollout", "name": ROLLOUT},
                         "patch": yaml.safe_dump(patch)}]}


def write_layout(repo: GitRepo, namespace: str, *, prometheus_url: str, metric_service: str,
                 image: str = step2.DEFAULT_IMAGE, tag: str = "v1.0.0", indefinite_pause: bool = False,
                 success_condition: str = SUCCESS_CONDITION) -> None:
    """Step 2's layout with Step 5's conversion: deployment.yaml replaced by rollout.yaml."""
    repo.write_yaml(f"{BASE}/kustomization.yaml", {
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "resources": ["rollout.yaml", "service.yaml", "services.yaml", "analysis-template.yaml", "ingress.yaml"]})
    repo.write_yaml(f"{BASE}/rollout.yaml", rollout(image, "v1.0.0", indefinite_pause))
    repo.write_yaml(f"{BASE}/service.yaml", step2.base_files(image)[f"{BASE}/service.yaml"])
    repo.write_yaml(f"{BASE}/services.yaml", *services())
    repo.write_yaml(f"{BASE}/analysis-template.yaml", analysis_template(prometheus_url, success_condition))
    repo.write_yaml(f"{BASE}/ingress.yaml", ingress())
    repo.write_yaml(f"{step2.PROD_PATH}/kustomization.yaml", prod_overlay(namespace, metric_service, image, tag))


def traffic_series(namespace: str) -> str:
    """The `service=` label this test's canary traffic carries (unique per namespace)."""
    return f"{CANARY_SVC}.{namespace}"


# ---- one look at this step's Rollout (the probes live in fixtures/probes.py) ---------------

def look(kube: Kube, namespace: str) -> probes.RolloutView:
    """The Rollout, its canary Ingress weight and its AnalysisRuns, as every canary check reads them."""
    return probes.rollout_view(kube, namespace, ROLLOUT, canary_ingress=CANARY_INGRESS)


def plugin(kube: Kube, namespace: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """`kubectl argo rollouts <args> -n <ns>`. The kubeconfig goes by environment: kubectl
    refuses flags placed before a plugin's name."""
    cmd = ["kubectl", "argo", "rollouts", *args, "-n", namespace] + (["--context", kube.context] if kube.context else [])
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          env={**kube.env, "KUBECONFIG": str(kube.kubeconfig)})


# ---- actions (When): the procedure's ways to release, through Git and with the plugin -----------

def release(app: "DeployedRollout", tag: str) -> str:
    """The GitOps release: the prod overlay's image tag set to `tag`, committed and pushed.
    Returns the commit (Argo CD syncs it; the Rollouts controller walks the canary)."""
    step2.set_prod(app.repo, tag=tag)
    return app.repo.commit_and_push(f"Release myapp {tag}")


def rollouts_command(kube: Kube, app: "DeployedRollout", *args: str) -> str:
    """One of step 5's `kubectl argo rollouts` commands on this step's Rollout. A refusal fails
    the step at once, naming the command (the controller's reaction is for the checks)."""
    command = "kubectl argo rollouts " + " ".join(args)
    proc = plugin(kube, app.namespace, *args)
    checks.expect(proc.returncode == 0, what=f"`{command}` (procedure step 5)", expected="exit 0",
                  observed=f"exit {proc.returncode}: {(proc.stderr or proc.stdout).strip()[:500]}",
                  remediation=hints.for_item("canary"))
    return proc.stdout


def set_image(kube: Kube, app: "DeployedRollout", tag: str) -> str:
    """`kubectl argo rollouts set image myapp myapp=<image>:<tag>`: a canary started out of band."""
    return rollouts_command(kube, app, "set", "image", ROLLOUT, f"myapp={app.image}:{tag}")


def promote(kube: Kube, app: "DeployedRollout") -> str:
    return rollouts_command(kube, app, "promote", ROLLOUT)


def abort(kube: Kube, app: "DeployedRollout") -> str:
    return rollouts_command(kube, app, "abort", ROLLOUT)


def undo(kube: Kube, app: "DeployedRollout") -> str:
    return rollouts_command(kube, app, "undo", ROLLOUT)


def rollout_healthy(kube: Kube, namespace: str, image: str | None = None) -> checks.Probe:
    return probes.rollout_healthy(kube, namespace, ROLLOUT, canary_ingress=CANARY_INGRESS, image=image)


def app_synced(argocd: ArgoCD, name: str, revision: str | None = None) -> checks.Probe:
    return probes.app_synced_with_resource_healthy(argocd, name, f"Rollout/{ROLLOUT}", revision=revision)


# ---- the deploy factory --------------------------------------------------------------------

@dataclasses.dataclass
class DeployedRollout:
    name: str            # the Application
    namespace: str
    repo: GitRepo
    manifest: dict
    synced_revision: str
    metric_service: str  # the `service=` label the analysis queries
    image: str = step2.DEFAULT_IMAGE


@pytest.fixture
def deploy_rollout(kube: Kube, argocd: ArgoCD, metrics: Metrics, traffic: Traffic, tracker: Tracker,
                   diagnostics: Diagnostics, git_repo: Callable[..., GitRepo], namespace: Callable[..., str],
                   unique: Callable[[str], str], waiter: checks.Waiter) -> Callable[..., DeployedRollout]:
    """deploy_rollout(metric_service=None, indefinite_pause=False, changes=None) -> DeployedRollout,
    synced and fully rolled out at v1.0.0 (a first revision goes straight to 100%), with traffic
    flowing (on a cluster: real requests to its pods). `metric_service` names the series the
    analysis reads (default: the one the traffic produces)."""
    diagnostics.components.append("rollouts-controller")

    def make(*, metric_service: str | None = None, indefinite_pause: bool = False,
             changes: dict | None = None, success_condition: str = SUCCESS_CONDITION) -> DeployedRollout:
        repo = git_repo("myapp")
        ns = namespace("prod", create=False)
        metric = metric_service or traffic_series(ns)
        write_layout(repo, ns, prometheus_url=metrics.engine_url, metric_service=metric,
                     indefinite_pause=indefinite_pause, success_condition=success_condition)
        sha = repo.commit_and_push("Convert myapp to an Argo Rollouts canary")
        step1.register_https(argocd, kube, repo)
        name = unique("myapp-prod")
        manifest = step2.application(name, repo.url, step2.PROD_PATH, ns)
        if changes:
            manifest = step2.with_changes(manifest, **changes)
        diagnostics.apps.append(name)
        diagnostics.objects.append(("rollouts.argoproj.io", ROLLOUT, ns))
        step2.apply(kube, tracker, manifest)
        waiter.until(
            checks.all_of(app_synced(argocd, name, revision=sha), rollout_healthy(kube, ns)),
            timeout=FIRST_SYNC_TIMEOUT, what=f"first sync of the Rollout app {name} (procedure step 5)",
            expected=f"Synced at {sha[:10]}, Rollout myapp Healthy in {ns} (for Argo CD and the Rollouts controller)",
            remediation=hints.ON_FAILURE[5],
            diagnose=diagnose.for_app(argocd, name, extra=(diagnose.ROLLOUTS_CONTROLLER,)))
        traffic.start(ns, traffic_series(ns))
        tracker.finalizers.append(lambda: traffic.stop(ns))
        return DeployedRollout(name=name, namespace=ns, repo=repo, manifest=manifest, synced_revision=sha,
                               metric_service=metric)

    return make


def real_traffic_evidence(kube: Kube, metrics, traffic, ns: str) -> str:
    """What the pods in `ns` really served (cluster targets; Flagger's canary too): Prometheus'
    per-pod request counts by status, the traffic source's own tally, the pods and their images,
    their last log lines."""
    lines = [f"Prometheus {metrics.engine_url}: sum by (service, pod, status) of "
             f"increase(http_requests_total{{namespace=\"{ns}\"}}[10m])"]
    try:
        for s in metrics.series(f'sum by (service, pod, status) (increase(http_requests_total{{namespace="{ns}"}}[10m]))'):
            m = s["metric"]
            lines.append(f"  {m.get('service', '?'):<40} {m.get('pod', '?'):<36} status={m.get('status', '?')} "
                         f"{float(s['value'][1]):.0f}")
    except Exception as exc:  # evidence only: say why it is missing
        lines.append(f"  (query failed: {exc})")
    try:
        lines.append(f"traffic source: {json.dumps(traffic.client.targets().get(ns, {}))}")
    except Exception as exc:
        lines.append(f"traffic source: (unavailable: {exc})")
    lines.append(kube.kubectl("get", "pods", "-n", ns, "-o", "custom-columns=POD:.metadata.name,IMAGE:.spec.containers[0].image,"
                              "HASH:.metadata.labels.rollouts-pod-template-hash,READY:.status.containerStatuses[0].ready",
                              check=False).stdout)
    logs = kube.kubectl("logs", "-n", ns, "-l", "app=myapp", "--tail=5", "--prefix", "--max-log-requests=20", check=False)
    lines.append("pod logs (last lines):\n" + (logs.stdout or logs.stderr))
    return "\n".join(lines)
