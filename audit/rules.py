"""The Common Pitfalls rules: each takes the loaded repository and yields findings.

Every rule reads `Repo.docs` (plain objects and kustomize-rendered ones alike), checks one object
(or one group) at a time, and never prints a Secret value: `plaintext-secret` names keys only. An
object whose shape a rule does not expect is reported (`audit-internal-error` at its file and
line) and the rule goes on with the others. Applications without a source repoURL or a destination
(partial documents, e.g. test assertions) are not evaluated. ApplicationSets are evaluated through their
Application template (`spec.template`, plus `templatePatch` when it is literal YAML): findings
name the ApplicationSet; template values (`{{ ... }}`) are unknown, so checks that need them are
skipped. Decisions the issue left open:

- hpa-replicas-not-ignored: an HPA is paired only with the workload it targets in the same
  rendered kustomization, or deployed by the same Application (the one whose source path holds
  both, deepest path first); no such workload in the repository, or no Application: no finding.
  No matching ignoreDifferences (jsonPointers /spec/replicas, jqPathExpressions .spec.replicas, or
  managedFieldsManagers kube-controller-manager; group/kind/name/namespace as Argo CD matches
  them; or the same in argocd-cm's resource.customizations.ignoreDifferences) is an error;
  ignoreDifferences without syncOption RespectIgnoreDifferences=true is a warning (the diff is
  quiet, but each sync resets the replicas). A workload that does not set spec.replicas is fine.
- no-sync-waves: a group is the Applications in one directory (>= 2), or the children under an
  Application's source path (recursively with directory.recurse); an Application whose own path is
  the group's directory is its parent, not a child. Infra = name, source path or chart, or file name
  contains one of INFRA_WORDS. Fine when every infra child's wave is lower than every other child's.
- write-back-conflict: the branch written is git-branch's target (base:target) or the whole value
  (ImageUpdater v1alpha1: spec.writeBackConfig.gitConfig.branch, per applicationRef or global); a
  conflict when it is missing or is a branch the Application's Git sources track (never a Helm
  chart's version), main, master or HEAD.
- missing-finalizer: Applications only; an ApplicationSet's controller adds the finalizer to what it
  generates unless spec.syncPolicy.preserveResourcesOnDeletion: true, an explicit choice.
- self-heal-no-escape: an escape is (1) a sync window with manualSync: true or kind: deny in the
  Application's AppProject, if that AppProject is in the repo and the window selects the Application
  (applications/namespaces/clusters globs; a window with none selects all), (2) an annotation on the
  Application whose key contains "pause" or "skip-reconcile", or (3) a README/RUNBOOK (.md) inside
  the Application's source path with a section (heading to heading) matching both self[-_ ]?heal
  and disabl|paus.
- rollout-without-analysis: canary.analysis, or a step with analysis or experiment.analyses (or a
  step plugin, which may validate). A canary without steps is a rolling update: no finding. A canary whose only gate is an indefinite
  `pause: {}` or an experiment without a duration (manual approval) is a warning.
- Flux: a kustomize.toolkit.fluxcd.io Kustomization (with a sourceRef) without `prune: true` is
  prune-disabled; a Flagger Canary (with a targetRef) without analysis metrics or gating webhooks
  (pre-rollout, rollout) is rollout-without-analysis (a confirm-* webhook only: a warning). The
  other rules are Argo CD only.
"""
from __future__ import annotations

import fnmatch
import posixpath
import re
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from gitops_conformance.audit.argo import (API_GROUP, IMAGE_UPDATER_GROUP, automated, deployable, dig, is_kind, selected,
                        sources, sync_options, template, templated, tracked_branches, unknown)
from gitops_conformance.items import PITFALLS
from gitops_conformance.audit.model import ERROR, WARNING, Doc, Finding, Repo, as_list, is_under, norm

