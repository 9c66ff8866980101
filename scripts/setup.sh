#!/usr/bin/env bash
# One-time (idempotent) set-up of a fresh Debian machine for gitops-conformance:
#   1. Debian packages the testbed's peers and the tests use (installed only when missing)
#   2. the Python package and its dependencies (editable install)
#   3. the testbed's binaries, built from Go modules into ~/.cache/gitops-conformance (a no-op when cached)
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
have() { command -v "$1" >/dev/null 2>&1 || [ -x "$1" ]; }
have redis-server          || need+=(redis-server)
have /usr/sbin/sshd        || need+=(openssh-server)
have docker-registry       || need+=(docker-registry)
have prometheus            || need+=(prometheus)
have git                   || need+=(git)
have openssl               || need+=(openssl)
have gpg                   || need+=(gpg)
have skopeo                || need+=(skopeo)      # an independent client for the registry tests
have chromium              || need+=(chromium)    # renders report.html in the browser test
have debootstrap           || need+=(debootstrap) # the kind node image's Debian base (testbed/kind, offline)
have mmdebstrap            || need+=(mmdebstrap)  # the Debian layer of each image a cluster runs (testbed/images)
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # --no-install-recommends: prometheus would pull node-exporter, a service we never run
  apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=300 "${need[@]}" >/dev/null
fi
# packaged services must not run: the testbed starts its own processes on free ports
for svc in redis-server prometheus docker-registry ssh; do
  if [ -x "/etc/init.d/$svc" ]; then "/etc/init.d/$svc" stop >/dev/null 2>&1 || true; fi
done

# the pytest11 entry point too: an install made before it existed must be redone; the test extra
# (hypothesis: the audit's property tests, skipped without it) because `make test` runs them
if ! python3 -c "import gitops_conformance, kubernetes, tenacity, testinfra, pytest_kind, hypothesis, importlib.metadata as m
assert any(e.value == 'gitops_conformance.pytest_entry' for e in m.entry_points(group='pytest11'))" 2>/dev/null; then
  echo "setup: installing the Python package"
  python3 -m pip install -q -e ".[test]" 2>&1 | grep -v "^WARNING: Running pip as the 'root' user" || true
fi

command -v go >/dev/null || { echo "setup: the Go toolchain is missing: install Go 1.26+ (the testbed's binaries are built from Go modules)" >&2; exit 1; }
python3 -m gitops_conformance.cli testbed build
