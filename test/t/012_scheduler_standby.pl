# Copyright: the tego authors.  PostgreSQL::Test::Cluster TAP test.
#
# The scheduler on a streaming standby: the standby runs no scheduler (it
# starts only once recovery has finished), so every job run it holds was
# replicated from the primary.  After the primary goes down and the standby
# is promoted, a scheduler starts there and the schedule continues: later
# scheduled times, no scheduled time twice, no run left 'running'.
use strict;
use warnings;

use Time::HiRes qw(usleep time);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use TegoTest;

my $primary = PostgreSQL::Test::Cluster->new('sched_primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', "shared_preload_libraries = 'tego'");
$primary->start;
$primary->safe_psql(
	'postgres', q{
CREATE EXTENSION tego;
CREATE ROLE tego_job LOGIN;
CREATE TABLE ticks (ts timestamptz NOT NULL, node text NOT NULL);
GRANT INSERT ON ticks TO tego_job;
});

$primary->backup('bk');
my $standby = PostgreSQL::Test::Cluster->new('sched_standby');
$standby->init_from_backup($primary, 'bk', has_streaming => 1);
$standby->start;


my $scheduler_count = q{SELECT count(*) FROM pg_stat_activity
                         WHERE backend_type = 'tego scheduler'};
my $runs_query = q{SELECT extract(epoch FROM scheduled_for)::bigint || ' ' || run_id
                     FROM tego.job_runs WHERE job_name = 'tick' ORDER BY scheduled_for};

ok(poll_until($primary, "SELECT ($scheduler_count) = 1", 30), 'the primary runs a scheduler');
is($standby->safe_psql('postgres', 'SELECT pg_is_in_recovery()'), 't',
	'the standby is in recovery');

# The job writes which node ran it, then sleeps 1.2 s: with overlap skip
# it runs every other second and a run is 'running' most of the time, so
# the failover below most likely leaves one behind.
$primary->safe_psql(
	'postgres', q{
SELECT 1 FROM tego.schedule('tick', '* * * * * *',
  $$INSERT INTO ticks VALUES (clock_timestamp(), current_setting('cluster_name'));
    SELECT pg_sleep(1.2)$$,
  username => 'tego_job', overlap => 'skip');
});
ok( poll_until(
		$primary, q{SELECT count(*) >= 2 FROM tego.job_runs
                     WHERE job_name = 'tick' AND status = 'succeeded'}, 20),
	'the job runs on the primary');
$primary->wait_for_catchup($standby);
ok( poll_until(
		$standby, q{SELECT count(*) >= 2 FROM tego.job_runs WHERE job_name = 'tick'}, 20),
	'its runs are replicated to the standby');

# a few more seconds of firing: the standby must stay without a scheduler
# (sampled each 0.2 s while the primary fires)
my $seen_on_standby = 0;
my $end = time + 3;
while (time < $end)
{
	$seen_on_standby++ if $standby->safe_psql('postgres', $scheduler_count) != 0;
	usleep(200_000);
}
is($seen_on_standby, 0, 'no tego scheduler process on the standby, ever');
is($standby->safe_psql('postgres',
		q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'tego job'}),
	0, 'no tego job worker on the standby');

