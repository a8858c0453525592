#!/usr/bin/env bash
# One large transaction: its commit, and what it costs other databases
# (part of `make bench`; also runs on its own:  bash test/bench/commit.sh,
# or  TEGO_BENCH_ONLY=commit make bench).
#
# Builds and installs tego, starts a throwaway cluster (unix socket only,
# port 5491, default durability, shared_preload_libraries = 'tego') and, in
# the same run, alternating, measures one transaction of
#
#   tego:  N x tego.publish('bench', <message>)
#   plain: N x pg_notify('bench', <text>)   (the text of a tego notification
#          of that message, with a different seq in each, so that NOTIFY
#          does not fold duplicates)
#
# For each: the time of its COMMIT statement (psql \timing), and the
# longest a probe in another database waited for the commit of its own
# pg_notify while the large transaction ran (a loop: pg_notify, COMMIT,
# 1 ms pause).  A NOTIFY-ing commit holds PostgreSQL's cluster-wide NOTIFY
# lock until it has ended, so the probe's longest wait is how long the
# large commit held that lock.  tego stores its events under a lock of its
# own database first, so the probe waits only for the NOTIFY part.
#
# Printed: per-round figures, the medians, and
#
#   RESULT large commit, N events: NOTIFY lock held (probe's longest wait)
#     tego <ms> | pg_notify <ms> | ratio <x>x | target <= 3x: yes/no;
#     COMMIT tego <ms> | pg_notify <ms> | ratio <x>x
#
# Results go to test/bench/results/commit.txt.  The server is stopped and
# its folder removed on exit (kept with TEGO_KEEP_TMP=1).
#
# Knobs: TEGO_COMMIT_EVENTS  events (and NOTIFYs) per transaction [300000]
#        TEGO_COMMIT_ROUNDS  rounds, each one tego and one plain [3]
set -uo pipefail

# shellcheck source=test/scripts/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/common.sh"

PORT=5491
EVENTS=${TEGO_COMMIT_EVENTS:-300000}
ROUNDS=${TEGO_COMMIT_ROUNDS:-3}
RESULTS_DIR=$TEGO_TOP/test/bench/results
RESULTS=$RESULTS_DIR/commit.txt
export LC_ALL=C

unset PGHOST PGHOSTADDR PGPORT PGUSER PGDATABASE PGSERVICE PGOPTIONS PGPASSWORD PGAPPNAME

case $EVENTS$ROUNDS in *[!0-9]*) tego_die "TEGO_COMMIT_EVENTS and TEGO_COMMIT_ROUNDS must be numbers" ;; esac
[ "$ROUNDS" -ge 1 ] && [ "$EVENTS" -ge 1 ] || tego_die "TEGO_COMMIT_EVENTS and TEGO_COMMIT_ROUNDS must be at least 1"

tego_deps
tego_build_install

tego_bench_start tego-commit-bench
cd "$WORK" || exit 1

out "one large transaction, $EVENTS events vs $EVENTS pg_notify, $(date -u '+%Y-%m-%d %H:%M:%S UTC'), commit $(git -C "$TEGO_TOP" rev-parse --short HEAD 2>/dev/null || echo '?')"
out "$("$TEGO_PGBIN/postgres" --version); $(nproc) cores ($(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -n1)); load average $(cut -d' ' -f1-3 /proc/loadavg)"

tego_bench_cluster "$WORK/data" "$PORT"

psql_db() { # DB ARGS...: psql in DB, as postgres
	local db=$1
	shift
	as_pg psql -X -q -At -v ON_ERROR_STOP=1 -d "host=$WORK port=$PORT dbname=$db user=postgres" "$@"
}

psql_db postgres -c "CREATE EXTENSION tego" -c "CREATE DATABASE probe" >/dev/null ||
	tego_die "could not set up the databases"

MESSAGE='{"k": 1, "v": "'$(printf 'x%.0s' $(seq 1 80))'"}'

# the text of a tego notification of MESSAGE, to size the plain payloads
psql_db postgres -c "SELECT tego.publish('bench', '$MESSAGE')" >/dev/null || tego_die "tego.publish failed"
SAMPLE=$(as_pg psql -X -At -d "host=$WORK port=$PORT dbname=postgres user=postgres application_name=bench" \
	-c "LISTEN bench" -c "SELECT tego.publish('bench', '$MESSAGE')" -c "SELECT 1" 2>&1 |
	sed -n 's/^Asynchronous notification "bench" with payload "\(.*\)" received from server process with PID [0-9]*\.$/\1/p')
[ -n "$SAMPLE" ] || tego_die "no notification seen for tego.publish"
out "message: ${#MESSAGE} bytes; tego's notification: ${#SAMPLE} bytes; the plain payloads: the same text with a different seq each"

