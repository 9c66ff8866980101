"""Proof that the local testbed is a real, working Argo stack (not a mock).

ONE testbed per module (module-scoped fixture, `Testbed` as a context manager, so it is
stopped whatever happens). The tests run in file order: the functional ones first, then
the lifecycle ones, which crash, recover and finally stop the shared testbed; the last
test starts a testbed of its own that is made to fail.

Secrets (Git tokens, the admin password) only live in variables: commands that carry
them go through `_run`, whose result holds no argv and whose output is redacted, so a
failure message (or pytest's assertion rewriting) can never show them. Every wait is
bounded.
"""
from __future__ import annotations

import base64
import dataclasses
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Callable

import pytest
import requests
import yaml

from gitops_conformance.testbed import settings, versions
from gitops_conformance.testbed.peers import gitserver, registry
from gitops_conformance.testbed.procs import pid_alive, port_open
from gitops_conformance.testbed.stack import Testbed
# plain name would be collected as a test class
from gitops_conformance.testbed.stack import TestbedError as _TestbedError

pytestmark = pytest.mark.testbed

REPO_ROOT = Path(__file__).resolve().parent.parent
K8S_VERSION = versions.load()["kubernetes"].version        # v1.36.3
ARGOCD_VERSION = versions.load()["argocd"].version         # v3.5.3
CMD_TIMEOUT = 120  # seconds, any one CLI command
IMAGE = "registry.invalid/conformance/demo"  # never pulled: kwok runs no containers


# --------------------------------------------------------------------------- helpers

@dataclasses.dataclass
class Result:
    """What a command did, without its argv (which may hold a secret)."""
    what: str
    rc: int
    out: str
    err: str

    def __str__(self) -> str:
        return f"`{self.what}` exited {self.rc}\nstdout: {self.out[-1500:]}\nstderr: {self.err[-1500:]}"


def _run(cmd: list[str], *, env: dict[str, str], what: str | None = None, secrets: tuple[str, ...] = (),
         cwd: str | Path | None = None, stdin: str | None = None, timeout: float = CMD_TIMEOUT) -> Result:
    try:
        p = subprocess.run(cmd, env=env, cwd=cwd, input=stdin, capture_output=True, text=True, timeout=timeout)
        rc, out, err = p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired as exc:
        rc, out, err = -1, str(exc.stdout or ""), f"timed out after {timeout}s"
    for s in secrets:
        if s:
            out, err = out.replace(s, "***"), err.replace(s, "***")
    return Result(what or " ".join(cmd[:3]), rc, out, err)


def _ok(r: Result) -> Result:
    if r.rc != 0:
        raise AssertionError(str(r))
    return r


