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

-- rows that break the rules are listed, and nothing is imported; the
-- states TachyBase writes (sample enabled with its install pending, users
-- no longer installed) are not among them
UPDATE "applicationPlugins" SET enabled = true WHERE name = 'sample';
UPDATE "applicationPlugins" SET version = '3.0.0' WHERE name = 'acl';
-- (a plugin that needs users, and one whose package it already has)
SELECT name FROM tego.plugin_add('users-audit', '@demo/users-audit', depends_on => '{users}');
INSERT INTO "applicationPlugins" (name, "packageName", options, enabled, installed) VALUES
    ('', NULL, '{}', false, false),
    ('listy', NULL, '[1]', false, false),
    ('other-acl', NULL, '{}', false, false),
    ('copy-audit', '@demo/users-audit', '{}', false, false),
    ('users-audit', NULL, '{}', true, true);
UPDATE "applicationPlugins" SET installed = false WHERE name = 'users';
SELECT * FROM tego.import_plugins();
SELECT name, version FROM tego.plugins WHERE name = 'acl';
SELECT name, enabled, installed FROM tego.plugins
 WHERE name IN ('users', 'sample', 'users-audit') ORDER BY id;
SELECT count(*) FROM tego.plugins WHERE name IN ('listy', 'other-acl', 'copy-audit');

