# Copyright: the tego authors.  PostgreSQL::Test::Cluster TAP test.
#
# Security soak (issue 10): for a bounded time, two application roles with
# the README's grants (app1, app2) and a role with no tego grants (nobody)
# attack each other from six pgbench sessions.  Each attack is one random
# call with another role's names, lease tokens, guard holders, run ids and
# worker names (read from a view only the test's superuser could build:
# the attackers know every secret), or with absurd arguments (month-length,
# negative and huge intervals, NULLs, empty and 10 kB strings, oversize
# payloads), or a forged NOTIFY on tego_plugins, tego_apps, tego_jobs or
# tego_leases (garbage, huge seqs), or an attempt to change roles.  An
# attack may fail or touch the attacker's own objects only; reads must not
# show another role's holders, tokens, runs, messages or payloads.
#
# Meanwhile each application role keeps its own per-second SQL job, its
# lease (renewed), its app status (set again and again), a plugin
# operation guard and an app job whose runs it claims and finishes; app1
# also changes the registry (add, install, enable, disable, upgrade); and
# a Node.js process connected as app1 keeps a registry copy with
# tego-client.js (TegoListener + PluginRegistry).
#
# Afterwards: no role gained a membership or an attribute (superuser,
# createrole, createdb, replication, bypassrls); every attack that had to
# fail failed, no read leaked, no error was an internal one; each role's
# per-second job succeeded in every second of the soak window but two, and
# no run failed; each role's lease, guard, app status, jobs and app runs
# are still its own, unchanged; the server log shows no crash; and the
# Node.js copy equals tego.plugins (name, state, revision).
#
# TEGO_SOAK_SECONDS sets the soak's length (default 25).  The Node.js part
# needs node and the pg package in test/node/node_modules (make test runs
# npm ci there; TEGO_NODE_MODULES may name another node_modules); without
# them it is skipped, and says so.
use strict;
use warnings;

use File::Basename qw(dirname);
use File::Spec;
use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use TegoTest;

my $soak_secs = $ENV{TEGO_SOAK_SECONDS} // 25;
my $warmup = 3;    # seconds of the soak not counted for the jobs

my $node = PostgreSQL::Test::Cluster->new('security_soak');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'tego'
max_worker_processes = 24
max_connections = 60
tego.max_running_jobs = 6
});
$node->start;

my $tmp = PostgreSQL::Test::Utils::tempdir;

# --- roles, grants, and what each role owns -----------------------------------------


$node->safe_psql(
	'postgres', q{
CREATE EXTENSION tego;
CREATE ROLE app1 LOGIN;
CREATE ROLE app2 LOGIN;
CREATE ROLE nobody LOGIN;
-- what only each role's own per-second job may write
CREATE TABLE app1_ticks (at timestamptz DEFAULT clock_timestamp(), who name DEFAULT current_user);
CREATE TABLE app2_ticks (at timestamptz DEFAULT clock_timestamp(), who name DEFAULT current_user);
GRANT INSERT ON app1_ticks TO app1;
GRANT INSERT ON app2_ticks TO app2;
-- every attack and upkeep step says how it ended here
CREATE TABLE soak_log (
    who      name NOT NULL,
    op       text NOT NULL,
    outcome  text NOT NULL,   -- ok, refused, UNEXPECTED-OK, LEAK, keep-failed
    sqlstate text,
    message  text,
    stmt     text
);
GRANT INSERT ON soak_log TO PUBLIC;
-- registry: a built-in plugin, one guarded plugin per role, and the
-- plugins app1 keeps changing
SELECT count(*) FROM tego.plugin_add('soak-core', built_in => true);
SELECT count(*) FROM tego.plugin_enable('soak-core');
SELECT count(*) FROM tego.plugin_add('app1-guarded');
SELECT count(*) FROM tego.plugin_add('app2-guarded');
SELECT count(*) FROM tego.plugin_add('soak-p1', '@soak/p1', '1.0.0');
SELECT count(*) FROM tego.plugin_add('soak-p2', '@soak/p2', '1.0.0', depends_on => '{soak-p1}');
}
	  . app_grants('app1')
	  . app_grants('app2'));

# What the attackers know: every lease's holder and token, every guard's
# holder, the latest runs and their workers.  A view of the superuser reads
# the tables as its owner (past the views' and row security's filters).
$node->safe_psql(
	'postgres', q{
CREATE VIEW soak_intel AS
SELECT 'lease'::text AS kind, l.name, l.holder, l.token, l.owner::text AS owner
  FROM tego.lease_state l
UNION ALL
SELECT 'guard', g.name, g.holder, NULL, g.owner::text
  FROM tego.plugin_operation_state g
UNION ALL
SELECT 'run', r.job_name, r.worker, r.run_id, r.username::text
  FROM (SELECT * FROM tego.job_runs ORDER BY run_id DESC LIMIT 40) r;
GRANT SELECT ON soak_intel TO PUBLIC;

-- one element of a, at random (NULL elements included)
CREATE FUNCTION soak_pick(a anyarray) RETURNS anyelement
LANGUAGE sql VOLATILE AS $$ SELECT a[1 + floor(random() * cardinality(a))::int] $$;
});

