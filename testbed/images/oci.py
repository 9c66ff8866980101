"""Image archives written by hand: layer tars, an OCI image config and manifest, and one tar
that is at the same time an OCI image layout (oci-layout, index.json, blobs/sha256/...) and a
`docker save` archive (manifest.json) -- the shape `docker save` itself writes since Docker 25.

containerd's importer (what `kind load image-archive` and `ctr images import` run) prefers the
OCI layout and names the image from the index's `io.containerd.image.name` annotation; Docker
20.10's `docker load` and skopeo's `docker-archive:` read manifest.json. Layers stay
uncompressed (no CPU spent on gzip; containerd compresses on import if it wants to), so a
layer's digest is also its diff_id.

Everything is deterministic: fixed mtimes, sorted entries, numeric owners, no user names,
so the same inputs give the same digests (a warm build can be checked byte for byte).
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import shutil
import tarfile
from pathlib import Path
from typing import Iterable

EPOCH = int(os.environ.get("SOURCE_DATE_EPOCH", "0"))
MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER = "application/vnd.oci.image.layer.v1.tar"
ANN_CONTAINERD_NAME = "io.containerd.image.name"
ANN_REF_NAME = "org.opencontainers.image.ref.name"
_CHUNK = 1 << 20


class ArchiveError(RuntimeError):
    """An archive that is not what it claims (bad digest, missing blob, unknown layout)."""


# ---- image references ------------------------------------------------------------------------

def normalize_ref(ref: str) -> str:
    """The fully qualified name containerd stores (`redis:7` -> `docker.io/library/redis:7`).
    A reference with a digest (`@sha256:`) keeps it; one without a tag gets `:latest`."""
    name, _, digest = ref.partition("@")
    first, slash, _ = name.partition("/")
    if not slash or ("." not in first and ":" not in first and first != "localhost"):
        name = "docker.io/" + (name if slash else "library/" + name)
    elif first == "docker.io" and name.count("/") == 1:
        name = name.replace("docker.io/", "docker.io/library/", 1)
    if ":" not in name.rsplit("/", 1)[-1] and not digest:
        name += ":latest"
    return f"{name}@{digest}" if digest else name


def split_ref(ref: str) -> tuple[str, str]:
    """(repository, tag) of a normalized tagged reference."""
    repo, _, tag = normalize_ref(ref).rpartition(":")
    return repo, tag


# ---- layers ----------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Entry:
    """One member of a layer. kind: file (from `src` or `data`), dir, symlink (`target`)."""

    path: str                    # absolute path inside the image
    kind: str = "file"
    src: Path | None = None
    data: bytes | None = None
    target: str = ""
    mode: int = 0o644
    uid: int = 0
    gid: int = 0


def _tarinfo(e: Entry) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(e.path.lstrip("/"))
    ti.mtime, ti.uid, ti.gid, ti.uname, ti.gname, ti.mode = EPOCH, e.uid, e.gid, "", "", e.mode
    if e.kind == "dir":
        ti.type = tarfile.DIRTYPE
    elif e.kind == "symlink":
        ti.type, ti.linkname, ti.mode = tarfile.SYMTYPE, e.target, 0o777
    elif e.kind == "file":
        ti.size = e.src.stat().st_size if e.src is not None else len(e.data or b"")
    else:
        raise ValueError(f"unknown entry kind {e.kind!r} for {e.path}")
    return ti


def write_layer(entries: Iterable[Entry], out: Path) -> "Blob":
    """A deterministic uncompressed layer tar (entries sorted by path; parents first)."""
    tmp = out.with_name(out.name + ".partial")
    with open(tmp, "wb") as raw:
        with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for e in sorted(entries, key=lambda e: e.path):
                ti = _tarinfo(e)
                if e.kind != "file":
                    tar.addfile(ti)
                elif e.src is not None:
                    with open(e.src, "rb") as fh:
                        tar.addfile(ti, fh)
                else:
                    tar.addfile(ti, io.BytesIO(e.data or b""))
    tmp.rename(out)
    return Blob.of_file(out, MEDIA_LAYER)


@dataclasses.dataclass(frozen=True)
class Blob:
    media_type: str
    digest: str       # sha256:<hex>
    size: int
    path: Path | None = None
    data: bytes | None = None

    @classmethod
    def of_file(cls, path: Path, media_type: str) -> "Blob":
        return cls(media_type, file_digest(path), path.stat().st_size, path=path)

    @classmethod
    def of_json(cls, doc: dict, media_type: str) -> "Blob":
        data = json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()
        return cls(media_type, "sha256:" + hashlib.sha256(data).hexdigest(), len(data), data=data)

    @property
    def name(self) -> str:
        return "blobs/sha256/" + self.digest.split(":", 1)[1]

    def descriptor(self, **extra) -> dict:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size, **extra}


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


# ---- the image -------------------------------------------------------------------------------

@dataclasses.dataclass
class ImageConfig:
    """The runtime part of an OCI image config (what a Containerfile's ENV/USER/... set)."""

    entrypoint: list[str] | None = None
    cmd: list[str] | None = None
    env: dict[str, str] = dataclasses.field(default_factory=dict)
    user: str = ""
    workdir: str = ""
    exposed_ports: list[str] = dataclasses.field(default_factory=list)
    labels: dict[str, str] = dataclasses.field(default_factory=dict)
    stop_signal: str = ""

    def as_oci(self) -> dict:
        env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", **self.env}
        cfg: dict = {"Env": [f"{k}={v}" for k, v in env.items()]}
        for key, value in (("Entrypoint", self.entrypoint), ("Cmd", self.cmd), ("User", self.user),
                           ("WorkingDir", self.workdir), ("Labels", self.labels), ("StopSignal", self.stop_signal)):
            if value:
                cfg[key] = value
        if self.exposed_ports:
            cfg["ExposedPorts"] = {p if "/" in p else f"{p}/tcp": {} for p in self.exposed_ports}
        return cfg


def write_archive(out: Path, refs: list[str], layers: list[Blob], config: ImageConfig,
                  history: list[str] | None = None) -> dict:
    """Write the image as a docker-archive + OCI-layout tar under every name in `refs`.
    Returns {"refs", "manifest_digest", "config_digest", "layers", "size"}."""
    if not refs:
        raise ValueError("an image needs at least one name")
    names = [normalize_ref(r) for r in refs]
    created = "1970-01-01T00:00:00Z" if EPOCH == 0 else _rfc3339(EPOCH)
    cfg_doc = {
        "architecture": "amd64", "os": "linux", "created": created, "config": config.as_oci(),
        "rootfs": {"type": "layers", "diff_ids": [l.digest for l in layers]},
        "history": [{"created": created, "created_by": h} for h in (history or ["gitops-conformance testbed images"] * len(layers))],
    }
    cfg = Blob.of_json(cfg_doc, MEDIA_CONFIG)
    manifest = Blob.of_json({"schemaVersion": 2, "mediaType": MEDIA_MANIFEST, "config": cfg.descriptor(),
                             "layers": [l.descriptor() for l in layers]}, MEDIA_MANIFEST)
    index = {"schemaVersion": 2, "mediaType": MEDIA_INDEX, "manifests": [
        manifest.descriptor(annotations={ANN_CONTAINERD_NAME: n, ANN_REF_NAME: split_ref(n)[1]},
                            platform={"architecture": "amd64", "os": "linux"}) for n in names]}
    docker_manifest = [{"Config": cfg.name, "RepoTags": names, "Layers": [l.name for l in layers]}]
    tmp = out.with_name(out.name + ".partial")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        _add_bytes(tar, "oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode())
        _add_bytes(tar, "index.json", json.dumps(index, indent=1).encode())
        _add_bytes(tar, "manifest.json", json.dumps(docker_manifest, indent=1).encode())
        for d in ("blobs", "blobs/sha256"):
            ti = tarfile.TarInfo(d)
            ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, 0o755, EPOCH
            tar.addfile(ti)
        seen: set[str] = set()
        for blob in [cfg, manifest, *layers]:
            if blob.digest in seen:
                continue
            seen.add(blob.digest)
            if blob.data is not None:
                _add_bytes(tar, blob.name, blob.data)
            else:
                ti = tarfile.TarInfo(blob.name)
                ti.size, ti.mode, ti.mtime = blob.size, 0o644, EPOCH
                with open(blob.path, "rb") as fh:
                    tar.addfile(ti, fh)
    tmp.rename(out)
    return {"refs": names, "manifest_digest": manifest.digest, "config_digest": cfg.digest,
            "layers": [l.digest for l in layers], "size": out.stat().st_size}


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    ti = tarfile.TarInfo(name)
    ti.size, ti.mode, ti.mtime = len(data), 0o644, EPOCH
    tar.addfile(ti, io.BytesIO(data))


def _rfc3339(epoch: int) -> str:
    import datetime as _dt
    return _dt.datetime.fromtimestamp(epoch, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---- reading an archive back -----------------------------------------------------------------

def verify_archive(path: Path) -> dict:
    """Check an archive end to end: every blob's sha256 matches its name, the index's and
    manifest.json's names agree, the manifest's descriptors (digest, size) point at blobs that
    exist, and the config's diff_ids are the layers' digests. Returns what read_index returns
    plus the config. Raises ArchiveError naming the first defect."""
    digests: dict[str, tuple[str, int]] = {}
    small: dict[str, bytes] = {}
    with tarfile.open(path, "r") as tar:
        for m in tar:
            if not m.isfile():
                continue
            fh = tar.extractfile(m)
            h = hashlib.sha256()
            keep = m.size < (1 << 20)
            buf = bytearray()
            while chunk := fh.read(_CHUNK):
                h.update(chunk)
                if keep:
                    buf += chunk
            digests[m.name] = ("sha256:" + h.hexdigest(), m.size)
            if keep:
                small[m.name] = bytes(buf)
    for name, (digest, _) in digests.items():
        if name.startswith("blobs/sha256/") and digest != "sha256:" + name.rsplit("/", 1)[1]:
            raise ArchiveError(f"{path}: blob {name} has digest {digest}")
    for required in ("oci-layout", "index.json", "manifest.json"):
        if required not in small:
            raise ArchiveError(f"{path}: {required} is missing")

    def blob(desc: dict) -> bytes | None:
        name = "blobs/sha256/" + desc["digest"].split(":", 1)[1]
        if name not in digests:
            raise ArchiveError(f"{path}: {desc['mediaType']} {desc['digest']} is not in the archive")
        if digests[name][1] != desc["size"]:
            raise ArchiveError(f"{path}: {name} is {digests[name][1]} bytes, its descriptor says {desc['size']}")
        return small.get(name)

    index = json.loads(small["index.json"])
    docker = json.loads(small["manifest.json"])
    names = [m["annotations"][ANN_CONTAINERD_NAME] for m in index["manifests"]]
    if sorted(names) != sorted(n for d in docker for n in d["RepoTags"]):
        raise ArchiveError(f"{path}: index.json names {names}, manifest.json names {[d['RepoTags'] for d in docker]}")
    manifest_digests = {m["digest"] for m in index["manifests"]}
    if len(manifest_digests) != 1:
        raise ArchiveError(f"{path}: expected one image, the index has {len(manifest_digests)}")
    manifest = json.loads(blob(index["manifests"][0]))
    config = json.loads(blob(manifest["config"]))
    layer_digests = [l["digest"] for l in manifest["layers"]]
    for l in manifest["layers"]:
        blob(l)
    if config["rootfs"]["diff_ids"] != layer_digests:
        raise ArchiveError(f"{path}: config diff_ids {config['rootfs']['diff_ids']} != layer digests {layer_digests}")
    if [f"blobs/sha256/{d.split(':')[1]}" for d in layer_digests] != docker[0]["Layers"]:
        raise ArchiveError(f"{path}: manifest.json layers differ from the OCI manifest's")
    return {"refs": names, "manifest_digest": index["manifests"][0]["digest"], "config": config,
            "layers": layer_digests}


def read_refs(path: Path) -> list[str]:
    """The names an archive carries (reads only index.json: cheap, no hashing)."""
    with tarfile.open(path, "r") as tar:
        for m in tar:
            if m.name == "index.json":
                index = json.load(tar.extractfile(m))
                return [d["annotations"][ANN_CONTAINERD_NAME] for d in index["manifests"]]
    raise ArchiveError(f"{path}: no index.json (not an OCI image archive)")


def extract_rootfs(path: Path, dest: Path) -> None:
    """Unpack an archive's layers in order into `dest` (whiteouts honoured): what a runtime's
    snapshotter does, so a test can chroot into the image without a container runtime."""
    info = verify_archive(path)
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "r") as outer:
        for digest in info["layers"]:
            member = outer.getmember("blobs/sha256/" + digest.split(":", 1)[1])
            with tarfile.open(fileobj=outer.extractfile(member), mode="r|") as layer:
                for m in layer:
                    base = os.path.basename(m.name)
                    if base.startswith(".wh."):
                        victim = dest / os.path.dirname(m.name) / base[4:]
                        if victim.is_dir() and not victim.is_symlink():
                            shutil.rmtree(victim)
                        elif victim.exists() or victim.is_symlink():
                            victim.unlink()
                        continue
                    target = dest / m.name
                    if (target.exists() or target.is_symlink()) and not (m.isdir() and target.is_dir()):
                        if target.is_dir() and not target.is_symlink():
                            shutil.rmtree(target)
                        else:
                            target.unlink()
                    layer.extract(m, dest, set_attrs=True, numeric_owner=True, filter="fully_trusted")