-- a database TachyBase has been running on: sample enabled with its
-- install pending (between pm enable's two writes), users marked not
-- installed (the write after an install() that failed)
DELETE FROM "applicationPlugins" WHERE name IN ('', 'listy', 'copy-audit', 'users-audit');
SELECT name FROM tego.plugin_remove('{users-audit}');
SELECT tego.event_seq() AS before_import \gset
SELECT * FROM tego.import_plugins();
SELECT name, state, enabled, installed FROM tego.plugins
 WHERE name IN ('users', 'sample', 'other-acl') ORDER BY id;
SELECT key, payload ->> 'action' AS action, payload ->> 'to' AS "to",
       payload ->> 'installed' AS installed
  FROM tego.events WHERE seq > :before_import ORDER BY seq;
SELECT * FROM tego.import_plugins();
-- install() ran: the application marks it installed, and an import of the
-- table as it is now says so
UPDATE "applicationPlugins" SET installed = true WHERE name = 'sample';
SELECT * FROM tego.import_plugins();
SELECT name, state, installed FROM tego.plugins WHERE name = 'sample';
DELETE FROM "applicationPlugins" WHERE name = 'other-acl';
SELECT name FROM tego.plugin_remove('{other-acl}');

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

-- INSERT adds (and enables, leaving the install pending)
INSERT INTO tego."applicationPlugins" (name, "packageName", version, enabled, installed, "builtIn", options, "subView", "createdAt", "updatedAt")
VALUES ('orm-a', '@tachybase/plugin-orm-a', '1.0.0', true, false, false, '{"x": 1}', true, now(), now())
RETURNING id > 0 AS has_id, name, enabled, installed, options;
SELECT state FROM tego.plugins WHERE name = 'orm-a';

-- UPDATE of enabled, installed, options: each through its lifecycle function
UPDATE tego."applicationPlugins" SET enabled = false, "updatedAt" = now() WHERE name = 'orm-a'
RETURNING name, enabled, installed;
UPDATE tego."applicationPlugins" SET options = '{"x": 2}', version = '1.1.0' WHERE name = 'orm-a'
RETURNING name, version, options;
UPDATE tego."applicationPlugins" SET installed = true WHERE name = 'orm-a'
RETURNING name, enabled, installed;
UPDATE tego."applicationPlugins" SET enabled = false, installed = false WHERE name = 'orm-a'
RETURNING name, enabled, installed;
SELECT key, payload ->> 'action' AS action FROM tego.events WHERE key = 'orm-a' ORDER BY seq;

-- TachyBase's PluginManager writes, in the order it makes them, each
-- applied as it would be on TachyBase's own table
SELECT tego.event_seq() AS before_pm \gset
-- pm.add: updateOrCreate of a new row, neither enabled nor installed
INSERT INTO tego."applicationPlugins" (name, "packageName", version, enabled, installed, "builtIn", options)
VALUES ('pm-x', '@tachybase/plugin-pm-x', '1.0.0', false, false, false, '{}')
RETURNING name, enabled, installed;
-- pm.enable: {enabled: true}, then install() runs, then {installed: true}
UPDATE tego."applicationPlugins" SET enabled = true WHERE name = 'pm-x'
RETURNING name, enabled, installed;
SELECT name, state, enabled, installed FROM tego.plugins WHERE name = 'pm-x';
UPDATE tego."applicationPlugins" SET installed = true WHERE name = 'pm-x'
RETURNING name, enabled, installed;
-- pm.disable: {enabled: false}; on error {enabled: true} again
UPDATE tego."applicationPlugins" SET enabled = false WHERE name = 'pm-x'
RETURNING name, enabled, installed;
UPDATE tego."applicationPlugins" SET enabled = true WHERE name = 'pm-x'
RETURNING name, enabled, installed;
-- install() failed: {enabled: false, installed: false}, as on a table
UPDATE tego."applicationPlugins" SET enabled = false, installed = false WHERE name = 'pm-x'
RETURNING name, enabled, installed;
SELECT name, state, enabled, installed FROM tego.plugins WHERE name = 'pm-x';
-- pm.upgrade: installs what is enabled but not installed
UPDATE tego."applicationPlugins" SET enabled = true WHERE name = 'pm-x';
UPDATE tego."applicationPlugins" SET installed = true
 WHERE enabled AND NOT installed RETURNING name, enabled, installed;
-- writing what is already there changes nothing and emits no event
SELECT tego.event_seq() AS before_noop \gset
UPDATE tego."applicationPlugins" SET enabled = true, installed = true WHERE name = 'pm-x';
SELECT tego.event_seq() - :before_noop AS noop_events;
-- pm.remove: destroy
DELETE FROM tego."applicationPlugins" WHERE name = 'pm-x' RETURNING name;
SELECT payload ->> 'action' AS action, payload ->> 'from' AS "from",
       payload ->> 'to' AS "to", payload ->> 'installed' AS installed
  FROM tego.events WHERE seq > :before_pm AND key = 'pm-x' ORDER BY seq;

-- what TachyBase's db.sync() runs on the collection's relation: the view
-- refuses it (a view has no constraints or indexes, and it belongs to the
-- extension); an application must leave this collection out of sync
CREATE FUNCTION pg_temp.try(stmt text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE stmt;
    RETURN 'ok';
EXCEPTION WHEN others THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;
SELECT pg_temp.try($$ALTER TABLE tego."applicationPlugins" ADD CONSTRAINT "applicationPlugins_pkey" PRIMARY KEY (id)$$);
SELECT pg_temp.try($$ALTER TABLE tego."applicationPlugins" ALTER COLUMN "subView" DROP NOT NULL$$);
SELECT pg_temp.try($$CREATE UNIQUE INDEX "application_plugins_name" ON tego."applicationPlugins" (name)$$);
CREATE ROLE tego_adoption_app;
GRANT USAGE ON SCHEMA tego TO tego_adoption_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON tego."applicationPlugins" TO tego_adoption_app;
SET ROLE tego_adoption_app;
SELECT pg_temp.try($$ALTER TABLE tego."applicationPlugins" ADD CONSTRAINT "applicationPlugins_pkey" PRIMARY KEY (id)$$);
SELECT pg_temp.try($$ALTER TABLE tego."applicationPlugins" ALTER COLUMN "subView" DROP NOT NULL$$);
SELECT pg_temp.try($$ALTER TABLE tego."applicationPlugins" ALTER COLUMN "subView" SET DEFAULT true$$);
SELECT pg_temp.try($$CREATE UNIQUE INDEX "application_plugins_name" ON tego."applicationPlugins" (name)$$);
-- while its writes go through
INSERT INTO tego."applicationPlugins" (name, enabled, installed) VALUES ('app-x', true, false)
RETURNING name, enabled, installed;
UPDATE tego."applicationPlugins" SET installed = true WHERE name = 'app-x'
RETURNING name, enabled, installed;
UPDATE tego."applicationPlugins" SET enabled = false, installed = false WHERE name = 'app-x'
RETURNING name, enabled, installed;
DELETE FROM tego."applicationPlugins" WHERE name = 'app-x' RETURNING name;
RESET ROLE;
DROP OWNED BY tego_adoption_app;
DROP ROLE tego_adoption_app;

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
