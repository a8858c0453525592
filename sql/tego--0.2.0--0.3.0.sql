/* tego 0.2.0 -> 0.3.0: security (jobs run as their owner, per-role
 * isolation, bounds and quotas) */
\echo Use "ALTER EXTENSION tego UPDATE TO '0.3.0'" to load this file. \quit

--
-- Jobs: who is calling, bounds, per-role isolation of runs
--

-- Internal: raise an error unless v is a positive interval of at most max
-- (a whole number of days) with no month or year part (a month has no fixed length, and
-- '1 month -30 days' compares as zero but adds up to a day).
CREATE FUNCTION tego._check_interval(what text, v interval, max interval)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF v IS NULL THEN
        RAISE EXCEPTION '% must not be null', what USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF v <= interval '0' THEN
        RAISE EXCEPTION '% must be positive', what USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- NB: parts so large that adding them to a time overflows are refused
    -- even when they cancel out ('100000000 days -2399999976 hours')
    IF v > max OR abs(extract(day FROM v)) > 36500
       OR abs(extract(epoch FROM v) - extract(day FROM v) * 86400) > 3153600000 THEN
        -- the bound in words, whatever IntervalStyle is
        RAISE EXCEPTION '% must be at most %', what,
              CASE WHEN max = interval '1 day' THEN '1 day'
                   ELSE extract(epoch FROM max)::bigint / 86400 || ' days' END
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('The value given was %s.', v);
    END IF;
    IF extract(month FROM v) <> 0 OR extract(year FROM v) <> 0 THEN
        RAISE EXCEPTION '% must not have a month or year part', what
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('The value given was %s.', v),
                  HINT = 'Give it in days, hours, minutes or seconds.';
    END IF;
END
$$;

REVOKE ALL ON FUNCTION tego._check_interval(text, interval, interval) FROM PUBLIC;

CREATE OR REPLACE FUNCTION tego._check_sql_job(command text, database name,
                                               max_runtime interval)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF command IS NULL THEN
        RAISE EXCEPTION 'command must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF btrim(command) = '' THEN
        RAISE EXCEPTION 'command must not be empty' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF database IS NULL THEN
        RAISE EXCEPTION 'database must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_database d WHERE d.datname = database) THEN
        RAISE EXCEPTION 'database "%" does not exist', database USING ERRCODE = 'invalid_catalog_name';
    END IF;
    IF max_runtime IS NOT NULL THEN
        PERFORM tego._check_interval('max_runtime', max_runtime, interval '7 days');
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION tego._check_app_job(max_attempts integer,
                                               claim_timeout interval,
                                               heartbeat_timeout interval)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF max_attempts IS NULL OR max_attempts < 1 OR max_attempts > 100 THEN
        RAISE EXCEPTION 'max_attempts must be between 1 and 100' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM tego._check_interval('claim_timeout', claim_timeout, interval '1 day');
    PERFORM tego._check_interval('heartbeat_timeout', heartbeat_timeout, interval '1 day');
END
$$;

-- The sizes of what a job stores, whichever function writes it.
CREATE FUNCTION tego._jobs_check_sizes()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF octet_length(NEW.command) > 1048576 THEN
        RAISE EXCEPTION 'command is too long'
            USING ERRCODE = 'program_limit_exceeded',
                  DETAIL = format('A job''s command is at most 1 MB; this one has %s bytes.',
                                  octet_length(NEW.command));
    END IF;
    IF pg_column_size(NEW.payload) > 1048576 THEN
        RAISE EXCEPTION 'payload is too large'
            USING ERRCODE = 'program_limit_exceeded',
                  DETAIL = format('A job''s payload is at most 1 MB; this one has %s bytes.',
                                  pg_column_size(NEW.payload));
    END IF;
    IF octet_length(NEW.schedule) > 1000 THEN
        RAISE EXCEPTION 'schedule is too long'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('A schedule is at most 1000 bytes; this one has %s.',
                                  octet_length(NEW.schedule));
    END IF;
    RETURN NEW;
END
$$;

REVOKE ALL ON FUNCTION tego._jobs_check_sizes() FROM PUBLIC;

CREATE TRIGGER jobs_check_sizes BEFORE INSERT OR UPDATE ON tego.jobs
    FOR EACH ROW EXECUTE FUNCTION tego._jobs_check_sizes();

