# Copyright: the tego authors.  PostgreSQL::Test::Cluster TAP test.
#
# The tego command-line tool (src/cli/, installed as $(pg_config --bindir)/tego):
# every command against a preloaded node, its tables against what the
# database holds and its --json output against its tables; exit codes
# (1 server error with the SQLSTATE, 2 usage, 3 connection); --help of
# every command; "events tail" catching up, following, ending on
# SIGTERM, refusing a compacted position (TG001), and reconnecting after
# pg_terminate_backend with every event printed exactly once, including
# those committed while it could not connect; forged notifications (sent
# by a role with no grants) printing nothing, tego_apps printed from
# tego.apps (across a reconnection too), and a role that cannot read
# tego.apps.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use JSON::PP;
use Time::HiRes qw(usleep time);
use TegoTest;

# The tool: the installed one (make install), else the one built in the
# source tree named by TEGO_SRC.
my $bindir = `pg_config --bindir`;
chomp $bindir;
my @candidates = ("$bindir/tego");
push @candidates, "$ENV{TEGO_SRC}/src/cli/tego" if $ENV{TEGO_SRC};
my ($tego) = grep { -f $_ && -x $_ } @candidates;
plan skip_all => "the tego command-line tool is not built (looked for @candidates)"
  unless $tego;
note "using $tego";

my $node = PostgreSQL::Test::Cluster->new('cli');
$node->init;
$node->append_conf('postgresql.conf', qq{shared_preload_libraries = 'tego'});
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION tego;
CREATE ROLE app LOGIN;
CREATE DATABASE app;
});
$node->safe_psql('app', 'CREATE EXTENSION tego');

