"""Reads testbed/versions.yaml, the single place where pinned versions live."""
from __future__ import annotations

import dataclasses
import functools
import os
from pathlib import Path

import yaml

VERSIONS_FILE = Path(__file__).with_name("versions.yaml")
WRAPPERS_DIR = Path(__file__).with_name("wrappers")


@dataclasses.dataclass(frozen=True)
class Component:
    name: str
    module: str | None          # None: every binary is our own main (testbed/wrappers/<name>/)
    version: str
    binaries: dict[str, str]
    replaces: str = "copy"
    local_replaces: object = None
    ldflags: tuple[str, ...] = ()
    stub_modules: tuple[str, ...] = ()
    extra_requires: tuple[str, ...] = ()
    replace_overrides: dict[str, str] = dataclasses.field(default_factory=dict)
    assets: tuple[str, ...] = ()
    env: dict[str, str] = dataclasses.field(default_factory=dict)
    module_files: dict[str, str] = dataclasses.field(default_factory=dict)  # path in the module -> content to add
    needed_by: str = "testbed"  # "kind": built only for the kind node image

    @property
    def key(self) -> str:
        """Cache key: a new version means a new directory, never an overwrite."""
        return f"{self.name}-{self.version}"


@functools.lru_cache(maxsize=None)
def load(path: Path = VERSIONS_FILE) -> dict[str, Component]:
    data = yaml.safe_load(path.read_text())
    return {
        name: Component(
            name=name,
            module=spec.get("module"),
            version=spec["version"],
            binaries=dict(spec["binaries"]),
            replaces=spec.get("replaces", "copy"),
            local_replaces=spec.get("local_replaces"),
            ldflags=tuple(spec.get("ldflags") or ()),
            stub_modules=tuple(spec.get("stub_modules") or ()),
            extra_requires=tuple(spec.get("extra_requires") or ()),
            replace_overrides=dict(spec.get("replace_overrides") or {}),
            assets=tuple(spec.get("assets") or ()),
            env={k: str(v) for k, v in (spec.get("env") or {}).items()},
            module_files={k: str(v) for k, v in (spec.get("module_files") or {}).items()},
            needed_by=spec.get("needed_by", "testbed"),
        )
        for name, spec in data["components"].items()
    }


def go_version(path: Path = VERSIONS_FILE) -> str:
    return str(yaml.safe_load(path.read_text())["go"])


def debian_suite(path: Path = VERSIONS_FILE) -> str:
    """The Debian release kind's node image and userland images are bootstrapped from."""
    return str(yaml.safe_load(path.read_text())["debian"]["suite"])


def cache_root() -> Path:
    """Built binaries and wrapper work dirs live here, outside the work tree."""
    base = os.environ.get("GITOPS_CONFORMANCE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "gitops-conformance"
    )
    return Path(base)


def bin_dir(component: Component) -> Path:
    return cache_root() / "bin" / component.key


def binary_path(binary: str) -> Path:
    """Path of a built binary by its output name, e.g. binary_path('kube-apiserver')."""
    for comp in load().values():
        if binary in comp.binaries:
            return bin_dir(comp) / binary
    raise KeyError(f"no component builds a binary named {binary!r}")


def asset_dir(name: str) -> Path:
    """Files copied from a component's pinned module (CRDs, stock stages), see `assets`."""
    return bin_dir(load()[name]) / "assets"
