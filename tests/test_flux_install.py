"""Flux and Flagger for a cluster (testbed/flux_install.py, fixtures/flux_install.py): rendered
from the pinned modules as the releases render them, naming exactly the images the specs build.

Needs the Flux components' assets (`gitops-conformance testbed build --engine flux`) and the
pinned kustomize; skipped, saying so, without them.
"""
from __future__ import annotations

import pytest

from gitops_conformance.testbed import flux_install, versions
from gitops_conformance.testbed.images import build, manifests, spec


def _rendered(**kw) -> list[dict]:
    try:
        return flux_install.flux_docs(**kw)
    except flux_install.RenderError as exc:
        pytest.skip(f"Flux's assets are not built: {exc}")


def _deployments(docs: list[dict]) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}


def test_flux_is_the_three_controllers_from_their_own_modules_in_flux_system():
    docs = _rendered()
    deps = _deployments(docs)
    assert set(deps) == {"source-controller", "kustomize-controller", "notification-controller"}
    for name, dep in deps.items():
        assert dep["metadata"]["namespace"] == "flux-system"
        assert dep["spec"]["template"]["spec"]["serviceAccountName"] == name  # flux2's bases/<name>/patch.yaml
        assert dep["metadata"]["labels"]["app.kubernetes.io/part-of"] == "flux"
        image = dep["spec"]["template"]["spec"]["containers"][0]["image"]
        assert image == f"ghcr.io/fluxcd/{name}:{versions.load()[f'flux-{name}'].version}"
    crds = {d["metadata"]["name"] for d in docs if d["kind"] == "CustomResourceDefinition"}
    assert {"gitrepositories.source.toolkit.fluxcd.io", "kustomizations.kustomize.toolkit.fluxcd.io",
            "receivers.notification.toolkit.fluxcd.io", "alerts.notification.toolkit.fluxcd.io"} <= crds
    services = {d["metadata"]["name"] for d in docs if d["kind"] == "Service"}
    assert {"source-controller", "notification-controller", "webhook-receiver"} <= services
    assert not [d for d in docs if "github.com" in str(d.get("metadata"))]


def test_kustomize_controller_runs_the_multi_tenancy_lockdown_unless_asked_not_to():
    args = _deployments(_rendered())["kustomize-controller"]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert flux_install.NO_CROSS_NAMESPACE_REFS in args
    stock = _deployments(_rendered(no_cross_namespace_refs=False))["kustomize-controller"]
    assert flux_install.NO_CROSS_NAMESPACE_REFS not in stock["spec"]["template"]["spec"]["containers"][0]["args"]


def test_flagger_runs_in_its_namespace_with_the_nginx_provider():
    try:
        docs = flux_install.flagger_docs()
    except flux_install.RenderError as exc:
        pytest.skip(f"Flagger's assets are not built: {exc}")
    dep = _deployments(docs)["flagger"]
    assert dep["metadata"]["namespace"] == flux_install.FLAGGER_NAMESPACE
    container = dep["spec"]["template"]["spec"]["containers"][0]
    assert "-mesh-provider=nginx" in container["args"]
    assert container["image"] == f"ghcr.io/fluxcd/flagger:{versions.load()['flagger'].version.removeprefix('v')}"
    assert {"canaries.flagger.app", "metrictemplates.flagger.app"} <= {
        d["metadata"]["name"] for d in docs if d["kind"] == "CustomResourceDefinition"}


def test_the_install_names_exactly_the_images_the_flux_specs_build():
    try:
        docs = flux_install.flux_docs() + flux_install.flagger_docs()
    except flux_install.RenderError as exc:
        pytest.skip(f"Flux's assets are not built: {exc}")
    named = set(manifests.images_in_docs(docs))
    flux_specs = [s for s in spec.all_specs().values() if s.engine == "flux"]
    built = {r for s in flux_specs for names, _ in s.variants() for r in names}
    assert named == built
    assert {build.spec_for(r) for r in named} == {s.name for s in flux_specs}


def test_images_for_an_engine_are_the_common_specs_and_its_own():
    argo, flux = set(build.specs_for_engine("argocd")), set(build.specs_for_engine("flux"))
    common = {"peers", "prometheus", "myapp"}
    assert common <= argo and common <= flux
    assert {"argocd", "redis", "rollouts", "image-updater"} <= argo - flux
    assert {"flux-source-controller", "flux-kustomize-controller", "flux-notification-controller", "flagger"} <= flux - argo
