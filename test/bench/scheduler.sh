#!/usr/bin/env bash
# Scheduler benchmarks (part of `make bench`, runs standalone too):
#
#   bash test/bench/scheduler.sh
#
# Builds and installs tego, starts a throwaway cluster with both tego and
# pg_cron 1.4 preloaded (shared_preload_libraries = 'pg_cron,tego', one
# cluster, so both see the same machine at the same time) and measures, each
# against a baseline from the same run:
#
#   1. kill -9 of the tego scheduler -> the first job run that starts after
#      the kill (a '* * * * * *' job; includes the postmaster's crash
#      restart); baseline: the crash restart itself (kill -> "ready to accept
#      connections" in the server log), which no scheduler can beat.
#   2. fire drift (started_at - scheduled_for), p50/p99:
#      a. tego jobs every second, each an INSERT of a row into a table
#         (bench_sink) or a SELECT 1: 100 INSERT jobs for 60 s   target p99
#         < 10 ms, nothing missed; 100 SELECT 1, 30 INSERT and 30 SELECT 1
#         jobs for 30 s each                             (the same target)
#      b. 20 tego jobs and 20 pg_cron jobs on '* * * * *', each an INSERT,
#         3 minutes, side by side; pg_cron's drift is start_time - its minute
#                                        target: tego p99 below pg_cron's p99
#   3. wakeups per minute of the idle scheduler (next job an hour away,
#      measured once idle pooled job workers have retired; runs after 5):
#      voluntary + involuntary context switches of the process over 60 s,
#      tego scheduler vs pg_cron launcher over the same 60 s      target 0
#   4. 10,000 idle jobs: tego.schedule() latency while adding them (pgbench
#      -c 1, per-call log) vs cron.schedule(); then the CPU use of the
#      scheduler over 60 s (utime+stime, % of one core) vs the pg_cron
#      launcher holding 10,000 jobs over the same 60 s        target < 1%
#   5. app-job claims/s, 4 pgbench clients (-j 2), 200,000 pending runs:
#      tego.job_claim() vs a plain UPDATE ... (SELECT ... FOR UPDATE SKIP
#      LOCKED LIMIT 1) on a bare table of the same size; with the cluster's
#      default durability and with synchronous_commit = off for the clients
#      (the WAL flush per commit caps any one-commit-per-claim design on a
#      slow disk); batches of 10 runs per call (job_claim's max_runs) vs the
#      same batch on the bare table; also claim + finish in one transaction
#      (runs claimed/s: rows no longer pending / seconds)    target >= 5,000/s
#
# Output: everything printed goes to test/bench/results/scheduler.txt, and a
# markdown table (benchmark | tego | baseline | target | met?) to
# test/bench/results/scheduler-table.md.
#
# The server runs as the postgres user from a postgres-owned temp folder
# (unix socket only, port 5494) with default settings but for what the two
# schedulers need: shared_preload_libraries, tego.database,
# cron.database_name, and cron.host (the socket folder: pg_cron connects
# to the server like a client, and the server listens on no TCP port).
# So max_worker_processes = 8, tego.max_running_jobs = 5, pg_cron's
# cron.max_running_jobs = 32 with libpq connections (its default mode).
# Stopped and removed on exit (kept with TEGO_KEEP_TMP=1).
#
# Knobs (defaults in brackets; the defaults take about 11 minutes):
#   TEGO_SCHED_ONLY            benchmarks to run, e.g. "1 3" [1 2 3 4 5]
#   TEGO_SCHED_KILLS           kill -9 repetitions [5]
#   TEGO_SCHED_DRIFT_JOBS      per-second jobs of 2a's target run [100]
#   TEGO_SCHED_DRIFT_SECONDS   length of 2a's target run [60]
#   TEGO_SCHED_LOW_JOBS        per-second jobs of the smaller runs [30]
#   TEGO_SCHED_LOW_SECONDS     length of 2a's other runs [30] (0 skips them)
#   TEGO_SCHED_MINUTES         minutes of 2b [3] (0 skips it)
#   TEGO_SCHED_IDLE_SECONDS    window of 3 [60]
#   TEGO_SCHED_MANY_JOBS       jobs of 4 [10000]
#   TEGO_SCHED_CPU_SECONDS     CPU window of 4 [60]
#   TEGO_SCHED_CLAIM_ROWS      pending runs of 5 [200000]
#   TEGO_SCHED_CLAIM_SECONDS   pgbench -T of 5 [15]
#   TEGO_SCHED_CLAIM_BATCH     max_runs of the batch claims of 5 [10]
set -uo pipefail

# shellcheck source=test/scripts/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/common.sh"

PORT=5494
ONLY=${TEGO_SCHED_ONLY:-1 2 3 4 5}
KILLS=${TEGO_SCHED_KILLS:-5}
DRIFT_JOBS=${TEGO_SCHED_DRIFT_JOBS:-100}
DRIFT_SECONDS=${TEGO_SCHED_DRIFT_SECONDS:-60}
LOW_JOBS=${TEGO_SCHED_LOW_JOBS:-30}
LOW_SECONDS=${TEGO_SCHED_LOW_SECONDS:-30}
MINUTE_JOBS=20
MINUTES=${TEGO_SCHED_MINUTES:-3}
IDLE_SECONDS=${TEGO_SCHED_IDLE_SECONDS:-60}
MANY_JOBS=${TEGO_SCHED_MANY_JOBS:-10000}
CPU_SECONDS=${TEGO_SCHED_CPU_SECONDS:-60}
CLAIM_ROWS=${TEGO_SCHED_CLAIM_ROWS:-200000}
CLAIM_SECONDS=${TEGO_SCHED_CLAIM_SECONDS:-15}
CLAIM_CLIENTS=4
CLAIM_BATCH=${TEGO_SCHED_CLAIM_BATCH:-10}
CLAIM_THREADS=2
export LC_ALL=C

BENCH_SRC=$TEGO_TOP/test/bench/scheduler
RESULTS_DIR=$TEGO_TOP/test/bench/results
RESULTS=$RESULTS_DIR/scheduler.txt
TABLE=$RESULTS_DIR/scheduler-table.md
CLK_TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)

unset PGHOST PGHOSTADDR PGPORT PGUSER PGDATABASE PGSERVICE PGOPTIONS PGPASSWORD

tego_deps
tego_build_install
command -v pgbench >/dev/null || tego_die "pgbench not found in $TEGO_PGBIN"
[ -f "$TEGO_PGBIN/../lib/pg_cron.so" ] || [ -f "$($PG_CONFIG --pkglibdir)/pg_cron.so" ] ||
	tego_die "pg_cron is not installed (postgresql-15-cron)"

tego_bench_start tego-sched-bench
TABLE_ROWS=()
NOTES=()

# log_only LINE...: append to the results file only
log_only() {
	printf '%s\n' "$*" >>"$RESULTS"
}

want() { [[ " $ONLY " == *" $1 "* ]]; }

# --- small numeric helpers ----------------------------------------------------
now_epoch() { date +%s.%N; }

