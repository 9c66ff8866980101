"""The Common Pitfalls rules: each takes the loaded repository and yields findings.

Every rule reads `Repo.docs` (plain objects and kustomize-rendered ones alike); none prints a
Secret value: `plaintext-secret` names keys only. Decisions the issue left open:

- hpa-replicas-not-ignored: the Application deploying the workload (or, when the workload is not in
  the repo, the HPA) is the one whose source path holds its file or rendered kustomization, deepest
  path first; none in the repo: no finding. No matching ignoreDifferences (jsonPointers
  /spec/replicas, jqPathExpressions .spec.replicas, or managedFieldsManagers kube-controller-manager;
  group/kind/name/namespace as Argo CD matches them) is an error; ignoreDifferences without syncOption
  RespectIgnoreDifferences=true is a warning (the diff is quiet, but each sync resets the replicas).
  A workload that does not set spec.replicas is fine: that is Argo CD's own advice for HPAs.
- no-sync-waves: a group is the Applications in one directory (>= 2), or the children under an
  Application's source path (recursively with directory.recurse); an Application whose own path is
  the group's directory is its parent, not a child. Infra = name, source path or chart, or file name
  contains one of INFRA_WORDS. Fine when every infra child's wave is lower than every other child's.
- write-back-conflict: the branch written is git-branch's target (base:target) or the whole value;
  a conflict when the annotation is missing or that branch is the targetRevision, main, master, HEAD.
- self-heal-no-escape: an escape is (1) a sync window with manualSync: true or kind: deny in the
  Application's AppProject, if that AppProject is in the repo and the window selects the Application
  (applications/namespaces/clusters globs; a window with none selects all), (2) an annotation on the
  Application whose key contains "pause" or "skip-reconcile", or (3) a .md file whose path contains
  "readme" or "runbook" (any case) and whose text matches both self[-_ ]?heal and disabl|paus.
- rollout-without-analysis: canary.analysis, or a step with analysis or experiment.analyses.
"""
from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable
from typing import Any

from audit.model import ERROR, WARNING, Doc, Finding, Repo, is_under, norm

