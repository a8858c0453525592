# A transaction's events are numbered under a per-database event lock, not
# the cluster-wide NOTIFY lock: while one database's tego commit is stalled
# after numbering (its insert waits for a table lock), another database's
# plain NOTIFY and tego.publish commit at once, while a tego commit of the
# same database waits its turn (commit order).  A large batch reaches a
# listener whole and in seq order.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use TegoTest;
use Time::HiRes qw(usleep);

my $node = PostgreSQL::Test::Cluster->new('events_lock');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'tego'\n");
$node->start;

$node->safe_psql('postgres', 'CREATE EXTENSION tego');
$node->safe_psql('postgres', 'CREATE DATABASE other');
$node->safe_psql('other', 'CREATE EXTENSION tego');

# a blocker stalls the next tego commit of postgres inside its commit
my $blocker = $node->background_psql('postgres');
$blocker->query_safe('BEGIN; LOCK TABLE tego.events IN SHARE MODE');

my $stalled = $node->background_psql('postgres');
$stalled->query_until(qr/started/, q{
\echo started
BEGIN;
SELECT tego.publish('orders', '{"from": "stalled"}');
COMMIT;
});
ok( poll_until(
		$node, q{SELECT count(*) = 1 FROM pg_stat_activity
		  WHERE query LIKE 'COMMIT%' AND wait_event_type = 'Lock'
		    AND datname = 'postgres'}, 60),
	'the tego commit is stalled while storing its events');

# another database: plain NOTIFY and tego.publish commit without waiting.
# NB: lock_timeout only turns a wait on the lock (the old behaviour) into a
# failure instead of a hang; nothing here waits when it works.
my ($rc, $out, $err) = $node->psql('other', q{
SET lock_timeout = '60s';
SELECT pg_notify('elsewhere', 'plain');
});
is($rc, 0, 'a plain NOTIFY in another database commits during the stalled commit')
  or diag($err);
($rc, $out, $err) = $node->psql('other', q{
SET lock_timeout = '60s';
SELECT tego.publish('orders', '{"from": "other"}');
SELECT tego.event_seq();
});
is($rc, 0, 'tego.publish in another database commits during the stalled commit')
  or diag($err);
is($out, "\n1", 'and is numbered in its own database');

# the same database: a tego commit waits for the stalled one (commit order)
my $second = $node->background_psql('postgres');
$second->query_until(qr/started/, q{
\echo started
SELECT tego.publish('orders', '{"from": "second"}');
});
ok( poll_until(
		$node, q{SELECT count(*) = 1 FROM pg_stat_activity
		  WHERE query LIKE '%"second"%' AND wait_event_type = 'Lock'
		    AND datname = 'postgres'}, 60),
	'a tego commit of the same database waits for the stalled one');
my ($locktype) = $node->safe_psql('postgres', q{
	SELECT string_agg(DISTINCT l.locktype || ':' || l.objsubid, ',')
	  FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
	 WHERE NOT l.granted AND a.query LIKE '%"second"%'});
is($locktype, 'advisory:29799', 'it waits on the database event lock');

$blocker->query_safe('COMMIT');
$blocker->quit;
$stalled->quit;
$second->quit;
is( $node->safe_psql('postgres',
		q{SELECT string_agg(seq || '=' || (payload->'message'->>'from'), ',' ORDER BY seq)
		    FROM tego.events}),
	'1=stalled,2=second',
	'the stalled commit got seq 1, the one that waited seq 2');

# a large batch reaches a listener whole, in seq order
my $listener = $node->background_psql('postgres');
$listener->query_safe('LISTEN bulk');
$node->safe_psql('postgres', q{
	SELECT count(tego.publish('bulk', jsonb_build_object('i', i)))
	  FROM generate_series(1, 20000) i});
my $got = '';
for (my $i = 0; $i < 600; $i++)
{
	$got .= $listener->query_safe('SELECT 1');
	my $n = () = $got =~ /notification "bulk"/g;
	last if $n >= 20000;
	usleep(100_000);
}
my @seqs = ($got =~ /payload "\{"seq": (\d+), "topic": "bulk"/g);
is(scalar(@seqs), 20000, 'the listener got every notification of the batch');
is_deeply(\@seqs, [ 3 .. 20002 ], 'in seq order, gapless');
$listener->quit;

is( $node->safe_psql('postgres',
		q{SELECT count(*) || ' ' || min(seq) || ' ' || max(seq) FROM tego.events WHERE topic = 'bulk'}),
	'20000 3 20002', 'the batch is stored whole');

$node->stop;
done_testing();
