#!/usr/bin/env bash
# The tego command-line tool against psql, both started as a new process
# for every call (standalone; not part of `make bench`):
#
#   bash test/bench/cli.sh
#
# Builds and installs tego (and the tool), starts a throwaway cluster
# (unix socket only, port 5492, default durability, shared_preload_libraries
# = 'tego') and measures the round trip of
#
#   tego pm enable X  +  tego pm disable X
#
# against
#
#   psql -X -c "SELECT tego.plugin_enable('X')"  +  the same for disable
#
# on the same plugin, in the same run, interleaved: each round does one
# tego pair and one psql pair, the order switching every round.  Both
# connect over the same socket as the same user and write their output to
# /dev/null.  Printed: the median and mean of each, and one line
#
#   RESULT cli pm enable round trip: tego <ms> ms | psql -c <ms> ms | ratio <x>x
#
# (medians).  Results go to test/bench/results/cli.txt.  The server is
# stopped and its folder removed on exit (kept with TEGO_KEEP_TMP=1).
#
# Knobs: TEGO_CLI_ROUNDS       rounds measured [200]
#        TEGO_CLI_WARMUP       rounds not measured first [10]
#        TEGO_CLI_MAX_SECONDS  stop measuring after this long, whatever the
#                              rounds done [75] (keeps a run on a busy machine
#                              under 2 minutes; the rounds done are printed)
set -uo pipefail

# shellcheck source=test/scripts/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/common.sh"

PORT=5492
ROUNDS=${TEGO_CLI_ROUNDS:-200}
WARMUP=${TEGO_CLI_WARMUP:-10}
MAX_SECONDS=${TEGO_CLI_MAX_SECONDS:-75}
RESULTS_DIR=$TEGO_TOP/test/bench/results
RESULTS=$RESULTS_DIR/cli.txt
export LC_ALL=C

unset PGHOST PGHOSTADDR PGPORT PGUSER PGDATABASE PGSERVICE PGOPTIONS PGPASSWORD PGAPPNAME

[ "${BASH_VERSINFO[0]}" -ge 5 ] || tego_die "bash 5 is needed (EPOCHREALTIME)"
case $ROUNDS$WARMUP$MAX_SECONDS in *[!0-9]*) tego_die "TEGO_CLI_ROUNDS, TEGO_CLI_WARMUP and TEGO_CLI_MAX_SECONDS must be numbers" ;; esac
[ "$ROUNDS" -ge 1 ] || tego_die "TEGO_CLI_ROUNDS must be at least 1"

tego_deps
tego_build_install

TEGO=$TEGO_PGBIN/tego
[ -x "$TEGO" ] || TEGO=$TEGO_TOP/src/cli/tego
[ -x "$TEGO" ] || tego_die "the tego tool is not built (src/cli/tego)"
PSQL=$TEGO_PGBIN/psql

tego_bench_start tego-cli-bench
cd "$WORK" || exit 1

out "tego command-line tool vs psql -c, $(date -u '+%Y-%m-%d %H:%M:%S UTC'), commit $(git -C "$TEGO_TOP" rev-parse --short HEAD 2>/dev/null || echo '?')"
out "$($TEGO --version); $("$TEGO_PGBIN/postgres" --version); $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"

tego_bench_cluster "$WORK/data" "$PORT"

CONN=(-h "$WORK" -p "$PORT" -U postgres -d postgres)
"$PSQL" -X -q -v ON_ERROR_STOP=1 "${CONN[@]}" \
	-c "CREATE EXTENSION tego" \
	-c "SELECT FROM tego.plugin_add('users')" \
	-c "SELECT FROM tego.plugin_add('bench', depends_on => '{users}')" \
	-c "SELECT FROM tego.plugin_enable('users')" >/dev/null ||
	tego_die "could not set up the database"

# one pair each; exit codes checked (a failing pair would measure nothing)
tego_pair() {
	"$TEGO" "${CONN[@]}" pm enable bench >/dev/null &&
		"$TEGO" "${CONN[@]}" pm disable bench >/dev/null
}
psql_pair() {
	"$PSQL" -X -q "${CONN[@]}" -c "SELECT tego.plugin_enable('bench')" >/dev/null &&
		"$PSQL" -X -q "${CONN[@]}" -c "SELECT tego.plugin_disable('bench')" >/dev/null
}

# elapsed_us START END: microseconds between two EPOCHREALTIME readings
elapsed_us() {
	local s=${1/./} e=${2/./}
	echo $((10#$e - 10#$s))
}

tego_pair || tego_die "tego pm enable/disable failed"
psql_pair || tego_die "psql -c plugin_enable/disable failed"
for ((i = 0; i < WARMUP; i++)); do
	tego_pair && psql_pair || tego_die "a warm-up round failed"
done

T_TIMES=()
P_TIMES=()
STOP_AT=$((SECONDS + MAX_SECONDS))
for ((i = 0; i < ROUNDS && SECONDS < STOP_AT; i++)); do
	if ((i % 2 == 0)); then
		t0=$EPOCHREALTIME; tego_pair || tego_die "tego pair failed in round $i"; t1=$EPOCHREALTIME
		p0=$EPOCHREALTIME; psql_pair || tego_die "psql pair failed in round $i"; p1=$EPOCHREALTIME
	else
		p0=$EPOCHREALTIME; psql_pair || tego_die "psql pair failed in round $i"; p1=$EPOCHREALTIME
		t0=$EPOCHREALTIME; tego_pair || tego_die "tego pair failed in round $i"; t1=$EPOCHREALTIME
	fi
	T_TIMES+=("$(elapsed_us "$t0" "$t1")")
	P_TIMES+=("$(elapsed_us "$p0" "$p1")")
done

# stats US...: "median mean p90" in milliseconds
stats() {
	printf '%s\n' "$@" | sort -n | awk '
		{ v[NR] = $1; sum += $1 }
		END {
			med = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
			p90 = v[int(NR * 0.9 + 0.5) > 0 ? int(NR * 0.9 + 0.5) : 1]
			printf "%.2f %.2f %.2f\n", med / 1000, sum / NR / 1000, p90 / 1000
		}'
}
read -r T_MED T_MEAN T_P90 <<<"$(stats "${T_TIMES[@]}")"
read -r P_MED P_MEAN P_P90 <<<"$(stats "${P_TIMES[@]}")"
RATIO=$(awk -v a="$T_MED" -v b="$P_MED" 'BEGIN { printf "%.2f", a / b }')

DONE=${#T_TIMES[@]}
[ "$DONE" -lt "$ROUNDS" ] && out "(stopped after ${MAX_SECONDS}s: $DONE of $ROUNDS rounds done)"
out "$DONE rounds (after $WARMUP warm-up rounds), each: enable + disable of one plugin, 2 new processes"
out "  tego pm enable + pm disable:          median $T_MED ms, mean $T_MEAN ms, p90 $T_P90 ms"
out "  psql -X -c plugin_enable + _disable:  median $P_MED ms, mean $P_MEAN ms, p90 $P_P90 ms"
out "RESULT cli pm enable round trip: tego $T_MED ms | psql -c $P_MED ms | ratio ${RATIO}x"
