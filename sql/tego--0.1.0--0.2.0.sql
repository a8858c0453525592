/* tego 0.1.0 -> 0.2.0: adoption and operations */

\echo Use "ALTER EXTENSION tego UPDATE TO '0.2.0'" to load this file. \quit

--
-- Events for clients that cannot LISTEN (behind a pooler in transaction
-- mode, or on a standby): one statement that waits for the next events.
--
CREATE FUNCTION tego.wait_events(after_seq bigint,
                                 topics text[] DEFAULT NULL,
                                 timeout interval DEFAULT '30 seconds',
                                 max_events integer DEFAULT 1000)
RETURNS SETOF tego.events
LANGUAGE c VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'wait_events';

COMMENT ON FUNCTION tego.wait_events(bigint, text[], interval, integer) IS 'tego.events_since, waiting up to timeout for a commit when there is nothing past after_seq yet';

REVOKE ALL ON FUNCTION tego.wait_events(bigint, text[], interval, integer) FROM PUBLIC;

--
-- Migration from TachyBase / NocoBase: import an existing applicationPlugins
-- table, and a view with its columns whose writes go through the lifecycle.
--

-- The columns of TachyBase's applicationPlugins that tego reads.
CREATE FUNCTION tego._application_plugins_columns()
RETURNS text[]
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT ARRAY['name', 'packageName', 'version', 'enabled', 'installed',
                   'builtIn', 'options', 'subView'] $$;

