#!/usr/bin/env bash
# `make run`: install what is missing, build and install tego, start (or
# reuse) a local cluster under ./tmp_cluster, create the extension, and walk
# through the main features.  The server is left running; the last lines say
# how to connect and how to stop it.  Running it again reuses the cluster and
# resets the demo rows.
#
# The cluster: data in ./tmp_cluster/data, unix socket in ./tmp_cluster,
# port 5499, no TCP (listen_addresses = ''), shared_preload_libraries = 'tego',
# log in ./tmp_cluster/server.log.  Set TEGO_RUN_FRESH=1 to delete it and
# start over (e.g. after changing the install script without a new version).
#
# As root: PostgreSQL refuses to run as root, so the server, psql and the
# listener run as the postgres system user (runuser).  ./tmp_cluster is then
# a postgres-owned folder inside the checkout.  If postgres cannot reach the
# checkout (say it is under /root, mode 700) we do NOT change the permissions
# of the folders above it: the cluster goes to a postgres-owned folder in
# postgres's home instead, /var/lib/postgresql/tego-tmp_cluster-<checksum of
# the checkout path>, and ./tmp_cluster is a symlink to it.  The same
# fallback (under /tmp for a non-root user) is used when the checkout path is
# too long for a unix socket path (107 bytes).
set -euo pipefail

# shellcheck source=test/scripts/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

PORT=5499
unset PGHOST PGHOSTADDR PGPORT PGUSER PGDATABASE PGSERVICE PGOPTIONS PGPASSWORD

tego_deps
tego_build_install

# --- where the cluster lives ------------------------------------------------
LINK=$TEGO_TOP/tmp_cluster

fallback_dir() {
	local base sum
	if tego_is_root; then
		base=$(getent passwd postgres | cut -d: -f6)
		[ -n "$base" ] && [ -d "$base" ] || base=/tmp
	else
		base=${TMPDIR:-/tmp}
	fi
	sum=$(printf '%s' "$TEGO_TOP" | cksum | cut -d' ' -f1)
	printf '%s/tego-tmp_cluster-%s\n' "$base" "$sum"
}

use_fallback() { # REASON
	local dir
	dir=$(fallback_dir)
	if [ -d "$LINK" ] && [ ! -L "$LINK" ]; then
		# an empty leftover folder can make way for the symlink
		rmdir "$LINK" 2>/dev/null ||
			tego_die "$LINK exists but $1; move it away and run again"
	fi
	echo "note: $1; the cluster lives in $dir (./tmp_cluster is a symlink to it)"
	as_pg mkdir -p "$dir"
	as_pg chmod 700 "$dir"
	ln -sfn "$dir" "$LINK"
	CLUSTER=$dir
}

if [ -L "$LINK" ]; then
	# set up by an earlier run (the fallback above)
	CLUSTER=$(readlink -f "$LINK")
	as_pg mkdir -p "$CLUSTER"
