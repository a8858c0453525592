# Copyright: the tego authors.  PostgreSQL::Test::Cluster TAP test.
#
# Security of jobs, the registry and the scheduler, attacked by an
# application role holding only the README's grants (app1), a second one
# (app2), and a role with no tego grants (nobody).  One part per finding:
#
#   1. a job cannot schedule jobs as a role its owner could not schedule
#      for directly (a predefined role, another application role); inside
#      a job, session_user and current_user are the job's role
#   2. the scheduler's own SQL cannot reach an operator an application role
#      defines in public of the scheduler's database
#   3. import_plugins evaluates the source's expressions as the caller
#   4. absurd intervals are refused; a job row the scheduler cannot use
#      does not stop another role's jobs
#   5. a job does not run in a database its role may not connect to, nor
#      as a role without LOGIN
#   7. runs of another role's jobs cannot be heartbeated or finished, the
#      error does not name the worker, and app-job payloads stay out of
#      the event log (and so out of every notification)
#   8. built_in can be changed only by a superuser or the extension owner
#   9. one role's long jobs leave running-job slots for another role
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use TegoTest;

my $node = PostgreSQL::Test::Cluster->new('security_jobs');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'tego'
max_worker_processes = 24
tego.max_running_jobs = 4
});
$node->start;


$node->safe_psql('postgres', q{
CREATE EXTENSION tego;
CREATE ROLE app1 LOGIN;
CREATE ROLE app2 LOGIN;
CREATE ROLE nobody LOGIN;
CREATE ROLE app1_nologin NOLOGIN;
GRANT app1_nologin TO app1;
CREATE TABLE seen (what text, who text, session_who text);
GRANT INSERT ON seen TO app1, app2, app1_nologin;
CREATE TABLE app2_secret (s text);
INSERT INTO app2_secret VALUES ('only app2 reads this');
GRANT SELECT ON app2_secret TO app2;
CREATE TABLE ticks (who text, at timestamptz DEFAULT clock_timestamp());
GRANT INSERT ON ticks TO app1, app2;
CREATE DATABASE db3;
REVOKE CONNECT ON DATABASE db3 FROM PUBLIC;
});
$node->safe_psql('postgres', app_grants($_)) for qw(app1 app2);

sub q1 { return $node->safe_psql('postgres', $_[0]); }

# as_role(ROLE, SQL): run SQL connected as ROLE; returns (stdout, stderr)
# with the SQLSTATE in every error line (VERBOSITY verbose).
sub as_role
{
	my ($role, $sql) = @_;
	my ($out, $err) = ('', '');
	$node->psql('postgres', "\\set VERBOSITY verbose\n$sql",
		stdout => \$out, stderr => \$err,
		extra_params => [ '-U', $role ]);
	return ($out, $err);
}

# run_job(ROLE, NAME, COMMAND [, DATABASE]): schedule a SQL job as ROLE that
# is not due for a long time, run it now, wait for its run to end; returns
# the run's "status|message".
my $far = '0 0 1 1 *';
sub run_job
{
	my ($role, $name, $command, $db) = @_;
	$db //= 'postgres';
	my ($out, $err) = as_role($role, qq{
SELECT job_id FROM tego.schedule('$name', '$far', \$cmd\$$command\$cmd\$, database => '$db');
SELECT tego.run_now('$name');});
	die "could not schedule $name: $err" if $err =~ /ERROR/;
	poll_until($node, qq{SELECT count(*) = 1 FROM tego.job_runs
	                      WHERE job_name = '$name' AND finished_at IS NOT NULL}, 30)
	  or diag("the run of $name did not end");
	return q1(qq{SELECT status || '|' || coalesce(message, '') FROM tego.job_runs
	             WHERE job_name = '$name'});
}

# ---------------------------------------------------------------------------
# 1. a job is its owner's session, and schedules only as its owner could
# ---------------------------------------------------------------------------

my $r = run_job('app1', 'who', q{INSERT INTO seen SELECT 'who', current_user, session_user});
like($r, qr/^succeeded\|/, 'a job of app1 ran');
is(q1(q{SELECT who || ' ' || session_who FROM seen WHERE what = 'who'}), 'app1 app1',
	'inside the job, current_user and session_user are the job\'s role');

