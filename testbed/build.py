"""`gitops-conformance testbed build`: every binary from its Go module, cached by name and version.

Each component gets a wrapper module rendered into the cache (never the work tree):
it requires the upstream module at the pinned version and carries the upstream
replace block, because `go install mod@version` refuses modules with replaces.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from . import locks, versions
from .versions import Component


class BuildError(RuntimeError):
    """One clear line: which component failed and why (the full log is in a file)."""


def _say(component: str, step: str, started: float) -> None:
    print(f"[{component}] {step} ({time.monotonic() - started:.0f}s)", flush=True)


def _go_env(comp: Component | None = None) -> dict[str, str]:
    env = dict(os.environ)
    if comp:
        env.update(comp.env)
    env.setdefault("CGO_ENABLED", "0")
    env["GOFLAGS"] = "-buildvcs=false"
    env["GOWORK"] = "off"
    return env


def _run(cmd: list[str], cwd: Path, log, comp: Component, step: str, started: float) -> str:
    """Run a go command, tee it into the log; on failure raise one readable line."""
    log.write(f"\n$ {' '.join(cmd)}\n")
    log.flush()
    done = threading.Event()

    def heartbeat() -> None:  # long go builds otherwise look hung
        while not done.wait(60):
            _say(comp.name, f"{step} still running", started)

    ticker = threading.Thread(target=heartbeat, daemon=True)
    ticker.start()
    try:
        proc = subprocess.run(cmd, cwd=cwd, env=_go_env(comp), capture_output=True, text=True)
    finally:
        done.set()
    log.write(proc.stdout + proc.stderr)
    log.flush()
    if proc.returncode != 0:
        raise BuildError(f"{comp.name}: {step} failed: {_cause(proc.stderr or proc.stdout)} (log: {log.name})")
    return proc.stdout


def _cause(output: str) -> str:
    """The one line of go's output that names what went wrong."""
    lines = [l.strip() for l in output.splitlines() if l.strip() and not l.startswith("go: downloading")]
    for l in lines:
        low = l.lower()
        if any(s in low for s in ("dial tcp", "no such host", "connection refused", "i/o timeout", "proxyconnect")):
            return f"module proxy unreachable: {l}"
    for l in lines:  # "go: mod@v: reading ...: 403" names the module; the next line only says why
        if l.startswith("go: ") or ".go:" in l:
            return l[:300]
    return (lines[-1] if lines else "no output")[:300]


def _local_replacement(comp: Component, old_path: str) -> str | None:
    """Where an upstream replace into its own checkout (./staging/...) should point instead."""
    rule = comp.local_replaces
    if isinstance(rule, str) and rule.startswith("published:"):
        return f"{old_path}@{rule.split(':', 1)[1]}"
    if isinstance(rule, dict) and old_path in rule:
        mod, ver = rule[old_path].split()
        return f"{mod}@{ver}"
    return None  # dropped: the upstream require points at a published version