# The concrete fix the audit recommends for each Common Pitfall (the procedure's own words for
# each are in the item contract, gitops_conformance.items.PITFALLS).
FIXES: dict[str, str] = {
    'prune-disabled': 'set spec.syncPolicy.automated.prune: true.',
    'no-sync-waves': 'annotate the infrastructure Applications with a lower argocd.argoproj.io/sync-wave (e.g. "-1") than the applications that depend on them (e.g. "1").',
    'hpa-replicas-not-ignored': 'in the Application add ignoreDifferences [{group, kind, jsonPointers: [/spec/replicas]}] for the workload and syncOptions [RespectIgnoreDifferences=true] (or drop spec.replicas from the workload manifest).',
    'write-back-conflict': 'set argocd-image-updater.argoproj.io/git-branch to base:target with a dedicated target branch, e.g. main:image-updater-{{.SHA256}}, and merge it by pull request.',
    'missing-finalizer': 'add metadata.finalizers: [resources-finalizer.argocd.argoproj.io].',
    'rollout-without-analysis': 'reference an AnalysisTemplate from spec.strategy.canary.analysis (background) or from an analysis step.',
    'plaintext-secret': 'replace the Secret (or secretGenerator) with a SealedSecret or an ExternalSecret, remove it from Git history and rotate the values.',
    'self-heal-no-escape': "give operators a documented way to pause it: a sync window with manualSync: true (or a deny window) in the Application's AppProject, a pause/skip-reconcile annotation on the Application, or a README/RUNBOOK section on disabling self-heal in the Application's source directory.",
}

SYNC_WAVE = "argocd.argoproj.io/sync-wave"
FINALIZERS = {"resources-finalizer.argocd.argoproj.io", "resources-finalizer.argocd.argoproj.io/background",
              "resources-finalizer.argocd.argoproj.io/foreground"}
INFRA_WORDS = ("infra", "crd", "operator", "ingress", "cert-manager", "external-secrets", "sealed-secrets")
WB_METHOD = "argocd-image-updater.argoproj.io/write-back-method"
WB_BRANCH = "argocd-image-updater.argoproj.io/git-branch"
HUMAN_BRANCHES = {"main", "master", "HEAD", ""}
SCALABLE = {"Deployment": "apps", "StatefulSet": "apps", "Rollout": "argoproj.io"}
RESPECT = "RespectIgnoreDifferences=true"
ESCAPE_ANNOTATION = re.compile(r"pause|skip-reconcile", re.I)
RUNBOOK_SELF_HEAL = re.compile(r"self[-_ ]?heal", re.I)
RUNBOOK_ESCAPE = re.compile(r"disabl|paus", re.I)
HEADING = re.compile(r"^#{1,6}\s", re.M)
# keys of Argo CD repository/cluster Secrets that are settings, not credentials
ARGO_SECRET_SETTINGS = {"url", "type", "name", "project", "enableOCI", "insecure", "insecureIgnoreHostKey",
                        "enableLfs", "proxy", "noProxy", "forceHttpBasicAuth", "server", "namespaces",
                        "clusterResources", "githubAppID", "githubAppInstallationID", "githubAppEnterpriseBaseUrl",
                        "useAzureWorkloadIdentity"}
ARGO_SECRET_TYPE = "argocd.argoproj.io/secret-type"
FLUX_KUSTOMIZE = "kustomize.toolkit.fluxcd.io"
FLAGGER = "flagger.app"
FLAGGER_GATES = {"pre-rollout", "rollout"}
FLAGGER_MANUAL = {"confirm-rollout", "confirm-promotion", "confirm-traffic-increase"}
INTERNAL_FIX = "Report this as a bug in gitops-conformance audit, with the manifest that caused it."


def remediation(rule: str) -> str:
    quote, fix = PITFALLS[rule], FIXES[rule]
    return f'Common Pitfalls: "{quote}" Fix: {fix}'


SEVERITY = {rule: ERROR for rule in FIXES} | {
    "write-back-conflict": WARNING, "missing-finalizer": WARNING, "self-heal-no-escape": WARNING}


def finding(doc: Doc, rule: str, message: str, severity: str = "") -> Finding:
    severity = severity or SEVERITY[rule]
    return Finding.about(doc, rule, severity, f"{doc.label()}: {message}", remediation(rule))


T = TypeVar("T")


def each(items: Iterable[T], rule: str, check: Callable[[T], Iterable[Finding]],
         doc_of: Callable[[T], Doc] = lambda d: d) -> Iterable[Finding]:  # type: ignore[assignment, return-value]
    """check(item) for every item; an item the check trips over is reported at its document's
    file and line, and the rule goes on with the next."""
    for item in items:
        try:
            yield from check(item)
        except Exception as exc:  # noqa: BLE001 - one odd manifest must not stop the audit
            doc = doc_of(item)
            yield Finding("audit-internal-error", ERROR, doc.file, doc.line,
                          f"{doc.label()}: rule {rule} could not read this object ({type(exc).__name__}); "
                          "the rule skipped it", INTERNAL_FIX, doc.ref(), doc.origin)


