'use strict';
// Cluster-mode test of tego with node-postgres: four forked application
// processes (worker.js) against one server.
//
//   1. Each process keeps a copy of the plugin registry, fed by the log
//      (events_since(), read when a tego_plugins notification says it may
//      have more, and after each reconnection); one process changes the
//      registry (add, install, enable, disable, upgrade, update, remove)
//      while the LISTEN connections of two others are cut (three times, with
//      bursts of changes while they are away); every copy ends identical to
//      tego.plugins.
//   2. A role with no tego grants NOTIFYs tego_plugins with forged events
//      (a huge seq that removes a plugin, a wrong state, garbage); then
//      real changes: every copy still ends identical to tego.plugins, at
//      the log's position.
//   3. An app job due every second (tego.schedule_app, '* * * * * *') runs
//      exactly once per tick, over about ten seconds, in one process or
//      another: none missed, none run twice.
//   4. A process SIGKILLed while it holds a claimed run: the run is retried
//      (after heartbeat_timeout) by another process and succeeds once.
//   5. A process started afterwards loads the registry and converges too.
//
// Run: node --test-reporter=tap cluster/cluster.test.js, with PGHOST,
// PGPORT, PGDATABASE (the database named by tego.database, where the
// scheduler runs) and PGUSER (a superuser) set.  It drops and creates the
// extension in that database: use a throwaway cluster
// (test/scripts/extra-suites.d/node-cluster.sh starts one).

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const pg = require('pg');
const { setUpDatabase, Worker, waitFor, APP_ROLE } = require('./harness');
const { pluginRow, int, sleep } = require('./tego-client');

const PAGE_SIZE = 5; // small, so that a catch-up takes several pages
const RECONNECT_MS = 400; // how long a worker whose connection was cut stays away
const CHANGES = 160;
const BURST = 4 * PAGE_SIZE;
const FORGER = 'tego_forger'; // a role with no tego grants
let admin;
const workers = [];

// A linear congruential generator, so that a failure can be replayed.
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (Math.imul(a, 1664525) + 1013904223) >>> 0;
    return a / 4294967296;
  };
}
const SEED = Number(process.env.TEGO_TEST_SEED || 20261126);

const alive = () => workers.filter((w) => !w.exited);

function spawn(name) {
  const w = new Worker(name, { TEGO_PAGE_SIZE: String(PAGE_SIZE), TEGO_RECONNECT_MS: String(RECONNECT_MS) });
  workers.push(w);
  return w;
}

// The rows as the table has them, in the form the workers keep.
async function tableRows() {
  const { rows } = await admin.query('SELECT * FROM tego.plugins ORDER BY id');
  return JSON.parse(JSON.stringify(rows.map(pluginRow)));
}

async function eventSeq() {
  const { rows: [r] } = await admin.query('SELECT tego.event_seq() AS s');
  return int(r.s);
}

// Wait until every live worker has applied everything up to the newest
// event, then compare each copy with the table.
async function assertConverged(t) {
  const target = await eventSeq();
  const states = await waitFor(`every worker at seq ${target}`, async () => {
    const s = await Promise.all(alive().map((w) => w.request('state')));
    return s.every((x) => x.lastSeq >= target) ? s : null;
  }, 15000);
  const table = await tableRows();
  for (const s of states) {
    assert.deepEqual(s.plugins, table, `${s.worker}'s copy differs from tego.plugins`);
    assert.deepEqual(s.errors, [], `${s.worker} reported errors`);
  }
  t.diagnostic(`${states.length} copies identical to tego.plugins (${table.length} plugins) at seq ${target}`);
  return states;
}

