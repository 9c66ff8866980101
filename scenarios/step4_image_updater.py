"""Step 4 as a user performs it: push `myapp` tags to the registry, create the write-back
Git credentials secret, and annotate the Applications for Argo CD Image Updater (prod:
semver + git write-back; staging: digest + argocd write-back).

Each test gets its own registry repository (`<registry>/<unique>/myapp`), so the updater's
view of one test's tags never leaks into another's.
"""
from __future__ import annotations

import dataclasses
import re
from typing import Callable

import pytest

from gitops_conformance import redact
from gitops_conformance.fixtures import checks, diagnose, hints, names, probes
from gitops_conformance.fixtures.argocd import ArgoCD
from gitops_conformance.fixtures.cleanup import Tracker
from gitops_conformance.fixtures.kube import Kube
from gitops_conformance.fixtures.peers import Registry
from gitops_conformance.fixtures.plugin import Diagnostics
from gitops_conformance.scenarios import step2_applications as step2


ANN = "argocd-image-updater.argoproj.io"
ALIAS = "myapp"
# the tag set: only v1.0.0 and v1.1.0 are stable semver releases
TAGS = ("v1.0.0", "v1.1.0", "v1.2.0-rc1", "v2.0.0-beta", "staging-abc", "latest")
ALLOW_SEMVER = r"regexp:^v[0-9]+\.[0-9]+\.[0-9]+$"
IGNORE_RC = "regexp:.*-rc.*"
ALLOW_STAGING = "regexp:^staging-.*"
UPDATER_AUTHOR = "argocd-image-updater"  # v0.12's default commit author name
STAGING_PATH = "apps/myapp/overlays/staging"


@dataclasses.dataclass
class RegistryImage:
    """One test's image: `name` is what manifests carry (the registry's host/path)."""

    registry: Registry
    repository: str

    @property
    def name(self) -> str:
        return f"{self.registry.host}/{self.repository}"

    def push(self, *tags: str) -> dict[str, str]:
        """Push a distinct image per tag; returns tag -> digest."""
        return {t: self.registry.push(self.repository, t) for t in tags}

    def move(self, tag: str, build: str) -> str:
        """Point `tag` at a new build (push `build`, retag): how a CI moves staging-abc."""
        self.registry.push(self.repository, build)
        return self.registry.retag(self.repository, build, tag)

    def tags(self) -> list[str]:
        return self.registry.tags(self.repository)


def new_image(registry: Registry, unique: Callable[[str], str], tracker: Tracker) -> RegistryImage:
    """A registry repository for one test, `<run label>/<unique>/myapp`, removed at teardown
    (and by the session sweep, which finds it by the run label)."""
    image = RegistryImage(registry=registry, repository=f"{names.run_label()}/{unique('iu')}/myapp")
    tracker.finalizers.append(lambda: registry.delete_repository(image.repository))
    return image


def semver_annotations(image: str, creds_secret: str, *, allow: str = ALLOW_SEMVER, ignore: str = IGNORE_RC,
                       namespace: str = "argocd") -> dict[str, str]:
    """The procedure's myapp-prod-autoupdate.yaml annotations."""
    return {
        f"{ANN}/image-list": f"{ALIAS}={image}",
        f"{ANN}/{ALIAS}.update-strategy": "semver",
        f"{ANN}/{ALIAS}.allow-tags": allow,
        f"{ANN}/{ALIAS}.ignore-tags": ignore,
        f"{ANN}/write-back-method": f"git:secret:{namespace}/{creds_secret}",
        f"{ANN}/git-branch": "main",
    }


def digest_annotations(image: str, tag: str = "staging-abc", *, allow: str = ALLOW_STAGING) -> dict[str, str]:
    """The procedure's myapp-staging.yaml annotations. The digest strategy tracks ONE tag,
    so the image-list entry names it (v0.12 needs the tag as the version constraint)."""
    return {
        f"{ANN}/image-list": f"{ALIAS}={image}:{tag}",
        f"{ANN}/{ALIAS}.update-strategy": "digest",
        f"{ANN}/{ALIAS}.allow-tags": allow,
        f"{ANN}/write-back-method": "argocd",
    }


def create_git_creds(kube: Kube, tracker: Tracker, name: str, username: str, token: str,
                     namespace: str = "argocd") -> str:
    """`kubectl create secret generic git-creds --from-literal=username=... --from-literal=password=...`;
    the password goes in on stdin (--from-file=password=/dev/stdin), never argv, so `ps` never shows it."""
    redact.register_secret(token)
    tracker.other.append(("secret", name, namespace))
    kube.kubectl("create", "secret", "generic", name, "-n", namespace,
                 f"--from-literal=username={username}", "--from-file=password=/dev/stdin", stdin=token)
    kube.label("secret", [name], namespace, names.standard_labels())
    return name


