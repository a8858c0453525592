# The registry and the events work without shared_preload_libraries: the
# library is loaded by the first tego function a backend calls.  (The
# scheduler needs the preload, and is absent here.)
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('no_preload');
$node->init;
$node->start;

is($node->safe_psql('postgres', 'SHOW shared_preload_libraries'), '',
	'tego is not preloaded');
$node->safe_psql('postgres', 'CREATE EXTENSION tego');

# a listener in its own session
my $listener = $node->background_psql('postgres');
$listener->query_safe('LISTEN tego_plugins');

my $out = $node->safe_psql('postgres', q{
	SELECT name, state FROM tego.plugin_add('users');
	SELECT name, state FROM tego.plugin_add('acl', depends_on => '{users}');
	SELECT string_agg(name || '=' || state, ',') FROM tego.plugin_enable('acl', 'users');
	SELECT tego.publish('orders', '{"id": 1}');
});
like($out, qr/users=enabled,acl=enabled/, 'lifecycle calls work without preload');

is( $node->safe_psql('postgres',
		q{SELECT string_agg(seq || ':' || topic, ',' ORDER BY seq)
		    FROM tego.events_since(0)}),
	'1:tego_plugins,2:tego_plugins,3:tego_plugins,4:tego_plugins,5:orders',
	'events are stored, numbered in commit order');

# psql shows the notifications it received when it runs its next command
my $notes = $listener->query_safe('SELECT 1');
my @seqs = $notes =~ /"seq": (\d+)/g;
is(join(',', @seqs), '1,2,3,4', 'the LISTEN session received the plugin events in order');

is($node->safe_psql('postgres',
		q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'tego scheduler'}),
	0, 'no scheduler without the preload');

# the scheduler's functions refuse nothing here; jobs are stored, not run
$node->safe_psql('postgres', q{
	CREATE ROLE tego_job LOGIN;
	SELECT tego.schedule('later', '@daily', 'SELECT 1', username => 'tego_job');
});
is($node->safe_psql('postgres', q{SELECT count(*) FROM tego.jobs}), 1,
	'jobs can be scheduled (they run once the server preloads tego)');

# the shared-memory state needs the preload, and says so
my ($ret, $stdout, $stderr) =
  $node->psql('postgres', q{SELECT tego.app_status_set('main', 'running')});
isnt($ret, 0, 'app_status_set fails without the preload');
like($stderr, qr/ERROR:  tego shared state is not available/, '... with a clear error');
like($stderr, qr/HINT:  Add tego to shared_preload_libraries and restart the server/,
	'... and a hint');
($ret, $stdout, $stderr) = $node->psql('postgres', q{SELECT count(*) FROM tego.apps});
like($stderr, qr/tego shared state is not available/, 'so does reading tego.apps');
is($node->safe_psql('postgres',
		q{SELECT preloaded || ' ' || coalesce(scheduler_pid::text, '-') || ' ' || coalesce(apps::text, '-') FROM tego.status()}),
	'false - -', 'tego.status() says tego is not preloaded');
($ret, $stdout, $stderr) = $node->psql('postgres',
	q{SET tego.registry_source = memory; SELECT count(*) FROM tego.plugin_list()});
like($stderr, qr/tego shared state is not available/,
	'the registry mirror (tego.registry_source = memory) needs it too');
# leases and guards are rows: they work without it
is($node->safe_psql('postgres',
		q{SELECT token FROM tego.lease_acquire('leader', 'node-a')}),
	1, 'leases work without the preload');

$listener->quit;
$node->safe_psql('postgres', 'DROP EXTENSION tego');
is($node->safe_psql('postgres',
		q{SELECT count(*) FROM pg_namespace WHERE nspname = 'tego'}),
	0, 'DROP EXTENSION removes everything');
$node->stop;
done_testing();
