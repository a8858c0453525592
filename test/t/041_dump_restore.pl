# Copyright: the tego authors.  PostgreSQL::Test::Cluster TAP test.
#
# Backups with pg_dump / pg_restore.  tego's durable state (plugins, jobs,
# leases, the event log) lives in extension configuration tables, which
# pg_dump dumps with their rows: pg_restore recreates the extension (its
# CREATE EXTENSION) and then loads the rows.  Checked after a restore into
# a new database:
# - tego.plugins, tego.jobs, tego.job_runs, the leases (holders, tokens,
#   expiries) and tego.events are identical;
# - everything continues where it was: a lease taken over gets the next
#   token, the next event gets seq = last + 1, the identity sequences go on
#   (a new plugin or job does not collide with a restored one);
# - what is not carried: application status (shared memory), the registry
#   mirror (rebuilt from the table), plugin operation guards (bound to a
#   session).  The job run history comes back too.
# A restore into a second cluster, in its tego.database, runs the
# restored jobs there; a copy restored into another database of the same
# cluster does not run them.
use strict;
use warnings;

use IPC::Run;
use Time::HiRes qw(usleep time);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use TegoTest;

my $node = PostgreSQL::Test::Cluster->new('dump_src');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'tego'");
$node->start;

my $setup_roles = q{
CREATE ROLE tego_job LOGIN;
};
$node->safe_psql('postgres', $setup_roles . q{
CREATE EXTENSION tego;
CREATE TABLE ticks (ran_at timestamptz NOT NULL, node text NOT NULL);
CREATE TABLE beats (ran_at timestamptz NOT NULL, node text NOT NULL,
                    db text NOT NULL);
GRANT INSERT ON ticks, beats TO tego_job;
});

