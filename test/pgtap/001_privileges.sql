-- pgTAP: tego's privileges (DESIGN.md "Security", README.md "Privileges").
--
-- Run with pg_prove as a superuser, in a database where
--   CREATE EXTENSION pgtap; CREATE EXTENSION tego;
-- were done.  Everything happens in one transaction that is rolled back:
-- the roles and plugins created here never persist, and no event commits.
--
-- 1. Catalog: every API function is SECURITY DEFINER and pins search_path
--    (pg_catalog/tego, then pg_temp), nothing is granted to PUBLIC -- except
--    "pure" functions that touch no tego table (cron_next), listed below.
-- 2. A role without grants (with or without USAGE on the schema) can call
--    no function and read no table: 42501 each time.
-- 3. The README's application role can run the lifecycle, publish and
--    read through the functions; not compact, not touch the tables.
-- 4. The README's read-only role can read, and mutate nothing.
-- 5. compact_events() needs its own grant.
\set ON_ERROR_STOP 1
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off

BEGIN;

SELECT plan(161);

-- ---------------------------------------------------------------------------
-- 1. Catalog
-- ---------------------------------------------------------------------------

-- The functions that belong to the extension.  "pure": functions that
-- read and write no tego table and may therefore be left to PUBLIC and run
-- as the caller (DESIGN.md: mutating functions are revoked from PUBLIC;
-- tego.cron_next lets anyone check a schedule; the lease helpers compute
-- the "live" column of the views tego.leases and tego.plugin_operations
-- for their reader, from the row and pg_locks; tego._sees tells that reader
-- whether it may see a holder; tego._app_entries, behind tego.apps,
-- answers only a role that may read that view).  Add such functions here.
-- "shmem_only": C functions that run no SQL and read no table (they only
-- change shared memory), which are SECURITY INVOKER with nothing to pin,
-- and revoked from PUBLIC like the rest.
CREATE TEMP VIEW tego_funcs AS
SELECT p.oid, p.proname, p.oid::regprocedure::text AS sig, p.prosecdef,
       p.proconfig, l.lanname,
       p.proname = ANY (ARRAY['cron_next', '_lease_lock_class', '_guard_lock_class',
                              '_session_alive', '_lease_live', '_lease_end',
                              '_guard_live', '_sees', '_app_entries']::name[]) AS pure,
       p.proname = ANY (ARRAY['app_status_set', 'app_maintaining_set',
                              'app_forget']::name[]) AS shmem_only
  FROM pg_catalog.pg_proc p
  JOIN pg_catalog.pg_language l ON l.oid = p.prolang
  JOIN pg_catalog.pg_depend d
    ON d.classid = 'pg_catalog.pg_proc'::regclass AND d.objid = p.oid
   AND d.deptype = 'e'
  JOIN pg_catalog.pg_extension x
    ON x.oid = d.refobjid AND x.extname = 'tego';

SELECT cmp_ok((SELECT count(*)::int FROM tego_funcs WHERE proname !~ '^_'), '>=', 13,
              'the extension has its API functions');

SELECT is(ARRAY(SELECT sig FROM tego_funcs
                 WHERE proname !~ '^_' AND NOT pure AND NOT shmem_only AND NOT prosecdef ORDER BY sig),
          '{}'::text[],
          'every API function of tego is SECURITY DEFINER (but those that only touch shared memory)');

SELECT is(ARRAY(SELECT sig FROM tego_funcs WHERE shmem_only AND (prosecdef OR lanname <> 'c') ORDER BY sig),
          '{}'::text[],
          'the functions that only touch shared memory are C and SECURITY INVOKER');

SELECT is(ARRAY(SELECT sig FROM tego_funcs WHERE pure AND prosecdef ORDER BY sig),
          '{}'::text[],
          'functions left to PUBLIC are not SECURITY DEFINER');