-- Job events name the job and carry no command, payload or role: the event
-- log is readable by every role granted it, the jobs table only by the
-- members of each job's role (row security).
CREATE OR REPLACE FUNCTION tego._job_changed(j tego.jobs, event text)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM tego._emit('tego_jobs', event, j.name,
                       jsonb_build_object('job_id', j.job_id, 'kind', j.kind,
                                          'active', j.active));
    PERFORM tego._wake_scheduler();
END
$$;

-- A run of an app job is heartbeated and finished only by members of its
-- job's role, and only by the worker that claimed it; the error names
-- neither the role nor the worker that holds it.
CREATE OR REPLACE FUNCTION tego._run_for_worker(id bigint, worker text)
RETURNS tego.job_runs
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r tego.job_runs;
BEGIN
    IF id IS NULL THEN
        RAISE EXCEPTION 'run_id must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF worker IS NULL THEN
        RAISE EXCEPTION 'worker must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT * INTO r FROM tego.job_runs WHERE run_id = id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'job run % does not exist', id USING ERRCODE = 'undefined_object';
    END IF;
    IF NOT pg_has_role(tego._invoker(), r.username, 'MEMBER') THEN
        RAISE EXCEPTION 'permission denied for job run %', id
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'Only members of the role of its job can heartbeat or finish it.';
    END IF;
    IF r.status <> 'running' OR r.worker IS DISTINCT FROM _run_for_worker.worker THEN
        RAISE EXCEPTION 'job run % is not held by worker "%"', id, worker
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = CASE WHEN r.status = 'running'
                                THEN 'Another worker holds it.'
                                ELSE format('Its status is %s.', r.status) END;
    END IF;
    RETURN r;
END
$$;

-- (jobs: end)



--
-- Registry: built_in, import_plugins
--

-- Import reads the source with the caller's rights (a C helper) and applies
-- plain values with the owner's.
CREATE FUNCTION tego._read_plugin_source(source regclass, by_id boolean)
RETURNS jsonb
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'read_plugin_source';

REVOKE ALL ON FUNCTION tego._read_plugin_source(regclass, boolean) FROM PUBLIC;

CREATE OR REPLACE FUNCTION tego.import_plugins(source regclass DEFAULT 'public."applicationPlugins"'::text::regclass,
                                               OUT added integer, OUT updated integer,
                                               OUT unchanged integer)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    missing text[];
    has_id boolean;
    r jsonb;
    n integer := 0;
    outcome text;
    refused text[] := '{}';
BEGIN
    IF source IS NULL THEN
        RAISE EXCEPTION 'source must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT array_agg(c ORDER BY o) INTO missing
      FROM unnest(tego._application_plugins_columns()) WITH ORDINALITY AS w(c, o)
     WHERE NOT EXISTS (SELECT 1 FROM pg_attribute a
                        WHERE a.attrelid = source AND a.attname = c
                          AND a.attnum > 0 AND NOT a.attisdropped);
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'table % is missing columns of applicationPlugins', source
            USING ERRCODE = 'undefined_column',
                  DETAIL = format('Missing: %s.', array_to_string(
                      ARRAY(SELECT quote_ident(m) FROM unnest(missing) AS m), ', '));
    END IF;
    has_id := EXISTS (SELECT 1 FROM pg_attribute a
                       WHERE a.attrelid = source AND a.attname = 'id'
                         AND a.attnum > 0 AND NOT a.attisdropped);

    added := 0; updated := 0; unchanged := 0;
    -- NB: read as the caller: the source's expressions are the caller's code
    FOR r IN SELECT e FROM jsonb_array_elements(
                 coalesce(tego._read_plugin_source(source, has_id), '[]')) AS e
    LOOP
        n := n + 1;
        BEGIN
            outcome := tego._apply_application_plugin(r, true);
            CASE outcome
                WHEN 'added' THEN added := added + 1;
                WHEN 'updated' THEN updated := updated + 1;
                ELSE unchanged := unchanged + 1;
            END CASE;
        EXCEPTION WHEN OTHERS THEN
            IF SQLSTATE IN ('57014', '40001', '40P01', '42501') THEN
                RAISE;
            END IF;
            refused := refused || format('row %s (%s): %s', n,
                                         coalesce(quote_literal(r ->> 'name'), 'no name'), SQLERRM);
        END;
    END LOOP;

    IF cardinality(refused) > 0 THEN
        RAISE EXCEPTION 'cannot import % of % rows from %', cardinality(refused), n, source
            USING ERRCODE = 'check_violation',
                  DETAIL = array_to_string(refused, E'\n'),
                  HINT = 'Nothing was imported.  Correct those rows and import again.';
    END IF;
