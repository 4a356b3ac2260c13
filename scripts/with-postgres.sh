#!/usr/bin/env bash
# Runs a command with a throwaway PostgreSQL 15 cluster on a free loopback port, exported as
# KILN_TEST_POSTGRES=postgresql://postgres@127.0.0.1:PORT/postgres, and removes the cluster after.
# If KILN_TEST_POSTGRES is already set, runs the command as is. initdb refuses root, so the
# cluster runs as the postgres user (see shared/reference/postgres-throwaway.md).
set -euo pipefail
if [ -n "${KILN_TEST_POSTGRES:-}" ]; then exec "$@"; fi

BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -x "$BIN/initdb" ] || { echo "with-postgres: PostgreSQL server binaries not found (run scripts/setup.sh)" >&2; exit 1; }
DIR=$(mktemp -d /tmp/kiln-pg-XXXXXX)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
AS=()
if [ "$(id -u)" -eq 0 ]; then
  chown postgres:postgres "$DIR"
  AS=(runuser -u postgres --)
fi
cleanup() {
  "${AS[@]}" "$BIN/pg_ctl" -D "$DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$DIR"
}
trap cleanup EXIT
"${AS[@]}" "$BIN/initdb" -D "$DIR/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$DIR/initdb.log" 2>&1 \
  || { cat "$DIR/initdb.log" >&2; exit 1; }
"${AS[@]}" "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" \
  -o "-p $PORT -k $DIR -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" -w start >/dev/null \
  || { cat "$DIR/server.log" >&2; exit 1; }
export KILN_TEST_POSTGRES="postgresql://postgres@127.0.0.1:$PORT/postgres"
set +e
"$@"
rc=$?
exit $rc