# calc EXPR: awk arithmetic, printed with %.3f unless FMT ($2) is given
calc() { awk "BEGIN { printf \"${2:-%.3f}\", ($1) }"; }

# sleep_until EPOCH
sleep_until() {
	local d
	d=$(awk -v t="$1" -v n="$(now_epoch)" 'BEGIN { d = t - n; printf "%.3f", (d > 0 ? d : 0) }')
	sleep "$d"
}

# median / max of the numbers on stdin
median() {
	sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
maxof() { sort -g | tail -n1; }

# yesno COND-AS-AWK-EXPR: "yes" or "NO"
yesno() { awk "BEGIN { print (($1) ? \"yes\" : \"NO\") }"; }

# --- /proc readings -----------------------------------------------------------
# cpu_ticks PID: utime + stime of a process, in clock ticks
cpu_ticks() {
	[ -r "/proc/$1/stat" ] || { echo 0; return; }
	# fields after the ")" that ends the command name: state is $1, utime $12, stime $13
	sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
}

# child_ticks PID: CPU (utime + stime, clock ticks) of the reaped children of
# a process: for the postmaster, the exited backends and workers
child_ticks() {
	[ -r "/proc/$1/stat" ] || { echo 0; return; }
	sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $14 + $15 }'
}

# job_ticks POSTMASTER-PID: CPU ticks of the SQL job workers so far: those
# that exited (in the postmaster's cutime + cstime; other exited backends
# count too, but none exit during the windows this is used for) and the
# live "tego job" processes (pooled workers live across runs)
job_ticks() {
	local t p
	t=$(child_ticks "$1")
	for p in $(ps --ppid "$1" -o pid=,args= 2>/dev/null | awk '/postgres: tego job/ { print $1 }'); do
		t=$((t + $(cpu_ticks "$p")))
	done
	echo "$t"
}

# ctxt PID: voluntary + involuntary context switches of a process
ctxt() {
	[ -r "/proc/$1/status" ] || { echo 0; return; }
	awk '/^voluntary_ctxt_switches|^nonvoluntary_ctxt_switches/ { s += $2 } END { print s + 0 }' "/proc/$1/status"
}

# sys_cpu: "busy total" jiffies of the whole machine (all cores)
sys_cpu() {
	awk '/^cpu / { t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t }' /proc/stat
}

# busy_pct "B0 T0" "B1 T1": the machine's busy share (% of all cores)
busy_pct() {
	awk -v a="$1" -v b="$2" 'BEGIN { split(a, x, " "); split(b, y, " ");
		d = y[2] - x[2]; printf "%.0f", (d > 0 ? 100 * (y[1] - x[1]) / d : 0) }'
}

# core_pct TICKS SECONDS: ticks as % of one core
core_pct() { calc "100 * $1 / $CLK_TCK / $2" "%.2f"; }

# --- machine --------------------------------------------------------------------
CPU_MODEL=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -n1)
MEM_KB=$(sed -n 's/^MemTotal:[[:space:]]*\([0-9]*\).*/\1/p' /proc/meminfo)
MEM=$(awk -v k="${MEM_KB:-0}" 'BEGIN { printf "%.1f GiB", k / 1048576 }')
PGVERSION=$("$TEGO_PGBIN/postgres" --version)
CRON_DEB=$(dpkg-query -W -f='${Version}' postgresql-15-cron 2>/dev/null || echo '?')
out "tego scheduler benchmarks, $(date -u '+%Y-%m-%d %H:%M:%S UTC'), commit $(git -C "$TEGO_TOP" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$TEGO_TOP" diff --quiet HEAD -- src sql 2>/dev/null || echo ' (+ uncommitted changes in src/ or sql/)')"

# --- the cluster ----------------------------------------------------------------
cp "$BENCH_SRC"/*.sql "$WORK/" || tego_die "cannot copy $BENCH_SRC/*.sql"
tego_is_root && chown -R postgres:postgres "$WORK"
cd "$WORK" || exit 1

as_pg initdb -D "$WORK/data" -U postgres -A trust -E UTF8 --locale=C >"$WORK/initdb.log" 2>&1 ||
	{ cat "$WORK/initdb.log"; tego_die "initdb failed"; }
cat >>"$WORK/data/postgresql.conf" <<EOF
# test/bench/scheduler.sh
listen_addresses = ''
unix_socket_directories = '$WORK'
port = $PORT
shared_preload_libraries = 'pg_cron,tego'
log_line_prefix = '%m [%p] '
log_timezone = 'UTC'
timezone = 'UTC'
tego.database = 'postgres'
cron.database_name = 'postgres'
cron.host = '$WORK'
EOF
LOG=$WORK/server.log
as_pg pg_ctl -D "$WORK/data" -l "$LOG" -w -t 60 start >/dev/null ||
	{ tail -n 30 "$LOG"; tego_die "the server did not start"; }

CONN="host=$WORK port=$PORT dbname=postgres user=postgres"

# psql_q SQL...: run statements, print unaligned tuples only; fail loudly
psql_q() {
	local args=() s
	for s in "$@"; do
		args+=(-c "$s")
	done
	as_pg psql -X -q -At -F ' ' -v ON_ERROR_STOP=1 -d "$CONN" "${args[@]}"
}

# psql_try SQL: like psql_q but quiet on failure (server restarting)
psql_try() {
	as_pg psql -X -q -At -F ' ' -d "$CONN connect_timeout=2" -c "$1" 2>/dev/null
}

psql_q "CREATE EXTENSION pg_cron" "CREATE EXTENSION tego" \
	"CREATE ROLE bench_job LOGIN" "CREATE SEQUENCE bench_names" \
	"CREATE TABLE public.bench_sink (id bigserial PRIMARY KEY, job integer NOT NULL,
	   at timestamptz NOT NULL DEFAULT clock_timestamp())" \
	"GRANT INSERT ON public.bench_sink TO bench_job" \
	"GRANT USAGE ON SEQUENCE public.bench_sink_id_seq TO bench_job" >/dev/null ||
	tego_die "setting up the extensions failed"
CRON_VERSION=$(psql_q "SELECT extversion FROM pg_extension WHERE extname = 'pg_cron'")
MACHINE="nproc=$(nproc), cpu=${CPU_MODEL:-unknown}, mem=$MEM, $PGVERSION, pg_cron $CRON_VERSION (Debian postgresql-15-cron $CRON_DEB)"
out "machine: $MACHINE"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
out "load average at start: $LOAD_START (other work on the machine disturbs these figures)"
out "server: fsync=$(psql_q 'SHOW fsync'), synchronous_commit=$(psql_q 'SHOW synchronous_commit'), wal_sync_method=$(psql_q 'SHOW wal_sync_method'), shared_buffers=$(psql_q 'SHOW shared_buffers'), max_connections=$(psql_q 'SHOW max_connections'), max_worker_processes=$(psql_q 'SHOW max_worker_processes'), tego.max_running_jobs=$(psql_q 'SHOW tego.max_running_jobs') (per role: $(psql_q "SELECT CASE WHEN current_setting('tego.max_running_jobs_per_role')::int < 0 THEN (current_setting('tego.max_running_jobs')::int + 1) / 2 ELSE current_setting('tego.max_running_jobs_per_role')::int END")), tego.job_group_commit=$(psql_q 'SHOW tego.job_group_commit'), cron.use_background_workers=$(psql_q 'SHOW cron.use_background_workers'), cron.max_running_jobs=$(psql_q 'SHOW cron.max_running_jobs')"

# pid_of BACKEND_TYPE: the pid of that process (empty if none)
pid_of() {
	psql_try "SELECT pid FROM pg_stat_activity WHERE backend_type = '$1' LIMIT 1"
}

# wait_pid_of BACKEND_TYPE: wait (up to 30 s) for the process; print its pid
wait_pid_of() {
	local i p
	for ((i = 0; i < 300; i++)); do
		p=$(pid_of "$1")
		[ -n "$p" ] && { echo "$p"; return 0; }
		sleep 0.1
	done
	return 1
}

SCHED_PID=$(wait_pid_of "tego scheduler") || tego_die "no 'tego scheduler' process"
CRON_PID=$(wait_pid_of "pg_cron launcher") || tego_die "no 'pg_cron launcher' process"
out "processes: tego scheduler pid $SCHED_PID, pg_cron launcher pid $CRON_PID"

# crash_check WHAT: report server-log lines about processes that died (and
# tego warnings/errors) that appeared since the last check
LOG_SEEN=0
crash_check() {
	local n lines
	n=$(wc -l <"$LOG")
	lines=$(tail -n +"$((LOG_SEEN + 1))" "$LOG" | head -n "$((n - LOG_SEEN))" |
		grep -E 'terminated by signal|exited with exit code [^0]|tego scheduler.*(WARNING|ERROR)|(WARNING|ERROR|PANIC|FATAL):.*tego' |
		grep -v 'Killed' | sort | uniq -c | sort -rn | head -n 5)
	LOG_SEEN=$n
	if [ -n "$lines" ]; then
		out "  !! server log during $1:"
		while IFS= read -r l; do out "  !!   $l"; done <<<"$lines"
		NOTES+=("server log during $1: $(head -n1 <<<"$lines" | sed 's/^ *//')")
	fi
}

