/* tego 0.2.0 -> 0.3.0: security (jobs run as their owner, per-role
 * isolation, bounds and quotas) */
\echo Use "ALTER EXTENSION tego UPDATE TO '0.3.0'" to load this file. \quit

--
-- Jobs: who is calling, bounds, per-role isolation of runs
--

-- Internal: raise an error unless v is a positive interval of at most max
-- with no month or year part (a month has no fixed length, and
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
    IF v > max THEN
        RAISE EXCEPTION '% must be at most %', what, max
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

-- (shared state: end)



--
-- Events: message size, payload visibility
--

-- (events: end)