def annotate(kube: Kube, app_name: str, annotations: dict[str, str], namespace: str = "argocd") -> None:
    """Re-apply the Application with the updater's annotations (here: `kubectl annotate`)."""
    kube.kubectl("annotate", "--overwrite", "applications.argoproj.io", app_name, "-n", namespace,
                 *(f"{k}={v}" for k, v in annotations.items()))


def tag_filter(allow: str, ignore: str | None = None) -> Callable[[str], bool]:
    """The annotations' allow/ignore `regexp:` filters in Python (RE2 and `re` agree on these),
    the check's stand-in for `argocd-image-updater test` when saying why nothing matched."""
    def rx(spec: str) -> re.Pattern:
        return re.compile(spec.removeprefix("regexp:"))

    allow_rx, ignore_rx = rx(allow), (rx(ignore) if ignore else None)
    return lambda t: bool(allow_rx.search(t)) and not (ignore_rx and ignore_rx.search(t))


def deploy_staging(waiter: checks.Waiter, kube: Kube, argocd: ArgoCD, tracker: Tracker, diagnostics: Diagnostics,
                   prod: step2.DeployedApp, unique: Callable[[str], str], tag: str = "staging-abc") -> step2.DeployedApp:
    """myapp-staging: the staging overlay of prod's repo, on `tag`, synced (not yet annotated)."""
    path = f"{STAGING_PATH}/kustomization.yaml"
    doc = prod.repo.read_yaml(path)[0]
    doc["images"][0]["newTag"] = tag
    prod.repo.write_yaml(path, doc)
    sha = prod.repo.commit_and_push(f"Staging runs {tag}")
    name, ns = unique("myapp-staging"), doc["namespace"]
    tracker.namespaces.append(ns)  # CreateNamespace makes it; the finalizer does not delete it
    diagnostics.namespaces.append(ns)
    diagnostics.apps.append(name)
    step2.apply(kube, tracker, step2.application(name, prod.repo.url, STAGING_PATH, ns))
    waiter.until(
        checks.all_of(probes.app_synced(argocd, name, revision=sha),
                      probes.deployment(kube, ns, "myapp", replicas=2, image=f"{prod.image}:{tag}")),
        timeout=step2.FIRST_SYNC_TIMEOUT, what=f"first sync of {name} (procedure step 4, staging)",
        expected=f"Synced at {sha[:10]}, Healthy, Deployment myapp running {tag} in {ns}",
        remediation=hints.ON_FAILURE[2], diagnose=diagnose.for_app(argocd, name, namespace=ns, deployments=["myapp"]))
    return step2.DeployedApp(name=name, namespace=ns, repo=prod.repo, manifest={}, synced_revision=sha, image=prod.image)


def prod_path_file(app_name: str) -> str:
    """Where v0.12's git write-back puts a Kustomize app's override (write-back-target default)."""
    return f"{step2.PROD_PATH}/.argocd-source-{app_name}.yaml"


def https_url(target) -> Callable | None:
    """The Application must name the repo by an https:// URL: v0.12 refuses username/password
    write-back credentials for any other scheme ("unknown repository type")."""
    git = target.git
    if git.https_base_url and git.repo_base_url:
        return lambda repo: git.https_url(repo.url) or repo.url
    return None  # --git-url: the scratch repo's own URL (https on a real Git host)


@pytest.fixture
def deploy_image_updater(deploy_myapp, kube: Kube, tracker: Tracker, diagnostics: Diagnostics, target,
                         unique) -> Callable[..., tuple[step2.DeployedApp, RegistryImage]]:
    """deploy_image_updater(allow=ALLOW_SEMVER, creds=None) -> (app, image): Step 4 for prod. Push
    the tags, deploy myapp-prod on v1.0.0 (step 2), create the git-creds secret (default: the
    suite's Git identity, which may push) and annotate the Application for semver + git write-back."""
    diagnostics.components.append("argocd-image-updater")
    if target.registry is None:
        pytest.skip("this target has no registry the suite can push to")

    def make(*, allow: str = ALLOW_SEMVER,
             creds: tuple[str, str] | None = None) -> tuple[step2.DeployedApp, RegistryImage]:
        image = new_image(target.registry, unique, tracker)
        image.push(*TAGS)
        app = deploy_myapp(image=image.name, repo_url=https_url(target))
        username, token = creds or (target.git.username, target.git.token)
        secret = create_git_creds(kube, tracker, unique("git-creds"), username, token, target.argocd_namespace)
        annotate(kube, app.name, semver_annotations(image.name, secret, allow=allow, namespace=target.argocd_namespace),
                 target.argocd_namespace)
        return app, image

    return make
