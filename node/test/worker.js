'use strict';
// One worker process of the TachyBase test: a real @tego/core Application
// with tego attached, driven by its parent over IPC.
//
// env: PGHOST PGPORT PGDATABASE, TB_USER (the app's role), TB_APP (app name),
// TB_WORKER (index), TB_CRON=1 (add the per-second cron job),
// TB_CRON_SLOW_ONCE=1 (a tick of this worker hangs, so that the test can
// kill it mid-tick).

const path = require('node:path');
const { Application, Plugin } = require('@tego/core');
const Globals = require('@tachybase/globals').default;
const { attachTego } = require('..');

const NODE_DIR = path.resolve(__dirname, '..');
Globals.getInstance().set('PLUGIN_PATHS', [path.join(NODE_DIR, 'node_modules')]);
// what a TachyBase launcher sets up before it builds an app
Globals.settings = {
  logger: { transport: ['console'], level: 'error', maxSize: '10m', maxFiles: 1 },
  presets: { runtimePlugins: [] },
  database: {},
};

const received = []; // sync messages handled by this process
const rawReceived = []; // the same, as the pub-sub manager hands them over
const state = (globalThis.tegoProbe ??= { loads: {}, installs: [] });

// A preset plugin: receives sync messages, and adds the cron job.
class SyncProbe extends Plugin {
  async handleSyncMessage(message) {
    received.push(message);
  }

  async load() {
    if (process.env.TB_CRON !== '1') return;
    this.app.cronJobManager.addJob({
      cronTime: '* * * * * *',
      timeZone: 'Europe/Paris',
      onTick: async function onTick() {
        const run = this.lastRun;
        if (process.env.TB_CRON_SLOW_ONCE === '1' && !state.slowDone) {
          state.slowDone = true;
          process.send({ type: 'tick-hanging', run_id: Number(run.run_id) });
          await new Promise((r) => setTimeout(r, 60000));
        }
        await app.db.sequelize.query(
          'INSERT INTO public.tb_ticks (due_at, worker, attempt) VALUES ($1, $2, $3)',
          { bind: [run.scheduled_for, Number(process.env.TB_WORKER), run.attempt ?? null] });
      },
    });
  }
}

const app = new Application({
  name: process.env.TB_APP || 'main',
  database: {
    dialect: 'postgres',
    host: process.env.PGHOST,
    port: Number(process.env.PGPORT),
    database: process.env.PGDATABASE,
    username: process.env.TB_USER,
    password: '',
    logging: false,
    ...(process.env.TB_UNDERSCORED === '1' ? { underscored: true } : {}),
    ...(process.env.TB_PREFIX ? { tablePrefix: process.env.TB_PREFIX } : {}),
  },
  logger: { system: { level: 'error' } },
  acl: false,
  plugins: [[SyncProbe, { name: 'syncprobe' }]],
});

let tego;
let raw = null; // benchmark connection

