"""The item contract (gitops_conformance/items.py) holds against the code, so it stays true:

- every declared check is a conformance test that exists, and every conformance test is declared;
- every check function a declared check runs (a `suites.<x>_checks.<function>` call in the test)
  is named by at least one self-test's `@pytest.mark.breaks(...)`: a self-test that breaks the
  setup on purpose and asserts that the check fails with the right cause. A check nobody has
  shown can fail is a bug.
"""
from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

from gitops_conformance.items import ENGINES, ITEMS, PITFALLS, VALIDATION_ITEMS

REPO_ROOT = Path(__file__).resolve().parent.parent


def _collected_suite_tests(engine: str) -> dict[str, set[str]]:
    """file stem -> test names (with parameter ids), as pytest collects them for an engine (with
    the options that enable the optional items, so every declared check is collected)."""
    proc = subprocess.run([sys.executable, "-m", "pytest", "suites", "--collect-only", "-q", "-p", "no:cacheprovider",
                           "--engine", engine, "--audit-repo", str(REPO_ROOT / "tests" / "audit_repos" / "clean")],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    found: dict[str, set[str]] = {}
    for line in proc.stdout.splitlines():
        if "::" in line:
            path, name = line.split("::", 1)
            found.setdefault(Path(path).stem, set()).add(name)
    return found


def test_every_declared_check_is_a_collected_suite_test_and_every_suite_test_is_declared():
    """Per engine: a run collects exactly the checks its engine declares (the others' are deselected)."""
    for engine in ENGINES:
        collected = _collected_suite_tests(engine)
        for item in ITEMS:
            declared = {c.test for c in item.checks_for(engine)}
            assert collected.get(f"test_{item.id}", set()) == declared, (
                f"--engine {engine}: suites/test_{item.id}.py collects {sorted(collected.get(f'test_{item.id}', ()))}, "
                f"but the contract declares {sorted(declared)}")
        assert set(collected) == {f"test_{item.id}" for item in ITEMS if item.checks_for(engine)}


def test_the_contract_is_consistent():
    ids = [item.id for item in ITEMS]
    assert len(ids) == len(set(ids)) and len(VALIDATION_ITEMS) == 11
    for item in ITEMS:
        assert item.checks, f"{item.id} declares no check"
        assert len({c.test for c in item.checks}) == len(item.checks)
        assert item.on_failure.startswith(f"Procedure step {item.step}, on failure: ")
    from gitops_conformance.audit.rules import FIXES

    assert set(PITFALLS) == set(FIXES) and len(PITFALLS) == 8  # the procedure lists eight


def _check_modules(tree: ast.Module) -> dict[str, str]:
    """Local name -> module, for `from gitops_conformance.suites[.flux] import x_checks [as y]` in a suite file."""
    names = {}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module in ("gitops_conformance.suites", "gitops_conformance.suites.flux"):
            package = node.module.removeprefix("gitops_conformance.")
            for alias in node.names:
                if alias.name.endswith("_checks"):
                    names[alias.asname or alias.name] = f"{package}.{alias.name}"
    return names


def _check_functions_called(test: ast.FunctionDef, modules: dict[str, str]) -> set[str]:
    called = set()
    for node in ast.walk(test):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name) and node.func.value.id in modules
                and not node.func.attr[0].isupper()):  # a class (canary's Recorder) is an instrument, not a check
            called.add(f"{modules[node.func.value.id]}.{node.func.attr}")
    return called


def declared_check_functions() -> dict[str, set[str]]:
    """check function -> the declared checks (suite tests) that run it."""
    uses: dict[str, set[str]] = {}
    for item in ITEMS:
        tree = ast.parse((REPO_ROOT / "suites" / f"test_{item.id}.py").read_text())
        modules = _check_modules(tree)
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                for fn in _check_functions_called(node, modules):
                    uses.setdefault(fn, set()).add(f"{item.id}::{node.name}")
    return uses


def _marker_args(node: ast.AST) -> list[str]:
    """String arguments of every `pytest.mark.breaks(...)` call under node."""
    found = []
    for call in ast.walk(node):
        if (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr == "breaks"
                and isinstance(call.func.value, ast.Attribute) and call.func.value.attr == "mark"):
            found += [a.value for a in call.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
    return found


def broken_by_self_tests() -> dict[str, set[str]]:
    """check function -> the self-tests (file::test, or file for a module-wide mark) breaking it."""
    broken: dict[str, set[str]] = {}
    for path in sorted((REPO_ROOT / "tests").glob("test_*.py")):
        tree = ast.parse(path.read_text())
        for node in tree.body:
            if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "pytestmark" for t in node.targets):
                for fn in _marker_args(node):
                    broken.setdefault(fn, set()).add(path.name)
            elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                for fn in _marker_args(ast.Module(body=node.decorator_list if isinstance(node, ast.FunctionDef)
                                                  else [node], type_ignores=[])):
                    broken.setdefault(fn, set()).add(f"{path.name}::{node.name}")
    return broken


def test_every_check_function_of_a_declared_check_has_a_breaking_self_test():
    uses, broken = declared_check_functions(), broken_by_self_tests()
    assert uses, "no check function found in the suites: the scan is broken"
    missing = {fn: sorted(tests) for fn, tests in uses.items() if fn not in broken}
    assert not missing, ("check functions that no self-test breaks (add a test in tests/ marked "
                         "@pytest.mark.breaks(\"<module>.<function>\") that makes them fail): "
                         + "; ".join(f"{fn} (run by {', '.join(t)})" for fn, t in sorted(missing.items())))


def test_every_breaks_marker_names_a_real_check_function():
    for fn in broken_by_self_tests():
        module, _, name = fn.rpartition(".")
        assert callable(getattr(importlib.import_module(f"gitops_conformance.{module}"), name, None)), f"breaks({fn!r}): no such function"


def test_every_declared_check_runs_a_check_function():
    """A declared check whose test asserts inline has no function a self-test could break."""
    runs = {test for tests in declared_check_functions().values() for test in tests}
    inline = [f"{item.id}::{c.test.partition('[')[0]}" for item in ITEMS for c in item.all_checks
              if f"{item.id}::{c.test.partition('[')[0]}" not in runs]
    assert not inline, f"declared checks that call no suites.*_checks function: {inline}"
