'use strict';
// Convergence of four Node.js processes after a registry change.
//
// Four workers (worker.js) keep registry copies; w0 makes CHANGES changes
// (tego.plugin_enable / plugin_disable of one plugin, alternating), one at a
// time.  For each, the time from w0's commit returning (the query's result)
// to the last of w1..w3 having applied the event to its copy.  Baseline,
// alternating with it in the same run: a raw pg_notify from w0, padded to
// the size of tego's notification, to the same three processes' LISTEN
// connections (time to the last one receiving it).  Times are
// process.hrtime (CLOCK_MONOTONIC, shared by the processes of the machine),
// taken in the workers and sent to this process over IPC.
//
// Run with PGHOST, PGPORT, PGDATABASE, PGUSER (a superuser) set; it drops
// and creates the extension in that database.  Prints RESULT lines.
// Knobs: TEGO_NODE_BENCH_CHANGES [200], TEGO_NODE_BENCH_WARMUP [20].

const pg = require('pg');
const { setUpDatabase, Worker, percentile } = require('./harness');

const CHANGES = Number(process.env.TEGO_NODE_BENCH_CHANGES || 200);
const WARMUP = Number(process.env.TEGO_NODE_BENCH_WARMUP || 20);
const PLUGIN = 'bench-toggle';
const RAW = 'bench_raw';

// Resolves when every one of `workers` has reported key; times[key] = [t...]
function arrivals(workers, type, keyOf) {
  const times = new Map();
  const waiters = new Map();
  for (const w of workers) {
    w.on(type, (m) => {
      const k = keyOf(m);
      if (!times.has(k)) times.set(k, new Map());
      const byWorker = times.get(k);
      if (!byWorker.has(w.name)) byWorker.set(w.name, m.t);
      if (byWorker.size === workers.length && waiters.has(k)) {
        waiters.get(k)();
        waiters.delete(k);
      }
    });
  }
  return {
    // the time the last worker reported key (waits for it, up to 10 s)
    async last(k) {
      if (!(times.get(k)?.size === workers.length)) {
        await new Promise((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`not every worker reported ${k}`)), 10000);
          waiters.set(k, () => { clearTimeout(timer); resolve(); });
        });
      }
      return Math.max(...times.get(k).values());
    },
  };
}

const fmt = (ms) => ms.toFixed(3);

async function main() {
  const admin = new pg.Pool({ max: 2, application_name: 'node-bench' });
  await setUpDatabase(admin);
  await admin.query('SELECT FROM tego.plugin_add($1)', [PLUGIN]);
  // the size of tego's notification for this change, for the raw baseline
  await admin.query('SELECT FROM tego.plugin_enable($1)', [PLUGIN]);
  const { rows: [ev] } = await admin.query(
    "SELECT seq, topic, event, key, payload FROM tego.events_since(tego.event_seq() - 1, '{tego_plugins}', 1)");
  const tegoBytes = JSON.stringify({ seq: Number(ev.seq), topic: ev.topic, event: ev.event, key: ev.key, payload: ev.payload }).length;
  await admin.query('SELECT FROM tego.plugin_disable($1)', [PLUGIN]);

  const env = { TEGO_REPORT_APPLIED: '1', TEGO_RAW_CHANNEL: RAW };
  const workers = [0, 1, 2, 3].map((i) => new Worker(`w${i}`, env));
  await Promise.all(workers.map((w) => w.ready));
  const [writer, ...others] = workers;
  const applied = arrivals(others, 'applied', (m) => `seq ${m.seq}`);
  const received = arrivals(others, 'raw', (m) => `raw ${m.payload.n}`);

  const tego = []; // from the commit returning
  const raw = [];
  const tegoCall = []; // from the call
  const rawCall = [];
  for (let i = 0; i < WARMUP + CHANGES; i++) {
    const change = await writer.request('toggle', { name: PLUGIN, enable: i % 2 === 0 });
    if (!change.ok) throw new Error(`change ${i}: ${change.message}`);
    const tApplied = await applied.last(`seq ${change.seq}`);

    const body = { n: i, pad: '' };
    body.pad = 'x'.repeat(Math.max(0, tegoBytes - JSON.stringify(body).length));
    const note = await writer.request('notify', { channel: RAW, payload: JSON.stringify(body) });
    if (!note.ok) throw new Error(`notify ${i}: ${note.message}`);
    const tReceived = await received.last(`raw ${i}`);
    if (i >= WARMUP) {
      tego.push(tApplied - change.t);
      raw.push(tReceived - note.t);
      tegoCall.push(tApplied - change.t0);
      rawCall.push(tReceived - note.t0);
    }
  }

  const t50 = percentile(tego, 50);
  const t99 = percentile(tego, 99);
  const r50 = percentile(raw, 50);
  const r99 = percentile(raw, 99);
  console.log(`notification size: ${tegoBytes} bytes (tego event and raw payload alike)`);
  console.log(`RESULT node convergence, 4 workers, ${CHANGES} changes: p50 ${fmt(t50)} ms, p99 ${fmt(t99)} ms`);
  console.log(`RESULT node raw pg_notify delivery to the same 3 listeners, ${CHANGES} notifies: ` +
    `p50 ${fmt(r50)} ms, p99 ${fmt(r99)} ms`);
  console.log(`RESULT node convergence vs raw pg_notify: p50 ${(t50 / r50).toFixed(2)}x, p99 ${(t99 / r99).toFixed(2)}x`);
  console.log(`(min/max: convergence ${fmt(Math.min(...tego))}/${fmt(Math.max(...tego))} ms, ` +
    `raw ${fmt(Math.min(...raw))}/${fmt(Math.max(...raw))} ms; below 0 when a listener got there ` +
    `before the writer's process took up its result)`);
  console.log(`context: from the writer's call (commit included): convergence p50 ${fmt(percentile(tegoCall, 50))} ms, ` +
    `p99 ${fmt(percentile(tegoCall, 99))} ms; raw pg_notify p50 ${fmt(percentile(rawCall, 50))} ms, ` +
    `p99 ${fmt(percentile(rawCall, 99))} ms`);

  const states = await Promise.all(workers.map((w) => w.request('state')));
  const bad = states.filter((s) => s.errors.length);
  await Promise.all(workers.map((w) => w.stop()));
  await admin.end();
  if (bad.length) throw new Error(`worker errors: ${JSON.stringify(bad.map((s) => s.errors))}`);
}

main().catch((err) => {
  console.error(`node bench failed: ${err.stack ?? err}`);
  process.exit(1);
});
