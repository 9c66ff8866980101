"""Step 5 the Flux way: myapp as a Flagger canary. Git holds the Deployment, the Ingress, a
Flagger `Canary` (nginx provider: weights on a copy of the Ingress, as Argo Rollouts' nginx
traffic routing does) and a `MetricTemplate` (the procedure's Prometheus success rate); a
Kustomization applies them (step 2's FluxApp), Flagger walks the canary.

What Flagger makes of it: `myapp-primary` (the stable Deployment, a copy of myapp), Services
`myapp`, `myapp-primary`, `myapp-canary`, and the Ingress copy `myapp-ingress-canary`; the target
Deployment `myapp` is scaled to 0 between releases. A release is a commit of the new tag: Flux
applies it to `myapp`, Flagger scales it up, shifts traffic by stepWeight while the metric
holds, then copies the spec to the primary (promotion) or routes everything back (rollback).

Differences from a production setup, on purpose (the timings in ONE place below):
  * Git sets no spec.replicas (Flux's answer to the HPA pitfall, and what Flagger's docs ask):
    Flagger scales the target to 0 and up again, and kustomize-controller must not undo that;
  * Git holds no Service: Flagger generates `myapp`, `myapp-primary` and `myapp-canary`
    (a Service of the same name in Git would have Flux and Flagger fight over its selector);
  * the MetricTemplate's address is the target's Prometheus and its query reads the series the
    test's traffic writes (`templateVariables.service`), as the Argo CD path's analysis does; on
    a cluster those are the canary pods' own request counters, their traffic sent to the canary
    Service directly (no ingress controller splits it by weight: ingress-nginx cannot be built
    offline, and Flagger's nginx provider only writes the weight on the Ingress copy).
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import pytest
import yaml

from gitops_conformance.fixtures import checks, hints, probes
from gitops_conformance.fixtures.cleanup import Tracker
from gitops_conformance.fixtures.flux import KUSTOMIZATION, Flux
from gitops_conformance.fixtures.gitrepo import GitRepo
from gitops_conformance.fixtures.kube import Kube
from gitops_conformance.fixtures.peers import Metrics, Traffic
from gitops_conformance.fixtures.plugin import Diagnostics

from .. import step2_applications as myapp
from . import step2_kustomizations as fluxs

FLAGGER_API = "flagger.app/v1beta1"
CANARY = "canaries.flagger.app"
METRIC_TEMPLATE = "metrictemplates.flagger.app"

# ---- test timings (Flagger's examples: interval 1m, threshold 5, stepWeight 10, maxWeight 50) ---
ANALYSIS_INTERVAL = "10s"  # Flagger's floor: a shorter interval is raised to 10s (GetAnalysisInterval)
THRESHOLD = 2              # failed metric checks before the rollback
STEP_WEIGHT, MAX_WEIGHT = 20, 80
RATE_WINDOW = "10s"        # the metric's interval: rate(...[10s]), as the Argo CD path's RATE_WINDOW
PROGRESS_DEADLINE_S = 120  # a canary that does not become ready in this time is rolled back
MIN_SUCCESS_RATE = 0.95    # the procedure's successCondition: result >= 0.95
# -------------------------------------------------------------------------------------------------

WEIGHTS = tuple(range(STEP_WEIGHT, MAX_WEIGHT + 1, STEP_WEIGHT))  # 20, 40, 60, 80
TARGET, PRIMARY, INGRESS, TEMPLATE = "myapp", "myapp-primary", "myapp-ingress", "success-rate"
CANARY_INGRESS = f"{INGRESS}-canary"  # the name Flagger's nginx router gives its copy
CANARY_SVC = f"{TARGET}-canary"       # the Service Flagger points the Ingress copy at
BASE = "apps/myapp/base"
FIRST_APPLY_TIMEOUT = 120.0  # Flux applies, then Flagger initialises (one analysis interval or two)


def deployment(image: str, tag: str) -> dict:
    """Step 2's Deployment without spec.replicas (see the module's notes)."""
    doc = myapp.base_files(image, tag)[f"{BASE}/deployment.yaml"]
    doc["spec"].pop("replicas", None)
    return doc


def ingress() -> dict:
    """The app's Ingress; its backend is the apex Service `myapp` Flagger generates (Flagger
    refuses an ingressRef whose rules do not route to it)."""
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": INGRESS},
            "spec": {"ingressClassName": "nginx", "rules": [{"host": "myapp.example.com", "http": {"paths": [
                {"path": "/", "pathType": "Prefix",
                 "backend": {"service": {"name": TARGET, "port": {"number": 80}}}}]}}]}}


def metric_template(prometheus_url: str) -> dict:
    """The procedure's success rate (2xx / all) over the metric's interval, from the series the
    canary's traffic writes (`variables.service`)."""
    sel = 'service="{{ variables.service }}"'
    query = (f'sum(rate(http_requests_total{{{sel},status=~"2.."}}[{{{{ interval }}}}]))\n/\n'
             f'sum(rate(http_requests_total{{{sel}}}[{{{{ interval }}}}]))\n')
    return {"apiVersion": FLAGGER_API, "kind": "MetricTemplate", "metadata": {"name": TEMPLATE},
            "spec": {"provider": {"type": "prometheus", "address": prometheus_url}, "query": query}}