# The attack: one random call as the session's role, logged in soak_log.
# must_fail: the call has to be refused (it targets another role's object,
# or an argument is out of bounds); leak: the statement returns what the
# attacker must not see, and has to return NULL.
$node->safe_psql('postgres', <<'EOSQL');
CREATE FUNCTION soak_attack() RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
    me     name := current_user;
    victim name := soak_pick(ARRAY(SELECT unnest(ARRAY['app1', 'app2']::name[]) EXCEPT SELECT current_user));
    big    text := repeat('x', 10240);
    -- out of every interval's bounds (a lease's ttl, a guard's timeout,
    -- an app job's timeouts: 1 day; a job's max_runtime: 7 days)
    bad    text := soak_pick(ARRAY['178000000 years', '100000000 days', '-1 second', '0',
                                   '1 month -30 days 00:00:01', '1 mon -29 days',
                                   '1 year -365 days', '8 days', '1 mon']);
    badn   text := soak_pick(ARRAY[bad, NULL]);          -- out of bounds or NULL
    weird  text := soak_pick(ARRAY[NULL, '', big]);      -- no name may be that
    chan   text := soak_pick(ARRAY['tego_plugins', 'tego_apps', 'tego_jobs', 'tego_leases']);
    lease  record;
    guard  record;
    run    record;
    vjob   text := victim || soak_pick(ARRAY['-tick', '-app']);
    vapp   text := victim || '-main';
    tok    text;
    op     int := floor(random() * 46)::int;
    opname text;
    stmt   text;
    must_fail boolean := true;
    leak   boolean := false;
    res    text;
    outcome text;
    st     text;
    msg    text;
