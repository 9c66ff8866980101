"""Scenario factory fixtures: each performs procedure steps as a user would and hands the
test what it made. Registered for suites/ and tests/ by the top-level conftest."""
from __future__ import annotations

import dataclasses
from typing import Callable

import pytest

from fixtures import checks, diagnose, hints, names, probes
from fixtures.argocd import ArgoCD
from fixtures.cleanup import Tracker
from fixtures.gitrepo import GitRepo
from fixtures.kube import Kube
from fixtures.peers import GitHost, generate_keypair
from fixtures.plugin import Diagnostics

from . import applications, myapp, repos
from fixtures.providers import Target

FIRST_SYNC_TIMEOUT = 90.0


@dataclasses.dataclass
class DeployedApp:
    """Step 2 done: the myapp layout in a fresh repo and its Application, synced."""

    name: str
    namespace: str
    repo: GitRepo
    manifest: dict
    synced_revision: str
    image: str = myapp.DEFAULT_IMAGE


@pytest.fixture
def deploy_myapp(kube: Kube, argocd: ArgoCD, tracker: Tracker, diagnostics: Diagnostics,
                 git_repo: Callable[..., GitRepo], namespace: Callable[..., str],
                 unique: Callable[[str], str], waiter: checks.Waiter) -> Callable[..., DeployedApp]:
    """deploy_myapp(**changes) -> DeployedApp. `changes` alter the procedure's Application
    (dotted paths, e.g. {"spec.syncPolicy.automated.selfHeal": False}); the self-tests use
    them to break the setup on purpose. `via_cli=True` creates it with `argocd app create`.
    `repo_url(repo)` names another URL of the same repo in Argo CD (e.g. HTTPS, for Image Updater)."""

    def make(*, via_cli: bool = False, wait: bool = True, image: str = myapp.DEFAULT_IMAGE,
             changes: dict | None = None, repo_url: Callable[[GitRepo], str] | None = None) -> DeployedApp:
        repo = git_repo("myapp")
        ns = namespace("prod", create=False)  # CreateNamespace=true makes it, as in the procedure
        myapp.write_layout(repo, ns, image=image)
        sha = repo.commit_and_push("Add myapp application manifests")
        url = repo_url(repo) if repo_url else repo.url
        repos.register_https(argocd, kube, dataclasses.replace(repo, url=url))
        name = unique("myapp-prod")
        manifest = applications.application(name, url, myapp.PROD_PATH, ns)
        if changes:
            manifest = applications.with_changes(manifest, **changes)
        diagnostics.apps.append(name)
        if via_cli:
            applications.create_with_cli(argocd, tracker, name, url, myapp.PROD_PATH, ns)
        else:
            applications.apply(kube, tracker, manifest)
        if wait:
            waiter.until(
                checks.all_of(probes.app_synced(argocd, name, revision=sha),
                              probes.deployment(kube, ns, "myapp", replicas=5)),
                timeout=FIRST_SYNC_TIMEOUT, what=f"first sync of {name} (procedure step 2)",
                expected=f"Synced at {sha[:10]}, Healthy, Deployment myapp with 5 replicas available in {ns}",
                remediation=hints.ON_FAILURE[2],
                diagnose=diagnose.for_app(argocd, name, namespace=ns, deployments=["myapp"]))
        return DeployedApp(name=name, namespace=ns, repo=repo, manifest=manifest, synced_revision=sha, image=image)

    return make


@pytest.fixture
def deploy_key(git_host: GitHost, tracker: Tracker, tmp_path_factory) -> Callable[[GitRepo], tuple]:
    """deploy_key(repo) -> (private key path, SSH URL): `ssh-keygen -t ed25519 -f argocd-deploy-key`
    and the public key added as a read-only deploy key on the Git host. Skipped where the suite
    cannot add keys (a --git-url repository on a host of the user's). The key is removed at
    teardown; it is labelled with the run id, so the session sweep finds it otherwise."""
    if not (git_host.ssh_base_url and git_host.deploy_keys):
        pytest.skip("SSH deploy keys can only be added on the suite's own Git host (not with --git-url)")

    def make(repo: GitRepo) -> tuple:
        key, pub = generate_keypair(tmp_path_factory.mktemp("deploy-key"), "argocd-deploy-key",
                                    comment=names.run_label())
        git_host.deploy_keys.authorize(pub, read_only=True)
        tracker.finalizers.append(lambda: git_host.deploy_keys.revoke(pub))
        return key, git_host.ssh_url(repo.url)

    return make


