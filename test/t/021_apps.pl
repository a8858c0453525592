# Copyright: the tego authors.  PostgreSQL::Test::Cluster TAP test.
#
# Application status in shared memory: a LISTEN session receives the
# changes on tego_apps (from the "tego notifier" worker); four sessions
# changing statuses at once leave every app with a version that counts
# every change and the state of its last change; the state is ephemeral:
# empty after a restart.  Also the registry mirror when it is too small for
# the registry (tego.max_plugins): reads go to the table, with the same
# results.
use strict;
use warnings;

use Time::HiRes qw(usleep time);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('apps');
$node->init;
$node->append_conf('postgresql.conf', qq{shared_preload_libraries = 'tego'
tego.max_plugins = 16});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION tego');

sub q1 { return $node->safe_psql('postgres', $_[0]); }

# ---------------------------------------------------------------------------
# 1. a LISTEN session receives the changes
# ---------------------------------------------------------------------------
my $listener = $node->background_psql('postgres');
$listener->query_safe('LISTEN tego_apps');
q1(q{SELECT tego.app_status_set('main', 'running', 'up')});
q1(q{SELECT tego.app_maintaining_set('main', 'pm.enable', 'command_begin', 'enabling crm')});

# psql shows the notifications it received when it runs its next command
my $got = '';
my $deadline = time + 10;
while (time < $deadline)
{
	$got .= $listener->query_safe('SELECT 1');
	last if $got =~ /"maintaining_status": "command_begin"/;
	usleep(50_000);
}
like($got, qr/Asynchronous notification "tego_apps"/, 'the listener received tego_apps notifications');
like($got, qr/"event": "app-status-changed", "key": "main"/, '... for app main');
my ($last) = $got =~ /.*("payload": \{[^}]*"version": 2[^}]*\})/s;
$last //= '';
like($last, qr/"status": "commanding"/, '... with the state after command_begin: commanding');
like($last, qr/"previous_status": "running"/, '... the saved status');
like($last, qr/"command": "pm.enable"/, '... and the command');
my @versions = $got =~ /"version": (\d+)/g;
is($versions[-1], 2, 'the last one carries version 2 (two changes)');
is(q1(q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'tego notifier'}), 1,
	'one notifier serves the database');

# ---------------------------------------------------------------------------
# 2. many sessions at once
# ---------------------------------------------------------------------------
my @sessions;
for my $w (1 .. 4)
{
	my $sql = join("\n",
		map { "SELECT tego.app_status_set('app-$_', 'running', 'from session $w');" }
		  map { ($_ % 5) + 1 } 1 .. 250);
	push @sessions, $node->background_psql('postgres');
	$sessions[-1]->query_safe($sql);
}
$_->quit for @sessions;
is(q1(q{SELECT count(*) || ' ' || sum(version) FROM tego.apps WHERE app LIKE 'app-%'}),
	'5 1000', 'five apps, 1000 changes counted');
is(q1(q{SELECT bool_and(status = 'running' AND message LIKE 'from session _') FROM tego.apps WHERE app LIKE 'app-%'}),
	't', 'each app holds the state of one of its changes');

# the listener sees the last state of every app (changes may be coalesced)
$got = '';
$deadline = time + 10;
my %last;
while (time < $deadline)
{
	$got = $listener->query_safe('SELECT 1');
	while ($got =~ /"key": "(app-\d)".*?"version": (\d+)/g) { $last{$1} = $2; }
	my $all = 1;
	for my $a (1 .. 5)
	{
		my $v = q1(qq{SELECT version FROM tego.apps WHERE app = 'app-$a'});
		$all = 0 unless ($last{"app-$a"} // 0) == $v;
	}
	last if $all;
	usleep(50_000);
}
is(join(',', map { $last{"app-$_"} // 0 } 1 .. 5),
	join(',', map { q1(qq{SELECT version FROM tego.apps WHERE app = 'app-$_'}) } 1 .. 5),
	'the last notification of each app carries its current version');
$listener->quit;

# ---------------------------------------------------------------------------
# 3. ephemeral: a restart empties it
# ---------------------------------------------------------------------------
$node->restart;
is(q1(q{SELECT count(*) FROM tego.apps}), 0, 'after a restart no app status is left');

# ---------------------------------------------------------------------------
# 4. a registry larger than the mirror: the table answers
# ---------------------------------------------------------------------------
q1(q{SELECT count(*) FROM generate_series(1, 12) g, LATERAL tego.plugin_add('few-' || g)});
my $compare = q{
SET tego.registry_source = memory;
CREATE TEMP TABLE m AS SELECT ordinality AS pos, p::text AS row FROM tego.plugin_list() WITH ORDINALITY p;
RESET tego.registry_source;
SELECT (SELECT count(*) FROM m) || ' ' || bool_and(m.row = t.row)
  FROM m JOIN (SELECT ordinality AS pos, p::text AS row FROM tego.plugin_list() WITH ORDINALITY p) t USING (pos);
};
is(q1($compare), '12 true', '12 plugins: the mirror (16 entries) lists them');
q1(q{SELECT count(*) FROM generate_series(13, 30) g, LATERAL tego.plugin_add('few-' || g)});
is(q1($compare), '30 true', '30 plugins: more than the mirror holds, the same list from the table');
is(q1(q{SET tego.registry_source = memory; SELECT name FROM tego.plugin_get('few-30')}),
	'few-30', 'and plugin_get finds a plugin the mirror could not hold');

unlike(slurp_file($node->logfile), qr/TRAP:|terminated by signal|PANIC/,
	'no crash in the server log');
$node->stop('fast');
done_testing();
