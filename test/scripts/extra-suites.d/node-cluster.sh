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

node_suite_cluster tego-node-cluster "$PORT" "$DB"

# The test runs as the invoking user (root is fine: the server trusts local
# connections) from test/node, bounded in time.
node_suite_run "$NODE_DIR" 180 cluster/cluster.test.js
node_suite_finish
