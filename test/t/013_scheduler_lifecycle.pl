# Copyright: the tego authors.  PostgreSQL::Test::Cluster TAP test.
#
# The scheduler's life around the extension and its settings:
#  (a) it waits quietly while tego.database has no extension, starts firing
#      after CREATE EXTENSION, survives DROP EXTENSION (same process, one
#      log line) and fires again after a second CREATE EXTENSION;
#  (b) SIGHUP: tego.max_running_jobs lowered to 1 with ALTER SYSTEM +
#      pg_reload_conf() lets only one SQL job run at a time, the other run
#      waits for the one job worker until the first has finished;
#  (c) app jobs: an unclaimed run is retried once, then 'failed'; a claimed
#      run without heartbeats goes back to 'pending' (attempt 2); a worker
#      that sends heartbeats keeps its run and finishes it; a LISTEN client
#      on tego_jobs receives the 'run-due' events;
#  (d) an SQL job runs in another database than tego.database.
#
# Environment: TEGO_TOOLS (folder with the built tego_listen; defaults to
# test/tools next to this file).
use strict;
use warnings;

use FindBin;
use IPC::Run;
use JSON::PP;
use Time::HiRes qw(sleep usleep time);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use TegoTest;

my $tools = $ENV{TEGO_TOOLS} // "$FindBin::RealBin/../tools";
my $listen_bin = "$tools/tego_listen";
die "tego_listen not found or not executable at $listen_bin (make tools)\n"
  unless -x $listen_bin;
my $tmp = PostgreSQL::Test::Utils::tempdir;

my $node = PostgreSQL::Test::Cluster->new('sched_life');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'tego'");
$node->start;


