'use strict';
// What one Node.js application process needs to use tego with node-postgres:
//
//   TegoListener    one LISTEN connection for the process: reconnects with
//                   back-off and tells its subscribers when it is connected
//                   again, so that they catch up;
//   PluginRegistry  a process-local copy of tego.plugins (Map name -> row),
//                   loaded once, then fed in seq order by the tego_plugins
//                   events that tego.events_since() returns, read after each
//                   (re)connection and whenever a notification says that
//                   the log may have more;
//   AppJobRunner    runs the app jobs (tego.schedule_app) that this process
//                   claims: woken by run-due events, tego.job_claim(),
//                   heartbeats while a run works, tego.job_finish() in the
//                   transaction that holds the run's own writes.
//
// Notifications are hints, the log is the truth: PostgreSQL lets every role
// that can connect NOTIFY any channel, tego's included, with any payload.
// So nothing here applies what a notification says: a notification only
// makes the registry read the log (tego.events_since) and the job runner
// claim (tego.job_claim), and only what those return is applied.  A forged
// notification costs one read, never a wrong copy nor a skipped event.
//
// The test workers (worker.js) and the benchmark use these classes as they
// are; README "Adopting tego in a TachyBase app" shows the same pattern.

const { EventEmitter } = require('node:events');
const pg = require('pg');

const PLUGINS = 'tego_plugins';
const JOBS = 'tego_jobs';

// Convert an int8 value (node-postgres returns them as strings) to a number.
function int(v) {
  return v === null || v === undefined ? v : Number(v);
}

// The fields of a tego.plugins row that a process keeps, from a table row
// or from an event payload (which also has action, from and to).
function pluginRow(r) {
  return {
    id: int(r.id),
    name: r.name,
    package_name: r.package_name ?? null,
    version: r.version ?? null,
    enabled: r.enabled,
    installed: r.installed,
    built_in: r.built_in,
    sub_view: r.sub_view,
    options: r.options,
    depends_on: r.depends_on,
    state: r.state ?? r.to, // an event payload has the state as "to"
    revision: int(r.revision),
  };
}

// The members a full event payload has (the log keeps them all; should a
// row of the log lack one, the row is read with tego.plugin_get()).
const ROW_FIELDS = ['id', 'name', 'package_name', 'version', 'enabled', 'installed',
  'built_in', 'sub_view', 'options', 'depends_on', 'to'];

