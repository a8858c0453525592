--
-- Application status: app_status_set, app_maintaining_set, app_forget and
-- the view tego.apps (shared memory; notifications are tested in TAP).
--
\set SHOW_CONTEXT never
CREATE ROLE regress_apps_app NOLOGIN;
GRANT USAGE ON SCHEMA tego TO regress_apps_app;
GRANT EXECUTE ON FUNCTION
    tego.app_status_set(text, text, text, text),
    tego.app_maintaining_set(text, text, text, text, text),
    tego.app_forget(text), tego._apps()
  TO regress_apps_app;
GRANT SELECT ON tego.apps TO regress_apps_app;
SET ROLE regress_apps_app;

CREATE TEMP VIEW app_state AS
SELECT app, status, previous_status, command, maintaining_status, message,
       error, version, pid = pg_backend_pid() AS mine
  FROM tego.apps ORDER BY app;

-- AppSupervisor: statuses as the processes set them
SELECT tego.app_status_set('main', 'initializing');
SELECT tego.app_status_set('main', 'running', 'listening on :13000');
SELECT tego.app_status_set('sub-a', 'error', NULL, 'database "a" does not exist');
SELECT * FROM app_state;

-- maintaining: command_begin saves the status and sets commanding,
-- command_running reports progress, command_end restores the status
SELECT tego.app_maintaining_set('main', 'pm.enable', 'command_begin', 'enabling crm');
SELECT app, status, previous_status, command, maintaining_status, message FROM app_state WHERE app = 'main';
SELECT tego.app_maintaining_set('main', 'pm.enable', 'command_running', 'loading crm');
SELECT app, status, previous_status, maintaining_status, message FROM app_state WHERE app = 'main';
SELECT tego.app_maintaining_set('main', 'pm.enable', 'command_end');
SELECT app, status, previous_status, maintaining_status, message, error FROM app_state WHERE app = 'main';

-- command_error without an error restores the status, with one (fatal)
-- sets error and keeps it
SELECT tego.app_maintaining_set('main', 'db.sync', 'command_begin');
SELECT tego.app_maintaining_set('main', 'db.sync', 'command_error', 'retrying later');
SELECT app, status, previous_status, maintaining_status, message, error FROM app_state WHERE app = 'main';
SELECT tego.app_maintaining_set('main', 'upgrade', 'command_begin');
SELECT tego.app_maintaining_set('main', 'upgrade', 'command_error', 'migration failed', 'relation "x" does not exist');
SELECT app, status, previous_status, command, maintaining_status, message, error FROM app_state WHERE app = 'main';
SELECT tego.app_status_set('main', 'running');

-- maintaining an app not seen before starts it as initializing
SELECT tego.app_maintaining_set('sub-b', 'install', 'command_begin');
SELECT app, status, previous_status, maintaining_status FROM app_state WHERE app = 'sub-b';

-- a change takes effect at once, even if the transaction rolls back
BEGIN;
SELECT tego.app_status_set('sub-b', 'stopped');
ROLLBACK;
SELECT app, status FROM app_state WHERE app = 'sub-b';

-- every change counts
SELECT app, version FROM app_state;

-- forget
SELECT tego.app_forget('sub-b');
SELECT tego.app_forget('sub-b');
SELECT app FROM app_state;

-- bad input: clear errors, nothing changed
SELECT tego.app_status_set(NULL, 'running');
SELECT tego.app_status_set('main', NULL);
SELECT tego.app_status_set('', 'running');
SELECT tego.app_status_set(repeat('a', 64), 'running');
SELECT tego.app_status_set('main', 'started');
SELECT tego.app_status_set('main', 'running', repeat('m', 1025));
SELECT tego.app_status_set('main', 'running', NULL, repeat('e', 1025));
SELECT tego.app_maintaining_set('main', NULL, 'command_begin');
SELECT tego.app_maintaining_set('main', '', 'command_begin');
SELECT tego.app_maintaining_set('main', 'pm.enable', NULL);
SELECT tego.app_maintaining_set('main', 'pm.enable', 'command_started');
SELECT tego.app_forget(NULL);
SELECT app, status, version FROM app_state;
-- (the 1024-byte limit is tego.max_message_bytes: a message that long is fine)
SELECT tego.app_status_set('main', 'running', repeat('m', 1024));
SELECT app, octet_length(message) FROM app_state WHERE app = 'main';

