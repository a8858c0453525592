#!/usr/bin/env bash
# `make bench`: build and install tego, start a throwaway cluster and measure
# tego against what an application would do with plain PostgreSQL, in the
# same run:
#
#   1. commit-to-listener latency (p50/p99) of a lifecycle change, with 1 and
#      with 50 listeners, vs raw NOTIFY of the same payload size sent by a
#      transaction that also updates a row (so that its commit, like tego's,
#      waits for the WAL flush); NOTIFY alone, which commits without a flush,
#      is shown too (test/tools/tego_latency, 5 rounds, order reversed every
#      other round, medians over rounds); with fsync on (the default), then
#      again with fsync = off (set for that part only), where the flush no
#      longer hides the work each commit does                target p50 <= 1.15x
#   2. lifecycle transitions/s, 8 pgbench clients each toggling its own
#      plugin, vs UPDATE of a plain table + pg_notify, one commit per
#      transition                                                target >= 0.7x
#   3. tego.publish/s, 8 pgbench writers, vs a durable message without tego:
#      INSERT into a plain table + pg_notify, one transaction (the pattern of
#      graphile-worker); for context pg_notify alone, and the INSERT alone
#      (the ceiling of any durable message),
#      one LISTENer (tego_listen) connected during all           target >= 1.0x
#   4. lease acquire/renew calls/s, 8 holders each renewing its own lease,
#      vs the same renewals as plain UPDATEs (no target)
#   5. tego.app_status_set/s, 8 clients each setting its own app, vs
#      pg_notify of the same status; and the latency from the call to a
#      LISTEN session, vs pg_notify alone                target >= 20,000/s
#   6. tego.plugin_get from the mirror (tego.registry_source = memory) vs
#      from the table: 100,000 lookups inside one statement, 5 rounds
#      alternating, medians                                    target >= 2x;
#      per call over the network, 4 pgbench clients, 200 plugins, vs the
#      ceiling: a statement that returns the same columns as constants,
#      looking nothing up                                    target >= 0.9x
#      (and, for context, from the table, and a plain SELECT of the row)
#   7. tego.wait_events wake-up latency after a commit (listeners that keep
#      a wait_events call running, as behind a transaction-mode pooler) vs
#      the same change heard with LISTEN, 1 and 10 listeners
#   then, in a cluster of its own (test/bench/commit.sh; TEGO_BENCH_COMMIT=0
#   skips it, TEGO_BENCH_ONLY=commit runs only it): one transaction of
#   300,000 tego.publish vs one of 300,000 pg_notify, how long each holds
#   the NOTIFY lock (another database's NOTIFY waits)        target <= 3x
#
# Context figures, not targets: a transaction that only calls pg_notify
# writes no WAL before its commit record, so PostgreSQL commits it without
# waiting for the WAL flush; tego's events are durable rows.  So 1. also
# measures tego with synchronous_commit = off, and 3. also measures a durable
# message without tego (INSERT into a plain table + pg_notify).  pgbench runs
# also sample pg_stat_activity (what the backends wait on) and pg_stat_wal.
#
# pgbench runs go in the order A B (C) (C) B A, 3 times, 4 s each, after a
# 3 s warm-up of each, with a CHECKPOINT before each; a rate is the mean of
# its runs.  (Short, interleaved runs: other load on a shared machine then
# hits tego and its baseline alike.)
#
# Prints the machine, then one RESULT line per benchmark (ratio = tego vs its
# baseline).  Everything printed also goes to test/bench/results/latest.txt,
# and a markdown table to test/bench/results/README-table.md.
#
# The server runs as the postgres user from a postgres-owned temp folder
# (unix socket only, port 5495), with default settings apart from
# shared_preload_libraries = 'tego' (and fsync = off for the second half of
# benchmark 1).  It is stopped and the folder removed on exit (kept with
# TEGO_KEEP_TMP=1).
#
# Knobs: TEGO_BENCH_SECONDS (per pgbench run, default 4),
#        TEGO_BENCH_CYCLES (pgbench mirror cycles, default 3),
#        TEGO_BENCH_ROUNDS (latency rounds, default 5),
#        TEGO_BENCH_ITERATIONS (latency iterations per round, 1 listener,
#        default 300), TEGO_BENCH_ITERATIONS_50 (the same, 50 listeners,
#        default 200: 10000 samples a round).
set -uo pipefail

# shellcheck source=test/scripts/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# TEGO_BENCH_ONLY=commit runs only the large-transaction benchmark
# (test/bench/commit.sh)
case ${TEGO_BENCH_ONLY:-} in
	"") ;;
	commit) exec bash "$TEGO_TOP/test/bench/commit.sh" ;;
	*) tego_die "TEGO_BENCH_ONLY: unknown part ${TEGO_BENCH_ONLY} (known: commit)" ;;
esac

PORT=5495
SECONDS_PER_RUN=${TEGO_BENCH_SECONDS:-4}
CYCLES=${TEGO_BENCH_CYCLES:-3}
ROUNDS=${TEGO_BENCH_ROUNDS:-5}
ITERATIONS=${TEGO_BENCH_ITERATIONS:-300}
ITERATIONS_50=${TEGO_BENCH_ITERATIONS_50:-200}
CLIENTS=8
THREADS=2
export LC_ALL=C

BENCH_SRC=$TEGO_TOP/test/bench
RESULTS_DIR=$BENCH_SRC/results
RESULTS=$RESULTS_DIR/latest.txt
TABLE=$RESULTS_DIR/README-table.md

unset PGHOST PGHOSTADDR PGPORT PGUSER PGDATABASE PGSERVICE PGOPTIONS PGPASSWORD

tego_deps
tego_build_install

for tool in tego_latency tego_listen; do
	[ -x "$TEGO_TOP/test/tools/$tool" ] ||
		tego_die "test/tools/$tool was not built (is test/tools/$tool.c there?)"
done
command -v pgbench >/dev/null || tego_die "pgbench not found in $TEGO_PGBIN"

tego_bench_start tego-bench

