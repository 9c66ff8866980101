"""Property tests (Hypothesis): whatever YAML a repository holds, the audit answers: no traceback,
a report in the format asked for, in bounded time; and no rule trips over an object's shape
(an `audit-internal-error` would be a bug in a rule).

Three generators: raw text from YAML's syntax characters (and control characters), documents
dumped from random data with anchors and aliases sprinkled in, and Kubernetes-shaped objects of the
kinds the rules read with random values where the rules look.
"""
from __future__ import annotations

import contextlib
import io
import json
import shutil
import tempfile
import time
from pathlib import Path

import pytest
import yaml

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from gitops_conformance.audit import audit, yamlparse  # noqa: E402
from gitops_conformance.audit.cli import main  # noqa: E402

BOUND_S = 30  # the bound for any input
FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

SYNTAX = st.sampled_from(list(":-?[]{},&*!|>'\"#%@` \n\t") + ["---\n", "...\n", "<<: ", "\x00", "\x07", "\ufeff",
                                                               "&a ", "*a", "!!str ", "!ENV ", "  ", "- ", "key: "])
RAW_TEXT = st.lists(st.one_of(SYNTAX, st.text(max_size=5)), max_size=200).map("".join)

KEYS = ["apiVersion", "kind", "metadata", "name", "namespace", "annotations", "labels", "finalizers", "spec",
        "source", "sources", "repoURL", "path", "chart", "targetRevision", "plugin", "syncPolicy", "automated",
        "prune", "selfHeal", "enabled", "syncOptions", "ignoreDifferences", "jsonPointers", "template",
        "templatePatch", "preserveResourcesOnDeletion", "strategy", "canary", "steps", "pause", "duration",
        "analysis", "experiment", "analyses", "metrics", "webhooks", "type", "targetRef", "sourceRef",
        "scaleTargetRef", "replicas", "applicationRefs", "namePattern", "labelSelectors", "matchLabels",
        "matchExpressions", "operator", "values", "writeBackConfig", "method", "gitConfig", "branch", "data",
        "stringData", "syncWindows", "applications", "manualSync", "project", "destination", "directory",
        "recurse", "items", "resources", "secretGenerator", "files", "literals", "envs", "patches", "helmCharts"]
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.text(max_size=12),
                    st.sampled_from(["git", "git:secret:a/b", "main", "HEAD", "main:main", "{{.x}}", "/spec/replicas",
                                     "RespectIgnoreDifferences=true", "*", "Deployment", "apps", "argocd", "."]))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(KEYS), inner, max_size=5)), max_leaves=25)
KINDS = st.sampled_from(["Application", "ApplicationSet", "AppProject", "Rollout", "ImageUpdater", "Secret",
                         "HorizontalPodAutoscaler", "Deployment", "ConfigMap", "Kustomization", "Canary", "List"])
API = st.sampled_from(["argoproj.io/v1alpha1", "argocd-image-updater.argoproj.io/v1alpha1", "v1", "apps/v1",
                       "autoscaling/v2", "kustomize.toolkit.fluxcd.io/v1", "flagger.app/v1beta1",
                       "kustomize.config.k8s.io/v1beta1"])
OBJECTS = st.builds(lambda api, kind, meta, spec, extra: {"apiVersion": api, "kind": kind, "metadata": meta,
                                                          "spec": spec, **extra},
                    API, KINDS, st.one_of(VALUES, st.fixed_dictionaries({"name": SCALARS, "annotations": VALUES})),
                    VALUES, st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=3))


def _with_aliases(text: str, data) -> str:
    """The dumped document with an anchor on its first value and aliases to it at random places."""
    if not isinstance(data, dict) or not data:
        return text
    first = next(iter(data))
    return text.replace(f"{first}:", f"{first}: &a", 1) + "\n".join(f"x{i}: *a" for i in range(3)) + "\n"


DUMPED = st.builds(lambda data: _with_aliases(yaml.safe_dump(data, sort_keys=False), data),
                   st.one_of(VALUES, OBJECTS))


def _audit_text(files: dict[str, str]) -> tuple[int, dict, float]:
    """Audit a repository holding `files` through the CLI (JSON), without kustomize."""
    root = Path(tempfile.mkdtemp(prefix="audit-fuzz-"))
    try:
        for rel, text in files.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(text, encoding="utf-8", errors="surrogatepass")
        start = time.perf_counter()
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = main(["audit", str(root), "--format", "json", "--kustomize", "/nonexistent/kustomize"])
        return code, json.loads(out.getvalue()), time.perf_counter() - start
    finally:
        shutil.rmtree(root, ignore_errors=True)


@FUZZ
@given(RAW_TEXT)
def test_any_text_parses_or_is_a_finding(text):
    start = time.perf_counter()
    objs, findings = yamlparse.parse_yaml(text, "f.yaml")
    assert time.perf_counter() - start < BOUND_S
    assert all(isinstance(o, dict) for o, _ in objs)
    assert all(f.rule in ("yaml-parse-error", "audit-limit") and f.file == "f.yaml" and f.line >= 1 for f in findings)


@FUZZ
@given(st.lists(st.one_of(DUMPED, RAW_TEXT), min_size=1, max_size=3))
def test_any_repository_gets_a_report(docs):
    files = {"apps/app.yaml": "\n---\n".join(docs), "kustomization.yaml": docs[0]}
    code, report, took = _audit_text(files)
    assert code in (0, 1) and took < BOUND_S
    assert set(report) >= {"findings", "summary", "files_scanned", "applicable"}


@FUZZ
@given(st.lists(OBJECTS, min_size=1, max_size=6))
def test_no_rule_trips_over_a_shape(objects):
    root = Path(tempfile.mkdtemp(prefix="audit-fuzz-"))
    try:
        (root / "objects.yaml").write_text(yaml.safe_dump_all(objects))
        start = time.perf_counter()
        report = audit(root, kustomize=None)
        assert time.perf_counter() - start < BOUND_S
        assert not [f for f in report.findings if f.rule == "audit-internal-error"], report.to_text()
    finally:
        shutil.rmtree(root, ignore_errors=True)
