#!/usr/bin/env bash
# `make test`: install what is missing, build and install tego, then run
# every suite against throwaway servers:
#
#   1. pg_regress   sql/<topic>.sql vs expected/<topic>.out   (--temp-instance;
#                   Makefile REGRESS order first, then the other topics)
#   2. isolation    test/specs/*.spec vs test/specs/expected/*.out
#   3. pgTAP        test/pgtap/*.sql through pg_prove on a throwaway cluster
#   4. TAP          test/t/*.pl through prove (PostgreSQL::Test::Cluster)
#   5. extra        test/scripts/extra-suites.d/*.sh (exit 0 pass, 77 skip,
#                   anything else fail; each prints its own summary)
#
# Each suite prints its own summary; the last line is the total, alone:
#   N passed, N failed[, N skipped]
# One unit is one test file / spec / script.  Exit status 1 on any failure.
#
# Every server here runs with shared_preload_libraries = 'tego'.  As root,
# servers and test programs run as the postgres user, in a postgres-owned
# copy of sql/, expected/ and test/ (the checkout may be unreadable to
# postgres, e.g. under /root).  The copy is removed when everything passed
# and kept (path printed) otherwise, or always with TEGO_KEEP_TMP=1.
#
# Knobs: TEGO_SUITE_TIMEOUT (seconds per suite, default 300),
#        TEGO_PROVE_JOBS (parallel TAP files, default 1),
#        TEGO_SUITES (e.g. "regress tap"; default all), TEGO_TAP_ONLY (a
#        grep -E pattern for the TAP files to run), TEGO_PGBIN (common.sh).
set -uo pipefail

# shellcheck source=test/scripts/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
# shellcheck source=test/node/pg-cluster.sh
. "$TEGO_TOP/test/node/pg-cluster.sh" # node_npm_install

SUITE_TIMEOUT=${TEGO_SUITE_TIMEOUT:-300}
REGRESS_PORT=5497
ISOLATION_PORT=5498
PGTAP_PORT=5496

tego_deps
tego_build_install

WORK=$(tego_pg_tempdir tego-test)
TOTAL_PASS=0
TOTAL_FAIL=0
TOTAL_SKIP=0

