"""The OCI registry peer: Debian's `docker-registry` (CNCF distribution v2.8) as a host process,
plus a Docker-free client that pushes tiny, valid images and moves tags.

Run it:

    from gitops_conformance.testbed.procs import Supervisor, free_port
    from gitops_conformance.testbed.peers import registry
    sup = Supervisor(state)
    spec = registry.spec(state, free_port())
    sup.wait_healthy(spec, sup.start(spec))
    url = registry.base_url(spec.port)            # "http://127.0.0.1:PORT"
    digest = registry.push_image(url, "myapp", "v1.0.0")

The server binary comes from the Debian package `docker-registry`
(`apt-get install -y docker-registry`); the package's own /etc/docker/registry
config (htpasswd auth, port 5000) is never used: `spec()` writes a config of its own.

The client speaks the registry HTTP API v2 directly (requests, no proxies from the
environment, every call with a timeout) and only ever talks to the host of the
`base_url` it is given.
"""
from __future__ import annotations

import datetime as _dt
import gzip
import hashlib
import io
import json
import os
import shutil
import tarfile
import urllib.parse
from pathlib import Path

import requests
import yaml

from ..procs import ProcessSpec

NAME = "registry"
DEBIAN_PACKAGE = "docker-registry"
DEFAULT_BINARY = "/usr/bin/docker-registry"
TIMEOUT = 10.0  # seconds, for every HTTP call

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"

MANIFEST_ACCEPT = ", ".join([OCI_MANIFEST, DOCKER_MANIFEST, OCI_INDEX, DOCKER_LIST])

_MEDIA_TYPES = {  # push_image(media_type=...) -> (manifest, config, layer)
    "oci": (OCI_MANIFEST, OCI_CONFIG, OCI_LAYER),
    "docker": (DOCKER_MANIFEST, DOCKER_CONFIG, DOCKER_LAYER),
}


class RegistryError(RuntimeError):
    """A registry call answered something other than what the API promises."""


# ---------------------------------------------------------------- the server


def binary() -> str:
    """Path of the registry binary, or a clear error naming the Debian package to install."""
    found = shutil.which("docker-registry") or (DEFAULT_BINARY if os.path.exists(DEFAULT_BINARY) else None)
    if not found:
        raise FileNotFoundError(
            f"docker-registry not found: install the Debian package with "
            f"`apt-get update && apt-get install -y {DEBIAN_PACKAGE}`")
    return found


def base_url(port: int) -> str:
    return f"http://127.0.0.1:{port}"


def config(root: Path, port: int) -> dict:
    """The registry config: filesystem storage under `root`, no auth, no TLS, no debug server."""
    return {
        "version": 0.1,
        "log": {"level": "info", "formatter": "text", "accesslog": {"disabled": False}},
        "storage": {
            "filesystem": {"rootdirectory": str(root / "storage")},
            "delete": {"enabled": True},
            "cache": {"blobdescriptor": "inmemory"},
            "maintenance": {"uploadpurging": {"enabled": False}},
        },
        # no `http.debug`: the debug/metrics server is off; no `auth`, no `http.tls`
        "http": {"addr": f"127.0.0.1:{port}", "headers": {"X-Content-Type-Options": ["nosniff"]}},
    }


def spec(state_dir: str | os.PathLike, port: int, *, name: str = NAME, health_timeout: float = 30.0) -> ProcessSpec:
    """Write `<state_dir>/<name>/config.yml` and return how to run the registry on 127.0.0.1:`port`.

    Images are stored under `<state_dir>/<name>/storage`. Health: `GET /v2/` answers 200.
    """
    root = Path(state_dir).resolve() / name
    (root / "storage").mkdir(parents=True, exist_ok=True)
    cfg_path = root / "config.yml"
    cfg_path.write_text(yaml.safe_dump(config(root, port), sort_keys=False))
    argv = [binary(), "serve", str(cfg_path)]
    # distribution lets any REGISTRY_* variable override the config (REGISTRY_HTTP_ADDR,
    # REGISTRY_AUTH...): drop the ones this environment has so the file above is the truth.
    inherited = sorted(k for k in os.environ if k.startswith("REGISTRY_"))
    if inherited:
        argv = ["env"] + [a for k in inherited for a in ("-u", k)] + argv
    return ProcessSpec(
        name=name,
        argv=argv,
        port=port,
        health_url=f"{base_url(port)}/v2/",
        health_timeout=health_timeout,
        cwd=str(root),
    )