# unschedule_all: remove every tego and pg_cron job, wait for the runs in
# progress (idle pooled job workers stay until they retire)
unschedule_all() {
	psql_q "SELECT count(tego.unschedule(name)) FROM tego.jobs" \
		"SELECT count(cron.unschedule(jobid)) FROM cron.job" >/dev/null ||
		tego_die "unscheduling failed"
	local i
	for ((i = 0; i < 100; i++)); do
		[ "$(psql_q "SELECT count(*) FROM pg_stat_activity WHERE backend_type IN ('tego job', 'pg_cron') AND state <> 'idle'")" = 0 ] && return 0
		sleep 0.1
	done
}

# daily_spec HOURS-AHEAD: "M H * * *" for the UTC time that many hours (and
# a minute) from now
daily_spec() {
	local t
	t=$(($(date +%s) + $1 * 3600 + 60))
	echo "$(date -u -d "@$t" +%-M) $(date -u -d "@$t" +%-H) * * *"
}

# ---------------------------------------------------------------------------
# 1. kill -9 of the scheduler -> next fired job
# ---------------------------------------------------------------------------
# log_time_after PATTERN EPOCH: epoch of the first server-log line matching
# PATTERN stamped after EPOCH (empty if none)
log_time_after() {
	grep -E "$1" "$LOG" | while IFS= read -r line; do
		t=$(date -u -d "$(cut -d' ' -f1-2 <<<"$line") UTC" +%s.%N 2>/dev/null) || continue
		if awk -v a="$t" -v b="$2" 'BEGIN { exit !(a > b) }'; then
			echo "$t"
			break
		fi
	done
}

if want 1; then
	out ""
	out "== 1. kill -9 of the tego scheduler -> first job run started after the kill ('* * * * * *' job, $KILLS times; includes the postmaster's crash restart)"
	out "   load average: $(cut -d' ' -f1-3 /proc/loadavg)"
	psql_q "SELECT job_id FROM tego.schedule('every_second', '* * * * * *', 'SELECT 1', username => 'bench_job')" >/dev/null ||
		tego_die "tego.schedule failed"
	sleep 3
	FIRSTS=() READYS=() ONTIMES=()
	for ((k = 1; k <= KILLS; k++)); do
		pid=$(wait_pid_of "tego scheduler") || tego_die "no tego scheduler before kill $k"
		# wait for a run to have happened on this scheduler, then kill at a
		# phase that moves by 1/KILLS of a second from one kill to the next
		sleep_until "$(calc "int($(now_epoch)) + 1 + ($k - 1) / $KILLS + 0.05")"
		t0=$(now_epoch)
		kill -9 "$pid" || tego_die "kill -9 $pid failed"
		first="" ontime=""
		deadline=$(calc "$t0 + 60")
		while [ -z "$ontime" ] && awk -v n="$(now_epoch)" -v d="$deadline" 'BEGIN { exit !(n < d) }'; do
			r=$(psql_try "SELECT extract(epoch FROM min(started_at)) - $t0,
			                     extract(epoch FROM min(started_at) FILTER (WHERE started_at - scheduled_for < interval '100 ms')) - $t0
			                FROM tego.job_runs WHERE started_at > to_timestamp($t0)")
			read -r f o <<<"$r"
			[ -z "$first" ] && [ -n "${f:-}" ] && first=$f
			[ -n "${o:-}" ] && ontime=$o
			sleep 0.05
		done
		ready=$(log_time_after 'database system is ready to accept connections' "$t0")
		sched=$(log_time_after 'tego scheduler started' "$t0")
		[ -n "$ready" ] && ready=$(calc "$ready - $t0") || ready=nan
		[ -n "$sched" ] && sched=$(calc "$sched - $t0") || sched=nan
		[ -n "$first" ] && first=$(calc "$first") || first=nan
		[ -n "$ontime" ] && ontime=$(calc "$ontime") || ontime=nan
		out "  kill $k: server ready ${ready} s, scheduler started ${sched} s, first run started ${first} s, first on-time run (drift < 100 ms) ${ontime} s after the kill"
		FIRSTS+=("$first") READYS+=("$ready") ONTIMES+=("$ontime")
		sleep 2
	done
	r=$(psql_q "SELECT string_agg(status || ' ' || n, ', ') FROM (SELECT status, count(*) n FROM tego.job_runs GROUP BY 1 ORDER BY 1) s")
	out "  runs of the job over all kills: $r"
	f_med=$(printf '%s\n' "${FIRSTS[@]}" | median) f_max=$(printf '%s\n' "${FIRSTS[@]}" | maxof)
	o_med=$(printf '%s\n' "${ONTIMES[@]}" | median) o_max=$(printf '%s\n' "${ONTIMES[@]}" | maxof)
	r_med=$(printf '%s\n' "${READYS[@]}" | median) r_max=$(printf '%s\n' "${READYS[@]}" | maxof)
	out "RESULT kill -9 -> next fired job: median ${f_med} s, max ${f_max} s (first on-time run: median ${o_med} s, max ${o_max} s) | baseline crash restart (server ready): median ${r_med} s, max ${r_max} s | no target"
	TABLE_ROWS+=("| kill -9 of the scheduler → next job run started, median / max of $KILLS | ${f_med} s / ${f_max} s (first on-time run ${o_med} s / ${o_max} s) | crash restart alone (kill → server ready): ${r_med} s / ${r_max} s | — | — |")
	unschedule_all
	crash_check "benchmark 1 (besides the kills)"
fi

# ---------------------------------------------------------------------------
# 2a. fire drift of per-second jobs
# ---------------------------------------------------------------------------
# drift_stats PATTERN FROM TO EXPECTED: "started p50 p99 max missed skipped
# failed", drift in ms over the runs of the jobs named PATTERN scheduled in
# [FROM, TO); runs that did not start (skipped, failed, missing) count as
# infinitely late in p99all
drift_stats() {
	psql_q "WITH r AS (
	          SELECT r.status, extract(epoch FROM r.started_at - r.scheduled_for) * 1000 AS d
	            FROM tego.job_runs r JOIN tego.jobs j USING (job_id)
	           WHERE j.name LIKE '$1' AND NOT r.manual
	             AND r.scheduled_for >= to_timestamp($2) AND r.scheduled_for < to_timestamp($3))
	        SELECT count(d),
	               coalesce(round(percentile_disc(0.5) WITHIN GROUP (ORDER BY d), 2)::text, 'nan'),
	               coalesce(round(percentile_disc(0.99) WITHIN GROUP (ORDER BY d), 2)::text, 'nan'),
	               coalesce(round(max(d), 2)::text, 'nan'),
	               $4 - count(d),
	               count(*) FILTER (WHERE status = 'skipped'),
	               count(*) FILTER (WHERE status NOT IN ('succeeded', 'skipped'))
	          FROM r"
}

