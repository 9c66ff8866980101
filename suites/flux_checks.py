"""The checks behind the items implemented for Flux (`--engine flux`), as functions the suites
and the self-tests that break the setup share. Each returns what it measured or raises
`CheckFailed` saying what was expected, what was seen, and the procedure's "On failure" hint.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import time

from gitops_conformance.fixtures import checks, hints, probes
from gitops_conformance.fixtures.checks import Observation
from gitops_conformance.fixtures.flux import GITREPOSITORY, KUSTOMIZATION, SERVED_KINDS, Flux, http_status
from gitops_conformance.fixtures.kube import Kube
from gitops_conformance.scenarios import step2_applications as myapp
from gitops_conformance.scenarios.flux import FluxApp, applied_at

CONTROLLERS_READY = 30.0
SYNC_AFTER_COMMIT = 60.0
FLUX_INSTALL_HINT = ("Flux's controllers run in flux-system; check them with `flux check` and "
                     "`kubectl -n flux-system logs deploy/<controller>`.")


# ----- install -----------------------------------------------------------------------------

def controllers_ready(waiter: checks.Waiter, flux: Flux, *, timeout: float = CONTROLLERS_READY) -> str:
    """source-, kustomize- and notification-controller each answer their readiness probe
    (/readyz on --health-addr, what the Deployments' readinessProbe asks)."""
    if not flux.readyz:
        raise AssertionError("this target exposes no controller readiness endpoints")

    def probe() -> Observation:
        seen = {name: http_status(url) for name, url in flux.readyz.items()}
        text = ", ".join(f"{name}: {status}" for name, status in seen.items())
        return Observation.ok(text) if all(s == "200" for s in seen.values()) else Observation.pending(text)

    obs = waiter.until(probe, timeout=timeout, what="Flux controllers Ready",
                            expected="every controller's /readyz answers HTTP 200",
                            remediation=hints.for_item("install") + " " + FLUX_INSTALL_HINT)
    return obs.observed


def crds_served(kube: Kube, *, expected: dict[str, tuple[str, ...]] = SERVED_KINDS) -> str:
    """The API serves every Flux kind the procedure uses, at the controllers' versions (discovery
    of each group/version lists the resource): the CRDs are installed and Established."""
    missing, served = [], []
    for group_version, plurals in expected.items():
        proc = kube.kubectl("get", "--raw", f"/apis/{group_version}", check=False)
        listed = {r["name"] for r in json.loads(proc.stdout).get("resources", [])} if proc.returncode == 0 else set()
        for plural in plurals:
            (served if plural in listed else missing).append(f"{plural}.{group_version}")
    observed = f"served: {', '.join(served) or 'none'}" + (f"; NOT served: {', '.join(missing)}" if missing else "")
    if missing:
        raise checks.CheckFailed(
            what="Flux CRDs served", expected="every Flux kind listed by API discovery", observed=observed,
            elapsed=0.0, bound=0.0, terminal=True,
            remediation=hints.for_item("install") + " Apply the controllers' CRDs (config/crd/bases of each "
                        "controller's release, or `flux install`).")
    return observed


FLUX_CHECK = 60.0


def check_pre(env: dict[str, str], *, timeout: float = FLUX_CHECK) -> str:
    """`flux check --pre` (the runner's flux CLI against the target's kubeconfig) passes: the
    cluster's Kubernetes version is one this Flux supports, and the API answers."""
    flux_bin = shutil.which("flux", path=env.get("PATH"))
    if not flux_bin:
        raise checks.CheckFailed(what="flux check --pre", expected="the flux CLI on the runner's PATH",
                                 observed="no `flux` on PATH", elapsed=0.0, bound=0.0, terminal=True,
                                 remediation="Install the flux CLI of the cluster's Flux release.")
    t0 = time.monotonic()
    try:
        proc = subprocess.run([flux_bin, "check", "--pre", f"--timeout={int(timeout)}s"], env=env,
                              capture_output=True, text=True, timeout=timeout + 10)
        output, code = (proc.stdout + proc.stderr).strip(), proc.returncode
    except subprocess.TimeoutExpired:
        output, code = f"no result within {timeout + 10:.0f}s", -1
    if code != 0:
        raise checks.CheckFailed(what="flux check --pre", expected="exit 0, 'prerequisites checks passed'",
                                 observed=f"exit {code}: {output[-800:]}", elapsed=time.monotonic() - t0,
                                 bound=timeout, terminal=True,
                                 remediation=hints.for_item("install") + " " + FLUX_INSTALL_HINT)
    return output.splitlines()[-1] if output else "exit 0"


# ----- auto_sync ---------------------------------------------------------------------------

def commit_is_applied(waiter: checks.Waiter, kube: Kube, flux: Flux, app: FluxApp, *, tag: str | None = None,
                      replicas: int | None = None, timeout: float = SYNC_AFTER_COMMIT) -> float:
    """Commit a change to the prod overlay (the push announces it to the Receiver); the
    Kustomization must be Ready at that commit and the Deployment changed. Returns seconds from
    push to applied."""
    myapp.set_prod(app.repo, tag=tag, replicas=replicas)
    change = ", ".join(f"{k}={v}" for k, v in (("tag", tag), ("replicas", replicas)) if v is not None)
    sha = app.repo.commit_and_push(f"Change prod: {change}")
    t0 = time.monotonic()
    applied = applied_at(flux, app.name, app.namespace, sha)

    def seen_commit() -> Observation:
        obs = applied()
        if obs.outcome is checks.Outcome.PENDING:
            source = flux.kube.get(GITREPOSITORY, app.name, app.namespace) or {}
            fetched = ((source.get("status") or {}).get("artifact") or {}).get("revision", "")
            if sha not in fetched:
                why = ("source-controller has not fetched the commit: no webhook reached the Receiver and "
                       "the GitRepository's interval has not come round" if not app.webhook_path else
                       "source-controller has not fetched the commit yet")
                return Observation.pending(f"{obs.observed}; GitRepository at {fetched or '-'} ({why})")
        return obs

    waiter.until(
        checks.all_of(seen_commit,
                      probes.deployment(kube, app.namespace, "myapp", replicas=replicas,
                                        image=f"{app.image}:{tag}" if tag else None)),
        timeout=timeout, what=f"Flux apply of commit {sha[:10]} ({change}) to {app.namespace}",
        expected=f"Kustomization {app.name} Ready at {sha[:10]} and Deployment myapp with {change}",
        remediation=hints.for_item("auto_sync") + " Check that the Git host's webhook reaches the Flux "
                    "Receiver, or that the GitRepository's interval polls within the bound.",
        evidence=lambda: {"kustomization": kube.get_yaml(KUSTOMIZATION, app.name, app.namespace),
                          "gitrepository": kube.get_yaml(GITREPOSITORY, app.name, app.namespace),
                          "events": kube.events(app.namespace)})
    return time.monotonic() - t0


def _with_spec(flux: Flux, app: FluxApp, probe):
    """The probe, its observation annotated with the Kustomization's prune and interval: the
    usual cause when drift is not corrected or a removal is not pruned."""
    def annotated() -> Observation:
        obs = probe()
        if obs.outcome is checks.Outcome.OK:
            return obs
        spec = (flux.kube.get(KUSTOMIZATION, app.name, app.namespace) or {}).get("spec") or {}
        policy = f"spec.prune={str(bool(spec.get('prune'))).lower()}, spec.interval={spec.get('interval', '?')}"
        return Observation(obs.outcome, f"{obs.observed} [{policy}]", obs.detail)
    return annotated


# ----- self_heal ---------------------------------------------------------------------------

SELF_HEAL = 60.0


def drift_is_reverted(waiter: checks.Waiter, kube: Kube, flux: Flux, app: FluxApp, drift: str, *, timeout: float = SELF_HEAL) -> float:
    """An out-of-band change with kubectl (`scale`, `set-image`, `delete-service`); kustomize-
    controller must undo it when it next applies the Kustomization (its interval, no commit
    needed). Returns seconds from the change to the reverted state."""
    ns = app.namespace
    expected_image = f"{app.image}:v1.0.0"
    if drift == "scale":
        kube.kubectl("-n", ns, "scale", "deployment/myapp", "--replicas=1")
        probe = probes.deployment(kube, ns, "myapp", replicas=5, available=False)
        what, expected = "kubectl scale deployment/myapp --replicas=1", "replicas back to 5 (from Git)"
    elif drift == "set-image":
        kube.kubectl("-n", ns, "set", "image", "deployment/myapp", "myapp=ghcr.io/username/myapp:hotfix")
        probe = probes.deployment(kube, ns, "myapp", image=expected_image, available=False)
        what, expected = "kubectl set image ... myapp:hotfix", f"image back to {expected_image} (from Git)"
    elif drift == "delete-service":
        kube.kubectl("-n", ns, "delete", "service", "myapp", "--wait=true")
        probe = probes.exists(kube, "service", "myapp", ns)
        what, expected = "kubectl delete service myapp", "Service myapp recreated (from Git)"
    else:
        raise ValueError(f"unknown drift {drift!r}")
    t0 = time.monotonic()
    waiter.until(
        _with_spec(flux, app, probe), timeout=timeout, what=f"Flux drift correction of `{what}` in {ns}",
        expected=expected,
        remediation=hints.for_item("self_heal") + " Flux corrects drift each time it applies the "
                    "Kustomization: its spec.interval must be shorter than the time you allow.",
        evidence=lambda: {"kustomization": kube.get_yaml(KUSTOMIZATION, app.name, ns), "events": kube.events(ns)})
    return time.monotonic() - t0


# ----- prune -------------------------------------------------------------------------------

PRUNE = 60.0


def removed_manifest_is_pruned(waiter: checks.Waiter, kube: Kube, flux: Flux, app: FluxApp, *, timeout: float = PRUNE) -> float:
    """Remove service.yaml from Git; the Kustomization must apply that commit and delete the
    Service from the cluster (garbage collection of its inventory, `prune: true`). Returns
    seconds from the push to pruned."""
    base = app.repo.read_yaml("apps/myapp/base/kustomization.yaml")[0]
    base["resources"] = [r for r in base["resources"] if r != "service.yaml"]
    app.repo.write_yaml("apps/myapp/base/kustomization.yaml", base)
    app.repo.delete("apps/myapp/base/service.yaml")
    sha = app.repo.commit_and_push("Remove the myapp Service")
    t0 = time.monotonic()
    applied = applied_at(flux, app.name, app.namespace, sha)

    def pruned() -> Observation:
        gone = probes.absent(kube, "service", "myapp", app.namespace)()
        at = applied()
        seen = f"{gone.observed}; {at.observed}"
        if at.outcome is checks.Outcome.FAILED:
            return Observation.failed(seen, at.detail)
        both = gone.outcome is checks.Outcome.OK and at.outcome is checks.Outcome.OK
        return Observation.ok(seen) if both else Observation.pending(seen)

    waiter.until(
        _with_spec(flux, app, pruned), timeout=timeout,
        what=f"prune of Service myapp removed from Git in {sha[:10]}",
        expected="the Kustomization applied the removal commit and Service myapp is deleted from the cluster",
        remediation=hints.PITFALLS["prune-disabled"] + " (Flux: spec.prune: true on the Kustomization.) "
                    + hints.ON_FAILURE[2],
        evidence=lambda: {"kustomization": kube.get_yaml(KUSTOMIZATION, app.name, app.namespace),
                          "events": kube.events(app.namespace)})
    return time.monotonic() - t0
