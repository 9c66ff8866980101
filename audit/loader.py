"""Read a GitOps repository into the objects the rules evaluate.

Plain YAML (multi-document files, `*List` kinds) is parsed once per file, with line numbers
(audit.yamlparse). Kustomizations are rendered with `kustomize build` (in parallel): every
kustomization directory an Application points at, and every one no other kustomization consumes
(an overlay, or a lone kustomization) whose files hold an object a rule starts from or that
generates a Secret. The objects a build yields replace the raw files it covers (patches are never
evaluated as objects). Where kustomize is missing, a build fails, or a kustomization needs what an
offline audit cannot fetch (remote bases, Helm charts), the resources it lists are evaluated as
plain YAML instead. A directory an Application renders with a config management plugin is not
built as kustomize. Read, parse and build problems become findings; nothing here raises for bad
input.
"""
from __future__ import annotations

import os
import posixpath
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from gitops_conformance.audit import kustomize as kz
from gitops_conformance.audit.kustomize import CACHED_KUSTOMIZE, KUSTOMIZATION_FILES, Kustomization, find_kustomize
from gitops_conformance.audit.masking import MAX_SECRET_FILE, generator_values, secret_values
from gitops_conformance.audit.model import ERROR, WARNING, Doc, Finding, Repo, is_rule_subject, kind_is_read, norm
from gitops_conformance.audit.yamlparse import parse_yaml

__all__ = ["AUTO", "CACHED_KUSTOMIZE", "find_kustomize", "load"]

MAX_MARKDOWN = 1 << 20
AUTO = object()  # load(kustomize=AUTO): find the binary
BUILD_WORKERS = max(1, min(4, os.cpu_count() or 1))


# ---- the repository walk ----------------------------------------------------------------------