$r = run_job('app1', 'chain-predefined', q{
SELECT tego.schedule('escalate', '* * * * *',
    $c$COPY (SELECT 1) TO PROGRAM 'true'$c$, username => 'pg_execute_server_program')});
like($r, qr/^failed\|42501: permission denied to schedule jobs as role "pg_execute_server_program"/,
	'a job cannot schedule a job as a predefined role its owner is not a member of');
$r = run_job('app1', 'chain-other', q{
SELECT tego.schedule('steal', '* * * * *',
    $c$INSERT INTO seen SELECT 'stolen', s, '' FROM app2_secret$c$, username => 'app2')});
like($r, qr/^failed\|42501: permission denied to schedule jobs as role "app2"/,
	'a job cannot schedule a job as another application role');
is(q1(q{SELECT count(*) FROM tego.jobs WHERE name IN ('escalate', 'steal')}), '0',
	'neither job exists');
is(q1(q{SELECT rolsuper FROM pg_roles WHERE rolname = 'app1'}), 'f', 'app1 is no superuser');

# ---------------------------------------------------------------------------
# 2. the scheduler's SQL does not resolve names through public
# ---------------------------------------------------------------------------

$node->safe_psql('postgres', q{
GRANT CREATE ON SCHEMA public TO app1;
CREATE TABLE pwned (who text);
GRANT INSERT ON pwned TO PUBLIC;});
my ($out, $err) = as_role('app1', q{
CREATE FUNCTION public.cat_interval(t text, i interval) RETURNS text
LANGUAGE plpgsql AS $f$
BEGIN
    INSERT INTO public.pwned VALUES (current_user);
    RETURN t || i::text;
END
$f$;
CREATE OPERATOR public.|| (LEFTARG = text, RIGHTARG = interval, FUNCTION = public.cat_interval);
SELECT job_id FROM tego.schedule_app('unclaimed', '0 0 1 1 *', '{}',
    claim_timeout => '1 second', max_attempts => 2);
SELECT tego.run_now('unclaimed');});
is($err, '', 'app1 defined an operator text || interval in public');
ok(poll_until($node, q{SELECT count(*) = 1 FROM tego.job_runs
                        WHERE job_name = 'unclaimed' AND status = 'failed'}, 30),
	'the unclaimed app run expired twice (the scheduler wrote "not claimed within ...")');
is(q1(q{SELECT count(*) FROM pwned}), '0', 'the scheduler never called the operator of public');
is(q1(q{SELECT rolsuper FROM pg_roles WHERE rolname = 'app1'}), 'f', 'app1 is no superuser');

# ---------------------------------------------------------------------------
# 3. import_plugins reads its source as the caller
# ---------------------------------------------------------------------------

$node->safe_psql('postgres',
	'GRANT EXECUTE ON FUNCTION tego.import_plugins(regclass) TO app1');
($out, $err) = as_role('app1', q{
CREATE FUNCTION public.plugin_name() RETURNS text
LANGUAGE plpgsql AS $f$
BEGIN
    INSERT INTO public.pwned VALUES (current_user);
    RETURN 'from-view';
END
$f$;
CREATE TEMP VIEW source AS
SELECT 1 AS id, public.plugin_name() AS name, NULL::text AS "packageName",
       '1.0.0'::text AS version, false AS enabled, false AS installed,
       false AS "builtIn", '{}'::jsonb AS options, true AS "subView";
SELECT added FROM tego.import_plugins('pg_temp.source');});
is($out, '1', 'the import through a view of app1 added its row');
is(q1(q{SELECT count(*) > 0 AND bool_and(who = 'app1') FROM pwned}), 't',
	'the view\'s function ran as app1, not as the extension\'s owner');

# ---------------------------------------------------------------------------
# 4. bounds, and one bad row does not stop the scheduler
# ---------------------------------------------------------------------------