# --- machine ----------------------------------------------------------------
CPU_MODEL=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -n1)
MEM_KB=$(sed -n 's/^MemTotal:[[:space:]]*\([0-9]*\).*/\1/p' /proc/meminfo)
MEM=$(awk -v k="${MEM_KB:-0}" 'BEGIN { printf "%.1f GiB", k / 1048576 }')
PGVERSION=$("$TEGO_PGBIN/postgres" --version)
MACHINE="nproc=$(nproc), cpu=${CPU_MODEL:-unknown}, mem=$MEM, $PGVERSION"
out "tego benchmarks, $(date -u '+%Y-%m-%d %H:%M:%S UTC'), commit $(git -C "$TEGO_TOP" rev-parse --short HEAD 2>/dev/null || echo '?')"
out "machine: $MACHINE"
out "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"

# --- the cluster ------------------------------------------------------------
cp "$TEGO_TOP/test/tools/tego_latency" "$TEGO_TOP/test/tools/tego_listen" "$WORK/"
cp "$BENCH_SRC"/*.sql "$WORK/"
if tego_is_root; then
	chown -R postgres:postgres "$WORK"
fi
cd "$WORK" || exit 1

tego_bench_cluster "$WORK/data" "$PORT"

CONN="host=$WORK port=$PORT dbname=postgres user=postgres"

# psql_q SQL...: run statements, print unaligned tuples only; fail loudly
psql_q() {
	local args=() s
	for s in "$@"; do
		args+=(-c "$s")
	done
	as_pg psql -X -q -At -v ON_ERROR_STOP=1 -d "$CONN" "${args[@]}"
}

psql_q "CREATE EXTENSION tego" || tego_die "CREATE EXTENSION tego failed"
as_pg psql -X -q -At -v ON_ERROR_STOP=1 -d "$CONN" -f "$WORK/setup.sql" >/dev/null ||
	tego_die "test/bench/setup.sql failed"
out "server: $(psql_q 'SHOW server_version'), fsync=$(psql_q 'SHOW fsync'), synchronous_commit=$(psql_q 'SHOW synchronous_commit'), shared_buffers=$(psql_q 'SHOW shared_buffers'), max_connections=$(psql_q 'SHOW max_connections')"

# capture_notify CHANNEL SQL: run SQL in a session that LISTENs on CHANNEL and
# print the payload of each notification received, one a line.
capture_notify() {
	as_pg psql -X -At -v ON_ERROR_STOP=1 -d "$CONN" \
		-c "LISTEN $1" -c "$2" -c "SELECT 1" 2>&1 |
		sed -n 's/^Asynchronous notification "[^"]*" with payload "\(.*\)" received from server process with PID [0-9]*\.$/\1/p'
}

# render TEMPLATE OUT NAME VALUE: copy TEMPLATE with @NAME@ replaced by VALUE
# as the inside of an SQL string literal
render() {
	local text value
	text=$(cat "$1") || tego_die "cannot read $1"
	value=${4//\'/\'\'}
	shopt -u patsub_replacement 2>/dev/null
	printf '%s\n' "${text//@$3@/"$value"}" >"$2"
	tego_is_root && chown postgres:postgres "$2"
	return 0
}

# median of the numbers on stdin
median() {
	sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# ratio A B: A / B with two decimals
ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "nan"; else printf "%.2f", a / b }'
}

# met RATIO OP TARGET: "yes" when RATIO OP TARGET holds (OP is <= or >=)
met() {
	awk -v r="$1" -v op="$2" -v t="$3" 'BEGIN {
		if (r == "nan") { print "no"; exit }
		ok = (op == "<=") ? (r + 0 <= t + 0) : (r + 0 >= t + 0)
		print ok ? "yes" : "NO" }'
}

TABLE_ROWS=()
LAT_NOTES=()
WAIT_NOTES=()

# start_listener NAME CHANNEL...: a tego_listen process in the background,
# returned once its LISTENs are done; its pid goes to BG_PIDS and LISTENER_PID
start_listener() {
	local name=$1 c args=() i last
	shift
	for c in "$@"; do
		args+=(-c "$c")
		last=$c
	done
	as_pg "$WORK/tego_listen" -d "$CONN application_name=$name" "${args[@]}" \
		--quiet-payload --timeout 600 >/dev/null 2>&1 &
	LISTENER_PID=$!
	LISTENER_NAME=$name
	BG_PIDS+=("$LISTENER_PID")
	for ((i = 0; i < 100; i++)); do
		# the last LISTEN is done when the session is idle after it
		if [ "$(psql_q "SELECT count(*) FROM pg_stat_activity WHERE application_name = '$name' AND state = 'idle' AND query = 'LISTEN \"$last\"'")" = 1 ]; then
			return 0
		fi
		kill -0 "$LISTENER_PID" 2>/dev/null || tego_die "tego_listen ($name) exited early"
		sleep 0.1
	done
	tego_die "tego_listen ($name) did not start listening"
}

# NB: LISTENER_PID is the background subshell, not tego_listen itself (run
# through runuser below it), so the listener is ended by ending its session:
# a listener left behind would be woken by every later NOTIFY and slow the
# benchmarks that follow
stop_listener() {
	psql_q "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = '$LISTENER_NAME'" >/dev/null
	wait "$LISTENER_PID" 2>/dev/null
	return 0
}

# wait_summary FILE: the 4 commonest lines of a wait sample, in percent
wait_summary() {
	grep -v '^$' "$1" | sort | uniq -c | sort -rn |
		awk '{ n[NR] = $1; w[NR] = $2; t += $1 }
			END { if (NR == 0) printf "no samples"
				for (i = 1; i <= NR && i <= 4; i++) printf "%s%s %.0f%%", (i > 1 ? ", " : ""), w[i], 100 * n[i] / t }'
}

# run_pgbench SCRIPT SECONDS [sample]: one pgbench run; sets PGB_TPS (script
# runs per second, without connection time) and PGB_TX (script runs).  With
# "sample", also sets PGB_INFO: what the pgbench backends were doing
# (pg_stat_activity sampled every 50 ms) and WAL flushes and bytes per
# script run (pg_stat_wal; the WAL writer's flushes count too).
run_pgbench() {
	local script=$1 secs=$2 log rc w0 w1 sampler=""
	log=$WORK/pgbench.$(basename "$script" .sql).log
	psql_q "CHECKPOINT" || tego_die "CHECKPOINT failed"
	w0=$(psql_q "SELECT wal_sync || ' ' || wal_bytes FROM pg_stat_wal")
	if [ "${3:-}" = sample ]; then
		as_pg timeout -k 5 "$secs" psql -X -At -d "$CONN" -f "$WORK/wait_sample.sql" \
			>"$WORK/waits.out" 2>/dev/null &
		sampler=$!
		BG_PIDS+=("$sampler")
	fi
	as_pg timeout -k 10 $((secs + 60)) pgbench -n -c "$CLIENTS" -j "$THREADS" -T "$secs" \
		-f "$WORK/$script" "$CONN" >"$log" 2>&1
	rc=$?
	[ -n "$sampler" ] && wait "$sampler" 2>/dev/null
	w1=$(psql_q "SELECT wal_sync || ' ' || wal_bytes FROM pg_stat_wal")
	PGB_TPS=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p' "$log")
	PGB_TX=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$log")
	if [ "$rc" -ne 0 ] || [ -z "$PGB_TPS" ] || [ -z "$PGB_TX" ] || [ "$PGB_TX" -eq 0 ]; then
		cat "$log"
		tego_die "pgbench -f $script failed (exit $rc)"
	fi
	if grep -q '^number of failed transactions: [1-9]' "$log"; then
		cat "$log"
		tego_die "pgbench -f $script had failed transactions"
	fi
	PGB_TPS=$(awk -v t="$PGB_TPS" 'BEGIN { printf "%.1f", t }')
	PGB_INFO=""
	if [ -n "$sampler" ]; then
		cat "$WORK/waits.out" >>"$WORK/waits.$script.all"
		PGB_INFO="backends: $(wait_summary "$WORK/waits.out"); "
	fi
	PGB_INFO+=$(awk -v a="$w0" -v b="$w1" -v n="$PGB_TX" 'BEGIN {
		split(a, x, " "); split(b, y, " ")
		printf "WAL flushes/run %.2f, WAL bytes/run %.0f", (y[1] - x[1]) / n, (y[2] - x[2]) / n }')
}

# ---------------------------------------------------------------------------
# 1. commit-to-listener latency
# ---------------------------------------------------------------------------
out ""
out "== 1. commit-to-listener latency: lifecycle change (tego) vs pg_notify of the same payload size (raw)"

# the typical tego notification: enable + disable of the latency plugin
SIZES=$(capture_notify tego_plugins "SELECT tego.plugin_enable('bench-lat'); SELECT tego.plugin_disable('bench-lat')" |
	awk '{ print length($0) }')
[ -n "$SIZES" ] || tego_die "no tego_plugins notification seen on a lifecycle change"
LAT_PAYLOAD=$(printf '%s\n' "$SIZES" | awk '{ s += $1 } END { printf "%d", s / NR }')
out "tego notification payload (plugin bench-lat): ${LAT_PAYLOAD} bytes; raw runs use --payload-bytes $LAT_PAYLOAD"
out "rounds: $ROUNDS x $ITERATIONS iterations with 1 listener, x $ITERATIONS_50 with 50 (+30 warm-up each) per variant, order reversed every other round; figures = median over rounds"
out "variants: tego; durable = UPDATE of a row + pg_notify, one commit (the baseline); raw = pg_notify alone (context: its commit waits for no WAL flush); async = tego with synchronous_commit=off (context, 1 listener only)"

psql_q "CHECKPOINT" || tego_die "CHECKPOINT failed"
T0=$SECONDS

# latency_run MODE LISTENERS [CONNINFO-EXTRA]: one tego_latency run; prints
# its output line
latency_run() {
	local line iterations=$ITERATIONS
	[ "$2" -gt 1 ] && iterations=$ITERATIONS_50
	line=$(as_pg timeout -k 10 180 "$WORK/tego_latency" -d "$CONN ${3:-}" --mode "$1" \
		--listeners "$2" --iterations "$iterations" --warmup 30 \
		--payload-bytes "$LAT_PAYLOAD" 2>"$WORK/latency.err") ||
		{ cat "$WORK/latency.err"; tego_die "tego_latency --mode $1 --listeners $2 ${3:-} failed"; }
	case $line in
		mode=*p50_us=*p99_us=*) printf '%s\n' "$line" ;;
		*) tego_die "unexpected tego_latency output: $line" ;;
	esac
}

# field NAME LINE: value of NAME=... in a tego_latency line
field() {
	sed -n "s/.*[[:space:]]$1=\([0-9.]*\).*/\1/p" <<<" $2"
}