def render_wrapper(comp: Component, workdir: Path, log, started: float) -> None:
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    own_main = versions.WRAPPERS_DIR / comp.name
    if "." in comp.binaries.values():
        for src in own_main.glob("*.go"):
            shutil.copy(src, workdir / src.name)
    go = "go"
    _run([go, "mod", "init", f"gitops-conformance.local/testbed/{comp.name}"], workdir, log, comp, "go mod init", started)
    edits = [f"-go={versions.go_version()}"]
    if comp.module:  # None: only our own main, nothing upstream to require
        edits.append(f"-require={comp.module}@{comp.version}")
    if comp.module and comp.replaces == "copy":
        _say(comp.name, f"reading replace block of {comp.module}@{comp.version}", started)
        out = _run([go, "mod", "download", "-json", f"{comp.module}@{comp.version}"], workdir, log, comp, "go mod download", started)
        upstream = json.loads(out)["GoMod"]
        parsed = json.loads(_run([go, "mod", "edit", "-json", upstream], workdir, log, comp, "parse upstream go.mod", started))
        for rep in parsed.get("Replace") or []:
            old, new = rep["Old"], rep["New"]
            old_spec = old["Path"] + (f"@{old['Version']}" if old.get("Version") else "")
            if old["Path"] in comp.replace_overrides or old["Path"] in comp.stub_modules:
                continue  # handled below
            if new.get("Version"):
                edits.append(f"-replace={old_spec}={new['Path']}@{new['Version']}")
            else:
                target = _local_replacement(comp, old["Path"])
                if target:
                    edits.append(f"-replace={old_spec}={target}")
                    # a staging module is required at v0.0.0 upstream; require the published one too
                    edits.append(f"-require={target}")
    for old_path, target in comp.replace_overrides.items():
        mod, ver = target.split()
        edits.append(f"-replace={old_path}={mod}@{ver}")
    for stub in comp.stub_modules:
        stub_dir = workdir / "stubs" / stub.replace("/", "_")
        stub_dir.mkdir(parents=True)
        (stub_dir / "go.mod").write_text(f"module {stub}\n\ngo 1.20\n")
        edits.append(f"-replace={stub}=./{stub_dir.relative_to(workdir)}")
    edits += [f"-require={r}" for r in comp.extra_requires]
    _run([go, "mod", "edit", *edits], workdir, log, comp, "write wrapper go.mod", started)


def add_module_files(comp: Component, workdir: Path, log, started: float) -> None:
    """Files the pinned module lacks (generated at release time, e.g. flux's embedded
    manifests): the module is copied into the wrapper's work dir (in the cache, never the work
    tree), the files are added there, and the wrapper replaces the module with that copy.
    (`go build -overlay` cannot do it: it refuses to replace files under GOMODCACHE.)"""
    if not comp.module_files:
        return
    out = _run(["go", "mod", "download", "-json", f"{comp.module}@{comp.version}"], workdir, log, comp,
               "go mod download (module copy)", started)
    copy = workdir / "upstream"
    shutil.copytree(Path(json.loads(out)["Dir"]), copy)
    for path in [copy, *copy.rglob("*")]:  # the module cache's files are read-only
        path.chmod(path.stat().st_mode | 0o200)
    for rel, content in comp.module_files.items():
        (copy / rel).parent.mkdir(parents=True, exist_ok=True)
        (copy / rel).write_text(content)
    _run(["go", "mod", "edit", f"-replace={comp.module}=./upstream"], workdir, log, comp, "replace with the copy", started)


def copy_assets(comp: Component, out_dir: Path) -> None:
    """Copy CRDs/stock config from the pinned module into the cache (read at `up`, never committed)."""
    stamp = out_dir / "assets" / ".assets.json"
    if not comp.assets or not comp.module or (stamp.exists() and json.loads(stamp.read_text()) == list(comp.assets)):
        return  # the same asset list was copied already
    proc = subprocess.run(["go", "mod", "download", "-json", f"{comp.module}@{comp.version}"],
                          env=_go_env(comp), capture_output=True, text=True, cwd=versions.cache_root())
    if proc.returncode != 0:
        raise BuildError(f"{comp.name}: cannot download {comp.module}@{comp.version} for its assets: {_cause(proc.stdout + proc.stderr)}")
    src = Path(json.loads(proc.stdout)["Dir"])
    tmp = out_dir / "assets.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for pattern in comp.assets:
        matches = sorted(src.glob(pattern))
        if not matches:
            raise BuildError(f"{comp.name}: asset {pattern!r} not found in {comp.module}@{comp.version}")
        for m in matches:
            dest = tmp / m.relative_to(src)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(m, dest)
    (tmp / ".assets.json").write_text(json.dumps(list(comp.assets)))
    shutil.rmtree(out_dir / "assets", ignore_errors=True)
    tmp.rename(out_dir / "assets")


