# Copyright: the tego authors.  PostgreSQL::Test::Cluster TAP test.
#
# Security of the shared state (issue 10, findings 7 and 9 for leases,
# plugin operation guards and app status): two application roles with the
# README's grants (app1, app2) and a role with none (nobody) attack each
# other.  One role cannot renew, release, assert or take over another
# role's lease, nor learn its holder or token from an error; cannot end
# another role's plugin operation guard; cannot overwrite or forget another
# role's app status.  One role cannot use up the app-status slots of other
# databases nor the lease capacity of other roles; released leases are
# reclaimed while a name's fencing token never goes backwards.  Intervals
# are bounded, months included.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use TegoTest;

my $node = PostgreSQL::Test::Cluster->new('security_shared');
$node->init;
$node->append_conf(
	'postgresql.conf', qq{shared_preload_libraries = 'tego'
tego.max_apps = 10
tego.max_leases = 12
tego.max_leases_per_role = 5
});
$node->start;

my $grants = q{
GRANT USAGE ON SCHEMA tego TO app1, app2;
GRANT EXECUTE ON FUNCTION
    tego.plugin_add(text, text, text, jsonb, boolean, boolean, text[]),
    tego.plugin_get(text), tego.plugin_list(boolean),
    tego.lease_acquire(text, text, interval, boolean),
    tego.lease_renew(text, text, bigint, interval),
    tego.lease_release(text, text, bigint), tego.lease_assert(text, bigint),
    tego.plugin_begin(text, text, text, interval),
    tego.plugin_end(text, text, boolean, text),
    tego.app_status_set(text, text, text, text),
    tego.app_maintaining_set(text, text, text, text, text),
    tego.app_forget(text), tego._apps(), tego.status()
  TO app1, app2;
GRANT SELECT ON tego.leases, tego.plugin_operations, tego.apps TO app1, app2;
};
$node->safe_psql('postgres',
	q{CREATE ROLE app1 LOGIN; CREATE ROLE app2 LOGIN; CREATE ROLE nobody LOGIN;
      CREATE DATABASE db1; CREATE EXTENSION tego;} . $grants);
$node->safe_psql('db1', 'CREATE EXTENSION tego;' . $grants);