-- Bring a plugin to the state a TachyBase row describes, through the
-- lifecycle functions.  Returns 'added', 'updated' or 'unchanged'.  strict
-- (import_plugins) refuses a row that is enabled but not installed, or not
-- installed while the plugin is; otherwise (writes through the view, as
-- TachyBase's PluginManager makes them) enabling installs, and the
-- lifecycle having no uninstall, installed = false leaves the plugin
-- installed.
CREATE FUNCTION tego._apply_application_plugin(r jsonb, strict boolean)
RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p tego.plugins;
    want_installed boolean := coalesce((r ->> 'installed')::boolean, false);
    want_enabled boolean := coalesce((r ->> 'enabled')::boolean, false);
    opts jsonb := coalesce(nullif(r -> 'options', 'null'::jsonb), '{}');
    changes jsonb := '{}';
    changed boolean := false;
BEGIN
    IF r ->> 'name' IS NULL THEN
        RAISE EXCEPTION 'plugin name must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF strict AND want_enabled AND NOT want_installed THEN
        RAISE EXCEPTION 'plugin "%" is enabled but not installed', r ->> 'name'
            USING ERRCODE = 'check_violation';
    END IF;

    SELECT * INTO p FROM tego.plugins WHERE name = r ->> 'name' FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM tego.plugin_add(r ->> 'name', r ->> 'packageName', r ->> 'version',
                                opts,
                                coalesce((r ->> 'builtIn')::boolean, false),
                                coalesce((r ->> 'subView')::boolean, true));
        IF want_enabled THEN
            PERFORM tego.plugin_enable(r ->> 'name');
        ELSIF want_installed THEN
            PERFORM tego.plugin_install(r ->> 'name');
        END IF;
        RETURN 'added';
    END IF;

    IF strict AND p.installed AND NOT want_installed THEN
        RAISE EXCEPTION 'plugin "%" cannot become not installed', p.name
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'It is installed in tego.plugins, and the lifecycle has no uninstall.',
                  HINT = 'Remove the plugin and add it again.';
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
    IF p.built_in IS DISTINCT FROM coalesce((r ->> 'builtIn')::boolean, false) THEN
        changes := changes || jsonb_build_object('built_in', coalesce((r ->> 'builtIn')::boolean, false));
    END IF;
    IF p.sub_view IS DISTINCT FROM coalesce((r ->> 'subView')::boolean, true) THEN
        changes := changes || jsonb_build_object('sub_view', coalesce((r ->> 'subView')::boolean, true));
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
    IF want_installed AND NOT p.installed AND NOT want_enabled THEN
        PERFORM tego.plugin_install(p.name);
        changed := true;
    END IF;
    RETURN CASE WHEN changed THEN 'updated' ELSE 'unchanged' END;
END
$$;

-- NB: the default is cast from text when called, so the table need not exist
-- when the extension is created
CREATE FUNCTION tego.import_plugins(source regclass DEFAULT 'public."applicationPlugins"'::text::regclass,
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
    -- NB: runs as the extension's owner, so read only what the caller may read
    IF NOT has_table_privilege(session_user, source, 'SELECT') THEN
        RAISE EXCEPTION 'permission denied for table %', source
            USING ERRCODE = 'insufficient_privilege';
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
    FOR r IN EXECUTE format(
        'SELECT jsonb_build_object(''name'', s.name, ''packageName'', s."packageName",'
        ' ''version'', s.version, ''enabled'', s.enabled, ''installed'', s.installed,'
        ' ''builtIn'', s."builtIn", ''options'', s.options, ''subView'', s."subView")'
        ' FROM %s s ORDER BY %s', source, CASE WHEN has_id THEN 's.id, s.name' ELSE 's.name' END)
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
            IF SQLSTATE IN ('57014', '40001', '40P01') THEN
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

COMMENT ON FUNCTION tego.import_plugins(regclass) IS 'import (idempotently) a TachyBase/NocoBase applicationPlugins table through the lifecycle; refuses the whole import when a row breaks the rules';

REVOKE ALL ON FUNCTION tego.import_plugins(regclass) FROM PUBLIC;
REVOKE ALL ON FUNCTION tego._apply_application_plugin(jsonb, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION tego._application_plugins_columns() FROM PUBLIC;

-- TachyBase's applicationPlugins, over tego.plugins.
CREATE VIEW tego."applicationPlugins" AS
SELECT p.id, p.name, p.package_name AS "packageName", p.version, p.enabled,
       p.installed, p.built_in AS "builtIn", p.options, p.sub_view AS "subView",
       p.created_at AS "createdAt", p.updated_at AS "updatedAt"
  FROM tego.plugins p;

COMMENT ON VIEW tego."applicationPlugins" IS 'TachyBase''s applicationPlugins over tego.plugins; INSERT, UPDATE and DELETE go through the lifecycle functions';

-- INSERT, UPDATE and DELETE on the view, through the lifecycle functions.
CREATE FUNCTION tego._application_plugins_write()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p tego.plugins;
BEGIN
    IF TG_OP = 'DELETE' THEN
        -- the application decided (TachyBase refuses an enabled plugin
        -- unless forced before it deletes); the other rules still hold
        PERFORM tego.plugin_remove(ARRAY[OLD.name], force => true);
        RETURN OLD;
    END IF;
    IF TG_OP = 'UPDATE' THEN
        IF NEW.id IS DISTINCT FROM OLD.id THEN
            RAISE EXCEPTION 'cannot change the id of plugin "%"', OLD.name
                USING ERRCODE = 'feature_not_supported';
        END IF;
        IF NEW.name IS DISTINCT FROM OLD.name THEN
            RAISE EXCEPTION 'cannot rename plugin "%"', OLD.name
                USING ERRCODE = 'feature_not_supported',
                      HINT = 'Remove the plugin and add it under the new name.';
        END IF;
    END IF;
    IF TG_OP = 'INSERT' THEN
        -- a plain INSERT of a name that exists fails, as on a table
        PERFORM tego.plugin_add(NEW.name, NEW."packageName", NEW.version,
                                coalesce(NEW.options, '{}'),
                                coalesce(NEW."builtIn", false),
                                coalesce(NEW."subView", true));
    END IF;
    PERFORM tego._apply_application_plugin(
        jsonb_build_object('name', NEW.name, 'packageName', NEW."packageName",
                           'version', NEW.version, 'enabled', NEW.enabled,
                           'installed', NEW.installed, 'builtIn', NEW."builtIn",
                           'options', NEW.options, 'subView', NEW."subView"),
        false);
    SELECT * INTO p FROM tego.plugins WHERE name = NEW.name;
    NEW.id := p.id;
    NEW."packageName" := p.package_name;
    NEW.version := p.version;
    NEW.enabled := p.enabled;
    NEW.installed := p.installed;
    NEW."builtIn" := p.built_in;
    NEW.options := p.options;
    NEW."subView" := p.sub_view;
    NEW."createdAt" := p.created_at;
    NEW."updatedAt" := p.updated_at;
    RETURN NEW;
END
$$;

REVOKE ALL ON FUNCTION tego._application_plugins_write() FROM PUBLIC;

CREATE TRIGGER application_plugins_write
    INSTEAD OF INSERT OR UPDATE OR DELETE ON tego."applicationPlugins"
    FOR EACH ROW EXECUTE FUNCTION tego._application_plugins_write();

REVOKE ALL ON tego."applicationPlugins" FROM PUBLIC;

--
-- pg_dump carries the job run history too (pending app runs, what ran
-- when), with its identity sequence so that new runs do not collide.
--
SELECT pg_catalog.pg_extension_config_dump('tego.job_runs', '');
SELECT pg_catalog.pg_extension_config_dump('tego.job_runs_run_id_seq', '');

--
-- tego.status(): an idle scheduler's state says what it waits for.
--
CREATE OR REPLACE FUNCTION tego.status(
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
        -- NB: PostgreSQL 15 names every wait of an extension "Extension"
        SELECT d.datname,
               CASE WHEN a.wait_event_type = 'Extension'
                    THEN 'waiting for the next due time or a change'
                    ELSE a.state || coalesce(' (' || a.wait_event_type || ': ' || a.wait_event || ')', '')
               END
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

--
-- The application status setters only touch shared memory: they run no SQL
-- and read no table, so they need neither the owner's rights nor a pinned
-- search_path, whose save and restore on every call (fmgr's SECURITY
-- DEFINER and SET handling) was a large part of their cost.  Who may call
-- them is still decided by EXECUTE, revoked from PUBLIC.
--
ALTER FUNCTION tego.app_status_set(text, text, text, text) SECURITY INVOKER RESET search_path;
ALTER FUNCTION tego.app_maintaining_set(text, text, text, text, text) SECURITY INVOKER RESET search_path;
ALTER FUNCTION tego.app_forget(text) SECURITY INVOKER RESET search_path;
