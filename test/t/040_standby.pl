# Copyright: the tego authors.  PostgreSQL::Test::Cluster TAP test.
#
# tego on a streaming replica, and through a failover.
#
# On the standby: the registry (plugin_get, plugin_list, with
# tego.registry_source = table and = memory), the view tego.leases and the
# event log (tego.events_since) return the primary's data once replayed;
# LISTEN fails, and polling events_since (or tego.wait_events, once it
# exists) is the fallback; tego's writing functions fail as read-only;
# tego.status() reports no scheduler.  Application status is per server.
#
# Failover (the primary stopped with an immediate shutdown, the standby
# promoted): lease tokens keep growing, the event log goes on at the next
# seq with no hole, the scheduler resumes, and no (job, scheduled time) runs
# twice.  (012_scheduler_standby.pl covers the scheduler's own view of this:
# no scheduler process on the standby, runs 'interrupted', catch-up.)
use strict;
use warnings;

use Time::HiRes qw(usleep time);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use TegoTest;

my $primary = PostgreSQL::Test::Cluster->new('ops_primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', "shared_preload_libraries = 'tego'");
$primary->start;
$primary->safe_psql(
	'postgres', q{
CREATE EXTENSION tego;
CREATE ROLE tego_job LOGIN;
-- the SQL job below records which scheduled time it ran for: with overlap
-- 'skip' its only 'running' run is the one running the command
CREATE TABLE ticks (scheduled_for timestamptz, ran_at timestamptz NOT NULL,
                    node text NOT NULL);
GRANT INSERT ON ticks TO tego_job;
GRANT USAGE ON SCHEMA tego TO tego_job;
GRANT SELECT ON tego.job_runs TO tego_job;
});

$primary->backup('bk');
my $standby = PostgreSQL::Test::Cluster->new('ops_standby');
$standby->init_from_backup($primary, 'bk', has_streaming => 1);
$standby->start;

sub qp { return $primary->safe_psql('postgres', $_[0]); }
sub qs { return $standby->safe_psql('postgres', $_[0]); }

# stderr of $sql on $node (which is expected to fail)
sub err_of
{
	my ($node, $sql) = @_;
	my ($rc, $out, $err) = $node->psql('postgres', $sql);
	return $rc == 0 ? "(no error; output: $out)" : $err;
}

is(qs('SELECT pg_is_in_recovery()'), 't', 'the standby is in recovery');

# ---------------------------------------------------------------------------
# 1. state made on the primary after the standby started is readable there
# ---------------------------------------------------------------------------
qp(q{
SELECT 1 FROM tego.plugin_add('core', '@tachybase/core', '1.0.0', built_in => true);
SELECT 1 FROM tego.plugin_add('acl', '@tachybase/plugin-acl', '1.2.0',
                              options => '{"roles": ["admin", "member"]}',
                              depends_on => '{core}');
SELECT 1 FROM tego.plugin_add('crm', version => '0.9.0',
                              options => jsonb_build_object('blob', repeat('x', 3000)),
                              depends_on => '{acl}');
SELECT 1 FROM tego.plugin_add('audit');
SELECT 1 FROM tego.plugin_enable('core', 'acl');
SELECT 1 FROM tego.plugin_install('crm');
SELECT 1 FROM tego.plugin_update('audit', '{"options": {"level": "debug"}}');
SELECT 1 FROM tego.lease_acquire('leader', 'node-a', '1 hour');
SELECT tego.publish('ops', '{"n": 1}');
SELECT tego.publish('other', '{"n": 2}');
});
# a session-bound lease, held by a session that stays open on the primary
my $holder = $primary->background_psql('postgres');
$holder->query_safe(
	q{SELECT 1 FROM tego.lease_acquire('sb', 'worker-1', '1 hour', session_bound => true)});
$primary->wait_for_catchup($standby);

my $list = q{SELECT p::text FROM tego.plugin_list() p};
my $list_enabled = q{SELECT p::text FROM tego.plugin_list(enabled_only => true) p};
my $get = q{SELECT tego.plugin_get('acl')::text || E'\n' || tego.plugin_get('crm')::text};
my $p_list = qp($list);
my $p_enabled = qp($list_enabled);
my $p_get = qp($get);
is(scalar(() = $p_list =~ /\n/g) + 1, 4, 'the primary lists 4 plugins');
for my $source ('table', 'memory')
{
	my $set = "SET tego.registry_source = '$source';";
	is(qs("$set $list"), $p_list,
		"standby, registry_source = $source: plugin_list() returns the primary's rows, in its order");
	is(qs("$set $list_enabled"), $p_enabled,
		"standby, registry_source = $source: plugin_list(enabled_only) as on the primary");
	is(qs("$set $get"), $p_get,
		"standby, registry_source = $source: plugin_get() returns the primary's rows "
		  . '(one larger than 2 KB)');
}
like(err_of($standby, q{SET tego.registry_source = memory; SELECT tego.plugin_get('nope')}),
	qr/ERROR:  plugin "nope" does not exist/,
	'standby: plugin_get of an unknown plugin raises as on the primary');

