'use strict';
// Test and benchmark helpers: the database set-up (the app's role with the
// README's grants only), and worker processes driven over IPC.

const { fork } = require('node:child_process');
const path = require('node:path');
const pg = require('pg');

const APP_ROLE = 'tb_app';

// @tego/core writes its logs and storage under TEGO_RUNTIME_HOME.
const RUNTIME_HOME = process.env.TEGO_RUNTIME_HOME ||
  require('node:fs').mkdtempSync(path.join(require('node:os').tmpdir(), 'tego-tb-'));
if (!process.env.TEGO_RUNTIME_HOME) {
  process.on('exit', () => require('node:fs').rmSync(RUNTIME_HOME, { recursive: true, force: true }));
}

// The README's grants for an application role, plus what the app itself
// needs (its own tables in public).
const SETUP = `
DROP EXTENSION IF EXISTS tego CASCADE;
CREATE EXTENSION tego;
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${APP_ROLE}') THEN
    CREATE ROLE ${APP_ROLE} LOGIN;
  END IF;
END $$;
GRANT CREATE, USAGE ON SCHEMA public TO ${APP_ROLE};
GRANT USAGE ON SCHEMA tego TO ${APP_ROLE};
GRANT EXECUTE ON FUNCTION
    tego.plugin_add(text, text, text, jsonb, boolean, boolean, text[]),
    tego.plugin_install(text[]), tego.plugin_enable(text[]),
    tego.plugin_disable(text[]), tego.plugin_remove(text[], boolean),
    tego.plugin_upgrade(text, text), tego.plugin_update(text, jsonb, bigint),
    tego.plugin_get(text), tego.plugin_list(boolean),
    tego.publish(text, jsonb), tego.event_seq(),
    tego.events_since(bigint, text[], integer),
    tego.wait_events(bigint, text[], interval, integer)
  TO ${APP_ROLE};
GRANT SELECT, INSERT, UPDATE, DELETE ON tego."applicationPlugins" TO ${APP_ROLE};
GRANT EXECUTE ON FUNCTION
    tego.schedule(text, text, text, name, name, text, interval, text, text, boolean),
    tego.schedule_app(text, text, jsonb, text, name, text, text, integer, interval, interval, boolean),
    tego.alter_job(text, text, text, jsonb, name, name, text, interval, text, text, integer, interval, interval, boolean),
    tego.unschedule(text), tego.run_now(text),
    tego.job_claim(text, text[], integer), tego.job_heartbeat(bigint, text),
    tego.job_finish(bigint, text, boolean, text)
  TO ${APP_ROLE};
GRANT SELECT ON tego.jobs, tego.job_runs TO ${APP_ROLE};
GRANT EXECUTE ON FUNCTION
    tego.lease_acquire(text, text, interval, boolean),
    tego.lease_renew(text, text, bigint, interval),
    tego.lease_release(text, text, bigint), tego.lease_assert(text, bigint),
    tego.plugin_begin(text, text, text, interval),
    tego.plugin_end(text, text, boolean, text)
  TO ${APP_ROLE};
GRANT SELECT ON tego.leases, tego.plugin_operations TO ${APP_ROLE};
GRANT EXECUTE ON FUNCTION
    tego.app_status_set(text, text, text, text),
    tego.app_maintaining_set(text, text, text, text, text),
    tego.app_forget(text), tego._apps(), tego.status(), tego.registry_epoch()
  TO ${APP_ROLE};
GRANT SELECT ON tego.apps TO ${APP_ROLE};
DROP TABLE IF EXISTS public.tb_probe_installs, public.tb_ticks;
CREATE TABLE public.tb_probe_installs (plugin text, pid int, at timestamptz DEFAULT clock_timestamp());
CREATE TABLE public.tb_ticks (due_at timestamptz, worker int, attempt int, at timestamptz DEFAULT clock_timestamp());
GRANT INSERT, SELECT ON public.tb_probe_installs, public.tb_ticks TO ${APP_ROLE};
`;

async function setupDatabase() {
  const c = new pg.Client({ user: process.env.PGUSER || 'postgres' });
  await c.connect();
  try {
    await c.query(SETUP);
  } finally {
    await c.end();
  }
}

// A superuser query (the test's own view of the database).
async function admin(text, params) {
  const c = new pg.Client({ user: process.env.PGUSER || 'postgres' });
  await c.connect();
  try {
    return (await c.query(text, params)).rows;
  } finally {
    await c.end();
  }
}

// The app's AES key, made once before the workers start: @tego/core makes
// it at load when it is missing, and processes loading at once race on it.
function ensureAesKey(appName) {
  const fs = require('node:fs');
  const file = path.join(RUNTIME_HOME, 'storage', 'apps', appName, 'aes_key.dat');
  if (fs.existsSync(file)) return;
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, require('node:crypto').randomBytes(32));
}

class Worker {
  constructor(index, env = {}) {
    ensureAesKey(env.TB_APP || process.env.TB_APP || 'main');
    this.index = index;
    this.seq = 0;
    this.waiting = new Map();
    this.events = [];
    this.child = fork(path.join(__dirname, 'worker.js'), [], {
      env: { ...process.env, TEGO_RUNTIME_HOME: RUNTIME_HOME, TB_USER: APP_ROLE, TB_WORKER: String(index), ...env },
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    });
    this.exited = new Promise((resolve) => this.child.on('exit', (code, signal) => {
      for (const w of this.waiting.values()) w.reject(new Error(`worker ${index} exited (${signal || code})`));
      this.waiting.clear();
      resolve({ code, signal });
    }));
    this.ready = new Promise((resolve, reject) => {
      this.child.on('message', (m) => {
        if (m.type === 'ready') resolve();
        else if (m.type) this.events.push(m);
        else {
          const w = this.waiting.get(m.id);
          if (!w) return;
          this.waiting.delete(m.id);
          if (m.ok) w.resolve(m.result);
          else w.reject(Object.assign(new Error(m.error), { code: m.code }));
        }
      });
      this.child.on('exit', (code) => reject(new Error(`worker ${index} exited (${code})`)));
    });
    this.ready.catch(() => {});
  }

  call(cmd, args = {}, timeoutMs = 60000) {
    const id = ++this.seq;
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error(`worker ${this.index}: ${cmd} timed out`));
      }, timeoutMs);
      this.waiting.set(id, {
        resolve: (v) => { clearTimeout(t); resolve(v); },
        reject: (e) => { clearTimeout(t); reject(e); },
      });
      this.child.send({ id, cmd, ...args });
    });
  }

  kill(signal = 'SIGKILL') {
    this.child.kill(signal);
    return this.exited;
  }

  async stop() {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    await this.call('stop', {}, 10000).catch(() => {});
    await Promise.race([this.exited, new Promise((r) => setTimeout(r, 3000))]);
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
  }
}

// Wait until fn() returns a truthy value (or fail after ms).
async function until(fn, ms = 20000, what = 'condition') {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    last = await fn();
    if (last) return last;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what} (last: ${JSON.stringify(last)})`);
}

module.exports = { setupDatabase, admin, Worker, until, APP_ROLE };