# ---------------------------------------------------------------- the client


def _session() -> requests.Session:
    s = requests.Session()
    s.trust_env = False  # no HTTP(S)_PROXY, no netrc: talk to the registry and nothing else
    return s


def _check(resp: requests.Response, *ok: int) -> requests.Response:
    if resp.status_code not in ok:
        raise RegistryError(
            f"{resp.request.method} {resp.url}: HTTP {resp.status_code} (wanted {'/'.join(map(str, ok))}): "
            f"{resp.text[:300]}")
    return resp


def _url(base: str, repository: str, *rest: str) -> str:
    return "/".join([base.rstrip("/"), "v2", repository.strip("/"), *rest])


def _same_origin(base: str, location: str) -> str:
    """Resolve a Location header against base; refuse to follow it to any other host."""
    absolute = urllib.parse.urljoin(base.rstrip("/") + "/", location)
    b, a = urllib.parse.urlsplit(base), urllib.parse.urlsplit(absolute)
    if (a.scheme, a.netloc) != (b.scheme, b.netloc):
        raise RegistryError(f"registry redirected to another origin: {absolute} (base {base})")
    return absolute


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _with_query(url: str, **params: str) -> str:
    """Append query parameters whether or not the URL already has a query (`?` or `&`)."""
    sep = "&" if urllib.parse.urlsplit(url).query else "?"
    return url + sep + urllib.parse.urlencode(params)


def upload_blob(base_url: str, repository: str, data: bytes, *, session: requests.Session | None = None) -> str:
    """Upload one blob unless the registry has it (HEAD, POST, PUT ...&digest=); return its digest."""
    return upload_blob_stream(base_url, repository, io.BytesIO(data), len(data), sha256_digest(data), session=session)


def upload_blob_stream(base_url: str, repository: str, stream, size: int, digest: str, *,
                       session: requests.Session | None = None) -> str:
    """upload_blob for a blob too big to hold in memory: `stream` is read once, `digest` known."""
    s = session or _session()
    head = s.head(_url(base_url, repository, "blobs", digest), timeout=TIMEOUT)
    if head.status_code == 200:
        return digest
    _check(head, 404)
    start = _check(s.post(_url(base_url, repository, "blobs", "uploads/"), timeout=TIMEOUT), 202)
    location = start.headers.get("Location")
    if not location:
        raise RegistryError(f"POST {start.url}: 202 without a Location header")
    put = s.put(
        _with_query(_same_origin(base_url, location), digest=digest), data=stream,
        headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
        timeout=TIMEOUT)
    _check(put, 201)
    got = put.headers.get("Docker-Content-Digest")
    if got and got != digest:
        raise RegistryError(f"blob upload: registry says {got}, we computed {digest}")
    return digest