LOCK_TIMEOUT = 3600.0  # another process's build of the same component finishes first


@contextlib.contextmanager
def _component_lock(comp: Component):
    """One build of a component at a time per cache: two processes (`setup.sh` and `testbed
    node-image`, or two checkouts) building the same component wrote the same `.partial` directory
    and wrapper module. The second waits, then finds the first one's build in the cache."""
    lock = versions.cache_root() / "locks" / f"build-{comp.key}.lock"
    with locks.exclusive(lock, timeout=LOCK_TIMEOUT,
                         waiting=f"[{comp.name}] waiting for another build of it using {versions.cache_root()} ...") as held:
        if not held:
            raise BuildError(f"{comp.name}: another build held {lock} for {LOCK_TIMEOUT:.0f}s")
        yield


def build_component(comp: Component, force: bool = False) -> bool:
    """Build one component; return False when the cache already had it (a no-op)."""
    with _component_lock(comp):
        return _build_component(comp, force)


def _build_component(comp: Component, force: bool) -> bool:
    out_dir = versions.bin_dir(comp)
    stamp = out_dir / ".built.json"
    if not force and stamp.exists() and all((out_dir / b).exists() for b in comp.binaries):
        copy_assets(comp, out_dir)
        print(f"[{comp.name}] {comp.version} cached in {out_dir}, nothing to do", flush=True)
        return False
    if shutil.which("go") is None:
        raise BuildError(f"{comp.name}: the Go toolchain is missing (no `go` on PATH); install Go {versions.go_version()}+")
    started = time.monotonic()
    logs = versions.cache_root() / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    workdir = versions.cache_root() / "wrappers" / comp.key
    with open(logs / f"build-{comp.key}.log", "w") as log:
        _say(comp.name, f"wrapper module for {comp.module or 'our own code'}@{comp.version}", started)
        render_wrapper(comp, workdir, log, started)
        add_module_files(comp, workdir, log, started)
        staging = out_dir.with_name(out_dir.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        ldflags = " ".join(["-s", "-w", *comp.ldflags])
        try:
            for binary, package in comp.binaries.items():
                _say(comp.name, f"go build {binary}", started)
                _run(["go", "build", "-mod=mod", "-trimpath", f"-ldflags={ldflags}", "-o", str(staging / binary), package],
                     workdir, log, comp, f"go build {binary}", started)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)  # never leave a half-built directory behind
            raise
    (staging / ".built.json").write_text(json.dumps({
        "component": comp.name, "module": comp.module, "version": comp.version,
        "binaries": sorted(comp.binaries), "built_at": _dt.datetime.now(_dt.timezone.utc).isoformat(),
        "build_seconds": round(time.monotonic() - started, 1),
    }, indent=2))
    shutil.rmtree(out_dir, ignore_errors=True)
    staging.rename(out_dir)
    copy_assets(comp, out_dir)
    _say(comp.name, f"built {', '.join(comp.binaries)} -> {out_dir}", started)
    return True


def build_all(names: list[str] | None = None, force: bool = False, engine: str = "argocd") -> int:
    """Build the named components, or (none named) those the local testbed needs; with
    engine="flux" also the Flux controllers (`needed_by: flux`), which an Argo CD testbed never uses."""
    comps = versions.load()
    wanted = {"testbed"} | ({"flux"} if engine == "flux" else set())
    selected = names or [n for n, c in comps.items() if c.needed_by in wanted]
    unknown = [n for n in selected if n not in comps]
    if unknown:
        print(f"unknown component(s): {', '.join(unknown)}; known: {', '.join(comps)}", file=sys.stderr)
        return 2
    failed = []
    for name in selected:
        try:
            build_component(comps[name], force=force)
        except BuildError as exc:
            print(f"build failed: {exc}", file=sys.stderr, flush=True)
            failed.append(name)
    if failed:
        print(f"{len(failed)} component(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(build_all(sys.argv[1:] or None))
