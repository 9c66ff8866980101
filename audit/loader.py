"""Read a GitOps repository into the objects the rules evaluate.

Plain YAML (multi-document files, `*List` kinds) is parsed with line numbers. Every directory with
a kustomization that no other kustomization consumes (an overlay, or a lone kustomization), and
every kustomization directory an Application points at, is rendered with `kustomize build`; the
objects it yields replace the raw files it covers (patches are never evaluated as objects). Where
kustomize is missing or a build fails, the resources those kustomizations list are evaluated as
plain YAML instead. Parse and build problems become findings; nothing here raises for bad input.
"""
from __future__ import annotations

import base64
import binascii
import os
import posixpath
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from audit.model import ERROR, WARNING, Doc, Finding, Repo, norm

KUSTOMIZE_VERSION = "v5.8.1"
CACHED_KUSTOMIZE = Path.home() / ".cache" / "gitops-conformance" / "bin" / f"kustomize-{KUSTOMIZE_VERSION}" / "kustomize"
KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
ORIGIN_ANNOTATION = "config.kubernetes.io/origin"
BUILD_TIMEOUT = 120
MAX_MARKDOWN = 1 << 20
MIN_SENSITIVE = 4  # shorter values would mask ordinary words in the report
AUTO = object()  # load(kustomize=AUTO): find the binary

_SEPARATOR = re.compile(r"^---(?:\s|$)")


def find_kustomize() -> str | None:
    """`kustomize` on PATH, else the copy the testbed build caches; None when neither exists."""
    found = shutil.which("kustomize")
    if found:
        return found
    return str(CACHED_KUSTOMIZE) if os.access(CACHED_KUSTOMIZE, os.X_OK) else None


# ---- plain YAML -------------------------------------------------------------------------------

def _yaml_problem(exc: Exception, rel: str, offset: int) -> Finding:
    """A parse error as a finding. Only PyYAML's problem/context phrases are kept, never its
    snippet of the offending line: that line may hold a secret value."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line = offset + (mark.line + 1 if mark is not None else 1)
    if isinstance(exc, yaml.MarkedYAMLError):
        what = "; ".join(p for p in (exc.context, exc.problem) if p) or "invalid YAML"
    elif isinstance(exc, yaml.reader.ReaderError):
        what = f"unacceptable character #x{exc.character:04x}" if isinstance(exc.character, int) else "undecodable bytes"
    else:
        what = "invalid YAML"
    return Finding("yaml-parse-error", ERROR, rel, line, f"malformed YAML: {what}",
                   "Fix the YAML syntax: Argo CD cannot apply this file either, so nothing in it is deployed "
                   "(and nothing in it could be audited).")


def _objects(node: yaml.Node, data: Any, offset: int) -> list[tuple[dict, int]]:
    """(mapping, line of its first key) for a document; the items of a `*List` document."""
    if not isinstance(data, dict):
        return []
    line = offset + node.start_mark.line + 1
    kind = data.get("kind")
    items = data.get("items")
    if isinstance(kind, str) and kind.endswith("List") and isinstance(items, list):
        item_nodes = next((v.value for k, v in node.value
                           if getattr(k, "value", None) == "items" and isinstance(v, yaml.SequenceNode)), [])
        return [(item, offset + n.start_mark.line + 1) for item, n in zip(items, item_nodes) if isinstance(item, dict)]
    return [(data, line)]


def _parse_stream(text: str, offset: int) -> tuple[list[tuple[dict, int]], Exception | None]:
    out: list[tuple[dict, int]] = []
    loader = yaml.SafeLoader(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is not None:
                out.extend(_objects(node, loader.construct_document(node), offset))
    except (yaml.YAMLError, ValueError, TypeError, RecursionError) as exc:  # bad timestamps etc. raise ValueError
        return out, exc
    finally:
        loader.dispose()
    return out, None


def _untab(text: str) -> str:
    """Tabs after a line's indentation as spaces (indentation tabs stay: they are invalid YAML)."""
    def fix(line: str) -> str:
        body = line.lstrip(" \t")
        return line[:len(line) - len(body)] + body.replace("\t", " ")
    return "".join(fix(ln) for ln in text.splitlines(keepends=True))