SELECT is(ARRAY(SELECT sig FROM tego_funcs f
                 WHERE (f.prosecdef OR f.proname !~ '^_' AND NOT f.pure AND NOT f.shmem_only)
                   AND NOT EXISTS (SELECT 1 FROM unnest(f.proconfig) c
                                    WHERE c ~ '^search_path=' AND c ~ 'pg_temp"?$')
                 ORDER BY sig),
          '{}'::text[],
          'every API and SECURITY DEFINER function pins search_path, with pg_temp last');

SELECT is(ARRAY(SELECT sig FROM tego_funcs f
                 WHERE f.prosecdef
                   AND NOT EXISTS (SELECT 1 FROM unnest(f.proconfig) c
                                    WHERE c ~ '^search_path=(pg_catalog|tego)(, *(pg_catalog|tego))*, *pg_temp$')
                 ORDER BY sig),
          '{}'::text[],
          'SECURITY DEFINER functions search only pg_catalog and tego, then pg_temp');

-- DESIGN.md: "Functions pin search_path" -- functions that run SQL by name
-- (sql, plpgsql), internal helpers too.
SELECT is(ARRAY(SELECT sig FROM tego_funcs f
                 WHERE f.lanname IN ('sql', 'plpgsql')
                   AND NOT EXISTS (SELECT 1 FROM unnest(f.proconfig) c
                                    WHERE c ~ '^search_path=')
                 ORDER BY sig),
          '{}'::text[],
          'every sql and plpgsql function pins search_path, internal ones too');

SELECT is(ARRAY(SELECT sig FROM tego_funcs
                 WHERE NOT pure
                   AND pg_catalog.has_function_privilege('public', oid, 'EXECUTE')
                 ORDER BY sig),
          '{}'::text[],
          'PUBLIC can execute no tego function (but the pure ones)');

-- the API one by one
SELECT is_definer('tego', 'plugin_add', ARRAY['text', 'text', 'text', 'jsonb', 'boolean', 'boolean', 'text[]'], 'plugin_add is SECURITY DEFINER');
SELECT is_definer('tego', 'plugin_install', ARRAY['text[]'], 'plugin_install is SECURITY DEFINER');
SELECT is_definer('tego', 'plugin_uninstall', ARRAY['text[]'], 'plugin_uninstall is SECURITY DEFINER');
SELECT is_definer('tego', 'plugin_enable', ARRAY['text[]'], 'plugin_enable is SECURITY DEFINER');
SELECT is_definer('tego', 'plugin_disable', ARRAY['text[]'], 'plugin_disable is SECURITY DEFINER');
SELECT is_definer('tego', 'plugin_remove', ARRAY['text[]', 'boolean'], 'plugin_remove is SECURITY DEFINER');
SELECT is_definer('tego', 'plugin_upgrade', ARRAY['text', 'text'], 'plugin_upgrade is SECURITY DEFINER');
SELECT is_definer('tego', 'plugin_update', ARRAY['text', 'jsonb', 'bigint'], 'plugin_update is SECURITY DEFINER');
SELECT is_definer('tego', 'plugin_get', ARRAY['text'], 'plugin_get is SECURITY DEFINER');
SELECT is_definer('tego', 'plugin_list', ARRAY['boolean'], 'plugin_list is SECURITY DEFINER');
SELECT is_definer('tego', 'publish', ARRAY['text', 'jsonb'], 'publish is SECURITY DEFINER');
SELECT is_definer('tego', 'compact_events', ARRAY[]::name[], 'compact_events is SECURITY DEFINER');
SELECT is_definer('tego', 'events_since', ARRAY['bigint', 'text[]', 'integer'], 'events_since is SECURITY DEFINER');
SELECT is_definer('tego', 'event_seq', ARRAY[]::name[], 'event_seq is SECURITY DEFINER');
SELECT is_definer('tego', 'lease_acquire', ARRAY['text', 'text', 'interval', 'boolean'], 'lease_acquire is SECURITY DEFINER');
SELECT is_definer('tego', 'lease_renew', ARRAY['text', 'text', 'bigint', 'interval'], 'lease_renew is SECURITY DEFINER');
SELECT is_definer('tego', 'lease_release', ARRAY['text', 'text', 'bigint'], 'lease_release is SECURITY DEFINER');
SELECT is_definer('tego', 'lease_assert', ARRAY['text', 'bigint'], 'lease_assert is SECURITY DEFINER');
SELECT is_definer('tego', 'plugin_begin', ARRAY['text', 'text', 'text', 'interval'], 'plugin_begin is SECURITY DEFINER');
SELECT is_definer('tego', 'plugin_end', ARRAY['text', 'text', 'boolean', 'text'], 'plugin_end is SECURITY DEFINER');
SELECT is_definer('tego', 'wait_events', ARRAY['bigint', 'text[]', 'interval', 'integer'], 'wait_events is SECURITY DEFINER');
SELECT is_definer('tego', 'import_plugins', ARRAY['regclass'], 'import_plugins is SECURITY DEFINER');
SELECT function_privs_are('tego', 'wait_events', ARRAY['bigint', 'text[]', 'interval', 'integer'], 'public', ARRAY[]::name[]);
SELECT function_privs_are('tego', 'import_plugins', ARRAY['regclass'], 'public', ARRAY[]::name[]);
SELECT table_privs_are('tego', 'applicationPlugins', 'public', ARRAY[]::name[]);

