"""The docker CLI, as kind itself uses it: every call bounded, failures as one readable line."""
from __future__ import annotations

import os
import shutil
import subprocess


class DockerError(RuntimeError):
    pass


def run(args: list[str], timeout: float = 120, check: bool = True, stdin=None, env: dict | None = None) -> str:
    if shutil.which("docker") is None:
        raise DockerError("the docker CLI is missing (kind needs Docker or Podman)")
    try:
        proc = subprocess.run(["docker", *args], stdin=stdin, capture_output=True, timeout=timeout,
                              env={**os.environ, **(env or {})})
    except subprocess.TimeoutExpired:
        raise DockerError(f"`docker {' '.join(args[:3])} ...` did not finish within {timeout:.0f}s") from None
    out, err = proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace")
    if check and proc.returncode != 0:
        last = (err.strip() or out.strip() or "(no output)").splitlines()[-1][:400]
        raise DockerError(f"`docker {' '.join(args[:3])} ...` failed: {last}")
    return out


def require_daemon() -> None:
    try:
        run(["version", "--format", "{{.Server.Version}}"], timeout=20)
    except DockerError as exc:
        raise DockerError(f"no Docker daemon answers ({exc}); on the CI machine start it with `.ci/dockerd.sh`") from None


def image_exists(name: str) -> bool:
    try:
        run(["image", "inspect", "--format", "{{.Id}}", name], timeout=30)
        return True
    except DockerError:
        return False


def image_id(name: str) -> str:
    return run(["image", "inspect", "--format", "{{.Id}}", name], timeout=30).strip()


def image_label(name: str, label: str) -> str | None:
    if not image_exists(name):
        return None
    out = run(["image", "inspect", "--format", f'{{{{index .Config.Labels "{label}"}}}}', name], timeout=30).strip()
    return out if out and out != "<no value>" else None
