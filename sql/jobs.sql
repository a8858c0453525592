--
-- Jobs: scheduling, changing, removing, running now; app-job claims; the
-- security model; and every error.  The scheduler runs in another database
-- (tego.database), so nothing fires here: this file checks the API.
--
SET tego.client_id = 'regress-jobs';
CREATE ROLE regress_job_owner LOGIN;
CREATE ROLE regress_job_other LOGIN;
CREATE ROLE regress_job_su SUPERUSER NOLOGIN;
GRANT USAGE ON SCHEMA tego TO regress_job_owner, regress_job_other;
GRANT EXECUTE ON FUNCTION
    tego.schedule(text, text, text, name, name, text, interval, text, text, boolean),
    tego.schedule_app(text, text, jsonb, text, name, text, text, integer, interval, interval, boolean),
    tego.unschedule(text),
    tego.alter_job(text, text, text, jsonb, name, name, text, interval, text, text, integer, interval, interval, boolean),
    tego.run_now(text), tego.job_claim(text, text[], integer),
    tego.job_heartbeat(bigint, text), tego.job_finish(bigint, text, boolean, text)
  TO regress_job_owner, regress_job_other;
GRANT SELECT ON tego.jobs, tego.job_runs TO regress_job_owner, regress_job_other;
SELECT tego.event_seq() AS start \gset

-- an SQL job, run as its owner role in this database
SELECT name, kind, schedule, timezone, command, database = current_database() AS here,
       username, active, max_runtime, overlap, misfire
  FROM tego.schedule('vacuum-sessions', '*/5 * * * *', 'DELETE FROM sessions',
                     username => 'regress_job_owner', max_runtime => '1 minute');
-- an app job: a payload for whichever application process claims the run
SELECT name, kind, schedule, timezone, payload, username, max_attempts,
       claim_timeout, heartbeat_timeout
  FROM tego.schedule_app('send-digest', '0 0 8 * * mon-fri', '{"template": "digest"}',
                         timezone => 'Europe/London', username => 'regress_job_owner');
SELECT seq - :start AS n, topic, event, key, payload->>'kind' AS kind
  FROM tego.events WHERE seq > :start ORDER BY seq;

-- alter: only what is given changes; a change that changes nothing is a no-op
SELECT name, schedule, overlap, active
  FROM tego.alter_job('vacuum-sessions', schedule => '*/10 * * * *', overlap => 'queue');
SELECT tego.event_seq() AS before \gset
SELECT name, schedule FROM tego.alter_job('vacuum-sessions', schedule => '*/10 * * * *');
SELECT tego.event_seq() - :before AS new_events;
SELECT name, active FROM tego.alter_job('send-digest', active => false);

-- run_now queues a manual run
SELECT tego.run_now('vacuum-sessions') > 0 AS queued;
SELECT job_name, status, manual, attempt FROM tego.job_runs ORDER BY run_id;

-- errors: schedules, time zones, names, arguments
\set VERBOSITY default
\set SHOW_CONTEXT never
SELECT tego.schedule('bad', '61 * * * *', 'SELECT 1', username => 'regress_job_owner');
SELECT tego.schedule('bad', '* * * *', 'SELECT 1', username => 'regress_job_owner');
SELECT tego.schedule('bad', '0 seconds', 'SELECT 1', username => 'regress_job_owner');
SELECT tego.schedule('bad', '* * * * *', 'SELECT 1', username => 'regress_job_owner', timezone => 'Nowhere/Land');
SELECT tego.schedule('bad', '* * * * *', 'SELECT 1', database => 'no_such_db', username => 'regress_job_owner');
SELECT tego.schedule('bad', '* * * * *', 'SELECT 1', username => 'regress_no_such_role');
SELECT tego.schedule('vacuum-sessions', '* * * * *', 'SELECT 1', username => 'regress_job_owner');
SELECT tego.schedule(NULL, '* * * * *', 'SELECT 1', username => 'regress_job_owner');
SELECT tego.schedule('bad', NULL, 'SELECT 1', username => 'regress_job_owner');
SELECT tego.schedule('bad', '* * * * *', NULL, username => 'regress_job_owner');
SELECT tego.schedule('', '* * * * *', 'SELECT 1', username => 'regress_job_owner');
SELECT tego.schedule(repeat('j', 201), '* * * * *', 'SELECT 1', username => 'regress_job_owner');
SELECT tego.schedule('bad', '* * * * *', '  ', username => 'regress_job_owner');
SELECT tego.schedule('bad', '* * * * *', 'SELECT 1', username => 'regress_job_owner', max_runtime => '0');
SELECT tego.schedule('bad', '* * * * *', 'SELECT 1', username => 'regress_job_owner', max_runtime => '-1 second');
SELECT tego.schedule('bad', '* * * * *', 'SELECT 1', username => 'regress_job_owner', overlap => 'maybe');
SELECT tego.schedule('bad', '* * * * *', 'SELECT 1', username => 'regress_job_owner', misfire => NULL);
SELECT tego.schedule_app('bad', '* * * * *', NULL, username => 'regress_job_owner');
SELECT tego.schedule_app('bad', '* * * * *', '{}', username => 'regress_job_owner', max_attempts => 0);
SELECT tego.schedule_app('bad', '* * * * *', '{}', username => 'regress_job_owner', claim_timeout => '0');
SELECT tego.alter_job('no-such-job', schedule => '* * * * *');
SELECT tego.alter_job('vacuum-sessions', schedule => 'every day');
SELECT tego.alter_job('vacuum-sessions', payload => '{}');
SELECT tego.alter_job('send-digest', command => 'SELECT 1');
SELECT tego.unschedule('no-such-job');
SELECT tego.run_now(NULL);

