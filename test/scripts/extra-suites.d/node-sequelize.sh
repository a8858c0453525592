#!/usr/bin/env bash
# Extra suite: TachyBase's applicationPlugins model, unchanged, through
# Sequelize over the view tego."applicationPlugins"
# (test/node/sequelize/application-plugins.test.js).
#
#   1. Node.js and npm (tego_node_deps), then `npm ci` in test/node/sequelize
#      (`npm install` when there is no package-lock.json);
#   2. a throwaway cluster (initdb as postgres, shared_preload_libraries =
#      'tego', Unix socket only, in a private temp folder, port 5489) and
#      CREATE EXTENSION tego (installed beforehand by `make install`);
#   3. the node:test file, which connects as the superuser to create the
#      application role and read tego.events, and as that role for the ORM.
#
# Node runs as the invoking user (root or not) and reaches the server
# through the socket folder, so the postgres user needs no access to the
# checkout.  The server is stopped and the folder removed on exit (kept, path
# printed, on failure or with TEGO_KEEP_TMP=1).  Exit 0 = passed, 1 =
# failed; the last line is the summary.  TEGO_SQL_LOG=1 prints Sequelize's
# statements.
set -uo pipefail

# shellcheck source=SCRIPTDIR/../common.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)/common.sh"

NAME=node-sequelize
PORT=5489
DIR=$TEGO_TOP/test/node/sequelize
PASS=0
FAIL=0
TMP=

finish() {
	trap - EXIT INT TERM
	if [ -n "$TMP" ]; then
		tego_stop_servers_under "$TMP"
		if [ "$FAIL" -eq 0 ] && [ -z "${TEGO_KEEP_TMP:-}" ]; then
			rm -rf "$TMP"
		else
			echo "($NAME folder kept: $TMP)"
		fi
	fi
	echo "== $NAME: $PASS passed, $FAIL failed"
	[ "$FAIL" -eq 0 ] && exit 0
	exit 1
}
trap finish EXIT
trap 'echo "$NAME: interrupted"; FAIL=$((FAIL + 1)); finish' INT TERM

# fail STEP [LOG]: count a failed step, show the log's tail, and stop
fail() {
	echo "not ok - $1"
	[ -n "${2:-}" ] && [ -f "$2" ] && tail -n 30 "$2"
	FAIL=$((FAIL + 1))
	finish
}

# --- 1. Node.js and the npm packages ---------------------------------------------
tego_node_deps
TMP=$(TMPDIR=${TEGO_WORK:-${TMPDIR:-/tmp}} tego_pg_tempdir tego-sequelize)
if [ -f "$DIR/package-lock.json" ]; then
	npm_cmd=(npm ci)
else
	npm_cmd=(npm install)
fi
(cd "$DIR" && "${npm_cmd[@]}" --no-audit --no-fund --loglevel=error) >"$TMP/npm.log" 2>&1 ||
	fail "${npm_cmd[*]} in test/node/sequelize" "$TMP/npm.log"

# --- 2. the cluster ------------------------------------------------------------------
# (cd to a folder postgres can read: as_pg keeps the current directory)
cd "$TMP" || fail "cd $TMP"
as_pg "$TEGO_PGBIN/initdb" -D "$TMP/data" -U postgres -A trust --no-sync >"$TMP/initdb.log" 2>&1 ||
	fail "initdb" "$TMP/initdb.log"
cat >>"$TMP/data/postgresql.conf" <<EOF
shared_preload_libraries = 'tego'
listen_addresses = ''
unix_socket_directories = '$TMP'
port = $PORT
fsync = off
EOF
as_pg "$TEGO_PGBIN/pg_ctl" -D "$TMP/data" -l "$TMP/server.log" -w -t 30 start >/dev/null 2>&1 ||
	fail "the server starts" "$TMP/server.log"
"$TEGO_PGBIN/psql" -X -q -h "$TMP" -p "$PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 \
	-c 'CREATE EXTENSION tego' >"$TMP/psql.log" 2>&1 ||
	fail "CREATE EXTENSION tego (run make install first)" "$TMP/psql.log"

# --- 3. the test ---------------------------------------------------------------------
(cd "$DIR" && TEGO_PGHOST=$TMP TEGO_PGPORT=$PORT TEGO_PGDATABASE=postgres TEGO_PGSUPER=postgres \
	timeout 120 node --test --test-reporter=tap application-plugins.test.js) >"$TMP/node.out" 2>&1
rc=$?
# the test points, and every failure with its diagnostics
grep -E '^ *(ok|not ok) ' "$TMP/node.out" | sed 's/^    /  /'
if grep -q '^# pass ' "$TMP/node.out"; then
	PASS=$(sed -n 's/^# pass //p' "$TMP/node.out" | tail -n 1)
	FAIL=$(sed -n 's/^# fail //p' "$TMP/node.out" | tail -n 1)
	cancelled=$(sed -n 's/^# cancelled //p' "$TMP/node.out" | tail -n 1)
	FAIL=$((FAIL + ${cancelled:-0}))
fi
if [ "$rc" -ne 0 ]; then
	sed -n '/^ *not ok /,/^ *\.\.\.$/p' "$TMP/node.out" | head -n 120
	if [ "$FAIL" -eq 0 ]; then
		tail -n 30 "$TMP/node.out"
		echo "not ok - node exited $rc"
		FAIL=1
	fi
fi
finish
