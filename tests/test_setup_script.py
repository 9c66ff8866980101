"""scripts/setup.sh installs every Debian package the code tells a user to install.

CI runs on a fresh machine: a tool present here by chance (installed by hand once) hides a
missing install step until CI fails. The code names each Debian package it needs in its error
message (`apt-get install PKG`); setup.sh must install each of them.
"""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("gitops_conformance", "fixtures", "scenarios", "suites", "reports", "audit", "testbed", "benchmarks")
# `apt-get install [-y] [--no-install-recommends] PKG` inside a message, PKG a Debian package name
ADVICE = re.compile(r"apt-get install (?:-y )?(?:--no-install-recommends )?([a-z0-9][a-z0-9.+-]+)(?=[`'\")\s:;,]|$)")
NOT_PACKAGES = {"if"}  # prose such as "apt-get install if missing"


def packages_the_code_asks_for() -> dict[str, str]:
    asked = {}
    for folder in SOURCES:
        for path in (ROOT / folder).rglob("*.py"):
            for name in ADVICE.findall(path.read_text(encoding="utf-8")):
                if name not in NOT_PACKAGES:
                    asked.setdefault(name, str(path.relative_to(ROOT)))
    return asked


def packages_setup_installs() -> set[str]:
    script = (ROOT / "scripts" / "setup.sh").read_text(encoding="utf-8")
    return set(re.findall(r"need\+=\(([a-z0-9.+-]+)\)", script))


def test_setup_installs_every_package_the_code_asks_for():
    asked = packages_the_code_asks_for()
    assert "mmdebstrap" in asked and "debootstrap" in asked, f"the scan found too little: {asked}"
    missing = {name: where for name, where in asked.items() if name not in packages_setup_installs()}
    assert not missing, f"scripts/setup.sh does not install these Debian packages the code asks for: {missing}"