def wait_for(probe: Callable[[], object], *, timeout: float, what: str, interval: float = 1.0,
             detail: Callable[[], str] | None = None):
    """Poll `probe` until it returns something truthy; bounded by `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = probe()
        except (subprocess.SubprocessError, requests.RequestException, KeyError, ValueError) as exc:
            last = f"{type(exc).__name__}: {exc}"
        else:
            if last:
                return last
        if time.monotonic() >= deadline:
            extra = f"\n{detail()}" if detail else ""
            raise AssertionError(f"{what}: not reached within {timeout:.0f}s (last seen: {last!r}){extra}")
        time.sleep(interval)


class Ctx:
    """The shared testbed plus what the tests need to drive it."""

    def __init__(self, tb: Testbed, tmp: Path):
        self.tb = tb
        self.tmp = tmp
        self.refresh()

    def refresh(self) -> None:
        """Re-read endpoints (a recovered testbed has fresh ports)."""
        self.endpoints = self.tb.endpoints()
        self.env = {**os.environ, **self.tb.env()}

    def kubectl(self, *args: str, stdin: str | None = None, timeout: float = CMD_TIMEOUT) -> Result:
        return _run([str(versions.binary_path("kubectl")), "--kubeconfig", str(self.tb.layout.kubeconfig), *args],
                    env=self.env, what="kubectl " + " ".join(args[:4]), stdin=stdin, timeout=timeout)

    def get_json(self, *args: str) -> dict:
        return json.loads(_ok(self.kubectl("get", *args, "-o", "json")).out)

    def apply(self, *docs: dict, namespace: str | None = None) -> None:
        ns = ["-n", namespace] if namespace else []
        _ok(self.kubectl(*ns, "apply", "-f", "-", stdin=yaml.safe_dump_all(docs, sort_keys=False)))

    def log_tail(self, component: str, lines: int = 60) -> str:
        return f"--- last {lines} lines of {self.tb.sup.log_path(component)} ---\n{self.tb.sup.tail(component, lines)}"


def _pgids_alive(pgids: set[int]) -> list[str]:
    """Live (non-zombie) processes whose process group is one of `pgids`."""
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        state, pgid = fields[0], int(fields[2])
        if pgid in pgids and state != "Z":
            found.append(f"{d.name} ({stat.split('(', 1)[1].rsplit(')', 1)[0]})")
    return found


def _assert_nothing_left(pids: dict[str, int], ports: dict[str, int]) -> None:
    alive = {n: p for n, p in pids.items() if pid_alive(p)}
    assert not alive, f"processes still running after down: {alive}"
    in_groups = _pgids_alive(set(pids.values()))  # every component leads its own process group
    assert not in_groups, f"processes of a component's group still running after down: {in_groups}"
    listening = wait_for(lambda: {n: p for n, p in ports.items() if port_open(p)} or "none",
                         timeout=5, interval=0.5, what="ports closed")
    assert listening == "none", f"ports still listening after down: {listening}"


# --------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("testbed-selftest")
    with Testbed(tmp / "state") as tb:  # __exit__ runs `down`, whatever the tests did
        yield Ctx(tb, tmp)


@pytest.fixture(scope="module")
def argocd_config(ctx) -> Path:
    """`argocd login` as admin into a private CLI config (never ~/.config/argocd)."""
    config = ctx.tmp / "argocd-cli" / "config"
    config.parent.mkdir(parents=True, exist_ok=True)
    secret = ctx.get_json("-n", "argocd", "secret", "argocd-initial-admin-secret")
    password = base64.b64decode(secret["data"]["password"]).decode()
    r = _run(["argocd", "login", ctx.env["ARGOCD_SERVER"], "--username", "admin", "--config", str(config)],
             stdin=password + "\n", env=ctx.env, what="argocd login", secrets=(password,))  # the prompt, not argv
    _ok(r)
    assert config.exists(), "argocd login wrote no config"
    return config


@dataclasses.dataclass
class GitRepo:
    url: str
    work: Path
    env: dict[str, str]   # holds the writer token (GIT_ASKPASS): never print it
    token: str

    def git(self, *args: str) -> Result:
        return _ok(_run(["git", *args], env=self.env, cwd=self.work, what="git " + " ".join(args[:2]),
                        secrets=(self.token,)))

    def push(self, files: dict[str, str], message: str) -> str:
        for rel, text in files.items():
            p = self.work / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(textwrap.dedent(text))
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)
        self.git("push", "-q", self.url, "HEAD:main")
        return self.git("rev-parse", "HEAD").out.strip()


@pytest.fixture(scope="module")
def git_repo(ctx, argocd_config) -> GitRepo:
    """A repo on the local Git server (HTTP, basic auth), registered in Argo CD with the reader's token."""
    creds = json.loads((ctx.tb.state_dir / "git-credentials.json").read_text())
    (wuser, wtoken), (ruser, rtoken) = creds["writer"], creds["reader"]
    base = ctx.endpoints["git_http"]
    url = gitserver.create_repo(base, "selftest", (wuser, wtoken))
    assert url == gitserver.repo_url(base, "selftest"), url  # no credentials in the URL
    work = ctx.tmp / "selftest-work"
    work.mkdir()
    env = {**os.environ, **gitserver.askpass_env(ctx.tmp, wuser, wtoken),
           "GIT_AUTHOR_NAME": "selftest", "GIT_AUTHOR_EMAIL": "selftest@example.invalid",
           "GIT_COMMITTER_NAME": "selftest", "GIT_COMMITTER_EMAIL": "selftest@example.invalid"}
    repo = GitRepo(url, work, env, wtoken)
    repo.git("init", "-q", "-b", "main")
    repo.push({"README.md": "testbed self-test\n"}, "init")
    _ok(_run(["argocd", "repo", "add", url, "--username", ruser, "--config", str(argocd_config)], stdin=rtoken + "\n",
             env=ctx.env, what="argocd repo add", secrets=(rtoken, wtoken)))
    return repo


