'use strict';
// One LISTEN connection per attached app, shared by the registry watcher,
// the pub-sub adapter and the cron manager, plus a pool for tego's calls.
//
// Notifications are hints: PostgreSQL lets every role that can connect
// NOTIFY any channel.  A notification only wakes the reader of a channel,
// which reads tego.events_since() (or claims with tego.job_claim()); what
// those return is the truth.  After a lost connection the hub connects
// again, LISTENs on every channel, and wakes every reader, so that each
// catches up from its last position.

const { EventEmitter } = require('node:events');
const pg = require('pg');

// Sleep for ms milliseconds.
function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

class Hub extends EventEmitter {
  constructor(config, { name = 'tego', reconnectMs = 200 } = {}) {
    super();
    this.config = config;
    this.name = name;
    this.reconnectMs = reconnectMs;
    this.pool = new pg.Pool({ ...config, application_name: `${name}:pool`, max: config.max || 4 });
    this.pool.on('error', (err) => this.emit('warning', err));
    this.readers = new Map(); // channel -> Set of wake functions
    this.client = null;
    this.closed = false;
    this.connecting = null;
    this.generation = 0;
  }

  // Register wake() for channel; LISTEN on the live connection at once.
  async listen(channel, wake) {
    let set = this.readers.get(channel);
    const fresh = !set;
    if (fresh) {
      set = new Set();
      this.readers.set(channel, set);
    }
    set.add(wake);
    if (fresh && this.client) {
      await this.client.query(`LISTEN ${pg.escapeIdentifier(channel)}`).catch((err) => this.lost(err));
    }
  }

  // Remove wake() from channel (UNLISTEN when none is left).
  async unlisten(channel, wake) {
    const set = this.readers.get(channel);
    if (!set) return;
    set.delete(wake);
    if (set.size === 0) {
      this.readers.delete(channel);
      if (this.client) await this.client.query(`UNLISTEN ${pg.escapeIdentifier(channel)}`).catch(() => {});
    }
  }

  // Connect (once; retried until it works while the hub is open).
  start() {
    if (!this.connecting) this.connecting = this.connectLoop();
    return this.connecting;
  }

  async connectLoop() {
    while (!this.closed) {
      try {
        await this.connectOnce();
        return;
      } catch (err) {
        this.emit('warning', err);
        await sleep(this.reconnectMs);
      }
    }
  }

  async connectOnce() {
    const gen = ++this.generation;
    const client = new pg.Client({ ...this.config, application_name: `${this.name}:listen` });
    client.on('error', (err) => this.lost(err, client));
    client.on('end', () => this.lost(new Error('connection ended'), client));
    client.on('notification', (n) => {
      if (gen !== this.generation) return;
      this.wake(n.channel);
    });
    try {
      await client.connect();
      for (const channel of this.readers.keys()) {
        await client.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
      }
    } catch (err) {
      client.removeAllListeners('notification');
      client.end().catch(() => {});
      throw err;
    }
    this.client = client;
    this.emit('connected');
    // after LISTEN: whatever was committed before is in the log
    for (const channel of this.readers.keys()) this.wake(channel);
  }

  // Wake every reader of channel.
  wake(channel) {
    for (const w of this.readers.get(channel) ?? []) {
      try {
        w();
      } catch (err) {
        this.emit('warning', err);
      }
    }
  }

  // The LISTEN connection failed: connect again after a pause.
  lost(err, client = this.client) {
    if (!client || client !== this.client) return;
    this.client = null;
    this.generation++;
    client.removeAllListeners('notification');
    client.end().catch(() => {});
    if (this.closed) return;
    this.emit('disconnected', err);
    this.connecting = sleep(this.reconnectMs).then(() => this.connectLoop());
  }

  get connected() {
    return this.client !== null;
  }

  async query(text, params) {
    return this.pool.query(text, params);
  }

  async close() {
    this.closed = true;
    const c = this.client;
    this.client = null;
    this.generation++;
    if (c) await c.end().catch(() => {});
    await this.pool.end().catch(() => {});
  }
}

/**
 * A reader of the event log for a set of topics: wake() queues one read of
 * tego.events_since() after the last seq it handled (reads run one at a
 * time; wakes during a read share the next one), and hands each event to
 * onEvent in seq order, once.
 */
class LogReader {
  constructor(hub, { topics = () => [], onEvent, pageSize = 1000 }) {
    this.hub = hub;
    this.topics = topics;
    this.onEvent = onEvent;
    this.pageSize = pageSize;
    this.last = null; // null: not positioned yet
    this.queued = false;
    this.reading = Promise.resolve();
  }

  // Position at the log's end (call after LISTEN).
  async position() {
    if (this.last !== null) return;
    const { rows } = await this.hub.query('SELECT tego.event_seq() AS s');
    if (this.last === null) this.last = Number(rows[0].s);
  }

  wake() {
    if (this.queued) return this.reading;
    this.queued = true;
    this.reading = this.reading
      .then(async () => {
        this.queued = false;
        await this.read();
      })
      .catch((err) => this.hub.emit('warning', err));
    return this.reading;
  }

  /**
   * Events that another call returned (tego.wait_events from `after`, for
   * every topic this reader reads now): handled in turn with the reads,
   * those past the last seq only.  accept() is asked just before, as the
   * reader's topics may have changed meanwhile; when it says no, a read
   * runs instead.
   */
  offer(rows, accept) {
    this.reading = this.reading
      .then(async () => {
        if (!accept()) {
          await this.read();
          return;
        }
        await this.handle(rows);
      })
      .catch((err) => this.hub.emit('warning', err));
    return this.reading;
  }

  async handle(rows) {
    for (const e of rows) {
      const seq = Number(e.seq);
      if (seq <= this.last) continue;
      this.last = seq;
      try {
        await this.onEvent(e);
      } catch (err) {
        this.hub.emit('warning', err);
      }
    }
  }

  async read() {
    if (this.last === null) await this.position();
    const topics = this.topics();
    if (topics.length === 0) return;
    for (;;) {
      let rows;
      try {
        ({ rows } = await this.hub.query(
          'SELECT seq, topic, event, key, payload FROM tego.events_since($1, $2, $3)',
          [this.last, topics, this.pageSize]));
      } catch (err) {
        if (err.code !== 'TG001') throw err;
        // the position was compacted away: what is lost is lost, go on from the end
        this.hub.emit('warning', new Error(`tego: event log compacted past seq ${this.last}; resuming at its end`));
        this.last = null;
        await this.position();
        continue;
      }
      await this.handle(rows);
      if (rows.length < this.pageSize) return;
    }
  }
}

module.exports = { Hub, LogReader, sleep };
