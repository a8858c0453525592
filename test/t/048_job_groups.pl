# Copyright: the tego authors.  PostgreSQL::Test::Cluster TAP test.
#
# Run groups and their group commit, on a server with default settings
# (tego preloaded, nothing else set):
#  (a) 40 jobs of one role every second, each an INSERT: every run of 5 s
#      succeeds, none is skipped, and no more job workers take them than
#      the role's share of tego.max_running_jobs (3 of 5);
#  (b) group commit: with a synchronous standby named that never connects
#      (and synchronous_commit = local but for the job's role),
#      a job's INSERT commits (other sessions see its row) but its run does
#      not count as finished until the standby requirement is lifted, as a
#      synchronous commit of the role would have waited;
#  (c) with tego.job_group_commit = off the commit itself waits: the row
#      is not visible before the requirement is lifted;
#  (d) a role whose synchronous_commit is off: the run ends at once;
#  (e) one worker (tego.max_running_jobs = 1) runs a group of two runs, the
#      second of which sleeps; stopped during it, the worker still reports
#      the first run, which it committed (not yet reported: group commit),
#      as succeeded.
use strict;
use warnings;

use Time::HiRes qw(sleep usleep time);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use TegoTest;

my $node = PostgreSQL::Test::Cluster->new('job_groups');
# NB: streaming allowed, as by default (wal_level replica, max_wal_senders
# 10); nothing else set
$node->init(allows_streaming => 1);
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'tego'");
$node->start;

sub q1 { return $node->safe_psql('postgres', $_[0]); }

q1(q{
CREATE EXTENSION tego;
CREATE ROLE grouper LOGIN;
CREATE ROLE lazy LOGIN;
ALTER ROLE grouper SET synchronous_commit = on;
ALTER ROLE lazy SET synchronous_commit = off;
GRANT USAGE ON SCHEMA tego TO grouper, lazy;
GRANT EXECUTE ON FUNCTION
    tego.schedule(text, text, text, name, name, text, interval, text, text, boolean),
    tego.unschedule(text), tego.run_now(text)
  TO grouper, lazy;
CREATE TABLE sink (id bigserial PRIMARY KEY, job text NOT NULL);
GRANT SELECT, INSERT ON sink TO grouper, lazy;
GRANT USAGE ON SEQUENCE sink_id_seq TO grouper, lazy;
});

sub as_role
{
	my ($role, $sql) = @_;
	return q1("SET ROLE $role;\n$sql");
}

# ---------------------------------------------------------------------------
# (a) 40 jobs every second, defaults
# ---------------------------------------------------------------------------

as_role('grouper', join('', map {
	"SELECT 1 FROM tego.schedule('tick$_', '* * * * * *', \$\$INSERT INTO public.sink (job) VALUES ('tick$_')\$\$);\n"
} 1 .. 40));
my $from = q1(q{SELECT date_trunc('second', now()) + interval '2 s'});
my %workers;
my $end = time + 7;
while (time < $end)
{
	$workers{$_} = 1 for split /\n/, q1(q{SELECT pid FROM pg_stat_activity
                  WHERE backend_type = 'tego job' AND usename = 'grouper'});
	usleep(50_000);
}
my $until = "'$from'::timestamptz + interval '5 s'";
is(q1(qq{SELECT count(*) FROM tego.job_runs
          WHERE scheduled_for >= '$from' AND scheduled_for < $until
            AND status = 'succeeded'}), '200',
	'40 jobs x 5 seconds: 200 runs succeeded');
is(q1(qq{SELECT count(*) FROM tego.job_runs
          WHERE scheduled_for >= '$from' AND scheduled_for < $until
            AND status <> 'succeeded'}), '0', 'none was skipped or failed');
is(q1(qq{SELECT count(*) FROM sink WHERE job LIKE 'tick%'}) >= 200 ? 'yes' : 'no', 'yes',
	'and their rows are in the table');
my $nworkers = scalar(keys %workers);
ok($nworkers >= 1 && $nworkers <= 3,
	"the runs were taken by at most 3 job workers (the role's share of 5; seen: $nworkers)");
# NB: unscheduling deletes a job's runs: read them first
as_role('grouper', join('', map { "SELECT tego.unschedule('tick$_');\n" } 1 .. 40));
sleep(1.5);    # the runs handed over before are over

# ---------------------------------------------------------------------------
# (b) group commit waits for the standby before the run counts as finished
# ---------------------------------------------------------------------------

# NB: every other commit (the scheduler's, this script's) must not wait for
# the standby: synchronous_commit = local but for the job role grouper
q1(q{ALTER SYSTEM SET synchronous_commit = local});
q1(q{ALTER SYSTEM SET synchronous_standby_names = 'nosuch'});
q1(q{SELECT pg_reload_conf()});
sleep(0.5);    # the checkpointer publishes the setting

