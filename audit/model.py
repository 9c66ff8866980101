"""The audit's two value types: a manifest as found in the repository, and a finding about it."""
from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from typing import Any

ERROR = "error"
WARNING = "warning"

# The kinds whose content a rule (or the loader) reads. Other objects are kept as apiVersion, kind
# and metadata only: CustomResourceDefinitions alone are most of the YAML in many repositories.
KINDS_READ = frozenset({
    "Application", "ApplicationSet", "AppProject", "Rollout", "ImageUpdater",  # Argo CD
    "HorizontalPodAutoscaler", "Deployment", "StatefulSet", "Secret", "ConfigMap",
    "Kustomization", "Component",  # kustomize's own files, and Flux's Kustomization
    "Canary",  # Flagger
})


# Objects a rule starts from: a kustomization whose files hold none of them (and no secretGenerator)
# cannot yield a finding, so it is not rendered (kustomize takes seconds on large CRDs).
SUBJECT_KINDS = frozenset({"Application", "ApplicationSet", "AppProject", "Rollout", "ImageUpdater",
                           "HorizontalPodAutoscaler", "Canary"})


def is_rule_subject(obj: dict) -> bool:
    kind = obj.get("kind")
    if kind == "Secret":
        return bool(obj.get("data") or obj.get("stringData"))
    if kind == "Kustomization":
        return str(obj.get("apiVersion", "")).startswith("kustomize.toolkit.fluxcd.io/")
    return kind in SUBJECT_KINDS


def kind_is_read(kind) -> bool:
    """Build the whole object (a kind in KINDS_READ, a `*List`, or no usable kind)."""
    return not isinstance(kind, str) or kind in KINDS_READ or kind.endswith("List")


@dataclass
class Doc:
    """One Kubernetes object the audit evaluates.

    `file`/`line` are where a finding about it is reported: the source file and the line of the
    document's first key for plain YAML; the overlay's kustomization file (line 1) for objects
    from `kustomize build`. `where` is the directory the object is deployed from (the file's
    directory, or the rendered kustomization directory): Application ownership and app-of-apps
    grouping use it. `origin` is "file:line" of the defining file when a rendered object could be
    mapped back to one. `template_of` is the ApplicationSet an Application template came from:
    findings about the template name the ApplicationSet and its file and line.
    """
    obj: dict[str, Any]
    file: str
    line: int
    where: str
    rendered: bool = False
    origin: str | None = None
    template_of: "Doc | None" = None
    template_patch: str | None = None  # a templated templatePatch: fields it may set are unknown

    @property
    def kind(self) -> str:
        return str(self.obj.get("kind") or "")

    @property
    def api_version(self) -> str:
        return str(self.obj.get("apiVersion") or "")

    @property
    def meta(self) -> dict[str, Any]:
        m = self.obj.get("metadata")
        return m if isinstance(m, dict) else {}

    @property
    def name(self) -> str:
        return str(self.meta.get("name") or "")

    @property
    def namespace(self) -> str:
        return str(self.meta.get("namespace") or "")

    @property
    def annotations(self) -> dict[str, Any]:
        a = self.meta.get("annotations")
        return a if isinstance(a, dict) else {}

    @property
    def source_file(self) -> str:
        """The file the object is defined in, when known (for rendered objects: the origin)."""
        if self.origin:
            return self.origin.rsplit(":", 1)[0]
        return self.file

    def is_argo(self, kind: str) -> bool:
        return self.kind == kind and self.api_version.startswith("argoproj.io/")

    def ref(self) -> dict[str, str]:
        if self.template_of is not None:
            return self.template_of.ref()
        return {"kind": self.kind, "namespace": self.namespace, "name": self.name}

    def label(self) -> str:
        if self.template_of is not None:
            return f"{self.template_of.label()} (Application template)"
        ns = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {ns}{self.name}"


@dataclass
class Finding:
    rule: str
    severity: str
    file: str
    line: int
    message: str
    remediation: str
    object: dict[str, str] | None = None
    origin: str | None = None

    @classmethod
    def about(cls, doc: Doc, rule: str, severity: str, message: str, remediation: str) -> "Finding":
        return cls(rule, severity, doc.file, doc.line, message, remediation, doc.ref(), doc.origin)

    def key(self) -> tuple:
        """Identity for de-duplication: one finding per rule and object per defining file, so
        overlays rendering one base report its problem once, while copies of an object in two
        plain files (say, one per cluster) are two problems."""
        if self.object:
            return (self.rule, self.object["kind"], self.object["name"], self.object["namespace"],
                    self.origin or self.file)
        return (self.rule, self.file, self.line, self.message)

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "severity": self.severity, "file": self.file, "line": self.line,
                "object": self.object, "origin": self.origin, "message": self.message,
                "remediation": self.remediation}


def as_list(value: Any) -> list:
    """A field that should be a list; anything else (a hand-written `files: 5`) reads as empty."""
    return value if isinstance(value, list) else []


def is_under(path: str, directory: str) -> bool:
    """True when repo-relative `path` is `directory` or inside it ("" is the repository root)."""
    directory = norm(directory)
    path = norm(path)
    return directory == "" or path == directory or path.startswith(directory + "/")


def norm(path: str | None) -> str:
    """A repo-relative path in one spelling: posix, no ./ or trailing slash, "" for the root."""
    p = posixpath.normpath(str(path or "").strip().lstrip("/"))
    return "" if p in (".", "") else p


@dataclass
class Repo:
    """What the loader found: the objects to evaluate and the context the rules need."""
    root: str
    docs: list[Doc] = field(default_factory=list)
    markdown: dict[str, str] = field(default_factory=dict)
    problems: list[Finding] = field(default_factory=list)
    files_scanned: int = 0
    sensitive: set[str] = field(default_factory=set)
