'use strict';
// Benchmarks of @tego/core 1.6.3 on tego (test/bench/tachybase.sh runs it):
//
// 1. convergence: pm.enable in process A; from its return to the plugin
//    loaded (its load() ran) in B, C and D; 50 toggles (pm.disable between,
//    waited for everywhere).  Beside it: the same pm.enable on TachyBase's
//    own applicationPlugins table, one process, in another database.
// 2. messages: PubSubManager.publish in A to the subscriber's callback in B
//    (what SyncMessageManager sends, without its 1 s debounce), against a
//    raw pg_notify from A's process to a LISTEN connection of B's; 200 each,
//    alternating.  Twice: as the node/ package sends messages by default
//    (committed with synchronous_commit = off), and with durableMessages
//    (the commit waits for the WAL flush), each beside its own raw run.
// Times are process.hrtime (CLOCK_MONOTONIC, one clock for all processes).

const { setupDatabase, admin, Worker, until } = require('../test/harness');

const TOGGLES = Number(process.env.TB_BENCH_TOGGLES || 50);
const MESSAGES = Number(process.env.TB_BENCH_MESSAGES || 200);

function pct(a, p) {
  const s = [...a].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}
const ms = (ns) => (Number(ns) / 1e6);
const fmt = (v) => `${v.toFixed(2)} ms`;

async function convergence() {
  await setupDatabase();
  const env = { TB_APP: 'main', TB_BENCH: '1' };
  const w = [1, 2, 3, 4].map((i) => new Worker(i, env));
  await Promise.all(w.map((x) => x.ready));
  await w[0].call('install');
  await Promise.all(w.map((x) => x.call('start')));
  await w[0].call('call', { method: 'add', args: ['probe', { packageName: '@tachybase/plugin-probe', subView: true }, true] });
  const conv = [];
  const convCall = [];
  const enableA = [];
  for (let i = 0; i < TOGGLES; i++) {
    for (const x of w) x.events = [];
    const { t0, t1 } = await w[0].call('timed', { method: 'enable', name: 'probe' });
    enableA.push(ms(BigInt(t1) - BigInt(t0)));
    const loaded = await until(async () => {
      const ts = w.slice(1).map((x) => x.events.find((e) => e.type === 'loaded' && e.plugin === 'probe'));
      return ts.every(Boolean) && ts;
    }, 30000, 'B-D loading probe');
    const last = loaded.reduce((m, e) => (BigInt(e.t) > m ? BigInt(e.t) : m), 0n);
    conv.push(ms(last - BigInt(t1)));
    convCall.push(ms(last - BigInt(t0)));
    await w[0].call('timed', { method: 'disable', name: 'probe' });
    await until(async () => (await Promise.all(w.slice(1).map((x) => x.call('plugin', { name: 'probe' }))))
      .every((v) => !v.enabled), 30000, 'B-D disabling probe');
  }
  await Promise.all(w.map((x) => x.stop()));

  // TachyBase's own table, one process, a database of its own
  await admin('DROP DATABASE IF EXISTS tb_plain');
  await admin('CREATE DATABASE tb_plain');
  await admin('GRANT ALL ON DATABASE tb_plain TO tb_app');
  const p = new Worker(9, { ...env, TB_NO_TEGO: '1', PGDATABASE: 'tb_plain' });
  await p.ready;
  const pg = require('pg');
  const c = new pg.Client({ user: process.env.PGUSER || 'postgres', database: 'tb_plain' });
  await c.connect();
  await c.query('GRANT CREATE, USAGE ON SCHEMA public TO tb_app');
  await c.query('CREATE TABLE public.tb_probe_installs (plugin text, pid int, at timestamptz DEFAULT clock_timestamp())');
  await c.query('GRANT INSERT, SELECT ON public.tb_probe_installs TO tb_app');
  await c.end();
  await p.call('install');
  await p.call('start');
  await p.call('call', { method: 'add', args: ['probe', { packageName: '@tachybase/plugin-probe', subView: true }, true] });
  const plain = [];
  for (let i = 0; i < TOGGLES; i++) {
    const { t0, t1 } = await p.call('timed', { method: 'enable', name: 'probe' });
    plain.push(ms(BigInt(t1) - BigInt(t0)));
    await p.call('timed', { method: 'disable', name: 'probe' });
  }
  await p.stop();
  console.log(`convergence, pm.enable returning in A -> probe loaded in B, C and D (${TOGGLES} toggles): ` +
    `p50 ${fmt(pct(conv, 50))}, p99 ${fmt(pct(conv, 99))}`);
  console.log(`the same from pm.enable called in A: p50 ${fmt(pct(convCall, 50))}, p99 ${fmt(pct(convCall, 99))}`);
  console.log(`pm.enable in A on tego (4 processes): p50 ${fmt(pct(enableA, 50))}, p99 ${fmt(pct(enableA, 99))}`);
  console.log(`pm.enable on TachyBase's own table, 1 process: p50 ${fmt(pct(plain, 50))}, p99 ${fmt(pct(plain, 99))}`);
}

async function messages(durable) {
  await setupDatabase();
  const env = { TB_APP: 'main', TB_DURABLE_MESSAGES: durable ? '1' : '0' };
  const w = [1, 2].map((i) => new Worker(i, env));
  await Promise.all(w.map((x) => x.ready));
  await w[0].call('install');
  await Promise.all(w.map((x) => x.call('start')));
  await w[1].call('benchSub');
  const lat = { tego: [], raw: [] };
  const pubLat = { tego: [], raw: [] };
  for (let i = 0; i < MESSAGES + 20; i++) {
    for (const kind of i % 2 ? ['raw', 'tego'] : ['tego', 'raw']) {
      w[1].events = [];
      const { t, t1 } = await w[0].call('benchPub', { kind, i });
      const e = await until(() => w[1].events.find((x) => x.type === 'recv' && x.kind === kind && x.i === i),
        10000, `${kind} message ${i}`);
      if (i >= 20) {
        lat[kind].push(ms(BigInt(e.t) - BigInt(t)));
        pubLat[kind].push(ms(BigInt(t1) - BigInt(t)));
      }
    }
  }
  await Promise.all(w.map((x) => x.stop()));
  const r = pct(lat.tego, 50) / pct(lat.raw, 50);
  const what = durable ? 'durableMessages: true (the commit waits for the WAL flush)' : 'default (synchronous_commit = off)';
  console.log(`messages, ${what}:`);
  console.log(`message A -> B, PubSubManager over tego (${MESSAGES}): p50 ${fmt(pct(lat.tego, 50))}, p99 ${fmt(pct(lat.tego, 99))}`);
  console.log(`raw pg_notify A -> B LISTEN (${MESSAGES}): p50 ${fmt(pct(lat.raw, 50))}, p99 ${fmt(pct(lat.raw, 99))}`);
  console.log(`(context) the publishing call in A: tego p50 ${fmt(pct(pubLat.tego, 50))}, raw p50 ${fmt(pct(pubLat.raw, 50))}`);
  console.log(`ratio p50 ${r.toFixed(2)}x (${durable ? 'context' : `target <= 2x: ${r <= 2 ? 'met' : 'not met'}`}), p99 ${(pct(lat.tego, 99) / pct(lat.raw, 99)).toFixed(2)}x`);
}

(async () => {
  const only = process.env.TB_BENCH_ONLY; // convergence | messages
  if (!only || only === 'convergence') await convergence();
  if (!only || only === 'messages') {
    await messages(false);
    await messages(true);
  }
})().then(() => process.exit(0), (err) => {
  console.error(err);
  process.exit(1);
});