sub q1 { return $node->safe_psql($_[1] // 'postgres', $_[0]); }

# ---------------------------------------------------------------------------
# 1. state to back up
# ---------------------------------------------------------------------------
q1(q{
SELECT 1 FROM tego.plugin_add('core', '@tachybase/core', '1.0.0', built_in => true);
SELECT 1 FROM tego.plugin_add('acl', '@tachybase/plugin-acl', '1.2.0',
                              options => '{"roles": ["admin", "member"], "strict": true}',
                              depends_on => '{core}');
SELECT 1 FROM tego.plugin_add('crm', '@tachybase/plugin-crm', '0.9.0',
                              options => jsonb_build_object('blob', repeat('x', 3000)),
                              sub_view => false, depends_on => '{acl,core}');
SELECT 1 FROM tego.plugin_add('audit', version => '2.0.0');
SELECT 1 FROM tego.plugin_add('tmp');
SELECT 1 FROM tego.plugin_enable('core', 'acl');
SELECT 1 FROM tego.plugin_install('crm');
SELECT 1 FROM tego.plugin_upgrade('acl', '1.3.0');
SELECT 1 FROM tego.plugin_update('audit', '{"options": {"level": "debug"}}');
-- the newest id is removed: the sequence is ahead of max(id)
SELECT 1 FROM tego.plugin_remove('{tmp}');
SELECT tego.publish('orders', '{"order": 1}');
SELECT tego.publish('orders', '{"order": 2}');
});

# leases: 'leader' changes hands twice (token 3, held for an hour),
# 'short' expires, 'free' is released
q1(q{
SELECT 1 FROM tego.lease_acquire('leader', 'node-a', '1 hour');
SELECT tego.lease_release('leader', 'node-a', 1);
SELECT 1 FROM tego.lease_acquire('leader', 'node-b', '1 hour');
SELECT tego.lease_release('leader', 'node-b', 2);
SELECT 1 FROM tego.lease_acquire('leader', 'node-c', '1 hour');
SELECT 1 FROM tego.lease_acquire('short', 'node-x', '1 second');
SELECT 1 FROM tego.lease_acquire('free', 'node-y', '1 hour');
SELECT tego.lease_release('free', 'node-y', 1);
});
is(q1(q{SELECT string_agg(name || ':' || coalesce(holder, '-') || ':' || token, ' ' ORDER BY name)
          FROM tego.leases}),
	'free:-:1 leader:node-c:3 short:node-x:1', 'leases before the dump');

# jobs: an SQL job and an app job that run a few times, then stop; an SQL
# job that keeps running (beat); a daily job with every option set; a job
# removed again (the job id sequence is ahead of max(job_id))
q1(q{
SELECT 1 FROM tego.schedule('tick', '1 seconds',
  $$INSERT INTO ticks VALUES (clock_timestamp(), current_setting('cluster_name'))$$,
  username => 'tego_job');
SELECT 1 FROM tego.schedule_app('report', '1 seconds', '{"report": "sales"}',
                                username => 'tego_job', max_attempts => 5,
                                claim_timeout => '30 seconds');
SELECT 1 FROM tego.schedule('nightly', '30 2 * * *', 'VACUUM ticks',
                            username => 'tego_job', timezone => 'Europe/Berlin',
                            max_runtime => '10 minutes', overlap => 'queue',
                            misfire => 'run_once', active => false);
SELECT 1 FROM tego.schedule('gone', '@hourly', 'SELECT 1', username => 'tego_job');
SELECT tego.unschedule('gone');
SELECT 1 FROM tego.schedule('beat', '1 seconds',
  $$INSERT INTO beats VALUES (clock_timestamp(), current_setting('cluster_name'),
                              current_database())$$,
  username => 'tego_job');
});
ok( poll_until(
		$node, q{SELECT count(*) >= 2 FROM tego.job_runs
                  WHERE job_name = 'tick' AND status = 'succeeded'}, 20),
	'the SQL job runs');
ok(poll_until($node, q{SELECT count(*) >= 1 FROM tego.job_runs
                        WHERE job_name = 'report' AND status = 'pending'}, 10),
	'the app job fires');
my $run = q1(q{SELECT run_id FROM tego.job_claim('app-1', '{report}')});
q1(qq{SELECT 1 FROM tego.job_finish($run, 'app-1', true, 'done')});
q1(q{SELECT 1 FROM tego.alter_job('tick', active => false);
     SELECT 1 FROM tego.alter_job('report', active => false)});
ok(poll_until($node, q{SELECT count(*) = 0 FROM tego.job_runs
                        WHERE job_name IN ('tick', 'report')
                          AND status IN ('queued', 'running')}, 10),
	'tick and report are stopped, their runs settled');
# the pending app run, if any, is finished too: the history is final
for my $r (split /\n/, q1(q{SELECT run_id FROM tego.job_claim('app-1', '{report}', 100)}))
{
	q1(qq{SELECT 1 FROM tego.job_finish($r, 'app-1', true)});
}

# state that is not carried: an app status, a plugin operation under way
q1(q{SELECT tego.app_status_set('main', 'running', 'listening')});
my $guard = $node->background_psql('postgres');
$guard->query_safe(q{SELECT 1 FROM tego.plugin_begin('crm', 'upgrade', 'worker-1')});

my %snap;
my %queries = (
	plugins => q{SELECT p::text FROM tego.plugins p ORDER BY id},
	load_order => q{SELECT name FROM tego.plugin_list()},
	jobs => q{SELECT j::text FROM tego.jobs j WHERE name <> 'beat' ORDER BY job_id},
	beat_job => q{SELECT j::text FROM tego.jobs j WHERE name = 'beat'},
	leases => q{SELECT name, holder, token, session_bound, session_pid, acquired_at,
                       renewed_at, expires_at FROM tego.leases ORDER BY name},
	events => q{SELECT e::text FROM tego.events e ORDER BY seq},
	ticks => q{SELECT t::text FROM ticks t ORDER BY ran_at},
	job_runs => q{SELECT r::text FROM tego.job_runs r
                   WHERE job_name IN ('tick', 'report') ORDER BY run_id},
);

# ---------------------------------------------------------------------------
# 2. dump (as the beat job keeps writing) and restore into a new database
# ---------------------------------------------------------------------------
my $dump = $node->basedir . '/tego.dump';
my ($beat_seq_before) = q1(q{SELECT tego.event_seq()});
# everything but the beat job and its events is settled: take the
# comparison snapshot, then dump
$snap{$_} = q1($queries{$_}) for keys %queries;
my $ids = q1(q{SELECT (SELECT last_value FROM tego.plugins_id_seq) || ' '
                   || (SELECT last_value FROM tego.jobs_job_id_seq)});
my ($plugin_seq, $job_seq) = split / /, $ids;
cmp_ok($plugin_seq, '>', q1('SELECT max(id) FROM tego.plugins'),
	"the plugin id sequence ($plugin_seq) is ahead of max(id)");

$node->command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $node->connstr('postgres') ],
	'pg_dump -Fc');
