"""Findings into a report: one per problem, in file order, as text or JSON, secret values masked."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass

from audit.model import ERROR, WARNING, Finding

MASK = "***"


@dataclass
class Report:
    findings: list[Finding]
    files_scanned: int
    sensitive: frozenset[str] = frozenset()

    @classmethod
    def build(cls, findings: list[Finding], files_scanned: int, sensitive: set[str] = frozenset()) -> "Report":
        """De-duplicate (one finding per rule and object: overlays rendering one base report it once;
        the first in file order wins) and sort by file, line, rule."""
        unique: dict[tuple, Finding] = {}
        for f in sorted(findings, key=lambda f: (f.file, f.line, f.rule)):
            unique.setdefault(f.key(), f)
        return cls(list(unique.values()), files_scanned, frozenset(sensitive))

    @property
    def exit_code(self) -> int:
        return 1 if any(f.severity == ERROR for f in self.findings) else 0

    def summary(self) -> dict:
        by_rule: dict[str, int] = {}
        for f in self.findings:
            by_rule[f.rule] = by_rule.get(f.rule, 0) + 1
        return {"total": len(self.findings),
                "error": sum(f.severity == ERROR for f in self.findings),
                "warning": sum(f.severity == WARNING for f in self.findings),
                "by_rule": dict(sorted(by_rule.items())),
                "exit_code": self.exit_code}

    def _mask(self, text: str) -> str:
        """Defence in depth: no rule writes a value, but a message quoting a tool's error could."""
        if not self.sensitive:
            return text
        forms = set(self.sensitive) | {json.dumps(v)[1:-1] for v in self.sensitive}  # as JSON spells them
        pattern = "|".join(re.escape(v) for v in sorted(forms, key=len, reverse=True))
        return re.sub(pattern, MASK, text)

    def to_json(self) -> str:
        data = {"findings": [f.to_dict() for f in self.findings], "summary": self.summary(),
                "files_scanned": self.files_scanned}
        return self._mask(json.dumps(data, indent=2))

    def to_text(self) -> str:
        lines = []
        for f in self.findings:
            origin = f" (defined in {f.origin})" if f.origin else ""
            lines.append(f"{f.severity.upper()} {f.rule} {f.file}:{f.line} {f.message}{origin}")
            lines.append(f"  remediation: {f.remediation}")
        s = self.summary()
        if s["total"]:
            lines.append(f"{s['total']} finding(s): {s['error']} error(s), {s['warning']} warning(s); "
                         f"{self.files_scanned} YAML file(s) scanned")
        else:
            lines.append(f"no findings; {self.files_scanned} YAML file(s) scanned")
        return self._mask("\n".join(lines) + "\n")