($out, $err) = as_role('app1', q{
SELECT tego.schedule_app('forever', '* * * * *', '{}', claim_timeout => '178000000 years');});
like($err, qr/22023: claim_timeout must be at most 1 day/, 'an absurd claim_timeout is refused');
($out, $err) = as_role('app1', q{
SELECT tego.schedule_app('month', '* * * * *', '{}', heartbeat_timeout => '1 month -30 days 00:00:01');});
like($err, qr/22023: heartbeat_timeout must not have a month or year part/,
	'an interval that compares as a second but adds up to a day is refused');
($out, $err) = as_role('app1', q{
SELECT tego.schedule('long', '* * * * *', 'SELECT 1', max_runtime => '100 years');});
like($err, qr/22023: max_runtime must be at most 7 days/, 'an absurd max_runtime is refused');

# a row written past the API (here by the superuser) with an absurd
# claim_timeout and a pending run, beside app2's job that ticks every second
q1(q{SELECT job_id FROM tego.schedule_app('bad-row', '0 0 1 1 *', '{}', username => 'app1')});
q1(q{UPDATE tego.jobs SET claim_timeout = '178000000 years' WHERE name = 'bad-row'});
q1(q{SELECT tego.run_now('bad-row')});
as_role('app2', q{SELECT job_id FROM tego.schedule('tick2', '* * * * * *',
    $$INSERT INTO ticks (who) VALUES ('app2')$$)});
ok(poll_until($node, q{SELECT count(*) >= 4 FROM ticks WHERE who = 'app2'}, 20),
	'app2\'s every-second job keeps running beside a job row with an absurd interval');
is(q1(q{SELECT status FROM tego.job_runs WHERE job_name = 'bad-row'}), 'pending',
	'the bad row\'s run is pending (its deadline is capped, not overflowed)');
my $log = slurp_file($node->logfile);
unlike($log, qr/timestamp out of range/, 'no scheduler pass failed with "timestamp out of range"');
as_role('app2', q{SELECT tego.unschedule('tick2')});

# ---------------------------------------------------------------------------
# 5. a job connects as a login of its role would
# ---------------------------------------------------------------------------

$r = run_job('app1', 'in-db3', q{CREATE TABLE made_in_db3 ()}, 'db3');
like($r, qr/^failed\|permission denied for database "db3": role "app1" does not have CONNECT privilege/,
	'a job does not run in a database its role may not connect to');
is($node->safe_psql('db3', q{SELECT count(*) FROM pg_class WHERE relname = 'made_in_db3'}), '0',
	'nothing was done in db3');
($out, $err) = as_role('app1', q{
SELECT job_id FROM tego.schedule('nologin', '0 0 1 1 *', $$INSERT INTO seen VALUES ('nologin', current_user, session_user)$$,
    username => 'app1_nologin');
SELECT tego.run_now('nologin');});
ok(poll_until($node, q{SELECT count(*) = 1 FROM tego.job_runs
                        WHERE job_name = 'nologin' AND finished_at IS NOT NULL}, 30),
	'the run of a job of a NOLOGIN role ended');
like(q1(q{SELECT status || '|' || message FROM tego.job_runs WHERE job_name = 'nologin'}),
	qr/^failed\|role "app1_nologin" is not permitted to log in/,
	'a job of a role without LOGIN does not run');
is(q1(q{SELECT count(*) FROM seen WHERE what = 'nologin'}), '0', 'its command did nothing');

# ---------------------------------------------------------------------------
# 7. runs and payloads of app jobs stay with their role
# ---------------------------------------------------------------------------

as_role('app1', q{
SELECT job_id FROM tego.schedule_app('digest', '0 0 1 1 *', '{"secret": "s3cr3t-payload"}');
SELECT tego.run_now('digest');});
ok(poll_until($node, q{SELECT status = 'pending' FROM tego.job_runs WHERE job_name = 'digest'}, 20),
	'app1\'s app run is pending');