# medians of the per-round figures of one variant
med() { # ARRAY-STRING
	tr ' ' '\n' <<<"$1" | grep . | median
}

# Variants, run in every round, order reversed every other round:
#   tego    the lifecycle change, default settings
#   raw     pg_notify of the same size: commits without waiting for the WAL
#           flush, since it wrote no WAL before its commit record
#   async   context, not a target: tego with synchronous_commit = off, i.e.
#           tego minus the WAL flush wait
for fsync in on off; do
if [ "$fsync" = off ]; then
	psql_q "ALTER SYSTEM SET fsync = off" "SELECT pg_reload_conf()" >/dev/null ||
		tego_die "could not turn fsync off"
	sleep 1
	out "  -- fsync = off (set for this part only): the same, without the cost of the WAL flush"
else
	out "  -- fsync = on (the default)"
fi
for listeners in 1 50; do
	declare -A P50=([tego]="" [durable]="" [raw]="" [async]="") P99=([tego]="" [durable]="" [raw]="" [async]="")
	for ((r = 1; r <= ROUNDS; r++)); do
		variants="tego durable raw async"
		# with 50 listeners waking them dominates; skip the context variant
		[ "$listeners" -gt 1 ] && variants="tego durable raw"
		order=$variants
		((r % 2)) || order=$(tr ' ' '\n' <<<"$variants" | tac | tr '\n' ' ')
		for v in $order; do
			case $v in
				tego) line=$(latency_run tego "$listeners") || exit 1 ;;
				raw) line=$(latency_run raw "$listeners") || exit 1 ;;
				durable) line=$(latency_run raw-durable "$listeners") || exit 1 ;;
				async) line=$(latency_run tego "$listeners" "options=-csynchronous_commit=off") || exit 1 ;;
			esac
			echo "  round $r $v: $line" >>"$RESULTS"
			P50[$v]+="$(field p50_us "$line") "
			P99[$v]+="$(field p99_us "$line") "
		done
	done
	t50=$(med "${P50[tego]}") t99=$(med "${P99[tego]}")
	d50=$(med "${P50[durable]}") d99=$(med "${P99[durable]}")
	r50=$(med "${P50[raw]}") r99=$(med "${P99[raw]}")
	a50=$(med "${P50[async]}") a99=$(med "${P99[async]}")  # empty: nan
	q99=$(ratio "$t99" "$d99") q50=$(ratio "$t50" "$d50")
	qr99=$(ratio "$t99" "$r99") qr50=$(ratio "$t50" "$r50")
	qa99=$(ratio "$a99" "$r99") qa50=$(ratio "$a50" "$r50")
	ok=$(met "$q50" "<=" 1.15)
	out "  per-round p99 us: tego ${P99[tego]}| durable ${P99[durable]}| raw ${P99[raw]}${P99[async]:+| tego sync-off ${P99[async]}}"
	if [ -n "${P99[async]}" ]; then
		out "  context: tego with synchronous_commit=off p50=${a50}us p99=${a99}us, ${qa99}x raw p99 (p50 ${qa50}x)"
		LAT_NOTES+=("fsync $fsync, $listeners listener(s): tego with synchronous_commit=off p99 ${a99} µs (p50 ${a50} µs), ${qa99}x raw (${qa50}x)")
	fi
	out "  per-round p50 us: tego ${P50[tego]}| durable ${P50[durable]}| raw ${P50[raw]}"
	out "RESULT latency, fsync $fsync, $listeners listener(s): tego p50=${t50}us p99=${t99}us | UPDATE + NOTIFY, one durable commit p50=${d50}us p99=${d99}us | p50 ratio ${q50}x (p99 ${q99}x) | target p50 <= 1.15x: $ok"
	out "  context: raw NOTIFY alone (no WAL flush at commit) p50=${r50}us p99=${r99}us: tego is ${qr50}x (p99 ${qr99}x)"
	TABLE_ROWS+=("| commit-to-listener latency, fsync $fsync, $listeners listener(s), p50 (p99) | ${t50} µs (${t99} µs) | ${d50} µs (${d99} µs), UPDATE + NOTIFY of ${LAT_PAYLOAD} B | ${q50}x (${q99}x) | p50 ≤ 1.15x | $ok |")
	TABLE_ROWS+=("| (context) the same vs NOTIFY alone, which commits without a WAL flush | ${t50} µs (${t99} µs) | ${r50} µs (${r99} µs) | ${qr50}x (${qr99}x) | — | — |")
	unset P50 P99
