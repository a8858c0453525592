--
-- Adoption: tego.wait_events, tego.import_plugins and the view
-- tego."applicationPlugins".
--
SET client_min_messages = warning;
\set SHOW_CONTEXT never

-- wait_events: events past after_seq come back at once, in seq order
SELECT count(*) FROM tego.plugin_add('wait-a');
SELECT count(*) FROM tego.plugin_install('wait-a');
SELECT seq > 0 AS numbered, topic, event, key
  FROM tego.wait_events(tego.event_seq() - 2, ARRAY['tego_plugins'], '5 seconds');

-- nothing past after_seq: waits for the timeout, then returns nothing
SELECT clock_timestamp() AS t0 \gset
SELECT count(*) FROM tego.wait_events(tego.event_seq(), timeout => '0.3 seconds');
SELECT clock_timestamp() - :'t0'::timestamptz >= interval '0.3 seconds' AS waited;

-- the topic filter: events of other topics do not end the wait
SELECT count(*) FROM tego.wait_events(tego.event_seq() - 2, ARRAY['tego_jobs'], '0.1 seconds');

-- max_events
SELECT count(*) FROM tego.wait_events(0, max_events => 1);

-- bad input
SELECT * FROM tego.wait_events(NULL);
SELECT * FROM tego.wait_events(0, timeout => NULL);
SELECT * FROM tego.wait_events(0, timeout => '-1 second');
SELECT * FROM tego.wait_events(0, timeout => '2 hours');
SELECT * FROM tego.wait_events(0, max_events => 0);
SELECT * FROM tego.wait_events(0, max_events => NULL);
SELECT * FROM tego.wait_events(-1);
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT * FROM tego.wait_events(0);
ROLLBACK;

--
-- import_plugins from a TachyBase table
--
CREATE TABLE "applicationPlugins" (
    id serial PRIMARY KEY,
    name varchar(255) UNIQUE,
    "packageName" varchar(255) UNIQUE,
    version varchar(255),
    enabled boolean,
    installed boolean,
    "builtIn" boolean,
    options json,
    "subView" boolean DEFAULT true,
    "createdAt" timestamptz,
    "updatedAt" timestamptz
);
INSERT INTO "applicationPlugins" (name, "packageName", version, enabled, installed, "builtIn", options) VALUES
    ('acl', '@tachybase/plugin-acl', '1.0.0', true, true, true, '{"strategy": "allow"}'),
    ('users', '@tachybase/plugin-users', '1.0.0', true, true, false, NULL),
    ('sample', '@tachybase/plugin-sample', '0.1.0', false, false, false, '{}');

SELECT tego.event_seq() AS before_import \gset
SELECT * FROM tego.import_plugins();
SELECT name, package_name, version, enabled, installed, built_in, options, sub_view
  FROM tego.plugins WHERE name IN ('acl', 'users', 'sample') ORDER BY id;
-- each change is an event
SELECT key, payload ->> 'action' AS action FROM tego.events
 WHERE seq > :before_import ORDER BY seq;

-- idempotent
SELECT * FROM tego.import_plugins();

-- changes since are applied through the lifecycle
UPDATE "applicationPlugins" SET enabled = false WHERE name = 'users';
UPDATE "applicationPlugins" SET version = '2.0.0', options = '{"strategy": "deny"}' WHERE name = 'acl';
SELECT * FROM tego.import_plugins('"applicationPlugins"');
SELECT name, version, enabled, installed, options FROM tego.plugins
 WHERE name IN ('acl', 'users') ORDER BY id;

-- rows that break the rules are listed, and nothing is imported
UPDATE "applicationPlugins" SET enabled = true WHERE name = 'sample';
UPDATE "applicationPlugins" SET version = '3.0.0' WHERE name = 'acl';
INSERT INTO "applicationPlugins" (name, options, enabled, installed) VALUES
    ('', '{}', false, false),
    ('listy', '[1]', false, false),
    ('other-acl', '{}', false, false);
