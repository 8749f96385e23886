#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs a test program against a throwaway PostgreSQL cluster on loopback. Debian's pg_virtualenv
# (postgresql-common) makes the cluster in a temporary directory (-t: also as root, so that several
# of these run at once), starts it on a free port, sets PGHOST, PGPORT, PGUSER, PGPASSWORD and
# PGDATABASE, runs the program and drops the cluster. The program gets GH_TEST_STORE=postgres:
# (libpq takes the rest from those variables; tests/kit/storekit.h makes a database per test).
# When PostgreSQL is missing or does not start, the test fails saying why: it is never skipped.
#
# usage: tests/meta/with-postgres.sh PROGRAM [ARGS...]
set -euo pipefail
[ "$#" -ge 1 ] || { echo "usage: with-postgres.sh PROGRAM [ARGS...]" >&2; exit 2; }
fail() { echo "with-postgres: FAIL: $*" >&2; exit 1; }
command -v pg_virtualenv > /dev/null 2>&1 ||
  fail "pg_virtualenv is not installed (Debian's postgresql-common: scripts/install-deps.sh test installs it)"
compgen -G '/usr/lib/postgresql/*/bin/pg_ctl' > /dev/null ||
  fail "no PostgreSQL server is installed (Debian's postgresql: scripts/install-deps.sh test installs it)"
command -v python3 > /dev/null 2>&1 || fail "python3 is needed to find a free port"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/gh-pg.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# the cluster's files (pg_virtualenv's directory is made in TMPDIR) and its Unix socket live here,
# not in /var/run/postgresql, which a container may lack; the server's user must reach them
chmod 0755 "$tmp"
mkdir -m 0755 "$tmp/sockets"
if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$tmp/sockets"; fi

# a port the kernel just gave out; if another program takes it first, the start fails and the next
# attempt takes another
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

for attempt in 1 2 3; do
  started="$tmp/started.$attempt"
  status=0
  PGPORT=$(free_port) TMPDIR="$tmp" pg_virtualenv -t \
    -o "unix_socket_directories=$tmp/sockets" \
    bash -c 'touch "$1"; shift; export PGHOST=127.0.0.1 GH_TEST_STORE=postgres:; exec "$@"' \
    with-postgres "$started" "$@" || status=$?
  # the program ran: its status is the test's
  [ -e "$started" ] && exit "$status"
  echo "with-postgres: the cluster did not start (attempt $attempt, exit status $status)" >&2
done
fail "PostgreSQL did not start in three attempts (pg_virtualenv's output above says why)"
