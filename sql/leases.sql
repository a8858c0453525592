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
SELECT seq - :start AS n, event, key, payload->>'holder' AS holder,
       payload->>'token' AS token, payload #>> '{previous,ended}' AS previous_ended
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
SELECT tego.lease_acquire('one-too-many', 'node-a');
-- an existing name is still fine
SELECT acquired FROM tego.lease_acquire('leader', 'node-b');
RESET ROLE;
RESET tego.max_leases;

-- a role without grants can do nothing
CREATE ROLE regress_lease_nobody NOLOGIN;
GRANT USAGE ON SCHEMA tego TO regress_lease_nobody;
SET ROLE regress_lease_nobody;
SELECT tego.lease_acquire('leader', 'intruder');
SELECT tego.lease_assert('leader', 2);
SELECT count(*) FROM tego.leases;
SELECT count(*) FROM tego.lease_state;
RESET ROLE;

DROP OWNED BY regress_lease_app, regress_lease_nobody;
DROP ROLE regress_lease_app, regress_lease_nobody;