// Sleep for ms milliseconds.
function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// Whether err is the loss of the connection (the listener reconnects and
// its subscribers catch up then) rather than an error to report.
function connectionLost(err) {
  const code = String(err?.code ?? '');
  if (/^(08|57P)/.test(code)) return true; // SQLSTATE: connection exception, shutdown
  if (err?.syscall || ['EPIPE', 'ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'ENOTCONN'].includes(code)) {
    return true; // the socket
  }
  return /connection (terminated|ended|error)|not queryable/i.test(String(err?.message ?? err));
}

/**
 * One LISTEN connection with reconnect.  Subscribers register a channel with
 * subscribe(channel, { notify(event), connected(client) }): notify gets each
 * notification's parsed JSON (or { payload: text } when it is not JSON) in
 * arrival order, as a hint only: anyone may have sent it; connected runs
 * after LISTEN on every (re)connection, before any notification of that
 * connection is delivered to notify, and is where a subscriber catches up.
 */
class TegoListener extends EventEmitter {
  constructor({ config = {}, name = 'tego-listener', reconnectDelayMs = 100, minDelayMs = 50,
    maxDelayMs = 2000 } = {}) {
    super();
    this.config = config;
    this.name = name;
    this.reconnectDelayMs = reconnectDelayMs;
    this.minDelayMs = minDelayMs;
    this.maxDelayMs = maxDelayMs;
    this.subs = new Map(); // channel -> [subscriber]
    this.client = null;
    this.generation = 0;
    this.connections = 0;
    this.closed = false;
    this.stats = { held: 0 }; // notifications held while subscribers caught up
  }

  subscribe(channel, sub) {
    if (!this.subs.has(channel)) this.subs.set(channel, []);
    this.subs.get(channel).push(sub);
  }

  // Connect (retrying until it works); resolves once the first connection
  // is established and every subscriber has caught up.
  async start() {
    await this.connectLoop();
  }

  async connectLoop() {
    let delay = this.minDelayMs;
    while (!this.closed) {
      try {
        await this.connectOnce();
        return;
      } catch (err) {
        this.emit('connect-error', err);
        await sleep(delay);
        delay = Math.min(delay * 2, this.maxDelayMs);
      }
    }
  }

  // The servers to try, in order: config.host and config.port may list
  // several, comma-separated, as libpq's host and port do (PGHOST and
  // PGPORT too).  With more than one, the listener connects to the first
  // that accepts writes, as libpq's target_session_attrs=read-write does,
  // so that it follows the primary through failovers.
  targets() {
    const hosts = String(this.config.host ?? process.env.PGHOST ?? 'localhost').split(',');
    const ports = String(this.config.port ?? process.env.PGPORT ?? '5432').split(',');
    return hosts.map((host, i) => ({ host, port: Number(ports[Math.min(i, ports.length - 1)]) }));
  }

  // A connected client to a target (the first writable one when there are
  // several).
  async connectTarget() {
    const targets = this.targets();
    let last;
    for (const t of targets) {
      const client = new pg.Client({ ...this.config, ...t, application_name: this.name });
      client.on('error', () => {}); // replaced once chosen
      try {
        await client.connect();
        if (targets.length > 1) {
          const { rows } = await client.query('SHOW transaction_read_only');
          if (rows[0].transaction_read_only !== 'off') throw new Error(`${t.host}:${t.port} is read-only`);
        }
        client.removeAllListeners('error');
        return client;
      } catch (err) {
        last = err;
        client.end().catch(() => {});
      }
    }
    throw last;
  }

  async connectOnce() {
    const gen = ++this.generation;
    const client = await this.connectTarget();
    let lost = false;
    let established = false;
    const onLost = (err) => {
      if (lost) return;
      lost = true;
      client.removeAllListeners('notification');
      if (this.client === client) this.client = null;
      // before it was established, connectLoop sees the failure and retries
      if (established && !this.closed) {
        this.emit('disconnected', err);
        sleep(this.reconnectDelayMs).then(() => this.connectLoop());
      }
    };
    client.on('error', onLost);
    client.on('end', () => onLost(new Error('connection ended')));
    // Notifications of this connection are held until every subscriber has
    // caught up on it, then delivered in arrival order.
    const held = [];
    let holding = true;
    client.on('notification', (n) => {
      if (gen !== this.generation) return;
      if (holding) held.push(n);
      else this.dispatch(n);
    });
    try {
      for (const channel of this.subs.keys()) {
        await client.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
      }
      for (const subs of this.subs.values()) {
        for (const s of subs) if (s.connected) await s.connected(client);
      }
    } catch (err) {
      lost = true; // a failed attempt: connectLoop retries
      client.removeAllListeners('notification');
      client.end().catch(() => {});
      throw err;
    }
    if (lost) throw new Error('connection lost while catching up');
    established = true;
    holding = false;
    this.stats.held += held.length;
    for (const n of held) this.dispatch(n);
    this.client = client;
    this.connections++;
    this.emit('connected', this.connections);
  }

  dispatch(n) {
    let event;
    try {
      event = JSON.parse(n.payload);
    } catch {
      event = { payload: n.payload };
    }
    for (const s of this.subs.get(n.channel) ?? []) s.notify(event, n.channel);
  }

  // The pid of the current connection's backend, or null.
  get backendPid() {
    return this.client ? this.client.processID : null;
  }

  async close() {
    this.closed = true;
    const c = this.client;
    this.client = null;
    if (c) await c.end().catch(() => {});
  }
}

/**
 * A process-local copy of tego.plugins.
 *
 * Start: in one REPEATABLE READ snapshot, tego.event_seq() and
 * tego.plugin_list(); then every tego_plugins event with seq > lastSeq, in
 * seq order, as tego.events_since(lastSeq, ARRAY['tego_plugins']) returns
 * them, in pages: after each (re)connection, and whenever a notification
 * on tego_plugins says the log may have more.  A notification is a hint and
 * nothing else: its payload is never applied and the position moves only
 * from the log, so a forged one (a huge seq, a wrong state, garbage) costs
 * one read.  A hint whose seq was applied already costs nothing; hints that
 * arrive while a read is queued share it.  A row never goes back to an
 * older revision.  When the position was compacted away (TG001) the copy is
 * loaded again.
 *
 * Emits 'applied' (event, row or null) after each event it applied.
 */
class PluginRegistry extends EventEmitter {
  constructor(listener, { pageSize = 1000 } = {}) {
    super();
    this.listener = listener;
    this.pageSize = pageSize;
    this.plugins = new Map();
    this.lastSeq = -1; // -1: not loaded yet
    this.chain = Promise.resolve(); // reads, one at a time
    this.queued = false; // a read for hints is queued and has not started
    this.client = null; // the listener's connection, for reads
    this.stats = {
      loads: 0, catchUps: 0, pages: 0, caughtUp: 0, // on (re)connection
      hints: 0, skipped: 0, reads: 0, readPages: 0, fromReads: 0, // on notifications
      reread: 0, stale: 0,
    };
    listener.subscribe(PLUGINS, {
      connected: (client) => this.connected(client),
      notify: (event) => this.hint(event),
    });
  }

  // Run fn after the reads already queued; returns its promise.
  serial(fn) {
    const p = this.chain.then(fn);
    this.chain = p.catch(() => {});
    return p;
  }

  // Called by the listener after LISTEN on a new connection: load the copy
  // on the first one, catch up on each.
  async connected(client) {
    this.client = client;
    await this.serial(async () => {
      if (this.lastSeq < 0) await this.load(client);
      const n = await this.catchUp(client);
      this.stats.catchUps++;
      this.stats.pages += n.pages;
      this.stats.caughtUp += n.applied;
    });
  }

  // A notification on tego_plugins: read the log, unless its seq says that
  // there is nothing new (which is safe to believe: the real notification
  // of a real event always carries that event's seq).
  hint(event) {
    this.stats.hints++;
    const seq = Number(event?.seq);
    if (typeof event?.seq === 'number' && seq <= this.lastSeq) {
      this.stats.skipped++;
      return;
    }
    if (this.queued) return; // the read queued will see what this one announces
    this.queued = true;
    const client = this.client;
    this.serial(async () => {
      this.queued = false;
      if (client !== this.client) return; // a dropped connection's: the new one caught up
      const n = await this.catchUp(client);
      this.stats.reads++;
      this.stats.readPages += n.pages;
      this.stats.fromReads += n.applied;
    }).catch((err) => {
      if (!connectionLost(err)) this.emit('apply-error', err);
    });
  }

  async load(client) {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    try {
      const { rows: [{ seq }] } = await client.query('SELECT tego.event_seq() AS seq');
      const { rows } = await client.query('SELECT * FROM tego.plugin_list()');
      await client.query('COMMIT');
      this.plugins = new Map(rows.map((r) => [r.name, pluginRow(r)]));
      this.lastSeq = int(seq);
      this.stats.loads++;
      this.emit('loaded', this.lastSeq);
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    }
  }

  // Apply what the log has after lastSeq, page by page; { pages, applied }.
  async catchUp(client) {
    const n = { pages: 0, applied: 0 };
    for (;;) {
      let rows;
      try {
        ({ rows } = await client.query(
          'SELECT seq, topic, event, key, payload FROM tego.events_since($1, $2, $3)',
          [this.lastSeq, [PLUGINS], this.pageSize]));
      } catch (err) {
        if (err.code !== 'TG001') throw err;
        await this.load(client); // compacted: read the state again
        continue;
      }
      n.pages++;
      for (const r of rows) {
        if (await this.apply({ ...r, seq: int(r.seq) }, client)) n.applied++;
      }
      if (rows.length < this.pageSize) return n;
    }
  }

  // Apply one tego_plugins event of the log if it is newer than lastSeq;
  // true if applied.
  async apply(event, client) {
    const seq = int(event.seq);
    if (!(seq > this.lastSeq)) return false;
    let row = null;
    if (event.event === 'plugin-state-changed') {
      const p = event.payload ?? {};
      const name = event.key;
      const cur = this.plugins.get(name);
      if (p.action === 'remove') {
        if (!cur || !(cur.revision > seq)) this.plugins.delete(name);
      } else if (ROW_FIELDS.some((f) => !(f in p))) {
        // the payload lacks members: take the row as it is now
        this.stats.reread++;
        try {
          const { rows } = await client.query('SELECT * FROM tego.plugin_get($1)', [name]);
          row = pluginRow(rows[0]);
          if (!cur || !(cur.revision > row.revision)) this.plugins.set(name, row);
        } catch (err) {
          if (err.code !== '42704') throw err;
          this.plugins.delete(name); // removed since: its remove event follows
        }
      } else if (!cur || !(cur.revision > seq)) {
        row = pluginRow({ ...p, revision: seq });
        this.plugins.set(name, row);
      } else {
        this.stats.stale++;
      }
    }
    this.lastSeq = seq;
    this.emit('applied', event, row);
    return true;
  }

  get(name) {
    return this.plugins.get(name);
  }

  // Rows in id order.
  list() {
    return [...this.plugins.values()].sort((a, b) => a.id - b.id);
  }
}

/**
 * Runs the app jobs whose names have a handler.  A run-due notification
 * (or start, or a reconnection) makes it claim until tego.job_claim()
 * returns nothing (a notification is a hint: a forged one costs a claim
 * that returns nothing, since only the runs job_claim hands out are run); each claimed run gets heartbeats while its handler works,
 * and ends with tego.job_finish() in the transaction where the handler made
 * its writes (so a run whose worker lost it leaves no writes behind).
 *
 * handlers: { jobName(run, tx) } where tx is a pg client inside BEGIN;
 * hooks.claimed(run) runs right after a claim, outside that transaction.
 */
class AppJobRunner extends EventEmitter {
  constructor({ pool, listener, worker, handlers, heartbeatMs = 500, maxRuns = 1, hooks = {} }) {
    super();
    this.pool = pool;
    this.worker = worker;
    this.handlers = handlers;
    this.names = Object.keys(handlers);
    this.heartbeatMs = heartbeatMs;
    this.maxRuns = maxRuns;
    this.hooks = hooks;
    this.claiming = false;
    this.again = false;
    this.running = new Set();
    this.stats = { claimed: 0, succeeded: 0, failed: 0, lost: 0, empty: 0 };
    listener.subscribe(JOBS, {
      connected: async () => { this.poke(); },
      notify: (e) => {
        if (e.event === 'run-due' && this.names.includes(e.key)) this.poke();
      },
    });
  }

  // Claim until nothing is left; a poke during a claim loop runs it again.
  poke() {
    if (this.claiming) {
      this.again = true;
      return;
    }
    this.claiming = true;
    (async () => {
      do {
        this.again = false;
        for (;;) {
          let runs;
          try {
            ({ rows: runs } = await this.pool.query(
              'SELECT * FROM tego.job_claim($1, $2, $3)', [this.worker, this.names, this.maxRuns]));
          } catch (err) {
            this.emit('error-soft', err);
            break;
          }
          if (runs.length === 0) {
            this.stats.empty++;
            break;
          }
          this.stats.claimed += runs.length;
          for (const run of runs) this.execute(run); // each run goes on by itself
        }
      } while (this.again);
      this.claiming = false;
    })();
  }

  async execute(run) {
    const id = int(run.run_id);
    this.running.add(id);
    const beat = setInterval(() => {
      this.pool.query('SELECT tego.job_heartbeat($1, $2)', [id, this.worker])
        .catch((err) => this.emit('error-soft', err));
    }, this.heartbeatMs);
    let tx;
    try {
      if (this.hooks.claimed) await this.hooks.claimed(run);
      tx = await this.pool.connect();
      await tx.query('BEGIN');
      await this.handlers[run.job_name](run, tx);
      await tx.query('SELECT tego.job_finish($1, $2, true)', [id, this.worker]);
      await tx.query('COMMIT');
      this.stats.succeeded++;
      this.emit('finished', run, true);
    } catch (err) {
      if (tx) await tx.query('ROLLBACK').catch(() => {});
      try {
        await this.pool.query('SELECT tego.job_finish($1, $2, false, $3)',
          [id, this.worker, String(err?.message ?? err)]);
        this.stats.failed++;
        this.emit('finished', run, false, err);
      } catch (err2) {
        // 55000: not ours any more (it timed out and went to another worker)
        this.stats.lost++;
        this.emit('lost', run, err2);
      }
    } finally {
      clearInterval(beat);
      if (tx) tx.release();
      this.running.delete(id);
    }
  }
}

module.exports = { TegoListener, PluginRegistry, AppJobRunner, pluginRow, int, sleep, connectionLost };