# The commands of the jobs: a row written (the job's number in it), or none.
job_command() {
	case $1 in
		INSERT) echo "'INSERT INTO public.bench_sink (job) VALUES (' || g || ')'" ;;
		*) echo "'SELECT 1'" ;;
	esac
}

# per_second_run JOBS SECONDS TAG KIND: JOBS tego jobs on '* * * * * *'
# running job_command KIND, for SECONDS (after 3 s of warm-up); sets PS_*
# figures
per_second_run() {
	local jobs=$1 secs=$2 tag=$3 kind=$4 t_from t_to c0 c1 s0 s1 p0 p1 pm
	psql_q "SELECT count(*) FROM generate_series(1, $jobs) g,
	          LATERAL tego.schedule('${tag}_' || g, '* * * * * *', $(job_command "$kind"), username => 'bench_job') s" >/dev/null ||
		tego_die "scheduling $jobs per-second jobs failed"
	t_from=$(calc "int($(now_epoch)) + 4" "%d")
	t_to=$((t_from + secs))
	pm=$(head -n1 "$WORK/data/postmaster.pid")
	SCHED_PID=$(wait_pid_of "tego scheduler")
	sleep_until "$t_from"
	c0=$(sys_cpu) s0=$(cpu_ticks "$SCHED_PID") p0=$(cpu_ticks "$pm") k0=$(job_ticks "$pm")
	sleep_until "$t_to"
	c1=$(sys_cpu) s1=$(cpu_ticks "$SCHED_PID") p1=$(cpu_ticks "$pm") k1=$(job_ticks "$pm")
	sleep 3
	PS_LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
	# (unscheduling deletes the runs: read them first)
	read -r PS_N PS_P50 PS_P99 PS_MAX PS_MISSED PS_SKIPPED PS_FAILED <<<"$(drift_stats "${tag}_%" "$t_from" "$t_to" "$((jobs * secs))")"
	PS_WORST=$(psql_q "SELECT to_char(s, 'HH24:MI:SS') || ': ' || n || ' of $jobs started, max drift ' || coalesce(m || ' ms', '-') FROM (
	      SELECT r.scheduled_for s, count(r.started_at) n,
	             round(max(extract(epoch FROM r.started_at - r.scheduled_for) * 1000), 1) m
	        FROM tego.job_runs r JOIN tego.jobs j USING (job_id)
	       WHERE j.name LIKE '${tag}_%' AND r.scheduled_for >= to_timestamp($t_from) AND r.scheduled_for < to_timestamp($t_to)
	       GROUP BY 1 ORDER BY n, m DESC NULLS FIRST LIMIT 1) w")
	# runs that finished in the window
	PS_WORKERS=$(psql_q "SELECT count(*) FROM tego.job_runs WHERE status <> 'skipped'
	      AND finished_at >= to_timestamp($t_from) AND finished_at < to_timestamp($t_to)")
	unschedule_all
	PS_EXPECTED=$((jobs * secs))
	PS_BUSY=$(busy_pct "$c0" "$c1")
	PS_SCHED=$(core_pct "$((s1 - s0))" "$secs")
	PS_PM=$(core_pct "$((p1 - p0))" "$secs")
	# CPU of the job workers per run that finished in the window
	PS_KIDS=$(core_pct "$((k1 - k0))" "$secs")
	PS_PER_RUN=$(calc "$PS_WORKERS > 0 ? 1000 * ($k1 - $k0) / $CLK_TCK / $PS_WORKERS : 0" "%.1f")
}

if want 2; then
	out ""
	out "== 2a. fire drift of per-second SQL jobs (started_at - scheduled_for; job: an INSERT of a row into bench_sink, or SELECT 1)"
	out "   load average: $(cut -d' ' -f1-3 /proc/loadavg)"
	# what a new backend costs here: every SQL job run is a new process
	pm=$(head -n1 "$WORK/data/postmaster.pid")
	k0=$(child_ticks "$pm")
	as_pg pgbench -n -C -c 1 -T 5 -f "$WORK/connect.sql" "$CONN" >"$WORK/pgbench.connect.log" 2>&1
	sleep 0.5
	k1=$(child_ticks "$pm")
	n=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$WORK/pgbench.connect.log")
	CONN_MS=$(calc "${n:-0} > 0 ? 1000 * ($k1 - $k0) / $CLK_TCK / ${n:-1} : 0" "%.1f")
	out "  a new client backend (pgbench -C, SELECT 1, ${n:-0} connections) costs ${CONN_MS} ms of CPU here (fork to exit): at most ~$(calc "$CONN_MS > 0 ? $(nproc) * 1000 / $CONN_MS : 0" "%.0f") new processes/s fit in $(nproc) cores"
	for spec in "$DRIFT_JOBS $DRIFT_SECONDS INSERT" "$DRIFT_JOBS $LOW_SECONDS SELECT" \
		"$LOW_JOBS $LOW_SECONDS INSERT" "$LOW_JOBS $LOW_SECONDS SELECT"; do
		read -r J S K <<<"$spec"
		[ "$S" -gt 0 ] || continue
		per_second_run "$J" "$S" "ps${J}${K}" "$K"
		[ "$K" = SELECT ] && KN="SELECT 1" || KN="INSERT"
		out "  $J $KN jobs every second for $S s: $PS_N of $PS_EXPECTED runs started; missed $PS_MISSED (skipped as 'previous run still active' $PS_SKIPPED, failed/other $PS_FAILED)"
		out "    drift of the started runs: p50 ${PS_P50} ms, p99 ${PS_P99} ms, max ${PS_MAX} ms"
		out "    worst second: $PS_WORST"
		out "    CPU over the window: machine ${PS_BUSY}% busy (all $(nproc) cores), tego scheduler ${PS_SCHED}% of a core, postmaster ${PS_PM}% of a core, job workers ${PS_KIDS}% of a core = ${PS_PER_RUN} ms per run; load average after: $PS_LOAD"
		ok=$(yesno "\"$PS_P99\" != \"nan\" && $PS_P99 < 10 && $PS_MISSED == 0")
		out "RESULT fire drift, $J $KN jobs/s x $S s: p50 ${PS_P50} ms, p99 ${PS_P99} ms over $PS_N started runs, $PS_MISSED of $PS_EXPECTED runs missed | baseline: none (pg_cron 1.4 has no second schedules) | target p99 < 10 ms (and nothing missed): $ok"
		TABLE_ROWS+=("| fire drift, $J \`$KN\` jobs every second for $S s, p50 / p99 | ${PS_P50} ms / ${PS_P99} ms; ${PS_MISSED} of ${PS_EXPECTED} runs missed | — (pg_cron 1.4 has no second schedules); job workers' CPU per run ${PS_PER_RUN} ms | p99 < 10 ms | $ok |")
		NOTES+=("$J $KN jobs/s: machine ${PS_BUSY}% busy over the window (load average after: $PS_LOAD); the job workers used ${PS_PER_RUN} ms of CPU per run (a new client backend, fork to exit, costs ${CONN_MS} ms here), ${PS_KIDS}% of a core in all; the scheduler itself used ${PS_SCHED}% of a core, the postmaster ${PS_PM}%.")
		crash_check "benchmark 2a ($J $KN jobs/s)"
	done

fi

# ---------------------------------------------------------------------------
# 2b. per-minute jobs, tego vs pg_cron
# ---------------------------------------------------------------------------
if want 2 && [ "$MINUTES" -gt 0 ]; then
	out ""
	out "== 2b. fire drift of per-minute jobs: $MINUTE_JOBS tego jobs and $MINUTE_JOBS pg_cron jobs on '* * * * *' (each an INSERT into bench_sink), side by side, $MINUTES minutes"
	out "   tego: started_at - scheduled_for (start of the command in the job worker); pg_cron: cron.job_run_details.start_time - its minute"
	out "   load average: $(cut -d' ' -f1-3 /proc/loadavg)"
	psql_q "SELECT count(*) FROM generate_series(1, $MINUTE_JOBS) g,
	          LATERAL tego.schedule('pm_' || g, '* * * * *', $(job_command INSERT), username => 'bench_job') s" \
		"SELECT count(*) FROM generate_series(1, $MINUTE_JOBS) g,
	          LATERAL cron.schedule('pm_' || g, '* * * * *', 'INSERT INTO public.bench_sink (job) VALUES (-' || g || ')') s" >/dev/null ||
		tego_die "scheduling the per-minute jobs failed"
	now=$(now_epoch)
	m0=$(calc "(int($now / 60) + 1) * 60" "%d")
	[ "$(calc "$m0 - $now < 8" "%d")" = 1 ] && m0=$((m0 + 60))
	m1=$((m0 + MINUTES * 60))
	out "   window: $(date -u -d "@$m0" '+%H:%M:%S') to $(date -u -d "@$m1" '+%H:%M:%S') UTC (waiting $(calc "$m1 - 60 + 6 - $now" "%.0f") s)"
	sleep_until "$((m1 - 60 + 6))"
	read -r T_N T_P50 T_P99 T_MAX T_MISSED T_SKIPPED T_FAILED <<<"$(drift_stats 'pm\_%' "$m0" "$m1" "$((MINUTE_JOBS * MINUTES))")"
	read -r C_N C_P50 C_P99 C_MAX C_FAILED <<<"$(psql_q "WITH r AS (
	          SELECT d.status, extract(epoch FROM d.start_time - date_trunc('minute', d.start_time)) * 1000 AS ms
	            FROM cron.job_run_details d
	           WHERE d.command LIKE 'INSERT INTO public.bench_sink%' AND d.start_time >= to_timestamp($m0) AND d.start_time < to_timestamp($m1))
	        SELECT count(ms),
	               coalesce(round(percentile_disc(0.5) WITHIN GROUP (ORDER BY ms), 2)::text, 'nan'),
	               coalesce(round(percentile_disc(0.99) WITHIN GROUP (ORDER BY ms), 2)::text, 'nan'),
	               coalesce(round(max(ms), 2)::text, 'nan'),
	               count(*) FILTER (WHERE status <> 'succeeded')
	          FROM r")"
	C_MISSED=$((MINUTE_JOBS * MINUTES - C_N))
	per_min=$(psql_q "SELECT string_agg(to_char(m, 'HH24:MI') || ' tego max ' || t || ' ms / pg_cron max ' || c || ' ms', '; ' ORDER BY m) FROM (
	      SELECT m, (SELECT round(max(extract(epoch FROM r.started_at - r.scheduled_for) * 1000), 1)
	                   FROM tego.job_runs r WHERE r.scheduled_for = m AND r.job_name LIKE 'pm\_%') t,
	                (SELECT round(max(extract(epoch FROM d.start_time - m) * 1000), 1)
	                   FROM cron.job_run_details d WHERE date_trunc('minute', d.start_time) = m AND d.command LIKE 'INSERT INTO public.bench_sink%') c
	        FROM generate_series(to_timestamp($m0), to_timestamp($m1) - interval '1 minute', interval '1 minute') m) s")
	unschedule_all
	out "  tego:    $T_N of $((MINUTE_JOBS * MINUTES)) runs started (skipped $T_SKIPPED, failed $T_FAILED); drift p50 ${T_P50} ms, p99 ${T_P99} ms, max ${T_MAX} ms"
	out "  pg_cron: $C_N of $((MINUTE_JOBS * MINUTES)) runs started (not succeeded $C_FAILED); drift p50 ${C_P50} ms, p99 ${C_P99} ms, max ${C_MAX} ms"
	out "  per minute: $per_min"
	ok=$(yesno "\"$T_P99\" != \"nan\" && \"$C_P99\" != \"nan\" && $T_P99 < $C_P99 && $T_MISSED == 0")
	out "RESULT fire drift, $MINUTE_JOBS jobs on '* * * * *' x $MINUTES min: tego p50 ${T_P50} ms, p99 ${T_P99} ms | pg_cron p50 ${C_P50} ms, p99 ${C_P99} ms | target tego p99 < pg_cron p99: $ok"
	TABLE_ROWS+=("| fire drift, $MINUTE_JOBS jobs on \`* * * * *\` for $MINUTES min, p50 / p99 | ${T_P50} ms / ${T_P99} ms ($T_MISSED missed) | pg_cron: ${C_P50} ms / ${C_P99} ms ($C_MISSED missed) | tego p99 < pg_cron p99 | $ok |")
	crash_check "benchmark 2b"
fi

# ---------------------------------------------------------------------------
# 5. app-job claims
# ---------------------------------------------------------------------------
# run_claims SCRIPT MODE TABLE: pgbench -c 4 -j 2 -T CLAIM_SECONDS (MODE
# sync-off: the clients set synchronous_commit = off); sets CL_TPS (calls/s),
# CL_RATE (runs claimed/s: the rows of TABLE no longer pending, over the
# run's length) and CL_TX (0 and the log's tail if pgbench failed)
run_claims() {
	local script=$1 opts="" log left
	[ "$2" = sync-off ] && opts="-c synchronous_commit=off"
	log=$WORK/pgbench.$script.$2.log
	psql_q "CHECKPOINT" >/dev/null
	PGOPTIONS="$opts" as_pg timeout -k 10 $((CLAIM_SECONDS + 60)) pgbench -n -c "$CLAIM_CLIENTS" -j "$CLAIM_THREADS" \
		-T "$CLAIM_SECONDS" -D batch="$CLAIM_BATCH" -f "$WORK/$script.sql" "$CONN" >"$log" 2>&1
	CL_TPS=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p' "$log")
	CL_TX=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$log")
	if [ -z "$CL_TPS" ] || grep -qE '^number of failed transactions: [1-9]|aborted' "$log"; then
		out "  !! pgbench -f $script failed: $(grep -iE 'error|abort' "$log" | head -n2 | tr '\n' ' ')"
		CL_TPS=${CL_TPS:-0}
	fi
	CL_TPS=$(calc "${CL_TPS:-0}" "%.0f")
	CL_TX=${CL_TX:-0}
	read -r CL_DONE left <<<"$(psql_q "SELECT count(*) FILTER (WHERE status <> 'pending'), count(*) FILTER (WHERE status = 'pending') FROM $3")"
	CL_RATE=$(calc "${CL_DONE:-0} / $CLAIM_SECONDS" "%.0f")
	[ "${left:-0}" -eq 0 ] && out "  !! $script ran out of pending runs: its rate is a lower bound"
}

# prep_tego_runs ROWS / prep_plain_runs ROWS: that many pending runs
prep_tego_runs() {
	psql_q "TRUNCATE tego.job_runs" \
		"INSERT INTO tego.job_runs (job_id, job_name, username, scheduled_for, status, due_at)
		 SELECT j.job_id, j.name, j.username, timestamptz '2000-01-01' + g * interval '1 second', 'pending', now()
		   FROM tego.jobs j, generate_series(1, $1) g WHERE j.name = 'claims'" \
		"VACUUM ANALYZE tego.job_runs" >/dev/null || tego_die "preparing tego.job_runs failed"
}

prep_plain_runs() {
	psql_q "TRUNCATE bench_queue RESTART IDENTITY" \
		"INSERT INTO bench_queue (scheduled_for, status)
		 SELECT timestamptz '2000-01-01' + g * interval '1 second', 'pending' FROM generate_series(1, $1) g" \
		"VACUUM ANALYZE bench_queue" >/dev/null || tego_die "preparing bench_queue failed"
}

# plan_line SQL: the first plan node line that says how many rows a filter
# removed, and the execution time
plan_summary() {
	psql_q "EXPLAIN (ANALYZE, COSTS OFF) $1" |
		grep -E 'Scan|Rows Removed|Execution Time' | sed 's/^ *//; s/  */ /g' | paste -sd ';' | sed 's/;/; /g'
}

if want 5; then
	out ""
	out "== 5. app-job claims/s: $CLAIM_CLIENTS clients (-j $CLAIM_THREADS), -T $CLAIM_SECONDS, $CLAIM_ROWS pending runs of one app job (inserted directly, as the scheduler would)"
	out "   baseline: bare table bench_queue (run_id identity PK, scheduled_for, status, worker, timestamps; index (scheduled_for, run_id) WHERE status = 'pending'), same rows,"
	out "   UPDATE ... WHERE run_id = (SELECT ... WHERE status = 'pending' ORDER BY scheduled_for, run_id LIMIT 1 FOR UPDATE SKIP LOCKED)"
	out "   load average: $(cut -d' ' -f1-3 /proc/loadavg)"
	unschedule_all
	psql_q "SELECT job_id FROM tego.schedule_app('claims', '0 0 1 1 *', '{}'::jsonb, username => 'bench_job',
	          claim_timeout => '1 day', heartbeat_timeout => '1 day')" \
		"CREATE TABLE bench_queue (run_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
		   scheduled_for timestamptz NOT NULL, status text NOT NULL, worker text,
		   started_at timestamptz, heartbeat_at timestamptz, finished_at timestamptz)" \
		"CREATE INDEX bench_queue_pending ON bench_queue (scheduled_for, run_id) WHERE status = 'pending'" >/dev/null ||
		tego_die "setting up benchmark 5 failed"
	CLAIM_SQL="SELECT c.run_id FROM tego.job_runs c WHERE c.status = 'pending'
	             AND pg_has_role('postgres', c.username, 'MEMBER')
	           ORDER BY c.scheduled_for, c.run_id LIMIT 1 FOR UPDATE SKIP LOCKED"
	declare -A CL CR
	CLAIM_PLAN="?" FINISH_PLAN="?"
	# default durability: one run per call, and batches; without the WAL
	# flush: one run per call, and claim + finish in one transaction
	for combo in "default claim plain_claim" "default claim_batch plain_claim_batch" \
		"sync-off claim plain_claim" "sync-off claim_finish plain_claim_finish"; do
		read -r mode ts ps <<<"$combo"
		rows=$CLAIM_ROWS
		[ "$ts" = claim_batch ] && rows=$((CLAIM_ROWS * 3))
		prep_tego_runs "$rows"
		run_claims "$ts" "$mode" tego.job_runs
		CL[$ts.$mode]=$CL_TPS CR[$ts.$mode]=$CL_RATE
		out "  tego $ts ($mode durability): $CL_TPS calls/s, $CL_RATE runs claimed/s ($CL_TX calls in $CLAIM_SECONDS s)"
		if [ "$mode" = sync-off ]; then
			if [ "$ts" = claim ]; then
				CLAIM_PLAN=$(plan_summary "$CLAIM_SQL")
				out "    after it, job_claim's query plan: $CLAIM_PLAN"
			else
				jid=$(psql_q "SELECT job_id FROM tego.jobs WHERE name = 'claims'")
				FINISH_PLAN=$(plan_summary "SELECT 1 FROM tego.job_runs q WHERE q.job_id = $jid AND q.status = 'queued'")
				out "    after it, job_finish's queued-run check plan: $FINISH_PLAN"
			fi
		fi
		prep_plain_runs "$rows"
		run_claims "$ps" "$mode" bench_queue
		CL[$ps.$mode]=$CL_TPS CR[$ps.$mode]=$CL_RATE
		out "  plain $ts ($mode durability): $CL_TPS calls/s, $CL_RATE runs claimed/s ($CL_TX calls in $CLAIM_SECONDS s)"
	done
	ok_1=$(yesno "${CR[claim.default]} >= 5000")
	ok_b=$(yesno "${CR[claim_batch.default]} >= 5000")
	ok_s=$(yesno "${CR[claim.sync-off]} >= 5000")
	ok_f=$(yesno "${CR[claim_finish.sync-off]} >= 5000")
	NOTES+=("claims: after the tego claim run, job_claim's query: $CLAIM_PLAN")
	NOTES+=("claim + finish: job_finish's check for a queued run of the job: $FINISH_PLAN")
	out "RESULT claims/s, $CLAIM_CLIENTS clients, default durability: tego ${CR[claim_batch.default]} in batches of $CLAIM_BATCH, ${CR[claim.default]} one per call | plain UPDATE SKIP LOCKED ${CR[plain_claim_batch.default]} in batches, ${CR[plain_claim.default]} one per call | target >= 5000: $ok_b (one per call: $ok_1)"
	out "RESULT claims/s, $CLAIM_CLIENTS clients, synchronous_commit = off: tego ${CR[claim.sync-off]} one per call, claim+finish ${CR[claim_finish.sync-off]} | plain ${CR[plain_claim.sync-off]}, claim+finish ${CR[plain_claim_finish.sync-off]}"
	TABLE_ROWS+=("| app-job runs claimed/s, $CLAIM_CLIENTS clients, default durability, \`job_claim(worker, max_runs => $CLAIM_BATCH)\` | ${CR[claim_batch.default]} | plain UPDATE … LIMIT $CLAIM_BATCH SKIP LOCKED: ${CR[plain_claim_batch.default]} | ≥ 5,000 | $ok_b |")
	TABLE_ROWS+=("| app-job runs claimed/s, same, one run per call | ${CR[claim.default]} | plain UPDATE … LIMIT 1 SKIP LOCKED: ${CR[plain_claim.default]} | (≥ 5,000) | $ok_1 |")
	TABLE_ROWS+=("| app-job runs claimed/s, one run per call, clients with synchronous_commit = off | ${CR[claim.sync-off]} | ${CR[plain_claim.sync-off]} | (≥ 5,000) | $ok_s |")
	TABLE_ROWS+=("| claim + finish in one transaction/s, synchronous_commit = off | ${CR[claim_finish.sync-off]} | ${CR[plain_claim_finish.sync-off]} | (≥ 5,000) | $ok_f |")
	psql_q "TRUNCATE tego.job_runs" "DROP TABLE bench_queue" >/dev/null
	unschedule_all
	crash_check "benchmark 5"
