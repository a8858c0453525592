--
-- Privileges: nothing for PUBLIC; the README's grants for an application
-- role and a read-only role.
--
SET tego.client_id = 'regress-privileges';
CREATE ROLE regress_tego_nobody;
CREATE ROLE regress_tego_app;
CREATE ROLE regress_tego_reader;
SELECT name FROM tego.plugin_add('priv-base');

-- an application role: may change the registry and publish
GRANT USAGE ON SCHEMA tego TO regress_tego_app;
GRANT EXECUTE ON FUNCTION
    tego.plugin_add(text, text, text, jsonb, boolean, boolean, text[]),
    tego.plugin_install(text[]), tego.plugin_enable(text[]),
    tego.plugin_disable(text[]), tego.plugin_remove(text[], boolean),
    tego.plugin_upgrade(text, text), tego.plugin_update(text, jsonb, bigint),
    tego.plugin_get(text), tego.plugin_list(boolean),
    tego.publish(text, jsonb), tego.event_seq(),
    tego.events_since(bigint, text[], integer)
  TO regress_tego_app;

-- a read-only role: may read the registry and the log
GRANT USAGE ON SCHEMA tego TO regress_tego_reader;
GRANT SELECT ON tego.plugins, tego.events TO regress_tego_reader;
GRANT EXECUTE ON FUNCTION
    tego.plugin_get(text), tego.plugin_list(boolean),
    tego.event_seq(), tego.events_since(bigint, text[], integer)
  TO regress_tego_reader;

-- without grants: nothing at all
SET ROLE regress_tego_nobody;
SELECT tego.plugin_list();
SELECT * FROM tego.plugins;
RESET ROLE;
GRANT USAGE ON SCHEMA tego TO regress_tego_nobody;
SET ROLE regress_tego_nobody;
SELECT tego.plugin_add('priv-x');
SELECT tego.plugin_enable('priv-base');
SELECT tego.publish('t', '{}');
SELECT tego.plugin_list();
SELECT tego.events_since(0);
SELECT tego.event_seq();
SELECT tego.compact_events();
SELECT count(*) FROM tego.plugins;
SELECT count(*) FROM tego.events;
RESET ROLE;

-- the application role
SET ROLE regress_tego_app;
SELECT name, state FROM tego.plugin_enable('priv-base');
SELECT name, state FROM tego.plugin_disable('priv-base');
SELECT tego.publish('priv', '{"ok": true}');
SELECT name FROM tego.plugin_list() WHERE name LIKE 'priv-%';
SELECT tego.compact_events();
SELECT count(*) FROM tego.plugins;
RESET ROLE;

-- the read-only role
SET ROLE regress_tego_reader;
SELECT name, state FROM tego.plugin_get('priv-base');
SELECT count(*) > 0 AS can_read FROM tego.plugins;
SELECT topic FROM tego.events WHERE topic = 'priv';
SELECT tego.plugin_disable('priv-base');
SELECT tego.publish('priv', '{}');
INSERT INTO tego.events VALUES (0, 'x', 'x', NULL, '{}', now());
RESET ROLE;

-- a hostile search_path cannot hijack the functions
CREATE SCHEMA regress_evil;
CREATE FUNCTION regress_evil.jsonb_build_object(text, bigint) RETURNS jsonb
    LANGUAGE sql AS $$ SELECT '{"hijacked": true}'::jsonb $$;
CREATE FUNCTION regress_evil.now() RETURNS timestamptz
    LANGUAGE sql AS $$ SELECT 'epoch'::timestamptz $$;
SET search_path = regress_evil, pg_catalog;
SELECT name FROM tego.plugin_enable('priv-base');
RESET search_path;
SELECT payload ? 'hijacked' AS hijacked, committed_at > 'epoch' AS real_time
  FROM tego.events WHERE seq = tego.event_seq();
SELECT updated_at > 'epoch' AS real_time FROM tego.plugins WHERE name = 'priv-base';

-- cleanup
DROP SCHEMA regress_evil CASCADE;
SELECT name FROM tego.plugin_disable('priv-base');
SELECT name FROM tego.plugin_remove('{priv-base}');
DROP OWNED BY regress_tego_nobody, regress_tego_app, regress_tego_reader;
DROP ROLE regress_tego_nobody, regress_tego_app, regress_tego_reader;