UPDATE "applicationPlugins" SET installed = false WHERE name = 'users';
SELECT * FROM tego.import_plugins();
SELECT name, version FROM tego.plugins WHERE name = 'acl';
SELECT count(*) FROM tego.plugins WHERE name IN ('listy', 'other-acl');

-- a table that is not applicationPlugins
CREATE TABLE not_plugins (name text, enabled boolean);
SELECT * FROM tego.import_plugins('not_plugins');
SELECT * FROM tego.import_plugins(NULL);
SELECT * FROM tego.import_plugins('no_such_table');
-- the source is read as the session user, who needs SELECT on it
CREATE ROLE tego_import_only;
GRANT USAGE ON SCHEMA tego TO tego_import_only;
GRANT EXECUTE ON FUNCTION tego.import_plugins(regclass) TO tego_import_only;
SET SESSION AUTHORIZATION tego_import_only;
SELECT * FROM tego.import_plugins('public."applicationPlugins"');
RESET SESSION AUTHORIZATION;
DROP OWNED BY tego_import_only;
DROP ROLE tego_import_only;

--
-- the view tego."applicationPlugins": TachyBase's columns, writes through
-- the lifecycle
--
SELECT id > 0 AS has_id, name, "packageName", version, enabled, installed, "builtIn", options, "subView",
       "createdAt" <= "updatedAt" AS stamped
  FROM tego."applicationPlugins" WHERE name IN ('acl', 'users', 'sample') ORDER BY id;

-- INSERT adds (and enables, installing first, as TachyBase's pm enable does)
INSERT INTO tego."applicationPlugins" (name, "packageName", version, enabled, installed, "builtIn", options, "subView", "createdAt", "updatedAt")
VALUES ('orm-a', '@tachybase/plugin-orm-a', '1.0.0', true, false, false, '{"x": 1}', true, now(), now())
RETURNING id > 0 AS has_id, name, enabled, installed, options;
SELECT state FROM tego.plugins WHERE name = 'orm-a';

-- UPDATE of enabled, installed, options: each through its lifecycle function
UPDATE tego."applicationPlugins" SET enabled = false, "updatedAt" = now() WHERE name = 'orm-a'
RETURNING name, enabled, installed;
UPDATE tego."applicationPlugins" SET options = '{"x": 2}', version = '1.1.0' WHERE name = 'orm-a'
RETURNING name, version, options;
-- installed = false: the lifecycle has no uninstall, the plugin stays installed
UPDATE tego."applicationPlugins" SET enabled = false, installed = false WHERE name = 'orm-a'
RETURNING name, enabled, installed;
SELECT key, payload ->> 'action' AS action FROM tego.events WHERE key = 'orm-a' ORDER BY seq;

-- the rules hold for ORM writes too
INSERT INTO tego."applicationPlugins" (name) VALUES ('orm-a');
INSERT INTO tego."applicationPlugins" (name, options) VALUES ('orm-b', '"text"');
UPDATE tego."applicationPlugins" SET name = 'orm-z' WHERE name = 'orm-a';
UPDATE tego."applicationPlugins" SET enabled = false WHERE name = 'acl';
DELETE FROM tego."applicationPlugins" WHERE name = 'acl';

-- DELETE removes (TachyBase checks force before it deletes)
UPDATE tego."applicationPlugins" SET enabled = true WHERE name = 'orm-a';
DELETE FROM tego."applicationPlugins" WHERE name = 'orm-a' RETURNING name;
SELECT count(*) FROM tego.plugins WHERE name = 'orm-a';
SELECT key, payload ->> 'action' AS action FROM tego.events WHERE key = 'orm-a' ORDER BY seq DESC LIMIT 1;

DROP TABLE "applicationPlugins", not_plugins;

-- tego.status() says what an idle scheduler waits for
DO $$
BEGIN
    FOR i IN 1 .. 100 LOOP
        EXIT WHEN (SELECT scheduler_state FROM tego.status())
                  = 'waiting for the next due time or a change';
        PERFORM pg_sleep(0.05);
    END LOOP;
END
$$;
SELECT scheduler_state FROM tego.status();