def _application(name: str, repo_url: str, path: str, namespace: str, annotations: dict | None = None) -> dict:
    return {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
        "metadata": {"name": name, "namespace": "argocd", "annotations": annotations or {}},
        "spec": {
            "project": "default",
            "source": {"repoURL": repo_url, "targetRevision": "main", "path": path},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": namespace},
            "syncPolicy": {"automated": {"prune": True, "selfHeal": True}, "syncOptions": ["CreateNamespace=true"]},
        },
    }


def _app_state(ctx: Ctx, name: str) -> dict:
    app = ctx.get_json("-n", "argocd", "application", name)
    st = app.get("status", {})
    return {"sync": st.get("sync", {}).get("status"), "health": st.get("health", {}).get("status"),
            "revision": st.get("sync", {}).get("revision"), "conditions": st.get("conditions"),
            "operation": st.get("operationState", {}).get("message"), "spec": app["spec"]}


# --------------------------------------------------------------------------- functional

def test_deployment_becomes_available_on_kwok_nodes(ctx):
    ctx.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "selftest-deploy"}})
    ctx.apply({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "web", "image": f"{IMAGE}:v1"}]}}},
    }, namespace="selftest-deploy")
    r = ctx.kubectl("-n", "selftest-deploy", "wait", "--for=condition=Available", "deployment/web", "--timeout=90s",
                    timeout=100)
    assert r.rc == 0, f"{r}\n{ctx.log_tail('kube-controller-manager', 20)}\n{ctx.log_tail('kwok', 20)}"
    dep = ctx.get_json("-n", "selftest-deploy", "deployment", "web")
    assert dep["status"].get("availableReplicas") == 2 and dep["status"].get("readyReplicas") == 2, dep["status"]

    kwok_nodes = {n["metadata"]["name"] for n in ctx.get_json("nodes")["items"]
                  if n["metadata"].get("annotations", {}).get("kwok.x-k8s.io/node") == "fake"}
    assert len(kwok_nodes) == settings.KWOK_NODES
    pods = ctx.get_json("-n", "selftest-deploy", "pods", "-l", "app=web")["items"]
    summary = [(p["metadata"]["name"], p["status"].get("phase"), p["spec"].get("nodeName")) for p in pods]
    assert len(pods) == 2, summary
    assert all(phase == "Running" and node in kwok_nodes for _, phase, node in summary), summary


def test_versions_are_the_pinned_ones(ctx, argocd_config):
    lay = ctx.tb.layout
    s = requests.Session()
    s.trust_env = False  # loopback: never through a proxy
    v = s.get(f"{ctx.endpoints['kube_apiserver']}/version", verify=str(lay.pki / "ca.crt"), timeout=10).json()
    assert v["gitVersion"] == K8S_VERSION, v          # stamped at build time, not v0.0.0-master
    assert (v["major"], v["minor"]) == ("1", K8S_VERSION.split(".")[1]), v
    assert v["gitTreeState"] == "clean", v

    out = json.loads(_ok(_run(["argocd", "version", "-o", "json", "--config", str(argocd_config)],
                              env=ctx.env, what="argocd version")).out)
    for side in ("client", "server"):
        assert out[side]["Version"].split("+")[0] == ARGOCD_VERSION, out
        assert out[side].get("GitTag") == ARGOCD_VERSION, out


