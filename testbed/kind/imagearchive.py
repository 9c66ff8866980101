"""Container images as `docker save` archives, written without a daemon or a registry.

The format (manifest.json + config + one tar per layer) is what `docker load`,
`ctr images import` and `kind load image-archive` all read. Layers are gzipped tars with
fixed owners and times, so the same inputs give the same image ID.
"""
from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import json
import shutil
import tarfile
from pathlib import Path

_CHUNK = 1 << 20


@dataclasses.dataclass(frozen=True)
class Layer:
    path: Path      # gzipped layer tar
    diff_id: str    # sha256 of the uncompressed tar, as the image config lists it


class _HashingWriter(io.RawIOBase):
    """A sink that hashes what the tar writer emits, then gzips it to the real file."""

    def __init__(self, gz):
        self.gz, self.sha = gz, hashlib.sha256()

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.sha.update(data)
        self.gz.write(data)
        return len(data)


def _dirs_of(path: str) -> list[str]:
    parts = path.strip("/").split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def files_layer(files: dict[str, Path | bytes], out: Path, modes: dict[str, int] | None = None) -> Layer:
    """A layer holding `files` (image path -> host file or content); parent directories 0755."""
    modes = modes or {}
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
        sink = _HashingWriter(gz)
        with tarfile.open(fileobj=sink, mode="w|", format=tarfile.GNU_FORMAT) as tar:
            seen: set[str] = set()
            for image_path in sorted(files):
                for d in _dirs_of(image_path):
                    if d not in seen:
                        seen.add(d)
                        info = tarfile.TarInfo(d)
                        info.type, info.mode = tarfile.DIRTYPE, 0o755
                        tar.addfile(info)
                src = files[image_path]
                data = src if isinstance(src, bytes) else None
                info = tarfile.TarInfo(image_path.strip("/"))
                info.size = len(data) if data is not None else src.stat().st_size
                info.mode = modes.get(image_path, 0o755 if data is None else 0o644)
                if data is not None:
                    tar.addfile(info, io.BytesIO(data))
                else:
                    with open(src, "rb") as f:
                        tar.addfile(info, f)
    return Layer(out, f"sha256:{sink.sha.hexdigest()}")


def tar_layer(src_tar: Path, out: Path) -> Layer:
    """A layer from an existing uncompressed tar (e.g. a Debian root filesystem)."""
    sha = hashlib.sha256()
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(src_tar, "rb") as src, open(out, "wb") as raw, \
            gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, compresslevel=1) as gz:
        while chunk := src.read(_CHUNK):
            sha.update(chunk)
            gz.write(chunk)
    return Layer(out, f"sha256:{sha.hexdigest()}")


def write_archive(out: Path, tags: list[str], layers: list[Layer], *, entrypoint: list[str] | None = None,
                  cmd: list[str] | None = None, env: list[str] | None = None, user: str | None = None,
                  workdir: str | None = None, labels: dict[str, str] | None = None) -> str:
    """Write the archive; return the image ID (sha256 of its config)."""
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": "1970-01-01T00:00:00Z",
        "config": {k: v for k, v in {
            "Entrypoint": entrypoint, "Cmd": cmd,
            "Env": env or ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "User": user, "WorkingDir": workdir, "Labels": labels,
        }.items() if v},
        "rootfs": {"type": "layers", "diff_ids": [l.diff_id for l in layers]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "gitops-conformance testbed/kind"}
                    for _ in layers],
    }
    config_bytes = json.dumps(config, sort_keys=True).encode()
    image_id = hashlib.sha256(config_bytes).hexdigest()
    manifest = [{"Config": f"{image_id}.json", "RepoTags": tags,
                 "Layers": [f"{l.diff_id.split(':')[1]}/layer.tar" for l in layers]}]
    partial = out.with_name(out.name + ".partial")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(partial, "w", format=tarfile.GNU_FORMAT) as tar:
        def add(name: str, data: bytes | None = None, path: Path | None = None) -> None:
            info = tarfile.TarInfo(name)
            info.mode = 0o644
            info.size = len(data) if data is not None else path.stat().st_size
            if data is not None:
                tar.addfile(info, io.BytesIO(data))
            else:
                with open(path, "rb") as f:
                    tar.addfile(info, f)
        add(f"{image_id}.json", config_bytes)
        for layer, name in zip(layers, manifest[0]["Layers"]):
            add(name, path=layer.path)
        add("manifest.json", json.dumps(manifest).encode())
        add("repositories", json.dumps({t.rsplit(":", 1)[0]: {t.rsplit(":", 1)[1]: image_id} for t in tags}).encode())
    shutil.move(partial, out)
    return f"sha256:{image_id}"