SELECT function_privs_are('tego', 'plugin_add', ARRAY['text', 'text', 'text', 'jsonb', 'boolean', 'boolean', 'text[]'], 'public', ARRAY[]::name[]);
SELECT function_privs_are('tego', 'plugin_install', ARRAY['text[]'], 'public', ARRAY[]::name[]);
SELECT function_privs_are('tego', 'plugin_uninstall', ARRAY['text[]'], 'public', ARRAY[]::name[]);
SELECT function_privs_are('tego', 'plugin_enable', ARRAY['text[]'], 'public', ARRAY[]::name[]);
SELECT function_privs_are('tego', 'plugin_disable', ARRAY['text[]'], 'public', ARRAY[]::name[]);
SELECT function_privs_are('tego', 'plugin_remove', ARRAY['text[]', 'boolean'], 'public', ARRAY[]::name[]);
SELECT function_privs_are('tego', 'plugin_upgrade', ARRAY['text', 'text'], 'public', ARRAY[]::name[]);
SELECT function_privs_are('tego', 'plugin_update', ARRAY['text', 'jsonb', 'bigint'], 'public', ARRAY[]::name[]);
SELECT function_privs_are('tego', 'plugin_get', ARRAY['text'], 'public', ARRAY[]::name[]);
SELECT function_privs_are('tego', 'plugin_list', ARRAY['boolean'], 'public', ARRAY[]::name[]);
SELECT function_privs_are('tego', 'publish', ARRAY['text', 'jsonb'], 'public', ARRAY[]::name[]);
SELECT function_privs_are('tego', 'compact_events', ARRAY[]::name[], 'public', ARRAY[]::name[]);
SELECT function_privs_are('tego', 'events_since', ARRAY['bigint', 'text[]', 'integer'], 'public', ARRAY[]::name[]);
SELECT function_privs_are('tego', 'event_seq', ARRAY[]::name[], 'public', ARRAY[]::name[]);
SELECT function_privs_are('tego', 'lease_acquire', ARRAY['text', 'text', 'interval', 'boolean'], 'public', ARRAY[]::name[]);
SELECT function_privs_are('tego', 'lease_renew', ARRAY['text', 'text', 'bigint', 'interval'], 'public', ARRAY[]::name[]);
SELECT function_privs_are('tego', 'lease_release', ARRAY['text', 'text', 'bigint'], 'public', ARRAY[]::name[]);
SELECT function_privs_are('tego', 'lease_assert', ARRAY['text', 'bigint'], 'public', ARRAY[]::name[]);
SELECT function_privs_are('tego', 'plugin_begin', ARRAY['text', 'text', 'text', 'interval'], 'public', ARRAY[]::name[]);
SELECT function_privs_are('tego', 'plugin_end', ARRAY['text', 'text', 'boolean', 'text'], 'public', ARRAY[]::name[]);
SELECT function_privs_are('tego', 'app_status_set', ARRAY['text', 'text', 'text', 'text'], 'public', ARRAY[]::name[]);
SELECT function_privs_are('tego', 'app_maintaining_set', ARRAY['text', 'text', 'text', 'text', 'text'], 'public', ARRAY[]::name[]);
SELECT function_privs_are('tego', 'app_forget', ARRAY['text'], 'public', ARRAY[]::name[]);

