"""Self-test: the initial-admin-secret check fails when step 1's Secret is gone, naming it."""
from __future__ import annotations

import pytest

from gitops_conformance.suites import install_checks
from tests.breaking import fails_within

pytestmark = [pytest.mark.testbed, pytest.mark.breaks_setup]


@pytest.mark.breaks("suites.install_checks.admin_secret_exists")
def test_admin_secret_check_fails_when_the_secret_is_deleted(kube, target):
    ns = target.argocd_namespace
    saved = kube.get("secret", "argocd-initial-admin-secret", ns)
    assert saved is not None, "the testbed should have argocd-initial-admin-secret"
    kube.kubectl("-n", ns, "delete", "secret", "argocd-initial-admin-secret")
    try:
        message = fails_within(install_checks.admin_secret_exists, kube, ns, bound=5)
        assert "argocd-initial-admin-secret" in message and "Secret not found" in message
        assert "On failure: For pod CrashLoopBackOff" in message  # the procedure's step 1 note
    finally:  # restore it exactly (its password is the testbed's admin password)
        restored = {k: saved[k] for k in ("apiVersion", "kind", "type", "data") if k in saved}
        restored["metadata"] = {"name": "argocd-initial-admin-secret", "namespace": ns,
                                "labels": saved["metadata"].get("labels") or {}}
        kube.apply(restored)
