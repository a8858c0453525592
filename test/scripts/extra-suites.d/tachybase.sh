#!/usr/bin/env bash
# Extra suite: a real @tego/core 1.6.3 app on tego (the node/ package).
#
# Runs `npm ci` in node/ (which installs @tego/core@1.6.3 from the npm
# registry as a devDependency), starts a throwaway cluster (as postgres,
# unix socket only, port TEGO_TACHYBASE_PORT [5493],
# shared_preload_libraries = 'tego', tego.database = tego_tb) and runs
# node/test/tachybase.test.js (node:test, TAP): four worker processes, each
# an Application with tego attached, as a role with the README's grants:
# pm enable through runAsCLI converges everywhere with install() run once,
# a failed install() and a worker killed during install(), pm disable and
# pm remove, sync messages once each in order with skipSelf (and to a
# process that restarts meanwhile), a per-second
# cron job once per tick for 20 s and after its worker is killed, and the
# app status seen from every process.
#
# Exit 0 = passed, 77 = skipped (no node/npm, or the npm registry is not
# reachable), 1 = failed; the last line is the summary.
set -uo pipefail

# shellcheck source=test/scripts/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
# shellcheck source=test/node/pg-cluster.sh
. "$TEGO_TOP/test/node/pg-cluster.sh"

PORT=${TEGO_TACHYBASE_PORT:-5493}
DB=tego_tb
NODE_DIR=$TEGO_TOP/node
node_suite_start tachybase

tego_node_deps
echo "# node $(node --version), npm $(npm --version)"
if ! node_npm_install "$NODE_DIR"; then
	if ! npm ping >/dev/null 2>&1; then
		echo "# skipped: the npm registry is not reachable (npm ci in node/)"
		trap - EXIT
		echo "== tachybase: 0 passed, 0 failed, 1 skipped"
		exit 77
	fi
	echo "not ok - npm ci in node/"
	FAIL=1
	exit 1
fi

node_suite_cluster tego-tachybase "$PORT" "$DB"

# The test runs as the invoking user (root is fine: the server trusts local
# connections) from node/, bounded in time.
node_suite_run "$NODE_DIR" 240 --test-concurrency=1 test/tachybase.test.js
node_suite_finish
