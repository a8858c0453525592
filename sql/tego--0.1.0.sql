-- tego 0.1.0: plugin registry and ordered state events.

\echo Use "CREATE EXTENSION tego" to load this file. \quit

-- The schema belongs to the extension, so DROP EXTENSION removes it too.
CREATE SCHEMA tego;

--
-- Plugin registry: the durable source of truth for TachyBase's
-- applicationPlugins collection.  Rows change only through the lifecycle
-- functions below, which validate every transition.
--
CREATE TABLE tego.plugins (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name         text NOT NULL UNIQUE,
    package_name text UNIQUE,
    version      text,
    enabled      boolean NOT NULL DEFAULT false,
    installed    boolean NOT NULL DEFAULT false,
    built_in     boolean NOT NULL DEFAULT false,
    sub_view     boolean NOT NULL DEFAULT true,
    options      jsonb NOT NULL DEFAULT '{}'
                 CHECK (pg_catalog.jsonb_typeof(options) = 'object'),
    depends_on   text[] NOT NULL DEFAULT '{}',
    state        text NOT NULL GENERATED ALWAYS AS (
                     CASE WHEN enabled THEN 'enabled'
                          WHEN installed THEN 'installed'
                          ELSE 'added' END) STORED,
    revision     bigint,
    created_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT plugins_enabled_needs_installed CHECK (installed OR NOT enabled)
);

COMMENT ON TABLE tego.plugins IS 'plugin registry (TachyBase applicationPlugins); change it with the tego.plugin_* functions';
COMMENT ON COLUMN tego.plugins.revision IS 'seq of the event that last changed the row; NULL while the change is not committed';

--
-- Event log: one row per committed state change, numbered gaplessly in
-- commit order.
--
CREATE TABLE tego.events (
    seq          bigint PRIMARY KEY,
    topic        text NOT NULL,
    event        text NOT NULL,
    key          text,
    payload      jsonb NOT NULL,
    committed_at timestamptz NOT NULL
);

CREATE INDEX events_topic_seq_idx ON tego.events (topic, seq);

COMMENT ON TABLE tego.events IS 'durable, gapless, commit-ordered log of state events';

