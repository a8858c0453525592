# Copyright: the tego authors.  PostgreSQL::Test::Cluster TAP test.
#
# The scheduler at one-second resolution: a `* * * * * *` SQL job fires
# exactly once per scheduled second (no gap, no duplicate, every run
# succeeded, each run's row written by that run), and each run starts close
# to its scheduled second (the drift is reported; asserted below 1 s so a
# loaded machine does not make the test flaky).  A job whose SQL fails is
# recorded as 'failed' with the SQLSTATE and message, and the next second
# still fires.  A job that outlives its max_runtime ends 'timed_out'.
# Runs due at the same second start together, even when each takes a
# while, and one failing does not stop the others; a job worker stopped
# in the middle of a run has that run recorded as failed, the others not.
use strict;
use warnings;

use Time::HiRes qw(usleep time);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use TegoTest;

my $window = 6;    # scheduled seconds observed (>= 5 whole seconds between them)

my $node = PostgreSQL::Test::Cluster->new('sched_seconds');
$node->init;
$node->append_conf(
	'postgresql.conf', qq{
shared_preload_libraries = 'tego'
max_worker_processes = 16
tego.max_running_jobs = 10
tego.max_running_jobs_per_role = 10
});
$node->start;
$node->safe_psql(
	'postgres', q{
CREATE EXTENSION tego;
CREATE ROLE tego_job LOGIN;
CREATE TABLE ticks (ts timestamptz NOT NULL);
GRANT INSERT ON ticks TO tego_job;
});


sub q1 { return $node->safe_psql('postgres', $_[0]); }

# ---------------------------------------------------------------------------
# 1. one run per second, on time
# ---------------------------------------------------------------------------

q1(q{SELECT job_id FROM tego.schedule('tick', '* * * * * *',
       'INSERT INTO ticks VALUES (clock_timestamp())', username => 'tego_job')});
my $job = q1(q{SELECT job_id FROM tego.jobs WHERE name = 'tick'});

ok(poll_until($node, q{SELECT count(*) > 0 FROM tego.job_runs
                 WHERE job_name = 'tick' AND status = 'succeeded'}, 15),
	'the every-second job ran once');

# The window: from the first scheduled second after the first run, for
# $window seconds.  Wait until its last run has finished.
my $t0 = q1(q{SELECT extract(epoch FROM max(scheduled_for))::bigint + 1
                FROM tego.job_runs WHERE job_name = 'tick'});
my $t1 = $t0 + $window - 1;
note("observing scheduled seconds $t0 .. $t1");
ok( poll_until($node, 
		qq{SELECT count(*) > 0 FROM tego.job_runs
            WHERE job_name = 'tick' AND scheduled_for >= to_timestamp($t1)
              AND status NOT IN ('queued', 'running')}, $window + 15),
	"the run for the last second of the window finished");

my $runs = q1(
	qq{SELECT extract(epoch FROM scheduled_for)::bigint, status,
              round(extract(epoch FROM started_at - scheduled_for)::numeric, 4),
              manual,
              (SELECT count(*) FROM ticks t
                WHERE t.ts BETWEEN r.started_at AND r.finished_at)
         FROM tego.job_runs r
        WHERE job_name = 'tick'
          AND scheduled_for BETWEEN to_timestamp($t0) AND to_timestamp($t1)
        ORDER BY scheduled_for, run_id});
my @rows = map { [ split /\|/ ] } split /\n/, $runs;
is(scalar(@rows), $window, "exactly $window runs for $window scheduled seconds")
  or diag($runs);
is_deeply([ map { $_->[0] } @rows ], [ $t0 .. $t1 ],
	'scheduled_for values are consecutive seconds: no gap, no duplicate');
is_deeply([ map { $_->[1] } @rows ], [ ('succeeded') x $window ],
	'every run in the window succeeded');
is_deeply([ map { $_->[3] } @rows ], [ ('f') x $window ],
	'none of them is manual');
is_deeply([ map { $_->[4] } @rows ], [ (1) x $window ],
	"each run's row (clock_timestamp) was written between its start and finish");

my @drift = map { $_->[2] } @rows;
my ($dmin, $dmax) = (sort { $a <=> $b } @drift)[ 0, -1 ];
my $dsum = 0;
$dsum += $_ for @drift;
diag(sprintf('start drift after the scheduled second: min %.1f ms, avg %.1f ms, max %.1f ms',
		1000 * $dmin, 1000 * $dsum / @drift, 1000 * $dmax));
