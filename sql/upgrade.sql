--
-- Upgrade from the first release: CREATE EXTENSION tego VERSION '0.1.0',
-- then ALTER EXTENSION tego UPDATE, keeping its data.
--
SET client_min_messages = warning;
\set SHOW_CONTEXT never
DROP EXTENSION tego;
CREATE EXTENSION tego VERSION '0.1.0';
SELECT extversion FROM pg_extension WHERE extname = 'tego';
SELECT count(*) FROM tego.plugin_add('kept');
SELECT count(*) FROM tego.plugin_enable('kept');
SELECT to_regprocedure('tego.wait_events(bigint,text[],interval,integer)') IS NULL AS no_wait_events;

ALTER EXTENSION tego UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'tego';
SELECT name, state, revision FROM tego.plugins;
SELECT seq, key FROM tego.wait_events(0, timeout => '0');
SELECT * FROM tego.import_plugins(NULL);

-- what 0.2.0 adds belongs to the extension
SELECT pg_describe_object(classid, objid, 0) AS object
  FROM pg_depend
 WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
   AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'tego')
   AND (pg_describe_object(classid, objid, 0) ~ 'wait_events|import_plugins|applicationPlugins')
 ORDER BY 1;

-- a fresh CREATE EXTENSION installs the default version: the first
-- release's script, then this upgrade
DROP EXTENSION tego;
CREATE EXTENSION tego;
SELECT extversion FROM pg_extension WHERE extname = 'tego';
