"""Validation item `canary` (procedure step 5): the checks, as functions, so the suite and
the self-tests that break the setup on purpose run the same code.

Each check changes the Rollout the way the procedure does (a Git commit synced by Argo CD,
or a `kubectl argo rollouts` command), polls the Rollout, its canary Ingress and its
AnalysisRuns, and returns what it measured or raises CheckFailed.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import time

from gitops_conformance.fixtures import checks, diagnose, hints, probes
from gitops_conformance.fixtures.argocd import ArgoCD
from gitops_conformance.fixtures.changes import ChangeLog
from gitops_conformance.fixtures.checks import Observation
from gitops_conformance.fixtures.kube import Kube
from gitops_conformance.fixtures.probes import RolloutView as View, analysis_measurements
from gitops_conformance.scenarios import step5_rollouts as step5
from gitops_conformance.scenarios.step5_rollouts import DeployedRollout, look

# Bounds (seconds, before --timeout-scale). A full walk is 4 pauses of CANARY_PAUSE plus
# the analysis; the testbed does it in ~20s.
SYNC = 60.0
CANARY = 120.0
ABORT = 90.0
CLI = 60.0
FAST = {"initial_wait": 0.2, "max_wait": 0.5}  # each weight lasts only CANARY_PAUSE: poll fast
REMEDY = hints.for_item("canary")
BAD_ANALYSIS = ("Failed", "Error", "Inconclusive")


def _evidence(kube: Kube, argocd: ArgoCD, app: DeployedRollout):
    def collect() -> dict[str, str]:
        ns = app.namespace
        tree = step5.plugin(kube, ns, "get", "rollout", step5.ROLLOUT)
        return {"rollout-tree": tree.stdout or tree.stderr,
                "rollout": kube.get_yaml("rollouts.argoproj.io", step5.ROLLOUT, ns),
                "analysisruns": kube.kubectl("get", "analysisruns.argoproj.io", "-n", ns, "-o", "yaml", check=False).stdout,
                "canary-ingress": kube.get_yaml("ingress", step5.CANARY_INGRESS, ns),
                "application": kube.get_yaml("applications.argoproj.io", app.name, argocd.namespace),
                "events": kube.events(ns)}
    return collect


def _diagnose(argocd: ArgoCD, app: DeployedRollout) -> diagnose.Diagnosis:
    return diagnose.first_of(diagnose.components(diagnose.ROLLOUTS_CONTROLLER),
                             diagnose.for_app(argocd, app.name))


def _stale(v: View) -> str:
    # the controller writes observedGeneration when it has seen a spec: if it lags, nothing moves
    return (f"the Rollouts controller has not updated the Rollout status (observedGeneration="
            f"{v.observed_generation or '-'} < generation={v.generation}): the rollout does not progress")


def _runs_of(v: View, pod_hash: str) -> list[dict]:
    return [a for a in v.analysis_runs if a["hash"] == pod_hash]


def _bad_analysis(v: View) -> str | None:
    for a in _runs_of(v, v.current_hash):
        if a["phase"] in BAD_ANALYSIS:
            return (f"AnalysisRun {a['name']} {a['phase']}: {a['message'] or '(no message)'}; "
                    f"measurements {analysis_measurements(a)}")
    return None


def _ts(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _decision_seconds(run: dict, rec: "Recorder | None" = None) -> float | None:
    """AnalysisRun start -> its Successful/Failed phase. The API's startedAt/completedAt have 1s
    resolution, so the Recorder's own sightings (polled every <=0.5s) are preferred."""
    if rec is not None and run["name"] in rec.decided:
        # a run that fails on its first measurement is never seen undecided: then it started
        # when the rollout reached the analysis' startingStep
        start = rec.first_seen.get(run["name"], rec.analysis_step_at)
        if start is not None:
            return max(0.0, rec.decided[run["name"]] - start)
    if run.get("startedAt") and run.get("completedAt"):
        return _ts(run["completedAt"]) - _ts(run["startedAt"])
    return None