# Stops any server left under $WORK; removes $WORK unless asked to keep it
# or something failed.  Runs once: at the end, or on an early exit.
cleanup() {
	trap - EXIT
	tego_stop_servers_under "$WORK"
	if [ "$TOTAL_FAIL" -eq 0 ] && [ -z "${TEGO_KEEP_TMP:-}" ] && [ "${1:-}" = finished ]; then
		rm -rf "$WORK"
	else
		echo "(test copies, outputs and logs kept in $WORK)"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# settings from the caller's environment must not redirect our clients
unset PGHOST PGHOSTADDR PGPORT PGUSER PGDATABASE PGSERVICE PGOPTIONS PGPASSWORD

# --- the postgres-owned copy ------------------------------------------------
cp -a "$TEGO_TOP/sql" "$TEGO_TOP/expected" "$TEGO_TOP/test" "$WORK/"
mkdir -p "$WORK/regress" "$WORK/isolation/out" "$WORK/pgtap" "$WORK/tap"
# pg_isolation_regress wants <inputdir>/specs/*.spec and <inputdir>/expected/*.out
ln -s ../test/specs "$WORK/isolation/specs"
ln -s ../test/specs/expected "$WORK/isolation/expected"
printf "shared_preload_libraries = 'tego'\n" >"$WORK/tego.conf"
if tego_is_root; then
	chown -R postgres:postgres "$WORK"
fi
cd "$WORK" || exit 1

# --- helpers ----------------------------------------------------------------

# add_result SUITE PASS FAIL SKIP: print the suite's line and add to totals
add_result() {
	local line="== $1: $2 passed, $3 failed"
	[ "$4" -gt 0 ] && line+=", $4 skipped"
	echo "$line"
	echo
	TOTAL_PASS=$((TOTAL_PASS + $2))
	TOTAL_FAIL=$((TOTAL_FAIL + $3))
	TOTAL_SKIP=$((TOTAL_SKIP + $4))
}

# list_files GLOB...: the existing files among the expanded globs, one a line
list_files() {
	local f
	for f in "$@"; do
		[ -f "$f" ] && printf '%s\n' "$f"
	done
	return 0
}

# Parse a pg_regress / pg_isolation_regress transcript: sets R_PASS R_FAIL.
parse_pg_regress() { # OUTPUT_FILE NTESTS RC
	local out=$1 n=$2 rc=$3 line
	R_PASS=0
	R_FAIL=$n
	if line=$(grep -Eo 'All [0-9]+ tests passed' "$out" | tail -n1) && [ -n "$line" ]; then
		R_PASS=$(grep -Eo '[0-9]+' <<<"$line")
		R_FAIL=0
	elif line=$(grep -Eo '[0-9]+ of [0-9]+ tests failed' "$out" | tail -n1) && [ -n "$line" ]; then
		read -r R_FAIL _ n _ <<<"$line"
		R_PASS=$((n - R_FAIL))
	fi
	# a non-zero exit that the summary does not explain still fails the suite
	if [ "$rc" -ne 0 ] && [ "$R_FAIL" -eq 0 ]; then
		R_FAIL=1
		[ "$R_PASS" -gt 0 ] && R_PASS=$((R_PASS - 1))
	fi
}

# Parse a TAP::Harness transcript (prove, pg_prove) of the given files: sets
# R_PASS R_FAIL R_SKIP and R_FAILED_FILES (names from the "Test Summary
# Report", one a line).
parse_harness() { # OUTPUT_FILE RC FILE...
	local out=$1 rc=$2 files f
	shift 2
	R_FAILED_FILES=$(sed -n 's/^\([^ ].*[^ ]\) *(Wstat: .*/\1/p' "$out" | sort -u)
	R_SKIP=$(grep -Ec '^[^ ].* \.+ skipped' "$out")
	files=$(sed -n 's/^Files=\([0-9]*\),.*/\1/p' "$out" | tail -n1)
	if [ -z "$files" ]; then
		# The harness died (or timed out) before its summary: a file passed
		# or was skipped if its result line says so, otherwise it failed.
		R_PASS=0
		R_FAIL=0
		R_SKIP=0
		R_FAILED_FILES=""
		for f in "$@"; do
			if grep -Fq "$f " "$out" && grep -F "$f " "$out" | grep -Eq ' \.+ ok *$'; then
				R_PASS=$((R_PASS + 1))
			elif grep -F "$f " "$out" | grep -Eq ' \.+ skipped'; then
				R_SKIP=$((R_SKIP + 1))
			else
				R_FAIL=$((R_FAIL + 1))
				R_FAILED_FILES+="$f"$'\n'
			fi
		done
		return
	fi
	R_FAIL=$(grep -c . <<<"$R_FAILED_FILES")
	R_PASS=$((files - R_FAIL - R_SKIP))
	[ "$R_PASS" -lt 0 ] && R_PASS=0
	if [ "$rc" -ne 0 ] && [ "$R_FAIL" -eq 0 ]; then
		R_FAIL=1
		[ "$R_PASS" -gt 0 ] && R_PASS=$((R_PASS - 1))
	fi
}

# run_pg SUITE_TIMEOUT OUTFILE CMD...: run as the server user, bounded in
# time (timeout kills the whole process group), output shown and saved.
run_pg() {
	local out=$1
	shift
	as_pg timeout -k 15 "$SUITE_TIMEOUT" "$@" 2>&1 | tee "$out"
	local rc=${PIPESTATUS[0]}
	[ "$rc" -eq 124 ] && echo "!! timed out after ${SUITE_TIMEOUT}s"
	return "$rc"
}

# show_server_log LOG DIFFS: after a failure, the server log's crash reports
# (or its tail when there are no diffs to look at: the server itself failed)
show_server_log() {
	local log=$1 diffs=$2
	[ -f "$log" ] || return 0
	if [ -s "$diffs" ]; then
		if grep -Eq 'terminated by signal|PANIC|TRAP:' "$log"; then
			echo "--- crash reports in $log"
			grep -E -B2 -A2 'terminated by signal|PANIC|TRAP:' "$log" | head -n 40
		fi
	else
		echo "--- $log (last 30 lines)"
		tail -n 30 "$log"
	fi
}

# --- 1. pg_regress ----------------------------------------------------------
# Tests share one database, so their order matters: first the Makefile's
# REGRESS list (the order `make installcheck` uses), then any other
# sql/<topic>.sql in name order.
regress_order() {
	local listed f seen=" "
	# shellcheck disable=SC2016 # $(REGRESS) is for make, not the shell
	listed=$(make -s --no-print-directory -C "$TEGO_TOP" -f Makefile \
		-f <(printf 'tego-print-regress:\n\t@echo $(REGRESS)\n') \
		tego-print-regress PG_CONFIG="$PG_CONFIG" 2>/dev/null) || listed=""
	for f in $listed; do
		if [ -f "sql/$f.sql" ] && [[ $seen != *" $f "* ]]; then
			printf '%s\n' "$f"
			seen+="$f "
		fi
	done
	while IFS= read -r f; do
		f=$(basename "$f" .sql)
		case $f in tego--*) continue ;; esac
		[[ $seen == *" $f "* ]] || printf '%s\n' "$f"
	done < <(list_files sql/*.sql)
}

suite_regress() {
	local tests=() f rc
	while IFS= read -r f; do tests+=("$f"); done < <(regress_order)
	[ ${#tests[@]} -eq 0 ] && return 0

	echo "== pg_regress: ${#tests[@]} test(s)"
	run_pg "$WORK/regress/output.txt" \
		"$TEGO_PGXS/src/test/regress/pg_regress" \
		--temp-instance="$WORK/regress/instance" \
		--temp-config="$WORK/tego.conf" \
		--bindir="$TEGO_PGBIN" \
		--port="$REGRESS_PORT" \
		--inputdir="$WORK" \
		--outputdir="$WORK/regress" \
		--load-extension=tego \
		--dbname=contrib_regression \
		--no-locale --encoding=UTF8 \
		"${tests[@]}"
	rc=$?
	parse_pg_regress "$WORK/regress/output.txt" "${#tests[@]}" "$rc"
	if [ "$R_FAIL" -gt 0 ]; then
		if [ -s "$WORK/regress/regression.diffs" ]; then
			echo "--- regression.diffs (first 200 lines; full: $WORK/regress/regression.diffs)"
			head -n 200 "$WORK/regress/regression.diffs"
		fi
		show_server_log "$WORK/regress/log/postmaster.log" "$WORK/regress/regression.diffs"
	fi
	add_result pg_regress "$R_PASS" "$R_FAIL" 0
}

# --- 2. isolation -----------------------------------------------------------
suite_isolation() {
	local specs=() f rc out=$WORK/isolation/out
	while IFS= read -r f; do
		specs+=("$(basename "$f" .spec)")
	done < <(list_files test/specs/*.spec)
	[ ${#specs[@]} -eq 0 ] && return 0

	echo "== isolation: ${#specs[@]} spec(s)"
	run_pg "$out/output.txt" \
		"$TEGO_PGXS/src/test/isolation/pg_isolation_regress" \
		--temp-instance="$out/instance" \
		--temp-config="$WORK/tego.conf" \
		--bindir="$TEGO_PGBIN" \
		--port="$ISOLATION_PORT" \
		--inputdir="$WORK/isolation" \
		--outputdir="$out" \
		--load-extension=tego \
		--dbname=isolation_regression \
		--no-locale --encoding=UTF8 \
		"${specs[@]}"
	rc=$?
	parse_pg_regress "$out/output.txt" "${#specs[@]}" "$rc"
	if [ "$R_FAIL" -gt 0 ]; then
		if [ -s "$out/regression.diffs" ]; then
			echo "--- isolation regression.diffs (first 200 lines; full: $out/regression.diffs)"
			head -n 200 "$out/regression.diffs"
		fi
		show_server_log "$out/log/postmaster.log" "$out/regression.diffs"
	fi
	add_result isolation "$R_PASS" "$R_FAIL" 0
}

# --- 3. pgTAP ---------------------------------------------------------------
suite_pgtap() {
	local files=() f rc dir=$WORK/pgtap
	while IFS= read -r f; do files+=("$f"); done < <(list_files test/pgtap/*.sql)
	[ ${#files[@]} -eq 0 ] && return 0

	echo "== pgTAP: ${#files[@]} file(s)"
	local psql=(psql -X -q -v ON_ERROR_STOP=1 -h "$dir" -p "$PGTAP_PORT")
	if ! as_pg initdb -D "$dir/data" -A trust -E UTF8 --no-locale -N >"$dir/initdb.log" 2>&1; then
		cat "$dir/initdb.log"
		add_result pgTAP 0 "${#files[@]}" 0
		return
	fi
	cat >>"$dir/data/postgresql.conf" <<-EOF
		# added by test/scripts/test.sh
		port = $PGTAP_PORT
		listen_addresses = ''
		unix_socket_directories = '$dir'
		shared_preload_libraries = 'tego'
		fsync = off
	EOF
	if ! as_pg pg_ctl -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null ||
		! as_pg "${psql[@]}" -d postgres -c 'CREATE DATABASE tego_tap' ||
		! as_pg "${psql[@]}" -d tego_tap -c 'CREATE EXTENSION pgtap' -c 'CREATE EXTENSION tego'; then
		echo "--- could not set up the pgTAP cluster; server.log (last 30 lines)"
		tail -n 30 "$dir/server.log" 2>/dev/null
		as_pg pg_ctl -D "$dir/data" -m immediate -w stop >/dev/null 2>&1
		add_result pgTAP 0 "${#files[@]}" 0
		return
	fi
	run_pg "$dir/output.txt" pg_prove -h "$dir" -p "$PGTAP_PORT" -d tego_tap "${files[@]}"
	rc=$?
	as_pg pg_ctl -D "$dir/data" -m fast -w stop >/dev/null 2>&1
	parse_harness "$dir/output.txt" "$rc" "${files[@]}"
	[ "$R_FAIL" -gt 0 ] && show_server_log "$dir/server.log" "$dir/output.txt"
	add_result pgTAP "$R_PASS" "$R_FAIL" "$R_SKIP"
}

# --- 4. TAP (PostgreSQL::Test::Cluster) -------------------------------------
suite_tap() {
	local files=() f rc dir=$WORK/tap
	while IFS= read -r f; do files+=("$f"); done < <(list_files test/t/*.pl | grep -E "${TEGO_TAP_ONLY:-.}")
	[ ${#files[@]} -eq 0 ] && return 0

	echo "== TAP: ${#files[@]} file(s)"
	# A TAP test may drive a Node.js client (055_security_soak): give the
	# copy its node_modules as the node-cluster extra suite does for the
	# checkout.  Without node, npm or the registry the test skips that part.
	if [ ! -d "$WORK/test/node/node_modules/pg" ]; then
		if (tego_node_deps) >/dev/null 2>&1 && node_npm_install "$WORK/test/node"; then
			tego_is_root && chown -R postgres:postgres "$WORK/test/node/node_modules"
		else
			echo "note: no node_modules in test/node: TAP tests skip their Node.js parts"
		fi
	fi
	# PostgreSQL::Test::Utils writes $TESTDIR/tmp_check/log/regress_log_<test>;
	# PostgreSQL::Test::Cluster runs initdb/pg_ctl from PATH and needs
	# PG_REGRESS (--config-auth).  TEGO_TOOLS: the libpq helpers (make tools).
	# TMPDIR keeps the nodes' socket folders (tempdir_short) inside $WORK.
	run_pg "$dir/output.txt" env \
		PATH="$PATH" \
		PG_REGRESS="$TEGO_PGXS/src/test/regress/pg_regress" \
		TESTDIR="$dir" \
		TESTDATADIR="$dir/tmp_check" \
		PG_TEST_PORT_DIR="$dir" \
		TMPDIR="$dir" \
		TEGO_TOOLS="$WORK/test/tools" \
		TEGO_SRC="$WORK" \
		prove -I "$TEGO_PGXS/src/test/perl" -I "$WORK/test/t" \
		-j "${TEGO_PROVE_JOBS:-1}" "${files[@]}"
	rc=$?
	parse_harness "$dir/output.txt" "$rc" "${files[@]}"
	if [ "$R_FAIL" -gt 0 ]; then
		local name log
		while IFS= read -r name; do
			[ -n "$name" ] || continue
			log="$dir/tmp_check/log/regress_log_$(basename "$name" .pl)"
			if [ -f "$log" ]; then
				echo "--- $log (last 60 lines)"
				tail -n 60 "$log"
			fi
		done <<<"$R_FAILED_FILES"
	fi
	add_result TAP "$R_PASS" "$R_FAIL" "$R_SKIP"
}

# --- 5. extra suites --------------------------------------------------------
# Each test/scripts/extra-suites.d/*.sh runs as its own bash process, from the
# checkout, as the invoking user (it can source common.sh and use as_pg).  It
# gets TEGO_WORK (this run's postgres-owned folder) and TEGO_CONF (the
# preload config).  Exit 0 = passed, 77 = skipped, anything else = failed.
suite_extra() {
	local f rc pass=0 fail=0 skip=0
	local files=()
	while IFS= read -r f; do files+=("$f"); done < <(list_files "$TEGO_TOP"/test/scripts/extra-suites.d/*.sh)
	[ ${#files[@]} -eq 0 ] && return 0
	for f in "${files[@]}"; do
		echo "== extra suite: $(basename "$f")"
		TEGO_WORK=$WORK TEGO_CONF=$WORK/tego.conf bash "$f"
		rc=$?
		case $rc in
			0) pass=$((pass + 1)) ;;
			77) skip=$((skip + 1)) ;;
			*) fail=$((fail + 1)); echo "!! $(basename "$f") exited $rc" ;;
		esac
	done
	add_result "extra suites" "$pass" "$fail" "$skip"
}

# TEGO_SUITES picks suites (default: all, in this order); TEGO_TAP_ONLY a
# grep -E pattern that the TAP files' names must match.
for suite in ${TEGO_SUITES:-regress isolation pgtap tap extra}; do
	case $suite in
		regress | isolation | pgtap | tap | extra) "suite_$suite" ;;
		*) tego_die "unknown suite '$suite' in TEGO_SUITES" ;;
	esac
done
cleanup finished

summary="$TOTAL_PASS passed, $TOTAL_FAIL failed"
[ "$TOTAL_SKIP" -gt 0 ] && summary+=", $TOTAL_SKIP skipped"
echo "$summary"
[ "$TOTAL_FAIL" -eq 0 ]
