"""The testbed's test-friendly timings, in ONE documented block (Argo Rollouts' e2e style).

Production defaults are tuned for big clusters; a conformance run wants answers in
seconds. Each value here is what the testbed starts the real component with.
"""
from __future__ import annotations

# Argo CD application controller: how often every app is re-compared with Git
# even without a webhook (argocd-cm `timeout.reconciliation`, default 180s).
# The suite pushes a real webhook on every commit, so this is only the fallback.
ARGOCD_RECONCILIATION_SECONDS = 30
# Jitter added to the reconciliation period (default 60s): none, for repeatability.
ARGOCD_RECONCILIATION_JITTER_SECONDS = 0
# Image Updater: how often registries are polled (default 2m).
IMAGE_UPDATER_INTERVAL = "5s"
# Number of fake (kwok) nodes; pods are spread over them by the real scheduler.
KWOK_NODES = 2
# Bounds for `up`: per component health wait, in seconds.
HEALTH_TIMEOUT = {
    "etcd": 30, "kube-apiserver": 60, "kube-controller-manager": 45, "kube-scheduler": 45,
    "kwok": 30, "redis": 15, "argocd-repo-server": 45, "argocd-application-controller": 45,
    "argocd-server": 60, "argocd-notifications": 45, "rollouts-controller": 45,
    "argocd-image-updater": 45, "source-controller": 45, "kustomize-controller": 45,
    "notification-controller": 45, "flagger": 45, "default": 30,
}
