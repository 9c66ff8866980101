"""The checks behind Validation item `image_promotion` (procedure step 4, Argo CD Image
Updater), shared by the suite and the self-tests that break the setup on purpose.

Each check waits (bounded) for the whole chain the procedure promises: the updater picks
the right tag, writes it back (a commit in Git, or the Application spec), Argo CD syncs it,
and the Deployment runs it. While waiting it says which link is missing, and quotes the
updater's own last word about the app from its log, so a silent failure is not possible.
"""
from __future__ import annotations

import re
import time
from typing import Callable

from gitops_conformance.fixtures import checks, diagnose, hints
from gitops_conformance.fixtures.checks import Observation
from gitops_conformance.fixtures.kube import Kube
from gitops_conformance.fixtures.providers import Target
from gitops_conformance.scenarios import step4_image_updater as step4
from gitops_conformance.scenarios.step2_applications import DeployedApp

# Bound (seconds, before --timeout-scale): one updater interval + Argo CD noticing the updater's
# commit by polling (the updater sends no webhook) + this margin for the sync and the rollout.
# Testbed (5s, 30s): 120s. A stock install (2m, 3m): 385s.
PROMOTION_MARGIN = 85.0


def promotion_bound(target: Target) -> float:
    """The wait for a promotion, from the intervals the engine is configured with."""
    from gitops_conformance.fixtures.install import DEFAULT_INTERVALS

    intervals = {**DEFAULT_INTERVALS, **target.intervals}
    return intervals["image_updater"] + intervals["reconciliation"] + PROMOTION_MARGIN

LOG = "argocd-image-updater"
DIAGNOSE = diagnose.components(diagnose.IMAGE_UPDATER, diagnose.APP_CONTROLLER, diagnose.REPO_SERVER)
_MSG = re.compile(r'msg="((?:[^"\\]|\\.)*)"')


def updater_says(target: Target, app_name: str, lines: int = 3000) -> str:
    """The updater's last notable log message about `app_name` (errors first), or ''."""
    if not target.log_reader:
        return ""
    mine = [ln for ln in target.log_reader(LOG, lines).splitlines() if f"application={app_name}" in ln]
    for wanted in (("level=error", "level=warning"), ("",)):
        hits = [ln for ln in mine if any(w in ln for w in wanted)]
        if hits:
            m = _MSG.search(hits[-1])
            return (m.group(1) if m else hits[-1])[:600]
    return ""


def _evidence(kube: Kube, target: Target, app: DeployedApp) -> Callable[[], dict[str, str]]:
    def collect() -> dict[str, str]:
        ev = {"application": kube.get_yaml("applications.argoproj.io", app.name, target.argocd_namespace),
              "git-log": app.repo.git("log", "-n", "10", "--format=%h %an <%ae> %s", check=False)}
        if target.log_reader:
            ev["log-argocd-image-updater"] = target.log_reader(LOG, 80)
            ev[f"log-argocd-image-updater-{app.name}"] = "\n".join(
                ln for ln in target.log_reader(LOG, 3000).splitlines() if f"application={app.name}" in ln)
        return ev
    return collect


def _deployment(kube: Kube, app: DeployedApp) -> tuple[list[str], bool]:
    d = kube.get("deployment", "myapp", app.namespace) or {}
    spec, st = d.get("spec") or {}, d.get("status") or {}
    images = [c["image"] for c in ((spec.get("template") or {}).get("spec") or {}).get("containers", [])]
    want = spec.get("replicas")
    ready = bool(d) and st.get("availableReplicas", 0) == want and st.get("updatedReplicas", 0) == want \
        and st.get("observedGeneration", 0) >= d["metadata"].get("generation", 0)
    return images, ready


def _tag_of(ref: str, image: str) -> str:
    return ref.removeprefix(image + ":") if ref.startswith(image + ":") else ref


def git_declared(app: DeployedApp, announced: set[str] | None = None) -> tuple[str | None, str]:
    """(image reference the updater wrote back to Git, its latest commit line) after a pull.

    A Git host sends Argo CD a push webhook for every push, the updater's included; the
    testbed's Git server sends none, so the suite sends it for a new head it has not
    `announced` yet, as it does for its own pushes (none with --no-webhook: then Argo CD
    finds the commit by polling, up to timeout.reconciliation + the repo-server's 3m ls-remote cache)."""
    before = app.repo.head()
    after = app.repo.pull()
    if announced is not None and after not in announced and app.repo.on_push:
        app.repo.on_push(app.repo, before, after, [step4.prod_path_file(app.name)])
        announced.add(after)
    commit = app.repo.git("log", "-n", "1", f"--author={step4.UPDATER_AUTHOR}", "--format=%h %an: %s")
    override = app.repo.workdir / step4.prod_path_file(app.name)
    if not override.exists():
        return None, commit
    images = ((app.repo.read_yaml(step4.prod_path_file(app.name)) or [{}])[0].get("kustomize") or {}).get("images") or []
    return (images[0] if images else None), commit