END
$$;

-- (registry: end)



--
-- Leases, plugin operation guards and app status: per-role isolation,
-- quotas
--

-- Who may act on a lease, guard or app-status entry: its owner (the role
-- that created it) and the roles that are members of it; superusers.  The
-- caller is the session's current role (tego._invoker(): the outer user,
-- which a SECURITY DEFINER function does not change).  An owner that no
-- longer exists leaves its objects to superusers; a NULL owner (an object
-- made before 0.3.0) is anybody's until its next holder takes it.
CREATE FUNCTION tego._acts_for(owner name)
RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT owner IS NULL
        OR coalesce((SELECT r.rolsuper FROM pg_catalog.pg_roles r
                      WHERE r.rolname = tego._invoker()), false)
        OR coalesce((SELECT pg_catalog.pg_has_role(tego._invoker(), r.oid, 'MEMBER')
                       FROM pg_catalog.pg_roles r WHERE r.rolname = owner), false)
$$;

-- May the reader of a view see the holder (and token, session) of an object
-- owned by owner?  Members of the owner may, and, as for the queries of
-- pg_stat_activity, roles with the privileges of pg_read_all_stats
-- (superusers among them).  NB: CURRENT_USER, not tego._invoker(): this
-- runs as the reader of tego.leases and tego.plugin_operations, and is
-- executable by everyone for that reason.
CREATE FUNCTION tego._sees(owner name)
RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT owner IS NULL
        OR pg_catalog.pg_has_role(CURRENT_USER, 'pg_read_all_stats', 'USAGE')
        OR coalesce((SELECT pg_catalog.pg_has_role(CURRENT_USER, r.oid, 'MEMBER')
                       FROM pg_catalog.pg_roles r WHERE r.rolname = owner), false)
$$;

--
-- Leases
--

-- The owner: the role whose members may use the lease.
ALTER TABLE tego.lease_state ADD COLUMN owner name;

-- NB: a lease name is deleted when its lease is reclaimed (released, or
-- dead, when room is needed): the highest token of every reclaimed lease
-- is kept here, and a name made afterwards starts above it, so that a
-- name's token never goes backwards.  One row, made by the first
-- lease_acquire of a new name (so that pg_dump can carry it); its row
-- lock serializes the making of names and the reclaiming of leases.
CREATE TABLE tego.lease_floor (
    id    boolean PRIMARY KEY DEFAULT true CHECK (id),
    token bigint NOT NULL
);

COMMENT ON TABLE tego.lease_floor IS 'the highest token of the reclaimed leases: new lease names start above it';

REVOKE ALL ON tego.lease_floor FROM PUBLIC;

SELECT pg_catalog.pg_extension_config_dump('tego.lease_floor', '');

-- Raise 42501 unless the caller may act on lease l.
CREATE FUNCTION tego._lease_check_owner(l tego.lease_state)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT tego._acts_for(l.owner) THEN
        RAISE EXCEPTION 'permission denied for lease "%"', l.name
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'The lease belongs to another role.',
                  HINT = 'Use it as its owning role or a member of that role, or use another lease name.';
    END IF;
END
$$;

-- Raise TG002 unless l is held right now with token (and by holder, when
-- holder is given).  NB: the detail names neither the holder nor the token.
CREATE OR REPLACE FUNCTION tego._lease_check_held(l tego.lease_state, holder text, token bigint)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF tego._lease_live(l) AND l.token = token
       AND (holder IS NULL OR l.holder = holder) THEN
        RETURN;
    END IF;
    RAISE EXCEPTION 'lease "%" is not held with token %', l.name, token
        USING ERRCODE = 'TG002',
              DETAIL = CASE
                  WHEN tego._lease_live(l)
                  THEN 'It is held with another token, or by another holder.'
                  WHEN l.holder IS NULL
                  THEN 'It is free.'
                  WHEN tego._lease_end(l) = 'session ended'
                  THEN 'Its holder''s session has ended.'
                  ELSE 'It has expired.' END,
              HINT = 'Stop acting as its holder; acquire it again to get a new token.';
END
$$;