def canary(metric_service: str, *, metrics: bool = True) -> dict:
    """The Canary: nginx provider, stepWeight 20 up to 80, the success-rate metric at >= 0.95.
    metrics=False leaves the analysis without a metric (a self-test: Flagger then promotes
    whatever it is given)."""
    analysis = {"interval": ANALYSIS_INTERVAL, "threshold": THRESHOLD, "maxWeight": MAX_WEIGHT,
                "stepWeight": STEP_WEIGHT, "metrics": []}
    if metrics:
        analysis["metrics"] = [{"name": TEMPLATE, "templateRef": {"name": TEMPLATE}, "interval": RATE_WINDOW,
                                "thresholdRange": {"min": MIN_SUCCESS_RATE},
                                "templateVariables": {"service": metric_service}}]
    return {"apiVersion": FLAGGER_API, "kind": "Canary", "metadata": {"name": TARGET},
            "spec": {"provider": "nginx", "progressDeadlineSeconds": PROGRESS_DEADLINE_S,
                     "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": TARGET},
                     "ingressRef": {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": INGRESS},
                     "service": {"port": 80, "targetPort": 8080},
                     "analysis": analysis}}


def write_layout(repo: GitRepo, namespace: str, *, prometheus_url: str, metric_service: str,
                 image: str = myapp.DEFAULT_IMAGE, tag: str = "v1.0.0", metrics: bool = True) -> None:
    """Step 2's layout converted for Flagger: base = deployment, ingress, canary, metric template;
    the prod overlay sets the namespace and the image tag (the release commit changes it)."""
    repo.write_yaml(f"{BASE}/kustomization.yaml", {
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "resources": ["deployment.yaml", "ingress.yaml", "canary.yaml", "metric-template.yaml"]})
    repo.write_yaml(f"{BASE}/deployment.yaml", deployment(image, "v1.0.0"))
    repo.write_yaml(f"{BASE}/ingress.yaml", ingress())
    repo.write_yaml(f"{BASE}/canary.yaml", canary(metric_service, metrics=metrics))
    repo.write_yaml(f"{BASE}/metric-template.yaml", metric_template(prometheus_url))
    repo.write_yaml(f"{myapp.PROD_PATH}/kustomization.yaml", {
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "namespace": namespace,
        "resources": ["../../base"], "images": [{"name": image, "newTag": tag}]})


def traffic_series(namespace: str) -> str:
    """The `service=` label this test's canary traffic carries (unique per namespace)."""
    return f"{CANARY_SVC}.{namespace}"


