# The scheduler prunes finished runs older than tego.job_run_retention by
# itself (no user job), and compacts the event log per tego.event_retention.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('retention');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'tego'");
$node->start;

$node->safe_psql('postgres', q{
	CREATE EXTENSION tego;
	CREATE ROLE tego_job LOGIN;
	SELECT tego.schedule('nightly', '0 3 * * *', 'SELECT 1', username => 'tego_job');
});
ok( $node->poll_query_until('postgres',
		q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'tego scheduler'}),
	'the scheduler runs');
# its first pass marks the runs a crash left running: wait for it to end
$node->wait_for_log(qr/tego scheduler started in database/);

# history: two old finished runs, one recent, one still open
$node->safe_psql('postgres', q{
	INSERT INTO tego.job_runs (job_id, job_name, username, scheduled_for, status, finished_at)
	SELECT j.job_id, j.name, j.username, t, s, f
	  FROM tego.jobs j,
	       (VALUES ('2026-01-01 03:00+00'::timestamptz, 'succeeded', now() - interval '10 days'),
	               ('2026-01-02 03:00+00', 'failed', now() - interval '9 days'),
	               ('2026-01-03 03:00+00', 'succeeded', now() - interval '1 hour'),
	               ('2026-01-04 03:00+00', 'running', NULL::timestamptz)) v(t, s, f)
	 WHERE j.name = 'nightly';
	-- old events too
	SELECT tego.publish('t', '{"n": 1}');
	SELECT tego.publish('t', '{"n": 2}');
});
$node->safe_psql('postgres',
	q{UPDATE tego.events SET committed_at = now() - interval '30 days'
	   WHERE seq < (SELECT max(seq) FROM tego.events)});
my $events_before = $node->safe_psql('postgres', 'SELECT count(*) FROM tego.events');

# a shorter retention, applied by the scheduler on reload
$node->safe_psql('postgres', q{
	ALTER SYSTEM SET tego.job_run_retention = '2d';
	ALTER SYSTEM SET tego.event_retention = '7d';
	SELECT pg_reload_conf();
});
ok( $node->poll_query_until('postgres',
		q{SELECT count(*) = 2 FROM tego.job_runs}),
	'the scheduler pruned the runs that finished more than 2 days ago');
is( $node->safe_psql('postgres',
		q{SELECT string_agg(status, ',' ORDER BY scheduled_for) FROM tego.job_runs}),
	'succeeded,running',
	'recent and unfinished runs are kept');
ok( $node->poll_query_until('postgres',
		q{SELECT count(*) FILTER (WHERE committed_at < now() - interval '7 days') = 0
		         AND count(*) >= 1
		    FROM tego.events}),
	'old events were compacted, recent ones kept');
cmp_ok($events_before, '>', 1, 'there were old events to compact');

# retention 0 keeps everything
$node->safe_psql('postgres', q{
	UPDATE tego.job_runs SET finished_at = now() - interval '100 days', status = 'succeeded'
	 WHERE status <> 'running';
});
my $reloaded_at = $node->safe_psql('postgres', q{
	ALTER SYSTEM SET tego.job_run_retention = 0;
	SELECT pg_reload_conf();
	SELECT clock_timestamp();
});
$reloaded_at = (split /\n/, $reloaded_at)[-1];
# the scheduler handles SIGHUP, then runs a pass; pg_stat_activity shows when
# that pass has ended
ok( $node->poll_query_until('postgres',
		qq{SELECT state = 'idle' AND state_change > '$reloaded_at'
		     FROM pg_stat_activity WHERE backend_type = 'tego scheduler'}),
	'the scheduler ran a pass after the reload');
is($node->safe_psql('postgres', 'SELECT count(*) FROM tego.job_runs'),
	2, 'with tego.job_run_retention = 0 nothing is pruned');

$node->stop;
done_testing();