# run_now: the run is queued and handed over at once
sub start_run
{
	my ($role, $name) = @_;
	as_role($role, qq{
SELECT 1 FROM tego.schedule('$name', '0 0 1 1 *', \$\$INSERT INTO public.sink (job) VALUES ('$name')\$\$);
SELECT tego.run_now('$name');});
}

sub lift_standby
{
	q1(q{ALTER SYSTEM RESET synchronous_standby_names});
	q1(q{SELECT pg_reload_conf()});
}

start_run('grouper', 'grouped');
ok(poll_until($node, q{SELECT count(*) = 1 FROM sink WHERE job = 'grouped'}, 10),
	'group commit: the row of the run is visible before the standby has it');
sleep(1);
is(q1(q{SELECT status FROM tego.job_runs WHERE job_name = 'grouped'}), 'running',
	'but the run is still running a second later: it waits for the standby');
lift_standby();
ok(poll_until($node, q{SELECT status = 'succeeded' FROM tego.job_runs WHERE job_name = 'grouped'}, 10),
	'once the standby is no longer required, the run succeeded');

# ---------------------------------------------------------------------------
# (c) without group commit, the commit itself waits
# ---------------------------------------------------------------------------

q1(q{ALTER SYSTEM SET tego.job_group_commit = off});
q1(q{ALTER SYSTEM SET synchronous_standby_names = 'nosuch'});
q1(q{SELECT pg_reload_conf()});
sleep(0.5);
start_run('grouper', 'single');
sleep(1.5);
is(q1(q{SELECT count(*) FROM sink WHERE job = 'single'}), '0',
	'tego.job_group_commit = off: the row is not visible while the commit waits for the standby');
is(q1(q{SELECT status FROM tego.job_runs WHERE job_name = 'single'}), 'running',
	'and the run is running');
lift_standby();
ok(poll_until($node, q{SELECT status = 'succeeded' FROM tego.job_runs WHERE job_name = 'single'}, 10),
	'once the standby is no longer required, the run succeeded');
is(q1(q{SELECT count(*) FROM sink WHERE job = 'single'}), '1', 'and its row is there');
q1(q{ALTER SYSTEM RESET tego.job_group_commit});

# ---------------------------------------------------------------------------
# (d) the role's own synchronous_commit = off
# ---------------------------------------------------------------------------

q1(q{ALTER SYSTEM SET synchronous_standby_names = 'nosuch'});
q1(q{SELECT pg_reload_conf()});
sleep(0.5);
start_run('lazy', 'lazy_run');
ok(poll_until($node, q{SELECT status = 'succeeded' FROM tego.job_runs WHERE job_name = 'lazy_run'}, 10),
	'a role with synchronous_commit = off: its run ends without waiting for the standby');
lift_standby();

# ---------------------------------------------------------------------------
# (e) a worker stopped with a committed run not yet reported
# ---------------------------------------------------------------------------

q1(q{ALTER SYSTEM SET tego.max_running_jobs = 1});
q1(q{SELECT pg_reload_conf()});
sleep(0.5);
# two jobs every second, same command: a group of two runs each second, one
# worker; the run that comes second in the group sees the first one's row
# (committed, not yet reported) and sleeps
my $cmd = q{INSERT INTO public.sink (job) VALUES ('e');
SELECT pg_sleep(CASE WHEN (SELECT count(*) FROM public.sink WHERE job = 'e') >= 2 THEN 60 ELSE 0 END)};
as_role('grouper', qq{
BEGIN;
SELECT 1 FROM tego.schedule('e1', '* * * * * *', \$\$$cmd\$\$);
SELECT 1 FROM tego.schedule('e2', '* * * * * *', \$\$$cmd\$\$);
COMMIT;
});
ok(poll_until($node, q{SELECT count(*) = 1 FROM pg_stat_activity
                        WHERE backend_type = 'tego job' AND state = 'active'
                          AND query LIKE '%pg_sleep(CASE%'}, 20),
	'the second run of the group is running (asleep)');
my $t = q1(q{SELECT min(scheduled_for) FROM tego.job_runs WHERE job_name IN ('e1', 'e2')});
is(q1(q{SELECT count(*) FROM sink WHERE job = 'e'}), '1',
	'the first run has committed its row (the sleeping one has not)');
q1(q{SELECT pg_terminate_backend(pid) FROM pg_stat_activity
      WHERE backend_type = 'tego job' AND query LIKE '%pg_sleep(CASE%'});
ok(poll_until($node, qq{SELECT count(*) = 2 FROM tego.job_runs
                        WHERE job_name IN ('e1', 'e2') AND scheduled_for = '$t'
                          AND finished_at IS NOT NULL}, 30),
	'both runs of the group are recorded after the worker stopped');
is(q1(qq{SELECT string_agg(status, ', ' ORDER BY status) FROM tego.job_runs
          WHERE job_name IN ('e1', 'e2') AND scheduled_for = '$t'}),
	'failed, succeeded',
	'the run that the stopped worker had committed but not reported is recorded succeeded');
as_role('grouper', q{SELECT tego.unschedule('e1'), tego.unschedule('e2')});

$node->stop;
done_testing();