def wave(doc: Doc) -> int:
    try:
        return int(str(doc.annotations.get(SYNC_WAVE, "0")).strip())
    except ValueError:
        return 0


def _shape_problem(doc: Doc) -> str | None:
    for key in ("metadata", "spec"):
        if key in doc.obj and doc.obj[key] is not None and not isinstance(doc.obj[key], dict):
            return f"{key} is a {type(doc.obj[key]).__name__}, not a mapping"
    return None


def _runbook_dirs(markdown: dict[str, str]) -> list[str]:
    """Directories of the READMEs/RUNBOOKs with a section on disabling or pausing self-heal."""
    out = []
    for rel, text in sorted(markdown.items()):
        starts = [0] + [m.start() for m in HEADING.finditer(text)] + [len(text)]
        sections = (text[a:b] for a, b in zip(starts, starts[1:]))
        if any(RUNBOOK_SELF_HEAL.search(s) and RUNBOOK_ESCAPE.search(s) for s in sections):
            out.append(norm(posixpath.dirname(rel)))
    return out


def literal_path(source: dict) -> str | None:
    """A source's path up to its first template value (None when it has no path)."""
    path = source.get("path")
    if not isinstance(path, str):
        return None
    if templated(path):
        path = posixpath.dirname(path.split("{{", 1)[0] + "x")
    return norm(path)


class Context:
    def __init__(self, repo: Repo):
        self.repo = repo
        self.problems: list[Finding] = []
        docs = []
        for d in repo.docs:
            bad = _shape_problem(d)
            if bad:
                self.problems.append(Finding.about(d, "invalid-manifest", ERROR, f"{d.label()}: {bad}",
                                                   "Fix the manifest: the API server rejects it, so nothing "
                                                   "in it is applied (and no rule could audit it)."))
            else:
                docs.append(d)
        self.docs = docs
        # partial documents (no source with a repoURL, or no destination: test assertions) are
        # not Applications anyone deploys
        self.apps = [d for d in docs if is_kind(d, API_GROUP, "Application") and deployable(d)]
        templates = (template(d) for d in docs if is_kind(d, API_GROUP, "ApplicationSet"))
        self.templates = [t for t in templates if t is not None and (deployable(t) or t.template_patch)]
        self.all_apps = self.apps + self.templates
        self.projects: dict[str, list[Doc]] = {}
        for d in docs:
            if is_kind(d, API_GROUP, "AppProject"):
                self.projects.setdefault(d.name, []).append(d)
        self.runbook_dirs = _runbook_dirs(repo.markdown)
        cms = [d.obj.get("data") for d in docs if d.kind == "ConfigMap" and d.name == "argocd-cm"]
        self.global_ignores = [str(v) for data in cms if isinstance(data, dict) for k, v in data.items()
                               if str(k).startswith("resource.customizations.ignoreDifferences")]

    def owner(self, doc: Doc) -> Doc | None:
        """The Application deploying `doc`: the one with the deepest source path containing it."""
        best, depth = None, -1
        for app in self.all_apps:
            for s in sources(app):
                path = s.get("path")
                if isinstance(path, str) and not templated(path) and is_under(doc.where, path):
                    d = len(norm(path).split("/")) if norm(path) else 0
                    if d > depth:
                        best, depth = app, d
        return best


# ---- prune, finalizer ----------------------------------------------------------------------------

def prune_disabled(ctx: Context) -> Iterable[Finding]:
    def check_app(app: Doc) -> Iterable[Finding]:
        if unknown(app, "syncPolicy", "automated", "prune", "enabled"):
            return
        auto = automated(app)
        if auto is None or templated(auto.get("enabled")) or templated(auto.get("prune")):
            return
        if auto.get("prune") is not True:
            yield finding(app, "prune-disabled", "automated sync without prune: true; resources deleted from Git "
                                                 "stay in the cluster")

    def check_flux(ks: Doc) -> Iterable[Finding]:
        if dig(ks.obj, "spec", "sourceRef") and dig(ks.obj, "spec", "prune") is not True:
            yield finding(ks, "prune-disabled", "Flux Kustomization without prune: true; resources deleted from "
                                                "Git stay in the cluster")

    yield from each(ctx.all_apps, "prune-disabled", check_app)
    yield from each([d for d in ctx.docs if is_kind(d, FLUX_KUSTOMIZE, "Kustomization")], "prune-disabled",
                    check_flux)