my $last_seq_dumped;
{
	# the events in the dump: the last one is the base of the next seq
	my ($stdout, $stderr);
	IPC::Run::run([ 'pg_restore', '-a', '-t', 'events', '-f', '-', $dump ],
		'>', \$stdout, '2>', \$stderr);
	my @seqs = $stdout =~ /^(\d+)\t/mg;
	$last_seq_dumped = (sort { $b <=> $a } @seqs)[0];
	cmp_ok($last_seq_dumped // 0, '>=', $beat_seq_before,
		"the dump holds the event log up to seq $last_seq_dumped");
}

q1('CREATE DATABASE restored');
{
	my ($stdout, $stderr);
	my $ok = IPC::Run::run([ 'pg_restore', '-d', $node->connstr('restored'), $dump ],
		'>', \$stdout, '2>', \$stderr);
	ok($ok, 'pg_restore -d restored exits with 0');
	is($stderr, '', 'pg_restore prints no error or warning');
}

sub qr1 { return $node->safe_psql('restored', $_[0]); }

is(qr1(q{SELECT extversion FROM pg_extension WHERE extname = 'tego'}),
	q1(q{SELECT extversion FROM pg_extension WHERE extname = 'tego'}),
	'the extension is recreated, at the same version');

# ---------------------------------------------------------------------------
# 3. what comes back
# ---------------------------------------------------------------------------
is(qr1($queries{plugins}), $snap{plugins}, 'tego.plugins: identical, every column');
is(qr1($queries{load_order}), $snap{load_order}, 'plugin_list(): the same load order');
is(qr1(q{SET tego.registry_source = 'memory'; } . $queries{load_order}), $snap{load_order},
	'plugin_list() from the mirror: the mirror is loaded from the restored table');
is(qr1(q{SET tego.registry_source = 'memory'; SELECT p::text FROM tego.plugin_get('crm') p}),
	qr1(q{SELECT p::text FROM tego.plugins p WHERE name = 'crm'}),
	'plugin_get() from the mirror: the restored row');
