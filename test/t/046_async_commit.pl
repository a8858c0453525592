# Events committed with synchronous_commit = off are visible before their
# WAL is flushed, so a crash can lose events a reader has already seen.
# tego numbers such commits below a durable ceiling (tego.event_seq_reserved)
# and continues past it after a restart: the seq a reader saw is never given
# to another event.  Synchronous commits alone leave no gap across a crash.
# Without the preload (no shared memory for the ceiling) such a commit is
# made synchronous, and its events survive the crash.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use TegoTest;

# the last line of a multi-statement psql output
sub last_line { return (split /\n/, shift)[-1]; }

# the WAL writer flushes asynchronous commits late: a crash loses them
my $conf = qq{
wal_writer_delay = 10000ms
wal_writer_flush_after = 0
autovacuum = off
checkpoint_timeout = 1h
};

my $node = PostgreSQL::Test::Cluster->new('async_commit');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'tego'\n$conf");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION tego');
$node->safe_psql('postgres', 'CREATE DATABASE synconly');
$node->safe_psql('synconly', 'CREATE EXTENSION tego');

# synchronous commits only: gapless across a crash
$node->safe_psql('synconly', "SELECT tego.publish('orders', jsonb_build_object('n', i)) FROM generate_series(1, 3) i");
$node->safe_psql('postgres', "SELECT tego.publish('orders', '{\"n\": 0}')");

# asynchronous commits, one event each; what a reader sees of them
my $seen = last_line($node->safe_psql('postgres', q{
SET synchronous_commit = off;
SELECT tego.publish('orders', '{"n": 1}');
SELECT tego.publish('orders', '{"n": 2}');
SELECT tego.publish('orders', '{"n": 3}');
SELECT max(seq) FROM tego.events_since(0, '{orders}');
}));
is($seen, '4', 'asynchronous commits are numbered after the synchronous one');
my $reserved = $node->safe_psql('postgres',
	'SELECT last_value FROM tego.event_seq_reserved WHERE is_called');
cmp_ok($reserved, '>=', $seen, 'the durable ceiling covers what they were given');

$node->stop('immediate');
$node->start;

my $kept = $node->safe_psql('postgres', 'SELECT count(*) FROM tego.events');
note("events kept across the crash: $kept of 4");
my $next = last_line($node->safe_psql('postgres', q{
SELECT tego.publish('orders', '{"n": 5}');
SELECT tego.event_seq();
}));
cmp_ok($next, '>', $seen, 'after the crash, no seq a reader saw is given again');
cmp_ok($next, '>', $reserved, 'numbering continues past the ceiling');
my $later = last_line($node->safe_psql('postgres', q{
SELECT tego.publish('orders', '{"n": 6}');
SELECT tego.event_seq();
}));
is($later, $next + 1, 'and is gapless again from there');

$node->safe_psql('synconly', "SELECT tego.publish('orders', '{\"n\": 4}')");
is($node->safe_psql('synconly', 'SELECT string_agg(seq::text, \',\' ORDER BY seq) FROM tego.events'),
	'1,2,3,4', 'synchronous commits leave no gap across a crash');
$node->stop;

# without the preload, an asynchronous tego commit is made synchronous
my $plain = PostgreSQL::Test::Cluster->new('async_no_preload');
$plain->init;
$plain->append_conf('postgresql.conf', $conf);
$plain->start;
$plain->safe_psql('postgres', 'CREATE EXTENSION tego');
$plain->safe_psql('postgres', q{
SET synchronous_commit = off;
SELECT tego.publish('orders', '{"n": 1}');
SELECT tego.publish('orders', '{"n": 2}');
});
$plain->stop('immediate');
$plain->start;
is($plain->safe_psql('postgres', 'SELECT string_agg(seq::text, \',\' ORDER BY seq) FROM tego.events'),
	'1,2', 'without the preload, events of asynchronous commits survive a crash');
$plain->stop;

done_testing();