def parse_yaml(text: str, rel: str) -> tuple[list[tuple[dict, int]], list[Finding]]:
    """All mappings in a (multi-document) YAML text with their lines, and parse-error findings.

    After an error the file is parsed again document by document (split at `---` lines), so the
    documents after a broken one are still audited."""
    objs, exc = _parse_stream(text, 0)
    if exc is None:
        return objs, []
    if "\t" in text:  # PyYAML rejects tabs as separators that kustomize and Argo CD accept
        text = _untab(text)
        objs, exc = _parse_stream(text, 0)
        if exc is None:
            return objs, []
    lines = text.splitlines(keepends=True)
    starts = sorted({0} | {i for i, ln in enumerate(lines) if _SEPARATOR.match(ln)})
    objs, problems = [], []
    for i, start in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else len(lines)
        body_start = start + 1 if _SEPARATOR.match(lines[start] if lines else "") else start
        chunk = "".join(lines[body_start:end])
        got, err = _parse_stream(chunk, body_start)
        objs.extend(got)
        if err is not None:
            problem = _yaml_problem(err, rel, body_start)
            problem.line = min(problem.line, max(end, body_start + 1))  # "<stream end>" is the chunk's last line
            problems.append(problem)
    if not problems:  # splitting made it parse: still report the file as the tools see it
        problems.append(_yaml_problem(exc, rel, 0))
    return objs, problems


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


# ---- kustomize --------------------------------------------------------------------------------

@dataclass
class Kustomization:
    dir: str
    file: str
    component: bool = False
    children: set[str] = field(default_factory=set)        # kustomization dirs it consumes
    resource_files: set[str] = field(default_factory=set)  # files whose objects it deploys
    other_files: set[str] = field(default_factory=set)     # patches, generator inputs, configs
    has_secret_generator: bool = False


def _is_remote(entry: str) -> bool:
    return "://" in entry or entry.startswith(("github.com/", "git@", "gitlab.com/", "bitbucket.org/")) or "?ref=" in entry


def _kustomization(root: Path, kdir: str, kfile: str, data: dict) -> Kustomization:
    k = Kustomization(kdir, kfile, component=data.get("kind") == "Component")

    def resolve(entry: Any, into: set[str], dirs_are_children: bool = True) -> None:
        if not isinstance(entry, str) or "\n" in entry or _is_remote(entry):
            return
        rel = norm(posixpath.join(kdir, entry))
        if rel.startswith(".."):
            return
        full = root / rel
        if full.is_dir():
            if dirs_are_children and any((full / f).is_file() for f in KUSTOMIZATION_FILES):
                k.children.add(rel)
        elif full.is_file():
            into.add(rel)

    def entries(key: str) -> list:
        v = data.get(key)
        return v if isinstance(v, list) else []

    for key in ("resources", "bases", "components", "crds"):
        for e in entries(key):
            resolve(e, k.resource_files)
    for key in ("patchesStrategicMerge", "configurations", "generators", "transformers", "validators"):
        for e in entries(key):
            resolve(e, k.other_files)
    for key in ("patches", "patchesJson6902", "replacements"):
        for e in entries(key):
            if isinstance(e, dict):
                resolve(e.get("path"), k.other_files)
    openapi = data.get("openapi")
    if isinstance(openapi, dict):
        resolve(openapi.get("path"), k.other_files)
    for key in ("secretGenerator", "configMapGenerator"):
        for gen in entries(key):
            if not isinstance(gen, dict):
                continue
            k.has_secret_generator |= key == "secretGenerator"
            for sub in ("files", "envs"):
                for e in gen.get(sub) or []:
                    if isinstance(e, str):
                        resolve(e.split("=", 1)[-1], k.other_files, dirs_are_children=False)
            resolve(gen.get("env"), k.other_files, dirs_are_children=False)
    return k


def _first_error_line(stderr: str, root: Path) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    line = lines[0] if lines else "kustomize build failed without a message"
    line = line.replace(str(root) + os.sep, "").replace(str(root), ".")
    return line[:400]


