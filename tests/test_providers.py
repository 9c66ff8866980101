"""The kind and existing cluster providers, and bad input at session start, without Docker.

`kind` and `kubectl` are the fakes in tests/fake_bin (they log their argv and keep a tiny
state); pytest-kind's KindCluster is the real one, spied on so it can never download.
Session-start errors are checked through inner pytest runs (pytester) of a tiny suite that
requests the `kube`/`argocd` fixtures.
"""
pytest_plugins = ["pytester"]

import dataclasses  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import socket  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import pytest_kind  # noqa: E402
import pytest_kind.cluster  # noqa: E402

from gitops_conformance.fixtures import options, providers  # noqa: E402

FAKE_BIN = Path(__file__).resolve().parent / "fake_bin"
CLUSTER = providers.KIND_CLUSTER_NAME
CONTEXT = f"kind-{CLUSTER}"


def _manifest() -> Path:
    from gitops_conformance.testbed import versions

    return versions.asset_dir("argocd") / "manifests" / "install.yaml"


needs_manifest = pytest.mark.skipif(not _manifest().exists(),
                                    reason="pinned Argo CD install.yaml not extracted (gitops-conformance testbed build argocd)")


@pytest.fixture(autouse=True)
def _isolate(monkeypatch, tmp_path):
    for name in list(os.environ):
        if name.startswith(("GITOPS_CONFORMANCE_", "FAKE_K")):
            monkeypatch.delenv(name)
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("GITOPS_CONFORMANCE_RUN_ID", "unit-run-0002")
    monkeypatch.chdir(tmp_path)  # KindCluster creates ./.pytest-kind/<name>: keep it out of the repo
    yield
    # no clear_secrets(): no test here registers one, and it would wipe the outer session's


@pytest.fixture
def no_download(monkeypatch):
    """Any download pytest-kind attempts fails the test (it uses requests.get)."""
    attempts = []

    def refuse(url, *a, **kw):
        attempts.append(url)
        raise AssertionError(f"download attempted: {url}")

    monkeypatch.setattr(pytest_kind.cluster.requests, "get", refuse)
    return attempts


@pytest.fixture
def fakes(tmp_path, monkeypatch, no_download):
    """tests/fake_bin first on PATH; returns readers of the fakes' call logs."""
    logs = tmp_path / "logs"
    logs.mkdir()
    monkeypatch.setenv("PATH", f"{FAKE_BIN}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_KIND_LOG", str(logs / "kind.log"))
    monkeypatch.setenv("FAKE_KUBECTL_LOG", str(logs / "kubectl.log"))

    class Fakes:
        dir = logs

        @staticmethod
        def calls(tool: str) -> list[list[str]]:
            path = logs / f"{tool}.log"
            return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

        @staticmethod
        def clusters() -> list[str]:
            path = logs / "kind.log.clusters"
            return path.read_text().split() if path.exists() else []

    return Fakes


@pytest.fixture
def spy(monkeypatch):
    """Records how the provider constructs pytest-kind's KindCluster (the real class)."""
    made = []

    class Spy(pytest_kind.KindCluster):
        def __init__(self, *args, **kwargs):
            made.append(kwargs)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(pytest_kind, "KindCluster", Spy)
    return made


def kind_settings(**changes) -> options.Settings:
    base = options.Settings(
        cluster="kind", reuse_testbed=None, kubeconfig=None, context=None, engine="argocd",
        keep_on_failure=False, timeout_scale=1.0, allow_context=None, install=False,
        git_url="https://git.example.invalid/scratch.git", git_username="tester", git_token="tkn",
        kind_bin=str(FAKE_BIN / "kind"), no_webhook=False)
    return dataclasses.replace(base, **changes)