def missing_finalizer(ctx: Context) -> Iterable[Finding]:
    def check(app: Doc) -> Iterable[Finding]:
        fins = app.meta.get("finalizers")
        if not (isinstance(fins, list) and FINALIZERS & {str(f) for f in fins}):
            yield finding(app, "missing-finalizer", "no resources-finalizer.argocd.argoproj.io in "
                                                    "metadata.finalizers; deleting the Application orphans its resources")

    # ApplicationSet templates: the controller adds the finalizer to what it generates unless
    # spec.syncPolicy.preserveResourcesOnDeletion is true, an explicit choice to keep the resources
    return each(ctx.apps, "missing-finalizer", check)


# ---- write-back ----------------------------------------------------------------------------------

def _conflict(branch: Any, tracked: set[str]) -> str | None:
    """The branch people commit to that a write-back branch setting writes to, or None."""
    if branch is None:
        return "the tracked branch"
    base, sep, target = str(branch).strip().partition(":")
    pushed = target if sep else base
    if pushed in tracked | HUMAN_BRANCHES or (sep and target == base):
        return pushed
    return None


def write_back_conflict(ctx: Context) -> Iterable[Finding]:
    def check_app(app: Doc) -> Iterable[Finding]:
        if unknown(app, "annotations", "image-updater") or \
                not str(app.annotations.get(WB_METHOD, "")).strip().startswith("git"):
            return
        tracked = tracked_branches(app)
        branch = app.annotations.get(WB_BRANCH)
        if not tracked or templated(str(branch or "").partition(":")[0]):
            return  # no Git source (Image Updater cannot write back), or branches only a template knows
        hit = _conflict(branch, tracked)
        revisions = ", ".join(sorted(tracked))
        if branch is None:
            yield finding(app, "write-back-conflict", f"Image Updater git write-back without a {WB_BRANCH} "
                          f"annotation commits to the tracked branch ({revisions}) that people commit to")
        elif hit is not None:
            yield finding(app, "write-back-conflict", f"Image Updater writes back to {hit!r}, the branch people "
                          f"commit to (Git source targetRevision {revisions}); use a dedicated target branch")

    def check_updater(upd: Doc) -> Iterable[Finding]:
        spec = upd.obj.get("spec") if isinstance(upd.obj.get("spec"), dict) else {}
        refs = spec.get("applicationRefs") if isinstance(spec.get("applicationRefs"), list) else []
        for ref in (r for r in refs if isinstance(r, dict)):
            config = ref.get("writeBackConfig") if isinstance(ref.get("writeBackConfig"), dict) \
                else spec.get("writeBackConfig")
            if not str(dig(config, "method") or "argocd").strip().startswith("git"):
                continue
            apps = selected(ref, upd, ctx.apps)
            tracked = set().union(*(tracked_branches(a) or set() for a in apps))
            branch = dig(config, "gitConfig", "branch")
            hit = _conflict(branch, tracked)
            if hit is None:
                continue
            names = ", ".join(sorted({a.name for a in apps})[:5]) or \
                f"none in this repository for {ref.get('namePattern')!r}"
            revisions = ", ".join(sorted(tracked)) or "unknown"
            what = ("without writeBackConfig.gitConfig.branch it commits to the branch each Application tracks"
                    if branch is None else f"writeBackConfig.gitConfig.branch {str(branch)!r} writes to {hit!r}")
            yield finding(upd, "write-back-conflict", f"{what}, the branch people commit to (selected Applications: "
                          f"{names}; their Git sources track {revisions}); use a dedicated target branch")

    yield from each(ctx.all_apps, "write-back-conflict", check_app)
    yield from each([d for d in ctx.docs if is_kind(d, IMAGE_UPDATER_GROUP, "ImageUpdater")],
                    "write-back-conflict", check_updater)


# ---- progressive delivery ------------------------------------------------------------------------

