"""Checks for install under Flux (procedure step 1, `--engine flux`): the controllers answer
their readiness probes, the API serves every Flux kind the procedure uses, `flux check --pre`
passes. Each returns what it measured or raises `CheckFailed` saying what was expected, what was
seen, and the procedure's "On failure" hint.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import time

from gitops_conformance.fixtures import checks, hints
from gitops_conformance.fixtures.checks import Observation
from gitops_conformance.fixtures.flux import CONTROLLERS, FLUX_NAMESPACE, SERVED_KINDS, Flux, http_status
from gitops_conformance.fixtures.kube import Kube

CONTROLLERS_READY = 30.0
FLUX_INSTALL_HINT = ("Flux's controllers run in flux-system; check them with `flux check` and "
                     "`kubectl -n flux-system logs deploy/<controller>`.")


def controllers_ready(waiter: checks.Waiter, flux: Flux, *, timeout: float = CONTROLLERS_READY) -> str:
    """source-, kustomize- and notification-controller each answer their readiness probe
    (/readyz on --health-addr): asked directly where the suite reaches it (host processes), else
    as the kubelet asked it (every replica of each Deployment in flux-system ready)."""
    def asked() -> dict[str, tuple[bool, str]]:
        return {name: (status == "200", status) for name, status in
                ((name, http_status(url)) for name, url in flux.readyz.items())}

    def deployments() -> dict[str, tuple[bool, str]]:
        seen = {}
        for name in CONTROLLERS:
            dep = flux.kube.get("deployment", name, FLUX_NAMESPACE)
            if dep is None:
                seen[name] = (False, "no Deployment")
                continue
            st, want = dep.get("status") or {}, dep["spec"].get("replicas", 1)
            ready = st.get("readyReplicas") or 0
            seen[name] = (bool(want) and ready == want == st.get("updatedReplicas"),
                          f"{ready}/{want} ready" if want else "scaled to 0 replicas")
        return seen

    def probe() -> Observation:
        seen = asked() if flux.readyz else deployments()
        text = ", ".join(f"{name}: {status}" for name, (_, status) in seen.items())
        return Observation.ok(text) if all(ok for ok, _ in seen.values()) else Observation.pending(text)

    obs = waiter.until(probe, timeout=timeout, what="Flux controllers Ready",
                       expected="every controller's /readyz answers HTTP 200" if flux.readyz else
                                f"every replica of {', '.join(CONTROLLERS)} in {FLUX_NAMESPACE} ready (readinessProbe /readyz)",
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