-- one database keeps at most tego.max_apps_per_database apps (by default
-- half of tego.max_apps, 100 here)
SELECT count(tego.app_status_set('many-' || g, 'running')) FROM generate_series(1, 48) g;
SELECT count(*) FROM tego.apps;
SELECT tego.app_status_set('one-too-many', 'running');
SELECT tego.app_status_set('main', 'stopped');
RESET ROLE;
-- one role at most tego.max_apps_per_role (by default as many)
SET tego.max_apps_per_database = 1000;
SET tego.max_apps_per_role = 10;
SET ROLE regress_apps_app;
SELECT tego.app_status_set('one-too-many', 'running');
RESET ROLE;
-- tego.max_apps caps the apps shared memory holds
SET tego.max_apps_per_database = 1000;
RESET tego.max_apps_per_role;
SET ROLE regress_apps_app;
SELECT count(tego.app_status_set('more-' || g, 'running')) FROM generate_series(1, 50) g;
SELECT tego.app_status_set('one-too-many', 'running');
SELECT count(*) FILTER (WHERE tego.app_forget('many-' || g)) FROM generate_series(1, 48) g;
SELECT count(*) FILTER (WHERE tego.app_forget('more-' || g)) FROM generate_series(1, 50) g;
SELECT tego.app_status_set('one-more', 'running');
RESET ROLE;
RESET tego.max_apps_per_database;

-- an app belongs to the role that set it first: another role may not
-- change or forget it, and reads its status, not its message, error or pid
CREATE ROLE regress_apps_other NOLOGIN;
GRANT USAGE ON SCHEMA tego TO regress_apps_other;
GRANT EXECUTE ON FUNCTION
    tego.app_status_set(text, text, text, text),
    tego.app_maintaining_set(text, text, text, text, text),
    tego.app_forget(text), tego._apps()
  TO regress_apps_other;
GRANT SELECT ON tego.apps TO regress_apps_other;
SET ROLE regress_apps_app;
SELECT tego.app_status_set('main', 'error', 'failed', 'password authentication failed');
SET ROLE regress_apps_other;
SELECT tego.app_status_set('main', 'running');
SELECT tego.app_maintaining_set('main', 'pm.enable', 'command_begin');
SELECT tego.app_forget('main');
SELECT app, status, message, error, pid, version, owner FROM tego.apps ORDER BY app;
SELECT app, status, message, error, pid FROM tego._apps() ORDER BY app;
-- its own app is its own
SELECT tego.app_status_set('other-app', 'running', 'mine');
SELECT app, message, owner FROM tego.apps WHERE owner = current_user;
SELECT tego.app_forget('other-app');
RESET ROLE;
-- a member of the owner may change it
GRANT regress_apps_app TO regress_apps_other;
SET ROLE regress_apps_other;
SELECT tego.app_status_set('main', 'running');
SELECT app, status, message, owner FROM tego.apps WHERE app = 'main';
RESET ROLE;
REVOKE regress_apps_app FROM regress_apps_other;

-- a role without grants can do nothing
CREATE ROLE regress_apps_nobody NOLOGIN;
GRANT USAGE ON SCHEMA tego TO regress_apps_nobody;
SET ROLE regress_apps_nobody;
SELECT tego.app_status_set('main', 'stopped');
SELECT count(*) FROM tego.apps;
SELECT count(*) FROM tego._app_entries();
RESET ROLE;

SELECT tego.app_forget(app) FROM tego.apps;
DROP VIEW app_state;
DROP OWNED BY regress_apps_app, regress_apps_other, regress_apps_nobody;
DROP ROLE regress_apps_app, regress_apps_other, regress_apps_nobody;

-- tego.status(): one row of health
SELECT preloaded, scheduler_pid IS NOT NULL AS scheduler_found,
       scheduler_database, scheduler_started <= now() AS started_before,
       event_seq = tego.event_seq() AS event_seq_ok,
       coalesce(oldest_event_seq <= event_seq, event_seq = 0) AS oldest_ok,
       max_running_jobs, job_workers <= max_job_workers AS pool_ok,
       apps, max_apps, max_message_bytes, notifiers <= max_notifiers AS notifiers_ok,
       leases >= 0 AS leases_ok, max_leases, plugin_operations,
       seq_cache <= seq_cache_size AS seq_cache_ok
  FROM tego.status();
