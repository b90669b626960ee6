#!/bin/sh
# TEST FIXTURE (see Containerfile): the official redis image's entrypoint contract, in short.
set -eu

if [ "${1:-}" = 'redis-server' ]; then
  shift
  # A config file, if any, must stay redis-server's first argument.
  conf=''
  case "${1:-}" in
    ''|-*) ;;
    *) conf="$1"; shift ;;
  esac
  if [ "$(id -u)" = '0' ]; then
    chown -R redis:redis /data 2>/dev/null || true
    exec setpriv --reuid=redis --regid=redis --init-groups redis-server $conf --protected-mode no "$@"
  fi
  exec redis-server $conf --protected-mode no "$@"
fi

exec "$@"
