
# Copyright: the tego authors.  PostgreSQL::Test::Cluster TAP test.
#
# Many listeners, concurrent writers: every LISTEN client (tego_listen)
# sees exactly the committed events, gapless, without duplicates, in seq
# order, and the same sequence as tego.events.  A listener that stops
# mid-stream (after --count, or killed with SIGKILL) and resumes with
# --from <last seq it printed> loses and repeats nothing.  NOTIFY payloads
# are JSON below 8000 bytes, also for a 1 MB message and for large options.
#
# Environment: TEGO_TOOLS (folder with the built tego_listen; defaults to
# test/tools next to this file).
use strict;
use warnings;

use FindBin;
use IPC::Run;
use JSON::PP;
use Time::HiRes qw(usleep);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $tools = $ENV{TEGO_TOOLS} // "$FindBin::RealBin/../tools";
my $listen_bin = "$tools/tego_listen";
die "tego_listen not found or not executable at $listen_bin (make tools)\n"
  unless -x $listen_bin;

my $timeout = $PostgreSQL::Test::Utils::timeout_default;
my $json = JSON::PP->new->canonical;
my $tmp = PostgreSQL::Test::Utils::tempdir;

my $topic = 'app_sync';    # the published topic
my $writer_seconds = 8;    # how long the writers run