// Random registry changes on plugins p01..p12 and "big" (options over the
// NOTIFY limit); errors that the lifecycle rules raise are part of the mix.
function changes(count, rnd) {
  const names = Array.from({ length: 12 }, (_, i) => `p${String(i + 1).padStart(2, '0')}`);
  names.push('big');
  const deps = { p02: ['p01'], p04: ['p03'], p06: ['p05', 'p01'], p08: ['p07'] };
  const pick = () => names[Math.floor(rnd() * names.length)];
  const blob = (n) => ({ blob: 'x'.repeat(9000), n });
  const ops = [];
  for (let i = 0; i < count; i++) {
    const name = pick();
    const r = rnd();
    if (r < 0.12) {
      ops.push({
        sql: 'SELECT * FROM tego.plugin_add($1, $2, $3, $4, false, true, $5)',
        params: [name, `@test/${name}`, '1.0.0', name === 'big' ? blob(i) : { n: i }, deps[name] ?? []],
      });
    } else if (r < 0.42) {
      ops.push({ sql: 'SELECT * FROM tego.plugin_enable(VARIADIC $1::text[])', params: [[...(deps[name] ?? []), name]] });
    } else if (r < 0.70) {
      const also = rnd() < 0.3 ? [pick()] : [];
      ops.push({ sql: 'SELECT * FROM tego.plugin_disable(VARIADIC $1::text[])', params: [[name, ...also]] });
    } else if (r < 0.78) {
      ops.push({ sql: 'SELECT * FROM tego.plugin_install($1)', params: [name] });
    } else if (r < 0.86) {
      ops.push({ sql: 'SELECT * FROM tego.plugin_upgrade($1, $2)', params: [name, `1.${i}.0`] });
    } else if (r < 0.94) {
      ops.push({
        sql: 'SELECT * FROM tego.plugin_update($1, $2)',
        params: [name, { options: name === 'big' ? blob(i) : { n: i, at: 'update' } }],
      });
    } else {
      ops.push({ sql: 'SELECT * FROM tego.plugin_remove($1, $2)', params: [[name], rnd() < 0.5] });
    }
  }
  return ops;
}

// One transaction that upgrades plugins b00..b<n-1> (n events), each to a
// new version: an event a copy missed would leave an old version behind.
function burst(n) {
  const sql = [];
  for (let i = 0; i < n; i++) {
    sql.push(`SELECT FROM tego.plugin_upgrade('b${String(i).padStart(2, '0')}', '2.${++bursts}.0')`);
  }
  return sql.join(';\n');
}
let bursts = 0;

// The SQLSTATEs the lifecycle rules raise for a change that is refused.
const REFUSED = new Set(['55000', '23505', '42704']);

function checkResults(results) {
  let ok = 0;
  for (const r of results) {
    if (r.ok) ok++;
    else assert.ok(REFUSED.has(r.code), `unexpected error ${r.code}: ${r.message}`);
  }
  return ok;
}

// Terminate a worker's LISTEN connection (once it has one); 1 if it did.
async function cutListen(name) {
  return waitFor(`${name}'s LISTEN connection`, async () => {
    const { rowCount } = await admin.query(
      'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1', [`${name}-listen`]);
    return rowCount;
  }, 5000, 20);
}

before(async () => {
  admin = new pg.Pool({ max: 3, application_name: 'cluster-test' });
  await setUpDatabase(admin);
  await admin.query(`
    SELECT FROM tego.plugin_add('core', '@tachybase/plugin-core', '1.0.0', built_in => true);
    SELECT FROM tego.plugin_add('users', '@tachybase/plugin-users', '1.0.0');
    SELECT FROM tego.plugin_add('acl', '@tachybase/plugin-acl', '1.0.0', depends_on => '{users}');
    SELECT FROM tego.plugin_enable('core', 'users', 'acl');
    SELECT FROM tego.plugin_add('storm');
    SELECT FROM generate_series(0, ${BURST - 1}) i, tego.plugin_add(format('b%s', to_char(i, 'FM00'))) p;`);
  for (let i = 0; i < 4; i++) spawn(`w${i}`);
  await Promise.all(workers.map((w) => w.ready));
});

after(async () => {
  await Promise.all(workers.map((w) => w.stop()));
  if (admin) {
    await admin.query("SELECT tego.unschedule(name) FROM tego.jobs WHERE name IN ('tick', 'crashy')").catch(() => {});
    await admin.end();
  }
});

