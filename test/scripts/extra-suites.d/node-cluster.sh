#!/usr/bin/env bash
# Extra suite: tego in cluster mode, seen from Node.js (node-postgres).
#
# Starts a throwaway cluster (as postgres, unix socket only, port
# TEGO_NODE_PORT [5491], shared_preload_libraries = 'tego', tego.database =
# tego_node) and runs test/node/cluster/cluster.test.js (node:test, TAP):
# four forked Node.js processes keep registry copies fed by events and
# catch-up, run an app job due every second exactly once per tick, and
# take over the run of a process killed while it held it.
#
# Needs the extension installed (make install; test.sh does it first), node
# and npm (installed as root when missing) and the npm registry for
# `npm ci` in test/node.  The server's folder is removed on success and kept
# (path printed) on failure or with TEGO_KEEP_TMP=1.  Exit 0 = passed,
# 1 = failed; the last line is the summary.
set -uo pipefail

# shellcheck source=test/scripts/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
# shellcheck source=test/node/pg-cluster.sh
. "$TEGO_TOP/test/node/pg-cluster.sh"

PORT=${TEGO_NODE_PORT:-5491}
DB=tego_node
NODE_DIR=$TEGO_TOP/test/node
node_suite_start node-cluster

tego_node_deps
echo "# node $(node --version), npm $(npm --version)"
if ! node_npm_install "$NODE_DIR"; then
	echo "not ok - npm install in test/node"
	FAIL=1
	exit 1
fi

DIR=$(TMPDIR=${TEGO_WORK:-${TMPDIR:-/tmp}} tego_pg_tempdir tego-node-cluster)
cd "$DIR" || exit 1
if ! node_pg_cluster "$DIR" "$PORT" "$DB"; then
	echo "not ok - start a cluster with tego preloaded"
	tail -n 30 "$DIR/server.log" 2>/dev/null
	FAIL=1
	exit 1
fi

# The test runs as the invoking user (root is fine: the server trusts local
# connections) from test/node, bounded in time.
(cd "$NODE_DIR" && env "${NODE_PG_ENV[@]}" timeout -k 10 180 \
	node --test-reporter=tap cluster/cluster.test.js) 2>&1 | tee "$DIR/node-test.out"
rc=${PIPESTATUS[0]}
[ "$rc" -eq 124 ] && echo "!! node test timed out after 180 s"
PASS=$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$DIR/node-test.out" | tail -n 1)
FAIL=$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$DIR/node-test.out" | tail -n 1)
PASS=${PASS:-0}
FAIL=${FAIL:-0}
if [ "$rc" -ne 0 ] && [ "$FAIL" -eq 0 ]; then
	FAIL=1 # the runner failed without saying which test
fi
if [ "$FAIL" -gt 0 ]; then
	echo "--- $DIR/server.log (last 30 lines)"
	tail -n 30 "$DIR/server.log"
fi
node_suite_finish