done
done
psql_q "ALTER SYSTEM RESET fsync" "SELECT pg_reload_conf()" >/dev/null || tego_die "could not reset fsync"
sleep 1

# ---------------------------------------------------------------------------
# pgbench A/B helper
# ---------------------------------------------------------------------------

# mirror_bench SCRIPT...: warm each script up (3 s), then run them
# $CYCLES times in the order S1..Sn Sn..S1 ($SECONDS_PER_RUN each), so that
# drift and other load on the machine hit all alike.  Sets, per script: TPS
# (mean of its runs), RUNS (the runs' tps), TX (script runs, warm-up
# included), INFO (per run, see run_pgbench) and WAITS (what its backends
# were doing over all its runs).
declare -A TPS RUNS TX INFO WAITS
mirror_bench() {
	local s order=() i c
	for s in "$@"; do
		RUNS[$s]="" TX[$s]=0 INFO[$s]=""
		: >"$WORK/waits.$s.all"
		run_pgbench "$s" 3
		TX[$s]=$((TX[$s] + PGB_TX))
	done
	for ((c = 0; c < CYCLES; c++)); do
		order+=("$@")
		for ((i = $#; i >= 1; i--)); do
			order+=("${!i}")
		done
	done
	for s in "${order[@]}"; do
		run_pgbench "$s" "$SECONDS_PER_RUN" "${MIRROR_SAMPLE-sample}"
		RUNS[$s]+="$PGB_TPS "
		TX[$s]=$((TX[$s] + PGB_TX))
		INFO[$s]+="    $s: $PGB_TPS tps; $PGB_INFO"$'\n'
	done
	for s in "$@"; do
		TPS[$s]=$(awk '{ s = 0; for (i = 1; i <= NF; i++) s += $i; printf "%.1f", s / NF }' <<<"${RUNS[$s]}")
		WAITS[$s]=$(wait_summary "$WORK/waits.$s.all")
	done
}

# ---------------------------------------------------------------------------
# 2. lifecycle transitions per second
# ---------------------------------------------------------------------------
out "  (section took $((SECONDS - T0)) s)"
T0=$SECONDS
out ""
out "== 2. lifecycle transitions/s, $CLIENTS clients (-j $THREADS), each toggling its own plugin: tego.plugin_enable/disable vs UPDATE bench_plain + pg_notify"

PLAIN_PAYLOAD=$(capture_notify tego_plugins "SELECT tego.plugin_enable('bench-0'); SELECT tego.plugin_disable('bench-0')" | tail -n1)
[ -n "$PLAIN_PAYLOAD" ] || tego_die "no tego_plugins notification seen for bench-0"
render "$WORK/plain_toggle.sql" "$WORK/plain_toggle.run.sql" PAYLOAD "$PLAIN_PAYLOAD"
cp "$WORK/tego_toggle.sql" "$WORK/tego_toggle.run.sql"
tego_is_root && chown postgres:postgres "$WORK/tego_toggle.run.sql"
out "baseline pg_notify payload: a captured tego notification, ${#PLAIN_PAYLOAD} bytes"
out "one LISTENer (tego_listen on tego_plugins and bench_plain) connected throughout; 2 transitions (2 commits) per script run"

start_listener bench_listen_2 tego_plugins bench_plain
seq0=$(psql_q "SELECT tego.event_seq()")
mirror_bench tego_toggle.run.sql plain_toggle.run.sql
stop_listener
seq1=$(psql_q "SELECT tego.event_seq()")
A=tego_toggle.run.sql B=plain_toggle.run.sql
T_RATE=$(awk -v t="${TPS[$A]}" 'BEGIN { printf "%.0f", 2 * t }')
B_RATE=$(awk -v t="${TPS[$B]}" 'BEGIN { printf "%.0f", 2 * t }')
q=$(ratio "${TPS[$A]}" "${TPS[$B]}")
ok=$(met "$q" ">=" 0.7)
out "  runs (script tps = transitions/s / 2; $SECONDS_PER_RUN s each; $CYCLES x A B B A, grouped by script):"
out "${INFO[$A]%$'\n'}"
out "${INFO[$B]%$'\n'}"
check="tego events written: $((seq1 - seq0)), expected 2 x ${TX[$A]} script runs = $((2 * TX[$A]))"
if [ $((seq1 - seq0)) -eq $((2 * TX[$A])) ]; then out "  $check: ok"; else out "  warning: $check"; fi
enabled_left=$(psql_q "SELECT count(*) FROM tego.plugins WHERE name LIKE 'bench-_' AND enabled")
[ "$enabled_left" = 0 ] || out "  warning: $enabled_left bench plugins left enabled (a script run was cut short)"
out "  backends over all runs: tego ${WAITS[$A]} | plain ${WAITS[$B]}"
WAIT_NOTES+=("lifecycle transitions: tego ${WAITS[$A]}; plain ${WAITS[$B]}")
out "RESULT lifecycle transitions/s, $CLIENTS clients: tego ${T_RATE}/s | plain table + pg_notify ${B_RATE}/s | ratio ${q}x | target >= 0.7x: $ok"
TABLE_ROWS+=("| lifecycle transitions/s, $CLIENTS clients | ${T_RATE}/s | ${B_RATE}/s (UPDATE + pg_notify) | ${q}x | ≥ 0.7x | $ok |")

# ---------------------------------------------------------------------------
# 3. tego.publish throughput
# ---------------------------------------------------------------------------
out "  (section took $((SECONDS - T0)) s)"
T0=$SECONDS
out ""
out "== 3. publish/s, $CLIENTS writers (-j $THREADS), one message per transaction: tego.publish vs a durable message without tego (INSERT + pg_notify of the same text)"

MESSAGE='{"k": 1, "v": "'$(printf 'x%.0s' $(seq 1 80))'"}'
render "$WORK/tego_publish.sql" "$WORK/tego_publish.run.sql" MESSAGE "$MESSAGE"
render "$WORK/raw_notify.sql" "$WORK/raw_notify.run.sql" MESSAGE "$MESSAGE"
render "$WORK/durable_notify.sql" "$WORK/durable_notify.run.sql" MESSAGE "$MESSAGE"
render "$WORK/durable_insert.sql" "$WORK/durable_insert.run.sql" MESSAGE "$MESSAGE"
PUB_PAYLOAD=$(capture_notify bench "SELECT tego.publish('bench', '$MESSAGE')" | tail -n1)
out "message: ${#MESSAGE} bytes (the raw NOTIFY payload); tego.publish's NOTIFY payload: ${#PUB_PAYLOAD} bytes"
out "one LISTENer (tego_listen on channel bench) connected throughout"
out "baseline: durable_notify = INSERT of the message into a plain table + pg_notify in one transaction;"
out "context: raw_notify = pg_notify alone (nothing stored); durable_insert = the INSERT alone, no NOTIFY: the ceiling of any design that stores each message durably"

start_listener bench_listen_3 bench
seq0=$(psql_q "SELECT tego.event_seq()")
mirror_bench tego_publish.run.sql raw_notify.run.sql durable_notify.run.sql durable_insert.run.sql
stop_listener
seq1=$(psql_q "SELECT tego.event_seq()")
A=tego_publish.run.sql B=raw_notify.run.sql C=durable_notify.run.sql D=durable_insert.run.sql
T_RATE=$(awk -v t="${TPS[$A]}" 'BEGIN { printf "%.0f", t }')
B_RATE=$(awk -v t="${TPS[$B]}" 'BEGIN { printf "%.0f", t }')
C_RATE=$(awk -v t="${TPS[$C]}" 'BEGIN { printf "%.0f", t }')
D_RATE=$(awk -v t="${TPS[$D]}" 'BEGIN { printf "%.0f", t }')
q=$(ratio "${TPS[$A]}" "${TPS[$B]}")
qc=$(ratio "${TPS[$A]}" "${TPS[$C]}")
qd=$(ratio "${TPS[$D]}" "${TPS[$B]}")
ok=$(met "$qc" ">=" 1.0)
out "  runs ($SECONDS_PER_RUN s each; $CYCLES x A B C D D C B A, grouped by script):"
out "${INFO[$A]%$'\n'}"
out "${INFO[$B]%$'\n'}"
out "${INFO[$C]%$'\n'}"
out "${INFO[$D]%$'\n'}"
check="tego events written: $((seq1 - seq0)), expected ${TX[$A]}"
if [ $((seq1 - seq0)) -eq "${TX[$A]}" ]; then out "  $check: ok"; else out "  warning: $check"; fi
out "  backends over all runs: tego.publish ${WAITS[$A]} | pg_notify ${WAITS[$B]} | INSERT + pg_notify ${WAITS[$C]} | INSERT alone ${WAITS[$D]}"
WAIT_NOTES+=("publish: tego.publish ${WAITS[$A]}; pg_notify ${WAITS[$B]}; INSERT + pg_notify ${WAITS[$C]}; INSERT alone ${WAITS[$D]}")
out "RESULT publish/s, $CLIENTS writers: tego.publish ${T_RATE}/s | INSERT + pg_notify ${C_RATE}/s | ratio ${qc}x | target >= 1.0x: $ok  (context: pg_notify alone ${B_RATE}/s, tego ${q}x of it; ceiling of a durable message, INSERT alone without NOTIFY: ${D_RATE}/s = ${qd}x of pg_notify)"
TABLE_ROWS+=("| \`tego.publish\`/s, $CLIENTS writers, 1 listener | ${T_RATE}/s | ${C_RATE}/s (INSERT + pg_notify, one transaction) | ${qc}x | ≥ 1.0x | $ok |")
TABLE_ROWS+=("| (context) the same vs pg_notify alone, nothing stored | ${T_RATE}/s | ${B_RATE}/s | ${q}x | — | — |")
TABLE_ROWS+=("| publish/s, ceiling: a durable INSERT with no NOTIFY at all, vs pg_notify | ${D_RATE}/s | ${B_RATE}/s (pg_notify) | ${qd}x | — | — |")

# ---------------------------------------------------------------------------
# 4. lease renewals per second
# ---------------------------------------------------------------------------
out "  (section took $((SECONDS - T0)) s)"
T0=$SECONDS
out ""
out "== 4. lease acquire/renew per second, $CLIENTS holders (-j $THREADS) on $CLIENTS leases: tego.lease_acquire + lease_renew vs plain UPDATEs"
cp "$WORK/tego_lease.sql" "$WORK/tego_lease.run.sql"
cp "$WORK/plain_lease.sql" "$WORK/plain_lease.run.sql"
tego_is_root && chown postgres:postgres "$WORK/tego_lease.run.sql" "$WORK/plain_lease.run.sql"
mirror_bench tego_lease.run.sql plain_lease.run.sql
A=tego_lease.run.sql B=plain_lease.run.sql
T_RATE=$(awk -v t="${TPS[$A]}" 'BEGIN { printf "%.0f", 2 * t }')
B_RATE=$(awk -v t="${TPS[$B]}" 'BEGIN { printf "%.0f", 2 * t }')
q=$(ratio "${TPS[$A]}" "${TPS[$B]}")
out "  runs (script tps = calls/s / 2; $SECONDS_PER_RUN s each; $CYCLES x A B B A, grouped by script):"
out "${INFO[$A]%$'\n'}"
out "${INFO[$B]%$'\n'}"
tokens=$(psql_q "SELECT string_agg(DISTINCT token::text, ',') FROM tego.leases WHERE name LIKE 'lease-%'")
if [ "$tokens" = 1 ]; then out "  every lease still has token 1: ok"; else out "  warning: lease tokens $tokens (expected 1)"; fi
out "  backends over all runs: tego ${WAITS[$A]} | plain ${WAITS[$B]}"
WAIT_NOTES+=("lease renewals: tego ${WAITS[$A]}; plain ${WAITS[$B]}")
out "RESULT lease acquire/renew calls/s, $CLIENTS holders: tego ${T_RATE}/s | plain UPDATE ${B_RATE}/s | ratio ${q}x | no target"
TABLE_ROWS+=("| lease acquire/renew calls/s, $CLIENTS holders on $CLIENTS leases | ${T_RATE}/s | ${B_RATE}/s (plain UPDATE) | ${q}x | — | — |")

# ---------------------------------------------------------------------------
# 5. app status sets per second, and their latency to a listener
# ---------------------------------------------------------------------------
out "  (section took $((SECONDS - T0)) s)"
T0=$SECONDS
out ""
out "== 5. app_status_set/s, $CLIENTS clients (-j $THREADS), each setting its own app, vs pg_notify of the same status"
cp "$WORK/tego_app_status.sql" "$WORK/tego_app_status.run.sql"
cp "$WORK/raw_app_status.sql" "$WORK/raw_app_status.run.sql"
tego_is_root && chown postgres:postgres "$WORK/tego_app_status.run.sql" "$WORK/raw_app_status.run.sql"
start_listener bench_listen_5 tego_apps bench_apps
# NB: not sampled: the sampler's own queries (20 a second) take a share of
# the 2 cores that calls this cheap would notice
MIRROR_SAMPLE="" mirror_bench tego_app_status.run.sql raw_app_status.run.sql
stop_listener
A=tego_app_status.run.sql B=raw_app_status.run.sql
T_RATE=$(awk -v t="${TPS[$A]}" 'BEGIN { printf "%.0f", t }')
B_RATE=$(awk -v t="${TPS[$B]}" 'BEGIN { printf "%.0f", t }')
q=$(ratio "${TPS[$A]}" "${TPS[$B]}")
ok=$(awk -v t="$T_RATE" 'BEGIN { print (t >= 20000) ? "yes" : "NO" }')
out "  runs ($SECONDS_PER_RUN s each; $CYCLES x A B B A, grouped by script):"
out "${INFO[$A]%$'\n'}"
out "${INFO[$B]%$'\n'}"
versions=$(psql_q "SELECT coalesce(sum(version), 0) FROM tego.apps WHERE app LIKE 'bench-app-%'")
out "  sets counted in tego.apps (versions): $versions; pgbench calls: ${TX[$A]}"

# latency: set -> LISTEN session, vs pg_notify alone
APP_LAT=() RAW_LAT=()
for ((r = 1; r <= ROUNDS; r++)); do
	APP_LAT+=("$(latency_run app 1)")
	RAW_LAT+=("$(latency_run raw 1)")
done
med() { # FIELD LINES...: median of one field over the lines
	local f=$1
	shift
	printf '%s\n' "$@" | sed -n "s/.* $f=\([0-9.]*\).*/\1/p" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}
a50=$(med p50_us "${APP_LAT[@]}") a99=$(med p99_us "${APP_LAT[@]}")
r50=$(med p50_us "${RAW_LAT[@]}") r99=$(med p99_us "${RAW_LAT[@]}")
out "  latency, set to listener, 1 listener ($ROUNDS rounds, medians): tego p50 ${a50} us, p99 ${a99} us | pg_notify alone p50 ${r50} us, p99 ${r99} us"
out "RESULT app_status_set/s, $CLIENTS clients: tego ${T_RATE}/s | pg_notify ${B_RATE}/s | ratio ${q}x | target >= 20000/s: $ok; latency p50/p99 ${a50}/${a99} us (pg_notify ${r50}/${r99} us)"
TABLE_ROWS+=("| app_status_set/s, $CLIENTS clients, 1 listener | ${T_RATE}/s | ${B_RATE}/s (pg_notify of the same status) | ${q}x | ≥ 20,000/s | $ok |")
TABLE_ROWS+=("| app status change to listener, p99 (p50) | ${a99} µs (${a50} µs) | pg_notify alone: ${r99} µs (${r50} µs) | $(ratio "$a99" "$r99")x | — | — |")

# ---------------------------------------------------------------------------
# 6. plugin_get from the mirror, from the table, and a plain SELECT
# ---------------------------------------------------------------------------
out "  (section took $((SECONDS - T0)) s)"
T0=$SECONDS
out ""
GET_CLIENTS=4
out "== 6. plugin_get from the mirror (tego.registry_source = memory) vs from the table: inside one statement, and per call over the network"
GET_LOOKUPS=100000
out "  a. $GET_LOOKUPS lookups of 200 plugins inside one statement, $ROUNDS rounds alternating, medians"
# stmt_ms SOURCE: the time of one statement of GET_LOOKUPS lookups (ms)
stmt_ms() {
	as_pg psql -X -q -At -v ON_ERROR_STOP=1 -d "$CONN" \
		-c "SET tego.registry_source = '$1'" -c '\timing on' \
		-c "SELECT count(p.revision) FROM generate_series(1, $GET_LOOKUPS) g,
		      LATERAL tego.plugin_get('bench-get-' || (g % 200 + 1)) p" |
		sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p'
}
STMT_MEM="" STMT_TAB=""
stmt_ms memory >/dev/null # warm-up
for ((r = 1; r <= ROUNDS; r++)); do
	if ((r % 2)); then
		STMT_MEM+="$(stmt_ms memory) " STMT_TAB+="$(stmt_ms table) "
	else
		STMT_TAB+="$(stmt_ms table) " STMT_MEM+="$(stmt_ms memory) "
	fi
done
S_MEM=$(tr " " "\n" <<<"$STMT_MEM" | grep . | median) S_TAB=$(tr " " "\n" <<<"$STMT_TAB" | grep . | median)
q=$(ratio "$S_TAB" "$S_MEM")
ok=$(met "$q" ">=" 2)
out "  per-round ms: memory ${STMT_MEM}| table ${STMT_TAB}"
out "RESULT plugin_get x $GET_LOOKUPS in one statement: memory ${S_MEM} ms | table ${S_TAB} ms | speed-up ${q}x | target >= 2x: $ok"
TABLE_ROWS+=("| \`plugin_get\` from the mirror, $GET_LOOKUPS lookups in one statement (median of $ROUNDS) | ${S_MEM} ms | from the table: ${S_TAB} ms | ${q}x faster | ≥ 2x | $ok |")
out "  b. plugin_get/s, $GET_CLIENTS clients (-j $THREADS), 200 plugins, one call per statement: memory vs the ceiling (the row's constants), and, for context, table and a plain SELECT"
cp "$WORK/tego_get.sql" "$WORK/tego_get.run.sql"
cp "$WORK/plain_get.sql" "$WORK/plain_get.run.sql"
cp "$WORK/ceiling_get.sql" "$WORK/ceiling_get.run.sql"
tego_is_root && chown postgres:postgres "$WORK/tego_get.run.sql" "$WORK/plain_get.run.sql" "$WORK/ceiling_get.run.sql"
# get_run NAME SCRIPT [PGOPTIONS]: one pgbench run; appends its tps to GET[NAME]
declare -A GET
get_run() {
	local log=$WORK/pgbench.get.$1.log tps
	PGOPTIONS="${3:-}" as_pg timeout -k 10 $((SECONDS_PER_RUN + 60)) pgbench -n -c "$GET_CLIENTS" -j "$THREADS" \
		-T "$SECONDS_PER_RUN" -f "$WORK/$2" "$CONN" >"$log" 2>&1 ||
		{ cat "$log"; tego_die "pgbench -f $2 failed"; }
	tps=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p' "$log")
	GET[$1]+="${tps:-0} "
}
for ((c = 0; c < CYCLES; c++)); do
	for v in memory table plain ceiling ceiling plain table memory; do
		case $v in
			memory) get_run memory tego_get.run.sql "-c tego.registry_source=memory" ;;
			table) get_run table tego_get.run.sql ;;
			plain) get_run plain plain_get.run.sql ;;
			ceiling) get_run ceiling ceiling_get.run.sql ;;
		esac
	done