# The procedure's Common Pitfalls, quoted, and the concrete fix the audit recommends.
PITFALLS: dict[str, tuple[str, str]] = {
    "prune-disabled": (
        "Automatic prune disabled: Resources removed from Git remain in cluster. Enable prune: true in sync policy.",
        "set spec.syncPolicy.automated.prune: true."),
    "no-sync-waves": (
        "No sync waves: Infrastructure applications deployed after apps that depend on them. Use "
        "argocd.argoproj.io/sync-wave annotations to control order.",
        "annotate the infrastructure Applications with a lower argocd.argoproj.io/sync-wave (e.g. \"-1\") than "
        "the applications that depend on them (e.g. \"1\")."),
    "hpa-replicas-not-ignored": (
        "Ignoring HPA-managed replicas: Sync fails because HPA changed replica count. Add /spec/replicas to "
        "ignoreDifferences.",
        "in the Application add ignoreDifferences [{group, kind, jsonPointers: [/spec/replicas]}] for the workload "
        "and syncOptions [RespectIgnoreDifferences=true] (or drop spec.replicas from the workload manifest)."),
    "write-back-conflict": (
        "Write-back conflicts: Image Updater commits conflict with manual commits. Use separate branch or "
        "fine-grained RBAC for image updater.",
        "set argocd-image-updater.argoproj.io/git-branch to base:target with a dedicated target branch, e.g. "
        "main:image-updater-{{.SHA256}}, and merge it by pull request."),
    "missing-finalizer": (
        "Missing finalizers: Application deletion leaves orphaned resources. Add "
        "resources-finalizer.argocd.argoproj.io to Application metadata.",
        "add metadata.finalizers: [resources-finalizer.argocd.argoproj.io]."),
    "rollout-without-analysis": (
        "No analysis templates: Rollouts promote automatically without validation. Implement AnalysisTemplates "
        "with metrics queries.",
        "reference an AnalysisTemplate from spec.strategy.canary.analysis (background) or from an analysis step."),
    "plaintext-secret": (
        "Secrets in Git: Plaintext secrets committed to repository. Use Sealed Secrets or External Secrets Operator.",
        "replace the Secret (or secretGenerator) with a SealedSecret or an ExternalSecret, remove it from Git "
        "history and rotate the values."),
    "self-heal-no-escape": (
        "Self-heal too aggressive: Self-heal reverts legitimate emergency changes. Use annotations to temporarily "
        "disable or implement approval gates.",
        "give operators a documented way to pause it: a sync window with manualSync: true (or a deny window) in "
        "the Application's AppProject, a pause/skip-reconcile annotation on the Application, or a README/RUNBOOK "
        "section on disabling self-heal."),
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


def remediation(rule: str) -> str:
    quote, fix = PITFALLS[rule]
    return f'Common Pitfalls: "{quote}" Fix: {fix}'


SEVERITY = {rule: ERROR for rule in PITFALLS} | {
    "write-back-conflict": WARNING, "missing-finalizer": WARNING, "self-heal-no-escape": WARNING}


def finding(doc: Doc, rule: str, message: str, severity: str = "") -> Finding:
    severity = severity or SEVERITY[rule]
    return Finding.about(doc, rule, severity, f"{doc.label()}: {message}", remediation(rule))


# ---- reading Applications ----------------------------------------------------------------------

def dig(obj: Any, *keys: str) -> Any:
    for k in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(k)
    return obj


def sources(app: Doc) -> list[dict]:
    spec = dig(app.obj, "spec") or {}
    out = [spec.get("source")] + (spec.get("sources") if isinstance(spec.get("sources"), list) else [])
    return [s for s in out if isinstance(s, dict)]


def automated(app: Doc) -> dict | None:
    """spec.syncPolicy.automated when automation is on (`automated: {}` is on; `enabled: false` is off)."""
    auto = dig(app.obj, "spec", "syncPolicy", "automated")
    if isinstance(auto, dict) and auto.get("enabled") is not False:
        return auto
    return None


def sync_options(app: Doc) -> list[str]:
    opts = dig(app.obj, "spec", "syncPolicy", "syncOptions")
    return [str(o) for o in opts] if isinstance(opts, list) else []


def wave(doc: Doc) -> int:
    try:
        return int(str(doc.annotations.get(SYNC_WAVE, "0")).strip())
    except ValueError:
        return 0


class Context:
    def __init__(self, repo: Repo):
        self.repo = repo
        self.apps = [d for d in repo.docs if d.is_argo("Application")]
        self.projects: dict[str, list[Doc]] = {}
        for d in repo.docs:
            if d.is_argo("AppProject"):
                self.projects.setdefault(d.name, []).append(d)
        self.runbooks = [rel for rel, text in sorted(repo.markdown.items())
                         if RUNBOOK_SELF_HEAL.search(text) and RUNBOOK_ESCAPE.search(text)]

    def owner(self, doc: Doc) -> Doc | None:
        """The Application deploying `doc`: the one with the deepest source path containing it."""
        best, depth = None, -1
        for app in self.apps:
            for s in sources(app):
                path = s.get("path")
                if isinstance(path, str) and is_under(doc.where, path):
                    d = len(norm(path).split("/")) if norm(path) else 0
                    if d > depth:
                        best, depth = app, d
        return best


# ---- the rules ---------------------------------------------------------------------------------

def prune_disabled(ctx: Context) -> Iterable[Finding]:
    for app in ctx.apps:
        auto = automated(app)
        if auto is not None and auto.get("prune") is not True:
            yield finding(app, "prune-disabled", "automated sync without prune: true; resources deleted from Git "
                                                 "stay in the cluster")


def missing_finalizer(ctx: Context) -> Iterable[Finding]:
    for app in ctx.apps:
        fins = app.meta.get("finalizers")
        if not (isinstance(fins, list) and FINALIZERS & {str(f) for f in fins}):
            yield finding(app, "missing-finalizer", "no resources-finalizer.argocd.argoproj.io in metadata.finalizers; "
                                                    "deleting the Application orphans its resources")


def write_back_conflict(ctx: Context) -> Iterable[Finding]:
    for app in ctx.apps:
        if not str(app.annotations.get(WB_METHOD, "")).strip().startswith("git"):
            continue
        srcs = sources(app)
        revision = str(srcs[0].get("targetRevision") or "HEAD") if srcs else "HEAD"
        tracked = {revision} | HUMAN_BRANCHES
        branch = app.annotations.get(WB_BRANCH)
        if branch is None:
            yield finding(app, "write-back-conflict", f"Image Updater git write-back without a {WB_BRANCH} "
                          f"annotation commits to the tracked branch ({revision}) that people commit to")
            continue
        branch = str(branch).strip()
        base, sep, target = branch.partition(":")
        pushed = target if sep else base
        if pushed in tracked or (sep and target == base):
            yield finding(app, "write-back-conflict", f"Image Updater writes back to {pushed or revision!r}, "
                          f"the branch people commit to (targetRevision {revision}); use a dedicated target branch")


def rollout_without_analysis(ctx: Context) -> Iterable[Finding]:
    for doc in ctx.repo.docs:
        if not doc.is_argo("Rollout"):
            continue
        canary = dig(doc.obj, "spec", "strategy", "canary")
        if not isinstance(canary, dict):
            continue
        steps = canary.get("steps") if isinstance(canary.get("steps"), list) else []
        analysed = bool(canary.get("analysis")) or any(
            isinstance(s, dict) and (s.get("analysis") or dig(s, "experiment", "analyses")) for s in steps)
        if not analysed:
            yield finding(doc, "rollout-without-analysis", "canary strategy without background analysis or an "
                                                           "analysis step; every step promotes unvalidated")


def plaintext_secret(ctx: Context) -> Iterable[Finding]:
    for doc in ctx.repo.docs:
        if doc.kind != "Secret" or doc.api_version != "v1":
            continue
        parts = []
        for block in ("data", "stringData"):
            keys = doc.obj.get(block)
            if isinstance(keys, dict) and keys:
                parts.append(f"{block} keys {', '.join(sorted(map(str, keys)))}")
        if parts:
            how = " (from a kustomize secretGenerator)" if doc.rendered and doc.origin and \
                doc.source_file.endswith(("kustomization.yaml", "kustomization.yml", "Kustomization")) else ""
            yield finding(doc, "plaintext-secret", f"plaintext Secret committed to Git{how}: {'; '.join(parts)}")


def _replicas_ignored(app: Doc, workload: Doc) -> bool:
    group = SCALABLE[workload.kind]
    for entry in dig(app.obj, "spec", "ignoreDifferences") or []:
        if not isinstance(entry, dict) or entry.get("kind") not in (workload.kind, "*"):
            continue
        if entry.get("group") not in (None, "", "*", group):
            continue
        if entry.get("name") not in (None, "", workload.name):
            continue
        if entry.get("namespace") not in (None, "", workload.namespace) and workload.namespace:
            continue
        pointers = {str(p).strip().rstrip("/") for p in entry.get("jsonPointers") or []}
        jq = {str(p).replace(" ", "") for p in entry.get("jqPathExpressions") or []}
        managers = {str(m) for m in entry.get("managedFieldsManagers") or []}
        if "/spec/replicas" in pointers or ".spec.replicas" in jq or "kube-controller-manager" in managers:
            return True
    return False


def hpa_replicas_not_ignored(ctx: Context) -> Iterable[Finding]:
    docs = ctx.repo.docs
    for hpa in docs:
        if hpa.kind != "HorizontalPodAutoscaler" or not hpa.api_version.startswith("autoscaling/"):
            continue
        ref = dig(hpa.obj, "spec", "scaleTargetRef") or {}
        kind, name = ref.get("kind"), ref.get("name")
        if kind not in SCALABLE or not name:
            continue
        workloads = [d for d in docs if d.kind == kind and d.name == name
                     and not (d.namespace and hpa.namespace and d.namespace != hpa.namespace)]
        # a workload that does not set spec.replicas leaves them to the HPA already (Argo CD's own advice)
        subjects = [w for w in workloads if dig(w.obj, "spec", "replicas") is not None] if workloads else [hpa]
        for subject in subjects:
            app = ctx.owner(subject) or ctx.owner(hpa)
            if app is None:
                continue  # deployed by an Application outside this repository: nothing to check
            target = subject if subject is not hpa else Doc({"kind": kind, "metadata": {"name": name}}, hpa.file,
                                                            hpa.line, hpa.where)
            what = f"scaled by HorizontalPodAutoscaler {hpa.name} but Application {app.name}"
            if not _replicas_ignored(app, target):
                yield finding(subject, "hpa-replicas-not-ignored",
                              f"{what} has no ignoreDifferences on /spec/replicas for {kind}; every sync fights the HPA")
            elif RESPECT not in sync_options(app):
                yield finding(subject, "hpa-replicas-not-ignored",
                              f"{what} ignores /spec/replicas only in the diff: without syncOptions {RESPECT} "
                              "each sync still resets the replica count", severity=WARNING)


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
        groups.setdefault(frozenset(map(id, members)), (d, members))
    for d, members in groups.values():
        infra = [m for m in members if _infra(m)]
        others = [m for m in members if not _infra(m)]
        if not infra or not others:
            continue
        first_app = min(wave(o) for o in others)
        late = [i for i in infra if wave(i) >= first_app]
        if not late:
            continue
        listing = lambda apps: ", ".join(f"{a.name} (wave {wave(a)})" for a in apps)  # noqa: E731
        yield finding(late[0], "no-sync-waves",
                      f"app-of-apps {d or '.'}: infrastructure {listing(late)} not in an earlier sync wave than "
                      f"{listing(others)}")


def _window_applies(window: dict, app: Doc) -> bool:
    dest = dig(app.obj, "spec", "destination") or {}
    selectors = [(window.get("applications"), app.name), (window.get("namespaces"), dest.get("namespace")),
                 (window.get("clusters"), dest.get("server")), (window.get("clusters"), dest.get("name"))]
    given = [(globs, v) for globs, v in selectors if isinstance(globs, list) and globs]
    if not given:
        return True
    return any(v is not None and any(fnmatch.fnmatchcase(str(v), str(g)) for g in globs) for globs, v in given)


def self_heal_no_escape(ctx: Context) -> Iterable[Finding]:
    for app in ctx.apps:
        auto = automated(app)
        if auto is None or auto.get("selfHeal") is not True:
            continue
        if ctx.runbooks or any(ESCAPE_ANNOTATION.search(str(k)) for k in app.annotations):
            continue
        project = str(dig(app.obj, "spec", "project") or "default")
        windows = [w for p in ctx.projects.get(project, []) for w in dig(p.obj, "spec", "syncWindows") or []
                   if isinstance(w, dict)]
        if any((w.get("manualSync") is True or w.get("kind") == "deny") and _window_applies(w, app) for w in windows):
            continue
        yield finding(app, "self-heal-no-escape", f"selfHeal: true with no way to pause it: no manualSync or deny "
                      f"sync window in AppProject {project} in this repository, no pause/skip-reconcile annotation, "
                      "no README/RUNBOOK on disabling self-heal")


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


def run_all(repo: Repo) -> list[Finding]:
    """All rules over the repository. A rule that trips over an odd manifest reports that as a
    finding instead of stopping the audit."""
    ctx = Context(repo)
    out: list[Finding] = []
    for rule, check in RULES.items():
        try:
            out.extend(check(ctx))
        except Exception as exc:  # noqa: BLE001 - the audit must go on; the finding names the rule
            out.append(Finding("audit-internal-error", ERROR, ".", 0, f"rule {rule} failed: {type(exc).__name__}",
                               "Report this as a bug in gitops-conformance audit, with the manifest that caused it."))
    return out
