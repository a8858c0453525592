# Copyright: the tego authors.  PostgreSQL::Test::Cluster TAP test.
#
# Leases across sessions and restarts: a session-bound lease ends when its
# session is terminated (pg_terminate_backend) and the next holder's token
# is larger; a deposed leader's lease_assert + write fails while the new
# leader's succeeds; tokens survive an immediate shutdown (crash recovery)
# and keep growing.  A plugin operation guard whose holder's session dies
# is taken over by the next holder.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use TegoTest;

my $node = PostgreSQL::Test::Cluster->new('leases');
$node->init;
$node->append_conf('postgresql.conf', qq{shared_preload_libraries = 'tego'});
$node->start;
$node->safe_psql(
	'postgres', q{
CREATE EXTENSION tego;
CREATE TABLE ledger (writer text NOT NULL, token bigint NOT NULL);
});

sub q1 { return $node->safe_psql('postgres', $_[0]); }

# ---------------------------------------------------------------------------
# 1. a session-bound lease ends with its session
# ---------------------------------------------------------------------------
my $s = $node->background_psql('postgres');
my $grant = $s->query_safe(
	q{SELECT acquired || ' ' || token
        FROM tego.lease_acquire('primary', 'worker-1', '1 hour', session_bound => true)});
is($grant, 'true 1', 'worker-1 holds the session-bound lease with token 1');
my $pid = $s->query_safe('SELECT pg_backend_pid()');
is(q1(q{SELECT holder || ' ' || live || ' ' || session_pid FROM tego.leases WHERE name = 'primary'}),
	"worker-1 true $pid", 'the lease is live and names the session');
is(q1(q{SELECT acquired || ' ' || holder FROM tego.lease_acquire('primary', 'worker-2')}),
	'false worker-1', 'another holder is refused while the session lives');

q1(qq{SELECT pg_terminate_backend($pid)});
ok(poll_until($node, q{SELECT NOT live FROM tego.leases WHERE name = 'primary'}, 10),
	'the lease ends once its session has been terminated (its 1-hour ttl notwithstanding)');
$s->quit;
is(q1(q{SELECT acquired || ' ' || holder || ' ' || token FROM tego.lease_acquire('primary', 'worker-2')}),
	'true worker-2 2', 'the next holder gets the lease with a larger token');
is( q1(
		q{SELECT event || ':' || (payload #>> '{previous,ended}')
            FROM tego.events WHERE topic = 'tego_leases' AND event = 'leader-changed'
           ORDER BY seq DESC LIMIT 1}),
	'leader-changed:session ended',
	'the leader-changed event says the previous lease ended with its session');

# ---------------------------------------------------------------------------
# 2. a deposed leader's writes are refused, the new leader's go in
# ---------------------------------------------------------------------------
is(q1(q{SELECT token FROM tego.lease_acquire('writer', 'node-a', '1 second')}),
	'1', 'node-a leads with token 1 for one second');
ok(poll_until($node, q{SELECT NOT live FROM tego.leases WHERE name = 'writer'}, 10),
	"node-a's lease expired (it did not renew)");
is(q1(q{SELECT token FROM tego.lease_acquire('writer', 'node-b', '1 minute')}),
	'2', 'node-b takes over with token 2');

# fenced_write($writer, $token): the leader's write, guarded by its token;
# returns psql's exit code and stderr
sub fenced_write
{
	my ($writer, $token) = @_;
	my ($rc, $stdout, $stderr) = $node->psql(
		'postgres', qq{
BEGIN;
SELECT tego.lease_assert('writer', $token);
INSERT INTO ledger VALUES ('$writer', $token);
COMMIT;
}, on_error_stop => 1);
	return ($rc, $stderr);
}

my ($ret, $err) = fenced_write('node-a', 1);
isnt($ret, 0, "node-a's fenced transaction fails");
like($err, qr/lease "writer" is not held with token 1/, '... on lease_assert, saying why');
like($err, qr/It is held with another token, or by another holder\./,
	'... and that another holding has it, without naming its holder or token');
($ret, $err) = fenced_write('node-b', 2);
is($ret, 0, "node-b's fenced transaction commits");
is(q1(q{SELECT string_agg(writer || '/' || token, ',') FROM ledger}), 'node-b/2',
	'only the current leader wrote');

# ---------------------------------------------------------------------------
# 3. tokens are durable: an immediate shutdown does not make them go back
# ---------------------------------------------------------------------------
$node->stop('immediate');
$node->start;
is(q1(q{SELECT holder || ' ' || token FROM tego.leases WHERE name = 'writer'}),
	'node-b 2', 'after crash recovery the lease row is back');
q1(q{SELECT tego.lease_release('writer', 'node-b', 2)});
is(q1(q{SELECT token FROM tego.lease_acquire('writer', 'node-a')}),
	'3', 'the next holder after the crash gets token 3');

# ---------------------------------------------------------------------------
# 4. a plugin operation guard whose holder's session dies is taken over
# ---------------------------------------------------------------------------
q1(q{SELECT 1 FROM tego.plugin_add('crm')});
$s = $node->background_psql('postgres');
is($s->query_safe(q{SELECT holder FROM tego.plugin_begin('crm', 'upgrade', 'worker-1', '1 hour')}),
	'worker-1', 'worker-1 runs the upgrade of crm');
$pid = $s->query_safe('SELECT pg_backend_pid()');
(undef, undef, $err) = $node->psql('postgres',
	q{SELECT tego.plugin_begin('crm', 'upgrade', 'worker-2')});
like($err, qr/plugin "crm" is busy: "worker-1" is running its upgrade/,
	'worker-2 is refused while worker-1 runs it');
q1(qq{SELECT pg_terminate_backend($pid)});
ok(poll_until($node, q{SELECT NOT live FROM tego.plugin_operations WHERE name = 'crm'}, 10),
	"the guard is free once worker-1's session has ended (its 1-hour timeout notwithstanding)");
$s->quit;
is(q1(q{SELECT holder FROM tego.plugin_begin('crm', 'upgrade', 'worker-2')}),
	'worker-2', 'worker-2 takes the guard over');
is( q1(
		q{SELECT payload #>> '{previous,ended}' FROM tego.events
           WHERE event = 'plugin-operation-started' ORDER BY seq DESC LIMIT 1}),
	'session ended', 'its event says the previous holder\'s session ended');

unlike(slurp_file($node->logfile), qr/TRAP:|terminated by signal (?!15)/,
	'no crash in the server log');
$node->stop('fast');
done_testing();
