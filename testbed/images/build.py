"""`gitops-conformance testbed images`: every image the suite needs on a cluster, as archives.

Per spec (testbed/images/<name>.yaml): a Debian layer (debian.py, cached by its inputs) and a
layer of files (binaries from `testbed build`, the repository's own files, myapp's Go build),
written with the runtime config as one archive per image (oci.py). Everything lives in
${GITOPS_CONFORMANCE_CACHE:-~/.cache/gitops-conformance}/images:

    archives/<name>_<tag>.tar   the image archives (`kind load image-archive` takes them)
    archives/<...>.tar.json     what went in (inputs key) and what came out (digests)
    layers/                     Debian layers and file layers, reused across builds
    debs/                       downloaded .deb files
    go/                         myapp's binaries, keyed by the hash of its source
    index.json                  image name -> archive, for the availability check
    logs/                       one log per image
"""
from __future__ import annotations

import contextlib
import dataclasses
import glob
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from gitops_conformance.testbed import locks, versions

from . import debian, oci
from .spec import REPO_ROOT, ImageSpec, SpecError, all_specs

FILES_LAYER_FORMAT = 1


class ImageBuildError(RuntimeError):
    """One clear line: which image failed and why."""


def cache_dir() -> Path:
    """<cache>/images, or $GITOPS_CONFORMANCE_IMAGES_CACHE (the benchmark's cold builds use a fresh one)."""
    override = os.environ.get("GITOPS_CONFORMANCE_IMAGES_CACHE")
    return Path(override) if override else versions.cache_root() / "images"


def _safe(ref: str) -> str:
    return ref.replace("/", "_").replace(":", "_").replace("@", "_")


def archive_path(ref: str) -> Path:
    return cache_dir() / "archives" / f"{_safe(oci.normalize_ref(ref))}.tar"


def _index_path() -> Path:
    return cache_dir() / "index.json"


