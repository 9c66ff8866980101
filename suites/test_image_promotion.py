"""Validation: Image Updater promotes new image versions (procedure step 4).

prod: semver strategy + git write-back moves the app to the highest stable tag (never an
rc, beta or other tag) by a commit in Git, and a newly pushed release promotes again.
staging: digest strategy + argocd write-back follows a moved tag to its new digest.
"""
from __future__ import annotations

import time

import pytest

from gitops_conformance.scenarios import step4_image_updater as step4
from gitops_conformance.suites import image_promotion_checks as ipc

pytestmark = pytest.mark.validation("image_promotion")


def test_semver_promotes_highest_stable_tag_via_git(deploy_image_updater, kube, target, record_metric, record_check,
                                                    waiter):
    app, image = deploy_image_updater()
    allowed = step4.tag_filter(step4.ALLOW_SEMVER, step4.IGNORE_RC)
    ipc.promoted(waiter, kube, target, app, image, "v1.1.0", allowed=allowed)
    commit = ipc.written_back(app)
    record_check("updater write-back commit", f"a commit by {step4.UPDATER_AUTHOR} in Git", commit, True)

    t0 = time.monotonic()
    image.push("v1.3.0")  # a new release: promoted without any manual step
    ipc.promoted(waiter, kube, target, app, image, "v1.3.0", allowed=allowed, start_tag="v1.1.0")
    record_metric("tag_to_promoted_s", time.monotonic() - t0)


def test_digest_strategy_follows_moved_tag(deploy_myapp, kube, argocd, tracker, diagnostics, target, registry,
                                           unique, record_metric, waiter):
    diagnostics.components.append("argocd-image-updater")
    image = step4.new_image(registry, unique, tracker)
    digests = image.push(*step4.TAGS)
    prod = deploy_myapp(image=image.name)
    staging = step4.deploy_staging(waiter, kube, argocd, tracker, diagnostics, prod, unique)
    step4.annotate(kube, staging.name, step4.digest_annotations(image.name), target.argocd_namespace)
    ipc.digest_followed(waiter, kube, target, staging, image, "staging-abc", digests["staging-abc"])

    t0 = time.monotonic()
    moved = image.move("staging-abc", "build-2")  # CI re-points staging-abc at a new build
    assert moved != digests["staging-abc"]
    ipc.digest_followed(waiter, kube, target, staging, image, "staging-abc", moved)
    record_metric("tag_to_promoted_s", time.monotonic() - t0)
