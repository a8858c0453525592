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

our @EXPORT = qw(poll_until app_grants);

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

# app_grants($role): the SQL that gives $role the README's grants of an
# application role ("Privileges"): the lifecycle and events, jobs, leases
# and guards, app status and health.
sub app_grants
{
	my ($role) = @_;
	my $sql = q{
GRANT USAGE ON SCHEMA tego TO %1$s;
GRANT EXECUTE ON FUNCTION
    tego.plugin_add(text, text, text, jsonb, boolean, boolean, text[]),
    tego.plugin_install(text[]), tego.plugin_uninstall(text[]), tego.plugin_enable(text[]),
    tego.plugin_disable(text[]), tego.plugin_remove(text[], boolean),
    tego.plugin_upgrade(text, text), tego.plugin_update(text, jsonb, bigint),
    tego.plugin_get(text), tego.plugin_list(boolean),
    tego.publish(text, jsonb), tego.event_seq(),
    tego.events_since(bigint, text[], integer),
    tego.wait_events(bigint, text[], interval, integer)
  TO %1$s;
GRANT SELECT, INSERT, UPDATE, DELETE ON tego."applicationPlugins" TO %1$s;
GRANT EXECUTE ON FUNCTION
    tego.schedule(text, text, text, name, name, text, interval, text, text, boolean),
    tego.schedule_app(text, text, jsonb, text, name, text, text, integer, interval, interval, boolean),
    tego.alter_job(text, text, text, jsonb, name, name, text, interval, text, text, integer, interval, interval, boolean),
    tego.unschedule(text), tego.run_now(text),
    tego.job_claim(text, text[], integer), tego.job_heartbeat(bigint, text),
    tego.job_finish(bigint, text, boolean, text)
  TO %1$s;
GRANT SELECT ON tego.jobs, tego.job_runs TO %1$s;
GRANT EXECUTE ON FUNCTION
    tego.lease_acquire(text, text, interval, boolean),
    tego.lease_renew(text, text, bigint, interval),
    tego.lease_release(text, text, bigint), tego.lease_assert(text, bigint),
    tego.plugin_begin(text, text, text, interval),
    tego.plugin_end(text, text, boolean, text)
  TO %1$s;
GRANT SELECT ON tego.leases, tego.plugin_operations TO %1$s;
GRANT EXECUTE ON FUNCTION
    tego.app_status_set(text, text, text, text),
    tego.app_maintaining_set(text, text, text, text, text),
    tego.app_forget(text), tego._apps(), tego.status(), tego.registry_epoch()
  TO %1$s;
GRANT SELECT ON tego.apps TO %1$s;
};
	return sprintf($sql, $role);
}

1;
