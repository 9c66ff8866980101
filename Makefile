# The two commands a newcomer runs (see README):
#   make certify   set up, certify the local testbed, write reports/latest/
#   make test      set up, run the project's tests: the self-tests, then the certification, as two
#                  pytest sessions (a session that ran a self-test never writes a verdict)
PYTHON ?= python3

.PHONY: setup certify test unit bench clean-testbed

setup:
	./scripts/setup.sh

certify: setup
	$(PYTHON) -m gitops_conformance.cli certify

# Two sessions with separate reports; both always run, and `make test` fails when either does.
test: setup
	@$(PYTHON) -m pytest tests --junit-xml reports/selftest/junit.xml -p no:cacheprovider; selftests=$$?; \
	$(PYTHON) -m pytest suites --report-dir reports/ci -p no:cacheprovider; certification=$$?; \
	echo "make test: self-tests exit $$selftests, certification exit $$certification"; \
	[ $$selftests -eq 0 ] && [ $$certification -eq 0 ]

# The harness's fast tests only (no testbed, no cluster)
unit:
	$(PYTHON) -m pytest tests -m "not testbed and not browser and not kind and not images" -p no:cacheprovider

bench: setup
	$(PYTHON) -m benchmarks.testbed_bench

clean-testbed:
	$(PYTHON) -m gitops_conformance.cli testbed down
