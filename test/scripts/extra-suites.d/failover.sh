#!/usr/bin/env bash
# Extra suite: tego under Patroni and etcd (issue 14).
#
# Starts, all on 127.0.0.1 with ports of their own, one etcd 3.4 member
# and two Patroni nodes (etcd3 API, synchronous_mode) whose PostgreSQL 15
# (from TEGO_PGBIN) preloads tego; each node has its own data folder and
# Unix socket folder.  A per-second SQL job writes the scheduled time it
# ran for into a side table, a per-second app job announces run-due
# events, and plugin changes and a lease change hands in each phase.  A
# `tego --json events tail` follows the log through a multi-host
# connection string (target_session_attrs=read-write) for the whole run.
# Three phases:
#
#   1. node loss: Patroni and the postmaster of the leader are killed; the
#      replica is promoted;
#   2. rejoin: the old leader's Patroni is started again and rejoins as a
#      replica (pg_rewind);
#   3. switchover: `patronictl switchover` back to the first node;
#   4. split brain: only Patroni of the leader is killed; its PostgreSQL
#      keeps running as a primary while the replica is promoted.  With
#      tego.leader_check on Patroni's /primary, the old primary is fenced
#      (no job fires, no event commits) before the promotion; then it is
#      stopped and its Patroni rejoins it.
#
# After each: the scheduler runs on the leader only (pg_stat_activity
# backend_type 'tego scheduler'), the job runs again on the new leader, no
# (job, scheduled_for) ran twice (job runs and the side table), event seqs
# and lease tokens continue; at the end the tail printed every event of
# the final leader's log exactly once, in order.
#
# Runs as root from the checkout (Patroni, etcd and the servers run as
# postgres); installs patroni, etcd-server and etcd-client with apt-get
# when missing, without letting their services start.  Needs tego
# installed into TEGO_PGBIN (test.sh does it first).  Everything it starts
# is stopped on exit; its folder is removed on success and kept (path
# printed) on failure or with TEGO_KEEP_TMP=1.  Exit 0 = passed, 77 =
# skipped (not root, or the packages cannot be installed), 1 = failed; the
# last line is the summary.  Ports: TEGO_FAILOVER_PORT_BASE (default
# 5710): etcd client/peer on BASE+10/+11, PostgreSQL on BASE+1/+2, Patroni
# REST on BASE+21/+22.
set -uo pipefail

# shellcheck source=test/scripts/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
# shellcheck source=test/node/pg-cluster.sh
. "$TEGO_TOP/test/node/pg-cluster.sh" # node_npm_install

BASE=${TEGO_FAILOVER_PORT_BASE:-5710}
ETCD_PORT=$((BASE + 10))
ETCD_PEER=$((BASE + 11))
NODES=(n1 n2)
declare -A NODE_PORT=([n1]=$((BASE + 1)) [n2]=$((BASE + 2)))
declare -A RESTPORT=([n1]=$((BASE + 21)) [n2]=$((BASE + 22)))
SCOPE=tego-failover
PASS=0
FAIL=0
SKIP_RC=
WORK=
ETCD_PID=
TAIL_PID=
COPY_PID=
POLICY_RC_MADE=
declare -A PATRONI_PID=()
DETAIL=()

unset PGHOST PGHOSTADDR PGPORT PGUSER PGDATABASE PGSERVICE PGOPTIONS PGPASSWORD PGTARGETSESSIONATTRS

ok() { PASS=$((PASS + 1)); echo "ok - $1"; }
not_ok() { FAIL=$((FAIL + 1)); echo "not ok - $1"; }
check() { # check DESCRIPTION CMD...: ok when CMD succeeds
	local d=$1
	shift
	if "$@"; then ok "$d"; else not_ok "$d"; fi
}

