"""The checks of each item the Flux way (`--engine flux`): <item>_checks.py, called by the
test_flux_* tests in suites/test_<item>.py."""
