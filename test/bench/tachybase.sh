#!/usr/bin/env bash
# TachyBase benchmark (part of `make bench`, runs standalone too):
#
#   bash test/bench/tachybase.sh
#
# Real @tego/core 1.6.3 Application processes with the node/ package
# (node/bench/tachybase.js): the convergence of pm.enable from process A to
# processes B-D (plugin loaded) over 50 toggles, beside pm.enable on
# TachyBase's own table in one process; and the delivery of a pub-sub
# message between two Application processes beside a raw pg_notify between
# the same two processes.  p50 and p99 of each.
#
# Output: test/bench/results/tachybase.txt.  The server runs as the postgres
# user from a postgres-owned temp folder (unix socket only, port 5494,
# default durability), stopped and removed on exit (kept with
# TEGO_KEEP_TMP=1).  Knobs: TB_BENCH_TOGGLES [50], TB_BENCH_MESSAGES [200],
# TB_BENCH_ONLY (convergence or messages),
# TEGO_BENCH_NO_BUILD=1 uses the installed extension as it is.
set -uo pipefail

# shellcheck source=test/scripts/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/common.sh"
# shellcheck source=test/node/pg-cluster.sh
. "$TEGO_TOP/test/node/pg-cluster.sh"

PORT=5494
DB=tego_tb
RESULTS_DIR=$TEGO_TOP/test/bench/results
RESULTS=$RESULTS_DIR/tachybase.txt
export LC_ALL=C

unset PGHOST PGHOSTADDR PGPORT PGUSER PGDATABASE PGSERVICE PGOPTIONS PGPASSWORD

tego_deps
[ -n "${TEGO_BENCH_NO_BUILD:-}" ] || tego_build_install
tego_node_deps
node_npm_install "$TEGO_TOP/node" || tego_die "npm ci in node/ failed"

tego_bench_start tego-tachybase-bench
cd "$WORK" || exit 1
out "== TachyBase (@tego/core 1.6.3) on tego ($(date -u '+%Y-%m-%d %H:%M UTC'))"
out "machine: $(nproc) cores, $(node --version), PostgreSQL $("$TEGO_PGBIN/postgres" --version | awk '{ print $3 }'); load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
node_pg_cluster "$WORK" "$PORT" "$DB" || {
	tail -n 30 "$WORK/server.log"
	tego_die "could not start the cluster"
}

mkdir -p "$WORK/runtime"
(cd "$TEGO_TOP/node" && env "${NODE_PG_ENV[@]}" TEGO_RUNTIME_HOME="$WORK/runtime" timeout -k 10 600 \
	node bench/tachybase.js) >"$WORK/bench.out" 2>&1
rc=$?
grep -v 'Warning\|--trace-' "$WORK/bench.out" | while IFS= read -r line; do
	out "$line"
done
[ "$rc" -eq 0 ] || tego_die "the TachyBase benchmark failed (exit $rc)"
out "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
out "results: $RESULTS"
