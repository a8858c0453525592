# Fencing with tego.leader_check: the scheduler asks an HTTP endpoint (here
# a stand-in for Patroni's REST API, answering with the status code in a
# file) whether this server is the leader.  While it answers 200, jobs fire
# and events commit; when it answers otherwise or cannot be reached (the
# manager died), within two check intervals no job fires and a commit with
# tego events fails (25006), and both resume once it answers 200 again.
use strict;
use warnings;
use IO::Socket::INET;
use POSIX ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use TegoTest;

my $http_port = PostgreSQL::Test::Cluster::get_free_port();
my $status_file = PostgreSQL::Test::Utils::tempdir() . '/status';

sub set_status
{
	my ($code) = @_;
	open(my $fh, '>', "$status_file.tmp") or die "$status_file: $!";
	print $fh $code;
	close($fh);
	rename("$status_file.tmp", $status_file) or die "$status_file: $!";
}

# A one-request-at-a-time HTTP server answering with the status in the file.
sub start_responder
{
	my $pid = fork();
	die "fork: $!" unless defined $pid;
	return $pid if $pid;
	my $server = IO::Socket::INET->new(
		LocalAddr => '127.0.0.1',
		LocalPort => $http_port,
		Listen => 16,
		ReuseAddr => 1);
	POSIX::_exit(1) unless $server;
	while (my $c = $server->accept)
	{
		my $request = '';
		while (my $line = <$c>)
		{
			$request .= $line;
			last if $line eq "\r\n";
		}
		open(my $fh, '<', $status_file) or die "$status_file: $!";
		my $code = <$fh>;
		close($fh);
		print $c "HTTP/1.1 $code X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
		close($c);
	}
	POSIX::_exit(0);    # NB: not exit, which would run the parent's END blocks
}

set_status(200);
my $responder = start_responder();
END { kill 'KILL', $responder if $responder; }

my $node = PostgreSQL::Test::Cluster->new('leader_check');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'tego'
tego.leader_check = 'http://127.0.0.1:$http_port/primary'
tego.leader_check_interval = 200ms
tego.leader_check_timeout = 200ms
});
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION tego;
CREATE ROLE tego_job LOGIN;
CREATE TABLE ticks (at timestamptz DEFAULT clock_timestamp());
GRANT INSERT ON ticks TO tego_job;
SELECT tego.schedule('tick', '* * * * * *', 'INSERT INTO ticks DEFAULT VALUES', username => 'tego_job');
});

ok(poll_until($node, q{SELECT count(*) >= 2 FROM ticks}, 30), 'confirmed: the job runs');
is($node->safe_psql('postgres', q{SELECT count(*) FROM (SELECT tego.publish('orders', '{}')) p}), '1',
	'confirmed: events commit');

# the endpoint says: not the leader
set_status(503);
usleep(700_000);
my ($rc, $out, $err) = $node->psql('postgres', q{SELECT tego.publish('orders', '{}')});
isnt($rc, 0, 'fenced: tego.publish fails');
like($err, qr/ERROR:  tego cannot confirm that this server is the leader/, 'with the fencing error');
like($err, qr/failed: the answer was "HTTP\/1.1 503 X"/, 'whose detail is the answer');
$node->psql('postgres', q{\set VERBOSITY verbose
SELECT tego.publish('orders', '{}')}, stderr => \$err);
like($err, qr/ERROR:  25006:/, 'SQLSTATE 25006');
my $before = $node->safe_psql('postgres', 'SELECT count(*) FROM ticks');
my $runs = $node->safe_psql('postgres', 'SELECT count(*) FROM tego.job_runs');
sleep 3;
is($node->safe_psql('postgres', 'SELECT count(*) FROM ticks'), $before, 'fenced: the job does not run');
is($node->safe_psql('postgres', 'SELECT count(*) FROM tego.job_runs'), $runs, 'fenced: no run is recorded');
is($node->safe_psql('postgres', q{SELECT count(*) FROM tego.events WHERE topic = 'orders'}), '1',
	'fenced: no event was stored');
# plain SQL is not affected
is($node->safe_psql('postgres', q{INSERT INTO ticks DEFAULT VALUES RETURNING 1}), '1',
	'fenced: commits without tego events go through');

# the endpoint is gone (the manager died)
kill 'KILL', $responder;
waitpid($responder, 0);
usleep(700_000);
($rc, $out, $err) = $node->psql('postgres', q{SELECT tego.publish('orders', '{}')});
like($err, qr/failed: could not connect/, 'an unreachable endpoint fences too');

# leader again
set_status(200);
$responder = start_responder();
ok(poll_until($node, 'SELECT count(*) >= ' . ($before + 3) . ' FROM ticks', 30),
	'confirmed again: the job runs again');
ok(poll_until($node, q{SELECT count(*) = 1 FROM (SELECT tego.publish('orders', '{}')) p}, 10),
	'confirmed again: events commit');
my $log = slurp_file($node->logfile);
like($log, qr/tego leader check failed: the answer was "HTTP\/1.1 503 X"/, 'the server log says when it was fenced');
like($log, qr/tego leader check: this server is the leader again/, 'and when it was confirmed again');

# a setting that is not an http:// URL is refused
($rc, $out, $err) = $node->psql('postgres', q{ALTER SYSTEM SET tego.leader_check = 'https://127.0.0.1/primary'});
like($err, qr/invalid value for parameter "tego.leader_check".*\n.*must be an http:\/\/ URL, and it does not begin with http:\/\//,
	'a URL other than http:// is refused');
($rc, $out, $err) = $node->psql('postgres', q{ALTER SYSTEM SET tego.leader_check = 'http://127.0.0.1:99999/'});
like($err, qr/its port is not a number from 1 to 65535/, 'a bad port is refused');
($rc, $out, $err) = $node->psql('postgres', q{ALTER SYSTEM SET tego.leader_check = E'http://127.0.0.1:8008/primary HTTP/1.0\r\nX: y'});
like($err, qr/it contains a space or a control character/, 'a URL with a space or a line break is refused');

$node->stop;
kill 'KILL', $responder;
waitpid($responder, 0);
$responder = undef;
done_testing();