-- Delete up to n leases that are not live, oldest first (released ones
-- before expired ones): the leases of owner, or, when owner is NULL, the
-- leases of any role that are released or have not been renewed for a
-- day.  Returns the new floor (the caller holds the lease_floor row).
CREATE FUNCTION tego._lease_reclaim(owner name, n bigint)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    top bigint;
BEGIN
    WITH victims AS (
        SELECT s.name FROM tego.lease_state s
         WHERE NOT tego._lease_live(s)
           AND CASE WHEN _lease_reclaim.owner IS NOT NULL
                    THEN s.owner = _lease_reclaim.owner
                    ELSE s.holder IS NULL
                         OR s.renewed_at < clock_timestamp() - interval '1 day' END
         ORDER BY s.holder IS NOT NULL, s.renewed_at NULLS FIRST
         LIMIT n
           FOR UPDATE SKIP LOCKED),
    gone AS (
        DELETE FROM tego.lease_state s USING victims v WHERE s.name = v.name
        RETURNING s.token)
    SELECT max(token) INTO top FROM gone;
    UPDATE tego.lease_floor f SET token = greatest(f.token, top)
     WHERE top IS NOT NULL
    RETURNING f.token INTO top;
    RETURN (SELECT f.token FROM tego.lease_floor f);
END
$$;

-- Make the lease row of a new name for the caller (its token the floor:
-- the first holder gets the next one), reclaiming leases when the caller
-- has tego.max_leases_per_role names or the table tego.max_leases; return
-- it locked.  A name made meanwhile by another session is returned as it
-- is.
CREATE FUNCTION tego._lease_create(name text)
RETURNS tego.lease_state
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    me name := tego._invoker();
    l tego.lease_state;
    floor bigint;
    n bigint;
    max_leases integer := coalesce(nullif(current_setting('tego.max_leases', true), ''), '1000')::integer;
    per_role integer := coalesce(nullif(current_setting('tego.max_leases_per_role', true), ''), '100')::integer;
BEGIN
    -- NB: waits for any session making a name or reclaiming leases
    INSERT INTO tego.lease_floor AS f (id, token) VALUES (true, 0)
    ON CONFLICT (id) DO UPDATE SET token = f.token
    RETURNING f.token INTO floor;
    SELECT * INTO l FROM tego.lease_state s WHERE s.name = _lease_create.name FOR UPDATE;
    IF FOUND THEN
        RETURN l;
    END IF;

    SELECT count(*) INTO n FROM tego.lease_state s WHERE s.owner = me;
    IF n >= per_role THEN
        floor := tego._lease_reclaim(me, n - per_role + 1);
        SELECT count(*) INTO n FROM tego.lease_state s WHERE s.owner = me;
        IF n >= per_role THEN
            RAISE EXCEPTION 'too many leases for role "%"', me
                USING ERRCODE = 'program_limit_exceeded',
                      DETAIL = format('tego.max_leases_per_role is %s, and all of them are live.', per_role),
                      HINT = 'Release leases that are no longer needed, or reuse lease names.';
        END IF;
    END IF;
    SELECT count(*) INTO n FROM tego.lease_state;
    IF n >= max_leases THEN
        floor := tego._lease_reclaim(NULL, n - max_leases + 1);
        SELECT count(*) INTO n FROM tego.lease_state;
        IF n >= max_leases THEN
            RAISE EXCEPTION 'too many leases'
                USING ERRCODE = 'program_limit_exceeded',
                      DETAIL = format('tego.max_leases is %s.', max_leases),
                      HINT = 'Raise tego.max_leases, or reuse lease names.';
        END IF;
    END IF;
    INSERT INTO tego.lease_state (name, owner, token) VALUES (_lease_create.name, me, floor);
    SELECT * INTO l FROM tego.lease_state s WHERE s.name = _lease_create.name FOR UPDATE;
    RETURN l;
END
$$;

CREATE OR REPLACE FUNCTION tego.lease_acquire(name text, holder text,
                                              ttl interval DEFAULT '30 seconds',
                                              session_bound boolean DEFAULT false)
RETURNS tego.lease_grant
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    l tego.lease_state;
    now timestamptz := clock_timestamp();
    previous jsonb;
    me_pid integer;
