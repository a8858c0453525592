#!/usr/bin/env bash
# Failover benchmark (part of `make bench` when Patroni and etcd can be
# installed; runs standalone too, as root):
#
#   bash test/bench/failover.sh
#
# Runs the failover suite (test/scripts/extra-suites.d/failover.sh) with
# TEGO_FAILOVER_ROUNDS rounds [5] of node loss, rejoin and switchover, and
# prints, for node loss and for switchover, the p50 (and range) over the
# rounds of: Patroni's promotion (the new leader seen through its REST
# API), the first on-time run of a per-second job on the new leader (the
# first run that started less than 100 ms after its second), and the time
# until a LISTEN client (`tego events tail` on a multi-host connection
# string) has printed the first event the new leader committed.  All three
# are counted from the kill (node loss) or from `patronictl switchover`.
#
# Output: test/bench/results/failover.txt.
set -uo pipefail

# shellcheck source=test/scripts/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/common.sh"

RESULTS_DIR=$TEGO_TOP/test/bench/results
RESULTS=$RESULTS_DIR/failover.txt
ROUNDS=${TEGO_FAILOVER_ROUNDS:-5}
export LC_ALL=C
mkdir -p "$RESULTS_DIR"

[ -n "${TEGO_BENCH_NO_BUILD:-}" ] || tego_build_install
OUT=$(mktemp)
trap 'rm -f "$OUT"' EXIT
{
	echo "== failover under Patroni + etcd ($(date -u '+%Y-%m-%d %H:%M UTC'), $ROUNDS rounds)"
	echo "machine: $(nproc) cores, PostgreSQL $("$TEGO_PGBIN/postgres" --version | awk '{print $3}'); ttl 10, loop_wait 2, retry_timeout 4"
} | tee "$RESULTS"
TEGO_FAILOVER_ROUNDS=$ROUNDS TEGO_PGBIN=$TEGO_PGBIN bash "$TEGO_TOP/test/scripts/extra-suites.d/failover.sh" >"$OUT" 2>&1
rc=$?
tail -n 1 "$OUT" | tee -a "$RESULTS"
if [ "$rc" -eq 77 ]; then
	echo "skipped: Patroni and etcd are not available" | tee -a "$RESULTS"
	exit 0
fi
[ "$rc" -eq 0 ] || { grep '^not ok' "$OUT"; exit 1; }

# p50 and range of field FIELD of the "# timing: KIND ..." lines
stat() {
	grep "^# timing: $1 " "$OUT" | tr ' ' '\n' | sed -n "s/^$2=//p" | grep -v '^-$' | sort -g |
		awk '{ v[NR] = $1 } END {
			if (NR == 0) { print "-"; exit }
			m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
			printf "p50 %.1f s (%.1f - %.1f, n=%d)", m, v[1], v[NR], NR }'
}
for kind in node-loss switchover; do
	{
		echo "$kind: Patroni's promotion $(stat "$kind" promoted)"
		echo "$kind: first on-time job run on the new leader $(stat "$kind" first_on_time_run)"
		echo "$kind: LISTEN client caught up $(stat "$kind" tail_caught_up)"
	} | tee -a "$RESULTS"
done
grep '^# timing' "$OUT" >>"$RESULTS"
echo "results: $RESULTS"
