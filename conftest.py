"""Registers the suite's plugins for suites/ and tests/ alike.

fixtures.results  the results contract (markers, conformance.json, junit.xml, evidence)
fixtures.plugin   options, cluster target, per-test resources, diagnostics, cleanup
scenarios.step1_install ... step6_notifications   the procedure's steps, each with its factory fixtures
scenarios.flux     step 2 the Flux way (--engine flux); scenarios.flux_app_of_apps, flux_tenancy, flux_notifications steps 3 and 6 the Flux way
"""
pytest_plugins = ["fixtures.results", "fixtures.plugin",
                  "scenarios.step1_install", "scenarios.step2_applications", "scenarios.step3_app_of_apps",
                  "scenarios.step4_image_updater", "scenarios.step5_rollouts", "scenarios.step6_notifications",
                  "scenarios.flux", "scenarios.flux_app_of_apps", "scenarios.flux_tenancy",
                  "scenarios.flux_notifications"]
