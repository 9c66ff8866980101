#!/bin/sh
# The official Redis image's calling convention, which Argo CD's manifest relies on: the
# container gets only redis-server's options as args ("--save '' --appendonly no ..."), so
# args starting with "-" (or a .conf file) are handed to redis-server.
set -e
case "$1" in
  -*|*.conf) set -- redis-server "$@" ;;
esac
exec "$@"
