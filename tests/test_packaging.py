"""Packaging: the suite's folders are imported as gitops_conformance.<folder>, never as top-level
names that clash with PyPI's (`fixtures`, `reports`, `audit`, ...), and the pytest11 entry point
changes nothing in a session that does not ask for the suite."""
pytest_plugins = ["pytester"]

import ast
import importlib.metadata
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from gitops_conformance import plugin as suite_plugins

REPO_ROOT = Path(__file__).resolve().parent.parent
FOLDERS = ("fixtures", "scenarios", "suites", "reports", "audit", "testbed")


def _python_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files", "*.py"], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    return [REPO_ROOT / line for line in listed.stdout.splitlines()]


def test_no_module_imports_a_folder_as_a_top_level_name():
    offenders = []
    for path in _python_files():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = ([node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module
                     else [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            offenders += [f"{path.relative_to(REPO_ROOT)}:{node.lineno}: {name}"
                          for name in names if name.split(".")[0] in FOLDERS]
    assert not offenders, ("import these as gitops_conformance.<folder>, never as top-level names "
                           "(they clash with PyPI packages): " + "; ".join(offenders))


# docs/architecture.md's picture: each layer imports only layers below it; testbed and audit stand
# beside each other. Modules of gitops_conformance/ itself are the contract (bottom) or the
# applications that assemble everything (top).
CONTRACT = ("gitops_conformance", "gitops_conformance.__version__", "gitops_conformance.items", "gitops_conformance.waiter",
            "gitops_conformance.redact")
LAYERS = {"contract": 0, "testbed": 1, "audit": 1, "fixtures": 2, "scenarios": 3, "suites": 4, "reports": 5, "app": 6}


def _layer(module: str) -> str:
    parts = module.split(".")
    if parts[0] != "gitops_conformance":
        return ""
    if len(parts) > 1 and parts[1] in LAYERS:
        return parts[1]
    return "contract" if ".".join(parts[:2]) in CONTRACT else "app"


def _module_name(path: Path) -> str:
    rel = path.relative_to(REPO_ROOT).with_suffix("")
    parts = [p for p in rel.parts if p != "__init__"]
    return ".".join(parts if parts[0] == "gitops_conformance" else ["gitops_conformance", *parts])


def test_no_layer_imports_one_above_it_or_beside_it():
    upward = []
    for path in _python_files():
        if path.relative_to(REPO_ROOT).parts[0] not in (*FOLDERS, "gitops_conformance"):
            continue  # tests/, benchmarks/: users of every layer
        module = _module_name(path)
        here = _layer(module)
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1] + ([base] if base else []))
                targets = [f"{base}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            for target in targets:
                there = _layer(target)
                if not there or there == here:
                    continue
                if LAYERS[there] >= LAYERS[here]:
                    upward.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno}: {here} imports {target} ({there})")
    assert not upward, "imports against the layers of docs/architecture.md: " + "; ".join(upward)


def test_every_import_of_the_package_resolves_inside_this_checkout():
    """An editable install of another checkout maps gitops_conformance.<folder> there too: a module
    this checkout no longer has (renamed, moved) would still import, silently, from the other one."""
    probe = textwrap.dedent(f"""
        import ast, importlib.util, pathlib, sys
        root = pathlib.Path({str(REPO_ROOT)!r})
        outside = set()
        for name in {[str(p.relative_to(REPO_ROOT)) for p in _python_files()]!r}:
            for node in ast.walk(ast.parse((root / name).read_text())):
                if isinstance(node, ast.ImportFrom) and not node.level and (node.module or "").startswith("gitops_conformance"):
                    for candidate in [f"{{node.module}}.{{a.name}}" for a in node.names] + [node.module]:
                        try:  # `from module import Name`: Name is no module, find_spec says so by raising
                            spec = importlib.util.find_spec(candidate)
                        except (ImportError, AttributeError):
                            spec = None
                        if spec and spec.origin:
                            if not spec.origin.startswith(str(root)):
                                outside.add(f"{{name}}: {{candidate}} -> {{spec.origin}}")
                            break
        print("\\n".join(sorted(outside)))
    """)
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert not done.stdout.strip(), "imports resolved outside this checkout:\n" + done.stdout


def test_a_decoy_fixtures_package_first_on_the_path_neither_breaks_the_suite_nor_is_replaced(tmp_path):
    """What a user with PyPI's `fixtures` (testtools, OpenStack) installed has: both coexist."""
    (tmp_path / "fixtures").mkdir()
    (tmp_path / "fixtures" / "__init__.py").write_text("DECOY = True\n")
    (tmp_path / "gitops_conformance").symlink_to(REPO_ROOT / "gitops_conformance")
    probe = textwrap.dedent(f"""
        import importlib, sys
        import gitops_conformance.plugin as plugin, gitops_conformance.cli
        for name in plugin.pytest_plugins:
            importlib.import_module(name)
        import fixtures
        assert getattr(fixtures, "DECOY", False), f"`import fixtures` found {{fixtures.__file__}}, not the decoy"
        top = sorted(set({FOLDERS!r}) - {{"fixtures"}} & set(sys.modules))
        assert not top, f"imported as top-level names: {{top}}"
        print("ok", len(plugin.pytest_plugins))
    """)
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "PYTHONSAFEPATH": "1"}  # safe path: not the cwd
    done = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["ok", str(len(suite_plugins.pytest_plugins))]


