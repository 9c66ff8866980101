"""Reading Argo CD objects as the rules need them: an Application's sources and sync policy,
the Application templates of ApplicationSets, and the Applications an ImageUpdater selects.

Values that are Go templates (`{{ ... }}`, ApplicationSet templates) are unknown: rules skip a
check whose input is one, rather than guess.
"""
from __future__ import annotations

import fnmatch
from typing import Any

import yaml

from gitops_conformance.audit.model import Doc, as_list

API_GROUP = "argoproj.io"
IMAGE_UPDATER_GROUP = "argocd-image-updater.argoproj.io"


def dig(obj: Any, *keys: str) -> Any:
    for k in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(k)
    return obj


def templated(value: Any) -> bool:
    return isinstance(value, str) and "{{" in value


def group(doc: Doc) -> str:
    return doc.api_version.rpartition("/")[0] if "/" in doc.api_version else ""


def is_kind(doc: Doc, api_group: str, kind: str) -> bool:
    return doc.kind == kind and group(doc) == api_group


def sources(app: Doc) -> list[dict]:
    spec = dig(app.obj, "spec")
    if not isinstance(spec, dict):
        return []
    many = spec.get("sources") if isinstance(spec.get("sources"), list) else []
    return [s for s in [spec.get("source"), *many] if isinstance(s, dict)]


def deployable(app: Doc) -> bool:
    """An Application (or template) Argo CD would accept: a source with a repoURL and a
    destination. Partial documents (test assertions matching a subset of a live object) lack one."""
    return any(s.get("repoURL") for s in sources(app)) and isinstance(dig(app.obj, "spec", "destination"), dict)


def git_sources(app: Doc) -> list[dict]:
    """Sources that are Git repositories: a Helm chart source (`chart`) has a chart version as
    targetRevision, not a branch; an OCI source is no branch either."""
    return [s for s in sources(app) if isinstance(s.get("repoURL"), str) and not s.get("chart")
            and not s["repoURL"].startswith("oci://")]


def tracked_branches(app: Doc) -> set[str] | None:
    """targetRevision of each Git source (HEAD when unset); None when one is templated."""
    revs = {str(s.get("targetRevision") or "HEAD").strip() for s in git_sources(app)}
    return None if any(templated(r) for r in revs) else revs


def automated(app: Doc) -> dict | None:
    """spec.syncPolicy.automated when automation is on (`automated: {}` is on; `enabled: false` is off)."""
    auto = dig(app.obj, "spec", "syncPolicy", "automated")
    if isinstance(auto, dict) and auto.get("enabled") is not False:
        return auto
    return None


def sync_options(app: Doc) -> list[str]:
    opts = dig(app.obj, "spec", "syncPolicy", "syncOptions")
    return [str(o) for o in opts] if isinstance(opts, list) else []


def unknown(app: Doc, *words: str) -> bool:
    """True when a non-literal templatePatch of the Application's ApplicationSet may set one of
    `words` (a Go template we cannot evaluate): checks that read those fields are skipped."""
    return app.template_patch is not None and any(w in app.template_patch for w in words)


# ---- ApplicationSets ---------------------------------------------------------------------------

def _merge(base: Any, patch: Any) -> Any:
    """templatePatch semantics for mappings (merged key by key); other values are replaced."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for k, v in patch.items():
            out[k] = _merge(base.get(k), v)
        return out
    return patch


def template(appset: Doc) -> Doc | None:
    """The Application an ApplicationSet generates, as its template says (with a literal
    templatePatch applied; a templated one is kept aside so rules can tell what it may change)."""
    spec = dig(appset.obj, "spec")
    tmpl = dig(spec, "template")
    if not isinstance(tmpl, dict):
        return None
    obj: dict[str, Any] = {"apiVersion": f"{API_GROUP}/v1alpha1", "kind": "Application",
                           "metadata": tmpl.get("metadata") if isinstance(tmpl.get("metadata"), dict) else {},
                           "spec": tmpl.get("spec") if isinstance(tmpl.get("spec"), dict) else {}}
    patch = spec.get("templatePatch")
    unevaluated = None
    if isinstance(patch, str) and patch.strip():
        literal = None
        if not templated(patch):
            try:
                literal = yaml.safe_load(patch)
            except yaml.YAMLError:
                literal = None
        if isinstance(literal, dict):
            obj = _merge(obj, {k: v for k, v in literal.items() if k in ("metadata", "spec")})
        else:
            unevaluated = patch
    return Doc(obj, appset.file, appset.line, appset.where, rendered=appset.rendered, origin=appset.origin,
               template_of=appset, template_patch=unevaluated)


# ---- ImageUpdater (v1alpha1) -------------------------------------------------------------------

def _labels_match(selector: Any, labels: dict) -> bool:
    if not isinstance(selector, dict):
        return True
    match = selector.get("matchLabels")
    if isinstance(match, dict) and any(str(labels.get(k)) != str(v) for k, v in match.items()):
        return False
    for expr in as_list(selector.get("matchExpressions")):
        if not isinstance(expr, dict):
            continue
        key, op = str(expr.get("key")), expr.get("operator")
        values = {str(v) for v in as_list(expr.get("values")) if v is not None}
        has = key in labels
        if (op == "In" and (not has or str(labels[key]) not in values)) or \
           (op == "NotIn" and has and str(labels[key]) in values) or \
           (op == "Exists" and not has) or (op == "DoesNotExist" and has):
            return False
    return True


def selected(ref: dict, updater: Doc, apps: list[Doc]) -> list[Doc]:
    """Applications an applicationRef selects: in the ImageUpdater's namespace, name matching
    namePattern (a glob), labels matching labelSelectors."""
    pattern = ref.get("namePattern")
    if not isinstance(pattern, str):
        return []
    out = []
    for app in apps:
        if app.template_of is not None or templated(app.name):
            continue
        if updater.namespace and app.namespace and updater.namespace != app.namespace:
            continue
        labels = app.meta.get("labels") if isinstance(app.meta.get("labels"), dict) else {}
        if fnmatch.fnmatchcase(app.name, pattern) and _labels_match(ref.get("labelSelectors"), labels):
            out.append(app)
    return out