cmp_ok($dmin, '>=', 0, 'no run starts before its scheduled second');
cmp_ok($dmax, '<', 1, 'every run starts less than 1 s after its scheduled second');

# the whole history of the job: unique seconds, all on the one-second grid
is( q1(
		qq{SELECT count(*) = count(DISTINCT scheduled_for)
                AND bool_and(scheduled_for = date_trunc('second', scheduled_for))
             FROM tego.job_runs WHERE job_id = $job}),
	't',
	'every run of the job is for a distinct whole second');

q1(q{SELECT 1 FROM tego.alter_job('tick', active => false)});
ok(poll_until($node, q{SELECT count(*) = 0 FROM tego.job_runs
                 WHERE job_name = 'tick' AND status IN ('queued', 'running')}, 15),
	'deactivated job: no run left open');
is( q1(q{SELECT (SELECT count(*) FROM ticks) =
                (SELECT count(*) FROM tego.job_runs
                  WHERE job_name = 'tick' AND status = 'succeeded')}),
	't',
	'one ticks row per succeeded run, over the whole history');

# ---------------------------------------------------------------------------
# 2. a failing job: 'failed' with the error, and the next second still fires
# ---------------------------------------------------------------------------

q1(q{SELECT 1 FROM tego.schedule('div0', '* * * * * *', 'SELECT 1/0',
       username => 'tego_job')});
ok( poll_until($node, 
		q{SELECT count(*) >= 2 FROM tego.job_runs
           WHERE job_name = 'div0' AND status = 'failed'}, 15),
	'the failing job ran (and failed) twice');
my $fails = q1(
	q{SELECT extract(epoch FROM scheduled_for)::bigint, status, message,
             started_at IS NOT NULL, finished_at IS NOT NULL
        FROM tego.job_runs WHERE job_name = 'div0' AND status <> 'queued'
         AND status <> 'running'
       ORDER BY scheduled_for LIMIT 2});
my @f = map { [ split /\|/ ] } split /\n/, $fails;
is($f[0][1], 'failed', 'first run failed');
like($f[0][2], qr/^22012: division by zero$/,
	'its message carries the SQLSTATE and the error text');
is_deeply([ @{ $f[0] }[ 3, 4 ] ], [ 't', 't' ], 'it has a start and a finish time');
is($f[1][0], $f[0][0] + 1, 'the next second fired after the failure');
is($f[1][1], 'failed', '... and failed in its turn');
q1(q{SELECT tego.unschedule('div0')});

# ---------------------------------------------------------------------------
# 3. max_runtime
# ---------------------------------------------------------------------------

q1(q{SELECT 1 FROM tego.schedule('sleeper', '* * * * * *', 'SELECT pg_sleep(10)',
       username => 'tego_job', max_runtime => '1 second')});
ok( poll_until($node, 
		q{SELECT count(*) > 0 FROM tego.job_runs
           WHERE job_name = 'sleeper' AND status NOT IN ('queued', 'running', 'skipped')},
		20),
	'the sleeping job ended');
q1(q{SELECT 1 FROM tego.alter_job('sleeper', active => false)});
my ($st, $msg, $took) = split /\|/, q1(
	q{SELECT status, message,
             round(extract(epoch FROM finished_at - started_at)::numeric, 3)
        FROM tego.job_runs
       WHERE job_name = 'sleeper' AND status NOT IN ('queued', 'running', 'skipped')
       ORDER BY scheduled_for LIMIT 1});
is($st, 'timed_out', "pg_sleep(10) with max_runtime '1 second' ends 'timed_out'");
diag("timed-out run lasted $took s; message: $msg");
cmp_ok($took, '>=', 0.9, 'it ran about its max_runtime ...');
cmp_ok($took, '<', 9, '... and was stopped before pg_sleep(10) returned');
like($msg, qr/max_runtime/,
	'its message says why it was stopped');
like($msg, qr/^57014: canceling the job after its max_runtime/,
	'the job was cancelled by its max_runtime timer');
cmp_ok($took, '<', 3, 'the job was stopped about max_runtime after its start');
is( q1(
		q{SELECT count(*) FROM tego.job_runs
           WHERE job_name = 'sleeper' AND status = 'succeeded'}),
	0,
	'no run of the sleeping job succeeded');

# ---------------------------------------------------------------------------
# 4. runs due together (one run group): they start together, each once
# ---------------------------------------------------------------------------