($out, $err) = as_role('app2', q{SELECT count(*) FROM tego.job_claim('w-app2')});
is($out, '0', 'app2 cannot claim app1\'s run');
($out, $err) = as_role('app1', q{SELECT run_id FROM tego.job_claim('w-app1-secret-name', ARRAY['digest'])});
my $run = $out;
ok($run > 0, 'app1 claimed its run');
($out, $err) = as_role('app2', qq{SELECT tego.job_heartbeat($run, 'w-app2')});
like($err, qr/42501: permission denied for job run $run/, 'app2 cannot heartbeat app1\'s run');
($out, $err) = as_role('app2', qq{SELECT tego.job_finish($run, 'w-app1-secret-name', false)});
like($err, qr/42501: permission denied for job run $run/,
	'app2 cannot finish app1\'s run, even with its worker\'s name');
($out, $err) = as_role('app1', qq{SELECT tego.job_heartbeat($run, 'w-other')});
like($err, qr/55000: job run $run is not held by worker "w-other"/, 'a wrong worker is refused');
unlike($err, qr/w-app1-secret-name/, 'the error does not name the worker that holds it');
is(q1(qq{SELECT status FROM tego.job_runs WHERE run_id = $run}), 'running',
	'the run is still app1\'s');
is(q1(q{SELECT count(*) FROM tego.events WHERE payload::text LIKE '%s3cr3t-payload%'}), '0',
	'the app job\'s payload is in no event (so in no notification)');
is(q1(q{SELECT count(*) FROM tego.events WHERE topic = 'tego_jobs' AND event = 'run-due'
          AND key = 'digest'}), '1', 'the run was announced');

# ---------------------------------------------------------------------------
# 8. built_in
# ---------------------------------------------------------------------------

($out, $err) = as_role('app1', q{SELECT name FROM tego.plugin_add('core', built_in => true)});
is($out, 'core', 'an application role may add a built-in plugin');
($out, $err) = as_role('app1', q{SELECT name FROM tego.plugin_update('core', '{"built_in": false}')});
like($err, qr/42501: permission denied to change built_in of plugin "core"/,
	'plugin_update cannot unmark a built-in plugin');
($out, $err) = as_role('app1', q{UPDATE tego."applicationPlugins" SET "builtIn" = false WHERE name = 'core'});
like($err, qr/42501: permission denied to change built_in of plugin "core"/,
	'neither can an UPDATE through the view');
($out, $err) = as_role('app1', q{SELECT name FROM tego.plugin_remove(ARRAY['core'])});
like($err, qr/ERROR/, 'so the plugin cannot be removed');
is(q1(q{SELECT built_in FROM tego.plugins WHERE name = 'core'}), 't', 'it is still built-in');
is(q1(q{SELECT count(*) FROM tego.plugin_update('core', '{"built_in": false}')}), '1',
	'the superuser may unmark it');

# ---------------------------------------------------------------------------
# 9. one role's long jobs leave running-job slots to another role
# ---------------------------------------------------------------------------

for my $i (1 .. 4)
{
	as_role('app1', qq{
SELECT job_id FROM tego.schedule('sleep$i', '$far', 'SELECT pg_sleep(60)', max_runtime => '40 seconds');
SELECT tego.run_now('sleep$i');});
}
ok(poll_until($node, q{SELECT count(*) >= 2 FROM pg_stat_activity WHERE backend_type = 'tego job'
                        AND state = 'active' AND query LIKE '%pg_sleep(60)%'}, 20),
	'app1\'s long jobs are running');
$r = run_job('app2', 'quick', q{INSERT INTO ticks (who) VALUES ('quick')});
like($r, qr/^succeeded\|/, 'app2\'s job ran while app1\'s long jobs were running');
is(q1(q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'tego job'
          AND state = 'active' AND query LIKE '%pg_sleep(60)%'}),
	'2', 'app1 holds half of tego.max_running_jobs (4), not all of it');
q1(q{SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(60)%'
       AND backend_type = 'tego job'});

is(q1(q{SELECT string_agg(rolname, ',' ORDER BY rolname) FROM pg_roles
         WHERE rolsuper AND rolname IN ('app1', 'app2', 'nobody')}), '',
	'no application role became superuser');

$node->stop;
done_testing();
