"""Checks for rbac under Flux (procedure step 3, multi-tenancy): a tenant's Kustomization that
applies as its ServiceAccount (`serviceAccountName`) may create objects in its own namespace but
is refused outside it (Ready=False with the API server's "forbidden"), and a Kustomization
using a GitRepository of another namespace is refused (Ready=False AccessDenied: "cross-namespace
references have been blocked", kustomize-controller's `--no-cross-namespace-refs=true`). Both
are read from the Kustomization's own Ready condition, and the objects it would have created
must not exist.
"""
from __future__ import annotations

from gitops_conformance.fixtures import checks, hints, probes
from gitops_conformance.fixtures.checks import Observation
from gitops_conformance.fixtures.flux import KUSTOMIZATION, Flux
from gitops_conformance.fixtures.kube import Kube
from gitops_conformance.scenarios.flux.step2_kustomizations import applied_at
from gitops_conformance.scenarios.flux.step3_tenancy import CONFIGMAP, FluxTenant

REFUSAL = 45.0
TENANCY_HINT = ("Flux multi-tenancy: give each tenant Kustomization a `serviceAccountName` bound only in its "
                "namespace (or run kustomize-controller with `--default-service-account`), and run the "
                "controllers with `--no-cross-namespace-refs=true`.")
CROSS_NAMESPACE_BLOCKED = "cross-namespace references have been blocked"
# Ready=False reasons that are not an answer yet: still working, or its source has no artifact yet
NOT_YET = ("Progressing", "ArtifactFailed", "DependencyNotReady", None)


def _refused(flux: Flux, kube: Kube, name: str, namespace: str, words: tuple[str, ...], created: tuple[str, str]):
    """Probe: Kustomization `name` ends Ready=False with a message holding every one of `words`,
    and the object it would have created (namespace, name of a ConfigMap) does not exist. Ready=True
    or that object existing is terminal: the boundary did not hold."""
    cm_ns, cm_name = created

    def probe() -> Observation:
        state = flux.kustomization(name, namespace)
        ready = flux.ready_condition(KUSTOMIZATION, name, namespace)
        made = kube.get("configmap", cm_name, cm_ns) is not None
        seen = (f"Kustomization {namespace}/{name}: Ready={ready.get('status', '?')} reason={ready.get('reason', '-')} "
                f"message={ready.get('message', '')[:400]!r}; ConfigMap {cm_ns}/{cm_name} "
                f"{'EXISTS' if made else 'absent'}")
        if not state.exists:
            return Observation.pending(seen)
        if made or ready.get("status") == "True":
            return Observation.failed(seen, "the Kustomization applied what it must not")
        if ready.get("status") == "False" and ready.get("reason") not in NOT_YET:
            message = ready.get("message", "")
            if all(w in message for w in words):
                return Observation.ok(seen)
            return Observation.failed(seen, f"refused, but the message lacks {[w for w in words if w not in message]}")
        return Observation.pending(seen)

    return probe


def tenant_is_confined(waiter: checks.Waiter, flux: Flux, kube: Kube, tenant: FluxTenant, own: str, outside: str, *,
                       timeout: float = REFUSAL) -> str:
    """The tenant's Kustomization of its own namespace is Ready (its ServiceAccount may apply
    there), and the one creating a ConfigMap in the platform namespace is refused: Ready=False,
    "forbidden" for the ServiceAccount, the ConfigMap not created."""
    ns = tenant.namespace
    user = f"system:serviceaccount:{ns}:{tenant.service_account}" if tenant.service_account else ""
    words = ("forbidden", user) if user else ("forbidden",)
    obs = waiter.until(
        checks.all_of(applied_at(flux, own, ns, tenant.revision), probes.exists(kube, "configmap", CONFIGMAP, ns),
                      _refused(flux, kube, outside, ns, words, (tenant.platform_namespace, CONFIGMAP))),
        timeout=timeout, what=f"tenant Kustomizations of {ns} applying as {tenant.service_account or '(none)'}",
        expected=(f"{own} Ready with ConfigMap {ns}/{CONFIGMAP}; {outside} Ready=False, forbidden for "
                  f"{user or 'the tenant ServiceAccount'}, "
                  f"ConfigMap {tenant.platform_namespace}/{CONFIGMAP} not created"),
        remediation=hints.ON_FAILURE[3] + " " + TENANCY_HINT,
        evidence=lambda: {"kustomization-own": kube.get_yaml(KUSTOMIZATION, own, ns),
                          "kustomization-outside": kube.get_yaml(KUSTOMIZATION, outside, ns),
                          "events": kube.events(ns)})
    return obs.observed


def cross_namespace_source_is_refused(waiter: checks.Waiter, flux: Flux, kube: Kube, tenant: FluxTenant, name: str, *,
                                      timeout: float = REFUSAL) -> str:
    """The tenant's Kustomization `name` names the platform namespace's GitRepository: it must end
    Ready=False with kustomize-controller's "cross-namespace references have been blocked", and
    its ConfigMap (in the tenant's own namespace) not created."""
    ns = tenant.namespace
    return waiter.until(
        _refused(flux, kube, name, ns, (CROSS_NAMESPACE_BLOCKED,), (ns, CONFIGMAP)), timeout=timeout,
        what=f"Kustomization {ns}/{name} with sourceRef {tenant.platform_namespace}/{tenant.source}",
        expected=f"Ready=False AccessDenied ({CROSS_NAMESPACE_BLOCKED!r}), nothing applied",
        remediation=hints.ON_FAILURE[3] + " " + TENANCY_HINT,
        evidence=lambda: {"kustomization": kube.get_yaml(KUSTOMIZATION, name, ns), "events": kube.events(ns)}).observed