SELECT table_privs_are('tego', 'plugins', 'public', ARRAY[]::name[]);
SELECT table_privs_are('tego', 'events', 'public', ARRAY[]::name[]);
SELECT table_privs_are('tego', 'lease_state', 'public', ARRAY[]::name[]);
SELECT table_privs_are('tego', 'leases', 'public', ARRAY[]::name[]);
SELECT table_privs_are('tego', 'plugin_operation_state', 'public', ARRAY[]::name[]);
SELECT table_privs_are('tego', 'plugin_operations', 'public', ARRAY[]::name[]);
SELECT table_privs_are('tego', 'apps', 'public', ARRAY[]::name[]);
SELECT sequence_privs_are('tego', 'plugins_id_seq', 'public', ARRAY[]::name[]);
SELECT schema_privs_are('tego', 'public', ARRAY[]::name[]);

-- ---------------------------------------------------------------------------
-- 2. A role without grants
-- ---------------------------------------------------------------------------
CREATE ROLE tego_tap_none NOLOGIN;

SET ROLE tego_tap_none;
SELECT throws_ok('SELECT tego.event_seq()', '42501', 'permission denied for schema tego',
                 'no USAGE on the schema: event_seq() is refused');
SELECT throws_ok('SELECT count(*) FROM tego.plugins', '42501', 'permission denied for schema tego',
                 'no USAGE on the schema: tego.plugins is refused');
RESET ROLE;

GRANT USAGE ON SCHEMA tego TO tego_tap_none;
SET ROLE tego_tap_none;
SELECT throws_ok($$SELECT * FROM tego.plugin_add('tap-none')$$, '42501',
                 'permission denied for function plugin_add', 'no grants: plugin_add refused');
SELECT throws_ok($$SELECT * FROM tego.plugin_install('tap-none')$$, '42501',
                 'permission denied for function plugin_install', 'no grants: plugin_install refused');
SELECT throws_ok($$SELECT * FROM tego.plugin_uninstall('tap-none')$$, '42501',
                 'permission denied for function plugin_uninstall', 'no grants: plugin_uninstall refused');
SELECT throws_ok($$SELECT * FROM tego.plugin_enable('tap-none')$$, '42501',
                 'permission denied for function plugin_enable', 'no grants: plugin_enable refused');
SELECT throws_ok($$SELECT * FROM tego.plugin_disable('tap-none')$$, '42501',
                 'permission denied for function plugin_disable', 'no grants: plugin_disable refused');
SELECT throws_ok($$SELECT * FROM tego.plugin_remove('{tap-none}')$$, '42501',
                 'permission denied for function plugin_remove', 'no grants: plugin_remove refused');
SELECT throws_ok($$SELECT * FROM tego.plugin_upgrade('tap-none', '2.0.0')$$, '42501',
                 'permission denied for function plugin_upgrade', 'no grants: plugin_upgrade refused');
SELECT throws_ok($$SELECT * FROM tego.plugin_update('tap-none', '{"version": "2.0.0"}')$$, '42501',
                 'permission denied for function plugin_update', 'no grants: plugin_update refused');
SELECT throws_ok($$SELECT tego.publish('tap_topic', '{"a": 1}')$$, '42501',
                 'permission denied for function publish', 'no grants: publish refused');
SELECT throws_ok($$SELECT tego.compact_events()$$, '42501',
                 'permission denied for function compact_events', 'no grants: compact_events refused');
SELECT throws_ok($$SELECT * FROM tego.plugin_get('tap-none')$$, '42501',
                 'permission denied for function plugin_get', 'no grants: plugin_get refused');
SELECT throws_ok($$SELECT * FROM tego.plugin_list()$$, '42501',
                 'permission denied for function plugin_list', 'no grants: plugin_list refused');