# Six runs that sleep 0.3 s each, one that fails, one that writes: were
# they run one after another, the sixth sleeper would start 1.5 s late.
q1(q{SELECT count(*) FROM (
       SELECT tego.schedule('together_' || g, '* * * * * *', 'SELECT pg_sleep(0.3)',
                            username => 'tego_job')
         FROM generate_series(1, 6) g) s});
q1(q{SELECT 1 FROM tego.schedule('together_fail', '* * * * * *', 'SELECT 1/0',
       username => 'tego_job')});
q1(q{SELECT 1 FROM tego.schedule('together_tick', '* * * * * *',
       'INSERT INTO ticks VALUES (now())', username => 'tego_job')});
ok( poll_until($node, 
		q{SELECT count(*) > 0 FROM (
            SELECT scheduled_for FROM tego.job_runs
             WHERE job_name LIKE 'together%' AND finished_at IS NOT NULL
             GROUP BY scheduled_for HAVING count(*) = 8) s}, 20),
	'every run of a second finished');
q1(q{SELECT count(*) FROM (SELECT tego.alter_job(name, active => false)
       FROM tego.jobs WHERE name LIKE 'together%') s});
my ($n_runs, $n_jobs, $sleepers_ok, $fail_st, $tick_st, $spread) = split /\|/, q1(
	q{WITH s AS (
        SELECT min(scheduled_for) AS second FROM (
          SELECT scheduled_for FROM tego.job_runs
           WHERE job_name LIKE 'together%' AND finished_at IS NOT NULL
           GROUP BY scheduled_for HAVING count(*) = 8) c)
      SELECT count(*), count(DISTINCT job_name),
             bool_and(status = 'succeeded') FILTER (WHERE command_sleeps),
             max(status) FILTER (WHERE job_name = 'together_fail'),
             max(status) FILTER (WHERE job_name = 'together_tick'),
             round(extract(epoch FROM max(started_at) - (SELECT second FROM s))::numeric, 3)
        FROM (SELECT r.*, r.job_name ~ '^together_[0-9]$' AS command_sleeps
                FROM tego.job_runs r, s WHERE r.scheduled_for = s.second
                 AND r.job_name LIKE 'together%') r});
is($n_runs, 8, 'eight runs for the second');
is($n_jobs, 8, '... one for each job');
is($sleepers_ok, 't', 'the six sleeping runs succeeded');
is($fail_st, 'failed', 'the failing run failed');
is($tick_st, 'succeeded', 'the writing run succeeded');
diag("the last of the second's eight runs started $spread s after it");
# (workers only join when called for help; one never called joins after
# 0.1 s; runs one after another would start 1.5 s apart)
cmp_ok($spread, '<', 0.08,
	'all eight started within 0.08 s: the busy workers called for help');

# A job worker stopped in the middle of a run: that run is recorded as
# failed, the run handed over with it still runs.
q1(q{SELECT 1 FROM tego.schedule('victim', '0 0 1 1 *', 'SELECT pg_sleep(60) /* victim */',
       username => 'tego_job')});
q1(q{SELECT 1 FROM tego.schedule('bystander', '0 0 1 1 *', 'SELECT pg_sleep(0.5)',
       username => 'tego_job')});
my $victim_run = q1(q{SELECT tego.run_now('victim')});
my $bystander_run = q1(q{SELECT tego.run_now('bystander')});
ok( poll_until($node, 
		q{SELECT count(*) = 1 FROM pg_stat_activity
           WHERE backend_type = 'tego job' AND query LIKE '%victim%'}, 20),
	'the victim run is running');
q1(q{SELECT pg_terminate_backend(pid) FROM pg_stat_activity
      WHERE backend_type = 'tego job' AND query LIKE '%victim%'});
ok( poll_until($node, 
		qq{SELECT count(*) = 2 FROM tego.job_runs
            WHERE run_id IN ($victim_run, $bystander_run) AND finished_at IS NOT NULL}, 20),
	'both runs ended');
is( q1(qq{SELECT status || ': ' || message FROM tego.job_runs WHERE run_id = $victim_run}),
	'failed: the job worker exited before the job finished',
	'the run of the stopped worker failed, and says why');
is(q1(qq{SELECT status FROM tego.job_runs WHERE run_id = $bystander_run}),
	'succeeded', 'the other run succeeded');

# no crash, no unexpected error in the server log
my $log = slurp_file($node->logfile);
unlike($log, qr/terminated by signal|PANIC|TRAP:/, 'no crash in the server log');

$node->stop('fast');
done_testing();
