"""Common Pitfall "Automatic prune disabled": a manifest removed from Git is removed from the
cluster (prune: true, with PruneLast)."""
from __future__ import annotations

import pytest

from suites import item_checks

pytestmark = pytest.mark.validation("prune")


def test_manifest_removed_from_git_is_pruned(deploy_myapp, kube, argocd, record_metric, record_check):
    app = deploy_myapp()
    record_metric("removal_to_pruned_s", item_checks.removed_manifest_is_pruned(kube, argocd, app))
    record_check("PruneLast", "the removal synced with PruneLast=true in syncOptions",
                 item_checks.prune_last(argocd, app), True)