def test_argocd_login_and_app_list(ctx, argocd_config):
    r = _ok(_run(["argocd", "app", "list", "--config", str(argocd_config)], env=ctx.env, what="argocd app list"))
    assert r.out.splitlines()[0].split()[:2] == ["NAME", "CLUSTER"], r
    r = _ok(_run(["argocd", "account", "get-user-info", "--config", str(argocd_config), "-o", "json"],
                 env=ctx.env, what="argocd account get-user-info"))
    info = json.loads(r.out)
    assert info.get("loggedIn") is True and info.get("username") == "admin", info


def test_application_from_local_git_over_http_syncs(ctx, argocd_config, git_repo):
    repos = json.loads(_ok(_run(["argocd", "repo", "list", "-o", "json", "--config", str(argocd_config)],
                                env=ctx.env, what="argocd repo list")).out)
    repo = next((r for r in repos if r["repo"] == git_repo.url), None)
    assert repo is not None, [r["repo"] for r in repos]
    assert repo.get("connectionState", {}).get("status") == "Successful", repo.get("connectionState")

    sha = git_repo.push({"guestbook/app.yaml": f"""\
        apiVersion: v1
        kind: ConfigMap
        metadata: {{name: guestbook-config}}
        data: {{greeting: hello}}
        ---
        apiVersion: apps/v1
        kind: Deployment
        metadata: {{name: guestbook}}
        spec:
          replicas: 1
          selector: {{matchLabels: {{app: guestbook}}}}
          template:
            metadata: {{labels: {{app: guestbook}}}}
            spec:
              containers: [{{name: guestbook, image: "{IMAGE}:v1"}}]
        """}, "guestbook")
    ctx.apply(_application("selftest-guestbook", git_repo.url, "guestbook", "selftest-guestbook"))
    state = wait_for(
        lambda: (lambda s: s if (s["sync"], s["health"], s["revision"]) == ("Synced", "Healthy", sha) else None)(
            _app_state(ctx, "selftest-guestbook")),
        timeout=150, interval=2, what="Application selftest-guestbook Synced+Healthy at the pushed commit",
        detail=lambda: f"{_app_state(ctx, 'selftest-guestbook')}\n{ctx.log_tail('argocd-repo-server', 20)}")
    assert state["conditions"] in (None, []), state
    cm = ctx.get_json("-n", "selftest-guestbook", "configmap", "guestbook-config")
    assert cm["data"] == {"greeting": "hello"}


def test_rollout_canary_steps_progress(ctx):
    ns = "selftest-rollout"
    ctx.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    ctx.apply({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "metadata": {"name": "canary"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "canary"}},
                 "template": {"metadata": {"labels": {"app": "canary"}},
                              "spec": {"containers": [{"name": "app", "image": f"{IMAGE}:v1"}]}},
                 "strategy": {"canary": {"steps": [{"setWeight": 50}, {"pause": {"duration": "2s"}}]}}},
    }, namespace=ns)

    def status() -> dict:
        ro = ctx.get_json("-n", ns, "rollout", "canary")
        st = ro.get("status", {})
        return {"phase": st.get("phase"), "step": st.get("currentStepIndex"), "stable": st.get("stableRS"),
                "current": st.get("currentPodHash"), "image": ro["spec"]["template"]["spec"]["containers"][0]["image"],
                "generation": ro["metadata"].get("generation"), "observed": st.get("observedGeneration")}

    detail = lambda: ctx.log_tail("rollouts-controller", 20)
    first = wait_for(lambda: (lambda s: s if s["phase"] == "Healthy" and s["step"] == 2 else None)(status()),
                     timeout=90, interval=1, what="initial Rollout Healthy", detail=detail)

    _ok(_run(["kubectl-argo-rollouts", "--kubeconfig", str(ctx.tb.layout.kubeconfig), "-n", ns,
              "set", "image", "canary", f"app={IMAGE}:v2"], env=ctx.env, what="kubectl argo rollouts set image"))
    seen: list[tuple] = []

    def finished():
        s = status()
        key = (s["step"], s["phase"], s["current"] != first["stable"])
        if not seen or seen[-1] != key:
            seen.append(key)
        done = (s["phase"] == "Healthy" and s["image"].endswith(":v2") and s["current"] != first["stable"]
                and s["stable"] == s["current"] and s["step"] == 2)
        return s if done else None

    final = wait_for(finished, timeout=120, interval=0.25, what="Rollout canary to v2 Healthy",
                     detail=lambda: f"steps seen: {seen}\n{detail()}")
    steps_after_update = [step for step, _, new in seen if new]
    assert any(step in (0, 1) for step in steps_after_update), f"no intermediate canary step observed: {seen}"
    assert 1 in steps_after_update, f"the pause step (index 1) was never reached: {seen}"
    assert steps_after_update == sorted(steps_after_update), f"currentStepIndex went backwards: {seen}"
    assert final["stable"] == final["current"] and final["image"] == f"{IMAGE}:v2", final
    pods = ctx.get_json("-n", ns, "pods", "-l", "app=canary")["items"]
    images = sorted(p["spec"]["containers"][0]["image"] for p in pods if not p["metadata"].get("deletionTimestamp"))
    assert images == [f"{IMAGE}:v2"] * 2, images


