#!/usr/bin/env bash
# Node.js benchmark (part of `make bench`, runs standalone too):
#
#   bash test/bench/node.sh
#
# Convergence of four Node.js processes (node-postgres) that keep copies of
# the plugin registry (test/node/cluster/worker.js): one process makes 200
# changes, one at a time (plugin_enable / plugin_disable of one plugin,
# alternating); for each, the time from its commit returning to the last of
# the three other processes having applied the event to its copy.
# Baseline, alternating with it in the same run: a raw pg_notify of the same
# size from the same process to the same three LISTEN connections.  p50 and
# p99 of each; the times are process.hrtime readings (the machine's
# monotonic clock) sent to the parent over IPC.  Details in
# test/node/cluster/bench.js.
#
# Output: test/bench/results/node.txt.  The server runs as the postgres
# user from a postgres-owned temp folder (unix socket only, port 5493,
# default durability), stopped and removed on exit (kept with
# TEGO_KEEP_TMP=1).
#
# Knobs: TEGO_NODE_BENCH_CHANGES [200], TEGO_NODE_BENCH_WARMUP [20],
#        TEGO_BENCH_NO_BUILD=1 uses the installed extension as it is.
set -uo pipefail

# shellcheck source=test/scripts/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/common.sh"
# shellcheck source=test/node/pg-cluster.sh
. "$TEGO_TOP/test/node/pg-cluster.sh"

PORT=5493
DB=tego_node
RESULTS_DIR=$TEGO_TOP/test/bench/results
RESULTS=$RESULTS_DIR/node.txt
export LC_ALL=C

unset PGHOST PGHOSTADDR PGPORT PGUSER PGDATABASE PGSERVICE PGOPTIONS PGPASSWORD

tego_deps
[ -n "${TEGO_BENCH_NO_BUILD:-}" ] || tego_build_install
tego_node_deps
node_npm_install "$TEGO_TOP/test/node" || tego_die "npm install in test/node failed"

tego_bench_start tego-node-bench
cd "$WORK" || exit 1
out "== Node.js: registry convergence of 4 processes ($(date -u '+%Y-%m-%d %H:%M UTC'))"
out "machine: $(nproc) cores, $(node --version), PostgreSQL $("$TEGO_PGBIN/postgres" --version | awk '{ print $3 }'); load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
node_pg_cluster "$WORK" "$PORT" "$DB" || {
	tail -n 30 "$WORK/server.log"
	tego_die "could not start the cluster"
}

(cd "$TEGO_TOP/test/node" && env "${NODE_PG_ENV[@]}" timeout -k 10 300 node cluster/bench.js) >"$WORK/bench.out" 2>&1
rc=$?
while IFS= read -r line; do
	out "$line"
done <"$WORK/bench.out"
[ "$rc" -eq 0 ] || tego_die "the Node.js benchmark failed (exit $rc)"
out "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
out "results: $RESULTS"