# later changes reach the standby's reads too
qp(q{SELECT 1 FROM tego.plugin_disable('acl');
     SELECT 1 FROM tego.plugin_upgrade('acl', '1.3.0')});
$primary->wait_for_catchup($standby);
is(qs(q{SET tego.registry_source = memory;
        SELECT state || ' ' || version || ' ' || revision FROM tego.plugin_get('acl')}),
	qp(q{SELECT state || ' ' || version || ' ' || revision FROM tego.plugin_get('acl')}),
	'standby, memory: a later change of the primary is read after replay');

my $leases = q{SELECT name, holder, token, session_bound, acquired_at, renewed_at,
                      expires_at FROM tego.leases ORDER BY name};
is(qs($leases), qp($leases), 'standby: tego.leases shows the primary\'s leases');
is(qs(q{SELECT live FROM tego.leases WHERE name = 'leader'}), 't',
	'standby: a lease with a ttl is live while its ttl runs, as on the primary');
is(qp(q{SELECT live FROM tego.leases WHERE name = 'sb'}), 't',
	'primary: the session-bound lease is live');
# the advisory lock that keeps a session-bound lease live is the primary's:
# a standby cannot see it, so there the lease shows as not live
is(qs(q{SELECT live FROM tego.leases WHERE name = 'sb'}), 'f',
	'standby: a session-bound lease shows live = false (its session is on the primary)');

my $events = q{SELECT seq || ' ' || topic || ' ' || event || ' ' || coalesce(key, '-')
                 FROM tego.events_since(0, NULL, 100000)};
is(qs($events), qp($events), 'standby: events_since(0) returns the primary\'s event log');
is(qs(q{SELECT string_agg(payload->>'message', ',') FROM tego.events_since(0, '{ops,other}')}),
	'{"n": 1},{"n": 2}', 'standby: events_since with topics');
is(qs('SELECT tego.event_seq()'), qp('SELECT tego.event_seq()'),
	'standby: event_seq() is the primary\'s');

# ---------------------------------------------------------------------------
# 2. LISTEN does not work on a standby; events_since polling does
# ---------------------------------------------------------------------------
like(err_of($standby, 'LISTEN tego_plugins'),
	qr/ERROR:  cannot execute LISTEN during recovery/,
	'standby: LISTEN fails with "cannot execute LISTEN during recovery"');

{
	my $last = qs(q{SELECT tego.event_seq()});
	my $t0 = time;
	qp(q{SELECT tego.publish('ops', '{"n": 3}')});
	ok( poll_until(
			$standby,
			qq{SELECT count(*) = 1 FROM tego.events_since($last, '{ops}')
                WHERE payload->'message' = '{"n": 3}'}, 10),
		'standby: an event committed on the primary is found by polling events_since');
	diag(sprintf('seen on the standby by polling after %.2f s', time - $t0));
}

my @ops_sent = (1, 3);    # the messages published on topic ops so far
SKIP:
{
	skip 'tego.wait_events() does not exist yet', 5
	  unless qs(q{SELECT to_regprocedure('tego.wait_events(bigint,text[],interval,integer)')
                    IS NOT NULL}) eq 't';

	my $last = qs(q{SELECT tego.event_seq()});
	my $w = $standby->background_psql('postgres');
	# start the wait, and only then commit on the primary
	$w->query_until(qr/waiting/, qq{\\echo waiting
SELECT 'got ' || seq || ' ' || (payload->>'message') FROM tego.wait_events($last, '{ops}', '20 seconds');
\\echo done
});
	usleep(300_000);
	my $t0 = time;
	qp(q{SELECT tego.publish('ops', '{"n": 4}')});
	push @ops_sent, 4;
	my $out = $w->query_until(qr/done/, '');
	my $took = time - $t0;
	like($out, qr/^got \d+ \{"n": 4\}$/m,
		'standby: a wait_events() started before the primary\'s commit returns the event');
	cmp_ok($took, '<', 5, sprintf('... within a few seconds (%.2f s)', $took));

	$last = qs(q{SELECT tego.event_seq()});
	$t0 = time;
	my $n = qs(qq{SELECT count(*) FROM tego.wait_events($last, '{ops}', '1 second')});
	$took = time - $t0;
	is($n, 0, 'standby: wait_events() with nothing new returns no row');
	cmp_ok($took, '>=', 0.9, sprintf('... after its timeout (%.2f s)', $took));
	cmp_ok($took, '<', 5, '... and not much later');
	$w->quit;
}

