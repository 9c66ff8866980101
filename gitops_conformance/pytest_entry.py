"""pytest11 entry point: installing gitops-conformance must not change anyone else's pytest runs.

pytest loads every installed pytest11 plugin in every session. The suite's plugins set a default
`-n`, write junit.xml and conformance.json, handle SIGTERM and open a cluster target: none of that
may happen in a project that merely has this package installed. So this module only declares the
ini switch and loads gitops_conformance.plugin when a session asks for it: `gitops_conformance =
true` in the project's pytest configuration (this repository's pyproject.toml says so), `-o
gitops_conformance=true`, or `-p gitops_conformance.plugin` (what `gitops-conformance certify` passes).
"""
import pytest

INI = "gitops_conformance"
PLUGIN = "gitops_conformance.plugin"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(INI, type="bool", default=False,
                  help="load the gitops-conformance suite's plugins (options, fixtures, reports) in this session")


@pytest.hookimpl(tryfirst=True)  # before conftests: the plugins' options must exist when args are parsed
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    if early_config.getini(INI):
        early_config.pluginmanager.import_plugin(PLUGIN)
