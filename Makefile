# The two commands a newcomer runs (see README):
#   make certify   set up, certify the local testbed, write reports/latest/
#   make test      set up, run the project's tests (harness self-tests + the suites on the testbed)
PYTHON ?= python3
REPORT_DIR ?= reports/latest

.PHONY: setup certify test unit bench clean-testbed

setup:
	./scripts/setup.sh

certify: setup
	$(PYTHON) -m gitops_conformance.cli certify --report-dir $(REPORT_DIR)

# One pytest session: the testbed starts once and serves the self-tests and the suites.
test: setup
	$(PYTHON) -m pytest tests suites --report-dir reports/ci -p no:cacheprovider

# The harness's fast tests only (no testbed, no cluster)
unit:
	$(PYTHON) -m pytest tests -m "not testbed and not browser and not images" -p no:cacheprovider

bench: setup
	$(PYTHON) -m benchmarks.testbed_bench

clean-testbed:
	$(PYTHON) -m gitops_conformance.cli testbed down
