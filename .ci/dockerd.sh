#!/usr/bin/env bash
# THIS MACHINE'S QUIRK (CI/set-up only): run a Docker daemon for kind on a machine without
# systemd whose capability bounding set lacks CAP_SYS_RESOURCE. A user's machine runs its own
# Docker (or Podman) and never needs this script.
#
#   .ci/dockerd.sh [start]   install Debian's docker.io if missing, start dockerd by hand (idempotent)
#   .ci/dockerd.sh stop      stop it and remove what it left: containers, volumes, networks,
#                            its iptables rules and bridge, the empty cgroups systemd made inside
#                            kind's node containers (prints before/after counts)
#   .ci/dockerd.sh status    exit 0 when the daemon answers
#
# State lives outside the work tree: images/volumes under $GITOPS_CONFORMANCE_CACHE/dockerd (kept
# between runs: the node image is cached there), sockets/pid/log under /run/gitops-conformance-dockerd.
# The socket is Docker's default (/var/run/docker.sock) so kind and the docker CLI find it as usual.
set -euo pipefail

CACHE="${GITOPS_CONFORMANCE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gitops-conformance}"
DATA_ROOT="$CACHE/dockerd"
RUN_DIR=/run/gitops-conformance-dockerd
SOCK="${GITOPS_CONFORMANCE_DOCKER_SOCK:-/var/run/docker.sock}"
PIDFILE="$RUN_DIR/dockerd.pid"
LOG="$RUN_DIR/dockerd.log"
WRAPPER="$RUN_DIR/runc-capfilter"    # a copy: the daemon must not depend on this checkout staying put
HERE="$(cd "$(dirname "$0")" && pwd)"
START_TIMEOUT=60
STOP_TIMEOUT=60

say() { echo "dockerd.sh: $*" >&2; }
docker_() { DOCKER_HOST="unix://$SOCK" timeout 60 docker "$@"; }
answers() { [ -S "$SOCK" ] && DOCKER_HOST="unix://$SOCK" timeout 10 docker version >/dev/null 2>&1; }
running_pid() { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null && cat "$PIDFILE"; }

install_docker() {
  command -v dockerd >/dev/null && command -v jq >/dev/null && [ -x /usr/bin/python3 ] && return 0
  say "installing Debian's docker.io"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # policy-rc.d (if the machine has one) keeps the package's init script from starting a daemon
  apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=300 docker.io jq python3 >/dev/null
  if [ -x /etc/init.d/docker ]; then /etc/init.d/docker stop >/dev/null 2>&1 || true; fi
}

# What Docker and kind leave on the host, counted before `start` and after `stop`: cgroups under
# /docker in every hierarchy (v1 and the v2 "unified" one), Docker's iptables rules, its links
# (docker0, br-<network>, veth), forwarding. (Other processes' cgroups are not ours to count.)
snapshot() {
  echo "cgroups-under-/docker $(find /sys/fs/cgroup/*/docker -type d 2>/dev/null | wc -l)"
  echo "iptables-docker-rules $(iptables-save 2>/dev/null | grep -cE 'DOCKER|docker0|br-[0-9a-f]{12}' || true)"
  echo "docker-links $(ip -o link show 2>/dev/null | grep -cE ': (docker0|br-[0-9a-f]{12}|veth[0-9a-f]+)[@:]' || true)"
  echo "ip_forward $(cat /proc/sys/net/ipv4/ip_forward)"
}

start() {
  install_docker
  if answers; then
    say "already running (socket $SOCK)"
    return 0
  fi
  if [ -S "$SOCK" ] || [ -n "$(running_pid || true)" ]; then
    say "a daemon that does not answer is in the way (socket $SOCK, pid $(running_pid || echo none)); run: $0 stop"
    return 1
  fi
  mkdir -p "$RUN_DIR" "$DATA_ROOT"
  [ -f "$RUN_DIR/baseline" ] || snapshot >"$RUN_DIR/baseline"
  install -m 0755 "$HERE/runc-capfilter" "$WRAPPER"
  # --mtu 1400: this machine's eth0 MTU; kind copies the default bridge's MTU into its network.
  # cgroupfs driver: there is no systemd on the host. The runc wrapper: see runc-capfilter.
  setsid dockerd \
    --data-root "$DATA_ROOT" --exec-root "$RUN_DIR/exec" --pidfile "$PIDFILE" -H "unix://$SOCK" \
    --exec-opt native.cgroupdriver=cgroupfs --mtu 1400 \
    --add-runtime "capfilter=$WRAPPER" --default-runtime capfilter \
    </dev/null >"$LOG" 2>&1 &
  local deadline=$((SECONDS + START_TIMEOUT))
  until answers; do
    if [ $SECONDS -ge $deadline ]; then
      say "dockerd did not answer within ${START_TIMEOUT}s; last lines of $LOG:"
      tail -n 20 "$LOG" >&2
      return 1
    fi
    sleep 1
  done
  say "running (pid $(cat "$PIDFILE"), socket $SOCK, data $DATA_ROOT, log $LOG)"
}

