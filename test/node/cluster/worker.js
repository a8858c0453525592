'use strict';
// One application process of the cluster test and benchmark, forked by
// cluster.test.js or bench.js.  It keeps a registry copy (PluginRegistry),
// runs the app jobs "tick" and "crashy" (AppJobRunner) and answers the
// parent's commands over IPC.  Connection settings come from the PG*
// environment variables; TEGO_WORKER names it.
//
// Parent -> worker: { id, cmd: 'state' | 'write' | 'toggle' | 'notify' | 'exit', ... }
// Worker -> parent: { type: 'reply', id, ... } for a command, and
//                   { type: 'ready' }, { type: 'applied', seq, t } (with
//                   TEGO_REPORT_APPLIED=1), { type: 'raw', payload, t },
//                   { type: 'hanging', run_id } (a claimed run held on purpose)

const pg = require('pg');
const { TegoListener, PluginRegistry, AppJobRunner, int } = require('./tego-client');

const worker = process.env.TEGO_WORKER || `w${process.pid}`;
const reportApplied = process.env.TEGO_REPORT_APPLIED === '1';
const rawChannel = process.env.TEGO_RAW_CHANNEL || '';
const pageSize = Number(process.env.TEGO_PAGE_SIZE || 1000);

// timestamps stay text, so that run_log gets scheduled_for to the microsecond
pg.types.setTypeParser(pg.types.builtins.TIMESTAMPTZ, (v) => v);

const now = () => Number(process.hrtime.bigint()) / 1e6; // ms, CLOCK_MONOTONIC: same in every process

const pool = new pg.Pool({ max: 4, application_name: `${worker}-pool` });
pool.on('error', () => {}); // an idle client lost: the next query connects again

const listener = new TegoListener({
  name: `${worker}-listen`,
  reconnectDelayMs: Number(process.env.TEGO_RECONNECT_MS || 100),
});
const registry = new PluginRegistry(listener, { pageSize });
const errors = [];
const note = (what) => (err) => {
  if (errors.length < 20) errors.push(`${what}: ${err?.message ?? err}`);
};
listener.on('connect-error', note('connect'));
registry.on('apply-error', note('apply'));

if (reportApplied) {
  registry.on('applied', (e) => process.send({ type: 'applied', seq: int(e.seq), t: now() }));
}
if (rawChannel) {
  listener.subscribe(rawChannel, { notify: (payload) => process.send({ type: 'raw', payload, t: now() }) });
}

// Record in run_log what a worker did with a run.
function log(client, run, phase) {
  return client.query(
    'INSERT INTO run_log (run_id, job, scheduled_for, attempt, worker, phase) VALUES ($1, $2, $3, $4, $5, $6)',
    [run.run_id, run.job_name, run.scheduled_for, run.attempt, worker, phase]);
}

const runner = new AppJobRunner({
  pool,
  listener,
  worker,
  heartbeatMs: Number(process.env.TEGO_HEARTBEAT_MS || 300),
  hooks: { claimed: (run) => log(pool, run, 'claimed') },
  handlers: {
    tick: (run, tx) => log(tx, run, 'done'),
    // the first attempt of a "crashy" run is held until the parent kills us
    crashy: async (run, tx) => {
      if (run.attempt === 1) {
        process.send({ type: 'hanging', run_id: int(run.run_id), worker });
        await new Promise(() => {});
      }
      await log(tx, run, 'done');
    },
  },
});
runner.on('error-soft', note('jobs'));

// Run one statement for the parent; errors are returned, not thrown.
// t0: when the statement was sent; t: when its result (the commit) came back.
async function runSql(sql, params) {
  const t0 = now();
  try {
    const res = await pool.query(sql, params);
    return { ok: true, t0, t: now(), rows: res.rows };
  } catch (err) {
    return { ok: false, t0, t: now(), code: err.code, message: err.message };
  }
}

const commands = {
  state: async () => ({
    worker,
    pid: process.pid,
    lastSeq: registry.lastSeq,
    plugins: registry.list(),
    stats: { ...registry.stats, held: listener.stats.held },
    jobs: runner.stats,
    connections: listener.connections,
    listenPid: listener.backendPid,
    errors,
  }),
  // ops: [{ sql, params }], one after the other, pauseMs apart
  write: async (m) => {
    const results = [];
    for (const op of m.ops) {
      results.push(await runSql(op.sql, op.params));
      if (m.pauseMs) await new Promise((r) => setTimeout(r, m.pauseMs));
    }
    return { results };
  },
  // one lifecycle change; its seq is the row's revision after the commit
  toggle: async (m) => {
    const fn = m.enable ? 'plugin_enable' : 'plugin_disable';
    const r = await runSql(`SELECT revision FROM tego.${fn}($1)`, [m.name]);
    if (!r.ok) return r;
    const { rows: [row] } = await pool.query('SELECT revision FROM tego.plugin_get($1)', [m.name]);
    return { ok: true, t0: r.t0, t: r.t, seq: int(row.revision) };
  },
  notify: async (m) => runSql('SELECT pg_notify($1, $2)', [m.channel, m.payload]),
  exit: async () => {
    setImmediate(async () => {
      await listener.close();
      await pool.end().catch(() => {});
      process.exit(0);
    });
    return { ok: true };
  },
};

process.on('message', async (m) => {
  let reply;
  try {
    reply = await commands[m.cmd](m);
  } catch (err) {
    reply = { ok: false, message: String(err?.message ?? err) };
  }
  process.send({ type: 'reply', id: m.id, ...reply });
});
process.on('disconnect', () => process.exit(0)); // the parent is gone

listener.start().then(() => process.send({ type: 'ready', worker, lastSeq: registry.lastSeq }));