SELECT throws_ok($$SELECT * FROM tego.events_since(0)$$, '42501',
                 'permission denied for function events_since', 'no grants: events_since refused');
SELECT throws_ok($$SELECT tego.event_seq()$$, '42501',
                 'permission denied for function event_seq', 'no grants: event_seq refused');
SELECT throws_ok($$SELECT count(*) FROM tego.plugins$$, '42501',
                 'permission denied for table plugins', 'no grants: tego.plugins cannot be read');
SELECT throws_ok($$SELECT count(*) FROM tego.events$$, '42501',
                 'permission denied for table events', 'no grants: tego.events cannot be read');
SELECT throws_ok($$INSERT INTO tego.events VALUES (1000000, 't', 'e', NULL, '{}', now())$$, '42501',
                 'permission denied for table events', 'no grants: tego.events cannot be written');
RESET ROLE;

SELECT table_privs_are('tego', 'plugins', 'tego_tap_none', ARRAY[]::name[]);
SELECT table_privs_are('tego', 'events', 'tego_tap_none', ARRAY[]::name[]);
SELECT is(ARRAY(SELECT sig FROM tego_funcs
                 WHERE NOT pure
                   AND pg_catalog.has_function_privilege('tego_tap_none', oid, 'EXECUTE')
                 ORDER BY sig),
          '{}'::text[],
          'a role without grants can execute no tego function');

-- ---------------------------------------------------------------------------
-- 3. The README's application role
-- ---------------------------------------------------------------------------
CREATE ROLE tego_tap_app NOLOGIN;
GRANT USAGE ON SCHEMA tego TO tego_tap_app;
GRANT EXECUTE ON FUNCTION
    tego.plugin_add(text, text, text, jsonb, boolean, boolean, text[]),
    tego.plugin_install(text[]), tego.plugin_uninstall(text[]),
    tego.plugin_enable(text[]),
    tego.plugin_disable(text[]), tego.plugin_remove(text[], boolean),
    tego.plugin_upgrade(text, text), tego.plugin_update(text, jsonb, bigint),
    tego.plugin_get(text), tego.plugin_list(boolean),
    tego.publish(text, jsonb), tego.event_seq(),
    tego.events_since(bigint, text[], integer),
    tego.wait_events(bigint, text[], interval, integer)
  TO tego_tap_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON tego."applicationPlugins" TO tego_tap_app;

SELECT function_privs_are('tego', 'plugin_add', ARRAY['text', 'text', 'text', 'jsonb', 'boolean', 'boolean', 'text[]'], 'tego_tap_app', ARRAY['EXECUTE']);
SELECT function_privs_are('tego', 'compact_events', ARRAY[]::name[], 'tego_tap_app', ARRAY[]::name[]);
SELECT table_privs_are('tego', 'plugins', 'tego_tap_app', ARRAY[]::name[]);
SELECT table_privs_are('tego', 'events', 'tego_tap_app', ARRAY[]::name[]);

SET ROLE tego_tap_app;
SELECT lives_ok($$SELECT * FROM tego.plugin_add('tap-a', '@tap/a', '1.0.0')$$, 'app: plugin_add');
SELECT lives_ok($$SELECT * FROM tego.plugin_add('tap-b', NULL, '1.0.0', depends_on => '{tap-a}')$$,
                'app: plugin_add with depends_on');
SELECT lives_ok($$SELECT * FROM tego.plugin_install('tap-a')$$, 'app: plugin_install');
SELECT lives_ok($$SELECT * FROM tego.plugin_enable('tap-a', 'tap-b')$$, 'app: plugin_enable');
SELECT lives_ok($$SELECT * FROM tego.plugin_install('tap-b')$$, 'app: plugin_install of an enabled plugin');
SELECT lives_ok($$SELECT * FROM tego.plugin_uninstall('tap-a')$$, 'app: plugin_uninstall');
SELECT is((SELECT enabled::text || ' ' || installed::text FROM tego.plugin_get('tap-a')), 'true false',
          'app: plugin_uninstall marked it not installed and left it enabled');