# ---- one look at this step's Canary -----------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class CanaryView:
    """What the checks read: the Canary's status, the primary's and the target's Deployments,
    and the weight on the Ingress copy."""

    exists: bool
    phase: str                  # Initializing, Initialized, Progressing, Promoting, Finalising, Succeeded, Failed...
    canary_weight: int          # status.canaryWeight
    failed_checks: int
    iterations: int
    message: str                # the Promoted condition's message (why it is where it is)
    primary_image: str | None
    primary_ready: int          # the primary Deployment's ready replicas
    primary_replicas: int | None  # and its spec.replicas
    target_image: str | None
    target_replicas: int | None
    ingress_weight: int | None  # the nginx canary-weight annotation on the Ingress copy
    metrics: int                # how many metrics the Canary's analysis declares

    @property
    def primary_serving(self) -> bool:
        """Every replica of the primary ready."""
        return self.primary_ready == self.primary_replicas

    def describe(self) -> str:
        if not self.exists:
            return "Canary myapp does not exist"
        return (f"canary phase={self.phase or '-'} weight={self.canary_weight} failedChecks={self.failed_checks} "
                f"iterations={self.iterations} ingress-weight={self.ingress_weight} "
                f"primary={self.primary_image} ({self.primary_ready}/{self.primary_replicas} ready) target={self.target_image} "
                f"x{self.target_replicas}; {self.message or '(no message)'}")


def _image(dep: dict | None) -> str | None:
    return dep["spec"]["template"]["spec"]["containers"][0]["image"] if dep else None


def look(kube: Kube, namespace: str) -> CanaryView:
    can = kube.get(CANARY, TARGET, namespace)
    primary = kube.get("deployment", PRIMARY, namespace)
    target = kube.get("deployment", TARGET, namespace)
    ing = kube.get("ingress", CANARY_INGRESS, namespace)
    st = (can or {}).get("status") or {}
    promoted = next((c for c in st.get("conditions") or [] if c.get("type") == "Promoted"), {})
    raw = ((ing or {}).get("metadata", {}).get("annotations") or {}).get(probes.WEIGHT_ANNOTATION)
    pst = (primary or {}).get("status") or {}
    return CanaryView(
        exists=can is not None, phase=st.get("phase", ""), canary_weight=int(st.get("canaryWeight") or 0),
        failed_checks=int(st.get("failedChecks") or 0), iterations=int(st.get("iterations") or 0),
        message=promoted.get("message", ""),
        primary_image=_image(primary),
        primary_ready=int(pst.get("readyReplicas") or 0), primary_replicas=(primary or {}).get("spec", {}).get("replicas"),
        target_image=_image(target), target_replicas=(target or {}).get("spec", {}).get("replicas"),
        ingress_weight=int(raw) if raw not in (None, "") else None,
        metrics=len((((can or {}).get("spec") or {}).get("analysis") or {}).get("metrics") or []))


