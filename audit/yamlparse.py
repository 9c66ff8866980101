"""YAML text into (mapping, line) pairs, bounded, with one finding per document it cannot read.

Objects are built straight from the parser's events (libyaml's, PyYAML's C parser, where it is
installed): that is several times faster than PyYAML's composer and constructor, whose
per-scalar resolver is pure Python, and it lets the audit keep only apiVersion, kind and metadata
of objects no rule reads (CustomResourceDefinitions are most of the YAML in many repositories).
Scalars resolve as YAML 1.1 does for Kubernetes (true/yes/on, null/~, integers, floats);
timestamps stay strings. Merge keys (`<<`) are honoured.

Limits keep hostile files from hanging the audit or exhausting memory: a file size cap, a document
count cap, a nesting depth cap (deep nesting is quadratic in libyaml), and a cap on how far YAML
aliases expand ("billion laughs": a few hundred bytes that expand to gigabytes for anyone walking
the result). The expansion is counted, never performed: aliases share the anchored object.

Unknown tags (`!ENV` in mkdocs.yml, `!reference` in .gitlab-ci.yml) read as the plain value they
tag, as Kubernetes' own YAML library (sigs.k8s.io/yaml, go-yaml v2) reads them: they are no error.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import yaml

from gitops_conformance.audit.model import ERROR, WARNING, Finding

try:
    _Loader = yaml.CSafeLoader
    LIBYAML = True
except AttributeError:  # PyYAML built without libyaml
    _Loader = yaml.SafeLoader
    LIBYAML = False

MAX_FILE_BYTES = 16 << 20    # far above any Kubernetes manifest (etcd caps an object at 1.5 MB)
MAX_DOCUMENTS = 10_000       # per file
MAX_DEPTH = 1_000            # nesting levels; Kubernetes objects rarely exceed 30
MAX_EXPANDED_NODES = 1_000_000  # nodes of a document once its aliases are expanded

PARSE_FIX = ("Fix the YAML syntax: Argo CD cannot apply this file either, so nothing in it is deployed "
             "(and nothing in it could be audited).")
LIMIT_FIX = "Split or simplify the file; the audit skipped what is beyond its limits."

_SEPARATOR = re.compile(r"^---(?:\s|$)")
# what the YAML spec forbids in a stream (tab, LF, CR and NEL are allowed)
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ud800-\udfff\ufffe\uffff]")

_CORE = "tag:yaml.org,2002:"
_CONSTANTS: dict[str, Any] = {v: None for v in ("", "~", "null", "Null", "NULL")}
_CONSTANTS |= {v: True for v in ("true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON")}
_CONSTANTS |= {v: False for v in ("false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF")}
_INT = re.compile(r"[-+]?(?:0|[1-9][0-9_]*)$")
_HEX = re.compile(r"[-+]?0x[0-9a-fA-F_]+$")
_FLOAT = re.compile(r"[-+]?(?:[0-9][0-9_]*\.[0-9_]*|\.[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)?$")
_NUMBER_START = frozenset("0123456789+-.")

Keep = Callable[[Any], bool]  # keep(kind): build the whole object (else apiVersion, kind, metadata only)
SKELETON_KEYS = ("apiVersion", "kind", "metadata")


class LimitExceeded(Exception):
    """A document beyond one of the limits; the message says which."""

    def __init__(self, message: str, line: int):
        super().__init__(message)
        self.line = line


class BadDocument(Exception):
    """A document the parser accepts but no Kubernetes tool reads (an unhashable key)."""

    def __init__(self, message: str, line: int):
        super().__init__(message)
        self.line = line


def _plain(value: str) -> Any:
    """A plain scalar as YAML 1.1 resolves it (timestamps stay strings)."""
    if value in _CONSTANTS:
        return _CONSTANTS[value]
    if value[0] in _NUMBER_START:
        v = value.replace("_", "")
        try:
            if _INT.match(value):
                return int(v)
            if _HEX.match(value):
                return int(v, 16)
            if _FLOAT.match(value):
                return float(v)
        except ValueError:
            pass
    return value


def _scalar(event: yaml.ScalarEvent) -> Any:
    tag = event.tag
    if tag in (None, "!"):
        return _plain(event.value) if event.implicit[0] else event.value
    if tag.startswith(_CORE):
        name = tag[len(_CORE):]
        if name in ("int", "float", "bool", "null"):
            return _plain(event.value)
        return event.value
    return _plain(event.value) if event.implicit[0] else event.value


class _Frame:
    __slots__ = ("obj", "key", "has_key", "size", "merges", "anchor", "line", "skip_from")

    def __init__(self, obj: Any, anchor: str | None, line: int):
        self.obj = obj
        self.key: Any = None
        self.has_key = False
        self.size = 1
        self.merges: list = []
        self.anchor = anchor
        self.line = line


def _documents(text: str, keep: Keep) -> Iterator[tuple[Any, int, dict[int, int]]]:
    """Per document, from events: (root object, line of its first key (0-based),
    {id(mapping): line} for the mappings in a top-level list such as a `*List`'s items)."""
    events = yaml.parse(text, Loader=_Loader)
    anchors: dict[str, tuple[Any, int]] = {}   # name -> (object, expanded size); size -1 while open
    skipped: set[str] = set()
    stack: list[_Frame] = []
    root: Any = None
    root_line = 0
    skip_depth = 0  # > 0: inside a value of an object no rule reads
    item_lines: dict[int, int] = {}

    def add(value: Any, size: int, line: int) -> None:
        nonlocal root, root_line
        if not stack:
            root, root_line = value, line
            return
        top = stack[-1]
        if len(stack) == 2 and isinstance(top.obj, list) and isinstance(value, dict):
            item_lines[id(value)] = line
        top.size += size
        if top.size > MAX_EXPANDED_NODES:
            raise LimitExceeded(f"YAML aliases expand the document to more than {MAX_EXPANDED_NODES:,} nodes", line)
        if isinstance(top.obj, list):
            top.obj.append(value)
        elif not top.has_key:
            top.key, top.has_key = value, True
        else:
            key, top.has_key = top.key, False
            if key == "<<" and not isinstance(value, (str, int, float, bool)) and value is not None:
                top.merges.append(value)
                return
            try:
                top.obj[key] = value
            except TypeError:
                raise BadDocument("a mapping key that is itself a mapping or a list", line) from None

    def skipping_next_value() -> bool:
        """In a top-level object no rule reads, the value about to start is not built."""
        if len(stack) != 1 or not isinstance(stack[0].obj, dict) or not stack[0].has_key:
            return False
        obj = stack[0].obj
        return "kind" in obj and stack[0].key not in SKELETON_KEYS and not keep(obj.get("kind"))

    for event in events:
        line = getattr(event.start_mark, "line", 0) if event.start_mark else 0
        if skip_depth:
            if isinstance(event, yaml.CollectionStartEvent):
                skip_depth += 1
                if skip_depth + len(stack) > MAX_DEPTH:
                    raise LimitExceeded(f"nesting deeper than {MAX_DEPTH} levels", line)
                if event.anchor:
                    skipped.add(event.anchor)
            elif isinstance(event, yaml.CollectionEndEvent):
                skip_depth -= 1
                if skip_depth == 0:
                    stack[0].has_key = False
            elif isinstance(event, yaml.ScalarEvent) and event.anchor:
                skipped.add(event.anchor)
            continue
        if isinstance(event, yaml.ScalarEvent):
            if skipping_next_value():
                stack[0].has_key = False
                if event.anchor:
                    skipped.add(event.anchor)
                continue
            value = _scalar(event)
            if event.anchor:
                anchors[event.anchor] = (value, 1)
            add(value, 1, line)
        elif isinstance(event, yaml.CollectionStartEvent):
            if skipping_next_value():
                skip_depth = 1
                if event.anchor:
                    skipped.add(event.anchor)
                continue
            if len(stack) >= MAX_DEPTH:
                raise LimitExceeded(f"nesting deeper than {MAX_DEPTH} levels", line)
            obj: Any = {} if isinstance(event, yaml.MappingStartEvent) else []
            if event.anchor:
                anchors[event.anchor] = (obj, -1)
            stack.append(_Frame(obj, event.anchor, line))
        elif isinstance(event, yaml.CollectionEndEvent):
            frame = stack.pop()
            if frame.merges:
                merged: dict = {}
                for source in frame.merges:
                    for m in (source if isinstance(source, list) else [source]):
                        if isinstance(m, dict):
                            merged.update({k: v for k, v in m.items() if k not in merged})
                frame.obj.update({k: v for k, v in merged.items() if k not in frame.obj})
            if frame.anchor:
                anchors[frame.anchor] = (frame.obj, frame.size)
            add(frame.obj, frame.size, frame.line)
        elif isinstance(event, yaml.AliasEvent):
            if skipping_next_value():
                stack[0].has_key = False
                continue
            if event.anchor in skipped:
                add(None, 1, line)
                continue
            if event.anchor not in anchors:
                raise BadDocument(f"alias *{event.anchor[:40]} to no anchor", line)
            value, size = anchors[event.anchor]
            if size < 0:
                raise LimitExceeded("recursive YAML alias (a node that contains itself)", line)
            add(value, size, line)
        elif isinstance(event, yaml.DocumentEndEvent):
            yield root, root_line, item_lines
            root, anchors, skipped, item_lines = None, {}, set(), {}


def problem(rel: str, line: int, what: str, severity: str = ERROR, fix: str = PARSE_FIX,
            rule: str = "yaml-parse-error") -> Finding:
    return Finding(rule, severity, rel, line, what, fix)


def _line_of(text: str, index: int) -> int:
    return text.count("\n", 0, index) + 1


def _objects(data: Any, line: int, offset: int, item_lines: dict[int, int]) -> list[tuple[dict, int]]:
    """(mapping, line of its first key) for a document; the items of a `*List` document."""
    if not isinstance(data, dict):
        return []
    kind = data.get("kind")
    items = data.get("items")
    if isinstance(kind, str) and kind.endswith("List") and isinstance(items, list):
        return [(item, offset + item_lines.get(id(item), line - offset - 1) + 1) for item in items
                if isinstance(item, dict)]
    return [(data, line)]


def _parse_stream(text: str, offset: int, rel: str, keep: Keep
                  ) -> tuple[list[tuple[dict, int]], list[Finding], Exception | None]:
    """Parse a stream. Returns objects, findings about documents past the document cap, and the
    error that stopped it (None when it read to the end)."""
    out: list[tuple[dict, int]] = []
    found: list[Finding] = []
    try:
        for n, (data, line, item_lines) in enumerate(_documents(text, keep), 1):
            if n > MAX_DOCUMENTS:
                found.append(problem(rel, offset + line + 1, f"more than {MAX_DOCUMENTS:,} documents in one file: "
                                     "the rest was not audited", WARNING, LIMIT_FIX, "audit-limit"))
                break
            out.extend(_objects(data, offset + line + 1, offset, item_lines))
    except (yaml.YAMLError, LimitExceeded, BadDocument, ValueError, RecursionError) as exc:
        return out, found, exc
    return out, found, None


def _error_finding(exc: Exception, rel: str, text: str, offset: int) -> Finding:
    """A parse error as a finding. Only PyYAML's problem/context phrases are kept, never its
    snippet of the offending line: that line may hold a secret value."""
    if isinstance(exc, LimitExceeded):
        return problem(rel, offset + exc.line + 1, f"document not audited: {exc}", WARNING, LIMIT_FIX, "audit-limit")
    if isinstance(exc, BadDocument):
        return problem(rel, offset + exc.line + 1, f"malformed YAML: {exc}")
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line = offset + (mark.line + 1 if mark is not None else 1)
    if isinstance(exc, yaml.reader.ReaderError):
        what = exc.reason or "unreadable characters"
        if isinstance(exc.position, int):
            line = offset + _line_of(text, exc.position)
    elif isinstance(exc, yaml.MarkedYAMLError):
        what = "; ".join(p for p in (exc.context, exc.problem) if p) or "invalid YAML"
    else:
        what = "invalid YAML"
    return problem(rel, line, f"malformed YAML: {what}")


def _untab(text: str) -> str:
    """Tabs after a line's indentation as spaces (indentation tabs stay: they are invalid YAML)."""
    def fix(line: str) -> str:
        body = line.lstrip(" \t")
        return line[:len(line) - len(body)] + body.replace("\t", " ")
    return "".join(fix(ln) for ln in text.splitlines(keepends=True))


def _parse_tolerant(text: str, offset: int, rel: str, keep: Keep
                    ) -> tuple[list[tuple[dict, int]], list[Finding], Exception | None]:
    """_parse_stream, again with tabs after indentation as spaces when they were the problem:
    PyYAML rejects tabs as separators that kustomize and Argo CD accept."""
    objs, found, exc = _parse_stream(text, offset, rel, keep)
    if exc is not None and "\t" in text:
        objs, found, exc = _parse_stream(_untab(text), offset, rel, keep)
    return objs, found, exc


def _parse_document(chunk: str, offset: int, rel: str, keep: Keep) -> tuple[list[tuple[dict, int]], list[Finding]]:
    """One `---`-separated piece of a file that did not parse as a whole."""
    bad = _FORBIDDEN.search(chunk)
    if bad:
        return [], [problem(rel, offset + _line_of(chunk, bad.start()),
                            f"malformed YAML: control character #x{ord(bad.group()):02x} is not allowed")]
    objs, found, exc = _parse_tolerant(chunk, offset, rel, keep)
    if exc is not None:
        err = _error_finding(exc, rel, chunk, offset)
        err.line = min(err.line, offset + max(chunk.count("\n"), 1))  # "<stream end>" is the chunk's last line
        found.append(err)
    return objs, found


def _keep_all(_kind: Any) -> bool:
    return True


def parse_yaml(text: str, rel: str, keep: Keep = _keep_all) -> tuple[list[tuple[dict, int]], list[Finding]]:
    """All mappings in a (multi-document) YAML text with their lines, and findings about what
    could not be read. Objects whose kind `keep` rejects are kept as apiVersion, kind and metadata.
    After an error the file is read again document by document (split at `---` lines), so the
    documents after a broken one are still audited."""
    if len(text) > MAX_FILE_BYTES:
        return [], [problem(rel, 1, f"file not audited: {len(text) / (1 << 20):.1f} MiB, more than the audit's "
                            f"{MAX_FILE_BYTES >> 20} MiB limit", WARNING, LIMIT_FIX, "audit-limit")]
    whole_error: Exception | None = None
    if not _FORBIDDEN.search(text):
        objs, found, whole_error = _parse_tolerant(text, 0, rel, keep)
        if whole_error is None:
            return objs, found
    lines = text.splitlines(keepends=True)
    starts = sorted({0} | {i for i, ln in enumerate(lines) if _SEPARATOR.match(ln)})
    objs, found = [], []
    for i, start in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else len(lines)
        body_start = start + 1 if lines and _SEPARATOR.match(lines[start]) else start
        got, problems = _parse_document("".join(lines[body_start:end]), body_start, rel, keep)
        objs.extend(got)
        found.extend(problems)
    if whole_error is not None and not any(f.rule in ("yaml-parse-error", "audit-limit") for f in found):
        found.append(_error_finding(whole_error, rel, text, 0))  # splitting made it parse: report it as tools see it
    return objs, found


def load_all(text: str, keep: Keep = _keep_all) -> list[Any]:
    """Every document of trusted tool output (kustomize's), with the same limits. Raises
    yaml.YAMLError (or LimitExceeded) when it cannot be read."""
    return [data for data, *_ in _documents(text, keep)]