@pytest.fixture(scope="session")
def application_health(kube: Kube, target: Target):
    """Argo CD's documented health check for Application resources, so sync waves between
    child apps wait for health (step 3). Set for the session, restored at its end."""
    from . import app_of_apps

    restore = app_of_apps.enable_application_health(kube, target.argocd_namespace)
    yield
    restore()


@pytest.fixture
def deploy_app_of_apps(kube: Kube, argocd: ArgoCD, tracker: Tracker, diagnostics: Diagnostics,
                       git_repo: Callable[..., GitRepo], unique: Callable[[str], str], application_health):
    """deploy_app_of_apps(myapp_dir=..., waves=True) -> AppOfApps: the step 3 layout committed and the root
    app applied with kubectl (not waited for: the suites observe the rollout themselves)."""
    from . import app_of_apps

    def make(*, myapp_dir: str = f"{app_of_apps.ROOT_PATH}/apps", waves: bool = True) -> app_of_apps.AppOfApps:
        repo = git_repo("gitops-repo")
        layout = app_of_apps.write_layout(repo, unique("aoa"), child_dir_for_myapp=myapp_dir, waves=waves)
        repo.commit_and_push("Add app-of-apps structure")
        repos.register_https(argocd, kube, repo)
        tracker.projects.append(layout.project)
        tracker.namespaces.extend(layout.namespaces)
        diagnostics.apps.extend([layout.root, *layout.children])
        root = app_of_apps.root_app(layout)
        tracker.app(layout.root)
        tracker.apps.extend(layout.children)  # normally deleted by the root's cascade; swept if not
        kube.apply(root)
        return layout

    return make


@dataclasses.dataclass
class ProductionProject:
    project: str
    app: str
    namespace: str
    repo_url: str


@pytest.fixture
def production_project(kube: Kube, argocd: ArgoCD, tracker: Tracker, diagnostics: Diagnostics,
                       git_repo: Callable[..., GitRepo], namespace: Callable[..., str],
                       unique: Callable[[str], str], waiter: checks.Waiter) -> Callable[..., ProductionProject]:
    """production_project(roles=None) -> the procedure's AppProject `production` (named per
    test) and the myapp Application in it. `roles(project_name)` replaces the project's roles
    (a self-test grants too much on purpose)."""
    from . import app_of_apps

    def make(*, roles: Callable[[str], list[dict]] | None = None) -> ProductionProject:
        repo = git_repo("prod-repo")
        ns = namespace("prod", create=False)
        myapp.write_layout(repo, ns)
        sha = repo.commit_and_push("Add myapp application manifests")
        repos.register_https(argocd, kube, repo)
        proj = app_of_apps.project(unique("production"), repo.url)
        if roles is not None:
            proj["spec"]["roles"] = roles(proj["metadata"]["name"])
        tracker.projects.append(proj["metadata"]["name"])
        kube.apply(proj)
        name = unique("myapp-prod")
        diagnostics.apps.append(name)
        applications.apply(kube, tracker, applications.application(
            name, repo.url, myapp.PROD_PATH, ns, project=proj["metadata"]["name"]))
        waiter.until(probes.app_synced(argocd, name, revision=sha), timeout=FIRST_SYNC_TIMEOUT,
                     what=f"first sync of {name} in project {proj['metadata']['name']}",
                     expected="Synced and Healthy", remediation=hints.ON_FAILURE[3],
                     diagnose=diagnose.for_app(argocd, name, namespace=ns, deployments=["myapp"]))
        return ProductionProject(project=proj["metadata"]["name"], app=name, namespace=ns, repo_url=repo.url)

    return make