def written_back(app: DeployedApp) -> str:
    """The promotion reached Git: the repository's history has a commit by Image Updater."""
    _, commit = git_declared(app)
    checks.expect(bool(commit), what=f"Image Updater's write-back to {app.repo.url}",
                  expected=f"a commit by {step4.UPDATER_AUTHOR} in the branch the Application tracks",
                  observed="no such commit in the history", remediation=hints.ON_FAILURE[4])
    return commit


def promoted(waiter: checks.Waiter, kube: Kube, target: Target, app: DeployedApp, image: step4.RegistryImage, tag: str, *,
             allowed: Callable[[str], bool], start_tag: str = "v1.0.0", timeout: float | None = None) -> float:
    """Semver + git write-back: a commit by argocd-image-updater writes `image:tag` to Git and
    the Deployment runs it; a tag the annotations exclude must never appear. Returns seconds."""
    want = f"{image.name}:{tag}"
    t0 = time.monotonic()
    announced = {app.repo.head()}

    def probe() -> Observation:
        written, commit = git_declared(app, announced)
        running, ready = _deployment(kube, app)
        seen = [_tag_of(r, image.name) for r in ([written] if written else []) + running]
        bad = [t for t in seen if t != start_tag and not allowed(t)]
        words = (f"Git: {('commit ' + commit + ' writes ' + written) if commit and written else 'no commit by ' + step4.UPDATER_AUTHOR}; "
                 f"Deployment runs {','.join(running) or '-'}{'' if ready else ' (rolling out)'}")
        if bad:
            return Observation.failed(words, f"a tag the annotations exclude was promoted: {bad[0]}")
        if written == want and want in running and ready:
            return Observation.ok(words)
        if not any(t != start_tag for t in seen):
            words += f" (app stays at {start_tag})"
        matching = sorted(t for t in image.tags() if allowed(t))
        words += f"; registry tags allowed by the annotations: {matching or 'none (no tag matched)'}"
        said = updater_says(target, app.name)
        return Observation.pending(words + (f"; updater: {said}" if said else "; updater logged nothing for this app"))

    waiter.until(
        probe, timeout=timeout or promotion_bound(target), what=f"Image Updater promotion of {app.name} to {tag}",
        expected=f"a commit by {step4.UPDATER_AUTHOR} writing {want} to {step4.prod_path_file(app.name)} and "
                 f"Deployment myapp running it (never an excluded tag)",
        remediation=hints.ON_FAILURE[4], evidence=_evidence(kube, target, app), max_wait=2.0,
        diagnose=DIAGNOSE)
    return time.monotonic() - t0


def digest_followed(waiter: checks.Waiter, kube: Kube, target: Target, app: DeployedApp, image: step4.RegistryImage,
                    tag: str, digest: str, *,
                    timeout: float | None = None) -> float:
    """Digest + argocd write-back: the Application's spec.source.kustomize.images pins `tag`'s
    current digest and the Deployment runs it. Returns seconds."""
    t0 = time.monotonic()

    def probe() -> Observation:
        live = kube.get("applications.argoproj.io", app.name, target.argocd_namespace) or {}
        pinned = ((live.get("spec") or {}).get("source") or {}).get("kustomize", {}).get("images") or []
        running, ready = _deployment(kube, app)
        words = (f"spec.source.kustomize.images={pinned or '[]'}; Deployment runs {','.join(running) or '-'}"
                 f"{'' if ready else ' (rolling out)'}")
        if any(p.endswith("@" + digest) for p in pinned) and any(r.endswith("@" + digest) for r in running) and ready:
            return Observation.ok(words)
        said = updater_says(target, app.name)
        return Observation.pending(words + (f"; updater: {said}" if said else "; updater logged nothing for this app"))

    waiter.until(
        probe, timeout=timeout or promotion_bound(target), what=f"Image Updater digest tracking of {image.name}:{tag} in {app.name}",
        expected=f"spec.source.kustomize.images pinning {tag}@{digest[:19]}... and Deployment myapp running that digest",
        remediation=hints.ON_FAILURE[4], evidence=_evidence(kube, target, app), max_wait=2.0,
        diagnose=DIAGNOSE)
    return time.monotonic() - t0
