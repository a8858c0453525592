'use strict';
// The parent's side of the cluster test and benchmark: the database set-up
// (as a superuser), the application role the workers connect as, and the
// forked worker processes with a request/reply channel over IPC.
//
// Connection: PGHOST, PGPORT, PGDATABASE from the environment; the parent
// connects as PGUSER (a superuser), the workers as TEGO_APP_ROLE
// (default tego_app, created here).

const path = require('node:path');
const { fork } = require('node:child_process');
const { EventEmitter } = require('node:events');
const pg = require('pg');

const APP_ROLE = process.env.TEGO_APP_ROLE || 'tego_app';

// The grants README "Privileges" lists for an application role that runs
// the lifecycle, reads events and runs app jobs.
const GRANTS = `
GRANT USAGE ON SCHEMA tego TO ${APP_ROLE};
GRANT EXECUTE ON FUNCTION
    tego.plugin_add(text, text, text, jsonb, boolean, boolean, text[]),
    tego.plugin_install(text[]), tego.plugin_uninstall(text[]),
    tego.plugin_enable(text[]),
    tego.plugin_disable(text[]), tego.plugin_remove(text[], boolean),
    tego.plugin_upgrade(text, text), tego.plugin_update(text, jsonb, bigint),
    tego.plugin_get(text), tego.plugin_list(boolean),
    tego.publish(text, jsonb), tego.event_seq(),
    tego.events_since(bigint, text[], integer)
  TO ${APP_ROLE};
GRANT EXECUTE ON FUNCTION
    tego.schedule_app(text, text, jsonb, text, name, text, text, integer, interval, interval, boolean),
    tego.alter_job(text, text, text, jsonb, name, name, text, interval, text, text, integer, interval, interval, boolean),
    tego.unschedule(text), tego.run_now(text),
    tego.job_claim(text, text[], integer), tego.job_heartbeat(bigint, text),
    tego.job_finish(bigint, text, boolean, text)
  TO ${APP_ROLE};
GRANT SELECT ON tego.jobs, tego.job_runs TO ${APP_ROLE};
`;

// A fresh tego in the test database, the application role and run_log.
// NB: drops and creates the extension: point it at a test database only.
async function setUpDatabase(admin) {
  await admin.query('DROP EXTENSION IF EXISTS tego CASCADE');
  await admin.query('CREATE EXTENSION tego');
  const { rowCount } = await admin.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [APP_ROLE]);
  if (rowCount === 0) await admin.query(`CREATE ROLE ${APP_ROLE} LOGIN`);
  await admin.query(GRANTS);
  await admin.query(`
    DROP TABLE IF EXISTS run_log;
    CREATE TABLE run_log (
      run_id        bigint NOT NULL,
      job           text NOT NULL,
      scheduled_for timestamptz NOT NULL,
      attempt       integer NOT NULL,
      worker        text NOT NULL,
      phase         text NOT NULL CHECK (phase IN ('claimed', 'done')),
      logged_at     timestamptz NOT NULL DEFAULT clock_timestamp());
    GRANT SELECT, INSERT ON run_log TO ${APP_ROLE};`);
}

/** A forked worker.js process. */
class Worker extends EventEmitter {
  constructor(name, env = {}) {
    super();
    this.name = name;
    this.nextId = 1;
    this.waiting = new Map();
    this.exited = false;
    this.proc = fork(path.join(__dirname, 'worker.js'), [], {
      env: { ...process.env, PGUSER: APP_ROLE, TEGO_WORKER: name, ...env },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.pid = this.proc.pid;
    this.ready = new Promise((resolve, reject) => {
      this.once('ready', resolve);
      this.proc.once('exit', (code, signal) => reject(new Error(`${name} exited (${code ?? signal}) before it was ready`)));
    });
    this.ready.catch(() => {});
    this.proc.on('message', (m) => {
      if (m.type === 'reply') {
        const w = this.waiting.get(m.id);
        if (w) {
          this.waiting.delete(m.id);
          w.resolve(m);
        }
      } else {
        this.emit(m.type, m);
      }
    });
    this.proc.on('exit', (code, signal) => {
      this.exited = true;
      for (const w of this.waiting.values()) w.reject(new Error(`${name} exited (${code ?? signal})`));
      this.waiting.clear();
      this.emit('exit', code, signal);
    });
  }

  // Send a command and wait for its reply.
  request(cmd, args = {}, timeoutMs = 30000) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error(`${this.name}: no reply to ${cmd} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(id, {
        resolve: (m) => { clearTimeout(timer); resolve(m); },
        reject: (e) => { clearTimeout(timer); reject(e); },
      });
      this.proc.send({ id, cmd, ...args });
    });
  }

  kill(signal = 'SIGKILL') {
    if (!this.exited) this.proc.kill(signal);
  }

  async stop() {
    if (this.exited) return;
    const gone = new Promise((resolve) => this.proc.once('exit', resolve));
    await this.request('exit', {}, 5000).catch(() => {});
    const timer = setTimeout(() => this.kill(), 5000);
    await gone;
    clearTimeout(timer);
  }
}

// Wait until check() returns something truthy; fails after timeoutMs.
async function waitFor(what, check, timeoutMs = 10000, everyMs = 50) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

// Percentile p (0..100) of an array of numbers, nearest rank.
function percentile(values, p) {
  const s = [...values].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * s.length);
  return s[Math.min(s.length - 1, Math.max(0, rank - 1))];
}

module.exports = { APP_ROLE, setUpDatabase, Worker, waitFor, percentile };