fi

# ---------------------------------------------------------------------------
# 3. idle wakeups
# ---------------------------------------------------------------------------
if want 3; then
	out ""
	out "== 3. wakeups of the idle scheduler: context switches (voluntary + involuntary) over $IDLE_SECONDS s, next job an hour away"
	out "   load average: $(cut -d' ' -f1-3 /proc/loadavg)"
	unschedule_all
	spec=$(daily_spec 1)
	psql_q "SELECT job_id FROM tego.schedule('in_an_hour', '$spec', 'SELECT 1', username => 'bench_job')" \
		"SELECT cron.schedule('in_an_hour', '$spec', 'SELECT 1')" >/dev/null ||
		tego_die "scheduling the hourly jobs failed"
	out "   one job each on '$spec' (UTC)"
	# idle pooled job workers retire a while after their last run, and each
	# retirement wakes the scheduler: measure once they are gone
	t=$(now_epoch)
	for ((i = 0; i < 1200; i++)); do
		[ "$(psql_q "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'tego job'")" = 0 ] && break
		sleep 0.1
	done
	POOL_LEFT=$(psql_q "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'tego job'")
	out "   waited $(calc "$(now_epoch) - $t" "%.0f") s for idle job workers to retire ($POOL_LEFT left)"
	sleep 3
	SCHED_PID=$(wait_pid_of "tego scheduler") CRON_PID=$(wait_pid_of "pg_cron launcher")
	a0=$(ctxt "$SCHED_PID") b0=$(ctxt "$CRON_PID") ta0=$(cpu_ticks "$SCHED_PID") tb0=$(cpu_ticks "$CRON_PID")
	sleep "$IDLE_SECONDS"
	a1=$(ctxt "$SCHED_PID") b1=$(ctxt "$CRON_PID") ta1=$(cpu_ticks "$SCHED_PID") tb1=$(cpu_ticks "$CRON_PID")
	[ "$(pid_of "tego scheduler")" = "$SCHED_PID" ] || out "  !! the tego scheduler was restarted during the window"
	W_T=$(calc "($a1 - $a0) * 60 / $IDLE_SECONDS" "%.0f")
	W_C=$(calc "($b1 - $b0) * 60 / $IDLE_SECONDS" "%.0f")
	out "  tego scheduler (pid $SCHED_PID): $((a1 - a0)) switches, $((ta1 - ta0)) CPU ticks; pg_cron launcher (pid $CRON_PID): $((b1 - b0)) switches, $((tb1 - tb0)) CPU ticks"
	ok=$(yesno "$W_T == 0")
	out "RESULT idle wakeups per minute: tego scheduler $W_T | pg_cron launcher $W_C | target 0: $ok"
	TABLE_ROWS+=("| idle wakeups per minute (next job in an hour), context switches | $W_T | pg_cron launcher: $W_C | 0 | $ok |")
	unschedule_all
	crash_check "benchmark 3"