sub q1 { return $node->safe_psql($_[1] // 'postgres', $_[0]); }

# cli([-d DB,] ARGS...): run the tool against the node; (exit code, stdout, stderr)
sub cli
{
	my @args = @_;
	my $db = 'postgres';
	if (@args && $args[0] eq '-d') { (undef, $db) = splice(@args, 0, 2); }
	return run_raw('-h', $node->host, '-p', $node->port, '-d', $db, @args);
}

sub run_raw
{
	my ($out, $err) = ('', '');
	IPC::Run::run([ $tego, @_ ], '<', \undef, '>', \$out, '2>', \$err,
		IPC::Run::timeout(60));
	return ($? >> 8, $out, $err);
}

# Parse psql-style aligned output: (column names, rows as hashes, "(N rows)" count).
sub parse_table
{
	my ($text) = @_;
	my @lines = split /\n/, $text;
	my @cols = map { s/^\s+|\s+$//gr } split /\|/, shift(@lines), -1;
	my $sep = shift @lines;
	die "no separator line in:\n$text" unless defined $sep && $sep =~ /^-[-+]*$/;
	my (@rows, $count);
	for my $l (@lines)
	{
		if ($l =~ /^\((\d+) rows?\)$/) { $count = $1; last; }
		my @v = map { s/^\s+|\s+$//gr } split /\|/, $l, -1;
		push @v, '' while @v < @cols;
		my %r;
		@r{@cols} = @v;
		push @rows, \%r;
	}
	return (\@cols, \@rows, $count);
}

# A JSON value as the table shows it.
my $canon = JSON::PP->new->canonical;
sub as_table_text
{
	my ($v) = @_;
	return '' unless defined $v;
	return $v ? 't' : 'f' if JSON::PP::is_bool($v);
	return '{' . join(',', @$v) . '}' if ref $v eq 'ARRAY';
	return $canon->encode($v) if ref $v eq 'HASH';
	return "$v";
}

# The table cell, made comparable with as_table_text (JSON objects re-encoded).
sub cell_text
{
	my ($c) = @_;
	if ($c =~ /^\{/)
	{
		my $v = eval { decode_json($c) };
		return $canon->encode($v) if ref $v eq 'HASH';
	}
	return $c;
}

# json_matches_table(TABLE_TEXT, JSON_TEXT, NAME): the JSON array has the
# table's rows, in order, with the same value in every column the table shows.
sub json_matches_table
{
	my ($table, $json, $name) = @_;
	my ($cols, $rows, $count) = parse_table($table);
	my $arr = eval { decode_json($json) };
	ok(ref $arr eq 'ARRAY', "$name: --json is a JSON array") or return;
	is(scalar @$arr, scalar @$rows, "$name: as many objects as table rows");
	my @diffs;
	for my $i (0 .. $#$rows)
	{
		for my $c (@$cols)
		{
			if (!exists $arr->[$i]{$c}) { push @diffs, "row $i: no key $c"; next; }
			my $t = cell_text($rows->[$i]{$c});
			my $j = as_table_text($arr->[$i]{$c});
			push @diffs, "row $i $c: table [$t] json [$j]" if $t ne $j;
		}
	}
	is_deeply(\@diffs, [], "$name: every column of the table has the same value in --json");
}

my ($rc, $out, $err);

# ---------------------------------------------------------------------------
# 1. help, version, usage errors, connection failures
# ---------------------------------------------------------------------------
($rc, $out, $err) = run_raw('--version');
is($rc, 0, '--version exits 0');
like($out, qr/^tego \d+\.\d+\.\d+/, '--version prints the version');

($rc, $out, $err) = run_raw('--help');
is($rc, 0, '--help exits 0');
like($out, qr/Exit status:.*0  success.*1  the server.*2  usage.*3  could not connect/s,
	'--help documents the exit codes');

for my $cmd ('pm', 'pm list', 'pm add', 'pm install', 'pm enable', 'pm disable',
	'pm remove', 'pm upgrade', 'jobs', 'jobs list', 'jobs run', 'jobs history',
	'apps', 'leases', 'status', 'events', 'events tail')
{
	($rc, $out, $err) = run_raw(split(/ /, $cmd), '--help');
	ok($rc == 0 && $out =~ /^Usage:\n  tego .*\Q$cmd\E/ && $err eq '',
		"tego $cmd --help exits 0 and prints its usage")
	  or diag("rc $rc\n$out\n$err");
	($rc, my $out2) = run_raw('help', split(/ /, $cmd));
	is($out2, $out, "tego help $cmd prints the same");
}

($rc, $out, $err) = cli('frobnicate');
is($rc, 2, 'an unknown command exits 2');
like($err, qr/unknown command "frobnicate".*Usage:/s, '... with the usage on stderr');
is($out, '', '... and nothing on stdout');
($rc, $out, $err) = run_raw('--frobnicate', 'pm', 'list');
is($rc, 2, 'an unknown global option exits 2');
like($err, qr/unknown option "--frobnicate".*Usage:/s, '... with the usage');
($rc, $out, $err) = cli('pm', 'list', '--frobnicate');
is($rc, 2, 'an unknown option of a command exits 2');
like($err, qr/unknown option "--frobnicate".*Usage:\n  tego .*pm list/s,
	"... with the command's usage");
($rc, $out, $err) = cli('pm', 'frobnicate');
is($rc, 2, 'an unknown subcommand exits 2');
($rc, $out, $err) = run_raw();
is($rc, 2, 'no command exits 2');
($rc, $out, $err) = cli('pm', 'enable');
is($rc, 2, 'pm enable without a name exits 2');
($rc, $out, $err) = cli('pm', 'add', 'a', 'b', '--version', '1.0.0');
is($rc, 2, 'pm add of several names with --version exits 2');
($rc, $out, $err) = cli('jobs', 'history', '--limit', 'ten');
is($rc, 2, 'a bad --limit exits 2');

my $free_port = PostgreSQL::Test::Cluster::get_free_port();
($rc, $out, $err) = run_raw('-h', $node->host, '-p', $free_port, 'status');
is($rc, 3, 'no server at that socket: exit 3');
like($err, qr/could not connect to the server at socket directory "\Q${\$node->host}\E", port $free_port/,
	'... the message names the socket directory and port');
like($err, qr/\.s\.PGSQL\.$free_port/, "... and carries libpq's message");
($rc, $out, $err) = run_raw('-h', '127.0.0.1', '-p', $free_port, 'pm', 'list');
is($rc, 3, 'no server at that TCP port: exit 3');
like($err, qr/could not connect to the server at host "127\.0\.0\.1", port $free_port/,
	'... the message names the host and port');
($rc, $out, $err) = run_raw('-d', "postgresql:///postgres?host=${\$node->host}&port=${\$node->port}",
	'status');
is($rc, 0, 'a URI in --dbname connects');

# ---------------------------------------------------------------------------
# 2. pm
# ---------------------------------------------------------------------------
($rc, $out, $err) = cli('pm', 'add', 'users', '--package', '@tachybase/plugin-users',
	'--version', '1.0.0');
is($rc, 0, 'pm add users exits 0');
my (undef, $rows, $count) = parse_table($out);
is($count, 1, 'pm add prints the added row');
is(join(' ', map { $rows->[0]{$_} } qw(name package_name version state)),
	'users @tachybase/plugin-users 1.0.0 added', '... with its columns');
is(q1(q{SELECT package_name || ' ' || version || ' ' || state FROM tego.plugins WHERE name = 'users'}),
	'@tachybase/plugin-users 1.0.0 added', 'the database holds it');

($rc, $out, $err) = cli('pm', 'add', 'acl', 'crm', '--depends-on', 'users', '--options',
	'{"ttl": 30}');
is($rc, 0, 'pm add acl crm (two names) exits 0');
(undef, $rows, $count) = parse_table($out);
is($count, 2, '... and prints both rows');
is(q1(q{SELECT string_agg(name || ':' || depends_on::text || ':' || options::text, ' ' ORDER BY id)
          FROM tego.plugins WHERE name IN ('acl', 'crm')}),
	'acl:{users}:{"ttl": 30} crm:{users}:{"ttl": 30}', 'both are in the database, with their options');

($rc, $out, $err) = cli('pm', 'add', 'acl', 'erp');
is($rc, 1, 'pm add of an existing name exits 1');
like($err, qr/^tego: error: plugin "acl" already exists \(SQLSTATE 23505\)$/m,
	'... with the message and SQLSTATE on stderr');
is(q1(q{SELECT count(*) FROM tego.plugins WHERE name = 'erp'}), '0',
	'several names are added all or none');

($rc, $out, $err) = cli('pm', 'enable', 'acl', 'crm');
is($rc, 1, 'pm enable of plugins whose dependency is not enabled exits 1');
like($err, qr/^tego: error: cannot enable plugin "\w+" \(SQLSTATE 55000\)\nDETAIL:  It depends on plugin "users", which is not enabled\.\nHINT:  /m,
	'... with SQLSTATE, DETAIL and HINT lines');

($rc, $out, $err) = cli('pm', 'enable', 'nope');
is($rc, 1, 'pm enable of an unknown plugin exits 1');
like($err, qr/plugin "nope" does not exist \(SQLSTATE 42704\)/, '... naming it, with SQLSTATE 42704');

($rc, $out, $err) = cli('pm', 'enable', 'users', 'acl', 'crm');
is($rc, 0, 'pm enable users acl crm (several names) exits 0');
(undef, $rows, $count) = parse_table($out);
is($count, 3, '... prints the three changed rows');
is(join(' ', map { "$_->{name}:$_->{state}" } @$rows), 'users:enabled acl:enabled crm:enabled',
	'... in dependency order, enabled');
is(q1(q{SELECT string_agg(name || ':' || state, ' ' ORDER BY id) FROM tego.plugins}),
	'users:enabled acl:enabled crm:enabled', 'the database has them enabled');

($rc, $out, $err) = cli('pm', 'enable', 'users');
is($rc, 0, 'enabling an enabled plugin exits 0');
like($out, qr/^\(0 rows\)$/m, '... and prints no row');

($rc, $out, $err) = cli('pm', 'disable', 'users');
is($rc, 1, 'disabling a plugin that enabled plugins depend on exits 1');
like($err, qr/cannot disable plugin "users" \(SQLSTATE 55000\)\nDETAIL:  Enabled plugins "acl", "crm" depend on it\./,
	'... with the dependents in the DETAIL line');

($rc, $out, $err) = cli('pm', 'upgrade', 'acl', '2.0.0');
is($rc, 0, 'pm upgrade exits 0');
(undef, $rows) = parse_table($out);
is($rows->[0]{version}, '2.0.0', '... and prints the new version');

($rc, $out, $err) = cli('pm', 'disable', 'crm');
is($rc, 0, 'pm disable crm exits 0');
(undef, $rows) = parse_table($out);
is($rows->[0]{state}, 'added', '... it is disabled, and not installed (enabling does not install)');

my $table;
($rc, $table, $err) = cli('pm', 'list');
is($rc, 0, 'pm list exits 0');
(undef, $rows, $count) = parse_table($table);
is(join(' ', map { "$_->{id}:$_->{name}:$_->{state}:$_->{revision}" } @$rows),
	q1(q{SELECT string_agg(id || ':' || name || ':' || state || ':' || revision, ' ')
           FROM tego.plugin_list()}),
	'pm list shows what tego.plugin_list() returns (ids, names, states, revisions, in order)');
is($count, 3, '... and counts the rows');
($rc, $out, $err) = cli('--json', 'pm', 'list');
is($rc, 0, '--json pm list exits 0');
json_matches_table($table, $out, 'pm list');
my $arr = decode_json($out);
ok(JSON::PP::is_bool($arr->[0]{enabled}) && $arr->[0]{id} =~ /^\d+$/ && !ref $arr->[0]{id}
	  && ref $arr->[1]{options} eq 'HASH' && ref $arr->[1]{depends_on} eq 'ARRAY'
	  && !defined $arr->[1]{package_name},
	'JSON types follow the columns: booleans, numbers, jsonb objects, arrays, null');
is($arr->[1]{options}{ttl}, 30, '... the options object is JSON, not a string');
($rc, my $out_after) = cli('pm', 'list', '--json');
is($out_after, $out, '--json after the command works too');

($rc, $out, $err) = cli('pm', 'list', '--enabled');
(undef, $rows, $count) = parse_table($out);
is(join(' ', map { $_->{name} } @$rows), 'users acl', 'pm list --enabled lists the enabled ones');

($rc, $out, $err) = cli('pm', 'add', 'x"y');
is($rc, 1, 'an invalid plugin name is refused by the server');
like($err, qr/SQLSTATE 22023/, '... with SQLSTATE 22023');

($rc, $out, $err) = cli('pm', 'add', 'core', '--built-in', '--no-sub-view');
(undef, $rows) = parse_table($out);
is("$rows->[0]{built_in} $rows->[0]{sub_view}", 't f', 'pm add --built-in --no-sub-view');
($rc, $out, $err) = cli('pm', 'install', 'core');
is($rc, 0, 'pm install exits 0');
(undef, $rows) = parse_table($out);
is($rows->[0]{state}, 'installed', '... and the plugin is installed');

($rc, $out, $err) = cli('pm', 'remove', 'acl');
is($rc, 1, 'pm remove of an enabled plugin without --force exits 1');
like($err, qr/cannot remove enabled plugin "acl" \(SQLSTATE 55000\)\nHINT:/, '... with a hint');
($rc, $out, $err) = cli('pm', 'remove', 'acl', 'crm', '--force');
is($rc, 0, 'pm remove acl crm --force exits 0');
(undef, $rows, $count) = parse_table($out);
is($count, 2, '... and prints the two removed rows');
is(q1(q{SELECT string_agg(name, ' ' ORDER BY id) FROM tego.plugins}), 'users core',
	'they are gone from the database');

# ---------------------------------------------------------------------------
# 3. jobs
# ---------------------------------------------------------------------------
q1(q{SELECT tego.schedule('nightly', '0 3 * * *', 'SELECT 1', username => 'app',
                          timezone => 'Europe/Paris')});
q1(q{SELECT tego.schedule_app('sync', '0 4 * * *', '{"full": true}', username => 'app')});
($rc, $table, $err) = cli('jobs', 'list');
is($rc, 0, 'jobs list exits 0');
(undef, $rows, $count) = parse_table($table);
is(join(' ', map { "$_->{name}:$_->{kind}:$_->{schedule}:$_->{timezone}:$_->{active}" } @$rows),
	q1(q{SELECT string_agg(name || ':' || kind || ':' || schedule || ':' || timezone || ':' ||
                           CASE WHEN active THEN 't' ELSE 'f' END, ' ' ORDER BY name)
           FROM tego.jobs}),
	'jobs list shows the jobs of tego.jobs');
is($rows->[0]{next_run},
	q1(q{SELECT tego.cron_next('0 3 * * *', now(), 'Europe/Paris')}),
	'... with the next run of each');
($rc, $out, $err) = cli('jobs', 'list', '--json');
json_matches_table($table, $out, 'jobs list');
$arr = decode_json($out);
is($arr->[1]{payload}{full}, JSON::PP::true, "the app job's payload is a JSON object");

($rc, $out, $err) = cli('jobs', 'run', 'nightly');
is($rc, 0, 'jobs run exits 0');
(undef, $rows) = parse_table($out);
is($rows->[0]{run_id}, q1(q{SELECT max(run_id) FROM tego.job_runs WHERE job_name = 'nightly'}),
	'... and prints the run_id of the queued run');
my $run_id = $rows->[0]{run_id};
ok(poll_until($node, qq{SELECT status = 'succeeded' FROM tego.job_runs WHERE run_id = $run_id}, 30),
	'the run succeeds');
($rc, $out, $err) = cli('jobs', 'run', 'nightly');
my $run2 = (parse_table($out))[1][0]{run_id};
ok(poll_until($node, qq{SELECT status = 'succeeded' FROM tego.job_runs WHERE run_id = $run2}, 30),
	'a second run succeeds');
($rc, $out, $err) = cli('jobs', 'run', 'nope');
is($rc, 1, 'jobs run of an unknown job exits 1');
like($err, qr/job "nope" does not exist \(SQLSTATE 42704\)/, '... saying so');

($rc, $table, $err) = cli('jobs', 'history', 'nightly');
is($rc, 0, 'jobs history NAME exits 0');
(undef, $rows, $count) = parse_table($table);
is(join(' ', map { "$_->{run_id}:$_->{status}:$_->{manual}" } @$rows), "$run2:succeeded:t $run_id:succeeded:t",
	'... newest first, with status');
($rc, $out, $err) = cli('jobs', 'history', 'nightly', '--json');
json_matches_table($table, $out, 'jobs history');
($rc, $out, $err) = cli('jobs', 'history', '--limit', '1');
(undef, $rows, $count) = parse_table($out);
is("$count $rows->[0]{run_id}", "1 $run2", 'jobs history --limit 1 shows the newest run only');

# ---------------------------------------------------------------------------
# 4. apps, leases, status
# ---------------------------------------------------------------------------
q1(q{SELECT tego.app_status_set('main', 'running', 'listening on :13000')});
q1(q{SELECT tego.app_maintaining_set('sub', 'pm.enable', 'command_begin', 'enabling crm')});
($rc, $table, $err) = cli('apps');
is($rc, 0, 'apps exits 0');
(undef, $rows, $count) = parse_table($table);
is(join(' ', map { "$_->{app}:$_->{status}:$_->{message}:$_->{version}" } @$rows),
	'main:running:listening on :13000:1 sub:commanding:enabling crm:1', 'apps shows tego.apps');
($rc, $out, $err) = cli('--json', 'apps');
json_matches_table($table, $out, 'apps');

q1(q{SELECT tego.lease_acquire('migrations', 'web:1', '1 hour')});
($rc, $table, $err) = cli('leases');
is($rc, 0, 'leases exits 0');
(undef, $rows, $count) = parse_table($table);
is("$count $rows->[0]{name} $rows->[0]{holder} $rows->[0]{token} $rows->[0]{live}",
	'1 migrations web:1 1 t', 'leases shows tego.leases');
($rc, $out, $err) = cli('--json', 'leases');
json_matches_table($table, $out, 'leases');

($rc, $out, $err) = cli('status');
is($rc, 0, 'status exits 0');
my %status = map { /^ (\S+)\s+\|\s?(.*)$/ ? ($1 => $2) : () } split /\n/, $out;
is($status{event_seq}, q1('SELECT tego.event_seq()'), 'status shows event_seq');
is($status{preloaded}, 't', '... and that tego is preloaded');
is($status{max_leases}, '1000', '... and the limits');
($rc, $out, $err) = cli('status', '--json');
$arr = decode_json($out);
is(scalar @$arr, 1, 'status --json is an array of one object');
is_deeply([ sort keys %{ $arr->[0] } ], [ sort keys %status ], '... with the same fields');
ok(JSON::PP::is_bool($arr->[0]{preloaded}) && $arr->[0]{preloaded}, '... preloaded is a JSON boolean');
is($arr->[0]{event_seq}, $status{event_seq}, '... event_seq a number');

# ---------------------------------------------------------------------------
# 5. connection lost in a command: exit 3
# ---------------------------------------------------------------------------
{
	my $locker = $node->background_psql('postgres');
	$locker->query_safe('BEGIN; LOCK TABLE tego.plugins IN ACCESS EXCLUSIVE MODE;');
	my ($o, $e) = ('', '');
	my $h = IPC::Run::start([ $tego, '-h', $node->host, '-p', $node->port, '-d', 'postgres', 'pm', 'list' ],
		'<', \undef, '>', \$o, '2>', \$e, IPC::Run::timeout(60));
	ok(poll_until($node, q{SELECT count(*) = 1 FROM pg_stat_activity
                            WHERE application_name = 'tego' AND wait_event_type = 'Lock'}, 30),
		'pm list waits for the lock');
	q1(q{SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'tego'});
	$h->finish;
	is($h->result(0), 3, 'pm list whose backend is terminated exits 3');
	like($e, qr/tego: error: the connection to the server was lost/, '... saying the connection was lost');
	$locker->query_safe('ROLLBACK');
	$locker->quit;
}

# ---------------------------------------------------------------------------
# 6. events tail
# ---------------------------------------------------------------------------
my $topics_sql = q{ARRAY['tego_plugins', 'tego_jobs', 'tego_leases', 'tego_apps']};

my $first5 = q1(qq{SELECT string_agg(seq::text, ' ' ORDER BY seq) FROM
                   (SELECT seq FROM tego.events WHERE topic = ANY ($topics_sql) ORDER BY seq LIMIT 5) s});
($rc, $out, $err) = cli('events', 'tail', '--from', '0', '--count', '5', '--timeout', '30');
is($rc, 0, 'events tail --from 0 --count 5 exits 0');
my @lines = split /\n/, $out;
is(scalar @lines, 5, '... after printing 5 lines');
is(join(' ', map { (split / /)[0] } @lines), $first5, '... the first 5 events of the log, in order');
like($lines[0], qr/^\d+ tego_plugins plugin-state-changed users \{"id": 1, .*"action": "add"/,
	'... as "seq topic event key payload"');

($rc, $out, $err) = cli('events', 'tail', '--from', '0', '--count', '5', '--json', '--timeout', '30');
my @objs = map { decode_json($_) } split /\n/, $out;
is(join(' ', map { $_->{seq} } @objs), $first5, 'with --json, the same events, one JSON object a line');
is_deeply([ sort keys %{ $objs[0] } ], [qw(committed_at event key payload seq topic)],
	'... with seq, topic, event, key, payload, committed_at');
is($objs[0]{payload}{action}, 'add', '... and the payload as a JSON object');

q1(q{SELECT tego.publish('orders', '{"id": 7}')});
my $orders_seq = q1(q{SELECT max(seq) FROM tego.events WHERE topic = 'orders'});
($rc, $out, $err) = cli('events', 'tail', '--from', '0', '--topic', 'orders', '--count', '1', '--timeout', '30');
like($out, qr/^$orders_seq orders message \S+ \{.*"message": \{"id": 7\}/,
	'--topic follows an application topic');

# start_tail(DB, ARGS...): a tail running in the background; returns (handle, \stdout, \stderr)
sub start_tail
{
	my ($db, @args) = @_;
	my ($o, $e) = ('', '');
	my $h = IPC::Run::start(
		[ $tego, '-h', $node->host, '-p', $node->port, '-d', $db, 'events', 'tail', @args ],
		'<', \undef, '>', \$o, '2>', \$e, IPC::Run::timeout(120));
	return ($h, \$o, \$e);
}

# wait_output(HANDLE, \OUT, REGEX, SECS): pump until OUT matches
sub wait_output
{
	my ($h, $o, $re, $secs) = @_;
	my $deadline = time + $secs;
	while (time < $deadline)
	{
		$h->pump_nb;
		return 1 if $$o =~ $re;
		usleep(50_000);
	}
	diag("timed out waiting for $re; have:\n$$o");
	return 0;
}

# wait_following(DB): until the tail's session has LISTENed and caught up
# (its last statement, the catch-up, is done)
sub wait_following
{
	my ($db) = @_;
	return poll_until($node, qq{SELECT count(*) = 1 FROM pg_stat_activity
                                 WHERE application_name = 'tego' AND datname = '$db'
                                   AND state = 'idle' AND query LIKE '%events_since%'}, 30);
}

# live events, app status (seq "-"), SIGTERM ends it with 0
{
	my ($h, $o, $e) = start_tail('postgres', '--timeout', '90');
	ok(wait_following('postgres'), 'a tail without --from connects and follows');
	q1(q{SELECT tego.plugin_add('live1')});
	my $seq = q1(q{SELECT max(seq) FROM tego.events});
	ok(wait_output($h, $o, qr/^$seq tego_plugins plugin-state-changed live1 /m, 30),
		'it prints an event committed after it started');
	q1(q{SELECT tego.app_status_set('main', 'stopped')});
	ok(wait_output($h, $o, qr/^- tego_apps app-status-changed main \{.*"status": "stopped"/m, 30),
		'it prints tego_apps notifications, with seq "-"');
	unlike($$o, qr/^\d+ tego_plugins plugin-state-changed users /m, 'it printed no older event');
	$h->signal('TERM');
	$h->finish;
	is($h->result(0), 0, 'SIGTERM ends it with exit status 0');
}

# Forged notifications: any role that can connect may NOTIFY a reserved
# channel.  A role with no tego grants sends envelopes that look like tego's
# (a huge seq, a null seq, an app that does not exist), and garbage; the
# tail prints none of them, and still prints every real event once.
{
	q1(q{CREATE ROLE nogrants LOGIN});
	is(q1(q{SELECT has_schema_privilege('nogrants', 'tego', 'USAGE')}), 'f',
		'the forging role has no tego grants');
	my $start = q1('SELECT tego.event_seq()');
	my ($h, $o, $e) = start_tail('postgres', '--json', '--timeout', '90');
	ok(wait_following('postgres'), 'a tail follows the default topics');
	my $forged = <<'EOS';
NOTIFY tego_plugins, '{"seq": 9000000000000000, "topic": "tego_plugins", "event": "plugin-state-changed", "key": "forged-huge", "payload": {"name": "forged-huge", "action": "remove", "from": "enabled", "to": null}}';
NOTIFY tego_plugins, '{"seq": null, "topic": "tego_plugins", "event": "plugin-state-changed", "key": "forged-null", "payload": {"name": "forged-null", "action": "add"}}';
NOTIFY tego_apps, '{"seq": null, "topic": "tego_apps", "event": "app-status-changed", "key": "forged-app", "payload": {"app": "forged-app", "status": "error", "version": 1}}';
NOTIFY tego_apps, '{"seq": null, "topic": "tego_apps", "event": "app-status-changed", "key": "main", "payload": {"app": "main", "status": "forged-status", "version": 99}}';
NOTIFY tego_apps, 'forged-garbage {';
NOTIFY tego_jobs, '{"seq": "forged-seq"}';
NOTIFY tego_leases, 'forged-text';
EOS
	$node->safe_psql('postgres', $forged, extra_params => [ '-U', 'nogrants' ]);
	q1(q{SELECT tego.plugin_add('after-forged')});
	q1(q{SELECT tego.plugin_enable('after-forged')});
	q1(q{SELECT tego.app_status_set('main', 'running', 'real after forged')});
	q1(q{SELECT tego.plugin_upgrade('after-forged', '2.0.0')});
	my $last = q1('SELECT tego.event_seq()');
	ok(wait_output($h, $o, qr/"seq": $last,/, 30), 'the real events after the forged ones are printed');
	ok(wait_output($h, $o, qr/"real after forged"/, 30), '... and the real app status change');
	$h->signal('TERM');
	$h->finish;
	is($h->result(0), 0, 'the tail ends with 0');
	unlike($$o, qr/forged-/, 'no forged notification was printed');
	my @objs = map { decode_json($_) } split /\n/, $$o;
	my @seqs = map { $_->{seq} } grep { defined $_->{seq} } @objs;
	my $want = q1(qq{SELECT string_agg(seq::text, ' ' ORDER BY seq) FROM tego.events
                      WHERE seq > $start AND topic = ANY ($topics_sql)});
	is(join(' ', @seqs), $want, 'every real event of the log was printed once, in order');
	my @apps = grep { !defined $_->{seq} } @objs;
	is(join(' ', map { "$_->{topic}:$_->{event}:$_->{key}:$_->{payload}{status}" } @apps),
		'tego_apps:app-status-changed:main:running',
		'the one app line is the real change, as tego.apps has it');
}

# A role that may read the log but not tego.apps: by default tego_apps is
# left out, with a note; asked for with --topic, it is an error.
{
	q1(q{CREATE ROLE reader LOGIN;
         GRANT USAGE ON SCHEMA tego TO reader;
         GRANT EXECUTE ON FUNCTION tego.event_seq(), tego.events_since(bigint, text[], integer) TO reader;});
	($rc, $out, $err) = run_raw('-h', $node->host, '-p', $node->port, '-d', 'postgres', '-U', 'reader',
		'events', 'tail', '--from', '0', '--count', '1', '--timeout', '30');
	is($rc, 0, 'a role that cannot read tego.apps tails the default topics');
	like($out, qr/^\d+ tego_plugins plugin-state-changed users /, '... and prints the log');
	like($err, qr/^tego: not following tego_apps: could not read tego\.apps: permission denied for view apps \(SQLSTATE 42501\)$/m,
		'... saying on stderr that it does not follow tego_apps, and why');
	($rc, $out, $err) = run_raw('-h', $node->host, '-p', $node->port, '-d', 'postgres', '-U', 'reader',
		'events', 'tail', '--topic', 'tego_apps', '--timeout', '30');
	is($rc, 1, '--topic tego_apps by a role that cannot read tego.apps exits 1');
	like($err, qr/permission denied for view apps \(SQLSTATE 42501\).*tego_apps is followed from tego\.apps/s,
		'... with the error and what it needs');
	is($out, '', '... printing nothing');
}

# tego_apps across a lost connection: a change made while the tail was
# away is printed once it is back (from tego.apps), and once only; an app
# forgotten is printed as app-forgotten
{
	q1(q{SELECT tego.app_status_set('web', 'initializing')}, 'app');
	my ($h, $o, $e) = start_tail('app', '--topic', 'tego_apps', '--json', '--timeout', '90');
	ok(wait_following('app'), 'a tail of tego_apps follows in database app');
	q1(q{SELECT tego.app_status_set('web', 'running', 'first')}, 'app');
	ok(wait_output($h, $o, qr/"first"/, 30), 'it prints a change');
	q1(q{SELECT pg_terminate_backend(pid) FROM pg_stat_activity
          WHERE application_name = 'tego' AND datname = 'app'});
	q1(q{SELECT tego.app_status_set('web', 'stopped', 'while away')}, 'app');
	ok(wait_output($h, $e, qr/reconnected/, 30), 'it reconnects');
	ok(wait_output($h, $o, qr/"while away"/, 30), 'it prints the change made while it was away');
	q1(q{SELECT tego.app_forget('web')}, 'app');
	ok(wait_output($h, $o, qr/"app-forgotten"/, 30), 'it prints the app forgotten');
	q1(q{SELECT tego.app_status_set('web2', 'running', 'last')}, 'app');
	ok(wait_output($h, $o, qr/"last"/, 30), 'it prints a new app');
	$h->signal('TERM');
	$h->finish;
	my @objs = map { decode_json($_) } split /\n/, $$o;
	is(join(' ', map { "$_->{event}:$_->{key}:$_->{payload}{status}:" . ($_->{payload}{message} // '') } @objs),
		'app-status-changed:web:running:first app-status-changed:web:stopped:while away '
		  . 'app-forgotten:web:stopped:while away app-status-changed:web2:running:last',
		'each change once, in order, none of the state it started from');
	ok(!grep({ defined $_->{seq} } @objs), '... all with a null seq');
}

# SIGINT too
{
	my ($h, $o, $e) = start_tail('postgres', '--timeout', '90');
	ok(wait_following('postgres'), 'another tail follows');
	$h->signal('INT');
	$h->finish;
	is($h->result(0), 0, 'SIGINT ends it with exit status 0');
}

# reconnect: every event exactly once, including those committed while it
# could not connect (the database refusing connections)
{
	my $app = $node->background_psql('app');
	my $start = $app->query_safe('SELECT tego.event_seq()');
	# 3 adds; 8 changes while it cannot connect; 4 after it has reconnected
	my $total = 3 + 8 + 4;
	my ($h, $o, $e) = start_tail('app', '--from', $start, '--json', '--count', $total,
		'--timeout', '90');

	$app->query_safe(q{SELECT tego.plugin_add(n) FROM unnest(ARRAY['a', 'b', 'c']) n});
	ok(wait_output($h, $o, qr/"key": "c"/, 30), 'the tail in database app follows');

	q1(q{ALTER DATABASE app ALLOW_CONNECTIONS false});
	is(q1(q{SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
             WHERE application_name = 'tego' AND datname = 'app'}),
		'1', "the tail's backend is terminated (found by application_name)");
	$app->query_safe(q{SELECT tego.plugin_enable('a', 'b')});       # 2 events
	$app->query_safe(q{SELECT tego.plugin_disable('a', 'b')});      # 2
	$app->query_safe(q{SELECT tego.plugin_enable('a', 'b')});       # 2
	$app->query_safe(q{SELECT tego.plugin_enable('c')});            # 1
	$app->query_safe(q{SELECT tego.plugin_upgrade('c', '2.0.0')});  # 1
	ok(wait_output($h, $e, qr/could not reconnect/, 30),
		'while the database refuses connections, the tail retries');
	unlike($$o, qr/"action": "enable"/, '... and has printed none of the changes yet');
	q1(q{ALTER DATABASE app ALLOW_CONNECTIONS true});
	ok(wait_output($h, $e, qr/reconnected/, 30), 'it reconnects once connections are allowed again');

	$app->query_safe(q{SELECT tego.plugin_disable('a')});           # 1
	# once more, without blocking the database: a fast reconnect
	q1(q{SELECT pg_terminate_backend(pid) FROM pg_stat_activity
          WHERE application_name = 'tego' AND datname = 'app'});
	$app->query_safe(q{SELECT tego.plugin_disable('b')});           # 1
	$app->query_safe(q{SELECT tego.plugin_remove(ARRAY['a'])});     # 1
	$app->query_safe(q{SELECT tego.plugin_remove(ARRAY['b'])});     # 1

	is($app->query_safe(qq{SELECT count(*) FROM tego.events WHERE seq > $start}), $total,
		"the test made the $total events it meant to");
	$h->finish;
	is($h->result(0), 0, 'the tail exits 0 after --count events');
	my @seqs = map { decode_json($_)->{seq} } split /\n/, $$o;
	my $want = $app->query_safe(qq{SELECT string_agg(seq::text, ' ' ORDER BY seq) FROM tego.events
                                    WHERE seq > $start AND topic = ANY ($topics_sql)});
	is(join(' ', @seqs), $want,
		'across two lost connections it printed every event of the log once, in order');
	my %seen;
	is(scalar(grep { $seen{$_}++ } @seqs), 0, 'no event twice');
	like($$e, qr/connection lost.*reconnected.*connection lost.*reconnected/s,
		'stderr tells of both losses and reconnections');
	$app->quit;
}

# a compacted position: TG001, exit 1
sleep 1.1;
q1(q{SET tego.event_retention = '1s'; SELECT tego.compact_events();}, 'app');
($rc, $out, $err) = cli('-d', 'app', 'events', 'tail', '--from', '0', '--timeout', '10');
is($rc, 1, 'events tail from a compacted position exits 1');
like($err, qr/events after position 0 have been compacted \(SQLSTATE TG001\)\nDETAIL:  The oldest retained event is \d+\.\nHINT:  /,
	'... with SQLSTATE TG001, DETAIL and HINT');
is($out, '', '... and prints no event');

unlike(slurp_file($node->logfile), qr/TRAP:|terminated by signal (?!15)/,
	'no crash in the server log');
$node->stop('fast');
done_testing();