def _layer(content: bytes) -> tuple[bytes, bytes]:
    """A deterministic tar with one file, and its gzip: (tar, tar.gz)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        info = tarfile.TarInfo("gitops-conformance/image.txt")
        info.size, info.mode, info.mtime, info.uname, info.gname = len(content), 0o644, 0, "root", "root"
        tar.addfile(info, io.BytesIO(content))
    raw = buf.getvalue()
    gz = io.BytesIO()
    with gzip.GzipFile(fileobj=gz, mode="wb", mtime=0, compresslevel=9) as f:
        f.write(raw)
    return raw, gz.getvalue()


def _rfc3339(created: _dt.datetime | str | None) -> str:
    if created is None:
        created = _dt.datetime.now(_dt.timezone.utc)
    if isinstance(created, str):
        return created
    if created.tzinfo is None:
        created = created.replace(tzinfo=_dt.timezone.utc)
    return created.astimezone(_dt.timezone.utc).isoformat().replace("+00:00", "Z")


def push_image(base_url: str, repository: str, tag: str, *, layer_bytes: bytes | None = None,
               created: _dt.datetime | str | None = None, media_type: str = "oci",
               labels: dict[str, str] | None = None) -> str:
    """Push a tiny valid linux/amd64 image as `repository:tag`; return the manifest digest.

    The single layer is a gzipped tar holding one file whose content is `layer_bytes`, or
    by default a line naming repository and tag (so different tags differ). `created`
    (datetime, naive = UTC, or an RFC 3339 string; default: now) goes into the config,
    where Image Updater's newest-build strategy reads it. The same inputs give the same
    digest. `media_type`: "oci" (OCI image manifest) or "docker" (Docker schema2).
    """
    try:
        manifest_type, config_type, layer_type = _MEDIA_TYPES[media_type]
    except KeyError:
        raise ValueError(f"media_type must be one of {sorted(_MEDIA_TYPES)}, not {media_type!r}") from None
    content = layer_bytes if layer_bytes is not None else f"gitops-conformance image {repository}:{tag}\n".encode()
    raw, gz = _layer(content)
    when = _rfc3339(created)
    image_config = {
        "created": when,
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["/bin/true"], "Labels": dict(labels or {})},
        "rootfs": {"type": "layers", "diff_ids": [sha256_digest(raw)]},
        "history": [{"created": when, "created_by": "gitops-conformance push_image"}],
    }
    config_bytes = json.dumps(image_config, sort_keys=True, separators=(",", ":")).encode()
    s = _session()
    layer_digest = upload_blob(base_url, repository, gz, session=s)
    config_digest = upload_blob(base_url, repository, config_bytes, session=s)
    manifest = {
        "schemaVersion": 2,
        "mediaType": manifest_type,
        "config": {"mediaType": config_type, "digest": config_digest, "size": len(config_bytes)},
        "layers": [{"mediaType": layer_type, "digest": layer_digest, "size": len(gz)}],
    }
    body = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    return put_manifest(base_url, repository, tag, body, manifest_type, session=s)


def put_manifest(base_url: str, repository: str, reference: str, body: bytes, media_type: str, *,
                 session: requests.Session | None = None) -> str:
    """PUT raw manifest bytes under a tag (or digest); return the digest the registry reports."""
    s = session or _session()
    resp = _check(s.put(_url(base_url, repository, "manifests", reference), data=body,
                        headers={"Content-Type": media_type}, timeout=TIMEOUT), 201)
    digest = resp.headers.get("Docker-Content-Digest") or sha256_digest(body)
    if digest != sha256_digest(body):
        raise RegistryError(f"manifest PUT: registry says {digest}, body is {sha256_digest(body)}")
    return digest


def get_manifest(base_url: str, repository: str, reference: str) -> tuple[bytes, str, str]:
    """The manifest of a tag or digest, byte for byte: (body, media type, digest)."""
    resp = _check(_session().get(_url(base_url, repository, "manifests", reference),
                                 headers={"Accept": MANIFEST_ACCEPT}, timeout=TIMEOUT), 200)
    media_type = resp.headers.get("Content-Type", "").split(";")[0].strip()
    return resp.content, media_type, resp.headers.get("Docker-Content-Digest") or sha256_digest(resp.content)


def image_config(base_url: str, repository: str, reference: str) -> dict:
    """The image config JSON (architecture, os, created, rootfs) of a tag or digest."""
    body, _, _ = get_manifest(base_url, repository, reference)
    digest = json.loads(body)["config"]["digest"]
    resp = _check(_session().get(_url(base_url, repository, "blobs", digest), timeout=TIMEOUT), 200)
    if sha256_digest(resp.content) != digest:
        raise RegistryError(f"config blob {digest} came back with another digest")
    return resp.json()


def manifest_digest(base_url: str, repository: str, tag: str) -> str | None:
    """The digest a tag points at (HEAD, `Docker-Content-Digest`), or None when it does not exist."""
    resp = _session().head(_url(base_url, repository, "manifests", tag),
                           headers={"Accept": MANIFEST_ACCEPT}, timeout=TIMEOUT)
    if resp.status_code == 404:
        return None
    _check(resp, 200)
    digest = resp.headers.get("Docker-Content-Digest")
    if not digest:
        raise RegistryError(f"HEAD {resp.url}: no Docker-Content-Digest header")
    return digest


def list_tags(base_url: str, repository: str) -> list[str]:
    """Every tag of a repository, following `Link` pagination; [] for an unknown repository."""
    s = _session()
    url: str | None = _url(base_url, repository, "tags", "list")
    tags: list[str] = []
    for _ in range(1000):  # bounded: a page loop that never ends is a registry bug
        if url is None:
            return tags
        resp = s.get(url, timeout=TIMEOUT)
        if resp.status_code == 404:
            return tags
        _check(resp, 200)
        tags.extend(resp.json().get("tags") or [])
        url = _same_origin(base_url, resp.links["next"]["url"]) if "next" in resp.links else None
    raise RegistryError(f"tags/list of {repository}: more than 1000 pages")


def list_repositories(base_url: str) -> list[str]:
    resp = _check(_session().get(f"{base_url.rstrip('/')}/v2/_catalog", timeout=TIMEOUT), 200)
    return resp.json().get("repositories") or []


def retag(base_url: str, repository: str, src_tag: str, dst_tag: str) -> str:
    """Point `dst_tag` at the manifest `src_tag` points at (same bytes, same digest); return it.

    This is how a tag such as `staging-abc` is "moved" to a new build.
    """
    body, media_type, _ = get_manifest(base_url, repository, src_tag)
    return put_manifest(base_url, repository, dst_tag, body, media_type)


def delete_tag(base_url: str, repository: str, tag: str) -> None:
    """Remove one tag, leaving other tags on the same digest in place.

    distribution v2.8 deletes manifests by digest only, and that removes every tag on
    the digest; so: note the other tags on that digest, delete the manifest, and put
    the same manifest bytes back under those tags (the blobs stay; there is no GC).
    """
    body, media_type, digest = get_manifest(base_url, repository, tag)
    others = [t for t in list_tags(base_url, repository)
              if t != tag and manifest_digest(base_url, repository, t) == digest]
    s = _session()
    _check(s.delete(_url(base_url, repository, "manifests", digest), timeout=TIMEOUT), 202)
    for other in others:
        put_manifest(base_url, repository, other, body, media_type, session=s)


def storage_dir(state_dir: str | os.PathLike, name: str = NAME) -> Path:
    """Where `spec()` makes the registry keep its images."""
    return Path(state_dir).resolve() / name / "storage"


def delete_repository(base_url: str, repository: str, storage: Path | None = None) -> None:
    """Remove a repository: every manifest deleted through the API (its tags go with them),
    then, with `storage` (the server's own directory), the repository's directory, which
    distribution v2.8 has no API for (it keeps listing emptied repositories in _catalog).
    Unreferenced blobs stay until `docker-registry garbage-collect`."""
    digests = {manifest_digest(base_url, repository, tag) for tag in list_tags(base_url, repository)}
    s = _session()
    for digest in digests - {None}:
        _check(s.delete(_url(base_url, repository, "manifests", digest), timeout=TIMEOUT), 202, 404)
    if storage is None:
        return
    root = (Path(storage) / "docker" / "registry" / "v2" / "repositories").resolve()
    path = (root / repository.strip("/")).resolve()
    if root not in path.parents:
        raise RegistryError(f"repository {repository!r} is not under {root}")
    shutil.rmtree(path, ignore_errors=True)
    for parent in path.parents:  # drop the now-empty namespace directories (`<run>/<test>/`)
        if parent == root:
            break
        if parent.is_dir():
            if any(parent.iterdir()):
                break
            parent.rmdir()