def rollout_without_analysis(ctx: Context) -> Iterable[Finding]:
    def check_rollout(doc: Doc) -> Iterable[Finding]:
        canary = dig(doc.obj, "spec", "strategy", "canary")
        if not isinstance(canary, dict):
            return
        steps = [s for s in canary.get("steps") or [] if isinstance(s, dict)] \
            if isinstance(canary.get("steps"), list) else []
        if not steps:
            return  # a canary without steps is a rolling update: nothing is promoted step by step
        if canary.get("analysis") or any(s.get("analysis") or dig(s, "experiment", "analyses") for s in steps):
            return
        if any(s.get("plugin") for s in steps):
            return  # a step plugin may well be the validation: the audit cannot tell
        # an indefinite pause, or an experiment without a duration, waits for a person
        manual = [s for s in steps if ("pause" in s and not dig(s, "pause", "duration"))
                  or ("experiment" in s and not dig(s, "experiment", "duration"))]
        if manual:
            yield finding(doc, "rollout-without-analysis", "canary without analysis: its only gate is an "
                          "indefinite pause or experiment (manual promotion), no metrics check", severity=WARNING)
        else:
            yield finding(doc, "rollout-without-analysis", "canary strategy without background analysis or an "
                                                           "analysis step; every step promotes unvalidated")

    def check_flagger(doc: Doc) -> Iterable[Finding]:
        analysis = dig(doc.obj, "spec", "analysis")
        analysis = analysis if isinstance(analysis, dict) else {}
        hooks = [str(h.get("type") or "rollout") for h in analysis.get("webhooks") or [] if isinstance(h, dict)] \
            if isinstance(analysis.get("webhooks"), list) else []
        if not dig(doc.obj, "spec", "targetRef") or analysis.get("metrics") or FLAGGER_GATES & set(hooks):
            return
        if FLAGGER_MANUAL & set(hooks):
            yield finding(doc, "rollout-without-analysis", "Flagger Canary without metrics: its only gate is a "
                          "manual confirmation webhook", severity=WARNING)
        else:
            yield finding(doc, "rollout-without-analysis", "Flagger Canary without analysis metrics or gating "
                                                           "webhooks; it promotes on pod readiness alone")

    yield from each([d for d in ctx.docs if is_kind(d, API_GROUP, "Rollout")], "rollout-without-analysis",
                    check_rollout)
    yield from each([d for d in ctx.docs if is_kind(d, FLAGGER, "Canary")], "rollout-without-analysis",
                    check_flagger)


# ---- secrets -------------------------------------------------------------------------------------

def plaintext_secret(ctx: Context) -> Iterable[Finding]:
    def check(doc: Doc) -> Iterable[Finding]:
        labels = doc.meta.get("labels") if isinstance(doc.meta.get("labels"), dict) else {}
        settings = ARGO_SECRET_SETTINGS if labels.get(ARGO_SECRET_TYPE) else set()
        parts = []
        for block in ("data", "stringData"):
            values = doc.obj.get(block)
            keys = sorted(str(k) for k, v in values.items() if v not in (None, "") and str(k) not in settings) \
                if isinstance(values, dict) else []
            if keys:
                parts.append(f"{block} keys {', '.join(keys)}")
        if parts:
            how = " (from a kustomize secretGenerator)" if doc.rendered and doc.origin and \
                doc.source_file.endswith(("kustomization.yaml", "kustomization.yml", "Kustomization")) else ""
            yield finding(doc, "plaintext-secret", f"plaintext Secret committed to Git{how}: {'; '.join(parts)}")

    return each([d for d in ctx.docs if d.kind == "Secret" and d.api_version == "v1"], "plaintext-secret", check)


# ---- HPA -----------------------------------------------------------------------------------------

def _ignores_replicas(entry: dict, workload: Doc) -> bool:
    if entry.get("kind") not in (workload.kind, "*"):
        return False
    if entry.get("group") not in (None, "", "*", SCALABLE[workload.kind]):
        return False
    if entry.get("name") not in (None, "", workload.name):
        return False
    if entry.get("namespace") not in (None, "", workload.namespace) and workload.namespace:
        return False
    pointers = {str(p).strip().rstrip("/") for p in as_list(entry.get("jsonPointers"))}
    jq = {str(p).replace(" ", "") for p in as_list(entry.get("jqPathExpressions"))}
    managers = {str(m) for m in as_list(entry.get("managedFieldsManagers"))}
    return "/spec/replicas" in pointers or ".spec.replicas" in jq or "kube-controller-manager" in managers