def _origin(annotation: Any, tmp: str, root: Path) -> tuple[str | None, str | None]:
    """(repo-relative defining file, generator kind or None) from kustomize's origin annotation."""
    try:
        data = yaml.safe_load(annotation) if isinstance(annotation, str) else None
    except yaml.YAMLError:
        return None, None
    if not isinstance(data, dict) or data.get("repo"):
        return None, None  # defined in a remote base: no file in this repository
    path = data.get("path") or data.get("configuredIn")
    if not isinstance(path, str):
        return None, None
    rel = Path(os.path.relpath(os.path.normpath(os.path.join(tmp, path)), root)).as_posix()
    if rel.startswith(".."):
        return None, None
    by = data.get("configuredBy")
    return rel, (by.get("kind") if isinstance(by, dict) else None)


def _build(binary: str, root: Path, kdir: str) -> tuple[list[tuple[dict, str | None, str | None]] | None, str | None]:
    """Render one kustomization: ([(object, origin file, generator kind)], None) or (None, error).

    The directory is built through a throw-away kustomization outside the repository that adds
    `buildMetadata: [originAnnotations]`, so each object says which file defined it."""
    target = root / kdir if kdir else root
    try:
        with tempfile.TemporaryDirectory(prefix="gitops-audit-") as tmp:
            tmp = os.path.realpath(tmp)
            wrapper = {"resources": [os.path.relpath(target, tmp)], "buildMetadata": ["originAnnotations"]}
            Path(tmp, "kustomization.yaml").write_text(yaml.safe_dump(wrapper))
            proc = subprocess.run([binary, "build", tmp], capture_output=True, text=True, timeout=BUILD_TIMEOUT)
            if proc.returncode != 0:  # build it as the user would, for an error message that names their files
                direct = subprocess.run([binary, "build", str(target)], capture_output=True, text=True,
                                        timeout=BUILD_TIMEOUT)
                return None, _first_error_line(direct.stderr or proc.stderr, root)
            out = []
            for obj in yaml.safe_load_all(proc.stdout):
                if not isinstance(obj, dict):
                    continue
                ann = (obj.get("metadata") or {}).get("annotations") or {}
                origin, generator = _origin(ann.pop(ORIGIN_ANNOTATION, None), tmp, root)
                if not ann and isinstance(obj.get("metadata"), dict):
                    obj["metadata"].pop("annotations", None)
                out.append((obj, origin, generator))
            return out, None
    except subprocess.TimeoutExpired:
        return None, f"kustomize build timed out after {BUILD_TIMEOUT}s"
    except (OSError, yaml.YAMLError) as exc:
        return None, f"kustomize build could not run: {type(exc).__name__}"


def _origin_line(origin: str, generator: str | None, obj: dict, parsed: dict[str, list[tuple[dict, int]]],
                 texts: dict[str, str]) -> int:
    """The line in the defining file: the matching document, or the generator's key."""
    if generator:
        key = "secretGenerator" if generator == "SecretGenerator" else "configMapGenerator"
        for i, ln in enumerate(texts.get(origin, "").splitlines()):
            if ln.startswith(key + ":"):
                return i + 1
        return 1
    name = str((obj.get("metadata") or {}).get("name") or "")
    same_kind = [(o, ln) for o, ln in parsed.get(origin, []) if o.get("kind") == obj.get("kind")]
    for o, ln in same_kind:
        oname = str((o.get("metadata") or {}).get("name") or "")
        if oname and oname in name:
            return ln
    return same_kind[0][1] if same_kind else 1


# ---- secret values (kept only to mask them in the report) -------------------------------------

def _sensitive(obj: dict) -> set[str]:
    out: set[str] = set()
    if obj.get("kind") != "Secret":
        return out
    for key in ("data", "stringData"):
        block = obj.get(key)
        if not isinstance(block, dict):
            continue
        for v in block.values():
            if v is None:
                continue
            v = str(v)
            out.add(v)
            if key == "data":
                try:
                    out.add(base64.b64decode(v, validate=False).decode())
                except (binascii.Error, ValueError):
                    pass
            else:
                out.add(base64.b64encode(v.encode()).decode())
    return {v for v in out if len(v) >= MIN_SENSITIVE}