done
mean() { awk '{ s = 0; for (i = 1; i <= NF; i++) s += $i; printf "%.0f", s / NF }' <<<"$1"; }
G_MEM=$(mean "${GET[memory]}") G_TAB=$(mean "${GET[table]}") G_PLAIN=$(mean "${GET[plain]}")
G_CEIL=$(mean "${GET[ceiling]}")
out "  runs: memory ${GET[memory]}| table ${GET[table]}| plain SELECT ${GET[plain]}| ceiling (the row's constants, no lookup) ${GET[ceiling]}"
q=$(ratio "$G_MEM" "$G_CEIL")
ok=$(met "$q" ">=" 0.9)
out "RESULT plugin_get/s, $GET_CLIENTS clients: memory ${G_MEM}/s | ceiling (constants, no lookup) ${G_CEIL}/s | ratio ${q}x | target >= 0.9x: $ok  (context: table ${G_TAB}/s, plain SELECT ${G_PLAIN}/s)"
TABLE_ROWS+=("| \`plugin_get\` calls/s from the mirror, $GET_CLIENTS clients, 200 plugins | ${G_MEM}/s | ${G_CEIL}/s: the same columns as constants, no lookup (the ceiling) | ${q}x | ≥ 0.9x | $ok |")
TABLE_ROWS+=("| (context) \`plugin_get\` calls/s from the table | ${G_TAB}/s | ${G_CEIL}/s | $(ratio "$G_TAB" "$G_CEIL")x | — | — |")
TABLE_ROWS+=("| (context) a plain SELECT of the row by name | ${G_PLAIN}/s | ${G_CEIL}/s | $(ratio "$G_PLAIN" "$G_CEIL")x | — | — |")

