--
-- Plugin operation guards: plugin_begin / plugin_end.
--
\set SHOW_CONTEXT never
CREATE ROLE regress_ops_app NOLOGIN;
GRANT USAGE ON SCHEMA tego TO regress_ops_app;
GRANT EXECUTE ON FUNCTION
    tego.plugin_add(text, text, text, jsonb, boolean, boolean, text[]),
    tego.plugin_begin(text, text, text, interval),
    tego.plugin_end(text, text, boolean, text)
  TO regress_ops_app;
GRANT SELECT ON tego.plugin_operations TO regress_ops_app;
SELECT tego.event_seq() AS start \gset
SET ROLE regress_ops_app;
SELECT name FROM tego.plugin_add('crm');
SELECT name FROM tego.plugin_add('mail');

-- one holder runs the upgrade; another is refused and told who runs it
SELECT name, operation, holder, session_pid = pg_backend_pid() AS mine, live
  FROM tego.plugin_begin('crm', 'upgrade', 'worker-1');
\set VERBOSITY terse
SELECT tego.plugin_begin('crm', 'upgrade', 'worker-2');
SELECT tego.plugin_begin('crm', 'remove', 'worker-2');
\set VERBOSITY default
-- the same holder asking again keeps it
SELECT name, operation, holder FROM tego.plugin_begin('crm', 'upgrade', 'worker-1');
-- another plugin is independent
SELECT name, operation, holder FROM tego.plugin_begin('mail', 'install', 'worker-2');
SELECT name, operation, holder, live FROM tego.plugin_operations ORDER BY name;

-- only the holder ends it
SELECT tego.plugin_end('crm', 'worker-2', true);
SELECT tego.plugin_end('crm', 'worker-1', true);
SELECT tego.plugin_end('crm', 'worker-1', true);
SELECT tego.plugin_end('mail', 'worker-2', false, 'migration 42 failed');
SELECT count(*) AS under_way FROM tego.plugin_operations;
SELECT count(*) AS advisory_locks_left FROM pg_locks
 WHERE locktype = 'advisory' AND pid = pg_backend_pid();

-- a guard whose timeout has passed is taken over
SELECT operation, holder FROM tego.plugin_begin('crm', 'install', 'worker-1', '10 milliseconds');
SELECT pg_sleep(0.05);
SELECT name, holder, live FROM tego.plugin_operations;
SELECT operation, holder FROM tego.plugin_begin('crm', 'upgrade', 'worker-2');
SELECT tego.plugin_end('crm', 'worker-1', true);
SELECT tego.plugin_end('crm', 'worker-2', true);

-- events on tego_plugins
RESET ROLE;
-- (no holder or error: tego.plugin_operations shows them to members of the owner only)
SELECT seq - :start AS n, event, key, payload->>'operation' AS operation,
       payload->>'owner' AS owner, payload->>'succeeded' AS succeeded,
       payload ?| ARRAY['holder', 'error'] AS names_holder, payload #>> '{previous,ended}' AS previous_ended
  FROM tego.events_since(:start, ARRAY['tego_plugins'])
 WHERE event LIKE 'plugin-operation-%'
 ORDER BY seq;
SET ROLE regress_ops_app;

-- bad input: clear errors, nothing changed
SELECT tego.plugin_begin(NULL, 'upgrade', 'worker-1');
SELECT tego.plugin_begin('crm', NULL, 'worker-1');
SELECT tego.plugin_begin('crm', 'enable', 'worker-1');
SELECT tego.plugin_begin('crm', 'upgrade', NULL);
SELECT tego.plugin_begin('crm', 'upgrade', '');
SELECT tego.plugin_begin('crm', 'upgrade', repeat('h', 201));
SELECT tego.plugin_begin('crm', 'upgrade', 'worker-1', NULL);
SELECT tego.plugin_begin('crm', 'upgrade', 'worker-1', '0 seconds');
SELECT tego.plugin_begin('crm', 'upgrade', 'worker-1', '2 days');
SELECT tego.plugin_begin('nosuch', 'upgrade', 'worker-1');
SELECT tego.plugin_end(NULL, 'worker-1', true);
SELECT tego.plugin_end('crm', NULL, true);
SELECT tego.plugin_end('crm', 'worker-1', NULL);
SELECT tego.plugin_end('crm', 'worker-1', false, repeat('e', 8193));
SELECT count(*) AS under_way FROM tego.plugin_operations;
RESET ROLE;

-- months have no fixed length: refused
SET ROLE regress_ops_app;
SELECT tego.plugin_begin('crm', 'upgrade', 'worker-1', '1 month -30 days 00:00:01');
SELECT tego.plugin_begin('crm', 'upgrade', 'worker-1', '-1 day 23:59:59');
RESET ROLE;

-- a guard belongs to the role that took it: another role may neither end
-- it nor take it over, and does not read its holder
CREATE ROLE regress_ops_other NOLOGIN;
GRANT USAGE ON SCHEMA tego TO regress_ops_other;
GRANT EXECUTE ON FUNCTION
    tego.plugin_begin(text, text, text, interval),
    tego.plugin_end(text, text, boolean, text)
  TO regress_ops_other;
GRANT SELECT ON tego.plugin_operations TO regress_ops_other;
SET ROLE regress_ops_app;
SELECT name, operation, holder, owner FROM tego.plugin_begin('crm', 'install', 'worker-1');
SET ROLE regress_ops_other;
SELECT tego.plugin_end('crm', 'worker-1', true);
SELECT tego.plugin_begin('crm', 'install', 'worker-1');
SELECT name, operation, holder, session_pid, owner, live FROM tego.plugin_operations;
SET ROLE regress_ops_app;
SELECT tego.plugin_end('crm', 'worker-1', true);
RESET ROLE;

-- a role without grants can do nothing
CREATE ROLE regress_ops_nobody NOLOGIN;
GRANT USAGE ON SCHEMA tego TO regress_ops_nobody;
SET ROLE regress_ops_nobody;
SELECT tego.plugin_begin('crm', 'upgrade', 'intruder');
SELECT count(*) FROM tego.plugin_operations;
RESET ROLE;

SELECT name FROM tego.plugin_remove('{crm,mail}');
DROP OWNED BY regress_ops_app, regress_ops_other, regress_ops_nobody;
DROP ROLE regress_ops_app, regress_ops_other, regress_ops_nobody;