class WeightRecorder:
    """The canary weights a controller writes on the canary Ingress, from a watch opened before
    the release (every version, none missed however slow a poll is: a weight lasts seconds).
    Argo Rollouts' and Flagger's recorders extend it with what else they remember."""

    def __init__(self, kube: Kube, namespace: str, canary_ingress: str):
        self.kube, self.namespace, self.canary_ingress = kube, namespace, canary_ingress
        self.ingress = ChangeLog(kube, namespace, kinds=("Ingress",)).__enter__()

    @property
    def weights(self) -> list[int]:
        """The canary weight of every version of the canary Ingress, repeats collapsed."""
        return [int(w) for w in self.ingress.annotation_values("Ingress", self.canary_ingress,
                                                              probes.WEIGHT_ANNOTATION)]

    def close(self) -> None:
        self.ingress.__exit__(None, None, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Recorder(WeightRecorder):
    """Looks at the rollout and remembers the sequence of steps it saw and when its analysis
    runs were decided; the weights as WeightRecorder sees them."""

    def __init__(self, kube: Kube, namespace: str):
        super().__init__(kube, namespace, step5.CANARY_INGRESS)
        self.steps: list[int] = []
        self.first_seen: dict[str, float] = {}  # AnalysisRun -> when first seen still undecided
        self.decided: dict[str, float] = {}     # AnalysisRun -> when first seen Successful/Failed/...
        self.analysis_step_at: float | None = None  # when the new revision reached startingStep

    def look(self) -> View:
        v = look(self.kube, self.namespace)
        if v.step_index is not None and (not self.steps or self.steps[-1] != v.step_index):
            self.steps.append(v.step_index)
        now = time.monotonic()
        if (self.analysis_step_at is None and v.step_index is not None and v.step_index >= step5.ANALYSIS_STEP
                and any(i < step5.ANALYSIS_STEP for i in self.steps)):
            self.analysis_step_at = now
        for a in v.analysis_runs:
            if a["phase"] in ("", "Pending", "Running"):
                self.first_seen.setdefault(a["name"], now)
            else:
                self.decided.setdefault(a["name"], now)
        return v

    def observe(self) -> tuple[View, str, Observation | None]:
        """One look: the view, in words with the weights seen, and the answer every canary check
        gives while the controller has not caught up with the spec (pending), or None."""
        v = self.look()
        seen = f"{v.describe()}; weights seen={self.weights}"
        return v, seen, (checks.pending(f"{_stale(v)}; {seen}") if v.status_stale else None)


def _synced(waiter: checks.Waiter, kube: Kube, argocd: ArgoCD, app: DeployedRollout, tag: str, sha: str,
            rec: "Recorder") -> str:
    """Argo CD synced the release commit. The recorder keeps looking meanwhile: the first weight
    may be set before the sync is reported. Returns the released image."""
    synced = probes.app_synced(argocd, app.name, revision=sha, healthy=False)

    def probe() -> Observation:
        rec.look()
        return synced()

    waiter.until(probe, timeout=SYNC, **FAST,
                 what=f"Argo CD sync of the Rollout change {tag} ({sha[:10]})",
                 expected=f"application Synced at {sha[:10]}", remediation=REMEDY,
                 evidence=_evidence(kube, argocd, app), diagnose=_diagnose(argocd, app))
    return f"{app.image}:{tag}"


@dataclasses.dataclass
class CanaryResult:
    weights: list[int]          # canary-weight annotation values, in the order seen
    steps: list[int]            # status.currentStepIndex values, in the order seen
    analysis_run: str
    analysis_phase: str
    decision_s: float | None


def canary_progresses(waiter: checks.Waiter, kube: Kube, argocd: ArgoCD, app: DeployedRollout, rec: Recorder, *,
                      before: View, tag: str, sha: str, timeout: float = CANARY) -> CanaryResult:
    """After a release of `tag` (commit `sha`) under healthy traffic, watched by `rec` from before
    the commit: the canary walks 20→40→60→80→100, the analysis is Successful, the new revision
    becomes stable (not `before`'s), and Argo CD stays Synced (no fight)."""
    new_image = _synced(waiter, kube, argocd, app, tag, sha, rec)

    def promoted() -> Observation:
        v, seen, stale = rec.observe()
        if stale:
            return stale
        bad = _bad_analysis(v)
        if bad or v.abort or v.phase == "Degraded":
            return checks.failed(seen, bad or "the rollout aborted")  # bad names the AnalysisRun
        if (v.phase == "Healthy" and v.image == new_image and v.stable_rs == v.current_hash
                and v.stable_rs != before.stable_rs):
            return checks.ok(seen)
        return checks.pending(seen)

    what = f"canary rollout of {new_image} in {app.namespace}"
    waiter.until(promoted, timeout=timeout, what=what, remediation=REMEDY, **FAST,
                 expected=f"weights {'→'.join(map(str, step5.WEIGHTS))} step by step, analysis "
                               f"Successful, revision {tag} stable", evidence=_evidence(kube, argocd, app), diagnose=_diagnose(argocd, app))
    walked = [w for w in rec.weights if w > 0]
    checks.expect(all(w in walked for w in step5.WEIGHTS[:-1]) and walked == sorted(walked),
                  what=f"{what}: traffic weights", observed=f"canary-weight sequence {rec.weights}, steps {rec.steps}",
                  expected=f"the canary Ingress weight rising through {list(step5.WEIGHTS[:-1])}",
                  remediation=REMEDY)

    new_hash = look(kube, app.namespace).current_hash

    def analysis_done() -> Observation:
        runs = _runs_of(rec.look(), new_hash)
        seen = f"analysisruns of revision {new_hash}: " + (", ".join(
            f"{a['name']}={a['phase'] or 'Pending'} measurements={analysis_measurements(a)}" for a in runs) or "none")
        # a background run that only errored still ends "Successful (Run Terminated)": require a
        # measurement that actually met the success condition
        if any(a["phase"] == "Successful" and any(m[0] == "Successful" for m in a["measurements"]) for a in runs):
            return checks.ok(seen)
        if any(a["phase"] in BAD_ANALYSIS + ("Successful",) for a in runs):
            return checks.failed(seen, "the analysis never measured a success: the rollout was promoted unverified")
        return checks.pending(seen)

    # background analysis ends when the rollout completes; its phase lands just after
    waiter.until(analysis_done, timeout=30, what=f"{what}: analysis", expected="AnalysisRun Successful",
                 remediation=REMEDY, evidence=_evidence(kube, argocd, app), diagnose=_diagnose(argocd, app))
    run = next(a for a in _runs_of(look(kube, app.namespace), new_hash) if a["phase"] == "Successful")

    def settled() -> Observation:
        v = look(kube, app.namespace)
        return (checks.ok if v.canary_weight == 0 else checks.pending)(f"canary-weight={v.canary_weight}")

    waiter.until(checks.all_of(settled, step5.app_synced(argocd, app.name, revision=sha)), timeout=30,
                 what=f"{what}: after promotion", remediation=REMEDY, evidence=_evidence(kube, argocd, app), diagnose=_diagnose(argocd, app),
                 expected=f"canary weight back to 0 and the Application still Synced at {sha[:10]} with the Rollout Healthy "
                          "(Argo CD does not fight the Rollouts controller)")
    return CanaryResult(rec.weights, rec.steps, run["name"], run["phase"], _decision_seconds(run, rec))


def _stable_pods(kube: Kube, namespace: str, pod_hash: str) -> str:
    """The stable ReplicaSet's image and ready pods, in words."""
    rs = kube.list("rs", namespace, f"rollouts-pod-template-hash={pod_hash}")
    pods = kube.list("pods", namespace, f"rollouts-pod-template-hash={pod_hash}")
    images = sorted({c["image"] for p in pods for c in p["spec"]["containers"]})
    ready = sum(all(c.get("ready") for c in (p.get("status") or {}).get("containerStatuses") or [{}]) for p in pods)
    return f"rs={[r['metadata']['name'] for r in rs]} pods={len(pods)} ready={ready} images={images}"


def canary_aborts(waiter: checks.Waiter, kube: Kube, argocd: ArgoCD, app: DeployedRollout, rec: Recorder, *,
                  before: View, tag: str, sha: str, rate: float, timeout: float = ABORT) -> float | None:
    """After a release of `tag` (commit `sha`) whose traffic succeeds at `rate` only, watched by
    `rec` from before the commit: the AnalysisRun fails, the rollout aborts (Degraded) and
    `before`'s revision keeps serving (stable RS and pods on the old image, canary weight 0).
    Returns the analysis decision time."""
    new_image = _synced(waiter, kube, argocd, app, tag, sha, rec)

    def aborted() -> Observation:
        v, seen, stale = rec.observe()
        if stale:
            return stale
        if v.phase == "Healthy" and v.stable_rs == v.current_hash and v.image == new_image:
            return checks.failed(seen, f"promoted {tag} although the success rate was {rate}: the analysis "
                                       f"did not fail it")
        runs = _runs_of(v, v.current_hash)
        if any(a["phase"] in ("Error", "Inconclusive") for a in runs):
            return checks.failed(seen, "the analysis did not decide Failed: " + (_bad_analysis(v) or ""))
        ok = v.abort and v.phase == "Degraded" and any(a["phase"] == "Failed" for a in runs)
        return checks.ok(seen) if ok else checks.pending(seen)

    what = f"canary of {new_image} with success rate {rate} in {app.namespace}"
    waiter.until(aborted, timeout=timeout, what=what, remediation=REMEDY, **FAST,
                 expected="AnalysisRun Failed, rollout aborted (status.abort, phase Degraded)",
                 evidence=_evidence(kube, argocd, app), diagnose=_diagnose(argocd, app))
    failed_run = next(a for a in _runs_of(look(kube, app.namespace), look(kube, app.namespace).current_hash)
                      if a["phase"] == "Failed")

    def old_serves() -> Observation:
        v = look(kube, app.namespace)
        svc = kube.get("service", step5.STABLE_SVC, app.namespace) or {}
        selector = (svc.get("spec") or {}).get("selector", {}).get("rollouts-pod-template-hash")
        pods = _stable_pods(kube, app.namespace, before.stable_rs)
        seen = f"stableRS={v.stable_rs} (before: {before.stable_rs}), stable Service selects {selector}, " \
               f"canary-weight={v.canary_weight}, stable {pods}"
        ok = (v.stable_rs == before.stable_rs and selector == before.stable_rs and v.canary_weight == 0
              and f"images=['{before.image}']" in pods and "ready=5" in pods)
        return checks.ok(seen) if ok else checks.pending(seen)

    waiter.until(old_serves, timeout=30, what=f"{what}: stable after abort", remediation=REMEDY,
                 expected=f"stable revision {before.stable_rs} ({before.image}, 5 ready pods) serving, canary weight 0",
                 evidence=_evidence(kube, argocd, app), diagnose=_diagnose(argocd, app))
    return _decision_seconds(failed_run, rec)


    # ----- the procedure's kubectl argo rollouts commands ---------------------------------------

def _until(waiter: checks.Waiter, kube: Kube, argocd: ArgoCD, app: DeployedRollout, what: str, expected: str, cond,
           timeout: float = CLI) -> View:
    def probe() -> Observation:
        v = look(kube, app.namespace)
        if v.status_stale:
            return checks.pending(f"{_stale(v)}; {v.describe()}")
        return checks.ok(v.describe()) if cond(v) else checks.pending(v.describe())
    waiter.until(probe, timeout=timeout, what=what, expected=expected, remediation=REMEDY,
                 evidence=_evidence(kube, argocd, app), diagnose=_diagnose(argocd, app))
    return look(kube, app.namespace)


def set_image_pauses(waiter: checks.Waiter, kube: Kube, argocd: ArgoCD, app: DeployedRollout, tag: str, *,
                     timeout: float = CLI) -> View:
    """After step5.set_image(tag): a canary that stops at the indefinite `pause: {}` with 20% weight."""
    image = f"{app.image}:{tag}"
    return _until(waiter, kube, argocd, app, f"`kubectl argo rollouts set image myapp myapp={image}`",
                  "phase Paused at step 1 (pause: {}) with canary weight 20",
                  lambda v: v.image == image and v.phase == "Paused" and v.step_index == 1 and v.canary_weight == 20,
                  timeout)


def set_image_holds(waiter: checks.Waiter, kube: Kube, argocd: ArgoCD, app: DeployedRollout, tag: str,
                    hold: float = 15.0) -> View:
    """After step5.set_image(tag) under the procedure's own Application: the canary it starts must
    not be undone by Argo CD for `hold` seconds (selfHeal reverts an out-of-band spec edit to Git's)."""
    image = f"{app.image}:{tag}"
    set_image_pauses(waiter, kube, argocd, app, tag)
    t0 = time.monotonic()

    def holds() -> Observation:
        v = look(kube, app.namespace)
        seen = f"{v.describe()} [{probes.sync_policy(argocd, app.name)}]"
        if v.image != image:
            return checks.failed(seen, f"Argo CD reverted the Rollout to Git's image {time.monotonic() - t0:.0f}s "
                                       "after `set image`")
        return checks.ok(seen) if time.monotonic() - t0 >= hold else checks.pending(seen)

    waiter.until(holds, timeout=hold + 10, what=f"`kubectl argo rollouts set image myapp myapp={image}` under "
                 f"the procedure's Application", expected=f"the canary of {image} kept for {hold:g}s",
                 remediation="Release through Git (the image tag in the overlay), or turn selfHeal off / add "
                                  "ignoreDifferences for the Rollout's image while using the imperative commands. "
                                  + REMEDY, evidence=_evidence(kube, argocd, app), diagnose=_diagnose(argocd, app), max_wait=1.0)
    return look(kube, app.namespace)


def promote_completes(waiter: checks.Waiter, kube: Kube, argocd: ArgoCD, app: DeployedRollout, *,
                      timeout: float = CLI) -> View:
    """After step5.promote: past the pause, the paused canary's image stable (promote leaves the spec alone)."""
    image = look(kube, app.namespace).image
    return _until(waiter, kube, argocd, app, "`kubectl argo rollouts promote myapp`",
                  f"past the pause, Healthy with {image} stable",
                  lambda v: v.phase == "Healthy" and v.stable_rs == v.current_hash and v.image == image, timeout)


def abort_returns_to_stable(waiter: checks.Waiter, kube: Kube, argocd: ArgoCD, app: DeployedRollout, stable_rs: str, *,
                            timeout: float = CLI) -> View:
    """After step5.abort: aborted, traffic back on `stable_rs`."""
    return _until(waiter, kube, argocd, app, "`kubectl argo rollouts abort myapp`",
                  f"status.abort, phase Degraded, canary weight 0, stable still {stable_rs}",
                  lambda v: v.abort and v.phase == "Degraded" and v.canary_weight == 0 and v.stable_rs == stable_rs,
                  timeout)


def undo_rolls_back(waiter: checks.Waiter, kube: Kube, argocd: ArgoCD, app: DeployedRollout, previous_image: str, *,
                    timeout: float = CLI) -> View:
    """After step5.undo: the spec back at the previous revision's image, rolled out."""
    return _until(waiter, kube, argocd, app, "`kubectl argo rollouts undo myapp`",
                  f"spec back to the previous revision's {previous_image}, Healthy, abort cleared",
                  lambda v: v.image == previous_image and v.phase == "Healthy" and not v.abort
                  and v.stable_rs == v.current_hash, timeout)


REVISION = "rollout.argoproj.io/revision"


@dataclasses.dataclass(frozen=True)
class History:
    listed: str           # the revisions `get rollout` listed, in words (the check's observation)
    warning: str | None   # the procedure's `history` command is not a command of the plugin (a WARN, not a pass)


def kept_revisions(kube: Kube, namespace: str) -> list[int]:
    """The revisions the Rollout keeps: its ReplicaSets' rollout.argoproj.io/revision annotations."""
    rollout = kube.get("rollouts.argoproj.io", step5.ROLLOUT, namespace) or {}
    uid = (rollout.get("metadata") or {}).get("uid")
    rs = kube.list("rs", namespace)
    return sorted(int(r["metadata"]["annotations"][REVISION]) for r in rs
                  if any(o.get("uid") == uid for o in r["metadata"].get("ownerReferences") or [])
                  and REVISION in (r["metadata"].get("annotations") or {}))


def history_lists_revisions(kube: Kube, app: DeployedRollout, *, at_least: int = 2) -> History:
    """The Rollout's revision history, which step 5 reads with `kubectl argo rollouts history
    myapp`: the plugin (v1.9) has no such command, and `kubectl argo rollouts get rollout myapp`
    prints the same history (a `revision:N` per ReplicaSet). The check: the Rollout keeps at
    least `at_least` revisions (something to undo to) and `get rollout` lists every one of them.
    The missing `history` command is returned as a warning, never counted as a pass."""
    proc = step5.plugin(kube, app.namespace, "history", step5.ROLLOUT)
    out = (proc.stdout + proc.stderr).strip()
    warning = None
    if not (proc.returncode == 0 and "REVISION" in out.upper()):
        version = step5.plugin(kube, app.namespace, "version", "--short").stdout.strip()
        warning = (f"the procedure's `kubectl argo rollouts history myapp` is not a command of the plugin "
                   f"({version}): exit {proc.returncode}: {out.splitlines()[0][:200] if out else ''}; "
                   f"`kubectl argo rollouts get rollout myapp` lists the revisions instead")
    kept = kept_revisions(kube, app.namespace)
    got = step5.plugin(kube, app.namespace, "get", "rollout", step5.ROLLOUT)
    listing = (got.stdout + got.stderr).strip()
    listed = sorted({int(w.split(":", 1)[1]) for w in listing.split()
                     if w.startswith("revision:") and w.split(":", 1)[1].isdigit()})
    observed = (f"ReplicaSets keep revisions {kept or 'none'}; `get rollout` (exit {got.returncode}) lists "
                f"{['revision:%d' % r for r in listed] or 'no revision'}")
    what = "the Rollout's revision history (`kubectl argo rollouts get rollout myapp`)"
    checks.expect(got.returncode == 0 and kept and set(kept) <= set(listed), what=what,
                  expected="every revision the Rollout keeps listed as revision:N", observed=observed + (
                      f": {listing[:300]}" if got.returncode else ""), remediation=REMEDY)
    checks.expect(len(kept) >= at_least, what=what,
                  expected=f"at least {at_least} revisions kept (a previous one to undo to)",
                  observed=f"{observed}; spec.revisionHistoryLimit="
                           f"{((kube.get('rollouts.argoproj.io', step5.ROLLOUT, app.namespace) or {}).get('spec') or {}).get('revisionHistoryLimit', 'default 10')}",
                  remediation="Keep revisionHistoryLimit > 0 so a bad release can be undone. " + REMEDY)
    return History(listed=observed, warning=warning)
