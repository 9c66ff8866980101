"""The testbed's peers: Git (smart HTTP and SSH), OCI registry, Slack/webhook receiver,
a traffic source with Prometheus scraping it. Filled in as the peers land."""
from __future__ import annotations

from pathlib import Path

from .layout import Layout
from .procs import ProcessSpec


def peer_specs(lay: Layout) -> list[tuple[ProcessSpec, dict[str, str]]]:
    return []


def registries_conf(lay: Layout) -> Path:
    """Image Updater's registries.conf: the local registry, plain HTTP."""
    port = lay.ports["registry"]
    path = lay.state_dir / "registries.conf"
    path.write_text(
        "registries:\n"
        "- name: testbed\n"
        f"  prefix: 127.0.0.1:{port}\n"
        f"  api_url: http://127.0.0.1:{port}\n"
        "  insecure: yes\n"
        "  default: true\n"
    )
    return path