BEGIN
    PERFORM tego._check_lease(name, holder, NULL, NULL, true, false, false);
    PERFORM tego._check_interval('ttl', ttl, interval '1 day');
    IF session_bound IS NULL THEN
        RAISE EXCEPTION 'session_bound must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;

    -- NB: the row lock serializes acquirers of one name; lease_assert()
    -- holds a share lock on it, so a takeover waits for the holder's
    -- asserting transaction to end.
    SELECT * INTO l FROM tego.lease_state s WHERE s.name = lease_acquire.name FOR UPDATE;
    IF NOT FOUND THEN
        l := tego._lease_create(name);
    END IF;
    PERFORM tego._lease_check_owner(l);

    IF tego._lease_live(l) THEN
        IF l.holder IS DISTINCT FROM lease_acquire.holder THEN
            RETURN ROW(false, l.holder, l.token, l.expires_at)::tego.lease_grant;
        END IF;
        -- held by the caller already: the same token, a later expiry
        UPDATE tego.lease_state s SET renewed_at = now, expires_at = now + ttl,
               owner = coalesce(s.owner, tego._invoker())
         WHERE s.name = l.name RETURNING * INTO l;
        RETURN ROW(true, l.holder, l.token, l.expires_at)::tego.lease_grant;
    END IF;

    IF l.holder IS NOT NULL THEN
        -- NB: events name no holder and no token: any role can LISTEN, and
        -- tego.leases shows them only to members of the lease's owner
        previous := jsonb_build_object('ended', tego._lease_end(l));
        PERFORM tego._emit('tego_leases', 'lease-expired', l.name,
                           jsonb_build_object('name', l.name, 'owner', l.owner,
                                              'expires_at', l.expires_at,
                                              'reason', tego._lease_end(l)));
    END IF;
    IF session_bound THEN
        -- NB: a session-level lock: it outlives this transaction and ends
        -- with the session, which ends the lease
        me_pid := pg_backend_pid();
        IF NOT tego._session_alive(tego._lease_lock_class(), l.name, me_pid) THEN
            PERFORM pg_advisory_lock_shared(tego._lease_lock_class(), hashtext(l.name));
        END IF;
    END IF;
    UPDATE tego.lease_state s
       SET holder = lease_acquire.holder, token = s.token + 1,
           session_pid = me_pid, owner = coalesce(s.owner, tego._invoker()),
           acquired_at = now, renewed_at = now, expires_at = now + ttl
     WHERE s.name = l.name
    RETURNING * INTO l;
    PERFORM tego._emit('tego_leases', 'leader-changed', l.name,
                       jsonb_build_object('name', l.name, 'owner', l.owner,
                                          'expires_at', l.expires_at,
                                          'session_bound', session_bound,
                                          'previous', previous));
    RETURN ROW(true, l.holder, l.token, l.expires_at)::tego.lease_grant;
END
$$;

CREATE OR REPLACE FUNCTION tego.lease_renew(name text, holder text, token bigint,
                                            ttl interval DEFAULT '30 seconds')
RETURNS timestamptz
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    l tego.lease_state;
    now timestamptz := clock_timestamp();
BEGIN
    PERFORM tego._check_lease(name, holder, token, NULL, true, true, false);
    PERFORM tego._check_interval('ttl', ttl, interval '1 day');
    l := tego._lease_row(name, true);
    PERFORM tego._lease_check_owner(l);
    PERFORM tego._lease_check_held(l, holder, token);
    UPDATE tego.lease_state s SET renewed_at = now, expires_at = now + ttl,
           owner = coalesce(s.owner, tego._invoker())
     WHERE s.name = l.name RETURNING * INTO l;
    RETURN l.expires_at;
END
$$;

CREATE OR REPLACE FUNCTION tego.lease_release(name text, holder text, token bigint)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    l tego.lease_state;
BEGIN
    PERFORM tego._check_lease(name, holder, token, NULL, true, true, false);
    l := tego._lease_row(name, true);
    PERFORM tego._lease_check_owner(l);
    PERFORM tego._lease_check_held(l, holder, token);
    UPDATE tego.lease_state s
       SET holder = NULL, session_pid = NULL, expires_at = NULL
     WHERE s.name = l.name;
    IF l.session_pid = pg_backend_pid() THEN
        PERFORM pg_advisory_unlock_shared(tego._lease_lock_class(), hashtext(l.name));
    END IF;
    PERFORM tego._emit('tego_leases', 'lease-released', l.name,
                       jsonb_build_object('name', l.name, 'owner', l.owner));
END
$$;

CREATE OR REPLACE FUNCTION tego.lease_assert(name text, token bigint)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    l tego.lease_state;
BEGIN
    PERFORM tego._check_lease(name, NULL, token, NULL, false, true, false);
    -- NB: the share lock holds off any takeover until this transaction ends
    l := tego._lease_row(name, false);
    PERFORM tego._lease_check_owner(l);
    PERFORM tego._lease_check_held(l, NULL, token);
END
$$;

