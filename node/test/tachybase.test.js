'use strict';
// The real @tego/core 1.6.3 on tego: four worker processes, each an
// Application with tego attached (as a role with the README's grants only),
// named tego_main (an app name that begins with tego_, so its sync channels
// are not valid tego topics as they are).  Run by
// test/scripts/extra-suites.d/tachybase.sh against a throwaway server.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { setupDatabase, admin, Worker, until } = require('./harness');
const { channelTopic } = require('..');

// `pm remove` ends with `pnpm tachybase refresh`: a stand-in pnpm on PATH.
const BIN = fs.mkdtempSync(path.join(os.tmpdir(), 'tego-tb-bin-'));
fs.writeFileSync(path.join(BIN, 'pnpm'), '#!/bin/sh\nexit 0\n', { mode: 0o755 });
const ENV = { TB_APP: 'tego_main', TB_CRON: '1', PATH: `${BIN}:${process.env.PATH}` };

let workers = [];
const live = () => workers.filter((w) => w.child.exitCode === null && w.child.signalCode === null);

// Every live worker's view of plugin name.
async function views(name) {
  return Promise.all(live().map((w) => w.call('plugin', { name })));
}

async function installs(name) {
  return Number((await admin('SELECT count(*) AS n FROM public.tb_probe_installs WHERE plugin = $1', [name]))[0].n);
}

async function row(name) {
  return (await admin('SELECT enabled, installed FROM tego.plugins WHERE name = $1', [name]))[0];
}

test.before(async () => {
  await setupDatabase();
  workers = [1, 2, 3, 4].map((i) => new Worker(i, ENV));
  await Promise.all(workers.map((w) => w.ready));
  await workers[0].call('install');
  await Promise.all(workers.map((w) => w.call('start')));
});

test.after(async () => {
  await Promise.all(workers.map((w) => w.stop()));
  fs.rmSync(BIN, { recursive: true, force: true });
});

test('channels map to valid tego topics', () => {
  const long = `tego_main.sync.${'x'.repeat(80)}`;
  for (const ch of [long, 'tego_main.sync.syncprobe']) {
    const t = channelTopic(ch);
    assert.match(t, /^tb_[0-9a-f]{40}$/);
    assert.ok(Buffer.byteLength(t) <= 63);
  }
  assert.notEqual(channelTopic('a'), channelTopic('b'));
});

test('the registry is the view, and db.sync() leaves it alone', async () => {
  await workers[1].call('syncdb');
  const rel = await admin(`SELECT relkind FROM pg_class WHERE oid = 'tego."applicationPlugins"'::regclass`);
  assert.equal(rel[0].relkind, 'v');
  const stray = await admin(`SELECT relname FROM pg_class WHERE relname IN ('applicationPlugins', 'application_plugins')
                              AND relnamespace = 'public'::regnamespace`);
  assert.deepEqual(stray, []);
});

test('pm enable through runAsCLI in one process: every process loads it, install() runs once', async () => {
  await workers[0].call('call', { method: 'add', args: ['probe', { packageName: '@tachybase/plugin-probe', subView: true }, true] });
  await workers[0].call('cli', { argv: ['pm', 'enable', 'probe'] });
  assert.deepEqual(await row('probe'), { enabled: true, installed: true });
  await until(async () => (await views('probe')).every((v) => v.enabled && v.loaded && v.loads >= 1), 20000,
    'every process loading probe');
  await new Promise((r) => setTimeout(r, 2500)); // past the takeover grace
  assert.equal(await installs('probe'), 1);
  const v = await views('probe');
  assert.equal(v.reduce((s, x) => s + x.installs, 0), 1, 'install() called in one process only');
});

test('a failed install() leaves the plugin not enabled, everywhere', async () => {
  await workers[1].call('call', { method: 'add', args: ['probe-fail', { packageName: '@tachybase/plugin-probe-fail', subView: true }, true] });
  await assert.rejects(workers[1].call('cli', { argv: ['pm', 'enable', 'probe-fail'] }));
  assert.deepEqual(await row('probe-fail'), { enabled: false, installed: false });
  await new Promise((r) => setTimeout(r, 2500));
  for (const v of await views('probe-fail')) assert.equal(v.enabled, false);
  assert.equal(await installs('probe-fail'), 0);
});

