# Copyright: the tego authors.  PostgreSQL::Test::Cluster TAP test.
#
# The scheduler killed with SIGKILL: the postmaster restarts the whole
# cluster (crash recovery), a new scheduler starts, the run that was
# 'running' when the cluster went down becomes 'interrupted', no scheduled
# time is run twice, and the schedule goes on, on the same grid.  Also: the
# scheduler killed while idle, and how long until the next job fires.
use strict;
use warnings;

use Time::HiRes qw(usleep time);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use TegoTest;

my $node = PostgreSQL::Test::Cluster->new('sched_crash');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'tego'
restart_after_crash = on
});
$node->start;
$node->safe_psql(
	'postgres', q{
CREATE EXTENSION tego;
CREATE ROLE tego_job LOGIN;
});


# One value from the server, retrying while the cluster restarts.
sub q1
{
	my ($query) = @_;
	my $deadline = time + 60;
	while (1)
	{
		my ($out, $err) = ('', '');
		my $rc = $node->psql('postgres', $query, stdout => \$out, stderr => \$err);
		return $out if $rc == 0;
		die "query failed: $query\n$err" if time > $deadline;
		usleep(100_000);
	}
}

sub scheduler_pid
{
	return q1(q{SELECT coalesce(max(pid), 0) FROM pg_stat_activity
                 WHERE backend_type = 'tego scheduler'});
}

ok(poll_until($node, q{SELECT count(*) = 1 FROM pg_stat_activity
                 WHERE backend_type = 'tego scheduler'}, 30),
	'one scheduler is running');

# ---------------------------------------------------------------------------
# 1. SIGKILL while a job runs
# ---------------------------------------------------------------------------

q1(q{SELECT 1 FROM tego.schedule('slow', '*/2 * * * * *', 'SELECT pg_sleep(30)',
       username => 'tego_job', overlap => 'skip')});

# a run is 'running' and its worker is inside pg_sleep
ok( poll_until($node, 
		q{SELECT count(*) = 1 FROM tego.job_runs r
           WHERE r.job_name = 'slow' AND r.status = 'running'
             AND EXISTS (SELECT 1 FROM pg_stat_activity a
                          WHERE a.backend_type = 'tego job' AND a.state = 'active'
                            AND a.query LIKE '%pg_sleep%')
             AND EXISTS (SELECT 1 FROM tego.job_runs s
                          WHERE s.job_name = 'slow' AND s.status = 'skipped'
                            AND s.scheduled_for > r.scheduled_for)}, 20),
	'a run of the slow job is running, and a later time was skipped');
my ($old_run, $old_sched) = split /\|/,
  q1(q{SELECT run_id, extract(epoch FROM scheduled_for)::bigint
         FROM tego.job_runs WHERE job_name = 'slow' AND status = 'running'});
my $pid1 = scheduler_pid();
ok($pid1 > 0, "scheduler pid $pid1");

my $killed_at = time;
note("kill -9 $pid1 while run $old_run (scheduled for $old_sched) runs");
is(kill('KILL', $pid1), 1, 'scheduler killed with SIGKILL');

my $pid2;
ok( poll_until($node, 
		qq{SELECT count(*) = 1 FROM pg_stat_activity
            WHERE backend_type = 'tego scheduler' AND pid <> $pid1}, 60),
	'a new scheduler started after the crash restart');
my $restart_secs = time - $killed_at;
$pid2 = scheduler_pid();
diag(sprintf('new scheduler (pid %d) %.2f s after the kill', $pid2, $restart_secs));
isnt($pid2, $pid1, 'the scheduler has a new pid');
$node->wait_for_log(qr/terminated by signal 9: Killed/);
pass('the server log reports the crash (signal 9)');
like(
	slurp_file($node->logfile),
	qr/all server processes terminated; reinitializing/,
	'the postmaster reinitialized the cluster');

ok( poll_until($node, 
		qq{SELECT status FROM tego.job_runs WHERE run_id = $old_run}, 20,
		'interrupted'),
	"the run that was running (run $old_run) is 'interrupted'");
like(q1(qq{SELECT message FROM tego.job_runs WHERE run_id = $old_run}),
	qr/stopped while the job ran/, 'with a message saying why');
is(q1(qq{SELECT finished_at IS NOT NULL FROM tego.job_runs WHERE run_id = $old_run}),
	't', 'and a finish time');

# the schedule continues: a run after the restart is running
ok( poll_until($node, 
		qq{SELECT count(*) > 0 FROM tego.job_runs
            WHERE job_name = 'slow' AND status = 'running'
              AND scheduled_for > to_timestamp($old_sched)
              AND created_at > to_timestamp($killed_at)
              AND EXISTS (SELECT 1 FROM tego.job_runs s
                           WHERE s.job_name = 'slow' AND s.status = 'skipped'
                             AND s.created_at > to_timestamp($killed_at))}, 20),
	'a new run started after the restart, and later times are skipped again');