const handlers = {
  async install() {
    await app.install();
    return true;
  },
  async start() {
    await app.load();
    await app.start();
    return true;
  },
  async cli({ argv }) {
    // runAsCLI records a failed command (command_error) and does not throw
    await app.runAsCLI(argv, { from: 'user', throwError: true });
    const m = app.getMaintaining();
    if (m && m.status === 'command_error') {
      throw new Error(String(m.error && (m.error.cause?.message || m.error.message) || m.error));
    }
    return true;
  },
  async call({ method, args }) {
    await app.pm[method](...args);
    return true;
  },
  async plugin({ name }) {
    const p = app.pm.get(name);
    return {
      exists: Boolean(p),
      enabled: Boolean(p && p.enabled),
      installed: Boolean(p && p.installed),
      loaded: Boolean(p && p.state && p.state.loaded),
      loads: state.loads[name] || 0,
      installs: state.installs.filter((n) => n === name).length,
      applied: tego.stats.applied,
    };
  },
  async publish({ message }) {
    await app.syncMessageManager.publish('syncprobe', message);
    return true;
  },
  async received() {
    return received;
  },
  // a subscriber of the sync channel of SyncProbe on the pub-sub manager
  // itself, without SyncMessageManager's debounce (lodash's, 1 s per
  // distinct message, which can swap two messages that arrive within a
  // millisecond of each other): the order tego delivers in
  async rawSubscribe() {
    await app.pubSubManager.subscribe(`${app.name}.sync.syncprobe`, (m) => { rawReceived.push(m); });
    return true;
  },
  async rawReceived() {
    return rawReceived;
  },
  // restart the app as after another process's plugin change, slowly (its
  // reload waits 1.5 s): answers once it has stopped, reports 'restarted'
  async restartSlow() {
    const stopped = new Promise((resolve) => app.once('beforeStop', resolve));
    const slow = () => new Promise((r) => setTimeout(r, 1500));
    app.once('afterReload', slow);
    app.tryReloadOrRestart()
      .then(() => process.send({ type: 'restarted' }))
      .catch((err) => process.send({ type: 'restart-failed', error: String(err) }));
    await stopped;
    return true;
  },
  // what the pub-sub adapter of this process is doing (failure reports)
  async pubsubState() {
    const ps = tego.pubsub;
    return {
      adapterIsCurrent: app.pubSubManager.adapter === ps.current,
      connected: Boolean(ps.current && ps.current.connected),
      suspended: ps.suspended,
      idle: tego.registry.idle(),
      topics: [...ps.topics.values()].map((m) => [...m.keys()]).flat(),
      last: ps.reader.last,
      hubConnected: tego.hub.connected,
      handlers: [...app.pubSubManager.handlerManager.handlers.keys()],
    };
  },
  async apps() {
    const { rows } = await tego.hub.query('SELECT app, status, command, maintaining_status FROM tego.apps ORDER BY app');
    return rows;
  },
  async syncdb() {
    await app.db.sync();
    return true;
  },
  // benchmark: pm.enable / pm.disable, with the monotonic clock at its return
  async timed({ method, name }) {
    const t0 = process.hrtime.bigint();
    await app.pm[method](name);
    const t1 = process.hrtime.bigint();
    return { t0: String(t0), t1: String(t1) };
  },
  // benchmark: a subscriber of the pub-sub manager and a raw LISTEN
  async benchSub() {
    await app.pubSubManager.subscribe('bench', (m) => {
      process.send({ type: 'recv', kind: 'tego', i: m.i, t: String(process.hrtime.bigint()) });
    });
    const pg = require('pg');
    raw = new pg.Client({ user: process.env.TB_USER });
    await raw.connect();
    raw.on('notification', (n) => {
      process.send({ type: 'recv', kind: 'raw', i: Number(n.payload.split(':')[0]), t: String(process.hrtime.bigint()) });
    });
    await raw.query('LISTEN tb_raw');
    return true;
  },
  async benchPub({ kind, i }) {
    if (!raw) {
      const pg = require('pg');
      raw = new pg.Client({ user: process.env.TB_USER });
      await raw.connect();
    }
    const t = process.hrtime.bigint();
    if (kind === 'tego') await app.pubSubManager.publish('bench', { i, pad: 'x'.repeat(40) });
    else await raw.query('SELECT pg_notify($1, $2)', ['tb_raw', `${i}:${'x'.repeat(40)}`]);
    return { t: String(t), t1: String(process.hrtime.bigint()) };
  },
  async stop() {
    await app.stop();
    await tego.close();
    if (raw) await raw.end().catch(() => {});
    setImmediate(() => process.exit(0));
    return true;
  },
};

process.on('message', async (m) => {
  const h = handlers[m.cmd];
  try {
    const result = await h(m);
    process.send({ id: m.id, ok: true, result });
  } catch (err) {
    process.send({ id: m.id, ok: false, error: String(err && (err.cause?.message || err.message) || err), code: err && err.code });
  }
});

(async () => {
  if (process.env.TB_NO_TEGO === '1') {
    tego = { stats: { applied: 0 }, close: async () => {} };
    process.send({ type: 'ready' });
    return;
  }
  tego = await attachTego(app, {
    installGraceMs: Number(process.env.TB_GRACE_MS || 1500),
    pubsubWait: process.env.TB_PUBSUB_WAIT !== '0',
    durableMessages: process.env.TB_DURABLE_MESSAGES === '1',
    cron: { claimTimeout: '800 milliseconds', heartbeatTimeout: '800 milliseconds', heartbeatMs: 200 },
  });
  tego.hub.on('warning', (err) => {
    if (process.env.TB_DEBUG) console.error(`worker ${process.env.TB_WORKER}:`, err);
  });
  process.send({ type: 'ready' });
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