test('a worker killed during install(): another one installs it, once', async () => {
  await workers[2].call('call', { method: 'add', args: ['probe-slow', { packageName: '@tachybase/plugin-probe-slow', subView: true }, true] });
  const enabling = workers[2].call('call', { method: 'enable', args: ['probe-slow'] }).catch(() => {});
  await until(() => workers[2].events.some((e) => e.type === 'installing'), 20000, 'install() to start');
  await workers[2].kill('SIGKILL');
  await enabling;
  await until(async () => (await installs('probe-slow')) === 1, 30000, 'another process to install probe-slow');
  assert.deepEqual(await row('probe-slow'), { enabled: true, installed: true });
  await until(async () => (await views('probe-slow')).every((v) => v.enabled && v.loaded), 20000,
    'the others loading probe-slow');
  await new Promise((r) => setTimeout(r, 2500));
  assert.equal(await installs('probe-slow'), 1);
  // a fresh worker in place of the killed one
  workers[2] = new Worker(3, ENV);
  await workers[2].ready;
  await workers[2].call('start');
  const v = await workers[2].call('plugin', { name: 'probe-slow' });
  assert.ok(v.enabled && v.loaded);
});

test('pm disable and pm remove converge', async () => {
  await workers[1].call('cli', { argv: ['pm', 'disable', 'probe'] });
  await until(async () => (await views('probe')).every((v) => v.exists && !v.enabled), 20000, 'probe disabled everywhere');
  await workers[3].call('cli', { argv: ['pm', 'remove', 'probe'] });
  assert.equal(await row('probe'), undefined);
  await until(async () => (await views('probe')).every((v) => !v.exists), 20000, 'probe removed everywhere');
});

test('sync messages: once each, in order, skipSelf', async () => {
  const from1 = Array.from({ length: 15 }, (_, i) => ({ from: 1, n: i }));
  const from2 = Array.from({ length: 5 }, (_, i) => ({ from: 2, n: i }));
  // the publishers' apps must be started: TachyBase's PubSubManager drops
  // what is published while its adapter is not connected (a restart after
  // the previous test's pm remove); the receivers may still be restarting
  // (and every app started, for the subscribers of the pub-sub manager
  // itself, which a restart would drop)
  await until(async () => (await Promise.all(workers.map((w) => w.call('pubsubState'))))
    .every((s) => s.adapterIsCurrent && s.connected && s.idle && !s.suspended), 20000, 'the apps to be started');
  await Promise.all(workers.map((w) => w.call('rawSubscribe')));
  for (const m of from1) await workers[0].call('publish', { message: m });
  for (const m of from2) await workers[1].call('publish', { message: m });
  const expect = { 0: from2, 1: from1, 2: [...from1, ...from2], 3: [...from1, ...from2] };
  await until(async () => {
    const got = await Promise.all(workers.map((w) => w.call('received')));
    return got.every((g, i) => g.length >= expect[i].length);
  }, 20000, 'messages to arrive').catch(async (err) => {
    const got = await Promise.all(workers.map((w) => w.call('received')));
    const st = await Promise.all(workers.map((w) => w.call('pubsubState')));
    throw new Error(`${err.message}; received ${JSON.stringify(got.map((g) => g.length))}, ` +
      `expected ${JSON.stringify(Object.values(expect).map((e) => e.length))}; pub-sub ${JSON.stringify(st)}`);
  });
  await new Promise((r) => setTimeout(r, 1500)); // debounce (1 s): nothing more comes
  const got = await Promise.all(workers.map((w) => w.call('received')));
  const raw = await Promise.all(workers.map((w) => w.call('rawReceived')));
  const key = (m) => `${m.from}:${m.n}`;
  for (let i = 0; i < 4; i++) {
    for (const from of [1, 2]) {
      const want = expect[i].filter((m) => m.from === from);
      // in order, once each, as tego delivers them
      assert.deepEqual(raw[i].filter((m) => m.from === from), want, `worker ${i + 1}, from ${from}, delivered`);
      // once each through SyncMessageManager (whose debounce may swap two)
      assert.deepEqual(got[i].filter((m) => m.from === from).map(key).sort(), want.map(key).sort(),
        `worker ${i + 1}, from ${from}, handled`);
    }
  }
});