my $hist = q1(
	q{SELECT extract(epoch FROM scheduled_for)::bigint, status, run_id
        FROM tego.job_runs WHERE job_name = 'slow' ORDER BY scheduled_for});
note("runs of 'slow' (scheduled_for|status|run_id):\n$hist");
my @h = map { [ split /\|/ ] } split /\n/, $hist;
is( q1(
		q{SELECT count(*) FROM (SELECT scheduled_for FROM tego.job_runs
                                 WHERE job_name = 'slow'
                                 GROUP BY scheduled_for HAVING count(*) > 1) d}),
	0,
	'one run per scheduled_for');
is(scalar(grep { $_->[0] % 2 != 0 } @h), 0,
	'every scheduled_for is on the 2-second grid');
my @after = grep { $_->[0] > $old_sched } @h;
cmp_ok(scalar(@after), '>=', 1, 'runs scheduled after the crashed one exist');
my @steps = map { $h[$_][0] - $h[ $_ - 1 ][0] } 1 .. $#h;
is_deeply([ grep { $_ != 2 } @steps ], [],
	'scheduled times continue every 2 s across the restart (no gap, no repeat)')
  or diag("steps: @steps");
is(scalar(grep { $_->[1] eq 'running' } @h), 1, 'exactly one run is running now');
is(scalar(grep { $_->[1] eq 'interrupted' } @h), 1, 'exactly one run was interrupted');
is_deeply([ map { "$_->[0] $_->[1]" } grep { $_->[1] !~ /^(?:interrupted|running|skipped)$/ } @h ],
	[], 'every other run was skipped (overlap skip)');

# stop the sleeping job and its worker (SIGTERM: not a crash)
q1(q{SELECT tego.unschedule('slow')});
q1(q{SELECT pg_terminate_backend(pid) FROM pg_stat_activity
      WHERE backend_type = 'tego job'});
ok(poll_until($node, q{SELECT count(*) = 0 FROM pg_stat_activity
                 WHERE backend_type = 'tego job'}, 20),
	'no job worker left');

# ---------------------------------------------------------------------------
# 2. SIGKILL while the scheduler is idle
# ---------------------------------------------------------------------------

q1(q{SELECT 1 FROM tego.schedule('every5', '*/5 * * * * *', 'SELECT 1',
       username => 'tego_job')});
ok( poll_until($node, 
		q{SELECT count(*) > 0 FROM tego.job_runs
           WHERE job_name = 'every5' AND status = 'succeeded'}, 20),
	'the every-5-seconds job ran');

# kill right after a run, when the scheduler sleeps until the next one
ok( poll_until($node, 
		q{SELECT (SELECT count(*) FROM pg_stat_activity
                   WHERE (backend_type = 'tego job' AND state <> 'idle')
                      OR (backend_type = 'tego scheduler' AND state <> 'idle')) = 0
             AND (SELECT count(*) FROM tego.job_runs
                   WHERE job_name = 'every5' AND status IN ('queued', 'running')) = 0}, 10),
	'the scheduler is idle and no job runs (an idle job worker may wait in the pool)');
my $pid3 = scheduler_pid();
my $last_before = q1(q{SELECT max(run_id) FROM tego.job_runs WHERE job_name = 'every5'});
$killed_at = time;
is(kill('KILL', $pid3), 1, "idle scheduler (pid $pid3) killed with SIGKILL");
ok( poll_until($node, 
		qq{SELECT count(*) = 1 FROM pg_stat_activity
            WHERE backend_type = 'tego scheduler' AND pid <> $pid3}, 60),
	'a new scheduler started');
my $sched_back = time - $killed_at;
ok( poll_until($node, 
		qq{SELECT count(*) > 0 FROM tego.job_runs
            WHERE job_name = 'every5' AND run_id > $last_before
              AND status = 'succeeded'}, 30),
	'the job fired again after the restart');
my $fired_back = time - $killed_at;
my ($first_sched, $first_start) = split /\|/, q1(
	qq{SELECT extract(epoch FROM scheduled_for), extract(epoch FROM started_at)
         FROM tego.job_runs WHERE job_name = 'every5' AND run_id > $last_before
        ORDER BY scheduled_for LIMIT 1});
diag(sprintf(
		'idle kill: new scheduler after %.2f s; next fire scheduled %.2f s after the kill, '
		  . 'started %.3f s after its time; seen succeeded %.2f s after the kill',
		$sched_back, $first_sched - $killed_at, $first_start - $first_sched,
		$fired_back));
cmp_ok($first_start - $killed_at, '<', 15, 'the next run started within 15 s of the kill');
is( q1(
		q{SELECT count(*) = count(DISTINCT scheduled_for)
                AND bool_and(extract(epoch FROM scheduled_for)::bigint % 5 = 0)
             FROM tego.job_runs WHERE job_name = 'every5'}),
	't',
	'every5: one run per scheduled time, all on the 5-second grid');

$node->stop('fast');
done_testing();