fi

# ---------------------------------------------------------------------------
# 4. 10,000 idle jobs
# ---------------------------------------------------------------------------
# add_jobs SCRIPT PID: pgbench -c 1 -t MANY_JOBS with a per-call log; sets
# AJ_MEAN AJ_P50 AJ_P99 AJ_MAX (ms), AJ_SECS and AJ_CPU (PID's CPU meanwhile,
# % of one core)
add_jobs() {
	local script=$1 pid=$2 log t0 t1 c0 c1 files
	rm -f "$WORK/calls.$script".*
	t0=$(now_epoch) c0=$(cpu_ticks "$pid")
	as_pg pgbench -n -c 1 -j 1 -t "$MANY_JOBS" -D minute="$IDLE_M" -D hour="$IDLE_H" \
		-l --log-prefix="$WORK/calls.$script" -f "$WORK/$script.sql" "$CONN" >"$WORK/pgbench.$script.log" 2>&1 ||
		{ tail -n 5 "$WORK/pgbench.$script.log"; tego_die "pgbench -f $script failed"; }
	t1=$(now_epoch) c1=$(cpu_ticks "$pid")
	AJ_SECS=$(calc "$t1 - $t0" "%.1f")
	AJ_CPU=$(core_pct "$((c1 - c0))" "$AJ_SECS")
	files=("$WORK/calls.$script".*)
	read -r AJ_MEAN AJ_P50 AJ_P99 AJ_MAX <<<"$(awk '{ print $3 / 1000 }' "${files[@]}" | sort -g |
		awk '{ v[NR] = $1; s += $1 }
		END { i = int(NR * 0.99) + 1; if (i > NR) i = NR
		      printf "%.2f %.2f %.2f %.2f", s / NR, v[int(NR * 0.5) + 1], v[i], v[NR] }')"
}