SELECT pg_catalog.pg_extension_config_dump('tego.plugins', '');
SELECT pg_catalog.pg_extension_config_dump('tego.plugins_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('tego.events', '');

REVOKE ALL ON tego.plugins, tego.events FROM PUBLIC;

--
-- Lifecycle functions (C).  Each returns the rows it changed.
--
CREATE FUNCTION tego.plugin_add(name text,
                                package_name text DEFAULT NULL,
                                version text DEFAULT NULL,
                                options jsonb DEFAULT '{}',
                                built_in boolean DEFAULT false,
                                sub_view boolean DEFAULT true,
                                depends_on text[] DEFAULT '{}')
RETURNS SETOF tego.plugins
LANGUAGE c VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'plugin_add';

CREATE FUNCTION tego.plugin_install(VARIADIC names text[])
RETURNS SETOF tego.plugins
LANGUAGE c VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'plugin_install';

CREATE FUNCTION tego.plugin_enable(VARIADIC names text[])
RETURNS SETOF tego.plugins
LANGUAGE c VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'plugin_enable';

CREATE FUNCTION tego.plugin_disable(VARIADIC names text[])
RETURNS SETOF tego.plugins
LANGUAGE c VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'plugin_disable';

CREATE FUNCTION tego.plugin_remove(names text[], force boolean DEFAULT false)
RETURNS SETOF tego.plugins
LANGUAGE c VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'plugin_remove';

CREATE FUNCTION tego.plugin_upgrade(name text, version text)
RETURNS SETOF tego.plugins
LANGUAGE c VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'plugin_upgrade';

CREATE FUNCTION tego.plugin_update(name text, changes jsonb,
                                   expected_revision bigint DEFAULT NULL)
RETURNS SETOF tego.plugins
LANGUAGE c VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'plugin_update';

CREATE FUNCTION tego.plugin_get(name text)
RETURNS tego.plugins
LANGUAGE c STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'plugin_get';

CREATE FUNCTION tego.plugin_list(enabled_only boolean DEFAULT false)
RETURNS SETOF tego.plugins
LANGUAGE c STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'plugin_list';

--
-- Events.
--
CREATE FUNCTION tego.publish(topic text, message jsonb)
RETURNS void
LANGUAGE c VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'publish';

CREATE FUNCTION tego.event_seq()
RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT coalesce(max(seq), 0) FROM tego.events $$;

CREATE FUNCTION tego.events_since(after_seq bigint,
                                  topics text[] DEFAULT NULL,
                                  max_events integer DEFAULT 1000)
RETURNS SETOF tego.events
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    oldest bigint;
BEGIN
    IF after_seq IS NULL THEN
        RAISE EXCEPTION 'after_seq must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF after_seq < 0 THEN
        RAISE EXCEPTION 'after_seq must not be negative'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF max_events IS NULL OR max_events < 1 OR max_events > 100000 THEN
        RAISE EXCEPTION 'max_events must be between 1 and 100000'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF topics IS NOT NULL AND array_position(topics, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'topics must not contain null elements'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;

    -- NB: this function is STABLE, so both queries read one snapshot: a
    -- compaction that commits in between cannot open a silent gap.
    SELECT min(e.seq) INTO oldest FROM tego.events e;
    IF oldest IS NOT NULL AND oldest > after_seq + 1 THEN
        RAISE EXCEPTION 'events after position % have been compacted', after_seq
            USING ERRCODE = 'TG001',
                  DETAIL = format('The oldest retained event is %s.', oldest),
                  HINT = 'Read the current state again, then resume from tego.event_seq().';
    END IF;

    RETURN QUERY
        SELECT e.*
          FROM tego.events e
         WHERE e.seq > after_seq
           AND (topics IS NULL OR e.topic = ANY (topics))
         ORDER BY e.seq
         LIMIT max_events;
END
$$;

CREATE FUNCTION tego.compact_events()
RETURNS bigint
LANGUAGE c VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'compact_events';

COMMENT ON FUNCTION tego.compact_events() IS 'delete events older than tego.event_retention, always keeping the newest; returns the number deleted';

--
-- Privileges: nothing for PUBLIC.  The README shows the GRANTs for an
-- application role and a read-only role.
--
REVOKE ALL ON FUNCTION
    tego.plugin_add(text, text, text, jsonb, boolean, boolean, text[]),
    tego.plugin_install(text[]),
    tego.plugin_enable(text[]),
    tego.plugin_disable(text[]),
    tego.plugin_remove(text[], boolean),
    tego.plugin_upgrade(text, text),
    tego.plugin_update(text, jsonb, bigint),
    tego.plugin_get(text),
    tego.plugin_list(boolean),
    tego.publish(text, jsonb),
    tego.event_seq(),
    tego.events_since(bigint, text[], integer),
    tego.compact_events()
FROM PUBLIC;

--
-- Scheduler: jobs and their runs.  The background worker "tego scheduler"
-- (shared_preload_libraries = 'tego', in the database tego.database) fires
-- each job once per scheduled time.
--
CREATE TABLE tego.jobs (
    job_id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name              text NOT NULL UNIQUE,
    kind              text NOT NULL CHECK (kind IN ('sql', 'app')),
    schedule          text NOT NULL,
    timezone          text NOT NULL DEFAULT 'UTC',
    command           text,
    payload           jsonb,
    database          name,
    username          name NOT NULL,
    active            boolean NOT NULL DEFAULT true,
    max_runtime       interval,
    overlap           text NOT NULL DEFAULT 'skip' CHECK (overlap IN ('skip', 'queue')),
    misfire           text NOT NULL DEFAULT 'skip' CHECK (misfire IN ('skip', 'run_once')),
    max_attempts      integer NOT NULL DEFAULT 3 CHECK (max_attempts BETWEEN 1 AND 100),
    claim_timeout     interval NOT NULL DEFAULT '1 minute',
    heartbeat_timeout interval NOT NULL DEFAULT '1 minute',
    created_at        timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at        timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT jobs_sql_has_command CHECK ((kind = 'sql') = (command IS NOT NULL)),
    CONSTRAINT jobs_sql_has_database CHECK ((kind = 'sql') = (database IS NOT NULL)),
    CONSTRAINT jobs_app_has_payload CHECK ((kind = 'app') = (payload IS NOT NULL))
);

COMMENT ON TABLE tego.jobs IS 'scheduled jobs: SQL jobs run by tego, app jobs claimed by application processes';

CREATE TABLE tego.job_runs (
    run_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id        bigint NOT NULL REFERENCES tego.jobs ON DELETE CASCADE,
    job_name      text NOT NULL,
    username      name NOT NULL,
    scheduled_for timestamptz NOT NULL,
    manual        boolean NOT NULL DEFAULT false,
    status        text NOT NULL CHECK (status IN ('queued', 'pending', 'running',
                      'succeeded', 'failed', 'interrupted', 'timed_out', 'skipped')),
    attempt       integer NOT NULL DEFAULT 1,
    worker        text,
    pid           integer,
    created_at    timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    due_at        timestamptz,
    started_at    timestamptz,
    heartbeat_at  timestamptz,
    finished_at   timestamptz,
    message       text,
    CONSTRAINT job_runs_once UNIQUE (job_id, scheduled_for)
);

-- NB: one small partial index per question the scheduler and job_claim()
-- ask, so that none of them walks over runs in another state.
CREATE INDEX job_runs_open_idx ON tego.job_runs (job_id, status)
    WHERE status IN ('queued', 'pending', 'running');
CREATE INDEX job_runs_pending_idx ON tego.job_runs (scheduled_for, run_id)
    WHERE status = 'pending';
CREATE INDEX job_runs_queued_idx ON tego.job_runs (scheduled_for, run_id)
    WHERE status = 'queued';
CREATE INDEX job_runs_finished_idx ON tego.job_runs (finished_at);

COMMENT ON TABLE tego.job_runs IS 'one row per (job, scheduled time): the unique key is what prevents a double fire';

SELECT pg_catalog.pg_extension_config_dump('tego.jobs', '');
SELECT pg_catalog.pg_extension_config_dump('tego.jobs_job_id_seq', '');

REVOKE ALL ON tego.jobs, tego.job_runs FROM PUBLIC;

-- A role granted SELECT sees only the jobs (and runs) of roles it belongs to.
ALTER TABLE tego.jobs ENABLE ROW LEVEL SECURITY;
ALTER TABLE tego.job_runs ENABLE ROW LEVEL SECURITY;
CREATE POLICY jobs_of_member ON tego.jobs FOR SELECT
    USING (pg_catalog.pg_has_role(CURRENT_USER, username, 'MEMBER'));
CREATE POLICY job_runs_of_member ON tego.job_runs FOR SELECT
    USING (pg_catalog.pg_has_role(CURRENT_USER, username, 'MEMBER'));

-- Internal C helpers.
CREATE FUNCTION tego._check_schedule(schedule text, timezone text)
RETURNS void LANGUAGE c STABLE AS 'MODULE_PATHNAME', 'check_schedule';

CREATE FUNCTION tego._invoker()
RETURNS name LANGUAGE c STABLE AS 'MODULE_PATHNAME', 'invoker';

CREATE FUNCTION tego._emit(topic text, event text, key text, payload jsonb)
RETURNS void LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'emit';

CREATE FUNCTION tego._wake_scheduler()
RETURNS void LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'wake_scheduler';

CREATE FUNCTION tego.cron_next(schedule text,
                               after timestamptz DEFAULT pg_catalog.now(),
                               timezone text DEFAULT 'UTC',
                               count integer DEFAULT 1)
RETURNS SETOF timestamptz
LANGUAGE c STABLE
AS 'MODULE_PATHNAME', 'cron_next';

COMMENT ON FUNCTION tego.cron_next(text, timestamptz, text, integer) IS 'the next fire times of a schedule after a given time, in a time zone';

-- Internal: check the arguments shared by schedule(), schedule_app() and
-- alter_job(), and that the caller may act as the job's role.
CREATE FUNCTION tego._check_job(name text, schedule text, timezone text,
                                username name, overlap text, misfire text)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
BEGIN
    IF name IS NULL THEN
        RAISE EXCEPTION 'job name must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF name = '' THEN
        RAISE EXCEPTION 'job name must not be empty' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF octet_length(name) > 200 THEN
        RAISE EXCEPTION 'job name is too long'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('Job names are at most 200 bytes; this one has %s.', octet_length(name));
    END IF;
    IF name ~ '[[:cntrl:]]' THEN
        RAISE EXCEPTION 'job name must not contain control characters'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF schedule IS NULL THEN
        RAISE EXCEPTION 'schedule must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF timezone IS NULL THEN
        RAISE EXCEPTION 'timezone must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM tego._check_schedule(schedule, timezone);
    IF overlap IS NULL OR overlap NOT IN ('skip', 'queue') THEN
        RAISE EXCEPTION 'invalid overlap policy %', coalesce(quote_literal(overlap), 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use ''skip'' or ''queue''.';
    END IF;
    IF misfire IS NULL OR misfire NOT IN ('skip', 'run_once') THEN
        RAISE EXCEPTION 'invalid misfire policy %', coalesce(quote_literal(misfire), 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use ''skip'' or ''run_once''.';
    END IF;
    IF username IS NULL THEN
        RAISE EXCEPTION 'username must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT rolname, rolsuper INTO r FROM pg_roles WHERE rolname = username;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'role "%" does not exist', username USING ERRCODE = 'undefined_object';
    END IF;
    IF NOT pg_has_role(tego._invoker(), username, 'MEMBER') THEN
        RAISE EXCEPTION 'permission denied to schedule jobs as role "%"', username
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = format('Only members of role "%s" can schedule or change its jobs.', username);
    END IF;
    IF r.rolsuper AND NOT coalesce(current_setting('tego.allow_superuser_jobs', true), 'off')::boolean THEN
        RAISE EXCEPTION 'cannot schedule jobs as superuser "%"', username
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'Run the job as a role without superuser, or set tego.allow_superuser_jobs to on.';
    END IF;
END
$$;

-- Internal: check what an SQL job needs (for schedule() and alter_job()).
CREATE FUNCTION tego._check_sql_job(command text, database name,
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
    IF max_runtime IS NOT NULL AND max_runtime <= interval '0' THEN
        RAISE EXCEPTION 'max_runtime must be positive' USING ERRCODE = 'invalid_parameter_value';
    END IF;
END
$$;

-- Internal: check what an app job needs (for schedule_app() and alter_job()).
CREATE FUNCTION tego._check_app_job(max_attempts integer,
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
    IF claim_timeout IS NULL OR claim_timeout <= interval '0' THEN
        RAISE EXCEPTION 'claim_timeout must be positive' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF heartbeat_timeout IS NULL OR heartbeat_timeout <= interval '0' THEN
        RAISE EXCEPTION 'heartbeat_timeout must be positive' USING ERRCODE = 'invalid_parameter_value';
    END IF;
END
$$;

-- Internal: the job row as an event payload.
CREATE FUNCTION tego._job_changed(j tego.jobs, event text)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM tego._emit('tego_jobs', event, j.name,
                       to_jsonb(j) - 'command' - 'payload'
                       || jsonb_build_object('job_id', j.job_id));
    PERFORM tego._wake_scheduler();
END
$$;

-- Internal: look a job up for a change by the caller, locking it.
CREATE FUNCTION tego._job_for_change(job_name text)
RETURNS tego.jobs
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    j tego.jobs;
BEGIN
    IF job_name IS NULL THEN
        RAISE EXCEPTION 'job name must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT * INTO j FROM tego.jobs WHERE name = job_name FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'job "%" does not exist', job_name USING ERRCODE = 'undefined_object';
    END IF;
    IF NOT pg_has_role(tego._invoker(), j.username, 'MEMBER') THEN
        RAISE EXCEPTION 'permission denied for job "%"', job_name
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = format('Only members of role "%s", its owner, can change it.', j.username);
    END IF;
    RETURN j;
END
$$;

CREATE FUNCTION tego.schedule(name text, schedule text, command text,
                              database name DEFAULT pg_catalog.current_database(),
                              username name DEFAULT CURRENT_USER,
                              timezone text DEFAULT 'UTC',
                              max_runtime interval DEFAULT NULL,
                              overlap text DEFAULT 'skip',
                              misfire text DEFAULT 'skip',
                              active boolean DEFAULT true)
RETURNS tego.jobs
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    j tego.jobs;
BEGIN
    PERFORM tego._check_job(name, schedule, timezone, username, overlap, misfire);
    PERFORM tego._check_sql_job(command, database, max_runtime);
    IF active IS NULL THEN
        RAISE EXCEPTION 'active must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- NB: the unique index finds a duplicate; a lookup of our own would be
    -- planned once, on a small table, and stay a sequential scan
    INSERT INTO tego.jobs (name, kind, schedule, timezone, command, database,
                           username, active, max_runtime, overlap, misfire)
    VALUES (name, 'sql', schedule, timezone, command, database,
            username, active, max_runtime, overlap, misfire)
    ON CONFLICT ON CONSTRAINT jobs_name_key DO NOTHING
    RETURNING * INTO j;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'job "%" already exists', name USING ERRCODE = 'unique_violation';
    END IF;
    PERFORM tego._job_changed(j, 'job-scheduled');
    RETURN j;
END
$$;

CREATE FUNCTION tego.schedule_app(name text, schedule text, payload jsonb,
                                  timezone text DEFAULT 'UTC',
                                  username name DEFAULT CURRENT_USER,
                                  overlap text DEFAULT 'skip',
                                  misfire text DEFAULT 'skip',
                                  max_attempts integer DEFAULT 3,
                                  claim_timeout interval DEFAULT '1 minute',
                                  heartbeat_timeout interval DEFAULT '1 minute',
                                  active boolean DEFAULT true)
RETURNS tego.jobs
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    j tego.jobs;
BEGIN
    PERFORM tego._check_job(name, schedule, timezone, username, overlap, misfire);
    IF payload IS NULL THEN
        RAISE EXCEPTION 'payload must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM tego._check_app_job(max_attempts, claim_timeout, heartbeat_timeout);
    IF active IS NULL THEN
        RAISE EXCEPTION 'active must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    INSERT INTO tego.jobs (name, kind, schedule, timezone, payload, username,
                           active, overlap, misfire, max_attempts,
                           claim_timeout, heartbeat_timeout)
    VALUES (name, 'app', schedule, timezone, payload, username,
            active, overlap, misfire, max_attempts,
            claim_timeout, heartbeat_timeout)
    ON CONFLICT ON CONSTRAINT jobs_name_key DO NOTHING
    RETURNING * INTO j;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'job "%" already exists', name USING ERRCODE = 'unique_violation';
    END IF;
    PERFORM tego._job_changed(j, 'job-scheduled');
    RETURN j;
END
$$;

CREATE FUNCTION tego.unschedule(name text)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    j tego.jobs;
BEGIN
    j := tego._job_for_change(name);
    DELETE FROM tego.jobs WHERE job_id = j.job_id;
    PERFORM tego._job_changed(j, 'job-unscheduled');
    RETURN true;
END
$$;

CREATE FUNCTION tego.alter_job(name text,
                               schedule text DEFAULT NULL,
                               command text DEFAULT NULL,
                               payload jsonb DEFAULT NULL,
                               database name DEFAULT NULL,
                               username name DEFAULT NULL,
                               timezone text DEFAULT NULL,
                               max_runtime interval DEFAULT NULL,
                               overlap text DEFAULT NULL,
                               misfire text DEFAULT NULL,
                               max_attempts integer DEFAULT NULL,
                               claim_timeout interval DEFAULT NULL,
                               heartbeat_timeout interval DEFAULT NULL,
                               active boolean DEFAULT NULL)
RETURNS tego.jobs
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    j tego.jobs;
    n tego.jobs;
BEGIN
    j := tego._job_for_change(name);
    n := j;
    n.schedule := coalesce(schedule, j.schedule);
    n.timezone := coalesce(timezone, j.timezone);
    n.username := coalesce(username, j.username);
    n.overlap := coalesce(overlap, j.overlap);
    n.misfire := coalesce(misfire, j.misfire);
    n.active := coalesce(active, j.active);
    PERFORM tego._check_job(n.name, n.schedule, n.timezone, n.username, n.overlap, n.misfire);
    IF j.kind = 'sql' THEN
        IF payload IS NOT NULL OR max_attempts IS NOT NULL OR claim_timeout IS NOT NULL
           OR heartbeat_timeout IS NOT NULL THEN
            RAISE EXCEPTION 'job "%" is an SQL job', j.name
                USING ERRCODE = 'invalid_parameter_value',
                      DETAIL = 'payload, max_attempts, claim_timeout and heartbeat_timeout apply to app jobs.';
        END IF;
        n.command := coalesce(command, j.command);
        n.database := coalesce(database, j.database);
        n.max_runtime := coalesce(max_runtime, j.max_runtime);
        PERFORM tego._check_sql_job(n.command, n.database, n.max_runtime);
    ELSE
        IF command IS NOT NULL OR database IS NOT NULL OR max_runtime IS NOT NULL THEN
            RAISE EXCEPTION 'job "%" is an app job', j.name
                USING ERRCODE = 'invalid_parameter_value',
                      DETAIL = 'command, database and max_runtime apply to SQL jobs.';
        END IF;
        n.payload := coalesce(payload, j.payload);
        n.max_attempts := coalesce(max_attempts, j.max_attempts);
        n.claim_timeout := coalesce(claim_timeout, j.claim_timeout);
        n.heartbeat_timeout := coalesce(heartbeat_timeout, j.heartbeat_timeout);
        PERFORM tego._check_app_job(n.max_attempts, n.claim_timeout, n.heartbeat_timeout);
    END IF;
    IF n IS NOT DISTINCT FROM j THEN
        RETURN j;
    END IF;
    UPDATE tego.jobs x
       SET schedule = n.schedule, timezone = n.timezone, username = n.username,
           overlap = n.overlap, misfire = n.misfire, active = n.active,
           command = n.command, database = n.database, max_runtime = n.max_runtime,
           payload = n.payload, max_attempts = n.max_attempts,
           claim_timeout = n.claim_timeout, heartbeat_timeout = n.heartbeat_timeout,
           updated_at = now()
     WHERE x.job_id = j.job_id
    RETURNING * INTO n;
    PERFORM tego._job_changed(n, 'job-altered');
    RETURN n;
END
$$;

CREATE FUNCTION tego.run_now(name text)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    j tego.jobs;
    id bigint;
BEGIN
    j := tego._job_for_change(name);
    INSERT INTO tego.job_runs (job_id, job_name, username, scheduled_for, manual, status)
    VALUES (j.job_id, j.name, j.username, clock_timestamp(), true, 'queued')
    RETURNING run_id INTO id;
    PERFORM tego._wake_scheduler();
    RETURN id;
END
$$;

-- App jobs: claim, heartbeat, finish.
CREATE FUNCTION tego.job_claim(worker text, names text[] DEFAULT NULL,
                               max_runs integer DEFAULT 1)
RETURNS SETOF tego.job_runs
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    me name := tego._invoker();
BEGIN
    IF worker IS NULL THEN
        RAISE EXCEPTION 'worker must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF worker = '' OR octet_length(worker) > 200 THEN
        RAISE EXCEPTION 'worker must be 1 to 200 bytes long' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF max_runs IS NULL THEN
        RAISE EXCEPTION 'max_runs must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF max_runs < 1 OR max_runs > 1000 THEN
        RAISE EXCEPTION 'max_runs must be between 1 and 1000'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('The value given was %s.', max_runs);
    END IF;
    -- NB: SKIP LOCKED hands each pending run to exactly one caller; a run
    -- another session is claiming right now is skipped, not waited for.
    RETURN QUERY
    WITH claimed AS (
        UPDATE tego.job_runs r
           SET status = 'running', worker = job_claim.worker,
               started_at = clock_timestamp(), heartbeat_at = clock_timestamp()
         WHERE r.run_id = ANY (ARRAY(
                SELECT c.run_id FROM tego.job_runs c
                 WHERE c.status = 'pending'
                   AND (names IS NULL OR c.job_name = ANY (names))
                   AND pg_has_role(me, c.username, 'MEMBER')
                 ORDER BY c.scheduled_for, c.run_id
                 LIMIT max_runs
                   FOR UPDATE SKIP LOCKED))
        RETURNING r.*)
    SELECT * FROM claimed ORDER BY claimed.scheduled_for, claimed.run_id;
END
$$;

CREATE FUNCTION tego._run_for_worker(id bigint, worker text)
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
    IF r.status <> 'running' OR r.worker IS DISTINCT FROM _run_for_worker.worker THEN
        RAISE EXCEPTION 'job run % is not held by worker "%"', id, worker
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = CASE WHEN r.status = 'running'
                                THEN format('Worker "%s" holds it.', r.worker)
                                ELSE format('Its status is %s.', r.status) END;
    END IF;
    RETURN r;
END
$$;

CREATE FUNCTION tego.job_heartbeat(run_id bigint, worker text)
RETURNS timestamptz
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r tego.job_runs;
BEGIN
    r := tego._run_for_worker(run_id, worker);
    UPDATE tego.job_runs x SET heartbeat_at = clock_timestamp()
     WHERE x.run_id = r.run_id
    RETURNING heartbeat_at INTO r.heartbeat_at;
    RETURN r.heartbeat_at;
END
$$;

CREATE FUNCTION tego.job_finish(run_id bigint, worker text, succeeded boolean,
                                message text DEFAULT NULL)
RETURNS tego.job_runs
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r tego.job_runs;
BEGIN
    IF succeeded IS NULL THEN
        RAISE EXCEPTION 'succeeded must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    r := tego._run_for_worker(run_id, worker);
    UPDATE tego.job_runs x
       SET status = CASE WHEN succeeded THEN 'succeeded' ELSE 'failed' END,
           finished_at = clock_timestamp(), message = job_finish.message
     WHERE x.run_id = r.run_id
    RETURNING * INTO r;
    -- a queued run of the same job may start now
    IF EXISTS (SELECT 1 FROM tego.job_runs q WHERE q.job_id = r.job_id AND q.status = 'queued') THEN
        PERFORM tego._wake_scheduler();
    END IF;
    RETURN r;
END
$$;

REVOKE ALL ON FUNCTION
    tego._check_schedule(text, text), tego._invoker(),
    tego._emit(text, text, text, jsonb), tego._wake_scheduler(),
    tego._check_job(text, text, text, name, text, text),
    tego._check_sql_job(text, name, interval),
    tego._check_app_job(integer, interval, interval),
    tego._job_changed(tego.jobs, text), tego._job_for_change(text),
    tego._run_for_worker(bigint, text),
    tego.schedule(text, text, text, name, name, text, interval, text, text, boolean),
    tego.schedule_app(text, text, jsonb, text, name, text, text, integer, interval, interval, boolean),
    tego.unschedule(text),
    tego.alter_job(text, text, text, jsonb, name, name, text, interval, text, text, integer, interval, interval, boolean),
    tego.run_now(text),
    tego.job_claim(text, text[], integer), tego.job_heartbeat(bigint, text),
    tego.job_finish(bigint, text, boolean, text)
FROM PUBLIC;

-- ---------------------------------------------------------------------------
-- Leases: one holder at a time per name, with a fencing token
-- ---------------------------------------------------------------------------

-- NB: leases are rows, not shared memory: a token must keep growing across
-- restarts and failover, so it is written to the WAL like any row.  A
-- row stays after release (holder NULL) to keep its name's last token.
CREATE TABLE tego.lease_state (
    name          text PRIMARY KEY,
    holder        text,
    token         bigint NOT NULL DEFAULT 0,
    session_pid   integer,
    acquired_at   timestamptz,
    renewed_at    timestamptz,
    expires_at    timestamptz,
    CONSTRAINT lease_state_held CHECK ((holder IS NULL) = (expires_at IS NULL))
);

COMMENT ON TABLE tego.lease_state IS 'leases (see the view tego.leases); written by the lease functions only';

REVOKE ALL ON tego.lease_state FROM PUBLIC;

-- tokens must survive a dump and restore too
SELECT pg_catalog.pg_extension_config_dump('tego.lease_state', '');

-- What lease_acquire() returns.
CREATE TYPE tego.lease_grant AS (
    acquired   boolean,
    holder     text,
    token      bigint,
    expires_at timestamptz
);

-- The advisory lock a session holds while it holds a session-bound lease:
-- (classid, objid) = (this constant, hashtext(name)).  It ends with the
-- session, and pg_locks shows it to everyone.  NB: taken in share mode, so
-- that it never blocks anybody: a session whose lease was taken over, or
-- whose acquiring transaction rolled back, may still hold it.
CREATE FUNCTION tego._lease_lock_class()
RETURNS integer
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT 1952802671 $$;    -- 'tego' in ASCII

-- The advisory lock a session holds while it holds a plugin operation
-- guard: (this constant, hashtext(plugin name)).
CREATE FUNCTION tego._guard_lock_class()
RETURNS integer
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT 1952804720 $$;    -- 'tegp' in ASCII

-- Does the session pid still hold the advisory lock (lock_class, key)?
-- (true when pid is NULL: a lease that is not session-bound)
CREATE FUNCTION tego._session_alive(lock_class integer, key text, pid integer)
RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pid IS NULL OR EXISTS (
        SELECT 1 FROM pg_catalog.pg_locks k
         WHERE k.locktype = 'advisory' AND k.pid = _session_alive.pid
           AND k.classid::bigint = lock_class::bigint & 4294967295
           AND k.objid::bigint = pg_catalog.hashtext(key)::bigint & 4294967295
           AND k.objsubid = 2 AND k.granted)
$$;

-- Is this lease row held right now?
CREATE FUNCTION tego._lease_live(l tego.lease_state)
RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT l.holder IS NOT NULL AND l.expires_at > clock_timestamp()
       AND tego._session_alive(tego._lease_lock_class(), l.name, l.session_pid)
$$;

-- Why a lease row that names a holder is not held any more.
CREATE FUNCTION tego._lease_end(l tego.lease_state)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN l.holder IS NULL THEN NULL
                WHEN NOT tego._session_alive(tego._lease_lock_class(), l.name, l.session_pid)
                THEN 'session ended'
                ELSE 'expired' END
$$;

CREATE VIEW tego.leases AS
SELECT l.name, l.holder, l.token, l.session_pid IS NOT NULL AS session_bound,
       l.session_pid, l.acquired_at, l.renewed_at, l.expires_at,
       tego._lease_live(l) AS live
  FROM tego.lease_state l;

COMMENT ON VIEW tego.leases IS 'leases: who holds each name, with which token, until when';

REVOKE ALL ON tego.leases FROM PUBLIC;

-- A lease or guard holder: 1 to 200 bytes.
CREATE FUNCTION tego._check_holder(holder text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF holder IS NULL THEN
        RAISE EXCEPTION 'holder must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF holder = '' OR octet_length(holder) > 200 THEN
        RAISE EXCEPTION 'holder must be 1 to 200 bytes long' USING ERRCODE = 'invalid_parameter_value';
    END IF;
END
$$;

-- Checks shared by the lease functions; raises on bad input.
CREATE FUNCTION tego._check_lease(name text, holder text, token bigint,
                                  ttl interval, check_holder boolean,
                                  check_token boolean, check_ttl boolean)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF name IS NULL THEN
        RAISE EXCEPTION 'lease name must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF name = '' OR octet_length(name) > 63 THEN
        RAISE EXCEPTION 'lease name must be 1 to 63 bytes long' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF check_holder THEN
        PERFORM tego._check_holder(holder);
    END IF;
    IF check_token AND token IS NULL THEN
        RAISE EXCEPTION 'token must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF check_ttl THEN
        IF ttl IS NULL THEN
            RAISE EXCEPTION 'ttl must not be null' USING ERRCODE = 'null_value_not_allowed';
        END IF;
        IF ttl <= interval '0' OR ttl > interval '1 day' THEN
            RAISE EXCEPTION 'ttl must be greater than zero and at most 1 day'
                USING ERRCODE = 'invalid_parameter_value',
                      DETAIL = format('The value given was %s.', ttl);
        END IF;
    END IF;
END
$$;

-- The lease row of name, locked (FOR UPDATE or FOR SHARE), or a raised
-- 42704 when there is none.
CREATE FUNCTION tego._lease_row(name text, exclusive boolean)
RETURNS tego.lease_state
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    l tego.lease_state;
BEGIN
    IF exclusive THEN
        SELECT * INTO l FROM tego.lease_state s WHERE s.name = _lease_row.name FOR UPDATE;
    ELSE
        SELECT * INTO l FROM tego.lease_state s WHERE s.name = _lease_row.name FOR SHARE;
    END IF;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'lease "%" does not exist', name
            USING ERRCODE = 'undefined_object',
                  HINT = 'Acquire it with tego.lease_acquire() first.';
    END IF;
    RETURN l;
END
$$;

-- Raise TG002 unless l is held right now with token (and by holder, when
-- holder is given).
CREATE FUNCTION tego._lease_check_held(l tego.lease_state, holder text, token bigint)
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
                  THEN format('It is held by "%s" with token %s.', l.holder, l.token)
                  WHEN l.holder IS NULL
                  THEN format('It is free; its last token was %s.', l.token)
                  WHEN tego._lease_end(l) = 'session ended'
                  THEN format('It was held by "%s" with token %s until its session ended.', l.holder, l.token)
                  ELSE format('It was held by "%s" with token %s until it expired.',
                              l.holder, l.token) END,
              HINT = 'Stop acting as its holder; acquire it again to get a new token.';
END
$$;

CREATE FUNCTION tego.lease_acquire(name text, holder text,
                                   ttl interval DEFAULT '30 seconds',
                                   session_bound boolean DEFAULT false)
RETURNS tego.lease_grant
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    l tego.lease_state;
    now timestamptz := clock_timestamp();
    max_leases integer := coalesce(nullif(current_setting('tego.max_leases', true), ''), '1000')::integer;
    previous jsonb;
    me_pid integer;
BEGIN
    PERFORM tego._check_lease(name, holder, NULL, ttl, true, false, true);
    IF session_bound IS NULL THEN
        RAISE EXCEPTION 'session_bound must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;

    -- NB: the row lock serializes acquirers of one name; lease_assert()
    -- holds a share lock on it, so a takeover waits for the holder's
    -- asserting transaction to end.
    SELECT * INTO l FROM tego.lease_state s WHERE s.name = lease_acquire.name FOR UPDATE;
    IF NOT FOUND THEN
        IF (SELECT count(*) FROM tego.lease_state) >= max_leases THEN
            RAISE EXCEPTION 'too many leases'
                USING ERRCODE = 'program_limit_exceeded',
                      DETAIL = format('tego.max_leases is %s.', max_leases),
                      HINT = 'Raise tego.max_leases, or reuse lease names.';
        END IF;
        INSERT INTO tego.lease_state (name) VALUES (lease_acquire.name)
            ON CONFLICT DO NOTHING;
        SELECT * INTO l FROM tego.lease_state s WHERE s.name = lease_acquire.name FOR UPDATE;
    END IF;

    IF tego._lease_live(l) THEN
        IF l.holder IS DISTINCT FROM lease_acquire.holder THEN
            RETURN ROW(false, l.holder, l.token, l.expires_at)::tego.lease_grant;
        END IF;
        -- held by the caller already: the same token, a later expiry
        UPDATE tego.lease_state s SET renewed_at = now, expires_at = now + ttl
         WHERE s.name = l.name RETURNING * INTO l;
        RETURN ROW(true, l.holder, l.token, l.expires_at)::tego.lease_grant;
    END IF;

    IF l.holder IS NOT NULL THEN
        previous := jsonb_build_object('holder', l.holder, 'token', l.token,
                                       'ended', tego._lease_end(l));
        PERFORM tego._emit('tego_leases', 'lease-expired', l.name,
                           jsonb_build_object('name', l.name, 'holder', l.holder,
                                              'token', l.token, 'expires_at', l.expires_at,
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
           session_pid = me_pid,
           acquired_at = now, renewed_at = now, expires_at = now + ttl
     WHERE s.name = l.name
    RETURNING * INTO l;
    PERFORM tego._emit('tego_leases', 'leader-changed', l.name,
                       jsonb_build_object('name', l.name, 'holder', l.holder,
                                          'token', l.token, 'expires_at', l.expires_at,
                                          'session_bound', session_bound,
                                          'previous', previous));
    RETURN ROW(true, l.holder, l.token, l.expires_at)::tego.lease_grant;
END
$$;

CREATE FUNCTION tego.lease_renew(name text, holder text, token bigint,
                                 ttl interval DEFAULT '30 seconds')
RETURNS timestamptz
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    l tego.lease_state;
    now timestamptz := clock_timestamp();
BEGIN
    PERFORM tego._check_lease(name, holder, token, ttl, true, true, true);
    l := tego._lease_row(name, true);
    PERFORM tego._lease_check_held(l, holder, token);
    UPDATE tego.lease_state s SET renewed_at = now, expires_at = now + ttl
     WHERE s.name = l.name RETURNING * INTO l;
    RETURN l.expires_at;
END
$$;

CREATE FUNCTION tego.lease_release(name text, holder text, token bigint)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    l tego.lease_state;
BEGIN
    PERFORM tego._check_lease(name, holder, token, NULL, true, true, false);
    l := tego._lease_row(name, true);
    PERFORM tego._lease_check_held(l, holder, token);
    UPDATE tego.lease_state s
       SET holder = NULL, session_pid = NULL, expires_at = NULL
     WHERE s.name = l.name;
    IF l.session_pid = pg_backend_pid() THEN
        PERFORM pg_advisory_unlock_shared(tego._lease_lock_class(), hashtext(l.name));
    END IF;
    PERFORM tego._emit('tego_leases', 'lease-released', l.name,
                       jsonb_build_object('name', l.name, 'holder', l.holder,
                                          'token', l.token));
END
$$;

CREATE FUNCTION tego.lease_assert(name text, token bigint)
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
    PERFORM tego._lease_check_held(l, NULL, token);
END
$$;

-- (tego._lease_lock_class, tego._guard_lock_class, tego._session_alive,
-- tego._lease_live and tego._lease_end touch no tego table and stay executable by everyone: the
-- view tego.leases calls them as its reader.)
REVOKE ALL ON FUNCTION
    tego._check_holder(text),
    tego._check_lease(text, text, bigint, interval, boolean, boolean, boolean),
    tego._lease_row(text, boolean),
    tego._lease_check_held(tego.lease_state, text, bigint),
    tego.lease_acquire(text, text, interval, boolean),
    tego.lease_renew(text, text, bigint, interval),
    tego.lease_release(text, text, bigint),
    tego.lease_assert(text, bigint)
FROM PUBLIC;

-- ---------------------------------------------------------------------------
-- Plugin operation guards: one holder at a time runs a plugin's install,
-- upgrade or remove hooks, cluster-wide
-- ---------------------------------------------------------------------------

-- NB: a guard is bound to the session that took it (an advisory lock, as
-- for session-bound leases) and to a timeout: when either ends, another
-- holder may take it over.  Its row is deleted when the operation ends.
CREATE TABLE tego.plugin_operation_state (
    name        text PRIMARY KEY,
    operation   text NOT NULL CHECK (operation IN ('install', 'upgrade', 'remove')),
    holder      text NOT NULL,
    session_pid integer NOT NULL,
    started_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL
);

COMMENT ON TABLE tego.plugin_operation_state IS 'plugin operations under way (see the view tego.plugin_operations); written by plugin_begin/plugin_end only';

REVOKE ALL ON tego.plugin_operation_state FROM PUBLIC;

-- Is this guard still held (its session there, its timeout not passed)?
CREATE FUNCTION tego._guard_live(g tego.plugin_operation_state)
RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT g.expires_at > clock_timestamp()
       AND tego._session_alive(tego._guard_lock_class(), g.name, g.session_pid)
$$;

CREATE VIEW tego.plugin_operations AS
SELECT g.name, g.operation, g.holder, g.session_pid, g.started_at,
       g.expires_at, tego._guard_live(g) AS live
  FROM tego.plugin_operation_state g;

COMMENT ON VIEW tego.plugin_operations IS 'the operation under way on a plugin (install, upgrade, remove), and who runs it';

REVOKE ALL ON tego.plugin_operations FROM PUBLIC;

CREATE FUNCTION tego.plugin_begin(name text, operation text, holder text,
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
    IF timeout IS NULL THEN
        RAISE EXCEPTION 'timeout must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF timeout <= interval '0' OR timeout > interval '1 day' THEN
        RAISE EXCEPTION 'timeout must be greater than zero and at most 1 day'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('The value given was %s.', timeout);
    END IF;
    PERFORM 1 FROM tego.plugins p WHERE p.name = plugin_begin.name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'plugin "%" does not exist', name USING ERRCODE = 'undefined_object';
    END IF;

    -- NB: a second caller waits here for the first one's transaction, then
    -- finds its row
    INSERT INTO tego.plugin_operation_state AS s
           (name, operation, holder, session_pid, started_at, expires_at)
    VALUES (plugin_begin.name, operation, holder, pg_backend_pid(), now, now + timeout)
    ON CONFLICT ON CONSTRAINT plugin_operation_state_pkey DO NOTHING
    RETURNING * INTO g;
    IF NOT FOUND THEN
        SELECT * INTO g FROM tego.plugin_operation_state s
         WHERE s.name = plugin_begin.name FOR UPDATE;
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
            previous := jsonb_build_object('holder', g.holder, 'operation', g.operation,
                'ended', CASE WHEN g.expires_at <= clock_timestamp() THEN 'timed out'
                              ELSE 'session ended' END);
        END IF;
        UPDATE tego.plugin_operation_state s
           SET operation = plugin_begin.operation, holder = plugin_begin.holder,
               session_pid = pg_backend_pid(), started_at = now,
               expires_at = now + timeout
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
                                          'holder', g.holder, 'expires_at', g.expires_at,
                                          'previous', previous));
    SELECT * INTO v FROM tego.plugin_operations o WHERE o.name = g.name;
    RETURN v;
END
$$;

CREATE FUNCTION tego.plugin_end(name text, holder text, succeeded boolean,
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
    IF NOT FOUND OR g.holder <> plugin_end.holder THEN
        RAISE EXCEPTION 'plugin "%" has no operation held by "%"', name, holder
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = CASE WHEN NOT FOUND THEN 'No operation is under way.'
                                ELSE format('"%s" holds its %s.', g.holder, g.operation) END;
    END IF;
    DELETE FROM tego.plugin_operation_state s WHERE s.name = g.name;
    IF g.session_pid = pg_backend_pid() THEN
        PERFORM pg_advisory_unlock_shared(tego._guard_lock_class(), hashtext(g.name));
    END IF;
    PERFORM tego._emit('tego_plugins', 'plugin-operation-ended', g.name,
                       jsonb_build_object('name', g.name, 'operation', g.operation,
                                          'holder', g.holder, 'succeeded', succeeded,
                                          'error', error));
END
$$;

REVOKE ALL ON FUNCTION
    tego.plugin_begin(text, text, text, interval),
    tego.plugin_end(text, text, boolean, text)
FROM PUBLIC;

-- ---------------------------------------------------------------------------
-- Application status: TachyBase's AppSupervisor and maintaining status, in
-- shared memory (needs shared_preload_libraries = 'tego')
-- ---------------------------------------------------------------------------

-- (C functions on shared memory; like every API function, SECURITY DEFINER
-- with a pinned search_path, and revoked from PUBLIC.)
CREATE FUNCTION tego.app_status_set(app text, status text,
                                    message text DEFAULT NULL,
                                    error text DEFAULT NULL)
RETURNS void
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'app_status_set';

COMMENT ON FUNCTION tego.app_status_set(text, text, text, text) IS 'set an app''s status (initializing, initialized, running, commanding, stopped, error, not_found), message and error';

CREATE FUNCTION tego.app_maintaining_set(app text, command text, status text,
                                         message text DEFAULT NULL,
                                         error text DEFAULT NULL)
RETURNS void
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'app_maintaining_set';

COMMENT ON FUNCTION tego.app_maintaining_set(text, text, text, text, text) IS 'record a maintaining command''s progress (command_begin, command_running, command_end, command_error) and the app status it implies';

CREATE FUNCTION tego.app_forget(app text)
RETURNS boolean
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'app_forget';

COMMENT ON FUNCTION tego.app_forget(text) IS 'drop an app''s status entry; false when there was none';

CREATE FUNCTION tego._apps(OUT app text, OUT status text, OUT previous_status text,
                           OUT command text, OUT maintaining_status text,
                           OUT message text, OUT error text,
                           OUT updated_at timestamptz, OUT pid integer,
                           OUT version bigint)
RETURNS SETOF record
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'app_list';

CREATE VIEW tego.apps AS
SELECT app, status, previous_status, command, maintaining_status, message,
       error, updated_at, pid, version
  FROM tego._apps();

COMMENT ON VIEW tego.apps IS 'status of the applications of this database, as their processes last set it (shared memory: empty after a restart)';

REVOKE ALL ON tego.apps FROM PUBLIC;
REVOKE ALL ON FUNCTION
    tego.app_status_set(text, text, text, text),
    tego.app_maintaining_set(text, text, text, text, text),
    tego.app_forget(text), tego._apps()
FROM PUBLIC;

-- ---------------------------------------------------------------------------
-- The registry mirror (tego.registry_source = memory) and its epoch
-- ---------------------------------------------------------------------------

CREATE FUNCTION tego.registry_epoch()
RETURNS bigint
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'registry_epoch';

COMMENT ON FUNCTION tego.registry_epoch() IS 'moves with every committed change of the registry (the seq of the latest); never goes back';

REVOKE ALL ON FUNCTION tego.registry_epoch() FROM PUBLIC;

-- ---------------------------------------------------------------------------
-- Health
-- ---------------------------------------------------------------------------

CREATE FUNCTION tego._shmem_usage(OUT preloaded boolean, OUT scheduler_pid integer,
                                  OUT scheduler_started timestamptz,
                                  OUT apps integer, OUT max_apps integer,
                                  OUT max_message_bytes integer,
                                  OUT notifiers integer, OUT max_notifiers integer,
                                  OUT job_workers integer, OUT max_job_workers integer,
                                  OUT seq_cache integer, OUT seq_cache_size integer)
RETURNS record
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'shmem_usage';

CREATE FUNCTION tego.status(
    OUT preloaded boolean,
    OUT scheduler_pid integer, OUT scheduler_database text,
    OUT scheduler_state text, OUT scheduler_started timestamptz,
    OUT event_seq bigint, OUT oldest_event_seq bigint,
    OUT oldest_event_at timestamptz,
    OUT running_jobs bigint, OUT max_running_jobs integer,
    OUT job_workers integer, OUT max_job_workers integer,
    OUT apps integer, OUT max_apps integer, OUT max_message_bytes integer,
    OUT notifiers integer, OUT max_notifiers integer,
    OUT leases bigint, OUT max_leases integer,
    OUT plugin_operations bigint,
    OUT seq_cache integer, OUT seq_cache_size integer,
    OUT registry_epoch bigint)
RETURNS record
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    u record;
BEGIN
    SELECT * INTO u FROM tego._shmem_usage();
    preloaded := u.preloaded;
    scheduler_pid := u.scheduler_pid;
    scheduler_started := u.scheduler_started;
    IF u.scheduler_pid IS NOT NULL THEN
        SELECT d.datname, a.state || coalesce(' (' || a.wait_event_type || ': ' || a.wait_event || ')', '')
          INTO scheduler_database, scheduler_state
          FROM pg_stat_get_activity(u.scheduler_pid) a
          LEFT JOIN pg_database d ON d.oid = a.datid;
    ELSIF u.preloaded THEN
        scheduler_state := 'not running';
    END IF;
    event_seq := tego.event_seq();
    SELECT e.seq, e.committed_at INTO oldest_event_seq, oldest_event_at
      FROM tego.events e ORDER BY e.seq LIMIT 1;
    SELECT count(*) INTO running_jobs FROM tego.job_runs r WHERE r.status = 'running';
    max_running_jobs := nullif(current_setting('tego.max_running_jobs', true), '')::integer;
    job_workers := u.job_workers;
    max_job_workers := u.max_job_workers;
    apps := u.apps;
    max_apps := u.max_apps;
    max_message_bytes := u.max_message_bytes;
    notifiers := u.notifiers;
    max_notifiers := u.max_notifiers;
    SELECT count(*) INTO leases FROM tego.lease_state;
    max_leases := coalesce(nullif(current_setting('tego.max_leases', true), ''), '1000')::integer;
    SELECT count(*) INTO plugin_operations FROM tego.plugin_operation_state;
    seq_cache := u.seq_cache;
    seq_cache_size := u.seq_cache_size;
    IF u.preloaded AND NOT pg_is_in_recovery() THEN
        registry_epoch := tego.registry_epoch();
    END IF;
END
$$;

COMMENT ON FUNCTION tego.status() IS 'one row of health: the scheduler, the event log, jobs, and shared memory in use against its limits';

REVOKE ALL ON FUNCTION tego._shmem_usage(), tego.status() FROM PUBLIC;

-- Tell a running scheduler that the extension exists now.
SELECT tego._wake_scheduler();
