# Copyright: the tego authors.  PostgreSQL::Test::Cluster TAP test.
#
# tego behind PgBouncer in transaction pooling mode.  A real pgbouncer
# process (pool_mode = transaction, default_pool_size = 2) stands in front
# of the node, and every client below goes through it unless it says
# otherwise.
#
# LISTEN: a client that LISTENs through pgbouncer in transaction pooling
# never gets the notification of a committed change.  pgbouncer drops it
# when it arrives on an idle server connection, and the next client that
# is handed that server connection (here a writer) gets it instead.  In
# session pooling (a second pool) the client gets it.
#
# tego.wait_events: one statement that waits for the next events, woken at
# commit.  A waiter gets the event of a change committed by another client
# within 2 s, with the right seq (also inside BEGIN ... COMMIT); four
# waiters at once, each on its own server connection; the topics filter (a
# tego_jobs waiter sleeps through a plugin change until its own timeout);
# events already past after_seq come back at once, max_events at a time; a
# wait with nothing to return ends after its timeout; bad arguments are
# refused (22023, 22004, 0A000 in REPEATABLE READ); statement_timeout and a
# cancel end a wait.  A waiter holds a server connection and a snapshot
# while it waits, so waiters that fill the pool hold up the writers; the
# backend of a client that goes away waits until its timeout unless
# client_connection_check_interval is set; a compacted position fails with
# TG001.  A client's loop "last = 0; wait_events(last) ..." collects 20
# events committed at random moments exactly once each, in seq order, also
# across a reconnect.
#
# Skipped when pgbouncer is missing (PGBOUNCER names another binary); the
# wait_events part is skipped while tego has no tego.wait_events.
use strict;
use warnings;

use IPC::Run;
use Time::HiRes qw(usleep time);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use TegoTest;

my $pgbouncer_bin = $ENV{PGBOUNCER} // '/usr/sbin/pgbouncer';
plan skip_all =>
  "pgbouncer not found at $pgbouncer_bin (apt-get install pgbouncer, or set PGBOUNCER)"
  unless -x $pgbouncer_bin;

my $timeout = $PostgreSQL::Test::Utils::timeout_default;
my $tmp = PostgreSQL::Test::Utils::tempdir;
my $pgb;    # the pgbouncer process

END
{
	local $?;
	$pgb->kill_kill if $pgb && $pgb->pumpable;
}

