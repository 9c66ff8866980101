"""Shared by the self-tests that run inner pytest sessions (pytester) with the results plugin."""
from __future__ import annotations


def isolate(monkeypatch, run_id: str) -> None:
    """The inner session's own report dir default and run id (the registry of secrets is
    restored after every test by tests/conftest.py)."""
    monkeypatch.delenv("GITOPS_CONFORMANCE_REPORT_DIR", raising=False)
    monkeypatch.setenv("GITOPS_CONFORMANCE_RUN_ID", run_id)


def run(pytester, *args):
    return pytester.runpytest("-p", "gitops_conformance.fixtures.results", "-p", "gitops_conformance.reports.plugin",
                              "--strict-markers", "-p", "no:cacheprovider", *args)


def declared_source(item_id: str, body: str = "pass", args: str = "", skip: set[str] = frozenset()) -> str:
    """Python source of conformance tests named as `item_id` declares its checks (the contract in
    gitops_conformance/items.py), each marked validation(item_id) and running `body`.

    A parametrised check (`name[p]`) becomes a parametrize over its ids; `skip` leaves checks out
    (by their declared name), as a deselection would.
    """
    from gitops_conformance.items import BY_ID

    groups: dict[str, list[str]] = {}
    for check in BY_ID[item_id].checks:
        if check.test in skip:
            continue
        name, _, param = check.test.partition("[")
        groups.setdefault(name, []).append(param.rstrip("]"))
    lines = ["import pytest"]
    for name, params in groups.items():
        lines.append(f"@pytest.mark.validation({item_id!r})")
        signature = args
        if params != [""]:
            lines.append(f"@pytest.mark.parametrize('declared_param', {params!r})")
            signature = ", ".join(filter(None, ["declared_param", args]))
        lines.append(f"def {name}({signature}):")
        lines += ["    " + line for line in body.splitlines()]
    return "\n".join(lines) + "\n"


def declared_names(item_id: str) -> list[str]:
    from gitops_conformance.items import BY_ID

    return [check.test for check in BY_ID[item_id].checks]
