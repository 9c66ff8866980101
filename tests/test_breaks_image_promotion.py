"""The image_promotion check must be able to fail, visibly: each test sets Step 4 up wrongly
on purpose and asserts the check FAILS within its bound with a message naming the cause.

Marked like tests/test_breaks_setup.py: local testbed, run serially.
"""
from __future__ import annotations

import pytest

from tests.breaking import check_failure
from gitops_conformance.scenarios import step4_image_updater as step4
from gitops_conformance.suites import image_promotion_checks as ipc

pytestmark = [pytest.mark.testbed, pytest.mark.breaks_setup]

BOUND = 30.0  # three updater intervals on the testbed; a working promotion takes ~13s


def _fails(fn, *args, bound: float = BOUND, **kwargs):
    return check_failure(fn, *args, timeout=bound, bound=bound, **kwargs)


@pytest.mark.breaks("suites.image_promotion_checks.promoted", "suites.image_promotion_checks.written_back")
def test_promotion_check_fails_when_allow_tags_matches_nothing(deploy_image_updater, kube, target, waiter):
    allow = r"regexp:^release-[0-9]+$"  # a typo'd pattern: no pushed tag looks like this
    app, image = deploy_image_updater(allow=allow)
    failure = _fails(ipc.promoted, waiter, kube, target, app, image, "v1.1.0",
                     allowed=step4.tag_filter(allow, step4.IGNORE_RC))
    message = str(failure)
    assert "no tag matched" in message and "app stays at v1.0.0" in message, message
    # the updater's own word, from its log (v0.12 reports "no match" as "already on latest")
    assert "already on latest allowed version" in message or "No suitable image tag" in message, message
    assert "Procedure step" not in message and "verify tag regex matches actual tags" in message  # ON_FAILURE[4]
    # nothing was promoted, so nothing was written back either
    written = str(check_failure(ipc.written_back, app, bound=5))
    assert "Image Updater's write-back" in written and "no such commit" in written, written


@pytest.mark.breaks("suites.image_promotion_checks.promoted")
def test_promotion_check_fails_visibly_when_write_back_cannot_push(deploy_image_updater, kube, target, waiter):
    git = target.git
    if not (git.read_only_username and git.read_only_token):
        pytest.skip("the Git server has no read-only user to break write-back with")
    app, image = deploy_image_updater(creds=(git.read_only_username, git.read_only_token))
    failure = _fails(ipc.promoted, waiter, kube, target, app, image, "v1.1.0",
                     allowed=step4.tag_filter(step4.ALLOW_SEMVER, step4.IGNORE_RC))
    message = str(failure)
    # not silent: the updater chose v1.1.0, its push was refused, and the check says so
    assert f"no commit by {step4.UPDATER_AUTHOR}" in message and "app stays at v1.0.0" in message, message
    assert "Could not update application spec" in message and "403" in message, message
    assert "403" in failure.evidence[f"log-argocd-image-updater-{app.name}"]
    assert git.read_only_token not in message + "".join(failure.evidence.values())


@pytest.mark.breaks("suites.image_promotion_checks.digest_followed")
def test_digest_check_fails_when_the_updater_is_stopped(deploy_myapp, kube, argocd, tracker, diagnostics, target,
                                                        unique, testbed_handle, waiter):
    """Step 4's staging app set up as the procedure says, but argocd-image-updater is not running:
    nothing pins the digest, and the failure names the stopped component first."""
    image = step4.new_image(target.registry, unique, tracker)
    digests = image.push(*step4.TAGS)
    prod = deploy_myapp(image=image.name)
    staging = step4.deploy_staging(waiter, kube, argocd, tracker, diagnostics, prod, unique)
    with testbed_handle.stopped("argocd-image-updater"):
        step4.annotate(kube, staging.name, step4.digest_annotations(image.name), target.argocd_namespace)
        message = str(_fails(ipc.digest_followed, waiter, kube, target, staging, image, "staging-abc",
                             digests["staging-abc"]))
    assert "cause: argocd-image-updater is not running" in message, message
    assert "Image Updater digest tracking" in message and "Deployment runs" in message, message