def test_the_wheel_carries_the_folders_inside_the_package_only(tmp_path):
    source = tmp_path / "src"
    listed = subprocess.run(["git", "ls-files"], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    for line in listed.stdout.splitlines():
        if (REPO_ROOT / line).is_file():
            (source / line).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO_ROOT / line, source / line)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
                            "-w", str(tmp_path / "dist"), str(source)], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith((".dist-info", ".data"))}
    assert top == {"gitops_conformance"}, f"top-level names in the wheel: {sorted(top)}"
    for expected in ("gitops_conformance/fixtures/kube.py", "gitops_conformance/suites/test_prune.py",
                     "gitops_conformance/testbed/versions.yaml", "gitops_conformance/testbed/peers/receiver.py",
                     "gitops_conformance/testbed/kind/nodeimage.py", "gitops_conformance/audit/rules.py"):
        assert expected in names, f"{expected} missing from the wheel"
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "gitops_conformance = gitops_conformance.pytest_entry" in zipfile.ZipFile(wheel).read(entry_points).decode()


def _entry_point_installed() -> bool:
    return any(ep.value == "gitops_conformance.pytest_entry" for ep in importlib.metadata.entry_points(group="pytest11"))


@pytest.fixture
def foreign_project(pytester: pytest.Pytester) -> pytest.Pytester:
    """Someone else's project, in an environment where gitops-conformance is installed."""
    assert _entry_point_installed(), "the pytest11 entry point is not installed: run scripts/setup.sh (pip install -e .)"
    pytester.makepyfile(test_theirs="def test_theirs():\n    assert True\n")
    return pytester


def test_the_entry_point_is_inert_in_a_session_that_does_not_ask(foreign_project: pytest.Pytester):
    result = foreign_project.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    out = result.stdout.str()
    assert "gitops-conformance:" not in out and "[gw0]" not in out and "created:" not in out, out
    assert not (foreign_project.path / "reports").exists(), "wrote reports/ into someone else's project"
    helptext = foreign_project.runpytest_subprocess("--help").stdout.str()
    assert "--engine" not in helptext and "--report-dir" not in helptext


@pytest.mark.parametrize("ask", [["-o", "gitops_conformance=true"], ["-p", "gitops_conformance.plugin"]])
def test_the_entry_point_loads_the_suite_when_asked(foreign_project: pytest.Pytester, ask: list[str]):
    helptext = foreign_project.runpytest_subprocess(*ask, "--help").stdout.str()
    assert "--engine" in helptext and "--report-dir" in helptext, helptext[-2000:]