SELECT lives_ok($$SELECT * FROM tego.plugin_disable('tap-b')$$, 'app: plugin_disable');
SELECT lives_ok($$SELECT * FROM tego.plugin_upgrade('tap-b', '2.0.0')$$, 'app: plugin_upgrade');
SELECT lives_ok($$SELECT * FROM tego.plugin_update('tap-b', '{"options": {"x": 1}}')$$, 'app: plugin_update');
SELECT lives_ok($$SELECT tego.publish('tap_topic', '{"hello": "world"}')$$, 'app: publish');
SELECT is((SELECT state FROM tego.plugin_get('tap-a')), 'enabled', 'app: plugin_get reads the row');
SELECT is((SELECT version || ' ' || state || ' ' || (options->>'x')
             FROM tego.plugin_get('tap-b')), '2.0.0 installed 1',
          'app: its changes are applied');
SELECT ok((SELECT array_agg(name) FROM tego.plugin_list()) @> '{tap-a,tap-b}',
          'app: plugin_list lists its plugins');
SELECT lives_ok($$SELECT count(*) FROM tego.events_since(0)$$, 'app: events_since');
SELECT lives_ok($$SELECT tego.event_seq()$$, 'app: event_seq');
SELECT lives_ok($$SELECT count(*) FROM tego.wait_events(0, timeout => '0')$$, 'app: wait_events');
SELECT lives_ok($$INSERT INTO tego."applicationPlugins" (name, enabled, installed) VALUES ('tap-orm', true, true)$$,
                'app: INSERT into the applicationPlugins view');
SELECT lives_ok($$UPDATE tego."applicationPlugins" SET enabled = false WHERE name = 'tap-orm'$$,
                'app: UPDATE of the applicationPlugins view');
SELECT is((SELECT state FROM tego.plugin_get('tap-orm')), 'installed', 'app: its view writes went through the lifecycle');
SELECT lives_ok($$DELETE FROM tego."applicationPlugins" WHERE name = 'tap-orm'$$,
                'app: DELETE from the applicationPlugins view');
SELECT throws_ok($$SELECT * FROM tego.import_plugins('tego.plugins')$$, '42501',
                 'permission denied for function import_plugins', 'app: import_plugins refused');
SELECT lives_ok($$SELECT * FROM tego.plugin_remove('{tap-b}')$$, 'app: plugin_remove');
SELECT is((SELECT count(*)::int FROM tego.plugin_list() WHERE name = 'tap-b'), 0,
          'app: the plugin is removed');
-- not granted by the README: compaction, the tables
SELECT throws_ok($$SELECT tego.compact_events()$$, '42501',
                 'permission denied for function compact_events', 'app: compact_events refused');
SELECT throws_ok($$SELECT count(*) FROM tego.plugins$$, '42501',
                 'permission denied for table plugins', 'app: tego.plugins not readable directly');
SELECT throws_ok($$SELECT count(*) FROM tego.events$$, '42501',
                 'permission denied for table events', 'app: tego.events not readable directly');
SELECT throws_ok($$UPDATE tego.plugins SET enabled = false$$, '42501',
                 'permission denied for table plugins', 'app: tego.plugins not writable directly');
SELECT throws_ok($$DELETE FROM tego.events$$, '42501',
                 'permission denied for table events', 'app: tego.events not writable directly');
RESET ROLE;

SELECT is(ARRAY(SELECT sig FROM tego_funcs
                 WHERE proname ~ '^_' AND NOT pure
                   AND pg_catalog.has_function_privilege('tego_tap_app', oid, 'EXECUTE')
                 ORDER BY sig),
          '{}'::text[],
          'app: no internal (underscore) function is executable (but the pure ones)');

-- what the application role did is there for everyone else
SELECT is((SELECT count(*)::int FROM tego.plugins WHERE name = 'tap-a' AND enabled), 1,
          'the application role''s changes are visible to the superuser');