BEGIN
    SELECT * INTO lease FROM soak_intel
     WHERE kind = 'lease' AND owner IS DISTINCT FROM me ORDER BY random() LIMIT 1;
    SELECT * INTO guard FROM soak_intel
     WHERE kind = 'guard' AND owner IS DISTINCT FROM me ORDER BY random() LIMIT 1;
    SELECT * INTO run FROM soak_intel
     WHERE kind = 'run' AND owner IS DISTINCT FROM me ORDER BY random() LIMIT 1;
    tok := soak_pick(ARRAY[lease.token::text, (lease.token + 1)::text, '0', '-1',
                           '9223372036854775807', NULL]);

    CASE
    -- another role's lease, with its holder and its token
    WHEN op = 0 THEN
        opname := 'lease_acquire other';
        stmt := format('SELECT tego.lease_acquire(%L, %L, %L)::text', lease.name,
                       soak_pick(ARRAY[lease.holder, 'evil']), soak_pick(ARRAY['30 seconds', bad]));
    WHEN op = 1 THEN
        opname := 'lease_renew other';
        stmt := format('SELECT tego.lease_renew(%L, %L, %L, %L)::text', lease.name, lease.holder,
                       lease.token, soak_pick(ARRAY['1 day', '1 second', bad]));
    WHEN op = 2 THEN
        opname := 'lease_release other';
        stmt := format('SELECT tego.lease_release(%L, %L, %L)::text', lease.name, lease.holder, tok);
    WHEN op = 3 THEN
        opname := 'lease_assert other';
        stmt := format('SELECT tego.lease_assert(%L, %L)::text', lease.name, tok);
    WHEN op = 4 THEN
        opname := 'lease_acquire absurd';
        IF random() < 0.5 THEN
            stmt := format('SELECT tego.lease_acquire(%L, %L, %L)::text', me || '-junk', 'h', badn);
        ELSE
            stmt := format('SELECT tego.lease_acquire(%L, %L)::text', weird, 'h');
        END IF;
    WHEN op = 5 THEN
        opname := 'lease_acquire absurd holder';
        stmt := format('SELECT tego.lease_acquire(%L, %L)::text', me || '-junk',
                       soak_pick(ARRAY[NULL, '', big]));
    -- another role's plugin operation guard
    WHEN op = 6 THEN
        opname := 'plugin_begin other';
        stmt := format('SELECT tego.plugin_begin(%L, %L, %L, %L)::text', guard.name,
                       soak_pick(ARRAY['upgrade', 'remove', 'install']),
                       soak_pick(ARRAY[guard.holder, 'evil']), soak_pick(ARRAY['1 minute', bad]));
    WHEN op = 7 THEN
        opname := 'plugin_end other';
        stmt := format('SELECT tego.plugin_end(%L, %L, %L, %L)::text', guard.name, guard.holder,
                       soak_pick(ARRAY['true', 'false']), 'ended by ' || me);
    WHEN op = 8 THEN
        opname := 'plugin_begin absurd';
        stmt := format('SELECT tego.plugin_begin(%L, %L, %L, %L)::text',
                       soak_pick(ARRAY[weird, guard.name]), 'upgrade', 'evil', badn);
    -- another role's app status
    WHEN op = 9 THEN
        opname := 'app_status_set other';
        stmt := format('SELECT tego.app_status_set(%L, %L, %L)::text', vapp,
                       soak_pick(ARRAY['stopped', 'error', 'running']), 'pwned by ' || me);
    WHEN op = 10 THEN
        opname := 'app_maintaining_set other';
        stmt := format('SELECT tego.app_maintaining_set(%L, %L, %L, %L)::text', vapp, 'pm.enable',
                       soak_pick(ARRAY['command_begin', 'command_end', 'command_error']), 'pwned by ' || me);
    WHEN op = 11 THEN
        opname := 'app_forget other';
        stmt := format('SELECT tego.app_forget(%L)::text', vapp);
    WHEN op = 12 THEN
        opname := 'app_status_set absurd';
        stmt := format('SELECT tego.app_status_set(%L, %L, %L, %L)::text',
                       soak_pick(ARRAY[me || '-junk', weird]),
                       soak_pick(ARRAY[NULL, '', 'bogus', big]), big, big);
    -- another role's jobs and runs, and jobs as other roles
    WHEN op = 13 THEN
        opname := 'schedule as other';
        stmt := format('SELECT tego.schedule(%L, %L, %L, username => %L)::text', me || '-esc',
                       '0 0 1 1 *', format('ALTER ROLE %I SUPERUSER', me),
                       soak_pick(ARRAY[victim, 'postgres', 'pg_execute_server_program',
                                       'pg_write_server_files', 'pg_read_server_files']));
    WHEN op = 14 THEN
        opname := 'schedule_app as other';
        stmt := format('SELECT tego.schedule_app(%L, %L, %L, username => %L)::text', me || '-esc-app',
                       '* * * * * *', '{}', soak_pick(ARRAY[victim, 'postgres', 'pg_monitor']));
    WHEN op = 15 THEN
        opname := 'schedule absurd';
        CASE floor(random() * 3)::int
        WHEN 0 THEN
            stmt := format('SELECT tego.schedule(%L, %L, %L, max_runtime => %L)::text',
                           me || '-abs', '0 0 1 1 *', 'SELECT 1', bad);
        WHEN 1 THEN
            stmt := format('SELECT tego.schedule(%L, %L, %L)::text', me || '-abs',
                           soak_pick(ARRAY[NULL, '', big, '* * * * * * *', '60 * * * * *',
                                           '99 99 99 99 99']), 'SELECT 1');
        ELSE
            stmt := format('SELECT tego.schedule(%L, %L, %L)::text', weird, '0 0 1 1 *', 'SELECT 1');
        END CASE;
    WHEN op = 16 THEN
        opname := 'schedule_app absurd';
        IF random() < 0.5 THEN
            stmt := format('SELECT tego.schedule_app(%L, %L, %L, claim_timeout => %L, heartbeat_timeout => %L)::text',
                           me || '-abs-app', '0 0 1 1 *', '{}', bad, soak_pick(ARRAY['1 minute', bad]));
        ELSE
            stmt := format('SELECT tego.schedule_app(%L, %L, %L, max_attempts => %L)::text',
                           me || '-abs-app', '0 0 1 1 *', soak_pick(ARRAY[NULL, '{}']),
                           soak_pick(ARRAY['0', '-1', '101', '2147483647']));
        END IF;
    WHEN op = 17 THEN
        opname := 'alter_job other';
        CASE floor(random() * 4)::int
        WHEN 0 THEN
            stmt := format('SELECT tego.alter_job(%L, command => %L)::text', vjob,
                           format('ALTER ROLE %I SUPERUSER', me));
        WHEN 1 THEN
            stmt := format('SELECT tego.alter_job(%L, username => %L)::text', vjob, me);
        WHEN 2 THEN
            stmt := format('SELECT tego.alter_job(%L, active => false)::text', vjob);
        ELSE
            stmt := format('SELECT tego.alter_job(%L, schedule => %L, payload => %L)::text', vjob,
                           '0 0 1 1 *', '{"pwned": true}');
        END CASE;
    WHEN op = 18 THEN
        opname := 'unschedule other';
        stmt := format('SELECT tego.unschedule(%L)::text', vjob);
    WHEN op = 19 THEN
        opname := 'run_now other';
        stmt := format('SELECT tego.run_now(%L)::text', vjob);
    WHEN op = 20 THEN
        opname := 'job_claim other';
        must_fail := false;
        leak := true;
        stmt := format('SELECT string_agg(run_id::text, %L) FROM tego.job_claim(%L, %L, 10)', ',',
                       me || '-thief', ARRAY[victim || '-app', victim || '-tick']);
    WHEN op = 21 THEN
        opname := 'job_heartbeat other';
        stmt := format('SELECT tego.job_heartbeat(%L, %L)::text', run.token, run.holder);
    WHEN op = 22 THEN
        opname := 'job_finish other';
        stmt := format('SELECT tego.job_finish(%L, %L, %L, %L)::text', run.token,
                       soak_pick(ARRAY[run.holder, 'evil']), soak_pick(ARRAY['true', 'false']),
                       'pwned by ' || me);
    WHEN op = 23 THEN
        opname := 'job_finish absurd';
        stmt := format('SELECT tego.job_finish(%L, %L, %L, %L)::text',
                       soak_pick(ARRAY[NULL, '-1', '0', '9223372036854775807']),
                       soak_pick(ARRAY[NULL, '', big]), soak_pick(ARRAY[NULL, 'false']), big);
    -- reads: nothing of another role's may show
    WHEN op = 24 THEN
        opname := 'read leases';
        must_fail := false;
        leak := true;
        stmt := format('SELECT string_agg(holder || %L || token, %L) FROM tego.leases WHERE owner <> %L'
                       ' AND (holder IS NOT NULL OR token IS NOT NULL OR session_pid IS NOT NULL)',
                       ':', ',', me);
    WHEN op = 25 THEN
        opname := 'read guards';
        must_fail := false;
        leak := true;
        stmt := format('SELECT string_agg(holder, %L) FROM tego.plugin_operations WHERE owner <> %L'
                       ' AND (holder IS NOT NULL OR session_pid IS NOT NULL)', ',', me);
    WHEN op = 26 THEN
        opname := 'read apps';
        must_fail := false;
        leak := true;
        stmt := format('SELECT string_agg(app, %L) FROM tego.apps WHERE owner <> %L'
                       ' AND (message IS NOT NULL OR error IS NOT NULL OR pid IS NOT NULL)', ',', me);
    WHEN op = 27 THEN
        opname := 'read jobs and runs';
        must_fail := false;
        leak := true;
        stmt := format('SELECT string_agg(name, %L) FROM (SELECT name FROM tego.jobs WHERE username <> %L'
                       ' UNION ALL SELECT job_name FROM tego.job_runs WHERE username <> %L) s', ',', me, me);
    WHEN op = 28 THEN
        opname := 'read events';
        must_fail := false;
        leak := true;
        stmt := 'SELECT string_agg(seq::text, '','') FROM tego.events_since(0, NULL, 100000)'
                ' WHERE payload::text ~ ''(secret|-payload|pwned)''';
    WHEN op = 29 THEN
        opname := 'events_since absurd';
        must_fail := false;
        stmt := format('SELECT count(*)::text FROM tego.events_since(%L, %L, %L)',
                       soak_pick(ARRAY[NULL, '-1', '9223372036854775807']),
                       soak_pick(ARRAY[NULL, '{}', ARRAY[big]::text]),
                       soak_pick(ARRAY[NULL, '0', '-1', '2147483647']));
    WHEN op = 30 THEN
        opname := 'wait_events absurd';
        stmt := format('SELECT count(*)::text FROM tego.wait_events(%L, NULL, %L, %L)',
                       soak_pick(ARRAY['9223372036854775807', '0']),
                       soak_pick(ARRAY[NULL, '2 hours', '-1 second', '178000000 years', '1 mon', '8 days']),
                       soak_pick(ARRAY['1', '2147483647']));
    -- forged notifications: allowed by PostgreSQL, must be harmless
    WHEN op IN (31, 32, 33) THEN
        opname := 'forged NOTIFY ' || chan;
        must_fail := false;
        stmt := format('SELECT pg_notify(%L, %L)::text', chan, soak_pick(ARRAY[
            '{"seq": 9000000000000000, "topic": "tego_plugins", "event": "plugin-state-changed", "key": "soak-p1", "payload": {"action": "remove", "name": "soak-p1", "to": null}}',
            '{"seq": 9223372036854775807, "event": "plugin-state-changed", "key": "soak-core", "action": "disable", "to": "added"}',
            '{"seq": -1}', '{"seq": "NaN"}', '{"seq": 1e308}', '{"seq": null}', '[]', 'null',
            'garbage {{{', '',
            '{"app": "' || vapp || '", "status": "stopped", "owner": "' || me || '", "version": 9000000000}',
            '{"event": "run-due", "key": "' || victim || '-app", "seq": 9000000000000000}',
            '{"event": "leader-changed", "key": "' || victim || '-leader", "holder": "evil", "token": 9000000000}',
            repeat('z', 7900)]));
    WHEN op = 34 THEN
        opname := 'oversize NOTIFY';
        stmt := format('SELECT pg_notify(%L, %L)::text', chan, repeat('z', 9000));
    -- tego's reserved topics, internal functions, built_in
    WHEN op = 35 THEN
        opname := 'publish reserved';
        stmt := format('SELECT tego.publish(%L, %L)::text', chan,
                       '{"action": "remove", "name": "soak-p1", "to": null}');
    WHEN op = 36 THEN
        opname := 'publish absurd';
        stmt := format('SELECT tego.publish(%L, %L)::text', soak_pick(ARRAY[NULL, '', big]), '{}');
    WHEN op = 37 THEN
        opname := 'publish oversize';
        -- over tego.max_publish_bytes (1 MB by default)
        stmt := format('SELECT tego.publish(%L, jsonb_build_object(%L, repeat(%L, %s)))::text',
                       me || '-topic', 'x', 'y', soak_pick(ARRAY[1100000, 2097152]));
    WHEN op = 38 THEN
        opname := 'internal functions';
        stmt := soak_pick(ARRAY[
            'SELECT tego._emit(''tego_plugins'', ''plugin-state-changed'', ''soak-p1'', ''{"action": "remove"}'')::text',
            format('SELECT tego._lease_create(%L)::text', me || '-internal'),
            format('SELECT tego._lease_reclaim(%L, 100)::text', victim),
            'SELECT tego._wake_scheduler()::text',
            'SELECT tego.compact_events()::text',
            'SELECT tego.import_plugins()::text',
            'SELECT count(*)::text FROM tego.lease_state',
            'SELECT count(*)::text FROM tego.plugin_operation_state']);
    WHEN op = 39 THEN
        opname := 'built_in off';
        stmt := soak_pick(ARRAY[
            'SELECT tego.plugin_update(''soak-core'', ''{"built_in": false}'')::text',
            'UPDATE tego."applicationPlugins" SET "builtIn" = false WHERE name = ''soak-core'' RETURNING name']);
    WHEN op = 40 THEN
        opname := 'cron_next absurd';
        stmt := format('SELECT count(*)::text FROM tego.cron_next(%L, now(), %L, %L)',
                       soak_pick(ARRAY['* * * * * *', big, NULL]),
                       soak_pick(ARRAY['UTC', big, NULL]),
                       soak_pick(ARRAY['0', '-1', '1001', '2147483647', NULL]));
    -- plain escalation
    WHEN op IN (41, 42) THEN
        opname := 'escalate';
        stmt := soak_pick(ARRAY[
            format('SET ROLE %I', victim), 'SET ROLE postgres', 'SET SESSION AUTHORIZATION postgres',
            format('GRANT %I TO %I', victim, me), format('GRANT pg_execute_server_program TO %I', me),
            format('ALTER ROLE %I SUPERUSER', me), format('ALTER ROLE %I CREATEROLE BYPASSRLS', me),
            'CREATE ROLE soak_evil SUPERUSER LOGIN',
            format('INSERT INTO public.%I DEFAULT VALUES', victim || '_ticks')]);
    -- legitimate calls on the attacker's own things
    WHEN op = 43 THEN
        opname := 'own publish';
        must_fail := false;
        stmt := format('SELECT tego.publish(%L, %L)::text', me || '-topic', '{"n": 1}');
    WHEN op = 44 THEN
        opname := 'own lease';
        must_fail := false;
        stmt := format('SELECT tego.lease_acquire(%L, %L, %L)::text', me || '-own', me || '-node', '2 seconds');
    ELSE
        opname := 'own app status';
        must_fail := false;
        stmt := format('SELECT tego.app_status_set(%L, %L, %L)::text', me || '-own', 'running', 'own of ' || me);
    END CASE;

    BEGIN
        EXECUTE stmt INTO res;
        outcome := CASE WHEN leak AND res IS NOT NULL THEN 'LEAK'
                        WHEN must_fail THEN 'UNEXPECTED-OK'
                        ELSE 'ok' END;
        msg := left(res, 200);
    EXCEPTION WHEN others THEN
        GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
        outcome := 'refused';
    END;
    INSERT INTO soak_log VALUES (me, opname, outcome, st, left(msg, 300), left(stmt, 400));