my $node = PostgreSQL::Test::Cluster->new('pgbouncer');
$node->init;
$node->append_conf(
	'postgresql.conf', qq{
shared_preload_libraries = 'tego'
max_connections = 40
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION tego');

sub q1 { return $node->safe_psql('postgres', $_[0]); }

my $user = q1('SELECT current_user');
my $psql_bin = $node->installed_command('psql');

# ---------------------------------------------------------------------------
# pgbouncer: transaction pooling, two server connections per pool, in the
# foreground as the test's user
# ---------------------------------------------------------------------------
my $pgb_port = PostgreSQL::Test::Cluster::get_free_port();
my $pgb_log = "$tmp/pgbouncer.log";
my $server = 'host=' . $node->host . ' port=' . $node->port . ' dbname=postgres';
PostgreSQL::Test::Utils::append_to_file("$tmp/userlist.txt", qq{"$user" ""\n});
PostgreSQL::Test::Utils::append_to_file(
	"$tmp/pgbouncer.ini", qq{
[databases]
postgres = $server
; one server connection: shows where a LISTEN's notifications end up
one = $server pool_size=1
; room for several waiters at once
wide = $server pool_size=8
; session pooling, where LISTEN works
session = $server pool_mode=session

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $pgb_port
unix_socket_dir =
auth_type = trust
auth_file = $tmp/userlist.txt
admin_users = $user
pool_mode = transaction
default_pool_size = 2
max_client_conn = 100
});
$pgb = IPC::Run::start([ $pgbouncer_bin, "$tmp/pgbouncer.ini" ],
	'<', \undef, '>&', $pgb_log);

# psql through pgbouncer, to database (pgbouncer alias) $db
sub pgb_cmd
{
	my ($db) = @_;
	return [
		$psql_bin, '-X', '-A', '-t', '-q',
		'-v', 'ON_ERROR_STOP=1', '-v', 'VERBOSITY=verbose',
		'-h', '127.0.0.1', '-p', $pgb_port, '-U', $user, '-d', $db
	];
}

# pgb($db, $sql): one client through pgbouncer; returns (exit code, stdout,
# stderr, seconds it took)
sub pgb
{
	my ($db, $sql) = @_;
	my ($out, $err) = ('', '');
	my $t0 = time;
	my $ok = IPC::Run::run([ @{ pgb_cmd($db) }, '-c', $sql ],
		'<', \undef, '>', \$out, '2>', \$err, IPC::Run::timeout($timeout));
	my $rc = $ok ? 0 : ($? >> 8);
	chomp $out;
	return ($rc, $out, $err, time - $t0);
}

sub pgb_safe
{
	my ($db, $sql) = @_;
	my ($rc, $out, $err) = pgb($db, $sql);
	die "through pgbouncer ($db) failed: $sql\n$err" if $rc != 0;
	return $out;
}

# pgb_start($db, $sql): the same client in the background; pgb_wait(@c)
# waits for clients started so and sets, for each, done_at (when it
# ended, time()), rc, out and err
sub pgb_start
{
	my ($db, $sql) = @_;
	my $c = { out => '', err => '', sql => $sql, t0 => time };
	$c->{h} = IPC::Run::start([ @{ pgb_cmd($db) }, '-c', $sql ],
		'<', \undef, '>', \$c->{out}, '2>', \$c->{err},
		IPC::Run::timeout($timeout));
	return $c;
}

sub pgb_wait
{
	my @clients = @_;
	while (my @running = grep { !defined $_->{done_at} } @clients)
	{
		for my $c (@running)
		{
			$c->{h}->pump_nb;
			next if $c->{h}->pumpable;
			$c->{done_at} = time;
			$c->{h}->finish;
			my $status = $c->{h}->full_result(0);
			$c->{rc} = $status >> 8;
			$c->{signal} = $status & 127;
			chomp $c->{out};
		}
		usleep(5_000);
	}
	return;
}

# A psql session through pgbouncer that stays connected (like a client's
# connection to the pooler): session_query returns stdout, or (stdout,
# stderr) in list context.
my $session_count = 0;

sub pgb_session
{
	my ($db) = @_;
	my $s = { in => '', out => '', err => '', n => 0, id => ++$session_count };
	$s->{timer} = IPC::Run::timeout($timeout);
	$s->{h} = IPC::Run::start([ @{ pgb_cmd($db) }, '-v', 'ON_ERROR_STOP=0', '-f', '-' ],
		'<', \$s->{in}, '>', \$s->{out}, '2>', \$s->{err}, $s->{timer});
	return $s;
}

sub session_query
{
	my ($s, $sql) = @_;
	my $mark = "tego-042-$s->{id}-" . ++$s->{n};
	$s->{in} .= "$sql\n;\n\\echo $mark\n\\warn $mark\n";
	$s->{timer}->start($timeout);
	$s->{h}->pump until $s->{out} =~ /^$mark\n/m && $s->{err} =~ /^$mark\n/m;
	my ($out, $err) = ($s->{out}, $s->{err});
	($s->{out}, $s->{err}) = ('', '');
	$out =~ s/^$mark\n//m;
	$err =~ s/^$mark\n//m;
	chomp $out;
	return wantarray ? ($out, $err) : $out;
}

sub session_close
{
	my ($s) = @_;
	$s->{in} .= "\\q\n";
	$s->{h}->finish;
	return;
}

# pools($db): pgbouncer's SHOW POOLS row of database $db, as a hash
sub pools
{
	my ($db) = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run(
		[
			$psql_bin, '-X', '-A', '-P', 'footer=off', '-h', '127.0.0.1',
			'-p', $pgb_port, '-U', $user, '-d', 'pgbouncer', '-c', 'SHOW POOLS'
		],
		'<', \undef, '>', \$out, '2>', \$err, IPC::Run::timeout($timeout))
	  or die "SHOW POOLS failed: $err";
	my ($head, @rows) = split /\n/, $out;
	my @cols = split /\|/, $head;
	for my $row (@rows)
	{
		my %r;
		@r{@cols} = split /\|/, $row, -1;
		return \%r if $r{database} eq $db;
	}
	return {};
}

sub poll_pools
{
	my ($db, $col, $want, $secs) = @_;
	my $deadline = time + ($secs // 10);
	my $r;
	while (time < $deadline)
	{
		$r = pools($db);
		return 1 if ($r->{$col} // -1) == $want;
		usleep(50_000);
	}
	diag("SHOW POOLS $db: $col is " . ($r->{$col} // 'missing') . ", not $want");
	return 0;
}

# await_waiting($label, $n): $n statements tagged /* $label */ are running
# on the node
sub await_waiting
{
	my ($label, $n) = @_;
	return poll_until(
		$node, qq{
SELECT count(*) >= $n FROM pg_stat_activity
 WHERE state = 'active' AND query LIKE '%/* $label */%' AND pid <> pg_backend_pid()},
		10);
}

# log_has($re, $secs [, $from]): pgbouncer's log matches $re (past byte
# $from) within $secs seconds
sub log_has
{
	my ($re, $secs, $from) = @_;
	my $deadline = time + $secs;
	while (time < $deadline)
	{
		return 1 if substr(slurp_file($pgb_log), $from // 0) =~ $re;
		usleep(50_000);
	}
	return 0;
}

my $up = 0;
for (1 .. 100)
{
	my ($rc) = pgb('postgres', 'SELECT 1');
	if ($rc == 0) { $up = 1; last; }
	usleep(100_000);
}
ok($up, "pgbouncer accepts clients on 127.0.0.1:$pgb_port")
  or BAIL_OUT("pgbouncer did not start:\n" . slurp_file($pgb_log));
is(pgb_safe('postgres', 'SELECT tego.event_seq()'), '0',
	'tego answers through pgbouncer');

# ---------------------------------------------------------------------------
# 1. LISTEN through transaction pooling does not deliver
# ---------------------------------------------------------------------------
my $listener = pgb_session('postgres');
session_query($listener, 'LISTEN tego_plugins');
my $direct = $node->background_psql('postgres');    # for comparison
$direct->query_safe('LISTEN tego_plugins');

# a change committed on the node itself, so no pgbouncer client can be
# handed the listener's server connection meanwhile
q1(q{SELECT count(*) FROM tego.plugin_add('listen-a')});
ok(log_has(qr/got packet 'A' from server when not linked/, 10),
	"pgbouncer got the notification on the listener's server connection while no client used it, and dropped it"
);
my $seen = '';
for (1 .. 3)
{
	$seen .= session_query($listener, 'SELECT 1') . "\n";
	usleep(200_000);
}
unlike($seen, qr/Asynchronous notification/,
	'the client that LISTENed through pgbouncer does not get the notification');
like($direct->query_safe('SELECT 1'),
	qr/Asynchronous notification "tego_plugins" with payload "[^\n]*"key": "listen-a"/,
	'a client connected to PostgreSQL directly gets it');

# one server connection: the writer is handed the listener's connection
my $listener1 = pgb_session('one');
session_query($listener1, 'LISTEN tego_plugins');
my $wrote = pgb_safe('one', q{SELECT count(*) FROM tego.plugin_add('listen-b')});
like($wrote,
	qr/Asynchronous notification "tego_plugins" with payload "[^\n]*"key": "listen-b"/,
	'through a pool of one server connection, the notification goes to the writer, the next client of that connection'
);
unlike(session_query($listener1, 'SELECT 1'), qr/Asynchronous notification/,
	'... and never to the client that LISTENed');

session_close($listener);
session_close($listener1);
$direct->quit;
# the LISTENs stay on the server connections: have pgbouncer close them
pgb_safe('pgbouncer', 'RECONNECT');
ok( poll_until(
		$node,
		q{SELECT count(*) FROM pg_stat_activity
           WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()},
		10, '0'),
	'pgbouncer closed its server connections, and the LISTENs left on them');

# session pooling: the client keeps its server connection, and gets the
# notification
my $listener2 = pgb_session('session');
session_query($listener2, 'LISTEN tego_plugins');
pgb_safe('postgres', q{SELECT count(*) FROM tego.plugin_add('listen-c')});
$seen = '';
for (1 .. 50)
{
	$seen .= session_query($listener2, 'SELECT 1') . "\n";
	last if $seen =~ /Asynchronous notification/;
	usleep(100_000);
}
like($seen,
	qr/Asynchronous notification "tego_plugins" with payload "[^\n]*"key": "listen-c"/,
	'through a pool in session mode (pool_mode = session), the client that LISTENed gets the notification'
);
session_close($listener2);

# ---------------------------------------------------------------------------
# tego.wait_events
# ---------------------------------------------------------------------------
my $have_wait = q1(
	q{SELECT to_regprocedure('tego.wait_events(bigint,text[],interval,integer)') IS NOT NULL}
) eq 't';

SKIP:
{
	skip 'tego.wait_events(bigint, text[], interval, integer) does not exist in this build of tego',
	  1
	  unless $have_wait;

	# -----------------------------------------------------------------------
	# 2. one waiter, woken by a commit of another client
	# -----------------------------------------------------------------------
	my $seq0 = pgb_safe('postgres', 'SELECT tego.event_seq()');
	my $w = pgb_start('postgres',
		qq{SELECT seq, topic, event FROM tego.wait_events($seq0, ARRAY['tego_plugins'], '10 seconds') /* w:one */}
	);
	ok(await_waiting('w:one', 1), 'a waiter waits through pgbouncer');
	usleep(200_000);
	is( q1(
			q{SELECT backend_xmin IS NOT NULL FROM pg_stat_activity
               WHERE query LIKE '%/* w:one */%' AND pid <> pg_backend_pid()}),
		't',
		'while it waits, its backend holds a snapshot (backend_xmin is set)');
	my $t_before = time;
	pgb_safe('postgres', q{SELECT count(*) FROM tego.plugin_add('pooled-1')});
	my $t_commit = time;
	pgb_wait($w);
	is($w->{rc}, 0, 'the waiter succeeds');
	is( $w->{out},
		($seq0 + 1) . '|tego_plugins|plugin-state-changed',
		"it returns the event of another client's plugin_add, with the next seq");
	cmp_ok($w->{done_at}, '>=', $t_before, '... not before the commit');
	cmp_ok($w->{done_at} - $t_commit, '<', 2,
		sprintf('... within 2 s of the commit (%.3f s)', $w->{done_at} - $t_commit));
	cmp_ok($w->{done_at} - $w->{t0}, '<', 8, '... well before its 10 s timeout');

	$w = pgb_start('postgres',
		qq{BEGIN ISOLATION LEVEL READ COMMITTED;
           SELECT seq, key, payload->>'action' FROM tego.wait_events($seq0 + 1, ARRAY['tego_plugins'], '10 seconds') /* w:enable */;
           COMMIT;}
	);
	ok(await_waiting('w:enable', 1),
		'a waiter from the seq it has seen, in a READ COMMITTED transaction block');
	pgb_safe('postgres', q{SELECT count(*) FROM tego.plugin_enable('pooled-1')});
	$t_commit = time;
	pgb_wait($w);
	my $now = q1('SELECT tego.event_seq()');
	my @rows = split /\n/, $w->{out};
	is( join(',', map { (split /\|/)[0] } @rows),
		join(',', ($seq0 + 2) .. $now),
		"it returns all of plugin_enable's events, in seq order");
	like($rows[-1], qr/\|pooled-1\|enable$/, '... the last one the enable');
	cmp_ok($w->{done_at} - $t_commit, '<', 2,
		sprintf('... within 2 s of the commit (%.3f s)', $w->{done_at} - $t_commit));

	# how long the statement took, in the server (this expression is computed
	# after the aggregate has read all of wait_events' rows)
	my $took =
	  q{round(extract(epoch FROM clock_timestamp() - statement_timestamp())::numeric, 3)};

	# -----------------------------------------------------------------------
	# 3. the topics filter
	# -----------------------------------------------------------------------
	my $s1 = q1('SELECT tego.event_seq()');
	my $jobs = pgb_start('wide',
		qq{SELECT count(*), $took FROM tego.wait_events($s1, ARRAY['tego_jobs'], '1 second') /* w:jobs */}
	);
	my $plugins = pgb_start('wide',
		qq{SELECT seq FROM tego.wait_events($s1, ARRAY['tego_plugins'], '10 seconds') /* w:plugins */}
	);
	ok(await_waiting('w:jobs', 1) && await_waiting('w:plugins', 1),
		'a waiter on tego_jobs and one on tego_plugins');
	pgb_safe('wide', q{SELECT count(*) FROM tego.plugin_add('pooled-2')});
	$t_commit = time;
	pgb_wait($jobs, $plugins);
	is($plugins->{out}, $s1 + 1, 'the tego_plugins waiter returns the plugin change');
	cmp_ok($plugins->{done_at} - $t_commit, '<', 2,
		sprintf('... within 2 s (%.3f s)', $plugins->{done_at} - $t_commit));
	my ($jobs_rows, $jobs_secs) = split /\|/, $jobs->{out};
	is($jobs_rows, '0',
		'the tego_jobs waiter is not answered by the plugin change: 0 rows');
	ok($jobs_secs >= 1 && $jobs_secs < 2,
		"... after its own timeout of 1 s (the statement took $jobs_secs s)");
	is(q1(qq{SELECT count(*) FROM tego.events WHERE seq > $s1 AND topic = 'tego_jobs'}),
		'0', '(no tego_jobs event was committed meanwhile)');

	# -----------------------------------------------------------------------
	# 4. four waiters at once, each holding a server connection
	# -----------------------------------------------------------------------
	my $s2 = q1('SELECT tego.event_seq()');
	my @many = map {
		pgb_start('wide',
			qq{SELECT seq, key FROM tego.wait_events($s2, ARRAY['tego_plugins'], '10 seconds') /* w:many */}
		)
	} 1 .. 4;
	ok(await_waiting('w:many', 4), 'four waiters wait at once');
	is(pools('wide')->{sv_active}, 4,
		'each holds a server connection of the pool while it waits (SHOW POOLS: sv_active = 4)');
	pgb_safe('wide', q{SELECT count(*) FROM tego.plugin_add('pooled-3')});
	$t_commit = time;
	pgb_wait(@many);
	is( join(' ', map { $_->{out} } @many),
		join(' ', ('' . ($s2 + 1) . '|pooled-3') x 4),
		'each returns the event');
	my $slowest = (sort { $b <=> $a } map { $_->{done_at} - $t_commit } @many)[0];
	cmp_ok($slowest, '<', 2,
		sprintf('... all within 2 s of the commit (the last after %.3f s)', $slowest));

	# -----------------------------------------------------------------------
	# 5. waiters that fill the pool hold up the writers
	# -----------------------------------------------------------------------
	my $s3 = q1('SELECT tego.event_seq()');
	my @full = map {
		pgb_start('postgres',
			qq{SELECT count(*) FROM tego.wait_events($s3, ARRAY['tego_plugins'], '3 seconds') /* w:full */}
		)
	} 1 .. 2;
	ok(await_waiting('w:full', 2),
		'two waiters hold both server connections of a pool of 2');
	my $began = q1(
		q{SELECT min(query_start) FROM pg_stat_activity
           WHERE query LIKE '%/* w:full */%' AND pid <> pg_backend_pid()});
	my $writer = pgb_start('postgres', q{SELECT count(*) FROM tego.plugin_add('pooled-4')});
	ok(poll_pools('postgres', 'cl_waiting', 1),
		'a writer through the same pool waits in pgbouncer for a server connection');
	pgb_wait(@full, $writer);
	is($writer->{rc}, 0, 'the writer commits ...');
	cmp_ok($writer->{done_at} - $writer->{t0}, '>=', 2, '... seconds later');
	cmp_ok(
		q1(qq{SELECT extract(epoch FROM committed_at - '$began')
                FROM tego.events WHERE key = 'pooled-4'}),
		'>=', 3,
		'... once the first waiter had given its server connection back, at the end of its 3 s timeout'
	);
	ok((grep { $_->{out} eq '0' } @full),
		'that waiter timed out with nothing: the commit came after it');

	# -----------------------------------------------------------------------
	# 6. after_seq behind: at once, max_events at a time
	# -----------------------------------------------------------------------
	$now = q1('SELECT tego.event_seq()');
	my ($rc, $out, $err, $secs) =
	  pgb('postgres', qq{SELECT seq FROM tego.wait_events($now - 3, NULL, '10 seconds')});
	is(join(',', split /\n/, $out), join(',', $now - 2 .. $now),
		'after_seq behind: the pending events, in seq order');
	cmp_ok($secs, '<', 2, '... at once (not after the timeout)');
	($rc, $out, $err, $secs) =
	  pgb('postgres', q{SELECT seq FROM tego.wait_events(0, NULL, '1 hour', 2)});
	is(join(',', split /\n/, $out), '1,2',
		'max_events => 2 from 0: seq 1 and 2 (a timeout of 1 hour is accepted)');
	cmp_ok($secs, '<', 2, '... at once (not after the timeout)');

	# -----------------------------------------------------------------------
	# 7. the timeout, with nothing to return
	# -----------------------------------------------------------------------
	($rc, $out, $err, $secs) = pgb('postgres',
		qq{SELECT count(*), $took FROM tego.wait_events(tego.event_seq(), ARRAY['tego_plugins'], '2 seconds')}
	);
	my ($rows_n, $took_secs) = split /\|/, $out;
	is($rows_n, '0', 'nothing past after_seq: 0 rows ...');
	ok($took_secs >= 2 && $took_secs < 3,
		"... after the timeout of 2 s (the statement took $took_secs s)");
	($rc, $out, $err) = pgb('postgres',
		qq{SELECT count(*), $took FROM tego.wait_events(tego.event_seq(), NULL, '0 seconds')});
	($rows_n, $took_secs) = split /\|/, $out;
	is($rows_n, '0', "a timeout of '0 seconds': 0 rows ...");
	cmp_ok($took_secs, '<', 0.5, "... at once (the statement took $took_secs s)");

	# -----------------------------------------------------------------------
	# 8. arguments refused; what ends a wait early
	# -----------------------------------------------------------------------
	for my $bad ('-1 second', '2 hours')
	{
		($rc, $out, $err) =
		  pgb('postgres', qq{SELECT * FROM tego.wait_events(0, NULL, '$bad')});
		like($err, qr/ERROR:\s+22023: timeout must be between 0 and 1 hour/,
			"a timeout of '$bad' is refused with SQLSTATE 22023");
	}
	($rc, $out, $err) =
	  pgb('postgres', q{SELECT * FROM tego.wait_events(NULL, NULL, '1 second')});
	like($err, qr/ERROR:\s+22004: after_seq must not be null/,
		'a NULL after_seq is refused with SQLSTATE 22004');
	($rc, $out, $err) = pgb('postgres', q{SELECT * FROM tego.wait_events(0, NULL, NULL)});
	like($err, qr/ERROR:\s+22004: timeout must not be null/,
		'a NULL timeout is refused with SQLSTATE 22004');
	($rc, $out, $err) = pgb('postgres',
		q{BEGIN ISOLATION LEVEL REPEATABLE READ;
          SELECT count(*) FROM tego.wait_events(0, NULL, '1 second');
          COMMIT;});
	like($err, qr/ERROR:\s+0A000: tego.wait_events cannot wait in a REPEATABLE READ/,
		'in a REPEATABLE READ transaction it is refused with SQLSTATE 0A000');
	($rc, $out, $err, $secs) = pgb('postgres',
		q{BEGIN;
          SET LOCAL statement_timeout = '300ms';
          SELECT count(*) FROM tego.wait_events(tego.event_seq(), NULL, '5 seconds');
          COMMIT;});
	like($err, qr/ERROR:\s+57014: canceling statement due to statement timeout/,
		'a statement_timeout shorter than the timeout cancels the wait');
	cmp_ok($secs, '<', 2, '... when it passes');

	my $c = pgb_start('postgres',
		q{SELECT count(*) FROM tego.wait_events(tego.event_seq(), NULL, '20 seconds') /* w:cancel */}
	);
	ok(await_waiting('w:cancel', 1), 'a waiter ...');
	my $t_cancel = time;
	$c->{h}->signal('INT');    # psql sends a cancel request, through pgbouncer
	pgb_wait($c);
	like($c->{err}, qr/ERROR:\s+57014: canceling statement due to user request/,
		'... is canceled by a cancel request sent through pgbouncer');
	cmp_ok($c->{done_at} - $t_cancel, '<', 2, '... at once');

	# -----------------------------------------------------------------------
	# 9. a client that goes away in the middle of a wait: the waiter checks
	#    its client every second, so its backend (and snapshot) ends soon
	#    after, long before the timeout (client_connection_check_interval
	#    is 0, its default)
	# -----------------------------------------------------------------------
	$c = pgb_start('postgres',
		q{SELECT count(*) FROM tego.wait_events(tego.event_seq(), NULL, '30 seconds') /* w:gone */}
	);
	ok(await_waiting('w:gone', 1), 'a waiter ...');
	is(q1(q{SELECT setting FROM pg_settings WHERE name = 'client_connection_check_interval'}),
		'0', '(client_connection_check_interval is off)');
	my $log_at = -s $pgb_log;
	my $t_kill = time;
	$c->{h}->signal('KILL');
	pgb_wait($c);
	ok(log_has(qr/client disconnect while server was not ready/, 10, $log_at),
		'... is killed; pgbouncer closes its server connection');
	ok( poll_until(
			$node,
			q{SELECT count(*) = 0 FROM pg_stat_activity
               WHERE query LIKE '%/* w:gone */%' AND pid <> pg_backend_pid()},
			10),
		'... and its backend ends ...');
	cmp_ok(time - $t_kill, '<', 5, '... within a few seconds, not at its 30 s timeout');
	like(slurp_file($node->logfile), qr/FATAL:  connection to client lost/,
		'... saying that its client was lost');

	# -----------------------------------------------------------------------
	# 10. a client's catch-up loop: last = 0; wait_events(last) ...
	# -----------------------------------------------------------------------
	my $loop0 = q1('SELECT tego.event_seq()');
	my $seed = int(time);
	srand($seed);
	note("random seed $seed");
	my $script = '';
	for my $i (1 .. 20)
	{
		$script .= sprintf("SELECT pg_sleep(%.3f);\n", rand(0.25));
		$script .= qq{SELECT tego.publish('loop', '{"i": $i}');\n};
	}
	PostgreSQL::Test::Utils::append_to_file("$tmp/publish.sql", $script);
	my $publisher = {
		out => '',
		err => '',
		t0 => time
	};
	$publisher->{h} = IPC::Run::start([ @{ pgb_cmd('postgres') }, '-f', "$tmp/publish.sql" ],
		'<', \undef, '>', \$publisher->{out}, '2>', \$publisher->{err},
		IPC::Run::timeout($timeout));

	my $last = 0;    # as a client starts: from the beginning
	my @got;
	my $calls = 0;
	my $errors = '';
	my $deadline = time + 60;
	my $follow = sub {
		my ($s, $until) = @_;
		while (@got < $until && time < $deadline)
		{
			my ($o, $e) = session_query($s,
				qq{SELECT seq, payload #>> '{message,i}' FROM tego.wait_events($last, ARRAY['loop'], '5 seconds', 4)}
			);
			$calls++;
			$errors .= $e;
			last if $e ne '';
			for my $line (split /\n/, $o)
			{
				my ($seq, $i) = split /\|/, $line;
				push @got, [ $seq, $i ];
				$last = $seq;
			}
		}
	};
	my $reader = pgb_session('postgres');
	$follow->($reader, 8);
	session_close($reader);    # the client reconnects, with its last seq
	$reader = pgb_session('postgres');
	$follow->($reader, 20);
	pgb_wait($publisher);
	is($publisher->{rc}, 0, 'another client committed 20 messages at random moments');
	is($errors, '', 'the loop ran without errors');
	is(join(',', map { $_->[1] } @got), join(',', 1 .. 20),
		'the loop collected each message exactly once, in order (across a reconnect)');
	is( join(',', map { $_->[0] } @got),
		q1(q{SELECT string_agg(seq::text, ',' ORDER BY seq) FROM tego.events WHERE topic = 'loop'}),
		'... with their seqs, ascending, as in tego.events');
	cmp_ok($got[0][0], '>', $loop0, '... none older than the loop');
	is( session_query($reader,
			qq{SELECT count(*) FROM tego.wait_events($last, ARRAY['loop'], '1 second')}),
		'0',
		'and nothing more after the last one');
	is( session_query($reader,
			qq{SELECT string_agg(seq::text, ',') FROM tego.events_since($loop0, ARRAY['loop'])}),
		join(',', map { $_->[0] } @got),
		'tego.events_since from the same position reads the same events');
	session_close($reader);
	note("the loop made $calls wait_events calls");

	# -----------------------------------------------------------------------
	# 11. a compacted position
	# -----------------------------------------------------------------------
	q1(q{SELECT pg_sleep(1.1)});
	$node->safe_psql('postgres',
		q{SET tego.event_retention = 1; SELECT tego.compact_events()});
	($rc, $out, $err) =
	  pgb('postgres', q{SELECT count(*) FROM tego.wait_events(0, NULL, '1 second')});
	like($err, qr/ERROR:\s+TG001: events after position 0 have been compacted/,
		'a position that was compacted fails with TG001, as with events_since');
}

$pgb->signal('TERM');
$pgb->finish;
$pgb = undef;
ok(1, 'pgbouncer stopped');

done_testing();
