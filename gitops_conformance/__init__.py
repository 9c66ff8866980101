"""gitops-conformance: certify a GitOps setup on a real Kubernetes cluster.

The checkout's top-level folders (fixtures/, scenarios/, suites/, reports/, audit/, testbed/) are
this package's subpackages, imported as `gitops_conformance.fixtures` and so on, never as
top-level names: PyPI has packages called `fixtures` (testtools, OpenStack), `reports`, `audit`...,
and installed side by side one would shadow the other. A wheel puts the folders inside the package
(pyproject's package-dir); in a checkout they sit beside it, and the lines below let the package
find them there, with or without an install.
"""
from pathlib import Path as _Path

__version__ = "0.1.0"

_CHECKOUT = _Path(__file__).resolve().parent.parent
if (_CHECKOUT / "fixtures" / "__init__.py").is_file() and (_CHECKOUT / "pyproject.toml").is_file():
    __path__.append(str(_CHECKOUT))  # noqa: F821 - a package's own search path