# ---------------------------------------------------------------------------
# 7. wait_events wake-up latency vs LISTEN
# ---------------------------------------------------------------------------
out "  (section took $((SECONDS - T0)) s)"
T0=$SECONDS
out ""
out "== 7. change-to-client latency: tego.wait_events (no LISTEN) vs LISTEN on tego_plugins, the same lifecycle change"
for n in 1 10; do
	declare -a W_LAT=() L_LAT=()
	for ((r = 1; r <= ROUNDS; r++)); do
		if ((r % 2)); then
			L_LAT+=("$(latency_run tego "$n")")
			W_LAT+=("$(latency_run wait "$n")")
		else
			W_LAT+=("$(latency_run wait "$n")")
			L_LAT+=("$(latency_run tego "$n")")
		fi
	done
	# from sending COMMIT to the client having the event (the commit's WAL
	# flush included), and from the writer having its COMMIT result
	w50=$(for l in "${W_LAT[@]}"; do field p50_us "$l"; done | median)
	w99=$(for l in "${W_LAT[@]}"; do field p99_us "$l"; done | median)
	l50=$(for l in "${L_LAT[@]}"; do field p50_us "$l"; done | median)
	l99=$(for l in "${L_LAT[@]}"; do field p99_us "$l"; done | median)
	wa99=$(for l in "${W_LAT[@]}"; do field ack_p99_us "$l"; done | median)
	la99=$(for l in "${L_LAT[@]}"; do field ack_p99_us "$l"; done | median)
	out "RESULT change to client, $n client(s) ($ROUNDS rounds, medians), from COMMIT sent: wait_events p50 ${w50} us, p99 ${w99} us | LISTEN p50 ${l50} us, p99 ${l99} us; after the COMMIT result, p99: wait_events ${wa99} us, LISTEN ${la99} us"
	TABLE_ROWS+=("| change to client, $n client(s), from COMMIT sent, p99 (p50) | wait_events: ${w99} µs (${w50} µs) | LISTEN: ${l99} µs (${l50} µs) | $(ratio "$w99" "$l99")x | — | — |")