sub q1 { return $node->safe_psql($_[1] // 'postgres', $_[0]); }

# The server log from byte $offset on.
sub log_from { return slurp_file($node->logfile, $_[0]); }

# Poll the server log from $offset until it matches $re, for $secs seconds.
sub log_poll
{
	my ($re, $offset, $secs) = @_;
	my $deadline = time + $secs;
	while (time < $deadline)
	{
		return 1 if log_from($offset) =~ $re;
		usleep(100_000);
	}
	return 0;
}

# The lines of a piece of log that the server wrote of its own accord: not
# the statements of this test (log_statement = all) nor their continuation
# lines.
sub server_lines
{
	return grep { !/\bLOG:\s+statement: / && !/^\s/ } split /\n/, $_[0];
}

# Error-level lines (ERROR, FATAL, WARNING, PANIC) in a piece of log.
sub problems
{
	return grep { /\b(?:ERROR|FATAL|WARNING|PANIC):/ } server_lines($_[0]);
}

sub scheduler_pid
{
	return q1(q{SELECT coalesce(max(pid), 0) FROM pg_stat_activity
                 WHERE backend_type = 'tego scheduler'});
}

# ===========================================================================
# (a) no extension yet; CREATE / DROP / CREATE EXTENSION
# ===========================================================================

is(q1(q{SELECT count(*) FROM pg_extension WHERE extname = 'tego'}), 0,
	'database postgres has no tego extension');
ok(poll_until($node, q{SELECT count(*) = 1 FROM pg_stat_activity
                 WHERE backend_type = 'tego scheduler' AND datname = 'postgres'}, 30),
	'the tego scheduler runs, connected to postgres');
my $pid = scheduler_pid();
my $off = -s $node->logfile;
sleep 3;    # let time pass: a scheduler polling or failing would show
is(scalar(problems(log_from($off))), 0,
	'no error or warning in the log over 3 s without the extension')
  or diag(join("\n", problems(log_from($off))));
is(scheduler_pid(), $pid, 'the same scheduler process is still there');
is_deeply([ grep { /tego/ } server_lines(log_from($off)) ], [], 'and it said nothing');

q1(q{
CREATE EXTENSION tego;
CREATE ROLE tego_job LOGIN;
CREATE TABLE ticks (ts timestamptz NOT NULL, job text NOT NULL);
GRANT INSERT ON ticks TO tego_job;
SELECT 1 FROM tego.schedule('tick1', '* * * * * *',
  $$INSERT INTO ticks VALUES (clock_timestamp(), 'tick1')$$, username => 'tego_job');
});
my $created = time;
ok( poll_until($node, 
		q{SELECT count(*) > 0 FROM tego.job_runs
           WHERE job_name = 'tick1' AND status = 'succeeded'}, 10),
	'after CREATE EXTENSION, an every-second job fires within a few seconds');
diag(sprintf('first run of tick1 succeeded %.2f s after CREATE EXTENSION', time - $created));
is(scheduler_pid(), $pid, 'by the same scheduler process');
ok(log_poll(qr/tego scheduler started in database "postgres"/, $off, 5),
	'the scheduler logged that it started in postgres');

# DROP EXTENSION while the job is active.  The DROP must not overlap a
# scheduler pass (the overlapping case is tested below): hold pg_extension locked, wait until
# the scheduler is between passes (idle, or blocked reading pg_extension at
# the start of its next pass), then drop and commit.
$off = -s $node->logfile;
my $s = $node->background_psql('postgres');
$s->query_safe('BEGIN');
$s->query_safe('LOCK TABLE pg_catalog.pg_extension IN ACCESS EXCLUSIVE MODE');
ok( poll_until($node, 
		q{SELECT state = 'idle' OR wait_event_type = 'Lock' FROM pg_stat_activity
           WHERE backend_type = 'tego scheduler'}, 10),
	'the scheduler is between passes');
$s->query_safe('DROP EXTENSION tego');
$s->query_safe('COMMIT');
$s->quit;
ok(log_poll(qr/extension tego was dropped/, $off, 10),
	'the scheduler noticed DROP EXTENSION');
sleep 1.5;    # let time pass: the job's fire times come and go
my $after_drop = log_from($off);
is(scalar(problems($after_drop)), 0, 'no error or warning after DROP EXTENSION')
  or diag(join("\n", problems($after_drop)));
my @about = grep { /tego/ } server_lines($after_drop);
cmp_ok(scalar(@about), '<=', 1, 'at most one log message about it')
  or diag(join("\n", @about));
is(scheduler_pid(), $pid, 'the scheduler survived DROP EXTENSION (same pid)');
my $ticks_after_drop = q1(q{SELECT count(*) FROM ticks});
sleep 1;
is(q1(q{SELECT count(*) FROM ticks}), $ticks_after_drop,
	'no job runs without the extension');

q1(q{
CREATE EXTENSION tego;
SELECT 1 FROM tego.schedule('tick2', '* * * * * *',
  $$INSERT INTO ticks VALUES (clock_timestamp(), 'tick2')$$, username => 'tego_job');
});
ok( poll_until($node, 
		q{SELECT count(*) >= 2 FROM tego.job_runs
           WHERE job_name = 'tick2' AND status = 'succeeded'}, 10),
	'after CREATE EXTENSION again, jobs fire again');
is(q1(q{SELECT count(*) FROM ticks WHERE job = 'tick2'}) >= 2 ? 't' : 'f', 't',
	'and their rows are written');
is(scheduler_pid(), $pid, 'still the same scheduler process');

# DROP EXTENSION that overlaps a scheduler pass: the pass saw the extension
# (the DROP was not committed yet), then waits for a lock on a table the
# DROP holds, and finds the table gone once the DROP commits.
$off = -s $node->logfile;
$s = $node->background_psql('postgres');
$s->query_safe('BEGIN');
$s->query_safe('DROP EXTENSION tego');
ok( poll_until($node, 
		q{SELECT wait_event_type = 'Lock' FROM pg_stat_activity
           WHERE backend_type = 'tego scheduler'}, 10),
	'a scheduler pass waits for a lock held by the uncommitted DROP EXTENSION');
$s->query_safe('COMMIT');
$s->quit;
# the pass ends one way or the other: it notices the DROP, or it fails
ok( log_poll(
		qr/extension tego was dropped|"tego scheduler" \(PID \d+\) exited/, $off, 10),
	'the blocked pass went on after the DROP committed');
$after_drop = log_from($off);
# scheduler_pass() locks the extension and looks again, so the pass sees
# the DROP instead of failing on the missing tables
is(scheduler_pid(), $pid, 'the scheduler survived a DROP EXTENSION during its pass');
is_deeply([ problems($after_drop) ], [], 'without an error');
note("log after the overlapping DROP:\n" . join("\n", server_lines($after_drop)));

# whatever happened, the next steps need the extension and a scheduler
q1('CREATE EXTENSION tego');
ok(poll_until($node, q{SELECT count(*) = 1 FROM pg_stat_activity
                 WHERE backend_type = 'tego scheduler'}, 30),
	'a scheduler runs');
$pid = scheduler_pid();

# ===========================================================================
# (b) SIGHUP: tego.max_running_jobs
# ===========================================================================

q1(q{
SELECT 1 FROM tego.schedule('slow_a', '* * * * * *', 'SELECT pg_sleep(1.2)',
  username => 'tego_job');
SELECT 1 FROM tego.schedule('slow_b', '* * * * * *', 'SELECT pg_sleep(1.2)',
  username => 'tego_job');
});
# the job runs executing now (a run handed to a worker is 'running' in
# tego.job_runs from then on, also while it waits for its worker)
my $executing = q{SELECT count(*) FROM pg_stat_activity
                   WHERE backend_type = 'tego job' AND state = 'active'
                     AND query LIKE '%pg_sleep(1.2)%'};
ok(poll_until($node, "SELECT ($executing) = 2", 10),
	'with the default tego.max_running_jobs, both slow jobs run at the same time');

q1(q{ALTER SYSTEM SET tego.max_running_jobs = 1});
q1(q{SELECT pg_reload_conf()});
# the runs handed over before the reload end within 1.2 s
sleep(1.5);
my $observed = q1(q{SELECT extract(epoch FROM clock_timestamp())});

# sample for 4 s: never two runs at once
my $max_running = 0;
my $end = time + 4;
while (time < $end)
{
	my $r = q1($executing);
	$max_running = $r if $r > $max_running;
	usleep(100_000);
}
q1(q{SELECT 1 FROM tego.alter_job('slow_a', active => false)});
q1(q{SELECT 1 FROM tego.alter_job('slow_b', active => false)});
ok(poll_until($node, q{SELECT count(*) = 0 FROM tego.job_runs
                 WHERE status IN ('queued', 'running')}, 15),
	'after deactivating both jobs, nothing is left queued or running');
cmp_ok($max_running, '<=', 1, 'sampled: at most one slow job running at a time');

# every run started after the observation overlaps no other run
my $runs = q1(
	q{SELECT job_name, run_id, extract(epoch FROM started_at), extract(epoch FROM finished_at),
             status
        FROM tego.job_runs WHERE job_name IN ('slow_a', 'slow_b') AND started_at IS NOT NULL
       ORDER BY started_at});
my @r = map { [ split /\|/ ] } split /\n/, $runs;
my @late = grep { $_->[2] > $observed } @r;
cmp_ok(scalar(@late), '>=', 2, scalar(@late) . ' runs started under the limit');
cmp_ok(scalar(keys %{ { map { $_->[0] => 1 } @late } }), '==', 2,
	'both jobs ran under the limit (they took turns)');
my @overlaps;
for my $x (@late)
{
	for my $y (@r)
	{
		next if $y->[1] == $x->[1];
		push @overlaps, "$x->[0]/$x->[1] and $y->[0]/$y->[1]"
		  if $x->[2] < $y->[3] && $y->[2] < $x->[3];
	}
}
is_deeply(\@overlaps, [], 'runs started under the limit overlap no other run')
  or diag($runs);
is_deeply([ map { "$_->[1] $_->[4]" } grep { $_->[4] ne 'succeeded' } @late ], [],
	'and they all succeeded');
cmp_ok(
	q1(q{SELECT count(*) FROM tego.job_runs
          WHERE job_name IN ('slow_a', 'slow_b') AND started_at > scheduled_for + interval '1 s'}),
	'>', 0, 'a run waited for the one worker: it started over a second after its time');

q1(q{ALTER SYSTEM RESET tego.max_running_jobs});
q1(q{SELECT pg_reload_conf()});
q1(q{SELECT tego.unschedule('slow_a'), tego.unschedule('slow_b')});

# ===========================================================================
# (c) app jobs
# ===========================================================================

# a LISTEN client on tego_jobs, live only (no catch-up)
my $lout = "$tmp/listen.out";
my $lerr = "$tmp/listen.err";
my $listener = IPC::Run::start(
	[
		$listen_bin, '-d',
		$node->connstr('postgres') . ' application_name=jobs_listener',
		'-c', 'tego_jobs'
	],
	'<', \undef, '>', $lout, '2>', $lerr,
	IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
ok( poll_until($node, 
		q{SELECT count(*) = 1 FROM pg_stat_activity
           WHERE application_name = 'jobs_listener' AND state = 'idle'}, 20),
	'tego_listen is LISTENing on tego_jobs');

# c1: nobody claims: retried once (max_attempts 2), then failed
q1(q{SELECT 1 FROM tego.schedule_app('app_unclaimed', '* * * * * *', '{"task": "u"}',
       username => 'tego_job', claim_timeout => '1 second', max_attempts => 2)});
ok( poll_until($node, 
		q{SELECT count(*) > 0 FROM tego.job_runs
           WHERE job_name = 'app_unclaimed' AND status = 'failed'}, 15),
	'an unclaimed app run ends failed');
q1(q{SELECT 1 FROM tego.alter_job('app_unclaimed', active => false)});
my ($u_run, $u_att, $u_msg, $u_fin) = split /\|/, q1(
	q{SELECT run_id, attempt, message, finished_at IS NOT NULL FROM tego.job_runs
       WHERE job_name = 'app_unclaimed' AND status = 'failed'
       ORDER BY scheduled_for LIMIT 1});
is($u_att, 2, 'after 2 attempts (max_attempts 2)');
like($u_msg, qr/^not claimed within 00:00:01/, "message: $u_msg");
is($u_fin, 't', 'with a finish time');
my $u_took = q1(qq{SELECT round(extract(epoch FROM finished_at - scheduled_for)::numeric, 3)
                     FROM tego.job_runs WHERE run_id = $u_run});
diag("unclaimed run failed $u_took s after its scheduled time (2 x claim_timeout 1 s)");
cmp_ok($u_took, '>=', 2, 'not before two claim timeouts had passed');
is( q1(
		qq{SELECT count(*) FROM tego.job_runs
            WHERE job_name = 'app_unclaimed' AND status NOT IN ('failed', 'skipped', 'pending')}),
	0,
	'runs of the unclaimed job are only failed, skipped (overlap) or pending');

# c2: claimed, no heartbeat: pending again, attempt 2
q1(q{SELECT 1 FROM tego.schedule_app('app_hb', '* * * * * *', '{"task": "h"}',
       username => 'tego_job', claim_timeout => '1 minute',
       heartbeat_timeout => '1 second', max_attempts => 2)});
ok( poll_until($node, 
		q{SELECT count(*) = 1 FROM tego.job_claim('w1', ARRAY['app_hb'])}, 10),
	'worker w1 claimed a run of app_hb');
my ($h_run, $h_st, $h_worker, $h_att) = split /\|/,
  q1(q{SELECT run_id, status, worker, attempt FROM tego.job_runs
        WHERE job_name = 'app_hb' AND worker = 'w1'});
is_deeply([ $h_st, $h_worker, $h_att ], [ 'running', 'w1', 1 ],
	"run $h_run is running, held by w1, attempt 1");
ok( poll_until($node, 
		qq{SELECT status || ' ' || attempt || ' ' || coalesce(worker, '-')
             FROM tego.job_runs WHERE run_id = $h_run}, 10, 'pending 2 -'),
	"without heartbeats, run $h_run went back to pending, attempt 2, no worker");
my $hb_after = q1(qq{SELECT round(extract(epoch FROM due_at - started_at)::numeric, 3)
                      FROM tego.job_runs WHERE run_id = $h_run});
diag("back to pending $hb_after s after the claim (heartbeat_timeout 1 s)");
cmp_ok($hb_after, '>=', 1, 'not before heartbeat_timeout had passed');
like(q1(qq{SELECT message FROM tego.job_runs WHERE run_id = $h_run}),
	qr/^no heartbeat from worker w1 within 00:00:01/, 'with the reason');
my ($st, $err) = ('', '');
$node->psql('postgres', qq{SELECT tego.job_finish($h_run, 'w1', true)},
	stdout => \$st, stderr => \$err);
like($err, qr/is not held by worker "w1"/, 'the late worker w1 can no longer finish it');

# c3: worker w2 takes the retry and keeps it alive with heartbeats (one
# session, so that a heartbeat is never more than ~0.3 s late)
my $w2 = $node->background_psql('postgres');
my $claim2 = $w2->query_safe(
	q{SELECT run_id || ' ' || attempt FROM tego.job_claim('w2', ARRAY['app_hb'])});
is($claim2, "$h_run 2", "worker w2 claims the retried run $h_run (attempt 2)");
$end = time + 2.5;
my $hb_errors = 0;
while (time < $end)
{
	my (undef, $failed) = $w2->query(qq{SELECT tego.job_heartbeat($h_run, 'w2')});
	$hb_errors++ if $failed;
	usleep(300_000);
}
is($hb_errors, 0, 'heartbeats for 2.5 s were accepted');
$w2->query_safe(qq{SELECT tego.job_heartbeat($h_run, 'w2')});
is($w2->query_safe(qq{SELECT status || ' ' || worker FROM tego.job_runs WHERE run_id = $h_run}),
	'running w2', 'the run stays with w2 while it sends heartbeats');
is( $w2->query_safe(
		qq{SELECT status || ' ' || attempt FROM tego.job_finish($h_run, 'w2', true, 'done')}),
	'succeeded 2',
	'w2 finishes it: succeeded on attempt 2');
$w2->quit;
q1(q{SELECT 1 FROM tego.alter_job('app_hb', active => false)});

# the LISTEN client saw the run-due events, live
my $deadline = time + 10;
my @due;
while (time < $deadline)
{
	@due = ();
	open(my $fh, '<', $lout) or die "cannot read $lout: $!";
	while (my $line = <$fh>)
	{
		next unless $line =~ /\n\z/;
		my ($seq, $topic, $text) = $line =~ /^(\d+) (\S+) (.*)$/ or next;
		my $m = eval { decode_json($text) } or next;
		push @due, $m if $topic eq 'tego_jobs' && $m->{event} eq 'run-due';
	}
	close $fh;
	last if grep { $_->{payload}{run_id} == $h_run && $_->{payload}{attempt} == 2 } @due;
	usleep(100_000);
}
$listener->signal('TERM');
eval { $listener->finish };
my %due_of = map { ("$_->{payload}{run_id}/$_->{payload}{attempt}" => $_) } @due;
ok($due_of{"$u_run/1"} && $due_of{"$u_run/2"},
	"the listener got run-due for run $u_run, attempts 1 and 2");
ok($due_of{"$h_run/1"} && $due_of{"$h_run/2"},
	"the listener got run-due for run $h_run, attempts 1 and 2");
is(($due_of{"$u_run/1"} // {})->{key}, 'app_unclaimed', 'the event key is the job name');
ok(!exists(($due_of{"$u_run/1"} // {})->{payload}{payload}),
	"the event does not carry the job's payload (members of the job's role read it from tego.jobs)");
is(slurp_file($lerr), '', 'tego_listen wrote nothing on stderr');
q1(q{SELECT tego.unschedule('app_unclaimed'), tego.unschedule('app_hb')});

# ===========================================================================
# (d) a job in another database
# ===========================================================================

q1('CREATE DATABASE otherdb');
q1(q{CREATE TABLE ticks_other (ts timestamptz NOT NULL, db text NOT NULL);
     GRANT INSERT ON ticks_other TO tego_job;}, 'otherdb');
q1(q{SELECT 1 FROM tego.schedule('elsewhere', '* * * * * *',
       'INSERT INTO ticks_other VALUES (clock_timestamp(), current_database())',
       database => 'otherdb', username => 'tego_job')});
ok( poll_until($node, 
		q{SELECT count(*) >= 1 FROM tego.job_runs
           WHERE job_name = 'elsewhere' AND status = 'succeeded'}, 10),
	"the job for database otherdb runs");
q1(q{SELECT 1 FROM tego.alter_job('elsewhere', active => false)});
ok(poll_until($node, q{SELECT count(*) = 0 FROM tego.job_runs
                 WHERE job_name = 'elsewhere' AND status IN ('queued', 'running')}, 10),
	'its last run finished');
my $succ = q1(q{SELECT count(*) FROM tego.job_runs
                 WHERE job_name = 'elsewhere' AND status = 'succeeded'});
is(q1(q{SELECT count(*) || ' ' || count(*) FILTER (WHERE db = 'otherdb') FROM ticks_other},
		'otherdb'),
	"$succ $succ", 'each succeeded run wrote one row in otherdb, from otherdb');
is(q1(q{SELECT count(*) FROM pg_extension WHERE extname = 'tego'}, 'otherdb'), 0,
	'otherdb does not need the extension');

unlike(slurp_file($node->logfile), qr/terminated by signal|PANIC|TRAP:/,
	'no crash in the server log');
is(scheduler_pid(), $pid, 'the same scheduler process since the last CREATE EXTENSION');

$node->stop('fast');
done_testing();