-- ---------------------------------------------------------------------------
-- 4. The README's read-only role
-- ---------------------------------------------------------------------------
CREATE ROLE tego_tap_ro NOLOGIN;
GRANT USAGE ON SCHEMA tego TO tego_tap_ro;
GRANT SELECT ON tego.plugins, tego.events TO tego_tap_ro;
GRANT EXECUTE ON FUNCTION
    tego.plugin_get(text), tego.plugin_list(boolean),
    tego.event_seq(), tego.events_since(bigint, text[], integer),
    tego.wait_events(bigint, text[], interval, integer)
  TO tego_tap_ro;
GRANT SELECT ON tego."applicationPlugins" TO tego_tap_ro;

SELECT table_privs_are('tego', 'plugins', 'tego_tap_ro', ARRAY['SELECT']);
SELECT table_privs_are('tego', 'events', 'tego_tap_ro', ARRAY['SELECT']);
SELECT function_privs_are('tego', 'plugin_get', ARRAY['text'], 'tego_tap_ro', ARRAY['EXECUTE']);
SELECT function_privs_are('tego', 'plugin_list', ARRAY['boolean'], 'tego_tap_ro', ARRAY['EXECUTE']);
SELECT function_privs_are('tego', 'events_since', ARRAY['bigint', 'text[]', 'integer'], 'tego_tap_ro', ARRAY['EXECUTE']);
SELECT function_privs_are('tego', 'event_seq', ARRAY[]::name[], 'tego_tap_ro', ARRAY['EXECUTE']);
SELECT is(ARRAY(SELECT proname::text FROM tego_funcs
                 WHERE NOT pure
                   AND pg_catalog.has_function_privilege('tego_tap_ro', oid, 'EXECUTE')
                 ORDER BY proname),
          ARRAY['event_seq', 'events_since', 'plugin_get', 'plugin_list', 'wait_events'],
          'read-only: exactly the five read functions are executable');

SET ROLE tego_tap_ro;
SELECT is((SELECT state FROM tego.plugins WHERE name = 'tap-a'), 'enabled', 'read-only: reads tego.plugins');
SELECT lives_ok($$SELECT count(*) FROM tego.events$$, 'read-only: reads tego.events');
SELECT is((SELECT name FROM tego.plugin_get('tap-a')), 'tap-a', 'read-only: plugin_get');
SELECT ok((SELECT count(*) FROM tego.plugin_list(true) WHERE name = 'tap-a') = 1,
          'read-only: plugin_list');
SELECT lives_ok($$SELECT count(*) FROM tego.events_since(0, '{tego_plugins}', 10)$$, 'read-only: events_since');
SELECT lives_ok($$SELECT tego.event_seq()$$, 'read-only: event_seq');
SELECT lives_ok($$SELECT count(*) FROM tego.wait_events(0, timeout => '0')$$, 'read-only: wait_events');
SELECT is((SELECT enabled FROM tego."applicationPlugins" WHERE name = 'tap-a'), true,
          'read-only: reads the applicationPlugins view');
SELECT throws_ok($$UPDATE tego."applicationPlugins" SET enabled = false WHERE name = 'tap-a'$$, '42501',
                 'permission denied for view applicationPlugins', 'read-only: the view is not writable');

SELECT throws_ok($$SELECT * FROM tego.plugin_add('tap-ro')$$, '42501',
                 'permission denied for function plugin_add', 'read-only: plugin_add refused');
SELECT throws_ok($$SELECT * FROM tego.plugin_install('tap-a')$$, '42501',
                 'permission denied for function plugin_install', 'read-only: plugin_install refused');
SELECT throws_ok($$SELECT * FROM tego.plugin_uninstall('tap-a')$$, '42501',
                 'permission denied for function plugin_uninstall', 'read-only: plugin_uninstall refused');
SELECT throws_ok($$SELECT * FROM tego.plugin_enable('tap-a')$$, '42501',
                 'permission denied for function plugin_enable', 'read-only: plugin_enable refused');
SELECT throws_ok($$SELECT * FROM tego.plugin_disable('tap-a')$$, '42501',
                 'permission denied for function plugin_disable', 'read-only: plugin_disable refused');