END
$fn$;

-- The upkeep of an application role, every few hundred milliseconds: finish
-- the app runs it claimed last time, renew its lease, set its app status,
-- claim its due app runs (held until next time, so that attackers find
-- them running); app1 also changes the registry.
CREATE FUNCTION soak_keep() RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
    me     name := current_user;
    wname  text := current_user || '-worker-secret';
    l      record;
    r      record;
    step   text;
    st     text;
    msg    text;
    p      text := soak_pick(ARRAY['soak-p1', 'soak-p2', 'soak-p3', 'soak-p4']);
BEGIN
    BEGIN
        step := 'job_finish';
        FOR r IN SELECT run_id FROM tego.job_runs
                  WHERE job_name = me || '-app' AND status = 'running' AND worker = wname LOOP
            PERFORM tego.job_heartbeat(r.run_id, wname);
            PERFORM tego.job_finish(r.run_id, wname, true);
        END LOOP;
        step := 'lease_renew';
        SELECT holder, token INTO l FROM tego.leases WHERE name = me || '-leader';
        PERFORM tego.lease_renew(me || '-leader', l.holder, l.token, '1 day');
        step := 'app_status_set';
        PERFORM tego.app_status_set(me || '-main', 'running', 'secret of ' || me);
        step := 'job_claim';
        PERFORM count(*) FROM tego.job_claim(wname, ARRAY[me || '-app'], 5);
    EXCEPTION WHEN others THEN
        GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
        INSERT INTO soak_log VALUES (me, 'keep: ' || step, 'keep-failed', st, msg, NULL);
    END;
    IF me = 'app1' THEN
        BEGIN
            step := soak_pick(ARRAY['add', 'install', 'enable', 'enable', 'disable', 'disable', 'upgrade']);
            IF NOT EXISTS (SELECT 1 FROM tego.plugin_list() WHERE name = p) THEN
                step := 'add';
                PERFORM count(*) FROM tego.plugin_add(p, '@soak/' || p, '1.0.0',
                    depends_on => CASE WHEN p = 'soak-p4' THEN ARRAY['soak-p3'] ELSE '{}' END);
            ELSIF step = 'install' THEN
                PERFORM count(*) FROM tego.plugin_install(p);
            ELSIF step = 'enable' THEN
                PERFORM count(*) FROM tego.plugin_enable(p);
            ELSIF step = 'disable' THEN
                PERFORM count(*) FROM tego.plugin_disable(p);
            ELSIF step = 'upgrade' THEN
                PERFORM count(*) FROM tego.plugin_upgrade(p, '1.' || floor(random() * 100) || '.0');
            END IF;
            INSERT INTO soak_log VALUES (me, 'registry: ' || step, 'ok', NULL, p, NULL);
        EXCEPTION WHEN others THEN
            GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
            INSERT INTO soak_log VALUES (me, 'registry: ' || step, 'refused', st, msg, NULL);
        END;
    END IF;