-- Every reader sees every name, its owner and whether it is live; the
-- holder, token and session only readers who may see them (tego._sees).
CREATE OR REPLACE VIEW tego.leases AS
SELECT l.name,
       CASE WHEN v.sees THEN l.holder END AS holder,
       CASE WHEN v.sees THEN l.token END AS token,
       l.session_pid IS NOT NULL AS session_bound,
       CASE WHEN v.sees THEN l.session_pid END AS session_pid,
       l.acquired_at, l.renewed_at, l.expires_at,
       tego._lease_live(l) AS live, l.owner
  FROM tego.lease_state l
 CROSS JOIN LATERAL (SELECT tego._sees(l.owner) AS sees) v;

--
-- Plugin operation guards
--

ALTER TABLE tego.plugin_operation_state ADD COLUMN owner name;

CREATE OR REPLACE VIEW tego.plugin_operations AS
SELECT g.name, g.operation,
       CASE WHEN v.sees THEN g.holder END AS holder,
       CASE WHEN v.sees THEN g.session_pid END AS session_pid,
       g.started_at, g.expires_at, tego._guard_live(g) AS live, g.owner
  FROM tego.plugin_operation_state g
 CROSS JOIN LATERAL (SELECT tego._sees(g.owner) AS sees) v;

-- Raise 42501 unless the caller may act on the guard g.
CREATE FUNCTION tego._guard_check_owner(g tego.plugin_operation_state)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT tego._acts_for(g.owner) THEN
        RAISE EXCEPTION 'permission denied for the operation guard of plugin "%"', g.name
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'The guard belongs to another role.',
                  HINT = 'Run the plugin''s operations as its owning role or a member of that role.';
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION tego.plugin_begin(name text, operation text, holder text,
                                             timeout interval DEFAULT '10 minutes')
RETURNS tego.plugin_operations
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    g tego.plugin_operation_state;
    now timestamptz := clock_timestamp();
    previous jsonb;
    v tego.plugin_operations;
BEGIN
    IF name IS NULL THEN
        RAISE EXCEPTION 'plugin name must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF operation IS NULL THEN
        RAISE EXCEPTION 'operation must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF operation NOT IN ('install', 'upgrade', 'remove') THEN
        RAISE EXCEPTION 'operation must be install, upgrade or remove'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('The value given was "%s".', operation);
    END IF;
    PERFORM tego._check_holder(holder);
    PERFORM tego._check_interval('timeout', timeout, interval '1 day');
    PERFORM 1 FROM tego.plugins p WHERE p.name = plugin_begin.name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'plugin "%" does not exist', name USING ERRCODE = 'undefined_object';
    END IF;

    -- NB: a second caller waits here for the first one's transaction, then
    -- finds its row
    INSERT INTO tego.plugin_operation_state AS s
           (name, operation, holder, session_pid, started_at, expires_at, owner)
    VALUES (plugin_begin.name, operation, holder, pg_backend_pid(), now, now + timeout,
            tego._invoker())
    ON CONFLICT ON CONSTRAINT plugin_operation_state_pkey DO NOTHING
    RETURNING * INTO g;
    IF NOT FOUND THEN
        SELECT * INTO g FROM tego.plugin_operation_state s
         WHERE s.name = plugin_begin.name FOR UPDATE;
        PERFORM tego._guard_check_owner(g);
        IF tego._guard_live(g) AND g.holder <> plugin_begin.holder THEN
            RAISE EXCEPTION 'plugin "%" is busy: "%" is running its %', g.name, g.holder, g.operation
                USING ERRCODE = 'object_in_use',
                      DETAIL = format('The operation started at %s and times out at %s.',
                                      g.started_at, g.expires_at),
                      HINT = 'Wait for the holder''s tego.plugin_end(), or for its session to end or its timeout to pass.';
        END IF;
        IF tego._guard_live(g) AND g.operation = plugin_begin.operation
           AND g.session_pid = pg_backend_pid() THEN
            -- the holder asking again: a later timeout, nothing to announce
            UPDATE tego.plugin_operation_state s SET expires_at = now + timeout
             WHERE s.name = g.name;
            SELECT * INTO v FROM tego.plugin_operations o WHERE o.name = g.name;
            RETURN v;
        END IF;
        IF NOT tego._guard_live(g) THEN
            previous := jsonb_build_object('operation', g.operation,
                'ended', CASE WHEN g.expires_at <= clock_timestamp() THEN 'timed out'
                              ELSE 'session ended' END);
        END IF;
        UPDATE tego.plugin_operation_state s
           SET operation = plugin_begin.operation, holder = plugin_begin.holder,
               session_pid = pg_backend_pid(), started_at = now,
               expires_at = now + timeout, owner = coalesce(s.owner, tego._invoker())
         WHERE s.name = g.name
        RETURNING * INTO g;
    END IF;
    -- NB: a session-level lock (taken once per session and plugin): it ends
    -- with the session, which frees the guard
    IF NOT tego._session_alive(tego._guard_lock_class(), g.name, pg_backend_pid()) THEN
        PERFORM pg_advisory_lock_shared(tego._guard_lock_class(), hashtext(g.name));
    END IF;
    PERFORM tego._emit('tego_plugins', 'plugin-operation-started', g.name,
                       jsonb_build_object('name', g.name, 'operation', g.operation,
                                          'owner', g.owner, 'expires_at', g.expires_at,
                                          'previous', previous));
    SELECT * INTO v FROM tego.plugin_operations o WHERE o.name = g.name;
    RETURN v;