SELECT throws_ok($$SELECT * FROM tego.plugin_remove('{tap-a}', true)$$, '42501',
                 'permission denied for function plugin_remove', 'read-only: plugin_remove refused');
SELECT throws_ok($$SELECT * FROM tego.plugin_upgrade('tap-a', '9.0.0')$$, '42501',
                 'permission denied for function plugin_upgrade', 'read-only: plugin_upgrade refused');
SELECT throws_ok($$SELECT * FROM tego.plugin_update('tap-a', '{"version": "9.0.0"}')$$, '42501',
                 'permission denied for function plugin_update', 'read-only: plugin_update refused');
SELECT throws_ok($$SELECT tego.publish('tap_topic', '{"a": 1}')$$, '42501',
                 'permission denied for function publish', 'read-only: publish refused');
SELECT throws_ok($$SELECT tego.compact_events()$$, '42501',
                 'permission denied for function compact_events', 'read-only: compact_events refused');
SELECT throws_ok($$INSERT INTO tego.plugins (name) VALUES ('tap-ro')$$, '42501',
                 'permission denied for table plugins', 'read-only: no INSERT on tego.plugins');
SELECT throws_ok($$UPDATE tego.plugins SET enabled = false WHERE name = 'tap-a'$$, '42501',
                 'permission denied for table plugins', 'read-only: no UPDATE on tego.plugins');
SELECT throws_ok($$DELETE FROM tego.plugins WHERE name = 'tap-a'$$, '42501',
                 'permission denied for table plugins', 'read-only: no DELETE on tego.plugins');
SELECT throws_ok($$TRUNCATE tego.plugins$$, '42501',
                 'permission denied for table plugins', 'read-only: no TRUNCATE on tego.plugins');
SELECT throws_ok($$INSERT INTO tego.events VALUES (1000000, 't', 'e', NULL, '{}', now())$$, '42501',
                 'permission denied for table events', 'read-only: no INSERT on tego.events');
SELECT throws_ok($$UPDATE tego.events SET topic = 'x'$$, '42501',
                 'permission denied for table events', 'read-only: no UPDATE on tego.events');
SELECT throws_ok($$DELETE FROM tego.events$$, '42501',
                 'permission denied for table events', 'read-only: no DELETE on tego.events');
SELECT throws_ok($$SELECT nextval('tego.plugins_id_seq')$$, '42501',
                 'permission denied for sequence plugins_id_seq', 'read-only: no nextval on the id sequence');
RESET ROLE;

SELECT is((SELECT state || ' ' || version FROM tego.plugins WHERE name = 'tap-a'), 'enabled 1.0.0',
          'the read-only role changed nothing');

-- ---------------------------------------------------------------------------
-- 5. compact_events() needs its own grant
-- ---------------------------------------------------------------------------
CREATE ROLE tego_tap_admin NOLOGIN;
GRANT USAGE ON SCHEMA tego TO tego_tap_admin;
GRANT EXECUTE ON FUNCTION tego.compact_events() TO tego_tap_admin;
SET ROLE tego_tap_admin;
SELECT lives_ok($$SELECT tego.compact_events()$$, 'admin: compact_events with its grant');
SELECT throws_ok($$SELECT * FROM tego.plugin_add('tap-admin')$$, '42501',
                 'permission denied for function plugin_add', 'admin: compaction grant gives no lifecycle');
RESET ROLE;

-- ---------------------------------------------------------------------------
-- a grant to a group reaches its members; revoking it takes it away
-- ---------------------------------------------------------------------------
CREATE ROLE tego_tap_member NOLOGIN IN ROLE tego_tap_app;
SET ROLE tego_tap_member;
SELECT lives_ok($$SELECT tego.publish('tap_topic', '{"member": true}')$$,
                'a member of the application role can publish');
RESET ROLE;
REVOKE EXECUTE ON FUNCTION tego.publish(text, jsonb) FROM tego_tap_app;
SET ROLE tego_tap_member;
SELECT throws_ok($$SELECT tego.publish('tap_topic', '{"member": true}')$$, '42501',
                 'permission denied for function publish', 'after REVOKE the member cannot publish');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