# Run $sql as $role (in $db, default postgres); returns (sqlstate or '',
# stdout, stderr).  Errors are printed with their SQLSTATE.
sub as_role
{
	my ($role, $sql, $db) = @_;
	my ($out, $err) = ('', '');
	$node->psql(
		$db // 'postgres', "\\set VERBOSITY verbose\n$sql",
		stdout => \$out,
		stderr => \$err,
		extra_params => [ '-U', $role ]);
	my ($state) = $err =~ /ERROR:\s+([0-9A-Z]{5}):/;
	return ($state // '', $out, $err);
}

# The SQLSTATE of running $sql as $role ('' when it succeeded).
sub state_of { my @r = as_role(@_); return $r[0]; }

# Run $sql as the superuser; its output ('' on error, reported by the
# assertion that needed it).
sub q1
{
	my ($sql, $db) = @_;
	my $out = '';
	$node->psql($db // 'postgres', $sql, stdout => \$out);
	return $out;
}

# ---------------------------------------------------------------------------
subtest 'another role cannot renew, release, assert or take over a lease' => sub {
	my ($state, $token) = as_role('app1',
		q{SELECT token FROM tego.lease_acquire('leader', 'node-1', '1 hour')});
	is($state, '', 'app1 acquires leader');
	my $before = q1(q{SELECT holder || ' ' || token || ' ' || expires_at || ' ' || owner
                        FROM tego.leases WHERE name = 'leader'});
	is(state_of('app2', "SELECT tego.lease_renew('leader', 'node-1', $token, '1 day')"),
		'42501', 'app2 cannot renew it');
	is(state_of('app2', "SELECT tego.lease_release('leader', 'node-1', $token)"),
		'42501', 'app2 cannot release it');
	is(state_of('app2', "BEGIN; SELECT tego.lease_assert('leader', $token); COMMIT;"),
		'42501', 'app2 cannot assert it');
	is(state_of('app2', q{SELECT tego.lease_acquire('leader', 'node-1')}),
		'42501', 'app2 cannot acquire it, even naming its holder');
	is(state_of('nobody', q{SELECT tego.lease_acquire('leader', 'node-9')}),
		'42501', 'nobody cannot call lease_acquire at all');
	is( q1(q{SELECT holder || ' ' || token || ' ' || expires_at || ' ' || owner
               FROM tego.leases WHERE name = 'leader'}),
		$before, 'the lease is unchanged, and owned by app1');

	# an expired lease of another role cannot be taken over either
	as_role('app1', q{SELECT tego.lease_acquire('short', 'node-1', '10 milliseconds')});
	ok(poll_until($node, q{SELECT NOT live FROM tego.leases WHERE name = 'short'}, 10),
		'app1\'s lease "short" expires');
	is(state_of('app2', q{SELECT tego.lease_acquire('short', 'node-2')}),
		'42501', 'app2 cannot take over the expired lease');
	is(q1(q{SELECT holder || ' ' || token FROM tego.leases WHERE name = 'short'}),
		'node-1 1', '... which keeps its holder and token');
	is( (as_role('app1', q{SELECT acquired || ' ' || token FROM tego.lease_acquire('short', 'node-3')}))[1],
		'true 2', 'app1 itself takes it over with the next token');

	# app2 sees that the name is taken, not who holds it
	my ($s2, $rows) = as_role('app2',
		q{SELECT name || ':' || coalesce(holder, '-') || ':' || coalesce(token::text, '-') || ':' || owner || ':' || live
            FROM tego.leases WHERE name = 'leader'});
	is($rows, 'leader:-:-:app1:true', 'app2 reads the name, owner and liveness, not the holder or token');
	is( (as_role('app1', q{SELECT holder || ':' || token FROM tego.leases WHERE name = 'leader'}))[1],
		"node-1:$token", 'app1 reads its own holder and token');
};

# ---------------------------------------------------------------------------
subtest 'lease_assert does not reveal the holder or token' => sub {
	my $token = q1(q{SELECT token FROM tego.leases WHERE name = 'leader'});
	my $wrong = $token + 41;
	my ($state, $out, $err) = as_role('app1',
		"BEGIN; SELECT tego.lease_assert('leader', $wrong); COMMIT;");
	is($state, 'TG002', 'a stale token is refused (TG002)');
	like($err, qr/DETAIL:/, '... with a DETAIL');
	unlike($err, qr/node-1/, '... that does not name the holder');
	unlike($err, qr/DETAIL:[^\n]*\b$token\b/, '... nor give the token');
	($state, $out, $err) = as_role('app2', "BEGIN; SELECT tego.lease_assert('leader', $wrong); COMMIT;");
	is($state, '42501', 'app2 is refused before any token check');
	unlike($err, qr/node-1|\b$token\b/, '... and learns neither holder nor token');
	like($err, qr/permission denied for lease "leader"/, '... permission denied for lease "leader"');
};

# ---------------------------------------------------------------------------
subtest 'another role cannot end or take over a plugin operation guard' => sub {
	q1(q{SELECT tego.plugin_add('crm')});
	my $app1 = $node->background_psql('postgres', extra_params => [ '-U', 'app1' ]);
	$app1->query_safe(q{SELECT tego.plugin_begin('crm', 'upgrade', 'worker-1')});
	my $before = q1(q{SELECT holder || ' ' || operation || ' ' || session_pid || ' ' || owner
                        FROM tego.plugin_operations WHERE name = 'crm'});
	is(state_of('app2', q{SELECT tego.plugin_end('crm', 'worker-1', false, 'ended by app2')}),
		'42501', 'app2 cannot end app1\'s guard');
	is(state_of('app2', q{SELECT tego.plugin_begin('crm', 'remove', 'worker-1')}),
		'42501', 'app2 cannot take it, even naming its holder');
	my ($s, $rows) = as_role('app2',
		q{SELECT name || ':' || operation || ':' || coalesce(holder, '-') || ':' || owner || ':' || live
            FROM tego.plugin_operations});
	is($rows, 'crm:upgrade:-:app1:true', 'app2 sees the operation and its owner, not the holder');
	is( q1(q{SELECT holder || ' ' || operation || ' ' || session_pid || ' ' || owner
               FROM tego.plugin_operations WHERE name = 'crm'}),
		$before, 'the guard is unchanged');

	# once app1's session is gone, app2 still cannot take the guard over
	$app1->quit;
	ok(poll_until($node, q{SELECT NOT live FROM tego.plugin_operations WHERE name = 'crm'}, 10),
		'the guard ends with app1\'s session');
	is(state_of('app2', q{SELECT tego.plugin_begin('crm', 'upgrade', 'worker-2')}),
		'42501', 'app2 cannot take over the dead guard');
	is(q1(q{SELECT holder FROM tego.plugin_operations WHERE name = 'crm'}),
		'worker-1', '... which still names worker-1');
	is(state_of('app1', q{SELECT tego.plugin_end('crm', 'worker-1', true)}),
		'', 'app1 ends it');
};

# ---------------------------------------------------------------------------
subtest 'another role cannot overwrite or forget an app status' => sub {
	is(state_of('app1', q{SELECT tego.app_status_set('main', 'running', 'secret-message')}),
		'', 'app1 sets its app main');
	my $before = q1(q{SELECT status || ' ' || message || ' ' || version || ' ' || owner
                        FROM tego.apps WHERE app = 'main'});
	is($before, 'running secret-message 1 app1', 'main is app1\'s');
	is(state_of('app2', q{SELECT tego.app_status_set('main', 'stopped')}),
		'42501', 'app2 cannot overwrite its status');
	is(state_of('app2', q{SELECT tego.app_maintaining_set('main', 'pm.enable', 'command_begin')}),
		'42501', 'app2 cannot start a command on it');
	is(state_of('app2', q{SELECT tego.app_forget('main')}),
		'42501', 'app2 cannot forget it');
	is( q1(q{SELECT status || ' ' || message || ' ' || version || ' ' || owner
               FROM tego.apps WHERE app = 'main'}),
		$before, 'main is unchanged');
	my ($s, $rows) = as_role('app2',
		q{SELECT app || ':' || status || ':' || coalesce(message, '-') || ':' || owner FROM tego.apps});
	is($rows, 'main:running:-:app1', 'app2 sees the status and owner, not the message');
	is(state_of('app1', q{SELECT tego.app_forget('main')}), '', 'app1 forgets it');
};

# ---------------------------------------------------------------------------
subtest 'one role cannot take every app slot' => sub {
	my $made = 0;
	my $last = '';
	for my $i (1 .. 10)
	{
		$last = state_of('app1', "SELECT tego.app_status_set('db1-app-$i', 'running')", 'db1');
		last if $last ne '';
		$made++;
	}
	is($made, 5, 'app1 gets 5 of the 10 slots in db1 (half of tego.max_apps)');
	is($last, '54000', '... then too many apps (54000)');
	is(state_of('app2', q{SELECT tego.app_status_set('other', 'running')}),
		'', 'app2 still gets a slot in another database');
	q1(q{SELECT count(tego.app_forget(app)) FROM tego.apps}, 'db1');
	q1(q{SELECT count(tego.app_forget(app)) FROM tego.apps});
};

# ---------------------------------------------------------------------------
subtest 'one role cannot take every lease' => sub {
	my $made = 0;
	my $last = '';
	for my $i (1 .. 8)
	{
		$last = state_of('app2', "SELECT tego.lease_acquire('fill-$i', 'node-2', '1 hour')");
		last if $last ne '';
		$made++;
	}
	# app2 owns no lease yet: 5 live ones is its share
	is($made, 5, 'app2 holds 5 live leases (tego.max_leases_per_role)');
	is($last, '54000', '... then too many leases (54000)');
	is(state_of('app1', q{SELECT tego.lease_acquire('app1-more', 'node-1', '1 hour')}),
		'', 'app1 still acquires a new lease');
};

# ---------------------------------------------------------------------------
subtest 'released leases are reclaimed; tokens never go backwards' => sub {
	# "cycle" changes hands three times, then is released
	for my $h (1 .. 3)
	{
		as_role('app1', "SELECT tego.lease_acquire('cycle', 'node-$h')");
		as_role('app1', "SELECT tego.lease_release('cycle', 'node-$h', $h)");
	}
	is(q1(q{SELECT coalesce(holder, '-') || ' ' || token FROM tego.leases WHERE name = 'cycle'}),
		'- 3', 'cycle is free with token 3');
	# app1 owns leader, short, app1-more, cycle: one more name fills its share,
	# the next one reclaims its released lease
	is(state_of('app1', q{SELECT tego.lease_acquire('app1-fifth', 'node-1', '1 hour')}),
		'', 'app1 takes its fifth name');
	is(state_of('app1', q{SELECT tego.lease_acquire('app1-sixth', 'node-1', '1 hour')}),
		'', 'a sixth one reclaims its released lease');
	is(q1(q{SELECT count(*) FROM tego.lease_state WHERE name = 'cycle'}),
		'0', 'the released lease is gone');
	my $sixth = q1(q{SELECT token FROM tego.leases WHERE name = 'app1-sixth'});
	cmp_ok($sixth, '>', 3, 'a name made after the reclaim starts above the reclaimed token');
	as_role('app1', "SELECT tego.lease_release('app1-sixth', 'node-1', $sixth)");
	my ($s, $grant) = as_role('app1',
		q{SELECT acquired || ' ' || token FROM tego.lease_acquire('cycle', 'node-4')});
	like($grant, qr/^true (\d+)$/, 'cycle is acquired again');
	my ($token) = $grant =~ /(\d+)$/;
	cmp_ok($token // 0, '>', 3, 'with a larger token than it ever had');

	# app2's released leases make room for another role when the table is full
	for my $i (1 .. 5)
	{
		as_role('app2', "SELECT tego.lease_release('fill-$i', 'node-2', 1)");
	}
	q1(q{SELECT tego.lease_acquire('admin-' || g, 'node-0') FROM generate_series(1, 2) g});
	is(q1(q{SELECT count(*) FROM tego.lease_state}), '12', 'the table is full (tego.max_leases = 12)')
	  or diag(q1(q{SELECT string_agg(name || '/' || owner, ' ') FROM tego.lease_state}));
	$node->safe_psql(
		'postgres', q{CREATE ROLE app3 LOGIN;
GRANT USAGE ON SCHEMA tego TO app3;
GRANT EXECUTE ON FUNCTION tego.lease_acquire(text, text, interval, boolean) TO app3;
GRANT SELECT ON tego.leases TO app3;});
	is(state_of('app3', q{SELECT tego.lease_acquire('app3-own', 'node-3')}),
		'', 'a third role acquires a lease: released ones are reclaimed');
	cmp_ok(q1(q{SELECT token FROM tego.leases WHERE name = 'app3-own'}), '>', 1,
		'... with a token above every reclaimed one');
};

# ---------------------------------------------------------------------------
subtest 'intervals are bounded, months included' => sub {
	q1(q{SELECT tego.plugin_add('mail')});
	for my $t ('1 month -30 days 00:00:01', '1 mon -29 days', '1 year -365 days',
		'178000000 years', '1 day -24:00:01', '1 day 00:00:00.000001',
		'100000000 days', '-1 second', '0')
	{
		is(state_of('app1', "SELECT tego.plugin_begin('mail', 'upgrade', 'w', timeout => '$t')"),
			'22023', "plugin_begin refuses timeout '$t'");
		is(state_of('app2', "SELECT tego.lease_acquire('bounded', 'node-2', '$t')"),
			'22023', "lease_acquire refuses ttl '$t'");
		is(state_of('app1', "SELECT tego.lease_renew('leader', 'node-1', 1, '$t')"),
			'22023', "lease_renew refuses ttl '$t'");
	}
	is(q1(q{SELECT count(*) FROM tego.plugin_operations WHERE name = 'mail'}), '0',
		'no guard was taken');
	is(q1(q{SELECT count(*) FROM tego.lease_state WHERE name = 'bounded'}), '0',
		'no lease was made');
	is(state_of('app2', q{SELECT tego.lease_acquire('bounded', 'node-2', '1 day')}),
		'', 'one day is fine');
};

$node->stop;
done_testing();