def built_archives() -> dict[str, Path]:
    """Image name -> archive, for every image `testbed images` has built (archive present)."""
    try:
        data = json.loads(_index_path().read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    return {ref: Path(p) for ref, p in data.items() if Path(p).exists()}


def _record(refs: list[str], archive: Path) -> None:
    path = _index_path()
    data = json.loads(path.read_text()) if path.exists() else {}
    data.update({r: str(archive) for r in refs})
    tmp = path.with_suffix(".partial")
    tmp.write_text(json.dumps(dict(sorted(data.items())), indent=1))
    tmp.rename(path)


def spec_for(ref: str) -> str | None:
    """The spec that builds `ref` (None if none does)."""
    ref = oci.normalize_ref(ref)
    for name, spec in all_specs().items():
        try:
            if any(ref in [oci.normalize_ref(n) for n in names] for names, _ in spec.variants()):
                return name
        except SpecError:
            continue
    return None


# ---- the files layer -------------------------------------------------------------------------

def _go_build(spec: ImageSpec, log) -> Path:
    """Build the spec's Go program (static, trimmed), cached by the hash of its sources."""
    src = REPO_ROOT / spec.go
    files = sorted(p for p in src.rglob("*") if p.is_file() and p.suffix in (".go", ".mod", ".sum") and not p.name.endswith("_test.go"))
    h = hashlib.sha256()
    for p in files:
        h.update(p.relative_to(src).as_posix().encode() + b"\0" + p.read_bytes())
    out_dir = cache_dir() / "go" / f"{spec.name}-{h.hexdigest()[:16]}"
    binary = out_dir / spec.name
    if binary.exists():
        return binary
    out_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-buildvcs=false", "GOWORK": "off"}
    cmd = ["go", "build", "-trimpath", "-ldflags=-s -w", "-o", str(binary.with_suffix(".partial")), "."]
    log.write(f"\n$ (cd {src}) {' '.join(cmd)}\n")
    log.flush()
    proc = subprocess.run(cmd, cwd=src, env=env, capture_output=True, text=True, timeout=600)
    log.write(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise ImageBuildError(f"{spec.name}: go build failed: {(proc.stderr.strip().splitlines() or ['?'])[-1]} (log: {log.name})")
    binary.with_suffix(".partial").rename(binary)
    return binary


def file_entries(spec: ImageSpec, log) -> list[oci.Entry]:
    """The spec's files as layer entries; a missing input is an error naming how to make it."""
    entries: list[oci.Entry] = []
    for f in spec.files:
        uid, gid = f.owner
        if f.symlink:
            entries.append(oci.Entry(f.path, "symlink", target=f.symlink, uid=uid, gid=gid))
            continue
        if f.repo:
            sources = [Path(p) for p in sorted(glob.glob(str(REPO_ROOT / f.repo)))]
            if not sources:
                raise ImageBuildError(f"{spec.name}: {f.repo} matches no file in the repository")
        elif f.binary:
            try:
                sources = [versions.binary_path(f.binary)]
            except KeyError as exc:
                raise ImageBuildError(f"{spec.name}: {exc}") from None
            if not sources[0].exists():
                comp = next(c for c in versions.load().values() if f.binary in c.binaries)
                raise ImageBuildError(f"{spec.name}: {sources[0]} is missing: run `gitops-conformance testbed build {comp.name}`")
        elif f.asset:
            comp, rel = f.asset.split(":", 1)
            sources = [versions.asset_dir(comp) / rel]
            if not sources[0].exists():
                raise ImageBuildError(f"{spec.name}: {sources[0]} is missing: add {rel!r} to the assets of {comp} in "
                                      f"testbed/versions.yaml and run `gitops-conformance testbed build {comp}`")
        else:
            sources = [_go_build(spec, log)]
        for src in sources:
            dest = f.path + src.name if f.path.endswith("/") else f.path
            entries.append(oci.Entry(dest, "file", src=src, mode=f.mode, uid=uid, gid=gid))
    return entries


def _entries_key(entries: list[oci.Entry]) -> str:
    """Identity of a files layer: paths, modes, owners and the content of every file."""
    h = hashlib.sha256(f"format {FILES_LAYER_FORMAT}\n".encode())
    for e in sorted(entries, key=lambda e: e.path):
        h.update(f"{e.path}\0{e.kind}\0{e.target}\0{e.mode}\0{e.uid}\0{e.gid}\0".encode())
        if e.src is not None:
            h.update(oci.file_digest(e.src).encode())
    return h.hexdigest()[:16]


def files_layer(spec: ImageSpec, entries: list[oci.Entry]) -> oci.Blob:
    out = cache_dir() / "layers" / f"files-{spec.name}-{_entries_key(entries)}.tar"
    meta = out.with_suffix(".json")
    if out.exists() and meta.exists():
        m = json.loads(meta.read_text())
        return oci.Blob(oci.MEDIA_LAYER, m["digest"], m["size"], path=out)
    out.parent.mkdir(parents=True, exist_ok=True)
    blob = oci.write_layer(entries, out)
    meta.write_text(json.dumps({"digest": blob.digest, "size": blob.size}))
    return blob


def needed_components(spec: ImageSpec) -> list[str]:
    """The `testbed build` components a spec takes binaries, assets or names from."""
    comps = versions.load()
    out = [c.name for c in comps.values() for f in spec.files if f.binary and f.binary in c.binaries]
    out += [f.asset.split(":", 1)[0] for f in spec.files if f.asset]
    out += [n["from_manifest"]["component"] for n in spec.names if "from_manifest" in n]
    return list(dict.fromkeys(out))


def ensure_components(spec: ImageSpec) -> None:
    """Build (or find cached) what the spec needs from `testbed build`: a no-op when cached."""
    from gitops_conformance.testbed import build as binaries

    comps = versions.load()
    for name in needed_components(spec):
        try:
            binaries.build_component(comps[name])
        except binaries.BuildError as exc:
            raise ImageBuildError(f"{spec.name}: needs `testbed build {name}`, which failed: {exc}") from None


# ---- one spec --------------------------------------------------------------------------------

def build_spec(spec: ImageSpec, force: bool = False) -> list[dict]:
    """Build every image of one spec; returns one result per image (cached ones included)."""
    logs = cache_dir() / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    results = []
    ensure_components(spec)
    with open(logs / f"image-{spec.name}.log", "a") as log:
        try:
            variants = spec.variants()
        except SpecError as exc:
            raise ImageBuildError(str(exc)) from None
        entries = file_entries(spec, log)
        base_layers = [debian.build_layer(spec, cache_dir(), log)] if spec.base == "debian" else []
        files = files_layer(spec, entries) if entries else None
        layers = base_layers + ([files] if files else [])
        for names, extra_env in variants:
            config = dataclasses.replace(spec.config, env={**spec.config.env, **extra_env})
            key = hashlib.sha256(json.dumps({"names": names, "layers": [l.digest for l in layers],
                                             "config": config.as_oci()}, sort_keys=True).encode()).hexdigest()[:16]
            archive = archive_path(names[0])
            stamp = archive.with_name(archive.name + ".json")
            if not force and archive.exists() and stamp.exists() and json.loads(stamp.read_text()).get("key") == key:
                result = json.loads(stamp.read_text()) | {"cached": True}
            else:
                info = oci.write_archive(archive, names, layers, config,
                                         history=[f"mmdebstrap {spec.name}: {' '.join(spec.packages)}"] * len(base_layers)
                                         + ([f"files of {spec.source.name}"] if files else []))
                result = {"key": key, "spec": spec.name, "archive": str(archive), **info}
                stamp.write_text(json.dumps(result, indent=1))
                result = result | {"cached": False}
            _record(result["refs"], archive)
            results.append(result)
    for r in results:
        state = "cached" if r["cached"] else "built"
        print(f"[{spec.name}] {state} {', '.join(r['refs'])} -> {r['archive']} "
              f"({r['size'] / 1e6:.0f} MB, {time.monotonic() - started:.0f}s)", flush=True)
    return results


def prune_layers() -> list[Path]:
    """Remove cached layers no archive uses any more (e.g. the Debian layer of a package list
    that changed). Archives of other versions keep theirs: the cache is keyed by version."""
    used = set()
    for stamp in (cache_dir() / "archives").glob("*.tar.json"):
        used.update(json.loads(stamp.read_text()).get("layers", []))
    removed = []
    for meta in (cache_dir() / "layers").glob("*.json"):
        if json.loads(meta.read_text()).get("digest") not in used:
            for p in (meta.with_suffix(".tar"), meta):
                p.unlink(missing_ok=True)
            removed.append(meta.with_suffix(".tar"))
    return removed


LOCK_TIMEOUT = 3600  # another checkout's build of the same cache finishes first


@contextlib.contextmanager
def _cache_lock():
    """One image build at a time per cache: builds from several checkouts share it, and a full
    build prunes layers that a concurrent build may have just written."""
    lock = cache_dir() / "build.lock"
    with locks.exclusive(lock, timeout=LOCK_TIMEOUT, tell_every=2 * 60,
                         waiting=f"waiting for another image build using {cache_dir()} ...") as held:
        if not held:
            raise ImageBuildError(f"another image build held {lock} for {LOCK_TIMEOUT}s")
        yield


def build_images(names: list[str] | None = None, force: bool = False,
                 engine: str = "argocd") -> tuple[list[dict], list[str]]:
    """Build the named specs (default: every spec for `engine`'s runs: its own and the common
    ones). Returns (results, failures as readable lines)."""
    try:
        with _cache_lock():
            return _build_images(names, force, engine)
    except ImageBuildError as exc:  # the lock's bounded wait ran out
        return [], [str(exc)]


def specs_for_engine(engine: str) -> list[str]:
    """The specs a run of `engine` uses: the common ones and the engine's own."""
    return [name for name, spec in all_specs().items() if spec.engine in ("", engine)]


def _build_images(names: list[str] | None, force: bool, engine: str) -> tuple[list[dict], list[str]]:
    specs = all_specs()
    unknown = [n for n in names or [] if n not in specs]
    if unknown:
        return [], [f"unknown image spec(s): {', '.join(unknown)}; known: {', '.join(specs)}"]
    results, failures = [], []
    for name in names or specs_for_engine(engine):
        try:
            results += build_spec(specs[name], force=force)
        except (ImageBuildError, debian.DebianError, SpecError, OSError) as exc:
            failures.append(f"{name}: {exc}")
            print(f"[{name}] FAILED: {exc}", file=sys.stderr, flush=True)
    if not failures and not names:  # a full build knows every layer still in use
        for path in prune_layers():
            print(f"removed unused layer {path.name}", flush=True)
    return results, failures