def _generator_literals(data: dict) -> set[str]:
    out = set()
    for gen in data.get("secretGenerator") or []:
        if isinstance(gen, dict):
            for lit in gen.get("literals") or []:
                if isinstance(lit, str) and "=" in lit:
                    out.add(lit.split("=", 1)[1])
    return {v for v in out if len(v) >= MIN_SENSITIVE}


# ---- the whole repository ---------------------------------------------------------------------

def _app_paths(objs) -> set[str]:
    paths = set()
    for obj in objs:
        if obj.get("kind") != "Application" or not str(obj.get("apiVersion", "")).startswith("argoproj.io/"):
            continue
        spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
        sources = [spec.get("source")] + (spec.get("sources") if isinstance(spec.get("sources"), list) else [])
        for s in sources:
            if isinstance(s, dict) and isinstance(s.get("path"), str):
                paths.add(norm(s["path"]))
    return paths


def load(root: str | os.PathLike, kustomize: Any = AUTO) -> Repo:
    """Scan `root`. `kustomize`: the binary to render with, AUTO to look for it, None for none."""
    root = Path(root).resolve()
    repo = Repo(root=str(root))
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
        except UnicodeDecodeError:
            repo.problems.append(Finding("yaml-parse-error", ERROR, rel, 1, "malformed YAML: not UTF-8 text",
                                         "Save the file as UTF-8."))
            continue
        texts[rel] = text
        parsed[rel], problems = parse_yaml(text, rel)
        repo.problems.extend(problems)

    for objs in parsed.values():
        for obj, _ in objs:
            repo.sensitive |= _sensitive(obj)

    kusts: dict[str, Kustomization] = {}
    for rel, objs in parsed.items():
        if posixpath.basename(rel) in KUSTOMIZATION_FILES:
            kdir = norm(posixpath.dirname(rel))
            if kdir in kusts:
                continue  # kustomize itself refuses two kustomization files; the build error says so
            data = objs[0][0] if objs else {}
            kusts[kdir] = _kustomization(root, kdir, rel, data)
            repo.sensitive |= _generator_literals(data)

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


def _render_all(repo: Repo, root: Path, kusts: dict[str, Kustomization], parsed, texts, kustomize) -> set[str]:
    """Render the kustomization roots into repo.docs; return the kustomization dirs covered."""
    if not kusts:
        return set()
    consumed = {c for k in kusts.values() for c in k.children}
    targets = _app_paths(obj for objs in parsed.values() for obj, _ in objs)
    roots = sorted(d for d, k in kusts.items() if not k.component and (d not in consumed or d in targets))
    binary = find_kustomize() if kustomize is AUTO else kustomize
    if not binary or not os.access(binary, os.X_OK):
        where = binary or f"kustomize on PATH or {CACHED_KUSTOMIZE}"
        repo.problems.append(Finding(
            "kustomize-unavailable", WARNING, kusts[roots[0]].file if roots else next(iter(kusts.values())).file, 1,
            f"kustomize not found ({where}): {len(roots)} kustomization(s) not rendered; their resources were "
            "audited as plain YAML, without patches or generated objects",
            "Install kustomize (or put it on PATH) and run the audit again."))
        return set()
    covered: set[str] = set()
    for kdir in roots:
        k = kusts[kdir]
        rendered, error = _build(binary, root, kdir)
        if rendered is None:
            repo.problems.append(Finding(
                "kustomize-build-error", ERROR, k.file, 1,
                f"kustomize build {kdir or '.'} failed: {error}",
                "Fix the kustomization so `kustomize build` succeeds: Argo CD renders it the same way and "
                "cannot sync an Application whose source does not build. Its resources were audited as plain YAML."))
            continue
        stack = [kdir]
        while stack:
            d = stack.pop()
            if d not in covered:
                covered.add(d)
                stack.extend(kusts[d].children if d in kusts else ())
        for obj, origin, generator in rendered:
            repo.sensitive |= _sensitive(obj)
            if "kind" not in obj:
                continue
            where_from = f"{origin}:{_origin_line(origin, generator, obj, parsed, texts)}" if origin else None
            repo.docs.append(Doc(obj, k.file, 1, kdir, rendered=True, origin=where_from))
    return covered