END
$fn$;
EOSQL

# Each application role's own objects.
for my $r (qw(app1 app2))
{
	$node->safe_psql(
		'postgres', qq{
SELECT count(*) FROM tego.schedule('$r-tick', '* * * * * *', 'INSERT INTO public.${r}_ticks DEFAULT VALUES');
SELECT count(*) FROM tego.schedule_app('$r-app', '* * * * * *', '{"secret": "$r-payload"}',
                                       claim_timeout => '1 hour', heartbeat_timeout => '1 hour');
SELECT count(*) FROM tego.lease_acquire('$r-leader', '$r-node-secret', '1 day');
SELECT tego.app_status_set('$r-main', 'running', 'secret of $r');
},
		extra_params => [ '-U', $r ]);
}
# the guards live as long as the sessions that took them
my %guard_session;
for my $r (qw(app1 app2))
{
	$guard_session{$r} = $node->background_psql('postgres', extra_params => [ '-U', $r ]);
	$guard_session{$r}->query_safe(
		"SELECT count(*) FROM tego.plugin_begin('$r-guarded', 'upgrade', '$r-guard-holder', '1 day')");
}

# What must not change.
my $roles_in = q{('app1', 'app2', 'nobody')};
my $members_sql = qq{
SELECT coalesce(string_agg(g.rolname || ' > ' || m.rolname, ', ' ORDER BY g.rolname, m.rolname), '')
  FROM pg_auth_members a
  JOIN pg_roles g ON g.oid = a.roleid
  JOIN pg_roles m ON m.oid = a.member
 WHERE g.rolname IN $roles_in OR m.rolname IN $roles_in};