done

# ---------------------------------------------------------------------------
# the table
# ---------------------------------------------------------------------------
{
	echo "Machine: $MACHINE. Default settings apart from shared_preload_libraries = 'tego' (and fsync = off where a row says so); \`make bench\`, $(date -u '+%Y-%m-%d')."
	echo
	echo "| benchmark | tego | baseline | ratio | target | met? |"
	echo "|---|---|---|---|---|---|"
	printf '%s\n' "${TABLE_ROWS[@]}"
	echo
	echo "Baselines are measured in the same run, alternating with tego. A transaction that only calls"
	echo "\`pg_notify\` writes no WAL before its commit record, so PostgreSQL commits it without waiting for"
	echo "the WAL flush (\`RecordTransactionCommit\`), while every tego event is a durable row whose commit"
	echo "waits for the flush. For context, measured in the same run:"
	for n in "${LAT_NOTES[@]}"; do
		echo "- latency, $n."
	done
	echo "- publish: a durable INSERT with no NOTIFY at all, the ceiling of any design that stores each message, is ${qd}x pg_notify (${D_RATE}/s)."
	echo "- What the 8 pgbench backends were doing (pg_stat_activity sampled every 50 ms; CPU = not waiting;"
	echo "  \`Lock:object\` is the database NOTIFY lock, which a NOTIFY-ing commit holds until it has ended):"
	for n in "${WAIT_NOTES[@]}"; do
		echo "  - $n."
	done
} >"$TABLE"