def flagger_says(kube: Kube, namespace: str, last: int = 3) -> str:
    """Flagger's last events on the Canary, oldest first: it explains every halt, failed check and
    rollback there ("Halt advancement no values found for custom metric: ...")."""
    events = [e for e in kube.list("events", namespace)
              if (e.get("involvedObject") or {}).get("kind") == "Canary"]
    events.sort(key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")
    return " | ".join(f"{e.get('type', '')}: {e.get('message', '').strip()}" for e in events[-last:]) or "(no event)"


def canary_initialized(kube: Kube, namespace: str, image: str) -> checks.Probe:
    """Flagger has taken the Deployment over: the Canary Initialized (or Succeeded), the primary
    running `image` with every replica ready, the target scaled to 0."""
    def probe() -> checks.Observation:
        v = look(kube, namespace)
        ok = (v.phase in ("Initialized", "Succeeded") and v.primary_image == image and v.primary_serving
              and v.target_replicas == 0)
        return (checks.Observation.ok if ok else checks.Observation.pending)(v.describe())
    return probe


# ---- the action (When): the GitOps release -------------------------------------------------

def release(app: "FlaggerApp", tag: str) -> str:
    """The prod overlay's image tag set to `tag`, committed and pushed (the Receiver makes Flux
    fetch it at once). Returns the commit."""
    myapp.set_prod(app.repo, tag=tag)
    return app.repo.commit_and_push(f"Release myapp {tag}")


# ---- the deploy factory ----------------------------------------------------------------------

@dataclasses.dataclass
class FlaggerApp(fluxs.FluxApp):
    metric_service: str = ""   # the `service=` label the metric reads


@pytest.fixture
def deploy_flagger_canary(kube: Kube, flux: Flux, metrics: Metrics, traffic: Traffic, tracker: Tracker,
                          diagnostics: Diagnostics, connect_flux: Callable[..., str], git_repo: Callable[..., GitRepo],
                          namespace: Callable[..., str], unique: Callable[[str], str],
                          waiter: checks.Waiter) -> Callable[..., FlaggerApp]:
    """deploy_flagger_canary(metric_service=None, metrics_declared=True) -> FlaggerApp: applied by Flux
    at its first commit and initialised by Flagger (primary at v1.0.0, target scaled to 0), with
    traffic flowing. `metric_service` names the series the metric reads (default: the one the
    traffic produces); `metrics_declared=False` declares no metric (self-tests)."""
    checks.expect(kube.get("crd", CANARY) is not None, what="Flagger installed (procedure step 5)",
                  expected=f"the API serves {CANARY}", observed="no such CRD: Flagger is not installed",
                  remediation="Install Flagger (progressive delivery for Flux). " + hints.ON_FAILURE[5])

    def make(*, metric_service: str | None = None, metrics_declared: bool = True) -> FlaggerApp:
        repo = git_repo("myapp")
        ns = namespace("prod")
        metric = metric_service or traffic_series(ns)
        write_layout(repo, ns, prometheus_url=metrics.engine_url, metric_service=metric, metrics=metrics_declared)
        sha = repo.commit_and_push("Convert myapp to a Flagger canary")
        name = unique("myapp")
        diagnostics.objects.append((CANARY, TARGET, ns))
        diagnostics.components = ["source-controller", "kustomize-controller", "flagger"]
        path = connect_flux(repo, name, ns, myapp.PROD_PATH)
        # on a cluster, real requests to the canary Service: the canary's share of what the Ingress
        # would route by weight (no ingress controller runs; nginx's provider only writes the weight)
        traffic.start(ns, traffic_series(ns), service=CANARY_SVC)
        tracker.finalizers.append(lambda: traffic.stop(ns))
        image = f"{myapp.DEFAULT_IMAGE}:v1.0.0"
        waiter.until(
            checks.all_of(fluxs.applied_at(flux, name, ns, sha), canary_initialized(kube, ns, image)),
            timeout=FIRST_APPLY_TIMEOUT, what=f"first apply of Kustomization {ns}/{name} and Flagger's "
                                              "initialisation of the Canary (procedure step 5)",
            expected=f"Ready at {sha[:10]}; Canary Initialized, {PRIMARY} running {image} with every replica "
                     f"ready, {TARGET} scaled to 0 (by Flagger)",
            remediation=hints.ON_FAILURE[5])
        return FlaggerApp(name=name, namespace=ns, repo=repo, applied_revision=sha, webhook_path=path,
                          metric_service=metric)

    return make


def canary_evidence(kube: Kube, app: FlaggerApp):
    """Evidence for a failed canary check: the Canary, its events (Flagger says every step in
    one), the primary, the Ingress copy, the Kustomization."""
    def collect() -> dict[str, str]:
        ns = app.namespace
        return {"canary": kube.get_yaml(CANARY, TARGET, ns),
                "events": kube.events(ns),
                "primary": kube.get_yaml("deployment", PRIMARY, ns),
                "canary-ingress": kube.get_yaml("ingress", CANARY_INGRESS, ns),
                "kustomization": kube.get_yaml(KUSTOMIZATION, app.name, ns),
                "metric-template": yaml.safe_dump(kube.get(METRIC_TEMPLATE, TEMPLATE, ns) or {})}
    return collect