# ---------------------------------------------------------------------------
# 3. writes are refused on the standby; it runs no scheduler
# ---------------------------------------------------------------------------
for my $w (
	[ q{SELECT tego.plugin_add('x')}, 'plugin_add' ],
	[ q{SELECT tego.plugin_enable('audit')}, 'plugin_enable' ],
	[ q{SELECT tego.publish('ops', '{}')}, 'publish' ],
	[ q{SELECT tego.lease_acquire('other', 'node-z')}, 'lease_acquire' ],
	[ q{SELECT tego.schedule('x', '1 seconds', 'SELECT 1', username => 'tego_job')}, 'schedule' ],
	[ q{SELECT tego.job_claim('w')}, 'job_claim' ])
{
	like(err_of($standby, $w->[0]),
		qr/ERROR:  cannot (?:execute (?:[A-Z ]+|tego\.publish\(\)) in a read-only transaction|acquire lock mode \w+ on database objects while recovery is in progress)/,
		"standby: $w->[1] fails (read-only transaction, or a lock refused during recovery)");
}
is(qs(q{SELECT preloaded || ' ' || (scheduler_pid IS NULL) || ' ' || scheduler_state
               || ' ' || (registry_epoch IS NULL) || ' ' || event_seq FROM tego.status()}),
	'true true not running true ' . qp('SELECT tego.event_seq()'),
	'standby: tego.status() shows no scheduler, no registry epoch, the replayed event_seq');

# ---------------------------------------------------------------------------
# 4. application status is per server
# ---------------------------------------------------------------------------
qp(q{SELECT tego.app_status_set('main', 'running', 'on the primary')});
is(qp(q{SELECT status || ' ' || message FROM tego.apps WHERE app = 'main'}),
	'running on the primary', 'primary: tego.apps shows its app');
is(qs(q{SELECT count(*) FROM tego.apps}), 0,
	'standby: tego.apps does not show the primary\'s app');
# on the standby the call works, on the standby's own shared memory
qs(q{SELECT tego.app_status_set('replica-app', 'running', 'on the standby')});
is(qs(q{SELECT app || ' ' || status || ' ' || message || ' ' || version FROM tego.apps}),
	'replica-app running on the standby 1',
	'standby: app_status_set() works and sets the standby\'s own status');
is(qp(q{SELECT string_agg(app, ',') FROM tego.apps}), 'main',
	'primary: the standby\'s app is not there');
is(qs(q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'tego notifier'}), 0,
	'standby: no notifier was started for it (a standby cannot NOTIFY)');

# ---------------------------------------------------------------------------
# 5. failover
# ---------------------------------------------------------------------------
# a lease that changes hands (token N), with a short ttl: its holder goes
# down with the primary
qp(q{SELECT tego.lease_release('leader', 'node-a', 1)});
my $n_token = qp(q{SELECT token FROM tego.lease_acquire('leader', 'node-b', '2 seconds')});
is($n_token, 2, 'primary: node-b leads with token 2');

qp(q{
SELECT 1 FROM tego.schedule('tick', '1 seconds',
  $$INSERT INTO ticks SELECT r.scheduled_for, clock_timestamp(), current_setting('cluster_name')
      FROM tego.job_runs r WHERE r.job_name = 'tick' AND r.status = 'running'$$,
  username => 'tego_job');
SELECT 1 FROM tego.schedule_app('app-tick', '1 seconds', '{"report": "daily"}',
                                username => 'tego_job');
});
ok( poll_until(
		$primary, q{SELECT count(*) >= 3 FROM tego.job_runs
                     WHERE job_name = 'tick' AND status = 'succeeded'}, 20),
	'primary: the SQL job runs');
ok( poll_until(
		$primary, q{SELECT count(*) >= 1 FROM tego.job_runs
                     WHERE job_name = 'app-tick' AND status = 'pending'}, 10),
	'primary: the app job has a pending run');