END
$$;

CREATE OR REPLACE FUNCTION tego.plugin_end(name text, holder text, succeeded boolean,
                                           error text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    g tego.plugin_operation_state;
BEGIN
    IF name IS NULL THEN
        RAISE EXCEPTION 'plugin name must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM tego._check_holder(holder);
    IF succeeded IS NULL THEN
        RAISE EXCEPTION 'succeeded must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF octet_length(error) > 8192 THEN
        RAISE EXCEPTION 'error must be at most 8192 bytes long'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('It is %s bytes long.', octet_length(error));
    END IF;
    SELECT * INTO g FROM tego.plugin_operation_state s
     WHERE s.name = plugin_end.name FOR UPDATE;
    IF FOUND THEN
        PERFORM tego._guard_check_owner(g);
    END IF;
    IF NOT FOUND OR g.holder <> plugin_end.holder THEN
        RAISE EXCEPTION 'plugin "%" has no operation held by "%"', name, holder
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = CASE WHEN g.name IS NULL THEN 'No operation is under way.'
                                ELSE format('"%s" holds its %s.', g.holder, g.operation) END;
    END IF;
    DELETE FROM tego.plugin_operation_state s WHERE s.name = g.name;
    IF g.session_pid = pg_backend_pid() THEN
        PERFORM pg_advisory_unlock_shared(tego._guard_lock_class(), hashtext(g.name));
    END IF;
    PERFORM tego._emit('tego_plugins', 'plugin-operation-ended', g.name,
                       jsonb_build_object('name', g.name, 'operation', g.operation,
                                          'owner', g.owner, 'succeeded', succeeded));
END
$$;

--
-- Application status: the C functions check the owner and the quotas;
-- tego._app_entries() adds the owner to what tego._apps() returns
--

-- NB: SECURITY INVOKER and executable by everyone, as the helpers of the
-- other views: the view tego.apps calls it as its reader, and it returns
-- rows only to a role that may read tego.apps.
CREATE FUNCTION tego._app_entries(OUT app text, OUT status text, OUT previous_status text,
                                  OUT command text, OUT maintaining_status text,
                                  OUT message text, OUT error text,
                                  OUT updated_at timestamptz, OUT pid integer,
                                  OUT version bigint, OUT owner name)
RETURNS SETOF record
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'app_entries';

CREATE OR REPLACE VIEW tego.apps AS
SELECT app, status, previous_status, command, maintaining_status, message,
       error, updated_at, pid, version, owner
  FROM tego._app_entries();

REVOKE ALL ON FUNCTION
    tego._acts_for(name),
    tego._lease_check_owner(tego.lease_state),
    tego._lease_reclaim(name, bigint),
    tego._lease_create(text),
    tego._guard_check_owner(tego.plugin_operation_state)
FROM PUBLIC;

-- (shared state: end)



--
-- Events: message size, payload visibility
--

-- The ceiling of the seqs that commits made with synchronous_commit = off
-- may have given out (they are visible before their WAL is flushed, so a
-- crash can lose them after a reader has seen them).  tego raises it,
-- durably, ahead of such numbering; after a restart, numbering continues
-- past it, so a seq is never given to two events.  Written by tego only.
CREATE SEQUENCE tego.event_seq_reserved MINVALUE 0 START WITH 0 NO CYCLE;
REVOKE ALL ON SEQUENCE tego.event_seq_reserved FROM PUBLIC;
COMMENT ON SEQUENCE tego.event_seq_reserved IS 'tego internal: no seq up to this value is given out again after a restart';

-- (events: end)



--
-- TachyBase semantics: installed means the app's install() has run; the
-- states TachyBase writes through the view and import_plugins
--

-- installed says whether the application's install() hook has run; it is
-- independent of enabled.  A plugin may be enabled with its install
-- pending (enabled, not installed: its derived state is still 'enabled'),
-- and the application marks it installed once the hook has run.
ALTER TABLE tego.plugins DROP CONSTRAINT plugins_enabled_needs_installed;

COMMENT ON COLUMN tego.plugins.installed IS 'the application''s install() hook of the plugin has run (tego.plugin_install / tego.plugin_uninstall); independent of enabled';

-- TachyBase's recovery write after an install() that failed:
-- {enabled: false, installed: false}.
CREATE FUNCTION tego.plugin_uninstall(VARIADIC names text[])
RETURNS SETOF tego.plugins
LANGUAGE c VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'plugin_uninstall';

COMMENT ON FUNCTION tego.plugin_uninstall(text[]) IS 'mark plugins not installed (their install() hook has not run, or must run again); enabled stays as it is';

REVOKE ALL ON FUNCTION tego.plugin_uninstall(text[]) FROM PUBLIC;

-- Bring a plugin to the state a TachyBase row describes, through the
-- lifecycle functions.  Returns 'added', 'updated' or 'unchanged'.  Every
-- combination of enabled and installed is a state TachyBase writes, so the
-- view (strict false) and import_plugins (strict true) apply the row as it
-- is: enabled through plugin_enable/plugin_disable, then installed through
-- plugin_install/plugin_uninstall.  The lifecycle's rules (dependencies,
-- built-in plugins, names, packages) still refuse what breaks them.
-- strict is kept for the callers; it no longer changes what is accepted.
CREATE OR REPLACE FUNCTION tego._apply_application_plugin(r jsonb, strict boolean)
RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p tego.plugins;
    want_installed boolean := coalesce((r ->> 'installed')::boolean, false);
    want_enabled boolean := coalesce((r ->> 'enabled')::boolean, false);
    want_built_in boolean := coalesce((r ->> 'builtIn')::boolean, false);
    want_sub_view boolean := coalesce((r ->> 'subView')::boolean, true);
    opts jsonb := coalesce(nullif(r -> 'options', 'null'::jsonb), '{}');
    changes jsonb := '{}';
    changed boolean := false;