is(qr1($queries{jobs}), $snap{jobs}, 'tego.jobs: identical, every column');
is(qr1($queries{beat_job}), $snap{beat_job}, 'tego.jobs: the active job too');
is(qr1($queries{leases}), $snap{leases}, 'tego.leases: holders, tokens and times identical');
is(qr1(q{SELECT string_agg(name || ':' || live, ' ' ORDER BY name) FROM tego.leases}),
	'free:false leader:true short:false', 'tego.leases: a held lease is live, as before');
{
	my @restored = split /\n/, qr1($queries{events});
	my @orig = split /\n/, $snap{events};
	is_deeply([ @restored[ 0 .. $#orig ] ], \@orig,
		'tego.events: the events up to the comparison point, identical');
}
is(qr1('SELECT tego.event_seq()'), $last_seq_dumped, 'event_seq() is the last dumped seq');
is(qr1($queries{ticks}), $snap{ticks}, 'a table of the application comes back too');

is(qr1($queries{job_runs}), $snap{job_runs}, 'tego.job_runs: the run history identical');
my $restored_runs = qr1(q{SELECT count(*) FROM tego.job_runs});
is(qr1(q{SELECT (SELECT max(run_id) FROM tego.job_runs)
              < nextval(pg_get_serial_sequence('tego.job_runs', 'run_id'))}),
	't', 'tego.job_runs: new runs are numbered after the restored ones');

# not carried, by design
is(qr1(q{SELECT count(*) FROM tego.apps}), 0, 'tego.apps: empty in the restored database');
is(q1(q{SELECT count(*) FROM tego.apps}), 1, '(the source database still has its app)');
is(qr1(q{SELECT count(*) FROM tego.plugin_operations}), 0,
	'tego.plugin_operations: the operation under way is not carried');
$guard->quit;

# ---------------------------------------------------------------------------
# 4. everything continues in the restored database
# ---------------------------------------------------------------------------
my $last = qr1('SELECT tego.event_seq()');
is(qr1(q{SELECT acquired || ' ' || holder || ' ' || token
           FROM tego.lease_acquire('leader', 'node-d')}),
	'false node-c 3', 'restored: the lease held by node-c (token 3) is refused to node-d');
qr1(q{SELECT tego.lease_release('leader', 'node-c', 3)});
is(qr1(q{SELECT acquired || ' ' || token FROM tego.lease_acquire('leader', 'node-d')}),
	'true 4', 'restored: after node-c releases it, node-d gets token 4');
is(qr1(q{SELECT acquired || ' ' || token FROM tego.lease_acquire('short', 'node-z')}),
	'true 2', 'restored: the expired lease is taken over with token 2');
is(qr1(q{SELECT min(seq) || ' ' || max(seq) || ' ' || count(*)
           FROM tego.events_since(} . $last . q{)}),
	($last + 1) . ' ' . ($last + 4) . ' 4',
	'restored: those changes are events seq last + 1 .. last + 4 (released, '
	  . 'leader-changed, lease-expired, leader-changed)');

my $new = qr1(q{SELECT id FROM tego.plugin_add('fresh', '@tachybase/fresh')});
$new .= ' ' . qr1(q{SELECT revision FROM tego.plugins WHERE name = 'fresh'});
is($new, ($plugin_seq + 1) . ' ' . ($last + 5),
	'restored: a new plugin gets the next id of the restored sequence, and the next seq');
is(qr1(q{SELECT tego.registry_epoch()}), $last + 5,
	'restored: the registry epoch is the latest registry change');
is(qr1(q{SELECT count(*) FROM tego.plugins}), 5, 'restored: five plugins');
is(qr1(q{SELECT job_id FROM tego.schedule('later', '@daily', 'SELECT 1', username => 'tego_job')}),
	$job_seq + 1, 'restored: a new job gets the next id of the restored sequence');
is(qr1(qq{SELECT string_agg(topic || ' ' || event || ' ' || key, ',' ORDER BY seq)
            FROM tego.events_since($last + 4, '{tego_plugins}')}),
	'tego_plugins plugin-state-changed fresh', 'restored: events_since() with a topic');
is(qr1(qq{SELECT count(*) FROM tego.events_since(0, NULL, 100000)}),
	qr1('SELECT max(seq) FROM tego.events'), 'restored: the event log has no hole');

# the restored copy's jobs are not run: the scheduler reads the jobs of
# tego.database (postgres) only
ok(poll_until($node, q{SELECT count(*) >= 3 FROM beats WHERE db = 'postgres'
                        AND ran_at > now() - interval '10 seconds'}, 15),
	'the source database\'s beat job keeps running');
is(qr1(q{SELECT count(*) FROM tego.job_runs}), $restored_runs,
	'restored (not tego.database): no new run of its restored jobs');

# the source is independent of the copy
q1(q{SELECT 1 FROM tego.plugin_add('only-in-source')});
is(qr1(q{SELECT count(*) FROM tego.plugins WHERE name = 'only-in-source'}), 0,
	'a change in the source database is not in the copy');

# ---------------------------------------------------------------------------
# 5. a restore into another cluster's tego.database runs the restored jobs
# ---------------------------------------------------------------------------
my $other = PostgreSQL::Test::Cluster->new('dump_dst');
$other->init;
$other->append_conf('postgresql.conf', "shared_preload_libraries = 'tego'");
$other->start;
$other->safe_psql('postgres', $setup_roles);
{
	my ($stdout, $stderr);
	my $ok = IPC::Run::run([ 'pg_restore', '-d', $other->connstr('postgres'), $dump ],
		'>', \$stdout, '2>', \$stderr);
	ok($ok, 'pg_restore into the postgres database of a second cluster');
	is($stderr, '', '... with no error or warning');
}
is($other->safe_psql('postgres', $queries{plugins}), $snap{plugins},
	'second cluster: tego.plugins identical');
my $o_runs = $other->safe_psql('postgres',
	q{SELECT count(*) FROM tego.job_runs WHERE job_name <> 'beat'});
is($other->safe_psql('postgres', $queries{leases}), $snap{leases},
	'second cluster: tego.leases identical');
ok( poll_until(
		$other, q{SELECT count(*) >= 2 FROM beats WHERE node = 'dump_dst'}, 15),
	'second cluster: the restored active job runs there');
is($other->safe_psql('postgres',
		q{SELECT count(*) FROM tego.job_runs WHERE job_name <> 'beat'}),
	$o_runs, 'second cluster: the inactive jobs do not (their restored runs only)');
my $o_last = $other->safe_psql('postgres', 'SELECT max(seq) FROM tego.events');
is($other->safe_psql('postgres',
		q{SELECT count(*) = max(seq) FROM tego.events_since(0, NULL, 100000)}),
	't', "second cluster: the event log goes on without a hole (at seq $o_last)");
is($other->safe_psql('postgres',
		q{SELECT acquired || ' ' || token FROM tego.lease_acquire('short', 'node-q')}),
	'true 2', 'second cluster: the next token of a restored lease');

unlike(slurp_file($node->logfile), qr/TRAP:|terminated by signal|PANIC/,
	'no crash in the source server\'s log');
unlike(slurp_file($other->logfile), qr/TRAP:|terminated by signal|PANIC/,
	'no crash in the second server\'s log');
$other->stop('fast');
$node->stop('fast');
done_testing();