def _connectable(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


# ----- kind: the flow ----------------------------------------------------------------------

@pytest.fixture
def no_images(monkeypatch):
    """The image check and the node image belong to the real kind run (tests/test_kind_*.py):
    here the fakes only show the cluster's life cycle."""
    monkeypatch.setattr(providers, "_kind_images", lambda settings: {})
    monkeypatch.setattr(providers, "_kind_config", lambda workdir: None)
    monkeypatch.setattr(providers, "_load_images", lambda archives, kind: None)


def test_kind_cluster_deleted_when_creation_fails(tmp_path, fakes, monkeypatch, no_images):
    monkeypatch.setenv("FAKE_KIND_FAIL_CREATE", "1")
    with pytest.raises(pytest.UsageError, match=re.escape(f"create cluster --name={CLUSTER}")):
        with providers.kind_target(kind_settings(), tmp_path):
            pytest.fail("the target must not be yielded")
    assert fakes.calls("kind")[-1][:3] == ["delete", "cluster", f"--name={CLUSTER}"]
    assert fakes.clusters() == []


def test_kind_cluster_deleted_when_the_session_fails(tmp_path, fakes, monkeypatch, no_images):
    made = []

    def fake_target(stack, settings, kubeconfig, context, **kw):
        made.append((context, kw))
        return providers.Target(provider=kw["provider"], kubeconfig=kubeconfig, context=context,
                                argocd_url="https://127.0.0.1:1", git=providers.GitHost(username="u", token="t"))

    monkeypatch.setattr(providers, "_cluster_target", fake_target)
    with pytest.raises(RuntimeError, match="a test blew up"):
        with providers.kind_target(kind_settings(), tmp_path):
            raise RuntimeError("a test blew up")
    assert made == [(CONTEXT, {"install": True, "pull": False, "provider": "kind"})]
    assert fakes.calls("kind")[-1][:3] == ["delete", "cluster", f"--name={CLUSTER}"]
    assert fakes.clusters() == []


def test_kind_refuses_a_leftover_cluster_and_leaves_it_alone(tmp_path, fakes, spy, no_images):
    (fakes.dir / "kind.log.clusters").write_text(f"other\n{CLUSTER}\n")
    with pytest.raises(pytest.UsageError, match=re.escape(f"kind delete cluster --name {CLUSTER}")):
        with providers.kind_target(kind_settings(), tmp_path):
            pass
    assert fakes.calls("kind") == [["get", "clusters"]]
    assert fakes.calls("kubectl") == [] and spy == []
    assert fakes.clusters() == ["other", CLUSTER]


@pytest.mark.parametrize("kind_bin", ["/nonexistent/kind", None])
def test_kind_missing_binary_is_a_usage_error_never_a_download(tmp_path, monkeypatch, spy, no_download, kind_bin):
    bare = tmp_path / "bin"  # a PATH with kubectl but no kind anywhere
    bare.mkdir()
    (bare / "kubectl").symlink_to(FAKE_BIN / "kubectl")
    monkeypatch.setenv("PATH", str(bare))
    with pytest.raises(pytest.UsageError, match="--kind-bin"):
        with providers.kind_target(kind_settings(kind_bin=kind_bin), tmp_path):
            pass
    assert spy == [] and no_download == []
    assert not (tmp_path / ".pytest-kind").exists()


def test_kind_bin_not_executable(tmp_path):
    plain = tmp_path / "kind"
    plain.write_text("#!/bin/sh\n")  # not chmod +x
    with pytest.raises(pytest.UsageError, match=r"--kind-bin .*not an executable"):
        providers.kind_binary(kind_settings(kind_bin=str(plain)))


# ----- bad input: one usage error at session start -----------------------------------------

INNER = """
def test_uses_argocd(argocd):
    pass

def test_uses_kube(kube):
    pass

def test_also_kube(kube):
    pass
"""

KUBECONFIG = """apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {{server: "https://127.0.0.1:{port}", insecure-skip-tls-verify: true}}
users:
- name: u
  user: {{token: not-a-real-token}}
contexts:
- name: ctx
  context: {{cluster: c, user: u}}
current-context: ctx
"""


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _kubeconfig(path: Path) -> Path:
    path.write_text(KUBECONFIG.format(port=_closed_port()))
    return path


def run_inner(pytester, *args):
    pytester.makepyfile(test_inner=INNER)
    return pytester.runpytest("-p", "gitops_conformance.fixtures.results", "-p", "gitops_conformance.fixtures.plugin",
                              "-p", "no:cacheprovider",
                              "--report-dir", str(pytester.path / "out"), *args)


def assert_one_usage_error(result, *needles: str) -> str:
    out = result.stdout.str() + "\n" + result.stderr.str()
    assert result.ret == pytest.ExitCode.USAGE_ERROR, out
    for needle in needles:
        assert out.count(needle) == 1, f"{needle!r} should appear exactly once in:\n{out}"
    assert "Traceback" not in out and "raise " not in out
    assert not re.search(r"^E\s", out, re.M), out  # no assertion/exception blocks
    assert not re.search(r"\b(passed|failed|error|errors)\b.* in \d", out), out  # no test ran, none errored
    return out


@pytest.mark.parametrize("args, needles", [
    (["--cluster", "bogus"], ["--cluster 'bogus': choose one of local, kind, existing"]),
    (["--timeout-scale", "abc"], ["--timeout-scale 'abc' is not a number"]),
    (["--timeout-scale", "0"], ["--timeout-scale 0.0 must be > 0"]),
    (["--engine", "fluxcd"], ["--engine 'fluxcd': supported engines are argocd, flux"]),
    (["--cluster", "existing", "--kubeconfig", "/nonexistent/kubeconfig"],
     ["--kubeconfig /nonexistent/kubeconfig: not a readable file"]),
    (["--cluster", "local", "--reuse-testbed", "{tmp}"],
     ["no testbed state there (run `gitops-conformance testbed up --state-dir {tmp}`)"]),
    (["--cluster", "kind", "--reuse-testbed", "{tmp}"], ["--reuse-testbed only applies to --cluster local"]),
    (["--git-url", "example.com/repo"], ["--git-url 'example.com/repo': expected an http(s):// or ssh URL"]),
], ids=["cluster", "timeout-scale", "timeout-scale-range", "engine", "kubeconfig", "reuse-testbed",
        "reuse-not-local", "git-url"])
def test_bad_option_is_one_usage_error(pytester, args, needles):
    tmp = str(pytester.path / "empty-state")
    os.mkdir(tmp)
    out = assert_one_usage_error(run_inner(pytester, *[a.format(tmp=tmp) for a in args]),
                                 *[n.format(tmp=tmp) for n in needles])
    assert "ERROR: " in out


def test_kubeconfig_directory_is_not_readable_file(pytester):
    assert_one_usage_error(run_inner(pytester, "--cluster", "existing", "--kubeconfig", str(pytester.path)),
                           "not a readable file")


def test_kubeconfig_not_yaml(pytester):
    bad = pytester.path / "bad.kubeconfig"
    bad.write_text("clusters: [unclosed\n")
    assert_one_usage_error(run_inner(pytester, "--cluster", "existing", "--kubeconfig", str(bad), "--allow-context", "ctx"),
                           f"kubeconfig {bad}: not valid YAML")


def test_kubeconfig_without_the_named_context(pytester):
    kc = _kubeconfig(pytester.path / "kc")
    assert_one_usage_error(run_inner(pytester, "--cluster", "existing", "--kubeconfig", str(kc), "--context", "nope"),
                           "context 'nope' not found (have: ctx)")


@pytest.mark.parametrize("allow", [[], ["--allow-context", "prod"]], ids=["absent", "different"])
def test_existing_context_not_allowed_is_refused(pytester, fakes, allow):
    kc = _kubeconfig(pytester.path / "kc")
    assert_one_usage_error(run_inner(pytester, "--cluster", "existing", "--kubeconfig", str(kc), *allow),
                           "refusing to run against context 'ctx'", "pass --allow-context ctx")
    assert fakes.calls("kubectl") == []  # refused before touching the cluster


@pytest.mark.skipif(not shutil.which("kubectl"), reason="needs a real kubectl on PATH")
def test_existing_unreachable_cluster(pytester):
    """The real kubectl against a closed port."""
    kc = _kubeconfig(pytester.path / "kc")
    out = assert_one_usage_error(run_inner(pytester, "--cluster", "existing", "--kubeconfig", str(kc),
                                           "--allow-context", "ctx", "--context", "ctx"),
                                 "context 'ctx' is not reachable")
    assert "was refused" in out


def argocd_installed(fakes) -> None:
    """The fake kubectl's cluster state: an argocd-server Deployment in namespace argocd."""
    (fakes.dir / "kubectl.log.state").write_text(json.dumps({"namespaces": ["argocd"], "workloads": {"argocd": {
        "argocd-server": {"kind": "Deployment", "image": "quay.io/argoproj/argocd:v0"}}}}))


def test_existing_unreachable_seen_by_kube_fixture(pytester, fakes):
    """The fake kubectl says Argo CD is there (so the target opens); the Kubernetes client then
    cannot reach the API server when the peers are deployed: one usage error says so."""
    kc = _kubeconfig(pytester.path / "kc")
    argocd_installed(fakes)
    assert_one_usage_error(run_inner(pytester, "--cluster", "existing", "--kubeconfig", str(kc),
                                     "--allow-context", "ctx"), "is not reachable")


def test_existing_without_argocd_names_install(pytester, fakes):
    kc = _kubeconfig(pytester.path / "kc")
    assert_one_usage_error(run_inner(pytester, "--cluster", "existing", "--kubeconfig", str(kc), "--allow-context", "ctx"),
                           "context 'ctx': Argo CD is not installed (no argocd-server in namespace argocd)",
                           "pass --install")
    assert fakes.calls("kubectl") == [["--kubeconfig", str(kc), "-n", "argocd", "get", "deployments,statefulsets", "-o", "json"]]


def test_existing_without_flux_names_what_is_missing(pytester, fakes):
    """--engine flux on a cluster with no Flux: every Deployment Step 1 would make is named."""
    kc = _kubeconfig(pytester.path / "kc")
    out = assert_one_usage_error(
        run_inner(pytester, "--engine", "flux", "--cluster", "existing", "--kubeconfig", str(kc), "--allow-context", "ctx"),
        "context 'ctx': Flux (and Flagger) is not installed", "pass --install")
    for missing in ("flux-system/source-controller", "flux-system/kustomize-controller",
                    "flux-system/notification-controller", "flagger-system/flagger"):
        assert missing in out
    assert fakes.calls("kubectl") == [["--kubeconfig", str(kc), "-n", ns, "get", "deployments", "-o", "json"]
                                      for ns in ("flux-system", "flagger-system")]


@pytest.mark.parametrize("kind_bin", [[], ["--kind-bin", "/nonexistent/kind"]], ids=["none-on-path", "missing-path"])
def test_kind_without_kind_binary_is_one_usage_error(pytester, monkeypatch, no_download, kind_bin):
    bare = pytester.path / "bin"
    bare.mkdir()
    (bare / "kubectl").symlink_to(FAKE_BIN / "kubectl")
    monkeypatch.setenv("PATH", str(bare))
    assert_one_usage_error(run_inner(pytester, "--cluster", "kind", "--git-url", "https://git.example.invalid/s.git", *kind_bin),
                           "--kind-bin")
    assert no_download == []
    assert not (pytester.path / ".pytest-kind").exists()


# ----- local: only a testbed this run started, or the one --reuse-testbed names -------------

def _leftover_state(state: Path, pid: int) -> Path:
    (state / "pids").mkdir(parents=True)
    (state / "state.json").write_text(json.dumps({"endpoints": {}}))
    (state / "pids" / "kube-apiserver.pid").write_text(str(pid))
    return state


def test_local_refuses_a_running_leftover_testbed(pytester, monkeypatch, tmp_path):
    import subprocess

    leftover = subprocess.Popen(["sleep", "60"])  # stands for a killed run's still-running component
    try:
        state = _leftover_state(tmp_path / "leftover", leftover.pid)
        monkeypatch.setenv("GITOPS_CONFORMANCE_TESTBED_DIR", str(state))
        out = assert_one_usage_error(run_inner(pytester, "--cluster", "local"),
                                     f"`gitops-conformance testbed down --state-dir {state}`")
        assert f"--reuse-testbed {state}" in out and f"kube-apiserver (pid {leftover.pid})" in out, out
        assert leftover.poll() is None, "the refusal must not touch the leftover's processes"
    finally:
        leftover.kill()
        leftover.wait()


def test_local_cleans_a_dead_leftover_by_itself(tmp_path):
    import subprocess

    from gitops_conformance.testbed.stack import Testbed

    gone = subprocess.Popen(["true"])
    gone.wait()
    tb = Testbed(_leftover_state(tmp_path / "leftover", gone.pid), out=lambda line: None)
    providers.refuse_leftover(tb)  # nothing of it runs: no usage error
    tb._clean_stale()  # what `up` does first
    assert tb.sup.pids() == {}
