"""Registers the suite's plugins for suites/ and tests/ alike.

fixtures.results  the results contract (markers, conformance.json, junit.xml, evidence)
fixtures.plugin   options, cluster target, per-test resources, diagnostics, cleanup
scenarios.fixtures the procedure's steps as factory fixtures
scenarios.rollouts step 5's Rollout and traffic fixtures
scenarios.notifications step 6's notification configuration fixture
scenarios.flux     step 2 the Flux way (--engine flux)
"""
pytest_plugins = ["fixtures.results", "fixtures.plugin", "scenarios.fixtures", "scenarios.rollouts", "scenarios.notifications",
                  "scenarios.flux"]