remove_docker_iptables() {
  local table line chain
  for table in filter nat; do
    # rules that jump to or match Docker's chains and bridges (docker0, br-<network id>)
    iptables-save -t "$table" 2>/dev/null | grep '^-A' | grep -E 'DOCKER|docker0|br-[0-9a-f]{12}' \
      | grep -v '^-A DOCKER' | sed 's/^-A/-D/' | while read -r line; do
        eval "iptables -t $table $line" 2>/dev/null || true
      done
    for chain in $(iptables-save -t "$table" 2>/dev/null | sed -n 's/^:\(DOCKER[^ ]*\) .*/\1/p'); do
      iptables -t "$table" -F "$chain" 2>/dev/null || true
    done
    for chain in $(iptables-save -t "$table" 2>/dev/null | sed -n 's/^:\(DOCKER[^ ]*\) .*/\1/p'); do
      iptables -t "$table" -X "$chain" 2>/dev/null || true
    done
  done
}

# Docker (cgroupfs driver) puts every container under /docker in each hierarchy, and with
# --cgroupns=private systemd inside a kind node creates its slices (kubelet, kubepods, system.slice)
# below that: runc cannot remove them, so they stay, empty. rmdir refuses populated cgroups.
remove_docker_cgroups() {
  local mnt before
  before=$(find /sys/fs/cgroup/*/docker -type d 2>/dev/null | wc -l)
  for mnt in $(awk '$9 == "cgroup" || $9 == "cgroup2" {print $5}' /proc/self/mountinfo); do
    if [ -d "$mnt/docker" ]; then find "$mnt/docker" -depth -type d -exec rmdir {} \; 2>/dev/null || true; fi
  done
  say "removed $((before - $(find /sys/fs/cgroup/*/docker -type d 2>/dev/null | wc -l))) empty cgroups under /docker"
}

stop() {
  local pid
  if answers; then
    local ids
    ids=$(docker_ ps -aq)
    [ -n "$ids" ] && docker_ rm -f -v $ids >/dev/null
    docker_ network prune -f >/dev/null || true
    docker_ volume prune -f >/dev/null || true
  fi
  pid=$(running_pid || true)
  if [ -n "$pid" ]; then
    kill -TERM "$pid"
    local deadline=$((SECONDS + STOP_TIMEOUT))
    while kill -0 "$pid" 2>/dev/null; do
      if [ $SECONDS -ge $deadline ]; then say "dockerd ignored SIGTERM for ${STOP_TIMEOUT}s: SIGKILL"; kill -KILL "$pid"; fi
      sleep 1
    done
  fi
  rm -f "$SOCK" "$PIDFILE"
  remove_docker_iptables
  ip link del docker0 2>/dev/null || true
  # bridges of Docker networks (kind's) a daemon that died without `network prune` left behind
  for link in $(ip -o link show 2>/dev/null | grep -oE ': br-[0-9a-f]{12}[@:]' | tr -d ' :@'); do
    ip link del "$link" 2>/dev/null || true
  done
  remove_docker_cgroups
  if [ -f "$RUN_DIR/baseline" ]; then
    # dockerd turned forwarding on; put back what the machine had
    local fwd
    fwd=$(awk '$1 == "ip_forward" {print $2}' "$RUN_DIR/baseline")
    [ -n "$fwd" ] && echo "$fwd" >/proc/sys/net/ipv4/ip_forward
    say "left behind (before start -> after stop):"
    paste -d' ' "$RUN_DIR/baseline" <(snapshot) \
      | awk '{printf "  %-24s %s -> %s%s\n", $1, $2, $4, ($2 == $4 ? "" : "  DIFFERS")}' >&2
    rm -f "$RUN_DIR/baseline"
  fi
  say "stopped"
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  status) answers ;;
  *) echo "usage: $0 [start|stop|status]" >&2; exit 2 ;;
esac