my $node = PostgreSQL::Test::Cluster->new('listeners');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'tego'");
$node->append_conf(
	'postgresql.conf', qq{
max_connections = 40
deadlock_timeout = '100ms'
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION tego');

# 10 plugins per writer (no dependencies: any enable/disable is valid), and
# one plugin whose options are too large for a NOTIFY payload.
$node->safe_psql(
	'postgres', q{
SELECT count(*) FROM generate_series(1, 10) i,
       LATERAL tego.plugin_add('wa-' || i, version => '1.0.0') p;
SELECT count(*) FROM generate_series(1, 10) i,
       LATERAL tego.plugin_add('wb-' || i, version => '1.0.0') p;
SELECT count(*) FROM tego.plugin_add('big-opts',
       options => jsonb_build_object('blob', repeat('o', 20000)));
});

my $start = $node->safe_psql('postgres', 'SELECT tego.event_seq()');
cmp_ok($start, '>=', 21, "plugin_add events stored (start position $start)");

# --- helpers ------------------------------------------------------------------

# Complete lines of a listener output file (a partial last line, as a
# SIGKILL can leave, is dropped).
sub read_lines
{
	my ($file) = @_;
	open(my $fh, '<', $file) or return ();
	local $/;
	my $text = <$fh> // '';
	close $fh;
	my @lines = split /\n/, $text, -1;
	pop @lines;    # after the last "\n": empty, or a partial line
	return @lines;
}

# "<seq> <topic> <payload>" -> (seq, topic, payload text)
sub parse_line
{
	my ($line) = @_;
	my ($seq, $topic, $payload) = $line =~ /^(\d+) (\S+)(?: (.*))?$/s
	  or die "malformed listener line: " . substr($line, 0, 200);
	return ($seq, $topic, $payload);
}

sub seqs_of
{
	return map { (parse_line($_))[0] } @_;
}

sub last_seq_in
{
	my @l = read_lines($_[0]);
	return @l ? (parse_line($l[-1]))[0] : undef;
}

# Poll until the listener output in $file reaches seq $target.
sub wait_for_seq
{
	my ($file, $target, $what) = @_;
	my $deadline = time + $timeout;
	while (time < $deadline)
	{
		my $last = last_seq_in($file);
		return 1 if defined $last && $last >= $target;
		usleep(100_000);
	}
	diag("$what did not reach seq $target; last: " . (last_seq_in($file) // 'none'));
	return 0;
}

# Poll until $file has at least $n complete lines.
sub wait_for_lines
{
	my ($file, $n, $what) = @_;
	my $deadline = time + $timeout;
	while (time < $deadline)
	{
		return 1 if scalar(read_lines($file)) >= $n;
		usleep(50_000);
	}
	diag("$what printed fewer than $n lines");
	return 0;
}

# Start tego_listen in the background; stdout/stderr go to files.
my %listeners;
sub start_listener
{
	my ($name, @opts) = @_;
	my $out = "$tmp/$name.out";
	my $err = "$tmp/$name.err";
	my @cmd = (
		$listen_bin, '-d',
		$node->connstr('postgres') . " application_name=$name",
		'-c', 'tego_plugins', '-c', $topic, @opts);
	note("starting: @cmd");
	my $h = IPC::Run::start(\@cmd, '<', \undef, '>', $out, '2>', $err,
		IPC::Run::timeout($timeout));
	$listeners{$name} = $h;
	return ($h, $out, $err);
}

sub slurp_err
{
	my $f = shift;
	return -e $f ? PostgreSQL::Test::Utils::slurp_file($f) : '';
}

# Poll until the named sessions are idle after their catch-up query, i.e.
# LISTENing and waiting for live notifications.
sub wait_listening
{
	my @names = @_;
	my $list = join(',', map { "'$_'" } @names);
	return $node->poll_query_until(
		'postgres', qq{
SELECT count(*) = ${\ scalar(@names)} FROM pg_stat_activity
 WHERE application_name IN ($list) AND state = 'idle'
   AND query LIKE '%events_since%'});
}

# --- listeners -----------------------------------------------------------------

# l1..l3: the whole run, live.  l4: stops by itself after 40 events.
# l5: killed with SIGKILL mid-stream.
my (%out, %err);
for my $n (qw(l1 l2 l3))
{
	(undef, $out{$n}, $err{$n}) = start_listener($n, '--from', $start);
}
(undef, $out{l4}, $err{l4}) = start_listener('l4', '--from', $start, '--count', 40);
(undef, $out{l5}, $err{l5}) = start_listener('l5', '--from', $start);
ok(wait_listening(qw(l1 l2 l3 l4 l5)), 'five listeners are LISTENing');

# --- writers -------------------------------------------------------------------

# One lifecycle call per transaction (a batch locks its rows in id order),
# so the writers cannot deadlock; every transaction also publishes, and a
# rolled-back one publishes something that must never be seen.
sub writer_script
{
	my ($w) = @_;
	return qq{
\\set i random(1, 10)
\\set j random(1, 10)
BEGIN;
SELECT count(*) FROM tego.plugin_enable('$w-' || :i, '$w-' || (:i % 10 + 1));
SELECT tego.publish('$topic', jsonb_build_object('writer', '$w', 'i', :i));
COMMIT;
SELECT count(*) FROM tego.plugin_disable('$w-' || :j);
BEGIN;
SELECT tego.publish('$topic', jsonb_build_object('writer', '$w', 'rolled_back', true));
SELECT count(*) FROM tego.plugin_disable('$w-' || :i);
ROLLBACK;
SELECT tego.publish('$topic', jsonb_build_object('writer', '$w', 'j', :j));
SELECT count(*) FROM tego.plugin_enable('$w-' || :j);
};
}

my %writers;
for my $w (qw(wa wb))
{
	my $script = "$tmp/writer_$w.sql";
	PostgreSQL::Test::Utils::append_to_file($script, writer_script($w));
	my @cmd = (
		'pgbench', '-n', '-c', '2', '-j', '1',
		'-T', $writer_seconds, '-R', '25',
		'-f', $script,
		'-h', $node->host, '-p', $node->port, 'postgres');
	note("starting: @cmd");
	my ($o, $e) = ('', '');
	# PostgreSQL::Test::Utils sets PGAPPNAME; name the writer sessions
	local $ENV{PGAPPNAME} = "writer_$w";
	$writers{$w} = {
		h => IPC::Run::start(\@cmd, '<', \undef, '>', \$o, '2>', \$e,
			IPC::Run::timeout($timeout)),
		out => \$o,
		err => \$e
	};
}

sub writers_running
{
	return $node->safe_psql('postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'writer_%'"
	) > 0;
}

# While the writers run: a large-options plugin changes state, and a 1 MB
# message is published (above the default tego.max_publish_bytes, which a
# superuser raises for the session).
$node->safe_psql('postgres', q{SELECT count(*) FROM tego.plugin_enable('big-opts')});
$node->safe_psql('postgres',
	qq{SET tego.max_publish_bytes = '2MB';
	SELECT tego.publish('$topic', jsonb_build_object('blob', repeat('x', 1048576)))});
my $big_seq = $node->safe_psql(
	'postgres', qq{
SELECT seq FROM tego.events
 WHERE seq > $start AND topic = '$topic' AND payload->'message' ? 'blob';
});
like($big_seq, qr/^\d+$/, "1 MB message stored as seq $big_seq");
$node->safe_psql('postgres', q{SELECT count(*) FROM tego.plugin_disable('big-opts')});

# l4 stops by itself after 40 events; resume it while the writers still run.
my $l4 = $listeners{l4};
ok(eval { $l4->finish; 1 }, 'listener l4 exits after --count 40')
  or diag("l4: $@ " . slurp_err($err{l4}));
is(($l4->results)[0], 0, 'listener l4 exit status 0');
my @l4a = read_lines($out{l4});
is(scalar(@l4a), 40, 'l4 printed exactly 40 events');
my $l4_last = (parse_line($l4a[-1]))[0];
ok(writers_running(), "writers still running when l4 resumes from $l4_last");
(undef, $out{l4b}, $err{l4b}) = start_listener('l4b', '--from', $l4_last);

# l5 is killed with SIGKILL once it has printed 100 events, then resumed.
ok(wait_for_lines($out{l5}, 100, 'l5'), 'l5 printed 100 events');
my $l5 = $listeners{l5};
$l5->signal('KILL');
eval { $l5->finish };
my @l5a = read_lines($out{l5});
my $l5_last = (parse_line($l5a[-1]))[0];
ok(writers_running(), "writers still running when l5 resumes from $l5_last");
(undef, $out{l5b}, $err{l5b}) = start_listener('l5b', '--from', $l5_last);

# the resumed listeners must also see events committed after they started
my $resumed_at = $node->safe_psql('postgres', 'SELECT tego.event_seq()');
ok( $node->poll_query_until(
		'postgres', "SELECT tego.event_seq() > $resumed_at + 20"),
	'writers commit more events after the listeners resumed');

# --- writers done ----------------------------------------------------------------

for my $w (sort keys %writers)
{
	my $ok = eval { $writers{$w}{h}->finish; 1 };
	ok($ok && ($writers{$w}{h}->results)[0] == 0, "writer $w (pgbench) succeeded")
	  or diag("writer $w: $@\n${$writers{$w}{err}}");
	like(${ $writers{$w}{out} }, qr/actually processed: [1-9]/,
		"writer $w ran transactions");
}

my $final = $node->safe_psql('postgres', 'SELECT tego.event_seq()');
note("events: $start .. $final");
cmp_ok($final - $start, '>=', 300, 'writers produced at least 300 events');

for my $n (qw(l1 l2 l3 l4b l5b))
{
	ok(wait_for_seq($out{$n}, $final, $n), "listener $n reached seq $final");
}
for my $n (qw(l1 l2 l3 l4b l5b))
{
	$listeners{$n}->signal('TERM');
	my $ok = eval { $listeners{$n}->finish; 1 };
	ok($ok && ($listeners{$n}->results)[0] == 0, "listener $n exits 0 on SIGTERM")
	  or diag("$n: $@ " . slurp_err($err{$n}));
}

# --- the expected sequence ---------------------------------------------------------

my @rows = map { $json->decode($_) } split /\n/,
  $node->safe_psql(
	'postgres', qq{
SELECT json_build_object('seq', seq, 'topic', topic, 'event', event,
                         'key', key, 'payload', payload)
  FROM tego.events WHERE seq > $start ORDER BY seq});
my %row_of = map { $_->{seq} => $_ } @rows;
my @expected = map { "$_->{seq} $_->{topic}" } @rows;

is_deeply([ map { $_->{seq} } @rows ], [ $start + 1 .. $final ],
	'tego.events is gapless from the start position to event_seq()');
my %topics = map { $_->{topic} => 1 } @rows;
is_deeply([ sort keys %topics ], [ sort($topic, 'tego_plugins') ],
	'both topics carried events');
is( $node->safe_psql(
		'postgres',
		"SELECT count(*) FROM tego.events WHERE payload->'message' ? 'rolled_back'"),
	0,
	'messages published in rolled-back transactions were never stored');

# "seq topic" of every line of a listener output
sub seq_topics
{
	return map { my ($s, $t) = parse_line($_); "$s $t" } @_;
}

sub strictly_increasing
{
	my @s = @_;
	for my $i (1 .. $#s)
	{
		return 0 unless $s[$i] > $s[ $i - 1 ];
	}
	return 1;
}

for my $n (qw(l1 l2 l3))
{
	my @lines = read_lines($out{$n});
	ok(strictly_increasing(seqs_of(@lines)), "$n: seq strictly increasing");
	is_deeply([ seq_topics(@lines) ], \@expected,
		"$n: exactly the committed events, gapless, no duplicates");
	is(slurp_err($err{$n}), '', "$n: nothing on stderr");
}

# resumed listeners: first part + second part == the full sequence
for my $pair ([ 'l4', 'l4b' ], [ 'l5', 'l5b' ])
{
	my ($a, $b) = @$pair;
	my @first = read_lines($out{$a});
	my @second = read_lines($out{$b});
	cmp_ok(scalar(@first), '>', 0, "$a printed events before it stopped");
	cmp_ok(scalar(@second), '>', 0, "$b printed events after resuming");
	ok(strictly_increasing(seqs_of(@first, @second)),
		"$a + $b: seq strictly increasing across the restart");
	is_deeply([ seq_topics(@first, @second) ], \@expected,
		"$a + $b: no gap and no duplicate across the restart");
}

# --- NOTIFY payloads (l1 saw every event live) ----------------------------------

my ($bad_json, $too_big, $mismatch, $bad_meta, $omitted_ok) = (0, 0, 0, 0, 0);
my ($big_line, $big_opts_lines) = (undef, 0);
for my $line (read_lines($out{l1}))
{
	my ($seq, $t, $text) = parse_line($line);
	my $row = $row_of{$seq};
	my $msg = eval { $json->decode($text // '') };
	if (!$msg || ref($msg) ne 'HASH')
	{
		$bad_json++;
		diag("seq $seq: not a JSON object: " . substr($text // '', 0, 200));
		next;
	}
	if (length($text) >= 8000)
	{
		$too_big++;
		diag("seq $seq: NOTIFY payload of " . length($text) . " bytes");
	}
	if (   $msg->{seq} != $seq
		|| $msg->{topic} ne $row->{topic}
		|| $msg->{event} ne $row->{event}
		|| ($msg->{key} // '') ne ($row->{key} // ''))
	{
		$bad_meta++;
		diag("seq $seq: envelope differs from the stored row: $text");
	}

	# the payload is the stored one, less the members listed in "omitted"
	my %stored = %{ $row->{payload} };
	delete $stored{$_} for @{ $msg->{omitted} // [] };
	if ($json->encode($msg->{payload}) ne $json->encode(\%stored))
	{
		$mismatch++;
		diag("seq $seq: payload differs from tego.events: " . substr($text, 0, 300));
	}
	if ($row->{topic} eq 'tego_plugins')
	{
		my $p = $row->{payload};
		$bad_meta++, diag("seq $seq: plugin payload lacks action/name/revision")
		  unless defined $p->{action}
		  && $p->{name} eq $row->{key}
		  && $p->{revision} == $seq
		  && exists $p->{from}
		  && exists $p->{to};
	}
	$big_line = $msg if $seq == $big_seq;
	if ($row->{key} eq 'big-opts')
	{
		$big_opts_lines++;
		$omitted_ok++
		  if ref($msg->{omitted}) eq 'ARRAY'
		  && grep({ $_ eq 'options' } @{ $msg->{omitted} })
		  && !exists $msg->{payload}{options}
		  && $msg->{payload}{name} eq 'big-opts';
	}
}
is($bad_json, 0, 'every NOTIFY payload is a JSON object');
is($too_big, 0, 'every NOTIFY payload is below 8000 bytes');
is($bad_meta, 0, 'NOTIFY envelopes match the stored events');
is($mismatch, 0, 'NOTIFY payloads equal the stored payloads less the omitted members');
is($big_opts_lines, 2, 'the large-options plugin was enabled and disabled');
is($omitted_ok, 2, 'its NOTIFY payloads omit "options" and say so');

ok(defined $big_line, "l1 received the 1 MB message (seq $big_seq) live");
SKIP:
{
	skip 'the 1 MB message was not received', 3 unless defined $big_line;
	is_deeply($big_line->{omitted}, ['message'], '1 MB message: "omitted" is ["message"]');
	ok(!exists $big_line->{payload}{message}, '1 MB message: message left out of the NOTIFY');
	like($big_line->{payload}{publisher} // '', qr/\S/, '1 MB message: publisher kept');
}
is( $node->safe_psql(
		'postgres', qq{
SELECT payload->'message' = jsonb_build_object('blob', repeat('x', 1048576))
  FROM tego.events WHERE seq = $big_seq}),
	't',
	'the stored row has the full 1 MB message');

$node->stop;
done_testing();