test('registry copies in 4 processes converge to tego.plugins, across dropped LISTEN connections', { timeout: 60000 }, async (t) => {
  const rnd = prng(SEED);
  const writer = workers[0];
  const seq0 = await eventSeq();
  // a plugin whose events are too large for NOTIFY first, then random changes
  const ops = [
    { sql: "SELECT * FROM tego.plugin_add('big', NULL, '1.0.0', $1)", params: [{ blob: 'y'.repeat(9000) }] },
    { sql: "SELECT * FROM tego.plugin_enable('big')", params: [] },
    ...changes(CHANGES, rnd),
  ];
  let done = 0;
  const writing = (async () => {
    for (let i = 0; i < ops.length; i += 20) {
      const { results } = await writer.request('write', { ops: ops.slice(i, i + 20), pauseMs: 2 });
      done += checkResults(results);
    }
  })();
  // While the writer works, cut LISTEN connections: w2 twice, w3 once.  A
  // worker stays away for RECONNECT_MS.  Right after each cut, one
  // transaction makes BURST events, so that every catch-up has several
  // pages; then more changes, one by one, until the worker is back, so that
  // notifications arrive while it catches up.
  const cuts = { w2: 0, w3: 0 };
  for (const name of ['w2', 'w3', 'w2']) {
    await Promise.race([writing, sleep(300)]);
    const cut = Date.now();
    cuts[name] += await cutListen(name);
    await admin.query(burst(BURST));
    while (Date.now() - cut < RECONNECT_MS + 300) {
      await admin.query("SELECT FROM tego.plugin_upgrade('storm', $1)", [`3.${++bursts}.0`]);
    }
  }
  await writing;
  assert.deepEqual(cuts, { w2: 2, w3: 1 }, 'the connections were cut while the writer worked');
  const events = (await eventSeq()) - seq0;
  t.diagnostic(`seed ${SEED}: ${done} of ${ops.length} changes applied, ${events} events`);
  assert.ok(events >= 3 * BURST + 50, `enough changes were made (${events} events)`);

  const states = await assertConverged(t);
  const by = Object.fromEntries(states.map((s) => [s.worker, s]));
  assert.equal(by.w2.connections, 3, 'w2 reconnected twice');
  assert.equal(by.w3.connections, 2, 'w3 reconnected once');
  for (const s of states) {
    t.diagnostic(`${s.worker}: ${s.connections} connection(s); ${s.stats.hints} notifications ` +
      `(${s.stats.held} held during a catch-up, ${s.stats.skipped} of events applied already) led to ` +
      `${s.stats.reads} reads of the log (${s.stats.readPages} pages, ${s.stats.fromReads} events); ` +
      `${s.stats.caughtUp} events caught up in ${s.stats.catchUps} catch-ups of ${s.stats.pages} pages`);
  }
  for (const w of [by.w2, by.w3]) {
    assert.ok(w.stats.caughtUp > 0, `${w.worker} caught up on events it missed while disconnected`);
    assert.ok(w.stats.pages > w.stats.catchUps, `${w.worker} read more than one page in a catch-up`);
  }
  assert.ok(by.w2.stats.held + by.w3.stats.held > 0, 'notifications arrived during a catch-up');
  for (const s of states) {
    assert.ok(s.stats.fromReads > 0, `${s.worker} applied events read because of notifications`);
    assert.ok(s.stats.reads <= s.stats.hints, `${s.worker} read the log at most once a notification`);
  }
  // the events too large for NOTIFY came whole from the log
  const big = await admin.query(
    "SELECT count(*)::int AS n FROM tego.events WHERE seq > $1 AND key = 'big' AND length(payload::text) > 8000", [seq0]);
  assert.ok(big.rows[0].n > 0, 'some events were too large for a notification');
});

