"""Image specs: testbed/images/<name>.yaml, one per image (or per image family, for myapp).

A spec says what an image is made of, in terms both builders understand: a Debian base with
packages and set-up commands (`run`, executed right after the packages, before any file is
added), then files, then the runtime config. Files come from the repository (`repo`, a path or
a glob), from `gitops-conformance testbed build` (`binary`, `asset`), from a Go program of the
repository (`go_binary`), or are symlinks. Names come from the pinned manifests
(`from_manifest`: the exact name:tag the manifest gives) or are written out (`ref`, where
{component} is that component's pinned version, {component-bare} the same without its "v", and
{project} the project's version). `engine: argocd|flux` builds a spec only for that engine's runs.
"""
from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import yaml

from gitops_conformance.testbed import versions

from . import oci

SPEC_DIR = Path(__file__).resolve().parent
REPO_ROOT = SPEC_DIR.parent.parent
DEBIAN_SUITE = "bookworm"   # the Debian release every Debian-based image is built from


class SpecError(ValueError):
    pass


@dataclasses.dataclass(frozen=True)
class FileSpec:
    path: str
    repo: str = ""
    binary: str = ""
    asset: str = ""
    go_binary: str = ""
    symlink: str = ""
    mode: int = 0o644
    owner: tuple[int, int] = (0, 0)

    @property
    def source_kind(self) -> str:
        return next(k for k in ("repo", "binary", "asset", "go_binary", "symlink") if getattr(self, k))


@dataclasses.dataclass(frozen=True)
class ImageSpec:
    name: str                  # the spec's file name (argocd, peers, myapp, ...)
    description: str
    base: str                  # debian | scratch
    packages: tuple[str, ...]
    run: tuple[str, ...]
    files: tuple[FileSpec, ...]
    config: oci.ImageConfig
    dpkg_excludes: tuple[str, ...] = ()   # extra paths dpkg leaves out (beyond the slim defaults)
    names: tuple[dict, ...] = ()
    go: str = ""               # repo dir of a Go program built for go_binary files
    repository: str = ""       # myapp: one image per tag in this repository
    tags: dict = dataclasses.field(default_factory=dict)
    source: Path | None = None
    engine: str = ""           # argocd | flux: built only for that engine's runs; "": for every run

    def variants(self) -> list[tuple[list[str], dict[str, str]]]:
        """(names, extra env) of every image this spec makes: one, or one per tag."""
        if self.tags:
            return [([f"{self.repository}:{tag}"], {"MYAPP_VERSION": tag, **{k: str(v) for k, v in (env or {}).items()}})
                    for tag, env in self.tags.items()]
        return [(resolve_names(self), {})]


def _file(raw: dict, where: Path) -> FileSpec:
    kinds = [k for k in ("repo", "binary", "asset", "go_binary", "symlink") if raw.get(k)]
    if len(kinds) != 1 or "path" not in raw:
        raise SpecError(f"{where}: a file needs `path` and exactly one of repo/binary/asset/go_binary/symlink: {raw}")
    owner = tuple(int(x) for x in str(raw.get("owner", "0:0")).split(":"))
    return FileSpec(path=raw["path"], repo=raw.get("repo", ""), binary=raw.get("binary", ""),
                    asset=raw.get("asset", ""), go_binary=raw.get("go_binary", ""), symlink=raw.get("symlink", ""),
                    mode=int(str(raw.get("mode", "0644")), 8), owner=owner)  # type: ignore[arg-type]


def load(path: Path) -> ImageSpec:
    raw = yaml.safe_load(path.read_text())
    cfg = raw.get("config") or {}
    base = raw.get("base", "debian")
    if base not in ("debian", "scratch"):
        raise SpecError(f"{path}: base must be debian or scratch, not {base!r}")
    if base == "scratch" and (raw.get("packages") or raw.get("run")):
        raise SpecError(f"{path}: a scratch image has no packages and runs nothing")
    return ImageSpec(
        name=path.stem, description=raw.get("description", ""), base=base,
        packages=tuple(raw.get("packages") or ()), run=tuple(raw.get("run") or ()),
        dpkg_excludes=tuple(raw.get("dpkg_excludes") or ()),
        files=tuple(_file(f, path) for f in raw.get("files") or ()),
        config=oci.ImageConfig(entrypoint=cfg.get("entrypoint"), cmd=cfg.get("cmd"),
                               env={k: str(v) for k, v in (cfg.get("env") or {}).items()},
                               user=str(cfg.get("user", "")), workdir=cfg.get("workdir", ""),
                               exposed_ports=[str(p) for p in cfg.get("exposed_ports") or ()]),
        names=tuple(raw.get("names") or ()), go=raw.get("go", ""), repository=raw.get("repository", ""),
        tags=dict(raw.get("tags") or {}), source=path, engine=raw.get("engine", ""))


@functools.lru_cache(maxsize=None)
def all_specs() -> dict[str, ImageSpec]:
    return {p.stem: load(p) for p in sorted(SPEC_DIR.glob("*.yaml"))}


def project_version() -> str:
    from gitops_conformance import __version__
    return __version__


def manifest_path(component: str) -> Path:
    """The pinned release's own install.yaml, as `testbed build` copied it from the module."""
    return versions.asset_dir(component) / "manifests" / "install.yaml"


def resolve_names(spec: ImageSpec) -> list[str]:
    """The image's names: the manifests' exact name:tag, then the written-out refs."""
    fields = {name: comp.version for name, comp in versions.load().items()}
    # {NAME-bare}: the version without its "v" (Flagger tags its images 1.36.1, not v1.36.1)
    fields.update({f"{name}-bare": version.removeprefix("v") for name, version in list(fields.items())})
    fields["project"] = project_version()
    out: list[str] = []
    for entry in spec.names:
        if "ref" in entry:
            out.append(entry["ref"].format_map(fields))
            continue
        src = entry["from_manifest"]
        from .manifests import images_in_files  # local: manifests imports this module's helpers
        path = manifest_path(src["component"])
        if not path.exists():
            raise SpecError(f"{spec.name}: {path} is missing: run `gitops-conformance testbed build {src['component']}` first")
        wanted = oci.normalize_ref(src["repository"] + ":x").rsplit(":", 1)[0]
        found = sorted({r for r in images_in_files([path]) if oci.split_ref(r)[0] == wanted})
        if not found:
            raise SpecError(f"{spec.name}: {path} names no image of {src['repository']}")
        out.extend(found)
    return [oci.normalize_ref(n) for n in dict.fromkeys(out)]