def test_image_updater_promotes_highest_semver_tag(ctx, git_repo):
    reg = ctx.endpoints["registry"]
    host = reg.removeprefix("http://")
    for tag in ("0.9.0", "1.0.0", "1.2.0", "1.10.1"):  # 1.10.1 > 1.2.0 only in semver order
        registry.push_image(reg, "myapp", tag)
    assert set(registry.list_tags(reg, "myapp")) >= {"0.9.0", "1.0.0", "1.2.0", "1.10.1"}

    git_repo.push({
        "myapp/kustomization.yaml": "resources: [deployment.yaml]\n",
        "myapp/deployment.yaml": f"""\
            apiVersion: apps/v1
            kind: Deployment
            metadata: {{name: myapp}}
            spec:
              replicas: 1
              selector: {{matchLabels: {{app: myapp}}}}
              template:
                metadata: {{labels: {{app: myapp}}}}
                spec:
                  containers: [{{name: myapp, image: "{host}/myapp:1.0.0"}}]
            """}, "myapp at 1.0.0")
    ctx.apply(_application("selftest-myapp", git_repo.url, "myapp", "selftest-myapp", annotations={
        "argocd-image-updater.argoproj.io/image-list": f"myapp={host}/myapp",
        "argocd-image-updater.argoproj.io/myapp.update-strategy": "semver",
        "argocd-image-updater.argoproj.io/write-back-method": "argocd",
    }))
    want = f"{host}/myapp:1.10.1"

    def images():
        imgs = (_app_state(ctx, "selftest-myapp")["spec"]["source"].get("kustomize") or {}).get("images") or []
        return imgs if want in imgs else None

    # updater interval is 5s (testbed/settings.py): allow a few cycles plus the first Application sync
    wait_for(images, timeout=90, interval=2, what=f"spec.source.kustomize.images of selftest-myapp to hold {want}",
             detail=lambda: ctx.log_tail("argocd-image-updater", 60))
    # and Argo CD rolls it out (end to end: registry -> updater -> Application -> Deployment)
    wait_for(lambda: ctx.get_json("-n", "selftest-myapp", "deployment", "myapp")["spec"]["template"]["spec"]
             ["containers"][0]["image"] == want, timeout=90, interval=2,
             what=f"Deployment myapp running {want}",
             detail=lambda: f"{_app_state(ctx, 'selftest-myapp')}\n{ctx.log_tail('argocd-image-updater', 30)}")


# --------------------------------------------------------------------------- lifecycle (order matters)

def _cli(*args: str, timeout: float = 60) -> Result:
    return _run([sys.executable, "-m", "gitops_conformance.cli", "testbed", *args], env=dict(os.environ),
                cwd=REPO_ROOT, what="gitops-conformance testbed " + args[0], timeout=timeout)