test('forged notifications from a role with no grants change no copy and stop no real event', { timeout: 30000 }, async (t) => {
  // PostgreSQL lets every role NOTIFY any channel: tego's are no exception.
  const { rowCount } = await admin.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [FORGER]);
  if (rowCount === 0) await admin.query(`CREATE ROLE ${FORGER} LOGIN`);
  const { rows: [g] } = await admin.query("SELECT has_schema_privilege($1, 'tego', 'USAGE') AS u", [FORGER]);
  assert.equal(g.u, false, 'the forging role has no tego grants');
  const before = await tableRows();
  assert.ok(before.some((r) => r.name === 'users') && before.some((r) => r.name === 'core'));
  const huge = 9000000000000000;
  const forger = new pg.Client({ user: FORGER, application_name: 'forger' });
  await forger.connect();
  try {
    const forge = (channel, payload) => forger.query('SELECT pg_notify($1, $2)',
      [channel, typeof payload === 'string' ? payload : JSON.stringify(payload)]);
    // a huge seq that removes a plugin
    await forge('tego_plugins', {
      seq: huge, topic: 'tego_plugins', event: 'plugin-state-changed', key: 'users',
      payload: { name: 'users', action: 'remove', from: 'enabled', to: null },
    });
    // a wrong state for a built-in plugin, with every member of a full payload
    await forge('tego_plugins', {
      seq: huge + 2, topic: 'tego_plugins', event: 'plugin-state-changed', key: 'core',
      payload: {
        id: 1, name: 'core', package_name: '@evil/core', version: '6.6.6', enabled: false,
        installed: false, built_in: false, sub_view: true, options: { evil: true },
        depends_on: [], action: 'disable', from: 'enabled', to: 'added',
      },
    });
    // a seq just above the real one, a plugin that does not exist, garbage
    const next = (await eventSeq()) + 1;
    await forge('tego_plugins', {
      seq: next, topic: 'tego_plugins', event: 'plugin-state-changed', key: 'forged',
      payload: { id: 999, name: 'forged', version: '1.0.0', enabled: true, installed: true,
        built_in: false, sub_view: true, options: {}, depends_on: [], action: 'add', from: null, to: 'enabled' },
    });
    await forge('tego_plugins', 'not json {');
    await forge('tego_plugins', { seq: 'many' });
    await forge('tego_plugins', '{"seq": null}');
    await forge('tego_jobs', { seq: huge, event: 'run-due', key: 'tick', payload: {} });
  } finally {
    await forger.end();
  }
  // then real changes, after the forged notifications in the queue
  const writer = alive()[0];
  checkResults((await writer.request('write', {
    ops: [
      { sql: "SELECT * FROM tego.plugin_upgrade('users', '1.1.0')", params: [] },
      { sql: "SELECT * FROM tego.plugin_add('forged', NULL, '0.0.1')", params: [] },
      { sql: "SELECT * FROM tego.plugin_update('acl', $1)", params: [{ options: { after: 'forged' } }] },
      ...changes(20, prng(SEED + 2)),
    ],
  })).results);
  const states = await assertConverged(t);
  const target = await eventSeq();
  for (const s of states) {
    assert.equal(s.lastSeq, target, `${s.worker}'s position is the log's, not a forged one`);
    assert.equal(s.plugins.find((p) => p.name === 'users')?.version, '1.1.0', `${s.worker} applied the real upgrade`);
    assert.equal(s.plugins.find((p) => p.name === 'forged')?.version, '0.0.1', `${s.worker} has the real "forged" row`);
  }
});

test('an app job due every second runs exactly once per tick, over about 10 s', { timeout: 40000 }, async (t) => {
  // Schedule and stop at half past a second, so that no tick lies near the
  // boundaries: the ticks are the whole seconds between the two commits.
  const halfPast = async (sql, params) => {
    await sleep((1500 - (Date.now() % 1000)) % 1000);
    const t0 = Date.now();
    await admin.query(sql, params);
    const t1 = Date.now();
    assert.equal(Math.floor(t0 / 1000), Math.floor((t1 + 10) / 1000),
      `committed away from a second boundary (${t0 % 1000} to ${t1 % 1000} ms)`);
    return t1;
  };
  const from = await halfPast(`SELECT tego.schedule_app('tick', '* * * * * *', '{"kind": "tick"}', username => $1,
                       claim_timeout => '2 seconds', heartbeat_timeout => '2 seconds')`, [APP_ROLE]);
  await sleep(10000);
  const to = await halfPast("SELECT tego.alter_job('tick', active => false)");

  await waitFor('the last tick to finish', async () => {
    const { rows: [r] } = await admin.query(
      "SELECT count(*)::int AS n FROM tego.job_runs WHERE job_name = 'tick' AND status IN ('queued', 'pending', 'running')");
    return r.n === 0;
  }, 5000);

  const expected = [];
  for (let s = Math.ceil(from / 1000); s * 1000 < to; s++) expected.push(s);
  const { rows: runs } = await admin.query(
    `SELECT run_id::int AS run_id, extract(epoch FROM scheduled_for)::float8 AS s, status, attempt, worker
       FROM tego.job_runs WHERE job_name = 'tick' ORDER BY scheduled_for`);
  assert.deepEqual(runs.map((r) => r.s), expected, 'one run for every second, none missed, none extra');
  for (const r of runs) {
    assert.equal(r.status, 'succeeded', `tick ${r.s}: ${r.status}`);
    assert.equal(r.attempt, 1, `tick ${r.s} ran on its first attempt`);
  }
  const { rows: log } = await admin.query(
    `SELECT run_id::int AS run_id, array_agg(phase || ':' || worker ORDER BY phase) AS did
       FROM run_log WHERE job = 'tick' GROUP BY run_id ORDER BY run_id`);
  const did = new Map(log.map((l) => [l.run_id, l.did]));
  const perWorker = {};
  for (const r of runs) {
    assert.deepEqual(did.get(r.run_id), [`claimed:${r.worker}`, `done:${r.worker}`],
      `tick ${r.s} was claimed and done once, by the worker that holds it`);
    perWorker[r.worker] = (perWorker[r.worker] ?? 0) + 1;
  }
  assert.equal(log.length, runs.length, 'run_log has no other tick runs');
  t.diagnostic(`${runs.length} ticks, by worker: ${JSON.stringify(perWorker)}`);
});