test('a message published while a process restarts reaches it once it is back', async () => {
  const w = workers[2];
  const before = (await w.call('received')).length;
  w.events = w.events.filter((e) => e.type !== 'restarted');
  await w.call('restartSlow'); // stopped: its handlers are unsubscribed
  const during = await w.call('pubsubState');
  await workers[0].call('publish', { message: { from: 1, during: true } });
  await until(() => w.events.some((e) => e.type === 'restarted'), 20000, 'worker 3 to restart');
  assert.equal(during.suspended, true, 'worker 3 was restarting when the message was published');
  await until(async () => (await w.call('received')).length > before, 20000, 'the message to reach worker 3');
  await new Promise((r) => setTimeout(r, 1500)); // debounce (1 s): nothing more comes
  const got = (await w.call('received')).slice(before);
  assert.deepEqual(got, [{ from: 1, during: true }]);
});

// One row per due second in [from, to), none twice.
async function ticksBetween(from, to) {
  return admin(`SELECT s AS due, (SELECT count(*) FROM public.tb_ticks t WHERE t.due_at = s)::int AS n
                  FROM generate_series(date_trunc('second', $1::timestamptz), $2::timestamptz - interval '1 second',
                                       interval '1 second') s`, [from, to]);
}

test('a per-second cron job runs once per tick across the four for 20 s', async () => {
  const [{ now: from }] = await admin('SELECT now() + interval \'1 second\' AS now');
  await new Promise((r) => setTimeout(r, 21500));
  const to = new Date(from.getTime() + 20000);
  await new Promise((r) => setTimeout(r, 1500)); // the last runs finish
  const rows = await ticksBetween(from, to);
  assert.equal(rows.length, 20);
  assert.deepEqual(rows.filter((r) => r.n !== 1), [], 'each tick exactly once');
  const by = await admin('SELECT count(DISTINCT worker)::int AS n FROM public.tb_ticks');
  assert.ok(by[0].n >= 1);
});

test('after its worker is killed (SIGKILL) mid-tick, the tick runs once and so do the next ones', async () => {
  const w5 = new Worker(5, { ...ENV, TB_CRON_SLOW_ONCE: '1' });
  workers.push(w5);
  await w5.ready;
  await w5.call('start');
  await until(() => w5.events.some((e) => e.type === 'tick-hanging'), 30000, 'worker 5 to take a tick');
  const runId = w5.events.find((e) => e.type === 'tick-hanging').run_id;
  const [{ due_at: due }] = await admin('SELECT scheduled_for AS due_at FROM tego.job_runs WHERE run_id = $1', [runId]);
  await w5.kill('SIGKILL');
  await until(async () => (await admin(`SELECT status FROM tego.job_runs WHERE run_id = $1`, [runId]))[0]?.status === 'succeeded',
    20000, 'the killed tick to be retried');
  await new Promise((r) => setTimeout(r, 6000));
  const to = new Date(Date.now() - 1500);
  const rows = await ticksBetween(due, to);
  assert.ok(rows.length >= 5);
  assert.deepEqual(rows.filter((r) => r.n !== 1), [], 'each tick exactly once, the killed one included');
});

test('the app status is visible from every process', async () => {
  for (const w of live()) {
    const apps = await w.call('apps');
    const main = apps.find((a) => a.app === 'tego_main');
    assert.ok(main, 'tego_main in tego.apps');
    assert.equal(main.status, 'running');
    assert.equal(main.command, 'pm.remove');
  }
});

test('underscored: true and a tablePrefix find the same registry', async () => {
  for (const env of [{ TB_UNDERSCORED: '1' }, { TB_PREFIX: 't_' }]) {
    const w = new Worker(6, { ...ENV, TB_CRON: '0', ...env });
    workers.push(w);
    await w.ready;
    await w.call('start');
    const v = await w.call('plugin', { name: 'probe-slow' });
    assert.ok(v.exists && v.enabled && v.loaded, `probe-slow loaded with ${JSON.stringify(env)}`);
    await w.stop();
  }
});
