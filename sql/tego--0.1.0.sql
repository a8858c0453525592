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