-- superuser jobs are refused unless tego.allow_superuser_jobs is on
SELECT tego.schedule('as-super', '* * * * *', 'SELECT 1', username => 'regress_job_su');
SELECT tego.schedule('as-super', '* * * * *', 'SELECT 1');

-- a role schedules only as itself or a role it belongs to, and changes only
-- jobs of such roles
SET ROLE regress_job_other;
SELECT tego.schedule('theirs', '* * * * *', 'SELECT 1', username => 'regress_job_owner');
SELECT tego.alter_job('vacuum-sessions', active => false);
SELECT tego.unschedule('vacuum-sessions');
SELECT tego.run_now('vacuum-sessions');
SELECT name, username FROM tego.schedule('mine', '@daily', 'SELECT 1');
-- and sees only those jobs and runs
SELECT name FROM tego.jobs ORDER BY name;
SELECT count(*) AS visible_runs FROM tego.job_runs;
RESET ROLE;
GRANT regress_job_owner TO regress_job_other;
SET ROLE regress_job_other;
SELECT name FROM tego.jobs ORDER BY name;
SELECT name, active FROM tego.alter_job('vacuum-sessions', active => false);
RESET ROLE;
REVOKE regress_job_owner FROM regress_job_other;

-- app runs: claim (each run to one caller), heartbeat, finish
SELECT tego.run_now('send-digest') AS app_run \gset
-- (the scheduler would make it pending; it runs in another database)
UPDATE tego.job_runs SET status = 'pending', due_at = now() WHERE run_id = :app_run;
SET ROLE regress_job_other;
SELECT count(*) AS claimed_by_stranger FROM tego.job_claim('w-0');
RESET ROLE;
SET ROLE regress_job_owner;
SELECT job_name, status, worker, attempt FROM tego.job_claim('w-1', ARRAY['send-digest']);
SELECT count(*) AS claimed_twice FROM tego.job_claim('w-2');
SELECT tego.job_heartbeat(:app_run, 'w-1') IS NOT NULL AS beat;
SELECT tego.job_heartbeat(:app_run, 'w-2');
SELECT tego.job_finish(:app_run, 'w-2', true);
SELECT status, worker, message FROM tego.job_finish(:app_run, 'w-1', true, 'sent 12 digests');
SELECT tego.job_finish(:app_run, 'w-1', true);
SELECT tego.job_heartbeat(-1, 'w-1');
SELECT tego.job_claim(NULL);
SELECT tego.job_claim('');
SELECT tego.job_claim('w-1', max_runs => 0);
SELECT tego.job_claim('w-1', max_runs => 1001);
SELECT tego.job_claim('w-1', max_runs => NULL);
-- a batch: up to max_runs runs, oldest first, each to this caller only
SELECT tego.run_now('send-digest') AS batch_a \gset
SELECT tego.run_now('send-digest') AS batch_b \gset
SELECT tego.run_now('send-digest') AS batch_c \gset
RESET ROLE;
UPDATE tego.job_runs SET status = 'pending', due_at = now()
 WHERE run_id IN (:batch_a, :batch_b, :batch_c);
SET ROLE regress_job_owner;
SELECT run_id = :batch_a AS first, run_id = :batch_b AS second, status, worker
  FROM tego.job_claim('w-3', max_runs => 2);
SELECT run_id = :batch_c AS third, worker FROM tego.job_claim('w-4', max_runs => 10);
SELECT count(*) AS left_over FROM tego.job_claim('w-5', max_runs => 10);
SELECT worker, count(*) FROM tego.job_runs
 WHERE run_id IN (:batch_a, :batch_b, :batch_c) GROUP BY worker ORDER BY worker;
SELECT tego.job_finish(:app_run, 'w-1', NULL);
RESET ROLE;

-- unschedule removes the job and its history
SELECT tego.unschedule('vacuum-sessions');
SELECT tego.unschedule('send-digest');
SELECT tego.unschedule('mine');
SELECT count(*) AS jobs, (SELECT count(*) FROM tego.job_runs) AS runs FROM tego.jobs;
SELECT event, key FROM tego.events WHERE seq > :start AND topic = 'tego_jobs' ORDER BY seq;

DROP OWNED BY regress_job_owner, regress_job_other;
DROP ROLE regress_job_owner, regress_job_other, regress_job_su;

-- a transaction that queued events and then dropped the extension still
-- commits (its events go with the extension)
BEGIN;
SELECT tego.publish('orders', '{"id": 7}');
DROP EXTENSION tego;
COMMIT;
CREATE EXTENSION tego;
SELECT tego.event_seq() AS events_after_recreate;
