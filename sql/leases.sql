--
-- Leases: acquire, renew, release, assert; fencing tokens; events; errors.
--
CREATE ROLE regress_lease_app NOLOGIN;
GRANT USAGE ON SCHEMA tego TO regress_lease_app;
GRANT EXECUTE ON FUNCTION
    tego.lease_acquire(text, text, interval, boolean),
    tego.lease_renew(text, text, bigint, interval),
    tego.lease_release(text, text, bigint), tego.lease_assert(text, bigint)
  TO regress_lease_app;
GRANT SELECT ON tego.leases TO regress_lease_app;
SELECT tego.event_seq() AS start \gset
\set SHOW_CONTEXT never
SET ROLE regress_lease_app;

-- the first holder gets token 1; another holder is refused and told who
-- holds the lease
SELECT acquired, holder, token, expires_at > now() AS expires_later
  FROM tego.lease_acquire('leader', 'node-a', '1 minute');
SELECT acquired, holder, token FROM tego.lease_acquire('leader', 'node-b');
-- the holder acquiring again keeps its token
SELECT acquired, holder, token FROM tego.lease_acquire('leader', 'node-a');
SELECT tego.lease_renew('leader', 'node-a', 1, '2 minutes') > now() + interval '1 minute' AS renewed;
SELECT tego.lease_assert('leader', 1);
SELECT name, holder, token, session_bound, live FROM tego.leases;

-- other holders and stale tokens are refused
\set VERBOSITY default
SELECT tego.lease_renew('leader', 'node-b', 1);
SELECT tego.lease_renew('leader', 'node-a', 2);
SELECT tego.lease_release('leader', 'node-b', 1);
SELECT tego.lease_assert('leader', 0);

-- release; the next holder gets a larger token, the old one is fenced off
SELECT tego.lease_release('leader', 'node-a', 1);
SELECT name, holder, token, live FROM tego.leases;
SELECT tego.lease_assert('leader', 1);
SELECT acquired, holder, token FROM tego.lease_acquire('leader', 'node-b');
SELECT tego.lease_assert('leader', 1);
SELECT tego.lease_assert('leader', 2);

-- an expired lease is not held: renewing fails, anyone may take it over,
-- with the next token
SELECT acquired, token FROM tego.lease_acquire('short', 'node-a', '10 milliseconds');
SELECT pg_sleep(0.05);
SELECT name, holder, live FROM tego.leases WHERE name = 'short';
SELECT tego.lease_renew('short', 'node-a', 1);
SELECT acquired, holder, token FROM tego.lease_acquire('short', 'node-b');
-- even the old holder gets a new token after its lease expired
SELECT tego.lease_release('short', 'node-b', 2);
SELECT acquired, holder, token FROM tego.lease_acquire('short', 'node-a', '10 milliseconds');
SELECT pg_sleep(0.05);
SELECT acquired, holder, token FROM tego.lease_acquire('short', 'node-a');

-- a session-bound lease lives while this session does (its end is tested
-- in TAP)
SELECT acquired, token FROM tego.lease_acquire('per-session', 'node-a', session_bound => true);
SELECT name, session_bound, session_pid = pg_backend_pid() AS mine, live
  FROM tego.leases WHERE name = 'per-session';
SELECT tego.lease_release('per-session', 'node-a', 1);
SELECT count(*) AS advisory_locks_left FROM pg_locks
 WHERE locktype = 'advisory' AND pid = pg_backend_pid();

-- a rolled-back acquisition leaves nothing behind
BEGIN;
SELECT acquired, token FROM tego.lease_acquire('rolled-back', 'node-a');
ROLLBACK;
SELECT count(*) AS rows FROM tego.leases WHERE name = 'rolled-back';

-- events on tego_leases: holder changes and releases (not renewals)
RESET ROLE;
-- (no holder or token: tego.leases shows them to members of the owner only)
SELECT seq - :start AS n, event, key, payload->>'owner' AS owner,
       payload ?| ARRAY['holder', 'token'] AS names_holder, payload #>> '{previous,ended}' AS previous_ended
  FROM tego.events_since(:start, ARRAY['tego_leases'])
 ORDER BY seq;
SET ROLE regress_lease_app;

-- bad input: clear errors, nothing changed
SELECT count(*) AS leases_before FROM tego.leases \gset
SELECT tego.lease_acquire(NULL, 'node-a');
SELECT tego.lease_acquire('', 'node-a');
SELECT tego.lease_acquire(repeat('x', 64), 'node-a');
SELECT tego.lease_acquire('leader', NULL);
SELECT tego.lease_acquire('leader', '');
SELECT tego.lease_acquire('leader', repeat('h', 201));
SELECT tego.lease_acquire('leader', 'node-a', NULL);
SELECT tego.lease_acquire('leader', 'node-a', '0 seconds');
SELECT tego.lease_acquire('leader', 'node-a', '-1 second');
SELECT tego.lease_acquire('leader', 'node-a', '2 days');
SELECT tego.lease_acquire('leader', 'node-a', session_bound => NULL);
SELECT tego.lease_renew('leader', 'node-b', NULL);
SELECT tego.lease_renew('leader', 'node-b', 2, '0 seconds');
SELECT tego.lease_release('leader', NULL, 2);
SELECT tego.lease_assert(NULL, 1);
SELECT tego.lease_assert('leader', NULL);
SELECT tego.lease_assert('never-acquired', 1);
SELECT tego.lease_renew('never-acquired', 'node-a', 1);
SELECT count(*) = :leases_before AS unchanged FROM tego.leases;
SELECT holder, token FROM tego.leases WHERE name = 'leader';
RESET ROLE;