if want 4; then
	out ""
	out "== 4. $MANY_JOBS idle jobs: schedule() latency while adding them (pgbench -c 1, one call per transaction), then the scheduler's CPU over $CPU_SECONDS s"
	out "   load average: $(cut -d' ' -f1-3 /proc/loadavg)"
	unschedule_all
	spec=$(daily_spec 12)
	IDLE_M=${spec%% *}
	IDLE_H=$(cut -d' ' -f2 <<<"$spec")
	out "   jobs on '$spec' (UTC, about 12 hours away), command SELECT 1"
	SCHED_PID=$(wait_pid_of "tego scheduler") CRON_PID=$(wait_pid_of "pg_cron launcher")
	JOBS_STATS="SELECT coalesce(seq_scan, 0) || ' ' || coalesce(seq_tup_read, 0) || ' ' || coalesce(idx_scan, 0)
	              FROM pg_stat_user_tables WHERE relid = 'tego.jobs'::regclass"
	read -r js0 jr0 ji0 <<<"$(psql_q "$JOBS_STATS")"
	add_jobs tego_schedule "$SCHED_PID"
	T_MEAN=$AJ_MEAN T_P99=$AJ_P99
	sleep 1
	read -r js1 jr1 ji1 <<<"$(psql_q "$JOBS_STATS")"
	out "  tego.schedule(): mean ${AJ_MEAN} ms, p50 ${AJ_P50} ms, p99 ${AJ_P99} ms, max ${AJ_MAX} ms per call; ${AJ_SECS} s in all; scheduler CPU meanwhile ${AJ_CPU}% of a core"
	out "    by the latency log: mean $(awk 'NR <= 1000 { s += $3; n++ } END { printf "%.2f", n ? s / n / 1000 : 0 }' "$WORK"/calls.tego_schedule.*) ms over the first 1000 calls, $(tail -q -n 1000 "$WORK"/calls.tego_schedule.* | awk '{ s += $3; n++ } END { printf "%.2f", n ? s / n / 1000 : 0 }') ms over the last 1000"
	out "    tego.jobs meanwhile (pg_stat_user_tables, flushed stats): $((js1 - js0)) sequential scans reading $((jr1 - jr0)) rows, $((ji1 - ji0)) index scans"
	[ $((js1 - js0)) -gt "$((MANY_JOBS / 2))" ] &&
		NOTES+=("while adding $MANY_JOBS jobs, tego.jobs had $((js1 - js0)) sequential scans reading $((jr1 - jr0)) rows (about one full scan per call: a plan that does not use an index on tego.jobs); the scheduler used ${AJ_CPU}% of a core meanwhile.")
	add_jobs cron_schedule "$CRON_PID"
	C_MEAN=$AJ_MEAN C_P99=$AJ_P99
	out "  cron.schedule(): mean ${AJ_MEAN} ms, p50 ${AJ_P50} ms, p99 ${AJ_P99} ms, max ${AJ_MAX} ms per call; ${AJ_SECS} s in all; pg_cron launcher CPU meanwhile ${AJ_CPU}% of a core"
	out "  active jobs: tego $(psql_q "SELECT count(*) FROM tego.jobs WHERE active"), pg_cron $(psql_q "SELECT count(*) FROM cron.job WHERE active")"
	sleep 5
	SCHED_PID=$(wait_pid_of "tego scheduler") CRON_PID=$(wait_pid_of "pg_cron launcher")
	a0=$(cpu_ticks "$SCHED_PID") b0=$(cpu_ticks "$CRON_PID") x0=$(ctxt "$SCHED_PID") y0=$(ctxt "$CRON_PID")
	sleep "$CPU_SECONDS"
	a1=$(cpu_ticks "$SCHED_PID") b1=$(cpu_ticks "$CRON_PID") x1=$(ctxt "$SCHED_PID") y1=$(ctxt "$CRON_PID")
	CPU_T=$(core_pct "$((a1 - a0))" "$CPU_SECONDS")
	CPU_C=$(core_pct "$((b1 - b0))" "$CPU_SECONDS")
	out "  over $CPU_SECONDS s: tego scheduler $((a1 - a0)) ticks (${CPU_T}% of a core), $((x1 - x0)) context switches; pg_cron launcher $((b1 - b0)) ticks (${CPU_C}% of a core), $((y1 - y0)) context switches (1 tick = 1/$CLK_TCK s)"
	ok=$(yesno "$CPU_T < 1")
	out "RESULT $MANY_JOBS idle jobs: tego.schedule() mean ${T_MEAN} ms, p99 ${T_P99} ms; scheduler CPU ${CPU_T}% of a core | cron.schedule() mean ${C_MEAN} ms, p99 ${C_P99} ms; pg_cron launcher CPU ${CPU_C}% | target CPU < 1%: $ok"
	TABLE_ROWS+=("| schedule() latency while adding $MANY_JOBS jobs, mean / p99 | ${T_MEAN} ms / ${T_P99} ms | cron.schedule(): ${C_MEAN} ms / ${C_P99} ms | — | — |")
	TABLE_ROWS+=("| scheduler CPU with $MANY_JOBS idle jobs, % of one core over $CPU_SECONDS s | ${CPU_T}% | pg_cron launcher with $MANY_JOBS jobs: ${CPU_C}% | < 1% | $ok |")
	crash_check "benchmark 4"
fi

# ---------------------------------------------------------------------------
out ""
out "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
crashes=$(grep -c 'terminated by signal' "$LOG")
kills=$(grep -c 'terminated by signal 9' "$LOG")
out "server log: $crashes process(es) terminated by a signal ($kills of them by our kill -9)"
{
	echo "<!-- test/bench/scheduler.sh, $(date -u '+%Y-%m-%d %H:%M UTC'); machine: $MACHINE; load average at start $LOAD_START, at end $(cut -d' ' -f1-3 /proc/loadavg) -->"
	echo "| benchmark | tego | baseline | target | met? |"
	echo "| --- | --- | --- | --- | --- |"
	printf '%s\n' "${TABLE_ROWS[@]}"
	for n in "${NOTES[@]}"; do
		echo ""
		echo "Note: $n"
	done
} >"$TABLE"
out ""
out "(table: $TABLE)"
cat "$TABLE" | tee -a "$RESULTS" >/dev/null
exit 0
