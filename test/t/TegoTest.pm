# Copyright: the tego authors.
#
# Helpers shared by tego's TAP tests (test/scripts/test.sh puts test/t on
# the include path).
package TegoTest;

use strict;
use warnings;

use Exporter 'import';
use Test::More;
use Time::HiRes qw(usleep time);

our @EXPORT = qw(poll_until);

# poll_until($node, $query, $secs [, $expected [, $db]]): run $query on
# $node (in database $db, default postgres) until it returns $expected ('t'
# by default), for at most $secs seconds; errors (a server restarting) just
# mean "not yet".  Returns true on success; prints the last output
# otherwise.
sub poll_until
{
	my ($node, $query, $secs, $expected, $db) = @_;
	$expected //= 't';
	$db //= 'postgres';
	my $deadline = time + $secs;
	my ($out, $err) = ('', '');
	while (time < $deadline)
	{
		($out, $err) = ('', '');
		$node->psql($db, $query, stdout => \$out, stderr => \$err);
		return 1 if $out eq $expected;
		usleep(100_000);
	}
	diag("timed out after ${secs}s on " . $node->name
		  . " waiting for [$expected] from:\n$query\nlast: [$out] $err");
	return 0;
}

1;