-- tego.max_leases caps the number of lease names
SET tego.max_leases = 3;
SET ROLE regress_lease_app;
SELECT count(*) FROM tego.leases;
-- a new name reclaims a released lease (the name per-session): its token
-- is kept as a floor that new names start above
SELECT acquired, token FROM tego.lease_acquire('one-too-many', 'node-a');
SELECT name FROM tego.leases ORDER BY name;
-- no lease is released or a day old: no room
SELECT tego.lease_acquire('one-more', 'node-a');
-- an existing name is still fine
SELECT acquired FROM tego.lease_acquire('leader', 'node-b');
RESET ROLE;
RESET tego.max_leases;

-- ttl: months have no fixed length and are refused; so is anything that
-- would end before now or after a day from now
SET ROLE regress_lease_app;
SELECT tego.lease_acquire('leader', 'node-b', '1 month -30 days 00:00:01');
SELECT tego.lease_renew('leader', 'node-b', 2, '1 day 00:00:01');
SELECT tego.lease_acquire('leader', 'node-b', '1 day -24:00:01');
SELECT tego.lease_acquire('leader', 'node-b', '100000000 days -2399999976:00:00');
RESET ROLE;

-- every lease has an owner: the role that made its name; another role may
-- not renew, release, assert or take it, and reads neither its holder nor
-- its token
CREATE ROLE regress_lease_other NOLOGIN;
GRANT USAGE ON SCHEMA tego TO regress_lease_other;
GRANT EXECUTE ON FUNCTION
    tego.lease_acquire(text, text, interval, boolean),
    tego.lease_renew(text, text, bigint, interval),
    tego.lease_release(text, text, bigint), tego.lease_assert(text, bigint)
  TO regress_lease_other;
GRANT SELECT ON tego.leases TO regress_lease_other;
SELECT name, holder, token, owner FROM tego.leases WHERE name = 'leader';
SET ROLE regress_lease_other;
SELECT tego.lease_renew('leader', 'node-b', 2);
SELECT tego.lease_release('leader', 'node-b', 2);
SELECT tego.lease_assert('leader', 2);
SELECT tego.lease_acquire('leader', 'node-b');
SELECT tego.lease_acquire('short', 'node-c');
SELECT name, holder, token, session_pid, owner, live FROM tego.leases ORDER BY name;
-- its own lease is its own
SELECT acquired, holder, token FROM tego.lease_acquire('other-leader', 'node-c');
SELECT name, holder, token, owner FROM tego.leases WHERE owner = current_user;
RESET ROLE;
-- a member of the owner may act for it
GRANT regress_lease_app TO regress_lease_other;
SET ROLE regress_lease_other;
SELECT tego.lease_renew('leader', 'node-b', 2) > now() AS renewed_by_a_member;
SELECT holder, token FROM tego.leases WHERE name = 'leader';
RESET ROLE;
REVOKE regress_lease_app FROM regress_lease_other;

-- tego.max_leases_per_role caps the names of one role; making one more
-- reclaims the role's own leases that are not live (released first), and
-- a name made again starts above every reclaimed token
SET tego.max_leases_per_role = 1;
SET ROLE regress_lease_other;
SELECT tego.lease_acquire('other-second', 'node-c');
SELECT token AS other_token FROM tego.leases WHERE name = 'other-leader' \gset
SELECT tego.lease_release('other-leader', 'node-c', :other_token);
SELECT acquired, token > :other_token AS above_the_floor
  FROM tego.lease_acquire('other-second', 'node-c');
SELECT name FROM tego.leases WHERE owner = current_user;
SELECT tego.lease_release(name, holder, token) FROM tego.leases WHERE name = 'other-second';
SELECT acquired, token > :other_token AS above_the_floor
  FROM tego.lease_acquire('other-leader', 'node-c');
RESET ROLE;
RESET tego.max_leases_per_role;
SELECT token > 0 AS has_floor FROM tego.lease_floor;

-- a role without grants can do nothing
CREATE ROLE regress_lease_nobody NOLOGIN;
GRANT USAGE ON SCHEMA tego TO regress_lease_nobody;
SET ROLE regress_lease_nobody;
SELECT tego.lease_acquire('leader', 'intruder');
SELECT tego.lease_assert('leader', 2);
SELECT count(*) FROM tego.leases;
SELECT count(*) FROM tego.lease_state;
RESET ROLE;

DROP OWNED BY regress_lease_app, regress_lease_other, regress_lease_nobody;
DROP ROLE regress_lease_app, regress_lease_other, regress_lease_nobody;
