# shellcheck shell=bash
# A throwaway PostgreSQL cluster for the Node.js tests and benchmark
# (test/scripts/extra-suites.d/node-cluster.sh, test/bench/node.sh).  Source
# it after test/scripts/common.sh.
#
#   node_pg_cluster DIR PORT DB   initdb in DIR/data (as postgres), unix socket
#                                 in DIR only, shared_preload_libraries = 'tego',
#                                 tego.database = DB; start, create DB and
#                                 the extension in it, wait for the scheduler.
#                                 Log: DIR/server.log.  Sets NODE_PG_ENV
#                                 (PGHOST=... for env(1)).
#   node_npm_install DIR          npm ci (npm install when there is no
#                                 package-lock.json) in DIR, quietly.

node_pg_psql() { # DIR PORT DB SQL...
	local dir=$1 port=$2 db=$3
	shift 3
	as_pg psql -X -q -At -v ON_ERROR_STOP=1 -h "$dir" -p "$port" -d "$db" "$@"
}

node_pg_cluster() {
	local dir=$1 port=$2 db=$3 tries pid
	# shellcheck disable=SC2034 # used by the scripts that source this file
	NODE_PG_ENV=(PGHOST="$dir" PGPORT="$port" PGDATABASE="$db" PGUSER=postgres)
	if ! as_pg initdb -D "$dir/data" -U postgres -A trust -E UTF8 --no-locale -N >"$dir/initdb.log" 2>&1; then
		cat "$dir/initdb.log"
		return 1
	fi
	cat >>"$dir/data/postgresql.conf" <<-EOF
		# added by test/node/pg-cluster.sh
		port = $port
		listen_addresses = ''
		unix_socket_directories = '$dir'
		shared_preload_libraries = 'tego'
		tego.database = '$db'
		log_min_messages = warning
	EOF
	# The scheduler connects to tego.database at start: create it, then
	# restart so that the scheduler finds it at once (it retries every 10 s).
	as_pg pg_ctl -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null || return 1
	node_pg_psql "$dir" "$port" postgres -c "CREATE DATABASE $db" || return 1
	as_pg pg_ctl -D "$dir/data" -l "$dir/server.log" -w -t 60 -m fast restart >/dev/null || return 1
	node_pg_psql "$dir" "$port" "$db" -c 'CREATE EXTENSION tego' || return 1
	for tries in $(seq 100 -1 1); do
		pid=$(node_pg_psql "$dir" "$port" "$db" -c 'SELECT scheduler_pid FROM tego.status()' 2>/dev/null)
		[ -n "$pid" ] && return 0
		[ "$tries" -gt 1 ] && sleep 0.1
	done
	echo "the tego scheduler did not start in database $db"
	return 1
}

node_npm_install() {
	local dir=$1 log
	log=$(mktemp) || return 1
	if [ -f "$dir/package-lock.json" ]; then
		(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) >"$log" 2>&1
	else
		(cd "$dir" && npm install --no-audit --no-fund --loglevel=error) >"$log" 2>&1
	fi || {
		cat "$log"
		rm -f "$log"
		return 1
	}
	rm -f "$log"
	# readable by everyone: the tests may run as another user than npm did
	chmod -R a+rX "$dir/node_modules"
}

# node_suite_start NAME: the state of a Node.js extra suite (PASS, FAIL, and
# DIR, its server's folder once made) and traps that end it: node_suite_finish
# stops the server, removes DIR (kept, path printed, on failure or with
# TEGO_KEEP_TMP=1), prints "== NAME: N passed, N failed" and exits.
node_suite_start() {
	NODE_SUITE=$1
	PASS=0
	FAIL=0
	DIR=
	unset PGHOST PGHOSTADDR PGPORT PGUSER PGDATABASE PGSERVICE PGOPTIONS PGPASSWORD
	trap node_suite_finish EXIT
	trap 'echo "$NODE_SUITE: interrupted"; FAIL=$((FAIL + 1)); exit 1' INT TERM
}

node_suite_finish() {
	trap - EXIT
	if [ -n "$DIR" ]; then
		tego_stop_servers_under "$DIR"
		if [ "$FAIL" -eq 0 ] && [ -z "${TEGO_KEEP_TMP:-}" ]; then
			rm -rf "$DIR"
		else
			echo "($NODE_SUITE server folder and log kept: $DIR)"
		fi
	fi
	echo "== $NODE_SUITE: $PASS passed, $FAIL failed"
	[ "$FAIL" -eq 0 ] && exit 0
	exit 1
}

# node_suite_run NODE_DIR SECONDS ARGS...: `node --test-reporter=tap ARGS`
# in NODE_DIR with NODE_PG_ENV, for at most SECONDS, its output also in
# DIR/node-test.out; sets PASS and FAIL from its TAP summary (a runner that
# failed without saying which test counts as one failure) and, on failure,
# prints the last lines of DIR/server.log.
node_suite_run() {
	local dir=$1 secs=$2 rc
	shift 2
	(cd "$dir" && env "${NODE_PG_ENV[@]}" timeout -k 10 "$secs" \
		node --test-reporter=tap "$@") 2>&1 | tee "$DIR/node-test.out"
	rc=${PIPESTATUS[0]}
	[ "$rc" -eq 124 ] && echo "!! node test timed out after $secs s"
	PASS=$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$DIR/node-test.out" | tail -n 1)
	FAIL=$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$DIR/node-test.out" | tail -n 1)
	PASS=${PASS:-0}
	FAIL=${FAIL:-0}
	if [ "$rc" -ne 0 ] && [ "$FAIL" -eq 0 ]; then
		FAIL=1 # the runner failed without saying which test
	fi
	if [ "$FAIL" -gt 0 ]; then
		echo "--- $DIR/server.log (last 30 lines)"
		tail -n 30 "$DIR/server.log"
	fi
}

# node_suite_cluster NAME PORT DB: DIR, a new folder (under TEGO_WORK or
# TMPDIR), as the working directory, with a cluster of node_pg_cluster in
# it; on failure, says so and ends the suite (FAIL=1, exit 1).
node_suite_cluster() {
	DIR=$(TMPDIR=${TEGO_WORK:-${TMPDIR:-/tmp}} tego_pg_tempdir "$1")
	cd "$DIR" || exit 1
	if ! node_pg_cluster "$DIR" "$2" "$3"; then
		echo "not ok - start a cluster with tego preloaded"
		tail -n 30 "$DIR/server.log" 2>/dev/null
		FAIL=1
		exit 1
	fi
}