def _walk(root: Path):
    """(relative posix path, absolute path) of the files to read; `.git/` and Helm chart
    `templates/` (Go templates, not YAML) are skipped."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d != ".git")
        if "Chart.yaml" in filenames and "templates" in dirnames:
            dirnames.remove("templates")
        for fn in sorted(filenames):
            path = Path(dirpath) / fn
            yield Path(os.path.relpath(path, root)).as_posix(), path


def _is_runbook(rel: str) -> bool:
    low = rel.lower()
    return low.endswith((".md", ".markdown")) and ("readme" in low or "runbook" in low)


def _read_files(repo: Repo, root: Path) -> tuple[dict[str, list[tuple[dict, int]]], dict[str, str]]:
    parsed: dict[str, list[tuple[dict, int]]] = {}
    texts: dict[str, str] = {}
    for rel, path in _walk(root):
        is_yaml = rel.endswith((".yaml", ".yml")) or posixpath.basename(rel) == "Kustomization"
        if not is_yaml and not _is_runbook(rel):
            continue
        try:
            raw = path.read_bytes()
        except OSError as exc:
            repo.problems.append(Finding("yaml-parse-error", ERROR, rel, 1, f"cannot read the file ({exc.strerror})",
                                         "Make the file readable."))
            continue
        if not is_yaml:
            repo.markdown[rel] = raw[:MAX_MARKDOWN].decode("utf-8", "replace")
            continue
        repo.files_scanned += 1
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = raw.count(b"\n", 0, exc.start) + 1
            repo.problems.append(Finding("yaml-parse-error", ERROR, rel, line, "malformed YAML: not UTF-8 text",
                                         "Save the file as UTF-8."))
            continue
        texts[rel] = text
        parsed[rel], problems = parse_yaml(text, rel, kind_is_read)
        repo.problems.extend(problems)
    return parsed, texts


# ---- Applications: which directories they render, and how -------------------------------------

def _app_sources(parsed: dict[str, list[tuple[dict, int]]]):
    """The source mappings of the Applications and ApplicationSet templates in the repository."""
    for objs in parsed.values():
        for obj, _ in objs:
            if not str(obj.get("apiVersion", "")).startswith("argoproj.io/"):
                continue
            spec = obj.get("spec")
            if obj.get("kind") == "ApplicationSet" and isinstance(spec, dict):
                spec = spec.get("template", {}).get("spec") if isinstance(spec.get("template"), dict) else None
            elif obj.get("kind") != "Application":
                continue
            if not isinstance(spec, dict):
                continue
            many = spec.get("sources") if isinstance(spec.get("sources"), list) else []
            yield from (s for s in [spec.get("source"), *many] if isinstance(s, dict) and isinstance(s.get("path"), str))


def _rendered_dirs(parsed) -> tuple[set[str], set[str]]:
    """(directories Applications render as kustomize or plain, directories rendered by a plugin)."""
    targets, plugin = set(), set()
    for s in _app_sources(parsed):
        (plugin if s.get("plugin") is not None else targets).add(norm(s["path"]))
    return targets - plugin, plugin


# ---- the whole repository ---------------------------------------------------------------------

def load(root: str | os.PathLike, kustomize: Any = AUTO) -> Repo:
    """Scan `root`. `kustomize`: the binary to render with, AUTO to look for it, None for none."""
    root = Path(root).resolve()
    repo = Repo(root=str(root))
    parsed, texts = _read_files(repo, root)

    for objs in parsed.values():
        for obj, _ in objs:
            repo.sensitive |= secret_values(obj)

    kusts: dict[str, Kustomization] = {}
    for rel, objs in parsed.items():
        if posixpath.basename(rel) in KUSTOMIZATION_FILES:
            kdir = norm(posixpath.dirname(rel))
            if kdir in kusts:
                continue  # kustomize itself refuses two kustomization files; the build error says so
            k = kusts[kdir] = kz.read(root, kdir, rel, objs[0][0] if objs else {})
            repo.sensitive |= generator_values(k.secret_literals, *_secret_inputs(root, k))

    covered = _render_all(repo, root, kusts, parsed, texts, kustomize)

    managed: dict[str, list[Kustomization]] = {}
    for k in kusts.values():
        in_dir = {rel for rel in parsed if norm(posixpath.dirname(rel)) == k.dir}
        for rel in in_dir | k.resource_files | k.other_files:
            managed.setdefault(rel, []).append(k)
    for rel, objs in parsed.items():
        owners = managed.get(rel)
        if owners:
            if any(k.dir in covered for k in owners):
                continue  # the rendered output has these objects
            if not any(rel in k.resource_files for k in owners):
                continue  # kustomization file, patch, generator input or stray file: not deployed as is
        where = norm(posixpath.dirname(rel))
        for obj, line in objs:
            if "kind" in obj:
                repo.docs.append(Doc(obj, rel, line, where))
    return repo


def _secret_inputs(root: Path, k: Kustomization) -> tuple[list[str], list[str]]:
    """(env-file texts, other file texts) a secretGenerator reads."""
    envs, files = [], []
    for rel in sorted(k.secret_inputs):
        try:
            path = root / rel
            if path.stat().st_size > MAX_SECRET_FILE:
                continue
            text = path.read_text("utf-8", "replace")
        except OSError:
            continue
        (envs if rel.endswith(".env") or posixpath.basename(rel).startswith(".env") else files).append(text)
    return envs, files


def _tree(kusts: dict[str, Kustomization], kdir: str) -> list[Kustomization]:
    """The kustomization at kdir and every local kustomization it consumes, transitively."""
    seen, stack = [], [kdir]
    while stack:
        d = stack.pop()
        if d in kusts and kusts[d] not in seen:
            seen.append(kusts[d])
            stack.extend(kusts[d].children)
    return seen


def _worth_rendering(tree: list[Kustomization], parsed) -> bool:
    """Whether rendering can yield a finding: its files hold an object a rule starts from, or it
    generates a Secret. (Build errors of the others are not reported unless an Application
    renders them.)"""
    if any(k.has_secret_generator for k in tree):
        return True
    files = {f for k in tree for f in k.resource_files | k.other_files}
    return any(is_rule_subject(obj) for f in files for obj, _ in parsed.get(f, ()))


def _render_all(repo: Repo, root: Path, kusts: dict[str, Kustomization], parsed, texts, kustomize) -> set[str]:
    """Render the kustomization roots into repo.docs; return the kustomization dirs covered."""
    if not kusts:
        return set()
    consumed = {c for k in kusts.values() for c in k.children}
    targets, plugin_dirs = _rendered_dirs(parsed)
    roots = sorted(d for d, k in kusts.items()
                   if not k.component and d not in plugin_dirs and (d not in consumed or d in targets))
    offline = {}
    for kdir in roots:
        needs = [e for k in _tree(kusts, kdir) for e in k.remote]
        if needs:
            offline[kdir] = needs
            repo.problems.append(Finding(
                "kustomize-remote-base", WARNING, kusts[kdir].file, 1,
                f"kustomize build {kdir or '.'} not run: it needs {', '.join(sorted(set(needs))[:3])[:300]}, which "
                "this offline audit does not fetch; its local resources were audited as plain YAML",
                "Nothing to fix in the repository; audit the remote base's own repository for its pitfalls."))
    # what an Application renders is always built (its build error is one Argo CD meets too)
    roots = [d for d in roots if d not in offline and (d in targets or _worth_rendering(_tree(kusts, d), parsed))]
    binary = find_kustomize() if kustomize is AUTO else kustomize
    if not roots:
        return set()
    if not binary or not os.access(binary, os.X_OK):
        where = binary or f"kustomize on PATH or {CACHED_KUSTOMIZE}"
        repo.problems.append(Finding(
            "kustomize-unavailable", WARNING, kusts[roots[0]].file, 1,
            f"kustomize not found ({where}): {len(roots)} kustomization(s) not rendered; their resources were "
            "audited as plain YAML, without patches or generated objects",
            "Install kustomize (or put it on PATH) and run the audit again."))
        return set()
    with ThreadPoolExecutor(max_workers=BUILD_WORKERS) as pool:
        results = list(pool.map(lambda d: kz.build(binary, root, d), roots))
    covered: set[str] = set()
    for kdir, (rendered, error) in zip(roots, results):
        k = kusts[kdir]
        if rendered is None:
            repo.problems.append(Finding(
                "kustomize-build-error", ERROR, k.file, 1,
                f"kustomize build {kdir or '.'} failed: {error}",
                "Fix the kustomization so `kustomize build` succeeds: Argo CD renders it the same way and "
                "cannot sync an Application whose source does not build. Its resources were audited as plain YAML."))
            continue
        covered |= {t.dir for t in _tree(kusts, kdir)}
        for obj, origin, generator in rendered:
            repo.sensitive |= secret_values(obj)
            if "kind" not in obj:
                continue
            where_from = f"{origin}:{_origin_line(origin, generator, obj, parsed, texts)}" if origin else None
            repo.docs.append(Doc(obj, k.file, 1, kdir, rendered=True, origin=where_from))
    return covered


def _origin_line(origin: str, generator: str | None, obj: dict, parsed: dict[str, list[tuple[dict, int]]],
                 texts: dict[str, str]) -> int:
    """The line in the defining file: the matching document, or the generator's key."""
    if generator:
        key = "secretGenerator" if generator == "SecretGenerator" else "configMapGenerator"
        for i, ln in enumerate(texts.get(origin, "").splitlines()):
            if ln.startswith(key + ":"):
                return i + 1
        return 1
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    name = str(meta.get("name") or "")
    same_kind = [(o, ln) for o, ln in parsed.get(origin, []) if o.get("kind") == obj.get("kind")]
    for o, ln in same_kind:
        ometa = o.get("metadata") if isinstance(o.get("metadata"), dict) else {}
        oname = str(ometa.get("name") or "")
        if oname and oname in name:
            return ln
    return same_kind[0][1] if same_kind else 1