my $claimed = qp(q{SELECT run_id FROM tego.job_claim('app-worker-1', '{app-tick}')});
like($claimed, qr/^\d+$/, 'primary: an app worker claims a run');
qp(qq{SELECT 1 FROM tego.job_finish($claimed, 'app-worker-1', true)});

qp(q{SELECT tego.publish('ops', '{"n": 5}')});
push @ops_sent, 5, 6;
my $s_primary = qp('SELECT tego.event_seq()');
$primary->wait_for_catchup($standby);
$holder->quit;
$primary->stop('immediate');

# what the standby has replayed: the promoted node continues from here
ok( poll_until(
		$standby, q{SELECT pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn()}, 10),
	'the standby has replayed all the WAL it received');
my $s_seq = qs('SELECT tego.event_seq()');
cmp_ok($s_seq, '>=', $s_primary,
	"the standby replayed the event log up to seq $s_seq (the test's last event: $s_primary)");
my $last_tick = qs(q{SELECT extract(epoch FROM max(scheduled_for))::bigint FROM tego.job_runs
                     WHERE job_name = 'tick'});
my $last_app = qs(q{SELECT extract(epoch FROM max(scheduled_for))::bigint FROM tego.job_runs
                    WHERE job_name = 'app-tick'});

my $promoted_at = time;
$standby->promote;
ok(poll_until($standby, q{SELECT NOT pg_is_in_recovery()}, 30), 'the standby is promoted');

# leases: node-b's lease (ttl 2 s) runs out; the next holder's token is larger
ok(poll_until($standby, q{SELECT NOT live FROM tego.leases WHERE name = 'leader'}, 10),
	"promoted: node-b's lease has run out");
like(err_of($standby, qq{SELECT tego.lease_assert('leader', $n_token)}),
	qr/ERROR:  lease "leader" is not held with token $n_token/,
	"promoted: node-b's token $n_token no longer passes lease_assert");
my $grant = qs(q{SELECT acquired || ' ' || token FROM tego.lease_acquire('leader', 'node-c', '1 minute')});
is($grant, 'true ' . ($n_token + 1), 'promoted: node-c acquires the lease with token N + 1');
is(qs(q{SELECT token FROM tego.lease_acquire('fresh', 'node-c')}), 1,
	'promoted: a new lease starts at token 1');

# events: the next seq is the replayed one + 1, with no hole and no reuse
qs(q{SELECT tego.publish('ops', '{"n": 6}')});
my $mine = qs(q{SELECT seq FROM tego.events WHERE topic = 'ops'
                  AND payload->'message' = '{"n": 6}'});
cmp_ok($mine, '>', $s_seq, "promoted: its first published event has seq $mine > $s_seq");
is(qs(qq{SELECT min(seq) FROM tego.events WHERE seq > $s_seq}), $s_seq + 1,
	"promoted: the first event committed after promotion has seq S + 1 = " . ($s_seq + 1));
is(qs(q{SELECT (count(*) = max(seq) AND min(seq) = 1) || ' ' || (max(seq) > 0)
          FROM tego.events_since(0, NULL, 100000)}),
	'true true', 'promoted: events_since(0) returns seqs 1 .. max, without a hole');
is(qs(q{SELECT count(*) FROM (SELECT seq - lag(seq) OVER (ORDER BY seq) AS step
                               FROM tego.events_since(0, NULL, 100000)) s
         WHERE step <> 1}),
	0, 'promoted: every step between consecutive seqs is 1');
is(qs(q{SELECT string_agg(payload->>'message', ',' ORDER BY seq) FROM tego.events_since(0, '{ops}')}),
	join(',', map { qq({"n": $_}) } @ops_sent),
	'promoted: the ops topic has the events of both nodes, in order');

# the scheduler resumes on the promoted node
ok( poll_until(
		$standby, qq{SELECT count(*) >= 2 FROM tego.job_runs
                      WHERE job_name = 'tick' AND status = 'succeeded'
                        AND scheduled_for > to_timestamp($last_tick)}, 20),
	'promoted: the SQL job runs again');
diag(sprintf('the SQL job ran on the promoted node %.2f s after pg_ctl promote',
		time - $promoted_at));
is(qs(qq{SELECT count(*) > 0 FROM ticks WHERE node = 'ops_standby'
                                          AND scheduled_for > to_timestamp($last_tick)}),
	't', 'promoted: its runs wrote ticks rows from the promoted node');