test('a process killed while it holds a claimed run: another one runs it, once', { timeout: 40000 }, async (t) => {
  await admin.query(`SELECT tego.schedule_app('crashy', '0 0 1 1 *', '{"kind": "crashy"}', username => $1,
                       max_attempts => 3, claim_timeout => '2 seconds', heartbeat_timeout => '1 second')`, [APP_ROLE]);
  const hanging = new Promise((resolve) => {
    for (const w of alive()) w.once('hanging', (m) => resolve({ w, m }));
  });
  const { rows: [r] } = await admin.query("SELECT tego.run_now('crashy') AS id");
  const id = int(r.id);
  const { w: victim, m } = await Promise.race([hanging, sleep(5000).then(() => ({}))]);
  assert.ok(victim, 'a worker claimed the run');
  assert.equal(m.run_id, id);
  // its heartbeats keep the run its own past claim_timeout and heartbeat_timeout
  await sleep(2500);
  const { rows: [held] } = await admin.query(
    `SELECT status, worker, attempt, clock_timestamp() - heartbeat_at < interval '1 second' AS beating
       FROM tego.job_runs WHERE run_id = $1`, [id]);
  assert.deepEqual(held, { status: 'running', worker: victim.name, attempt: 1, beating: true },
    'still held by the worker that sends heartbeats, 2.5 s after its claim');

  const killed = Date.now();
  victim.kill('SIGKILL');
  const run = await waitFor('the run to end', async () => {
    const { rows: [r] } = await admin.query(
      'SELECT status, worker, attempt, message, finished_at FROM tego.job_runs WHERE run_id = $1', [id]);
    return ['succeeded', 'failed'].includes(r.status) ? r : null;
  }, 15000);
  const took = Date.now() - killed;
  const { rows: [retry] } = await admin.query(
    `SELECT extract(epoch FROM started_at)::float8 * 1000 AS claimed FROM tego.job_runs WHERE run_id = $1`, [id]);
  assert.equal(run.status, 'succeeded');
  assert.equal(run.attempt, 2, 'succeeded on the second attempt');
  assert.notEqual(run.worker, victim.name, 'finished by another worker');

  const { rows: log } = await admin.query(
    "SELECT phase, attempt, worker FROM run_log WHERE run_id = $1 ORDER BY logged_at", [id]);
  assert.deepEqual(log, [
    { phase: 'claimed', attempt: 1, worker: victim.name },
    { phase: 'claimed', attempt: 2, worker: run.worker },
    { phase: 'done', attempt: 2, worker: run.worker },
  ], 'claimed by the victim, then claimed and done once by another worker');
  const { rows: due } = await admin.query(
    `SELECT (payload->>'attempt')::int AS attempt FROM tego.events_since(0, '{tego_jobs}', 100000)
      WHERE event = 'run-due' AND (payload->>'run_id')::bigint = $1 ORDER BY seq`, [id]);
  assert.deepEqual(due.map((d) => d.attempt), [1, 2], 'announced as due twice: attempts 1 and 2');
  t.diagnostic(`${victim.name} killed after holding the run 2.5 s; ${run.worker} claimed it again ` +
    `${Math.round(retry.claimed - killed)} ms later (heartbeat_timeout 1 s), finished ${took} ms after the kill`);
});

test('a process started later loads the registry; all copies stay identical', { timeout: 40000 }, async (t) => {
  const late = spawn('w4');
  await late.ready;
  const writer = alive()[0];
  checkResults((await writer.request('write', { ops: changes(30, prng(SEED + 1)) })).results);
  const states = await assertConverged(t);
  assert.equal(states.length, 4, 'three of the first processes and the late one');
  assert.equal(states.find((s) => s.worker === 'w4').stats.loads, 1);
});