# the standby's runs are a prefix of the primary's (read standby first)
my $s_runs = $standby->safe_psql('postgres', $runs_query);
my $p_runs = $primary->safe_psql('postgres', $runs_query);
my @s = split /\n/, $s_runs;
my @p = split /\n/, $p_runs;
cmp_ok(scalar(@s), '>=', 2, scalar(@s) . ' runs on the standby');
is_deeply(\@s, [ @p[ 0 .. $#s ] ],
	"the standby's runs are a prefix of the primary's (same times, same run ids)");
is($standby->safe_psql('postgres',
		q{SELECT count(*) FROM ticks WHERE node <> 'sched_primary'}),
	0, 'every ticks row on the standby was written on the primary');

# the registry mirror is kept by the primary's commit hooks, which a standby
# does not run: a standby reads the table, and has no epoch of its own
is($standby->safe_psql('postgres',
		q{SET tego.registry_source = memory;
		  SELECT count(*) = (SELECT count(*) FROM tego.plugins) FROM tego.plugin_list()}),
	't', 'on the standby, plugin_list with registry_source = memory reads the table');
my ($rc, $out, $err) = $standby->psql('postgres', 'SELECT tego.registry_epoch()');
like($err, qr/ERROR:  the registry mirror is not available on a standby/,
	'tego.registry_epoch() on the standby says why it has none');

# ---------------------------------------------------------------------------
# failover
# ---------------------------------------------------------------------------

# crash the primary while a run is running, once the standby has that
# run's 'running' row: it is left 'running' in the replicated table
ok( poll_until(
		$primary, q{SELECT count(*) = 1 FROM tego.job_runs
                     WHERE status = 'running' AND now() > scheduled_for}, 10),
	'a run is running on the primary');
$primary->wait_for_catchup($standby);
my $last_primary = $primary->safe_psql('postgres',
	q{SELECT extract(epoch FROM max(scheduled_for))::bigint
        FROM tego.job_runs WHERE job_name = 'tick'});
$primary->stop('immediate');
my $open_at_failover = $standby->safe_psql('postgres',
	q{SELECT coalesce(string_agg(run_id || ':' || status, ','), '')
        FROM tego.job_runs WHERE status IN ('queued', 'running')});
my $last_standby = $standby->safe_psql('postgres',
	q{SELECT extract(epoch FROM max(scheduled_for))::bigint
        FROM tego.job_runs WHERE job_name = 'tick'});
note("primary's last scheduled second $last_primary; standby has up to "
	  . "$last_standby; open runs on the standby: [$open_at_failover]");
cmp_ok($last_standby, '>=', $last_primary - 1,
	"the standby had the primary's runs up to the failover");

my $promoted_at = time;
$standby->promote;
ok(poll_until($standby, q{SELECT NOT pg_is_in_recovery()}, 30), 'the standby is promoted');
ok(poll_until($standby, "SELECT ($scheduler_count) = 1", 30),
	'a scheduler starts on the promoted node');
diag(sprintf('scheduler up %.2f s after pg_ctl promote', time - $promoted_at));

ok( poll_until(
		$standby, qq{SELECT count(*) >= 2 FROM tego.job_runs
                      WHERE job_name = 'tick' AND status = 'succeeded'
                        AND scheduled_for > to_timestamp($last_standby)}, 20),
	'the job runs on the promoted node');
is($standby->safe_psql('postgres',
		qq{SELECT count(*) FROM ticks WHERE node = 'sched_standby'
                                 AND ts > to_timestamp($last_standby)}) > 0
	  ? 't' : 'f',
	't', 'the promoted node wrote ticks rows of its own');

# stop firing, so that the history below is final
$standby->safe_psql('postgres', q{SELECT 1 FROM tego.alter_job('tick', active => false)});
ok( poll_until(
		$standby, q{SELECT count(*) = 0 FROM tego.job_runs
                     WHERE status IN ('queued', 'running', 'pending')}, 20),
	'no run is left queued or running');

my $hist = $standby->safe_psql('postgres',
	q{SELECT extract(epoch FROM scheduled_for)::bigint, status, run_id
        FROM tego.job_runs WHERE job_name = 'tick' ORDER BY scheduled_for});
my @h = map { [ split /\|/ ] } split /\n/, $hist;
is( $standby->safe_psql('postgres',
		q{SELECT count(*) - count(DISTINCT scheduled_for) FROM tego.job_runs
           WHERE job_name = 'tick'}),
	0,
	'no scheduled_for twice');
my @new = grep { $_->[0] > $last_standby } @h;
cmp_ok(scalar(@new), '>=', 2, scalar(@new) . ' runs after the failover');
my @steps = map { $h[$_][0] - $h[ $_ - 1 ][0] } 1 .. $#h;
is_deeply([ grep { $_ <= 0 } @steps ], [], 'scheduled times only go forward');
my $gap = (sort { $b <=> $a } @steps)[0];
diag("largest step between scheduled times: $gap s (the failover gap, when > 1)");
cmp_ok($gap, '<=', 10,
	'missed seconds within the catch-up window (10 s) were fired after promotion');
is_deeply(
	[ map { "$_->[0] $_->[1]" } grep { $_->[1] !~ /^(?:succeeded|interrupted|skipped)$/ } @h ],
	[], 'every run succeeded, was skipped or was interrupted');

for my $o (grep { $_ ne '' } split /,/, $open_at_failover)
{
	my ($id, $st) = split /:/, $o;
	my $now = $standby->safe_psql('postgres',
		"SELECT status FROM tego.job_runs WHERE run_id = $id");
	if ($st eq 'running')
	{
		is($now, 'interrupted', "run $id, running at the failover, is now 'interrupted'");
	}
	else
	{
		like($now, qr/^(?:succeeded|skipped)$/, "run $id, $st at the failover, was run since");
	}
}

unlike(slurp_file($standby->logfile), qr/terminated by signal|PANIC|TRAP:/,
	'no crash on the promoted node');

$standby->stop('fast');
done_testing();