def test_status_exit_code_zero_while_up(ctx):
    r = _cli("status", "--state-dir", str(ctx.tb.state_dir))
    assert r.rc == 0, str(r)
    names = {line.split()[0] for line in r.out.splitlines() if line.strip()}
    assert names >= {"etcd", "kube-apiserver", "argocd-server", "rollouts-controller", "argocd-image-updater"}, r.out


def test_up_after_crash_cleans_stale_pids(ctx):
    old = ctx.tb.sup.pids()
    victim = old["kube-scheduler"]
    os.kill(victim, signal.SIGKILL)  # PID files stay behind, as after a real crash
    wait_for(lambda: not pid_alive(victim), timeout=10, interval=0.1, what="killed kube-scheduler gone")
    assert not ctx.tb.is_up()
    assert _cli("status", "--state-dir", str(ctx.tb.state_dir)).rc == 1

    lines: list[str] = []
    again = Testbed(ctx.tb.state_dir, out=lines.append)  # a new `up`, as from a fresh shell
    again.up()
    output = "\n".join(lines)
    assert f"cleaning {len(old)} stale process record(s)" in output, output
    still = {n: p for n, p in old.items() if pid_alive(p)}
    assert not still, f"stale processes survived the new up: {still}"
    new = again.sup.pids()
    assert set(new) == set(old) and not set(new.values()) & set(old.values()), (old, new)
    assert again.is_up()
    ctx.refresh()
    assert _cli("status", "--state-dir", str(ctx.tb.state_dir)).rc == 0


def test_down_leaves_nothing_running(ctx):
    pids = ctx.tb.sup.pids()
    state = json.loads((ctx.tb.state_dir / "state.json").read_text())
    ports = {**state["ports"], **{k: v for k, v in state.get("component_ports", {}).items() if v}}
    assert pids and all(pid_alive(p) for p in pids.values())
    r = _cli("down", "--state-dir", str(ctx.tb.state_dir), timeout=300)
    assert r.rc == 0, str(r)
    assert not list((ctx.tb.state_dir / "pids").glob("*.pid")), "PID files left behind"
    _assert_nothing_left(pids, ports)
    assert _cli("status", "--state-dir", str(ctx.tb.state_dir)).rc != 0


@pytest.mark.parametrize("breakage", ["failing-binary", "missing-binary"])
def test_failed_up_names_component_and_leaves_nothing(tmp_path, monkeypatch, breakage):
    broken = tmp_path / "kube-scheduler"
    if breakage == "failing-binary":
        broken.write_text("#!/bin/sh\necho 'selftest: simulated kube-scheduler start-up failure' >&2\nexit 3\n")
        broken.chmod(0o755)
    real = versions.binary_path
    monkeypatch.setattr(versions, "binary_path", lambda name: broken if name == "kube-scheduler" else real(name))

    lines: list[str] = []
    tb = Testbed(tmp_path / "state", out=lines.append)
    started: dict[str, int] = {}
    orig_start = tb.sup.start

    def recording_start(spec):  # every PID this `up` launches, even those `down` forgets
        pid = orig_start(spec)
        started[spec.name] = pid
        return pid

    tb.sup.start = recording_start
    try:
        with pytest.raises(_TestbedError) as err:
            tb.up()
    finally:
        tb.down(quiet=True)
    output = "\n".join(lines)
    assert "kube-scheduler" in str(err.value), str(err.value)
    if breakage == "failing-binary":
        assert "kube-scheduler: exited during start-up" in output, output
        assert "last lines of kube-scheduler's log" in output, output
        assert "simulated kube-scheduler start-up failure" in output, output
        assert {"etcd", "kube-apiserver", "kube-controller-manager"} <= set(started), started
        assert "argocd-server" not in started
    else:
        assert "binaries not built" in str(err.value) and not started, (str(err.value), started)
    assert not list((tmp_path / "state" / "pids").glob("*.pid")), "PID files left behind"
    ports = json.loads((tmp_path / "state" / "state.json").read_text())["ports"] if started else {}
    _assert_nothing_left(started, ports)