# stop everything we started; print the summary; exit
finish() {
	local rc=$? n p
	trap - EXIT INT TERM
	exec 2>/dev/null # no job-control notes for the processes killed below
	[ -n "$POLICY_RC_MADE" ] && rm -f /usr/sbin/policy-rc.d
	[ -n "$TAIL_PID" ] && kill "$TAIL_PID" 2>/dev/null
	[ -n "$COPY_PID" ] && kill -KILL "$COPY_PID" 2>/dev/null
	for n in "${!PATRONI_PID[@]}"; do
		p=${PATRONI_PID[$n]}
		[ -n "$p" ] && kill -KILL "$p" 2>/dev/null
	done
	if [ -n "$WORK" ]; then
		tego_stop_servers_under "$WORK"
	fi
	[ -n "$ETCD_PID" ] && kill -KILL "$ETCD_PID" 2>/dev/null
	wait 2>/dev/null
	if [ -n "$SKIP_RC" ]; then
		[ -n "$WORK" ] && rm -rf "$WORK"
		echo "== failover: skipped ($SKIP_RC)"
		exit 77
	fi
	[ "$rc" -ne 0 ] && [ "$FAIL" -eq 0 ] && FAIL=1
	if [ -n "$WORK" ]; then
		if [ "$FAIL" -eq 0 ] && [ -z "${TEGO_KEEP_TMP:-}" ]; then
			rm -rf "$WORK"
		else
			echo "(failover folder and logs kept: $WORK)"
		fi
	fi
	local line="== failover: $PASS passed, $FAIL failed" joined
	if [ ${#DETAIL[@]} -gt 0 ]; then
		joined=$(printf '%s; ' "${DETAIL[@]}")
		line+=" (${joined%; })"
	fi
	echo "$line"
	[ "$FAIL" -eq 0 ] && exit 0
	exit 1
}
trap finish EXIT
trap 'echo "failover: interrupted"; FAIL=$((FAIL + 1)); exit 1' INT TERM

bail() { not_ok "$1"; exit 1; }

# --- packages ----------------------------------------------------------------
if ! tego_is_root; then
	SKIP_RC="needs root to run Patroni and etcd as postgres"
	exit 77
fi
have_pkgs() {
	command -v patroni >/dev/null && command -v patronictl >/dev/null &&
		command -v etcd >/dev/null && command -v etcdctl >/dev/null
}
if ! have_pkgs; then
	echo "# installing patroni etcd-server etcd-client (services not started)"
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d &&
			POLICY_RC_MADE=1
	fi
	export DEBIAN_FRONTEND=noninteractive
	if ! { apt-get update -q && apt-get install -y -q patroni etcd-server etcd-client; } \
		>/tmp/tego-failover-apt.log 2>&1; then
		tail -n 20 /tmp/tego-failover-apt.log
	fi
	[ -n "$POLICY_RC_MADE" ] && rm -f /usr/sbin/policy-rc.d && POLICY_RC_MADE=
	# a service that started anyway is stopped and disabled
	for svc in etcd patroni; do
		if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
			systemctl stop "$svc" 2>/dev/null
			systemctl disable "$svc" 2>/dev/null
		fi
		if [ -x "/etc/init.d/$svc" ]; then
			"/etc/init.d/$svc" stop >/dev/null 2>&1
			update-rc.d "$svc" disable >/dev/null 2>&1
		fi
	done
	if ! have_pkgs; then
		SKIP_RC="patroni and etcd cannot be installed"
		exit 77
	fi
fi
[ -x "$TEGO_PGBIN/tego" ] || bail "the tego CLI is installed in $TEGO_PGBIN (make install)"
[ -f "$("$PG_CONFIG" --pkglibdir)/tego.so" ] || bail "tego is installed in $TEGO_PGBIN (make install)"
echo "# $(patroni --version 2>&1), $(etcd --version 2>&1 | head -n 1)"

# --- helpers -----------------------------------------------------------------
WORK=$(TMPDIR=${TEGO_WORK:-${TMPDIR:-/tmp}} tego_pg_tempdir tego-failover)
cd "$WORK" || exit 1
T0=$(date +%s.%N)

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# q NODE SQL: one query on NODE over TCP (unaligned, tuples only)
q() {
	psql -X -A -t -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "${NODE_PORT[$1]}" -U postgres -d postgres \
		-c "$2" 2>>"$WORK/psql.err"
}

# poll SECONDS CMD...: until CMD succeeds (every 0.2 s), at most SECONDS
poll() {
	local end=$(($(date +%s) + $1))
	shift
	while [ "$(date +%s)" -lt "$end" ]; do
		"$@" && return 0
		sleep 0.2
	done
	"$@"
}

is_true() { [ "$(q "$1" "$2")" = t ]; }

# the node the DCS names leader and a running primary answers for, or empty
leader_name() {
	local n
	for n in "${NODES[@]}"; do
		[ "$(q "$n" 'SELECT NOT pg_is_in_recovery()')" = t ] || continue
		if curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${RESTPORT[$n]}/leader" 2>/dev/null |
			grep -q 200; then
			echo "$n"
			return 0
		fi
	done
	return 1
}
other() { [ "$1" = n1 ] && echo n2 || echo n1; }

scheduler_count() { q "$1" "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'tego scheduler'"; }

start_patroni() {
	local n=$1
	runuser -u postgres -- sh -c 'echo $$ >"$1"; exec patroni "$2" >>"$3" 2>&1' sh \
		"$WORK/$n.patroni.pid" "$WORK/$n.yml" "$WORK/$n.patroni.log" 2>/dev/null &
	disown
	local i
	for i in $(seq 1 50); do
		[ -s "$WORK/$n.patroni.pid" ] && break
		sleep 0.1
	done
	PATRONI_PID[$n]=$(cat "$WORK/$n.patroni.pid" 2>/dev/null)
}

# kill -9 Patroni and the postmaster of NODE (a node lost)
kill_node() {
	local n=$1 pm
	pm=$(head -n 1 "$WORK/$n/data/postmaster.pid" 2>/dev/null)
	kill -KILL "${PATRONI_PID[$n]}" 2>/dev/null
	[ -n "$pm" ] && kill -KILL "$pm" 2>/dev/null
	PATRONI_PID[$n]=
	rm -f "$WORK/$n.patroni.pid"
}

# every port must be free (another run of this suite, or anything else)
for p in "$ETCD_PORT" "$ETCD_PEER" "${NODE_PORT[@]}" "${RESTPORT[@]}"; do
	if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
		bail "port $p is free on 127.0.0.1 (set TEGO_FAILOVER_PORT_BASE to move the suite's ports)"
	fi
done

# --- etcd --------------------------------------------------------------------
mkdir -p "$WORK/etcd" && chown postgres:postgres "$WORK/etcd" && chmod 700 "$WORK/etcd"
runuser -u postgres -- sh -c 'echo $$ >"$1"; shift; exec "$@"' sh "$WORK/etcd.pid" \
	etcd --name e1 --data-dir "$WORK/etcd" \
	--listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
	--listen-peer-urls "http://127.0.0.1:$ETCD_PEER" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER" \
	--initial-cluster "e1=http://127.0.0.1:$ETCD_PEER" --initial-cluster-state new \
	>"$WORK/etcd.log" 2>&1 &
disown
sleep 0.2
ETCD_PID=$(cat "$WORK/etcd.pid" 2>/dev/null)
etcd_up() { ETCDCTL_API=3 etcdctl --endpoints "127.0.0.1:$ETCD_PORT" endpoint health >/dev/null 2>&1; }
poll 30 etcd_up || { tail -n 20 "$WORK/etcd.log"; bail "etcd starts"; }
ok "etcd 3.4 starts on 127.0.0.1:$ETCD_PORT"

# --- Patroni nodes -------------------------------------------------------------
for n in "${NODES[@]}"; do
	mkdir -p "$WORK/$n" && chown postgres:postgres "$WORK/$n" && chmod 700 "$WORK/$n"
	cat >"$WORK/$n.yml" <<EOF
scope: $SCOPE
name: $n
restapi:
  listen: 127.0.0.1:${RESTPORT[$n]}
  connect_address: 127.0.0.1:${RESTPORT[$n]}
etcd3:
  hosts: 127.0.0.1:$ETCD_PORT
bootstrap:
  dcs:
    ttl: 10
    loop_wait: 2
    retry_timeout: 4
    maximum_lag_on_failover: 1048576
    synchronous_mode: true
    postgresql:
      use_pg_rewind: true
      use_slots: true
      parameters:
        wal_log_hints: 'on'
        max_worker_processes: 16
        max_wal_senders: 10
        max_replication_slots: 10
        hot_standby: 'on'
        wal_level: replica
  initdb:
    - encoding: UTF8
    - locale: C
    - auth: trust
  pg_hba:
    - local all all trust
    - host all all 127.0.0.1/32 trust
    - host replication all 127.0.0.1/32 trust
postgresql:
  listen: 127.0.0.1:${NODE_PORT[$n]}
  connect_address: 127.0.0.1:${NODE_PORT[$n]}
  data_dir: $WORK/$n/data
  bin_dir: $TEGO_PGBIN
  pgpass: $WORK/$n/pgpass
  authentication:
    superuser:
      username: postgres
      password: unused
    replication:
      username: postgres
      password: unused
    rewind:
      username: postgres
      password: unused
  parameters:
    unix_socket_directories: '$WORK/$n'
    shared_preload_libraries: 'tego'
    tego.database: postgres
    tego.leader_check: 'http://127.0.0.1:${RESTPORT[$n]}/primary'
    tego.leader_check_interval: 500
    logging_collector: 'off'
tags:
  nofailover: false
  noloadbalance: false
  clonefrom: false
  nosync: false
EOF
	chown postgres:postgres "$WORK/$n.yml"
done

start_patroni n1
have_leader() { [ "$(leader_name)" = n1 ]; }
poll 90 have_leader || { tail -n 30 "$WORK/n1.patroni.log"; bail "the first Patroni node bootstraps a primary"; }
ok "n1 bootstraps as the leader"
# NB: retried: the first commits with tego events wait for the first
# successful leader check (Patroni's /primary can answer 503 for a moment
# after /leader answers 200); the statements are one transaction
setup_n1() { q n1 "
CREATE EXTENSION tego;
CREATE ROLE tego_job LOGIN;
CREATE TABLE ticks (scheduled_for timestamptz NOT NULL, ran_at timestamptz NOT NULL, port int NOT NULL);
GRANT INSERT ON ticks TO tego_job;
GRANT USAGE ON SCHEMA tego TO tego_job;
GRANT SELECT ON tego.job_runs TO tego_job;
SELECT 1 FROM tego.plugin_add('core', '@tachybase/core', '1.0.0', built_in => true);
SELECT 1 FROM tego.plugin_enable('core');
" >/dev/null; }
poll 30 setup_n1 || bail "create the extension and the side table on the leader"

start_patroni n2
replica_streams() { is_true n1 "SELECT count(*) = 1 FROM pg_stat_replication WHERE state = 'streaming' AND sync_state = 'sync'"; }
poll 90 replica_streams || { tail -n 30 "$WORK/n2.patroni.log"; bail "n2 joins as a synchronous replica"; }
ok "n2 joins as a synchronous streaming replica"

# --- the LISTEN client ------------------------------------------------------------
CONNSTR="host=127.0.0.1,127.0.0.1 port=${NODE_PORT[n1]},${NODE_PORT[n2]} user=postgres dbname=postgres target_session_attrs=read-write connect_timeout=3"
TOPICS=(--topic tego_plugins --topic tego_jobs --topic tego_leases)
"$TEGO_PGBIN/tego" -d "$CONNSTR" --json events tail --from 0 "${TOPICS[@]}" \
	>"$WORK/tail.out" 2>"$WORK/tail.err" &
TAIL_PID=$!
# the Node.js registry copy (test/node/cluster/tego-client.js), following
# the writable node of the same two
tego_node_deps
if node_npm_install "$TEGO_TOP/test/node"; then
	PGHOST=127.0.0.1,127.0.0.1 PGPORT="${NODE_PORT[n1]},${NODE_PORT[n2]}" PGUSER=postgres PGDATABASE=postgres \
		node "$TEGO_TOP/test/node/cluster/registry-copy.js" "$WORK/copy.state" 900 \
		>"$WORK/copy.out" 2>"$WORK/copy.err" &
	COPY_PID=$!
else
	not_ok "npm ci in test/node (the registry copy)"
fi

# --- the jobs and a lease ----------------------------------------------------------
q n1 "
SELECT 1 FROM tego.schedule('tick', '* * * * * *',
  \$\$INSERT INTO ticks SELECT r.scheduled_for, clock_timestamp(), current_setting('port')::int
      FROM tego.job_runs r WHERE r.job_name = 'tick' AND r.status = 'running'\$\$,
  username => 'tego_job');
SELECT 1 FROM tego.schedule_app('app-tick', '1 seconds', '{\"report\": \"tick\"}', username => 'tego_job');
" >/dev/null || bail "schedule the jobs"
ticks_on() { # ticks_on NODE N: N side-table rows written by NODE's server
	is_true "$1" "SELECT count(*) >= $2 FROM ticks WHERE port = ${NODE_PORT[$1]}"
}
poll 30 ticks_on n1 3 || bail "the per-second job runs on n1"
ok "the per-second job runs on n1"

TOKEN=$(q n1 "SELECT token FROM tego.lease_acquire('leader', 'holder-0', '2 seconds')")
check "a lease is granted (token $TOKEN)" test "$TOKEN" = 1
HOLDER=0

# lease_next NODE: once the lease has expired, a new holder gets the next token
lease_next() {
	local n=$1 got
	HOLDER=$((HOLDER + 1))
	q "$n" "SELECT pg_sleep(2.1)" >/dev/null
	got=$(q "$n" "SELECT token FROM tego.lease_acquire('leader', 'holder-$HOLDER', '2 seconds')")
	check "$n: lease token continues ($TOKEN -> $got)" test "$got" = $((TOKEN + 1))
	TOKEN=${got:-$TOKEN}
}

# checks after each phase; LEADER is the expected leader
LAST_SEQ=0
PLUGIN_N=0
phase_checks() {
	local phase=$1 leader=$2 replica t1 seq dup gaps n i s_leader s_replica
	replica=$(other "$leader")
	t1=$(now)
	# a tick written by the new leader's server
	local base
	base=$(q "$leader" "SELECT count(*) FROM ticks WHERE port = ${NODE_PORT[$leader]}")
	if poll 60 ticks_on "$leader" $((base + 2)); then
		ok "$phase: the per-second job runs on the leader $leader"
	else
		not_ok "$phase: the per-second job runs on the leader $leader"
	fi
	# the scheduler: one on the leader, none on the replica (sampled)
	one_scheduler() { [ "$(scheduler_count "$1")" = 1 ]; }
	check "$phase: a tego scheduler runs on the leader" poll 30 one_scheduler "$leader"
	s_leader=0
	s_replica=0
	for i in 1 2 3 4 5 6 7 8 9 10; do
		[ "$(scheduler_count "$leader")" = 1 ] && s_leader=$((s_leader + 1))
		[ "$(scheduler_count "$replica")" = 0 ] && s_replica=$((s_replica + 1))
		sleep 0.2
	done
	check "$phase: exactly one scheduler on the leader in 10 samples ($s_leader)" test "$s_leader" = 10
	if [ "$phase" = "node loss" ]; then
		check "$phase: the lost node $replica accepts no connection" sh -c "! pg_isready -q -h 127.0.0.1 -p ${NODE_PORT[$replica]}"
	else
		check "$phase: no scheduler on the replica $replica in 10 samples ($s_replica)" test "$s_replica" = 10
		check "$phase: the replica $replica is in recovery" is_true "$replica" 'SELECT pg_is_in_recovery()'
	fi
	# no (job, scheduled_for) twice, in the runs and the side table
	dup=$(q "$leader" "SELECT count(*) FROM (SELECT job_name, scheduled_for FROM tego.job_runs
	                   WHERE scheduled_for IS NOT NULL GROUP BY 1, 2 HAVING count(*) > 1) d")
	check "$phase: no (job, scheduled_for) twice in tego.job_runs ($dup)" test "$dup" = 0
	dup=$(q "$leader" "SELECT count(*) FROM (SELECT scheduled_for FROM ticks GROUP BY 1 HAVING count(*) > 1) d")
	check "$phase: the side table has one row per scheduled second ($dup duplicates)" test "$dup" = 0
	# seq: continues after the last seq seen, gapless, no duplicate
	PLUGIN_N=$((PLUGIN_N + 1))
	seq=$(q "$leader" "SELECT 1 FROM tego.plugin_add('p$PLUGIN_N'); SELECT 1 FROM tego.plugin_enable('p$PLUGIN_N'); SELECT tego.event_seq()" | tail -n 1)
	check "$phase: plugin changes commit on $leader, seq continues ($LAST_SEQ -> $seq)" \
		test "${seq:-0}" -gt "$LAST_SEQ"
	gaps=$(q "$leader" "SELECT count(*) <> max(seq) OR count(DISTINCT seq) <> count(*) FROM tego.events")
	check "$phase: tego.events holds seq 1 to max once each" test "$gaps" = f
	LAST_SEQ=${seq:-$LAST_SEQ}
	lease_next "$leader"
	[ "$FIRST_RUN" != - ] && DETAIL+=("$phase: promoted after ${PROMOTED}s, first job run after ${FIRST_RUN:-?}s")
}

# first_run_after NODE EPOCH: seconds from EPOCH to the first tick NODE wrote
first_run_after() {
	q "$1" "SELECT round(extract(epoch FROM min(ran_at)) - $2, 1) FROM ticks
	        WHERE port = ${NODE_PORT[$1]} AND ran_at > to_timestamp($2)"
}

# first_on_time_after NODE EPOCH: seconds from EPOCH to the first tick NODE
# wrote that started less than 100 ms after its scheduled second
first_on_time_after() {
	q "$1" "SELECT round(extract(epoch FROM min(ran_at)) - $2, 2) FROM ticks
	        WHERE port = ${NODE_PORT[$1]} AND ran_at > to_timestamp($2)
	          AND ran_at - scheduled_for < interval '100 milliseconds'"
}
# tail_caught_up_with NODE EPOCH: the tail has printed the first event NODE
# committed after EPOCH
tail_caught_up_with() {
	local first last
	first=$(q "$1" "SELECT min(seq) FROM tego.events WHERE committed_at > to_timestamp($2)
	                  AND topic IN ('tego_plugins', 'tego_jobs', 'tego_leases')")
	last=$(jq -r 'select(.seq != null) | .seq' "$WORK/tail.out" 2>/dev/null | tail -n 1)
	[ -n "$first" ] && [ -n "$last" ] && [ "$last" -ge "$first" ]
}
# measure NODE EPOCH NAME: the timings of a failover to NODE that began at
# EPOCH, as one "# timing" line (PROMOTED was measured by the caller)
measure() {
	local on_time caught=-
	has_on_time_run() { [ -n "$(first_on_time_after "$1" "$2")" ]; }
	if poll 60 tail_caught_up_with "$1" "$2"; then caught=$(elapsed "$2"); fi
	poll 30 has_on_time_run "$1" "$2"
	on_time=$(first_on_time_after "$1" "$2")
	echo "# timing: $3 promoted=$PROMOTED first_on_time_run=${on_time:--} tail_caught_up=$caught"
}
has_run_after() { [ -n "$(first_run_after "$1" "$2")" ]; }

# a few more plugin changes before the first phase
q n1 "SELECT 1 FROM tego.plugin_add('acl', '@tachybase/plugin-acl', '1.2.0'); SELECT 1 FROM tego.plugin_enable('acl')" >/dev/null
LAST_SEQ=$(q n1 "SELECT tego.event_seq()")
sleep 1

# Phases 1 to 3 run TEGO_FAILOVER_ROUNDS times (default 1; the failover
# benchmark, test/bench/failover.sh, runs 5).
for ROUND in $(seq 1 "${TEGO_FAILOVER_ROUNDS:-1}"); do
	echo "# round $ROUND"
	# --- 1. node loss ----------------------------------------------------------------
	echo "# phase 1: node loss (kill -9 Patroni and the postmaster of n1)"
	K=$(now)
	kill_node n1
	new_leader_n2() { [ "$(leader_name)" = n2 ]; }
	if poll 60 new_leader_n2; then
		PROMOTED=$(elapsed "$K")
		ok "node loss: n2 is promoted within 60 s ($PROMOTED s)"
	else
		tail -n 20 "$WORK/n2.patroni.log"
		bail "node loss: n2 is promoted within 60 s"
	fi
	has_run_after() { [ -n "$(first_run_after "$1" "$2")" ]; }
	poll 60 has_run_after n2 "$K"
	FIRST_RUN=$(first_run_after n2 "$K")
	measure n2 "$K" node-loss
	# what became of the fire times of the outage (misfire 'skip'): reported only
	echo "# node loss: runs of 'tick' scheduled after the kill, by status: $(q n2 "
	SELECT string_agg(status || ' ' || n, ', ') FROM (SELECT status, count(*) n FROM tego.job_runs
	 WHERE job_name = 'tick' AND scheduled_for > to_timestamp($K) AND scheduled_for < to_timestamp($K) + interval '${PROMOTED%.*} seconds'
	 GROUP BY 1 ORDER BY 1) s")"
	phase_checks "node loss" n2

	# --- 2. the old leader rejoins ---------------------------------------------------------
	echo "# phase 2: n1's Patroni starts again and rejoins (pg_rewind)"
	LOG_FROM=$(($(wc -l <"$WORK/n1.patroni.log") + 1))
	start_patroni n1
	n1_sync() { is_true n2 "SELECT count(*) = 1 FROM pg_stat_replication WHERE state = 'streaming' AND sync_state = 'sync'"; }
	if poll 90 n1_sync; then
		ok "rejoin: n1 streams from n2 as its synchronous replica"
	else
		tail -n 30 "$WORK/n1.patroni.log"
		bail "rejoin: n1 streams from n2 as its synchronous replica"
	fi
	if grep -qi 'rewind' "$WORK/n1.patroni.log"; then
		ok "rejoin: Patroni ran pg_rewind on n1"
	else
		not_ok "rejoin: Patroni ran pg_rewind on n1"
	fi
	FIRST_RUN=-
	phase_checks "rejoin" n2
	check "rejoin: n1 logged no tego error since it started again" \
		sh -c "! tail -n +$LOG_FROM '$WORK/n1.patroni.log' | grep -E 'ERROR|FATAL|PANIC' | grep -qi tego"

	# --- 3. switchover -------------------------------------------------------------------
	echo "# phase 3: patronictl switchover to n1"
	poll 60 is_true n1 "SELECT count(*) > 0 FROM pg_stat_wal_receiver WHERE status = 'streaming'" >/dev/null
	K=$(now)
	if runuser -u postgres -- patronictl -c "$WORK/n2.yml" switchover --leader n2 --candidate n1 --force \
		>"$WORK/switchover.log" 2>&1; then
		ok "switchover: patronictl switchover succeeds"
	else
		cat "$WORK/switchover.log"
		not_ok "switchover: patronictl switchover succeeds"
	fi
	new_leader_n1() { [ "$(leader_name)" = n1 ]; }
	poll 60 new_leader_n1 || bail "switchover: n1 leads within 60 s"
	PROMOTED=$(elapsed "$K")
	n2_sync() { is_true n1 "SELECT count(*) = 1 FROM pg_stat_replication WHERE state = 'streaming'"; }
	poll 90 n2_sync || bail "switchover: n2 streams from n1"
	ok "switchover: n1 leads and n2 streams from it ($(elapsed "$K") s)"
	poll 60 has_run_after n1 "$K"
	FIRST_RUN=$(first_run_after n1 "$K")
	measure n1 "$K" switchover
	phase_checks "switchover" n1
done

# --- 4. split brain ---------------------------------------------------------------------
echo "# phase 4: split brain (kill -9 Patroni of the leader n1 only; its PostgreSQL keeps running)"
K=$(now)
kill -KILL "${PATRONI_PID[n1]}" 2>/dev/null
PATRONI_PID[n1]=
rm -f "$WORK/n1.patroni.pid"
# fenced_n1: n1 refuses to commit tego events (tego.leader_check)
fenced_n1() {
	local out
	out=$(psql -X -A -t -q -h 127.0.0.1 -p "${NODE_PORT[n1]}" -U postgres -d postgres \
		-c "SELECT tego.publish('split_probe', '{}')" 2>&1)
	[[ $out == *'tego cannot confirm that this server is the leader'* ]]
}
if poll 10 fenced_n1; then
	FENCED=$(elapsed "$K")
	ok "split brain: n1 is fenced within 10 s of its Patroni's death ($FENCED s)"
else
	not_ok "split brain: n1 is fenced within 10 s of its Patroni's death"
fi
check "split brain: n1's PostgreSQL still runs as a primary" is_true n1 'SELECT NOT pg_is_in_recovery()'
N1_RUNS=$(q n1 "SELECT count(*) FROM tego.job_runs")
N1_SEQ=$(q n1 "SELECT tego.event_seq()")
N1_TICKS=$(q n1 "SELECT count(*) FROM ticks")
if poll 60 new_leader_n2; then
	PROMOTED=$(elapsed "$K")
	ok "split brain: n2 is promoted ($PROMOTED s) while n1 still runs"
else
	bail "split brain: n2 is promoted within 60 s"
fi
poll 60 has_run_after n2 "$K"
FIRST_RUN=$(first_run_after n2 "$K")
check "split brain: the per-second job runs on n2 (first run after ${FIRST_RUN:-?} s)" test -n "$FIRST_RUN"
sleep 3 # both primaries up, n1 fenced
check "split brain: both servers are primaries" is_true n1 'SELECT NOT pg_is_in_recovery()'
check "split brain: n1 recorded no job run while fenced" test "$(q n1 'SELECT count(*) FROM tego.job_runs')" = "$N1_RUNS"
check "split brain: n1's job wrote nothing while fenced" test "$(q n1 'SELECT count(*) FROM ticks')" = "$N1_TICKS"
check "split brain: n1 stored no event while fenced (seq $N1_SEQ)" test "$(q n1 'SELECT tego.event_seq()')" = "$N1_SEQ"
check "split brain: no commit of n1 waits for a synchronous standby" \
	test "$(q n1 "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'SyncRep'")" = 0
q n1 "SELECT scheduled_for FROM ticks WHERE port = ${NODE_PORT[n1]} ORDER BY 1" >"$WORK/split.n1"
q n2 "SELECT scheduled_for FROM ticks WHERE port = ${NODE_PORT[n2]} ORDER BY 1" >"$WORK/split.n2"
both=$(comm -12 "$WORK/split.n1" "$WORK/split.n2" | wc -l)
check "split brain: no scheduled second ran on both servers ($both)" test "$both" = 0
DETAIL+=("split brain: fenced after ${FENCED:-?}s, n2 promoted after ${PROMOTED}s, first job run after ${FIRST_RUN:-?}s")
# the operator (or a watchdog) stops the old primary; its Patroni rejoins it
runuser -u postgres -- "$TEGO_PGBIN/pg_ctl" -D "$WORK/n1/data" -m fast -w stop >/dev/null 2>&1
start_patroni n1
if poll 90 n1_sync; then
	ok "split brain: n1 rejoins as n2's synchronous replica"
else
	tail -n 30 "$WORK/n1.patroni.log"
	bail "split brain: n1 rejoins as n2's synchronous replica"
fi
FIRST_RUN=-
phase_checks "split brain" n2

# --- the LISTEN client -----------------------------------------------------------------
FINAL=$(q n2 "SELECT tego.event_seq()")
tail_caught_up() {
	[ "$(jq -r 'select(.seq != null) | .seq' "$WORK/tail.out" 2>/dev/null | tail -n 1)" = "$FINAL" ]
}
if poll 60 tail_caught_up; then
	ok "the tail client catches up with the final leader (seq $FINAL)"
else
	not_ok "the tail client catches up with the final leader (seq $FINAL; printed up to $(jq -r 'select(.seq != null) | .seq' "$WORK/tail.out" | tail -n 1))"
fi
kill "$TAIL_PID" 2>/dev/null
wait "$TAIL_PID" 2>/dev/null
TAIL_PID=
jq -c 'select(.seq != null) | [.seq, .topic, .event, .key, .payload]' "$WORK/tail.out" >"$WORK/tail.rows"
q n2 "SELECT json_build_array(seq, topic, event, key, payload) FROM tego.events
      WHERE topic IN ('tego_plugins', 'tego_jobs', 'tego_leases') AND seq <= $FINAL ORDER BY seq" |
	jq -c . >"$WORK/log.rows"
if cmp -s "$WORK/tail.rows" "$WORK/log.rows"; then
	ok "the tail printed every event of the final leader's log exactly once, in order ($(wc -l <"$WORK/log.rows") events)"
else
	diff "$WORK/tail.rows" "$WORK/log.rows" | head -n 20
	not_ok "the tail printed every event of the final leader's log exactly once, in order"
fi
reconnects=$(grep -ci 'connect' "$WORK/tail.err")
check "the tail client reconnected after the failovers ($reconnects lines on stderr)" test "$reconnects" -ge 1

# --- the Node.js registry copy -----------------------------------------------------------
if [ -n "$COPY_PID" ]; then
	PSEQ=$(q n2 "SELECT coalesce(max(seq), 0) FROM tego.events WHERE topic = 'tego_plugins'")
	copy_caught_up() { [ "$(jq -r .lastSeq "$WORK/copy.state" 2>/dev/null)" = "$PSEQ" ]; }
	check "the Node.js registry copy reaches the final leader's last plugin event (seq $PSEQ)" poll 60 copy_caught_up
	kill -TERM "$COPY_PID" 2>/dev/null
	wait "$COPY_PID" 2>/dev/null
	COPY_PID=
	jq -c '[.plugins[] | [.name, .state, .revision]] | sort' "$WORK/copy.out" >"$WORK/copy.rows" 2>/dev/null
	q n2 "SELECT json_agg(json_build_array(name, state, revision) ORDER BY name) FROM tego.plugins" |
		jq -c 'sort' >"$WORK/plugins.rows"
	if [ -s "$WORK/copy.rows" ] && cmp -s "$WORK/copy.rows" "$WORK/plugins.rows"; then
		ok "the registry copy equals tego.plugins on the final leader ($(jq length "$WORK/plugins.rows") plugins)"
	else
		diff "$WORK/copy.rows" "$WORK/plugins.rows" | head -n 10
		not_ok "the registry copy equals tego.plugins on the final leader"
	fi
	conns=$(jq -r .stats.connections "$WORK/copy.out" 2>/dev/null)
	check "the registry copy connected again after the failovers (${conns:-?} connections)" test "${conns:-0}" -ge 2
fi
DETAIL+=("total $(elapsed "$T0") s")
exit 0