ok( poll_until(
		$standby, qq{SELECT count(*) >= 1 FROM tego.job_runs
                      WHERE job_name = 'app-tick' AND scheduled_for > to_timestamp($last_app)}, 20),
	'promoted: the app job fires again');
{
	# claim until a run comes (one may be pending from before the failover)
	my ($run, $deadline) = ('', time + 20);
	while ($run eq '' && time < $deadline)
	{
		$run = qs(q{SELECT run_id FROM tego.job_claim('app-worker-2', '{app-tick}')});
		usleep(100_000) if $run eq '';
	}
	like($run, qr/^\d+$/, 'promoted: an app worker claims a run there');
	is(qs(qq{SELECT status FROM tego.job_finish(${\($run || 0)}, 'app-worker-2', true)}),
		'succeeded', '... and finishes it');
}
ok( poll_until(
		$standby, qq{SELECT count(*) >= 1 FROM tego.events e
                      WHERE e.seq > $s_seq AND e.topic = 'tego_jobs' AND e.event = 'run-due'}, 20),
	'promoted: run-due is announced from the promoted node');

# stop firing; then the history is final
qs(q{SELECT 1 FROM tego.alter_job('tick', active => false);
     SELECT 1 FROM tego.alter_job('app-tick', active => false)});
ok( poll_until(
		$standby, q{SELECT count(*) = 0 FROM tego.job_runs
                     WHERE job_name = 'tick' AND status IN ('queued', 'running')}, 20),
	'promoted: no SQL run is left queued or running');

is(qs(q{SELECT count(*) FROM (SELECT job_name, scheduled_for FROM tego.job_runs
                                GROUP BY 1, 2 HAVING count(*) > 1) d}),
	0, 'no (job, scheduled time) in tego.job_runs twice, across the failover');
is(qs(q{SELECT coalesce(string_agg(scheduled_for || ' x' || n, ', '), '')
          FROM (SELECT scheduled_for, count(*) n FROM ticks GROUP BY 1 HAVING count(*) > 1) d}),
	'', 'no scheduled time of the SQL job ran twice (ticks: one row per scheduled time)');
is(qs(q{SELECT count(*) FROM ticks WHERE scheduled_for IS NULL}), 0,
	'every ticks row found its run');
is( qs(
		q{SELECT count(*) FROM tego.job_runs r
           WHERE r.job_name = 'tick' AND r.status = 'succeeded'
             AND NOT EXISTS (SELECT 1 FROM ticks t WHERE t.scheduled_for = r.scheduled_for)}),
	0, 'every succeeded run has its ticks row');
is( qs(
		q{SELECT coalesce(string_agg(t.scheduled_for || ' ' || coalesce(r.status, 'no run'), ', '), '')
            FROM ticks t LEFT JOIN tego.job_runs r
                 ON r.job_name = 'tick' AND r.scheduled_for = t.scheduled_for
           WHERE r.status IS DISTINCT FROM 'succeeded' AND r.status IS DISTINCT FROM 'interrupted'}),
	'', 'every ticks row belongs to a run that succeeded (or was interrupted by the failover)');
my $both = qs(q{SELECT count(DISTINCT node) FROM ticks});
is($both, 2, 'ticks were written by both nodes');

# ---------------------------------------------------------------------------
# 6. application status after promotion
# ---------------------------------------------------------------------------
is(qs(q{SELECT string_agg(app || ' ' || status, ',') FROM tego.apps}),
	'replica-app running',
	'promoted: tego.apps still has the status set on the standby, and not the old primary\'s');
my $l = $standby->background_psql('postgres');
$l->query_safe('LISTEN tego_apps');
qs(q{SELECT tego.app_status_set('next-app', 'initializing')});
my $heard = '';
my $deadline = time + 10;
while (time < $deadline)
{
	$heard .= $l->query('SELECT 1');
	last if $heard =~ /"app": "replica-app"/ && $heard =~ /"app": "next-app"/;
	usleep(100_000);
}
like($heard, qr/Asynchronous notification "tego_apps" with payload "[^\n]*"app": "next-app"/,
	'promoted: a new app status change is announced');
like($heard, qr/Asynchronous notification "tego_apps" with payload "[^\n]*"app": "replica-app"/,
	'promoted: the change made while it was a standby is announced with it');
$l->quit;

unlike(slurp_file($standby->logfile), qr/terminated by signal|PANIC|TRAP:/,
	'no crash on the promoted node');
$standby->stop('fast');
done_testing();