def _replicas_ignored(ctx: Context, app: Doc, workload: Doc) -> bool:
    entries = dig(app.obj, "spec", "ignoreDifferences")
    if isinstance(entries, list) and any(_ignores_replicas(e, workload) for e in entries if isinstance(e, dict)):
        return True
    return any("/spec/replicas" in v or ".spec.replicas" in v or "kube-controller-manager" in v
               for v in ctx.global_ignores)


def hpa_replicas_not_ignored(ctx: Context) -> Iterable[Finding]:
    workloads: dict[tuple[str, str], list[Doc]] = {}
    for d in ctx.docs:
        if d.kind in SCALABLE:
            workloads.setdefault((d.kind, d.name), []).append(d)

    def check(hpa: Doc) -> Iterable[Finding]:
        ref = dig(hpa.obj, "spec", "scaleTargetRef")
        kind, name = dig(ref, "kind"), dig(ref, "name")
        if kind not in SCALABLE or not isinstance(name, str) or not name:
            return
        app = ctx.owner(hpa)
        for w in workloads.get((kind, name), []):
            if w.namespace and hpa.namespace and w.namespace != hpa.namespace:
                continue
            same_render = hpa.rendered and w.rendered and (w.file, w.where) == (hpa.file, hpa.where)
            if not (same_render or (app is not None and ctx.owner(w) is app)):
                continue  # another workload of that name, deployed by something else
            owner = ctx.owner(w)
            # a workload that does not set spec.replicas leaves them to the HPA already (Argo CD's own advice)
            if owner is None or dig(w.obj, "spec", "replicas") is None or unknown(owner, "ignoreDifferences"):
                continue
            what = f"scaled by HorizontalPodAutoscaler {hpa.name} but {owner.label()}"
            if not _replicas_ignored(ctx, owner, w):
                yield finding(w, "hpa-replicas-not-ignored",
                              f"{what} has no ignoreDifferences on /spec/replicas for {kind}; every sync fights the HPA")
            elif RESPECT not in sync_options(owner) and not unknown(owner, "syncOptions"):
                yield finding(w, "hpa-replicas-not-ignored",
                              f"{what} ignores /spec/replicas only in the diff: without syncOptions {RESPECT} "
                              "each sync still resets the replica count", severity=WARNING)

    return each([d for d in ctx.docs if d.kind == "HorizontalPodAutoscaler"
                 and d.api_version.startswith("autoscaling/")], "hpa-replicas-not-ignored", check)


# ---- sync waves ----------------------------------------------------------------------------------

def _infra(app: Doc) -> bool:
    words = [app.name, app.source_file.rsplit("/", 1)[-1]]
    for s in sources(app):
        words += [str(s.get("path") or ""), str(s.get("chart") or "")]
    text = " ".join(words).lower()
    return any(w in text for w in INFRA_WORDS)


def no_sync_waves(ctx: Context) -> Iterable[Finding]:
    groups: dict[frozenset, tuple[str, list[Doc]]] = {}
    by_dir: dict[str, list[Doc]] = {}
    for app in ctx.apps:
        by_dir.setdefault(app.where, []).append(app)
    candidates = [(d, members) for d, members in by_dir.items() if len(members) >= 2]
    for parent in ctx.apps:  # the children of an app-of-apps, wherever they sit under its path
        for s in sources(parent):
            if not isinstance(s.get("path"), str):
                continue
            path, recurse = norm(s["path"]), dig(s, "directory", "recurse") is True
            members = [a for a in ctx.apps if a is not parent
                       and (a.where == path or (recurse and is_under(a.where, path)))]
            candidates.append((path, members))
    for d, members in candidates:
        # an Application that manages its own directory is the parent, not a child
        members = [m for m in members if not any(norm(s.get("path")) == d for s in sources(m)
                                                 if isinstance(s.get("path"), str))]
        if members:
            groups.setdefault(frozenset(map(id, members)), (d, members))

    def check(group: tuple[str, list[Doc]]) -> Iterable[Finding]:
        d, members = group
        infra = [m for m in members if _infra(m)]
        others = [m for m in members if not _infra(m)]
        if not infra or not others:
            return
        first_app = min(wave(o) for o in others)
        late = [i for i in infra if wave(i) >= first_app]
        if late:
            listing = lambda apps: ", ".join(f"{a.name} (wave {wave(a)})" for a in apps)  # noqa: E731
            yield finding(late[0], "no-sync-waves",
                          f"app-of-apps {d or '.'}: infrastructure {listing(late)} not in an earlier sync wave than "
                          f"{listing(others)}")

    return each(groups.values(), "no-sync-waves", check, doc_of=lambda g: g[1][0])