my $members_before = $node->safe_psql('postgres', $members_sql);
my $nroles_before = $node->safe_psql('postgres', 'SELECT count(*) FROM pg_roles');
my $owned_sql = q{
SELECT string_agg(x, E'\n' ORDER BY x) FROM (
  SELECT 'lease ' || name || ' ' || owner || ' ' || holder || ' ' || token || ' ' || live AS x FROM tego.leases
   WHERE name IN ('app1-leader', 'app2-leader')
  UNION ALL
  SELECT 'guard ' || name || ' ' || owner || ' ' || holder || ' ' || operation || ' ' || live
    FROM tego.plugin_operations WHERE name IN ('app1-guarded', 'app2-guarded')
  UNION ALL
  SELECT 'app ' || app || ' ' || owner || ' ' || status || ' ' || message || ' ' || coalesce(error, '-')
    FROM tego.apps WHERE app IN ('app1-main', 'app2-main')
  UNION ALL
  SELECT 'job ' || name || ' ' || username || ' ' || schedule || ' ' || active || ' '
         || coalesce(command, payload::text)
    FROM tego.jobs WHERE name IN ('app1-tick', 'app2-tick', 'app1-app', 'app2-app')
) s};
my $owned_before = $node->safe_psql('postgres', $owned_sql);
my @owned = split /\n/, $owned_before;
is(scalar(@owned), 10,
	'each role has its lease, guard, app status and two jobs');

ok( poll_until(
		$node, q{SELECT count(*) = 2 FROM (SELECT DISTINCT job_name FROM tego.job_runs
		          WHERE job_name LIKE '%-tick' AND status = 'succeeded') s}, 30),
	'both per-second jobs run');

# --- the Node.js registry copy -------------------------------------------------------

my $src = $ENV{TEGO_SRC}
  // File::Spec->rel2abs(File::Spec->catdir(dirname(__FILE__), '..', '..'));