elif [ $((${#LINK} + 15)) -gt 107 ]; then
	use_fallback "the checkout path is too long for a unix socket path"
elif tego_is_root && ! tego_pg_can_reach "$TEGO_TOP"; then
	use_fallback "the postgres user cannot reach $TEGO_TOP"
else
	mkdir -p "$LINK"
	if tego_is_root; then
		chown postgres:postgres "$LINK"
	fi
	chmod 700 "$LINK"
	CLUSTER=$LINK
fi
DATA=$CLUSTER/data
LOG=$CLUSTER/server.log
cd "$CLUSTER" # a folder the server user can read, for the commands run as it

if tego_is_root; then
	RUNAS="runuser -u postgres -- "
else
	RUNAS=""
fi
PGBIN=$TEGO_PGBIN

# --- the cluster: create, start or reuse -------------------------------------
echo
echo "== cluster in $CLUSTER (port $PORT)"
if [ -n "${TEGO_RUN_FRESH:-}" ] && [ -d "$DATA" ]; then
	echo "TEGO_RUN_FRESH is set: stopping and deleting the old cluster"
	as_pg "$PGBIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null 2>&1 || true
	as_pg rm -rf "$DATA" "$LOG"
fi

if [ ! -f "$DATA/PG_VERSION" ]; then
	if [ -d "$DATA" ] && [ -n "$(ls -A "$DATA" 2>/dev/null)" ]; then
		tego_die "$DATA is not empty and not a PostgreSQL data folder; remove it and run again"
	fi
	echo "initdb (first run)"
	as_pg "$PGBIN/initdb" -D "$DATA" -A trust -E UTF8 --no-locale >"$CLUSTER/initdb.log" 2>&1 ||
		{ cat "$CLUSTER/initdb.log"; tego_die "initdb failed"; }
	# The socket folder is private (0700) and the socket mode 0700: with
	# trust authentication only the server's OS user may connect.
	as_pg tee -a "$DATA/postgresql.conf" >/dev/null <<-EOF

		# added by test/scripts/run.sh (make run)
		port = $PORT
		listen_addresses = ''
		unix_socket_directories = '$CLUSTER'
		unix_socket_permissions = 0700
		shared_preload_libraries = 'tego'
	EOF
fi

lib_sum() { cksum <"$("$PG_CONFIG" --pkglibdir)/tego.so" 2>/dev/null || true; }

status=0
as_pg "$PGBIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1 || status=$?
if [ "$status" -eq 0 ]; then
	echo "server already running: reusing it"
	# tego.so is preloaded: a running server keeps the library it started
	# with.  We note the checksum of the installed library at each start.
	if [ -f "$CLUSTER/tego.so.sum" ] && [ "$(lib_sum)" != "$(cat "$CLUSTER/tego.so.sum")" ]; then
		echo "a different tego.so was installed since this server started: restarting it to load the new one"
		as_pg "$PGBIN/pg_ctl" -D "$DATA" -l "$LOG" -m fast -w -t 60 restart >/dev/null ||
			tego_die "the server did not restart (log: $LOG)"
		lib_sum | as_pg tee "$CLUSTER/tego.so.sum" >/dev/null
	fi
else
	echo "starting the server (log: $LOG)"
	if ! as_pg "$PGBIN/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 start >/dev/null; then
		echo "--- $LOG (last 30 lines)"
		tail -n 30 "$LOG" || true
		tego_die "the server did not start"
	fi
	lib_sum | as_pg tee "$CLUSTER/tego.so.sum" >/dev/null
fi

# --- walkthrough helpers ---------------------------------------------------------
PSQL=(psql -X -h "$CLUSTER" -p "$PORT" -d postgres -v ON_ERROR_STOP=1 -P pager=off)
CONNINFO="host=$CLUSTER port=$PORT dbname=postgres"

step() { printf '\n--- %s\n' "$*"; }
show_sql() { printf '%s\n' "$1" | sed 's/^/  SQL> /'; }
# run SQL, echoing it first
sql() {
	show_sql "$1"
	as_pg "${PSQL[@]}" -c "$1"
}
# the single value a query returns
sql_value() { as_pg "${PSQL[@]}" -At -c "$1"; }

# Scratch folder the server user can read (for the listener program, which
# may sit in a checkout postgres cannot read).
SCRATCH=$(tego_pg_tempdir tego-run)
LISTENER_PID=""
cleanup() {
	if [ -n "$LISTENER_PID" ] && kill -0 "$LISTENER_PID" 2>/dev/null; then
		kill -TERM "$LISTENER_PID" 2>/dev/null || true
		wait "$LISTENER_PID" 2>/dev/null || true
	fi
	touch "$SCRATCH/stop" 2>/dev/null || true
	rm -rf "$SCRATCH"
}
trap cleanup EXIT

# --- walkthrough -----------------------------------------------------------------
step "1. Create the extension (the server preloads tego.so; this adds the SQL objects)"
sql "CREATE EXTENSION IF NOT EXISTS tego;"
# a cluster from an older build: an older release is updated in place; a
# development build of the same version lacking the newest objects is
# created again
if [ "$(sql_value "SELECT extversion <> (SELECT default_version FROM pg_available_extensions WHERE name = 'tego') FROM pg_extension WHERE extname = 'tego';")" = t ]; then
	sql "ALTER EXTENSION tego UPDATE;"
fi
if [ "$(sql_value "SELECT to_regclass('tego.jobs') IS NULL OR to_regprocedure('tego.registry_epoch()') IS NULL;")" = t ]; then
	echo "  (the demo database has the extension from an older build: recreating it)"
	sql "DROP EXTENSION tego; DROP SCHEMA IF EXISTS tego CASCADE; CREATE EXTENSION tego;"
fi

step "2. Reset the demo: disable and remove demo-users and demo-acl if an earlier run left them"
sql "DO \$\$
DECLARE
  demo text[] := ARRAY(SELECT name FROM tego.plugins WHERE name IN ('demo-acl', 'demo-users'));
BEGIN
  IF cardinality(demo) > 0 THEN
    PERFORM tego.plugin_disable(VARIADIC demo);
    PERFORM tego.plugin_remove(demo, force => true);
  END IF;
END
\$\$;"

SEQ0=$(sql_value "SELECT tego.event_seq();")
step "3. Current event position: tego.event_seq() = $SEQ0"
echo "  Every committed change gets the next seq; clients resume from a seq they saw."

step "4. Start a LISTEN client in the background (channels tego_plugins and demo)"
LISTEN_OUT=$SCRATCH/listener.out
: >"$LISTEN_OUT"
: >"$SCRATCH/listener.err"
if [ -x "$TEGO_TOP/test/tools/tego_listen" ]; then
	LISTENER_KIND=tool
	cp "$TEGO_TOP/test/tools/tego_listen" "$SCRATCH/"
	tego_is_root && chown -R postgres:postgres "$SCRATCH"
	listen_cmd=("$SCRATCH/tego_listen" -d "$CONNINFO application_name=tego_walkthrough"
		-c tego_plugins -c demo --from "$SEQ0" --timeout 60)
	echo "  \$ test/tools/tego_listen -d \"$CONNINFO\" -c tego_plugins -c demo --from $SEQ0"
	echo "  (it LISTENs first, then catches up from seq $SEQ0 with tego.events_since, so nothing is missed)"
	if tego_is_root; then
		runuser -u postgres -- "${listen_cmd[@]}" >"$LISTEN_OUT" 2>"$SCRATCH/listener.err" &
	else
		"${listen_cmd[@]}" >"$LISTEN_OUT" 2>"$SCRATCH/listener.err" &
	fi
	LISTENER_PID=$!
else
	# No test/tools/tego_listen: psql as the LISTEN client.  psql prints the
	# notifications it has received after each command, so feed it a no-op
	# query every 0.3 s until we create $SCRATCH/stop (or 60 s pass).
	LISTENER_KIND=psql
	echo "  (test/tools/tego_listen is not built; using psql: LISTEN tego_plugins; LISTEN demo;)"
	{
		echo "LISTEN tego_plugins;"
		echo "LISTEN demo;"
		end=$((SECONDS + 60))
		while [ ! -e "$SCRATCH/stop" ] && [ "$SECONDS" -lt "$end" ]; do
			echo "SELECT 1 WHERE false;"
			sleep 0.3
		done
	} | as_pg "${PSQL[@]}" -q -t -A >"$LISTEN_OUT" 2>&1 &
	LISTENER_PID=$!
	sleep 1 # let psql LISTEN before we change anything
fi

step "5. Add two plugins; demo-acl depends on demo-users"
sql "SELECT name, package_name, version, state, depends_on
  FROM tego.plugin_add('demo-users', '@demo/plugin-users', '1.0.0');"
sql "SELECT name, package_name, version, state, depends_on
  FROM tego.plugin_add('demo-acl', '@demo/plugin-acl', '1.0.0', depends_on => ARRAY['demo-users']);"

step "6. Enable both in one call (all-or-nothing, applied in dependency order), then mark them installed once the app's install() ran"
sql "SELECT name, state, installed FROM tego.plugin_enable('demo-acl', 'demo-users');"
sql "SELECT name, state, installed FROM tego.plugin_install('demo-acl', 'demo-users');"

step "7. The registry in load order (dependencies first; revision = seq of the row's last event)"
sql "SELECT name, package_name, version, state, depends_on, revision FROM tego.plugin_list();"

step "8. Disabling demo-users is refused while the enabled demo-acl needs it"
show_sql "SELECT name, state FROM tego.plugin_disable('demo-users');"
if as_pg "${PSQL[@]}" -c "SELECT name, state FROM tego.plugin_disable('demo-users');" 2>&1; then
	echo "  (unexpected: the disable was accepted)"
else
	echo "  (refused, as it should be: nothing changed)"
fi

step "9. Publish an application message; it is sent when the transaction commits"
sql "SELECT tego.publish('demo', '{\"hello\":\"world\"}');"

step "10. What the LISTEN client received (<seq> <topic> <payload>)"
for _ in $(seq 1 50); do
	grep -Eq '^[0-9]+ demo |notification "demo"' "$LISTEN_OUT" && break
	sleep 0.2
done
if [ "$LISTENER_KIND" = tool ]; then
	kill -TERM "$LISTENER_PID" 2>/dev/null || true
else
	touch "$SCRATCH/stop"
fi
wait "$LISTENER_PID" 2>/dev/null || true
LISTENER_PID=""
if [ -s "$LISTEN_OUT" ]; then
	sed 's/^/  /' "$LISTEN_OUT"
else
	echo "  (nothing received)"
fi
# the listener's own complaints, if any (runuser's note about the TERM we sent is not one)
grep -v -e '^$' -e 'Session terminated' "$SCRATCH/listener.err" | sed 's/^/  listener: /' || true

step "11. Replay: a client that was away reads what it missed since seq $SEQ0"
sql "SELECT seq, topic, event, key FROM tego.events_since($SEQ0);"

step "12. Schedule a job: every 2 seconds, as its own role (a login of that role runs it); the tego scheduler fires it once per time"
sql "DO \$\$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tego_demo_jobs') THEN
    CREATE ROLE tego_demo_jobs LOGIN;
  END IF;
  PERFORM tego.unschedule(name) FROM tego.jobs WHERE name = 'demo-tick';
END
\$\$;
CREATE TABLE IF NOT EXISTS public.tego_demo_ticks (at timestamptz DEFAULT clock_timestamp(), by_role name DEFAULT current_user);
GRANT INSERT ON public.tego_demo_ticks TO tego_demo_jobs;
GRANT USAGE ON SCHEMA public TO tego_demo_jobs;"
sql "SELECT * FROM tego.cron_next('*/2 * * * * *', now(), 'UTC', 3);"
sql "SELECT job_id, name, schedule, command, username
  FROM tego.schedule('demo-tick', '*/2 * * * * *', 'INSERT INTO public.tego_demo_ticks DEFAULT VALUES',
                     username => 'tego_demo_jobs');"
if [ "$(sql_value "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'tego scheduler';")" = 0 ]; then
	echo "  (no tego scheduler runs in this server: restart it so that the preloaded tego.so starts one)"
else
	for _ in $(seq 1 50); do
		[ "$(sql_value "SELECT count(*) FROM tego.job_runs WHERE job_name = 'demo-tick' AND status = 'succeeded';")" -ge 3 ] && break
		sleep 0.2
	done
	sql "SELECT run_id, scheduled_for, status, started_at - scheduled_for AS drift, message
  FROM tego.job_runs WHERE job_name = 'demo-tick' ORDER BY run_id;"
	sql "SELECT seq, event, key, payload->>'status' AS status FROM tego.events_since($SEQ0, ARRAY['tego_jobs']);"
fi
sql "SELECT tego.unschedule('demo-tick');"

step "13. A lease: one leader among the processes, with a fencing token"
sql "SELECT * FROM tego.lease_acquire('demo-leader', 'node-a', '30 seconds');"
sql "SELECT * FROM tego.lease_acquire('demo-leader', 'node-b');"
TOKEN=$(sql_value "SELECT token FROM tego.leases WHERE name = 'demo-leader';")
echo "  The leader guards its writes with its token (a deposed leader's lease_assert would fail):"
sql "BEGIN; SELECT tego.lease_assert('demo-leader', $TOKEN); COMMIT;"
sql "SELECT tego.lease_release('demo-leader', 'node-a', $TOKEN);"
sql "SELECT name, holder, token, live FROM tego.leases;"

step "14. Application status, shared by every process (shared memory, announced on tego_apps)"
sql "SELECT tego.app_status_set('main', 'running', 'listening on :13000');"
sql "SELECT tego.app_maintaining_set('main', 'pm.enable', 'command_begin', 'enabling demo-acl');"
sql "SELECT app, status, previous_status, command, maintaining_status, message, version FROM tego.apps;"
sql "SELECT tego.app_maintaining_set('main', 'pm.enable', 'command_end');"
sql "SELECT app, status, previous_status, maintaining_status, version FROM tego.apps;"

step "15. Health: tego.status()"
sql "SELECT preloaded, scheduler_pid, scheduler_database, scheduler_state, event_seq,
       apps, max_apps, leases, max_leases FROM tego.status();"

step "16. The same from the command line: the tego tool (installed as $PGBIN/tego)"
if [ -x "$PGBIN/tego" ]; then
	for args in "pm list" "leases" "status"; do
		echo "  \$ tego -h $CLUSTER -p $PORT -d postgres $args"
		# shellcheck disable=SC2086 # the words of $args are the command's
		as_pg "$PGBIN/tego" -h "$CLUSTER" -p "$PORT" -d postgres $args | sed 's/^/  /'
	done
else
	echo "  (not installed: make install builds and installs it)"
fi

# --- how to use it ---------------------------------------------------------
echo
echo "== the server is running"
echo "connect:  ${RUNAS}$PGBIN/psql -h $CLUSTER -p $PORT -d postgres"
echo "cli:      ${RUNAS}$PGBIN/tego -h $CLUSTER -p $PORT -d postgres pm list"
echo "stop:     ${RUNAS}$PGBIN/pg_ctl -D $DATA stop"