BEGIN
    IF r ->> 'name' IS NULL THEN
        RAISE EXCEPTION 'plugin name must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;

    SELECT * INTO p FROM tego.plugins WHERE name = r ->> 'name' FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM tego.plugin_add(r ->> 'name', r ->> 'packageName', r ->> 'version',
                                opts, want_built_in, want_sub_view);
        IF want_enabled THEN
            PERFORM tego.plugin_enable(r ->> 'name');
        END IF;
        IF want_installed THEN
            PERFORM tego.plugin_install(r ->> 'name');
        END IF;
        RETURN 'added';
    END IF;

    IF p.package_name IS DISTINCT FROM r ->> 'packageName' THEN
        changes := changes || jsonb_build_object('package_name', r -> 'packageName');
    END IF;
    IF p.version IS DISTINCT FROM r ->> 'version' THEN
        changes := changes || jsonb_build_object('version', r -> 'version');
    END IF;
    IF p.options IS DISTINCT FROM opts THEN
        changes := changes || jsonb_build_object('options', opts);
    END IF;
    IF p.built_in IS DISTINCT FROM want_built_in THEN
        changes := changes || jsonb_build_object('built_in', want_built_in);
    END IF;
    IF p.sub_view IS DISTINCT FROM want_sub_view THEN
        changes := changes || jsonb_build_object('sub_view', want_sub_view);
    END IF;
    IF changes <> '{}' THEN
        PERFORM tego.plugin_update(p.name, changes);
        changed := true;
    END IF;

    IF want_enabled AND NOT p.enabled THEN
        PERFORM tego.plugin_enable(p.name);
        changed := true;
    ELSIF NOT want_enabled AND p.enabled THEN
        PERFORM tego.plugin_disable(p.name);
        changed := true;
    END IF;
    IF want_installed AND NOT p.installed THEN
        PERFORM tego.plugin_install(p.name);
        changed := true;
    ELSIF NOT want_installed AND p.installed THEN
        PERFORM tego.plugin_uninstall(p.name);
        changed := true;
    END IF;
    RETURN CASE WHEN changed THEN 'updated' ELSE 'unchanged' END;
END
$$;

-- (tachybase: end)