# probe: in database probe, pg_notify + COMMIT in a loop from when the
# session named bench_big appears until it is gone; prints the longest
# commit in ms
PROBE_SQL="DO \$\$
DECLARE
  t0 timestamptz;
  worst float8 := 0;
  seen boolean := false;
  n int := 0;
BEGIN
  LOOP
    t0 := clock_timestamp();
    PERFORM pg_notify('probe', 'x');
    COMMIT;
    worst := greatest(worst, extract(epoch FROM clock_timestamp() - t0) * 1000);
    IF EXISTS (SELECT 1 FROM pg_stat_activity WHERE application_name = 'bench_big') THEN
      seen := true;
    ELSIF seen OR n > 30000 THEN
      EXIT;
    END IF;
    n := n + 1;
    PERFORM pg_sleep(0.001);
  END LOOP;
  RAISE NOTICE 'probe worst % ms, % commits, saw the large transaction: %', round(worst::numeric, 1), n, seen;
END \$\$"

# one_run KIND: one large transaction of KIND (tego or plain) with the
# probe running; sets COMMIT_MS and PROBE_MS
one_run() {
	local kind=$1 call probe_pid
	case $kind in
		tego) call="SELECT count(tego.publish('bench', '$MESSAGE')) FROM generate_series(1, $EVENTS)" ;;
		plain) call="SELECT count(pg_notify('bench', regexp_replace('${SAMPLE//\'/\'\'}', '^\{\"seq\": [0-9]+,', '{\"seq\": ' || g || ','))) FROM generate_series(1000000, 1000000 + $EVENTS - 1) g" ;;
	esac
	psql_db postgres -c "CHECKPOINT" >/dev/null || tego_die "CHECKPOINT failed"
	psql_db probe -c "$PROBE_SQL" >"$WORK/probe.out" 2>&1 &
	probe_pid=$!
	BG_PIDS+=("$probe_pid")
	sleep 0.5
	as_pg psql -X -q -v ON_ERROR_STOP=1 -d "host=$WORK port=$PORT dbname=postgres user=postgres application_name=bench_big" \
		-c "BEGIN" -c "$call" -c '\timing on' -c "COMMIT" >"$WORK/big.out" 2>&1 ||
		{ cat "$WORK/big.out"; tego_die "the large $kind transaction failed"; }
	wait "$probe_pid" || { cat "$WORK/probe.out"; tego_die "the probe failed"; }
	COMMIT_MS=$(sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' "$WORK/big.out" | tail -n1)
	PROBE_MS=$(sed -n 's/.*probe worst \([0-9.]*\) ms.*/\1/p' "$WORK/probe.out")
	grep -q 'saw the large transaction: t' "$WORK/probe.out" ||
		{ cat "$WORK/probe.out"; tego_die "the probe did not see the large transaction"; }
	[ -n "$COMMIT_MS" ] && [ -n "$PROBE_MS" ] || tego_die "could not read the $kind run's figures"
}

median() {
	sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "nan"; else printf "%.2f", a / b }'
}

T_COMMIT=() P_COMMIT=() T_PROBE=() P_PROBE=()
seq0=$(psql_db postgres -c "SELECT tego.event_seq()")
for ((r = 1; r <= ROUNDS; r++)); do
	order="tego plain"
	((r % 2)) || order="plain tego"
	for kind in $order; do
		one_run "$kind"
		out "  round $r $kind: COMMIT ${COMMIT_MS} ms; probe's longest NOTIFY commit ${PROBE_MS} ms"
		if [ "$kind" = tego ]; then
			T_COMMIT+=("$COMMIT_MS") T_PROBE+=("$PROBE_MS")
		else
			P_COMMIT+=("$COMMIT_MS") P_PROBE+=("$PROBE_MS")
		fi
	done
done
seq1=$(psql_db postgres -c "SELECT tego.event_seq()")
check="tego events written: $((seq1 - seq0)), expected $((ROUNDS * EVENTS))"
if [ $((seq1 - seq0)) -eq $((ROUNDS * EVENTS)) ]; then out "  $check: ok"; else out "  warning: $check"; fi

tc=$(printf '%s\n' "${T_COMMIT[@]}" | median) pc=$(printf '%s\n' "${P_COMMIT[@]}" | median)
tp=$(printf '%s\n' "${T_PROBE[@]}" | median) pp=$(printf '%s\n' "${P_PROBE[@]}" | median)
q=$(ratio "$tp" "$pp") qc=$(ratio "$tc" "$pc")
ok=$(awk -v r="$q" 'BEGIN { print (r != "nan" && r + 0 <= 3) ? "yes" : "NO" }')
out "RESULT large commit, $EVENTS events ($ROUNDS rounds, medians): NOTIFY lock held (another database's longest NOTIFY commit) tego ${tp} ms | pg_notify ${pp} ms | ratio ${q}x | target <= 3x: $ok; COMMIT statement tego ${tc} ms | pg_notify ${pc} ms | ratio ${qc}x"
tego_bench_cleanup
