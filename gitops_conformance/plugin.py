"""The suite's pytest plugins, in one list: load this module and pytest loads them all.

gitops_conformance.fixtures.results  the results contract (markers, conformance.json, junit.xml, evidence)
gitops_conformance.fixtures.plugin   options, cluster target, per-test resources, diagnostics, cleanup
gitops_conformance.scenarios.step1_install ... step6_notifications   the procedure's steps, each with
    its factory fixtures; scenarios.flux.* the same steps the Flux way (--engine flux)
gitops_conformance.reports.plugin  report.html and summary.md from conformance.json

Loaded by the pytest11 entry point (gitops_conformance.pytest_entry) in a session that asks for it,
and by `gitops-conformance certify` with `-p gitops_conformance.plugin`.
"""
pytest_plugins = [
    "gitops_conformance.fixtures.results", "gitops_conformance.fixtures.plugin",
    "gitops_conformance.scenarios.step1_install", "gitops_conformance.scenarios.step2_applications",
    "gitops_conformance.scenarios.step3_app_of_apps", "gitops_conformance.scenarios.step4_image_updater",
    "gitops_conformance.scenarios.step5_rollouts", "gitops_conformance.scenarios.step6_notifications",
    "gitops_conformance.scenarios.flux.step2_kustomizations", "gitops_conformance.scenarios.flux.step3_app_of_apps",
    "gitops_conformance.scenarios.flux.step3_tenancy", "gitops_conformance.scenarios.flux.step5_flagger",
    "gitops_conformance.scenarios.flux.step6_notifications",
    "gitops_conformance.reports.plugin",
]