# ---- self-heal -----------------------------------------------------------------------------------

def _window_applies(window: dict, app: Doc) -> bool:
    dest = dig(app.obj, "spec", "destination")
    dest = dest if isinstance(dest, dict) else {}
    selectors = [(window.get("applications"), app.name), (window.get("namespaces"), dest.get("namespace")),
                 (window.get("clusters"), dest.get("server")), (window.get("clusters"), dest.get("name"))]
    given = [(globs, v) for globs, v in selectors if isinstance(globs, list) and globs]
    if not given:
        return True
    return any(v is not None and any(fnmatch.fnmatchcase(str(v), str(g)) for g in globs) for globs, v in given)


def self_heal_no_escape(ctx: Context) -> Iterable[Finding]:
    def check(app: Doc) -> Iterable[Finding]:
        if unknown(app, "syncPolicy", "automated", "selfHeal", "annotations", "project"):
            return
        auto = automated(app)
        if auto is None or auto.get("selfHeal") is not True:
            return
        if any(ESCAPE_ANNOTATION.search(str(k)) for k in app.annotations):
            return
        paths = [p for p in (literal_path(s) for s in sources(app)) if p is not None]
        if any(is_under(rb, p) for rb in ctx.runbook_dirs for p in paths):
            return
        project = dig(app.obj, "spec", "project") or "default"
        if templated(project):
            return
        windows = [w for p in ctx.projects.get(str(project), []) for w in as_list(dig(p.obj, "spec", "syncWindows"))
                   if isinstance(w, dict)]
        if any((w.get("manualSync") is True or w.get("kind") == "deny") and _window_applies(w, app) for w in windows):
            return
        yield finding(app, "self-heal-no-escape", f"selfHeal: true with no way to pause it: no manualSync or deny "
                      f"sync window in AppProject {project} in this repository, no pause/skip-reconcile annotation, "
                      "no README/RUNBOOK section on disabling self-heal in its source directory")

    return each(ctx.all_apps, "self-heal-no-escape", check)


RULES: dict[str, Callable[[Context], Iterable[Finding]]] = {
    "prune-disabled": prune_disabled,
    "no-sync-waves": no_sync_waves,
    "hpa-replicas-not-ignored": hpa_replicas_not_ignored,
    "write-back-conflict": write_back_conflict,
    "missing-finalizer": missing_finalizer,
    "rollout-without-analysis": rollout_without_analysis,
    "plaintext-secret": plaintext_secret,
    "self-heal-no-escape": self_heal_no_escape,
}

# the rules that also read Flux objects; every other rule reads Argo CD objects only
FLUX_RULES = ("prune-disabled", "rollout-without-analysis", "plaintext-secret")


def engines(repo: Repo) -> set[str]:
    """Which GitOps engines' objects the repository holds: "argocd", "flux"."""
    found = set()
    for d in repo.docs:
        g = d.api_version.rpartition("/")[0]
        if g == API_GROUP or g.endswith("." + API_GROUP):
            found.add("argocd")
        elif g.endswith(".fluxcd.io") or g == FLAGGER:
            found.add("flux")
    return found


def run_all(repo: Repo) -> list[Finding]:
    """All rules over the repository. A rule that trips over an odd manifest reports that as a
    finding instead of stopping the audit."""
    ctx = Context(repo)
    out: list[Finding] = list(ctx.problems)
    for rule, check in RULES.items():
        try:
            out.extend(check(ctx))
        except Exception as exc:  # noqa: BLE001 - the audit must go on; the finding names the rule
            out.append(Finding("audit-internal-error", ERROR, ".", 0, f"rule {rule} failed: {type(exc).__name__}",
                               INTERNAL_FIX))
    return out
