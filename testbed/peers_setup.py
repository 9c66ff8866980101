"""The testbed's peers: Git (smart HTTP and SSH over the same repos), an OCI registry,
the Slack/webhook receiver, a traffic source and a real Prometheus scraping it.

Credentials are made once per state dir and kept in 0600 files there; fixtures read
them through `git_credentials` / `slack_token`, never from output.
"""
from __future__ import annotations

import hashlib
import json
import secrets
from pathlib import Path

from .layout import Layout
from .peers import gitserver, prometheus, receiver, registry, sshgit, trafficgen
from .procs import ProcessSpec

GIT_WRITER, GIT_READER = "conformance", "reader"


def _secret_file(lay: Layout, name: str, make) -> str:
    path = lay.state_dir / name
    if not path.exists():
        path.write_text(make())
        path.chmod(0o600)
    return path.read_text().strip()


def git_credentials(lay: Layout) -> dict[str, tuple[str, str]]:
    """role -> (username, token) of the Git server's basic-auth users."""
    data = json.loads(_secret_file(lay, "git-credentials.json", lambda: json.dumps({
        "writer": [GIT_WRITER, secrets.token_hex(20)], "reader": [GIT_READER, secrets.token_hex(20)]})))
    return {role: (u, t) for role, (u, t) in data.items()}


def slack_token(lay: Layout) -> str:
    """The bot token the receiver's Slack stand-in accepts (anything else: invalid_auth)."""
    return _secret_file(lay, "slack.token", lambda: "xoxb-" + secrets.token_hex(16))


def git_root(lay: Layout) -> Path:
    return lay.dir("git", "repos")


def peer_specs(lay: Layout) -> list[tuple[ProcessSpec, dict[str, str]]]:
    """(process, endpoints it contributes), in start order."""
    creds = git_credentials(lay)
    users_file = gitserver.write_users_file(lay.state_dir / "git-users.json", {
        creds["writer"][0]: (creds["writer"][1], "write"), creds["reader"][0]: (creds["reader"][1], "read")})
    users_file.chmod(0o600)
    ssh_port = lay.ports["git-ssh"]
    ssh = sshgit.spec(lay.state_dir, ssh_port, git_root(lay), name="git-ssh")
    traffic_addr = f"127.0.0.1:{lay.ports['trafficgen']}"
    return [
        (gitserver.spec(lay.state_dir, lay.ports["git-http"], users_file, git_root(lay), name="git-http"),
         {"git_http": lay.url("git-http")}),
        (gitserver.spec(lay.state_dir, lay.ports["git-https"], users_file, git_root(lay), name="git-https",
                        tls=(lay.pki / "apiserver.crt", lay.pki / "apiserver.key")),
         {"git_https": lay.url("git-https", "https")}),
        (ssh, {"git_ssh": f"ssh://{sshgit.SSH_USER}@127.0.0.1:{ssh_port}",
               "git_ssh_known_hosts": sshgit.known_hosts_line(lay.state_dir, ssh_port)}),
        (registry.spec(lay.state_dir, lay.ports["registry"], name="registry"), {"registry": lay.url("registry")}),
        (receiver.spec(lay.state_dir, lay.ports["receiver"],
                       slack_token_sha256=hashlib.sha256(slack_token(lay).encode()).hexdigest(), name="receiver"),
         {"receiver": lay.url("receiver")}),
        (trafficgen.spec(lay.state_dir, lay.ports["trafficgen"], name="trafficgen"), {"trafficgen": lay.url("trafficgen")}),
        (prometheus.spec(lay.state_dir, lay.ports["prometheus"], [traffic_addr], name="prometheus"),
         {"prometheus": lay.url("prometheus")}),
    ]


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