out "  (section took $((SECONDS - T0)) s)"
out ""
out "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
out "total: $SECONDS s; results: $RESULTS; table: $TABLE"
tego_bench_cleanup

# One large transaction (300,000 tego.publish vs 300,000 pg_notify): its
# commit and how long it holds the NOTIFY lock; a cluster of its own.
# TEGO_BENCH_COMMIT=0 skips it.
if [ "${TEGO_BENCH_COMMIT:-1}" != 0 ]; then
	echo
	bash "$TEGO_TOP/test/bench/commit.sh" || exit 1
fi

# The scheduler benchmarks (against pg_cron) run in a cluster of their own;
# TEGO_BENCH_SCHEDULER=0 skips them.
if [ "${TEGO_BENCH_SCHEDULER:-1}" != 0 ]; then
	echo
	bash "$TEGO_TOP/test/bench/scheduler.sh" || exit 1
fi

# Adoption: the command-line tool against psql, and the convergence of four
# Node.js workers, and @tego/core (TachyBase) processes on tego (the node/
# package); each in a cluster of its own.  TEGO_BENCH_ADOPTION=0
# skips them.
if [ "${TEGO_BENCH_ADOPTION:-1}" != 0 ]; then
	for b in cli node tachybase; do
		echo
		bash "$TEGO_TOP/test/bench/$b.sh" || exit 1
	done
fi

# Failover under Patroni and etcd (5 rounds of node loss, rejoin and
# switchover; as root, skipped without the packages).  TEGO_BENCH_FAILOVER=0
# skips it.
if [ "${TEGO_BENCH_FAILOVER:-1}" != 0 ]; then
	echo
	TEGO_BENCH_NO_BUILD=1 bash "$TEGO_TOP/test/bench/failover.sh" || exit 1
fi
