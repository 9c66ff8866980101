"""Secret values found in the repository, kept only to mask them where a tool's output is quoted.

No rule writes a value; kustomize's error messages could (it prints maps it failed to merge), so
the findings that quote a tool go through `Masker`. Only string values of MIN_SENSITIVE or more
characters count: shorter ones (`true`, `default`, `admin`) are words that appear in ordinary
text, and masking them would corrupt the report. Masking is one Aho-Corasick pass: linear in the
text, whatever the number of values.
"""
from __future__ import annotations

import base64
import binascii
from collections import deque
from collections.abc import Iterable
from typing import Any

MIN_SENSITIVE = 8
MASK = "***"
MAX_SECRET_FILE = 64 << 10  # generator input files larger than this are not values anyone quotes


def _long(values: Iterable[str]) -> set[str]:
    return {v for v in values if len(v) >= MIN_SENSITIVE}


def secret_values(obj: dict[str, Any]) -> set[str]:
    """String values of a Secret's data (as written and decoded) and stringData (as written and
    encoded). Containers and non-strings are not values: they are never collected."""
    if obj.get("kind") != "Secret":
        return set()
    out: set[str] = set()
    for key in ("data", "stringData"):
        block = obj.get(key)
        if not isinstance(block, dict):
            continue
        for v in block.values():
            if not isinstance(v, str):
                continue
            out.add(v)
            if key == "data":
                try:
                    out.add(base64.b64decode(v, validate=False).decode())
                except (binascii.Error, ValueError):
                    pass
            else:
                out.add(base64.b64encode(v.encode()).decode())
    return _long(out)


def generator_values(literals: Iterable[Any], env_texts: Iterable[str], file_texts: Iterable[str]) -> set[str]:
    """Values a secretGenerator puts in a Secret: `KEY=value` literals, env-file lines, file contents."""
    out = {lit.split("=", 1)[1] for lit in literals if isinstance(lit, str) and "=" in lit}
    for text in env_texts:
        out |= {ln.split("=", 1)[1].strip() for ln in text.splitlines() if "=" in ln and not ln.lstrip().startswith("#")}
    out |= {t.strip() for t in file_texts if len(t) <= MAX_SECRET_FILE}
    return _long(out)


class Masker:
    """Replaces every occurrence of any value with MASK (Aho-Corasick automaton over the values)."""

    def __init__(self, values: Iterable[str]):
        self._goto: list[dict[str, int]] = [{}]
        self._longest: list[int] = [0]  # length of the longest value ending at this state
        for value in values:
            state = 0
            for ch in value:
                nxt = self._goto[state].get(ch)
                if nxt is None:
                    nxt = len(self._goto)
                    self._goto.append({})
                    self._longest.append(0)
                    self._goto[state][ch] = nxt
                state = nxt
            self._longest[state] = max(self._longest[state], len(value))
        self._fail = [0] * len(self._goto)
        queue = deque(self._goto[0].values())
        while queue:
            state = queue.popleft()
            for ch, nxt in self._goto[state].items():
                queue.append(nxt)
                f = self._fail[state]
                while f and ch not in self._goto[f]:
                    f = self._fail[f]
                self._fail[nxt] = self._goto[f].get(ch, 0) if state else 0
                self._longest[nxt] = max(self._longest[nxt], self._longest[self._fail[nxt]])

    def __bool__(self) -> bool:
        return len(self._goto) > 1

    def mask(self, text: str) -> str:
        spans: list[list[int]] = []
        state = 0
        for i, ch in enumerate(text):
            while state and ch not in self._goto[state]:
                state = self._fail[state]
            state = self._goto[state].get(ch, 0)
            n = self._longest[state]
            if n:
                start = i + 1 - n
                while spans and start <= spans[-1][1]:  # overlaps earlier matches: one span
                    start = min(start, spans.pop()[0])
                spans.append([start, i + 1])
        if not spans:
            return text
        out, pos = [], 0
        for start, end in spans:
            out += [text[pos:start], MASK]
            pos = end
        out.append(text[pos:])
        return "".join(out)