my $node_modules = $ENV{TEGO_NODE_MODULES} // "$src/test/node/node_modules";
my $copy_script = "$src/test/node/cluster/registry-copy.js";
my $node_bin = (grep { -x "$_/node" } split /:/, ($ENV{PATH} // ''))[0];
my $node_skip =
	!defined $node_bin ? 'node is not installed'
  : !-d "$node_modules/pg" ? "the pg package is not in $node_modules (npm ci in test/node)"
  : !-f $copy_script ? "$copy_script is missing"
  : '';
my ($copy, $copy_out, $copy_err) = (undef, '', '');
my $copy_state = "$tmp/registry-copy.state";
if ($node_skip eq '')
{
	local $ENV{PGHOST} = $node->host;
	local $ENV{PGPORT} = $node->port;
	local $ENV{PGDATABASE} = 'postgres';
	local $ENV{PGUSER} = 'app1';
	local $ENV{NODE_PATH} = $node_modules;
	$copy = IPC::Run::start([ "$node_bin/node", $copy_script, $copy_state, 300 ],
		'<', \undef, '>', \$copy_out, '2>', \$copy_err);
	my $loaded = 0;
	for (1 .. 300)
	{
		$copy->pump_nb;
		if (-e $copy_state) { $loaded = 1; last; }
		usleep(100_000);
	}
	ok($loaded, 'the Node.js process connected as app1 and loaded its registry copy')
	  or diag("node: $copy_out $copy_err");
}

# --- the soak ---------------------------------------------------------------------------

my $t0 = $node->safe_psql('postgres', 'SELECT now()');
my $seq0 = $node->safe_psql('postgres', 'SELECT tego.event_seq()');
my %bench;

# pgbench: CLIENTS sessions of ROLE run SCRIPT for the soak's length
sub start_bench
{
	my ($name, $role, $clients, $script) = @_;
	my $file = "$tmp/$name.sql";
	open my $fh, '>', $file or die "cannot write $file: $!";
	print $fh $script;
	close $fh;
	my ($out, $err) = ('', '');
	# an attack that waits long is a finding: it ends the session
	local $ENV{PGOPTIONS} = '-c statement_timeout=20s';
	my $h = IPC::Run::start(
		[
			'pgbench', '-n', '-h', $node->host, '-p', $node->port, '-U', $role,
			'-c', $clients, '-T', $soak_secs, '-f', $file, 'postgres'
		],
		'<', \undef, '>', \$out, '2>', \$err);
	$bench{$name} = { h => $h, out => \$out, err => \$err };
}

for my $r (qw(app1 app2 nobody))
{
	start_bench("attack-$r", $r, 2, "SELECT soak_attack();\n\\sleep 15 ms\n");
}
for my $r (qw(app1 app2))
{
	start_bench("keep-$r", $r, 1, "SELECT soak_keep();\n\\sleep 200 ms\n");
}
for my $name (sort keys %bench)
{
	my $bh = $bench{$name};
	my $ok = $bh->{h}->finish;
	ok($ok, "$name: every session lasted the soak (pgbench exit 0)")
	  or diag("exit " . $bh->{h}->full_result . ":\n${$bh->{out}}\n${$bh->{err}}");
}
my $t1 = $node->safe_psql('postgres', 'SELECT now()');
note("soak from $t0 to $t1");

# --- what the soak did --------------------------------------------------------------

my $summary = $node->safe_psql(
	'postgres', q{
SELECT who || ' ' || outcome || ': ' || count(*) FROM soak_log GROUP BY who, outcome ORDER BY 1});
note("attacks and upkeep:\n$summary");
for my $r (qw(app1 app2 nobody))
{
	cmp_ok(
		$node->safe_psql('postgres',
			"SELECT count(*) FROM soak_log WHERE who = '$r' AND op NOT LIKE 'keep%' AND op NOT LIKE 'registry%'"),
		'>=', 100, "$r made at least 100 attacks");
}
is( $node->safe_psql(
		'postgres', q{
SELECT coalesce(string_agg(DISTINCT who || ' ' || op || ': ' || coalesce(message, '') || ' [' || stmt || ']', E'\n'), '')
  FROM (SELECT * FROM soak_log WHERE outcome = 'UNEXPECTED-OK' LIMIT 20) s}),
	'', 'every attack on another role\'s object, and every absurd argument, was refused');
is( $node->safe_psql(
		'postgres', q{
SELECT coalesce(string_agg(DISTINCT who || ' ' || op || ': ' || message || ' [' || stmt || ']', E'\n'), '')
  FROM (SELECT * FROM soak_log WHERE outcome = 'LEAK' LIMIT 20) s}),
	'', 'no read showed another role\'s holders, tokens, runs, messages or payloads');
is( $node->safe_psql(
		'postgres', q{
SELECT coalesce(string_agg(DISTINCT who || ' ' || op || ': ' || sqlstate || ' ' || message, E'\n'), '')
  FROM soak_log WHERE sqlstate LIKE 'XX%' OR sqlstate LIKE '58%'}),
	'', 'no call failed with an internal error');
is( $node->safe_psql(
		'postgres', q{
SELECT coalesce(string_agg(DISTINCT who || ' ' || op || ': ' || sqlstate || ' ' || message, E'\n'), '')
  FROM soak_log WHERE outcome = 'keep-failed'}),
	'', 'the upkeep of each role (lease, app status, app runs) never failed');
cmp_ok(
	$node->safe_psql('postgres',
		"SELECT count(*) FROM tego.events WHERE topic = 'tego_plugins' AND seq > $seq0"),
	'>=', 10, 'app1 changed the registry during the soak');

# --- roles -----------------------------------------------------------------------------

is($node->safe_psql('postgres', $members_sql), $members_before,
	'no membership of app1, app2 or nobody was granted or revoked');
is( $node->safe_psql(
		'postgres', qq{
SELECT coalesce(string_agg(rolname, ', '), '') FROM pg_roles
 WHERE rolname IN $roles_in
   AND (rolsuper OR rolcreaterole OR rolcreatedb OR rolreplication OR rolbypassrls)}),
	'', 'no role became superuser or gained createrole, createdb, replication or bypassrls');
is($node->safe_psql('postgres', 'SELECT count(*) FROM pg_roles'), $nroles_before, 'no role was made');

# --- each role's own work -------------------------------------------------------------

# the runs due before the end of the soak have ended
ok( poll_until(
		$node, qq{
SELECT count(*) = 0 FROM tego.job_runs
 WHERE job_name IN ('app1-tick', 'app2-tick') AND scheduled_for < '$t1'
   AND status IN ('queued', 'pending', 'running')}, 60),
	'the per-second runs due during the soak have ended');
# The window: whole seconds from the end of the warm-up to the end of the
# soak.  Each second needs a succeeded run, but two.
my $window = $node->safe_psql(
	'postgres', qq{
SELECT extract(epoch FROM date_trunc('second', '$t1'::timestamptz)
                          - date_trunc('second', '$t0'::timestamptz + interval '$warmup seconds'))::int});
cmp_ok($window, '>=', $soak_secs - $warmup - 2, "the soak window is $window seconds");
for my $r (qw(app1 app2))
{
	my ($seconds, $runs) = split /\|/, $node->safe_psql(
		'postgres', qq{
SELECT count(DISTINCT scheduled_for) FILTER (WHERE status = 'succeeded'), count(*)
  FROM tego.job_runs
 WHERE job_name = '$r-tick'
   AND scheduled_for >= date_trunc('second', '$t0'::timestamptz + interval '$warmup seconds')
   AND scheduled_for < date_trunc('second', '$t1'::timestamptz)});
	cmp_ok($seconds, '>=', $window - 2,
		"$r-tick succeeded in $seconds of the $window seconds of the window (slack 2)")
	  or diag($node->safe_psql(
		'postgres', qq{
SELECT string_agg(scheduled_for || ' ' || status || ' ' || coalesce(message, ''), E'\n' ORDER BY scheduled_for)
  FROM tego.job_runs WHERE job_name = '$r-tick' AND scheduled_for >= '$t0'}));
	is( $node->safe_psql(
			'postgres', qq{
SELECT coalesce(string_agg(scheduled_for || ' ' || status || ' ' || coalesce(message, ''), E'\n'), '')
  FROM tego.job_runs WHERE job_name = '$r-tick'
   AND status IN ('failed', 'timed_out', 'interrupted')}),
		'', "no run of $r-tick failed");
	is( $node->safe_psql(
			'postgres', "SELECT coalesce(string_agg(DISTINCT who, ','), '') FROM ${r}_ticks"),
		$r, "${r}_ticks was written by $r only");
	is( $node->safe_psql(
			'postgres', qq{
SELECT coalesce(string_agg(run_id || ' ' || status || ' ' || coalesce(worker, '-') || ' ' || coalesce(message, ''), E'\n'), '')
  FROM tego.job_runs WHERE job_name = '$r-app'
   AND (worker IS DISTINCT FROM '$r-worker-secret' AND status NOT IN ('pending', 'skipped')
        OR status IN ('failed', 'timed_out', 'interrupted') OR message LIKE '%pwned%')}),
		'', "every run of $r-app was claimed and finished by $r\'s worker, none failed");
	cmp_ok(
		$node->safe_psql('postgres',
			"SELECT count(*) FROM tego.job_runs WHERE job_name = '$r-app' AND status = 'succeeded'"),
		'>=', 5, "$r\'s worker finished runs of $r-app");
}

is($node->safe_psql('postgres', $owned_sql), $owned_before,
	'each role\'s lease (holder, token), guard, app status and jobs are as they were, and its own');
is( $node->safe_psql(
		'postgres', q{SELECT built_in || ' ' || state FROM tego.plugins WHERE name = 'soak-core'}),
	'true enabled', 'the built-in plugin is still built in and enabled');

# --- the server ---------------------------------------------------------------------------

my $log = slurp_file($node->logfile);
my @crashes = $log =~ /^.*(?:TRAP:|terminated by signal|server process .* was terminated|PANIC:).*$/mg;
is(join("\n", @crashes), '', 'the server log shows no crash');

# --- the Node.js copy ----------------------------------------------------------------------

SKIP:
{
	skip "Node.js registry copy: $node_skip", 5 if $node_skip ne '';

	# wait until the copy has applied the last registry event (it reads the
	# log when notified; a forged notification must not have moved it past)
	my $last = $node->safe_psql('postgres',
		q{SELECT coalesce(max(seq), 0) FROM tego.events WHERE topic = 'tego_plugins'});
	my $state = {};
	for (1 .. 300)
	{
		$copy->pump_nb;
		if (-e $copy_state)
		{
			$state = eval { decode_json(slurp_file($copy_state)) } // {};
			last if ($state->{lastSeq} // -1) >= $last;
		}
		usleep(100_000);
	}
	is($state->{lastSeq}, $last, "the copy reached the last registry event ($last) and not beyond");
	$copy->signal('TERM');
	$copy->finish;
	my $got = eval { decode_json((split /\n/, $copy_out)[-1] // '') };
	ok($got, 'the Node.js process printed its copy') or diag("node: $copy_out\n$copy_err");
	$got //= { plugins => [], stats => {}, errors => [] };
	my $copy_rows = join("\n",
		map { "$_->{name} $_->{state} $_->{revision}" }
		  sort { $a->{name} cmp $b->{name} } @{ $got->{plugins} });
	is($copy_rows,
		$node->safe_psql('postgres',
			q{SELECT string_agg(name || ' ' || state || ' ' || revision, E'\n' ORDER BY name) FROM tego.plugins}),
		'the Node.js copy equals tego.plugins (name, state, revision)');
	note('registry copy stats: ' . encode_json($got->{stats}));
	# one real notification per registry event it applied: more hints than
	# that were forged
	my $real = ($got->{stats}{fromReads} // 0) + ($got->{stats}{caughtUp} // 0);
	cmp_ok($got->{stats}{hints} // 0, '>', $real,
		"it received more notifications on tego_plugins than the $real registry events it applied (forged ones)");
	is(join("\n", @{ $got->{errors} }), '', 'it reported no error');
}

$guard_session{$_}->quit for qw(app1 app2);
$node->stop;
done_testing();
