'use strict';
// TachyBase's IPubSubAdapter over tego: publish is tego.publish (a durable,
// numbered event, sent after commit), delivery is LISTEN as a hint plus
// tego.events_since() as the truth, with catch-up after a lost connection.
//
// TachyBase channels ("<app>.sync.<plugin>") may be longer than the 63 bytes
// of a NOTIFY channel, and an app may be named tego_...: tego topics are
// neither.  Each channel maps to the topic "tb_" + the first 40 hex digits
// of its SHA-256, and the message carries the real channel, which the
// reader checks before delivering.
//
// While the app stops, reloads and starts again (after a plugin change,
// here or in another process), its handlers are unsubscribed and subscribed
// anew.  The reader is suspended for that time and keeps its position, so
// that messages published meanwhile are delivered once the handlers are
// back, instead of being read past for lack of a subscriber.
//
// A message is committed with synchronous_commit = off unless the option
// durableMessages is set: it is delivered without waiting for the WAL
// flush, as TachyBase's own adapters deliver without storing, and a crash
// of the server can lose the last ones (those of the last few hundred
// milliseconds, see wal_writer_delay); tego never gives their seqs to
// other events, so no reader skips anything.
//
// Delivery has a fast path: a connection of its own keeps a
// tego.wait_events() call running for the subscribed topics, which returns
// the events as soon as they commit, saving the round trip from a
// notification to the read it triggers.  While that call covers every
// subscribed topic, notifications for them are not followed; when it does
// not (a topic subscribed since it began, a lost connection), they are.

const crypto = require('node:crypto');
const pg = require('pg');
const { LogReader, sleep } = require('./hub');

// How long one tego.wait_events() call waits (it is renewed at once): also
// the longest time a newly subscribed topic goes without the fast path.
const WAIT_TIMEOUT = '2 seconds';

// The tego topic of a TachyBase channel.
function channelTopic(channel) {
  return 'tb_' + crypto.createHash('sha256').update(String(channel)).digest('hex').slice(0, 40);
}

/**
 * The messages of every adapter of one app, read from the log by one reader.
 * Only the current adapter (the one the app's latest init() installed)
 * delivers: @tego/core builds a new PubSubManager on every reload and
 * reconnects the old ones too.
 */
class PubSubHub {
  constructor(tego) {
    this.tego = tego;
    this.hub = tego.hub;
    this.current = null;
    this.topics = new Map(); // topic -> Map(channel -> Set(callback))
    this.suspended = false;
    this.reader = new LogReader(this.hub, {
      // nothing is read (and the position stays) while suspended
      topics: () => (this.suspended ? [] : [...this.topics.keys()]),
      onEvent: (e) => this.deliver(e),
    });
    this.wake = () => {
      if (!this.covered()) this.reader.wake();
    };
    this.waitTopics = null; // the topics of the running wait_events call
    this.waitClient = null;
    this.waiting = null;
    this.closed = false;
  }

  // Does the running wait_events call cover every subscribed topic?
  covered() {
    if (this.waitTopics === null || this.suspended) return false;
    for (const topic of this.topics.keys()) if (!this.waitTopics.has(topic)) return false;
    return true;
  }

  // Keep a wait_events call running while there is something to wait for.
  startWaiting() {
    if (!this.waiting && !this.closed && this.tego.options.pubsubWait) {
      this.waiting = this.waitLoop().finally(() => { this.waiting = null; });
    }
  }

  async waitLoop() {
    while (!this.closed && !this.suspended && this.topics.size > 0) {
      const topics = [...this.topics.keys()];
      let rows;
      try {
        await this.reader.position();
        if (!this.waitClient) {
          const client = new pg.Client({ ...this.tego.config, application_name: `${this.tego.name}:wait`.slice(0, 63) });
          client.on('error', () => {});
          await client.connect();
          this.waitClient = client;
        }
        this.waitTopics = new Set(topics);
        ({ rows } = await this.waitClient.query({
          name: 'tego_pubsub_wait',
          text: 'SELECT seq, topic, event, key, payload FROM tego.wait_events($1, $2, $3)',
          values: [this.reader.last, topics, WAIT_TIMEOUT],
        }));
      } catch (err) {
        this.waitTopics = null;
        const c = this.waitClient;
        this.waitClient = null;
        if (c) c.end().catch(() => {});
        if (this.closed) return;
        this.hub.emit('warning', err);
        this.reader.wake(); // the notifications' path takes over meanwhile
        await sleep(this.hub.reconnectMs);
        continue;
      }
      const waited = new Set(topics);
      if (rows.length > 0) {
        await this.reader.offer(rows, () => {
          if (this.suspended) return false;
          for (const topic of this.topics.keys()) if (!waited.has(topic)) return false;
          return true;
        });
      }
    }
    this.waitTopics = null;
  }

  async subscribe(adapter, channel, callback) {
    if (adapter !== this.current) return;
    await this.reader.position();
    const topic = channelTopic(channel);
    let byChannel = this.topics.get(topic);
    if (!byChannel) {
      byChannel = new Map();
      this.topics.set(topic, byChannel);
    }
    if (!byChannel.has(channel)) byChannel.set(channel, new Set());
    byChannel.get(channel).add(callback);
    const fresh = !this.hub.readers.has(topic);
    await this.hub.listen(topic, this.wake);
    // a message committed before the LISTEN sent no notification
    if (fresh) this.wake();
    this.startWaiting();
  }

  // The app is stopping or reloading: hold the reader where it is.
  suspend() {
    this.suspended = true;
  }

  // The app's handlers are subscribed again: read what came meanwhile.
  resume() {
    if (!this.suspended) return;
    this.suspended = false;
    this.reader.wake();
    this.startWaiting();
  }

  async close() {
    this.closed = true;
    const c = this.waitClient;
    this.waitClient = null;
    this.waitTopics = null;
    if (c) await c.end().catch(() => {});
  }

  async unsubscribe(adapter, channel, callback) {
    const topic = channelTopic(channel);
    const byChannel = this.topics.get(topic);
    const set = byChannel && byChannel.get(channel);
    if (!set) return;
    set.delete(callback);
    if (set.size === 0) byChannel.delete(channel);
    if (byChannel.size === 0) {
      this.topics.delete(topic);
      await this.hub.unlisten(topic, this.wake);
    }
  }

  // A new adapter for the app: the callbacks of the previous ones go.
  replace(adapter) {
    this.current = adapter;
    for (const topic of this.topics.keys()) this.hub.unlisten(topic, this.wake);
    this.topics.clear();
  }

  async deliver(e) {
    if (e.event !== 'message') return;
    const m = e.payload && e.payload.message;
    if (!m || typeof m !== 'object' || typeof m.channel !== 'string') return;
    const byChannel = this.topics.get(e.topic);
    const set = byChannel && byChannel.get(m.channel);
    if (!set) return;
    const data = typeof m.data === 'string' ? m.data : JSON.stringify(m.data);
    for (const cb of [...set]) {
      try {
        await cb(data);
      } catch (err) {
        this.hub.emit('warning', err);
      }
    }
  }

  async publish(channel, message) {
    const value = { channel, data: message };
    if (this.tego.options.durableMessages) {
      await this.hub.query('SELECT tego.publish($1, $2)', [channelTopic(channel), value]);
    } else {
      // the commit does not wait for the WAL flush (see the header)
      await this.hub.query("SELECT pg_catalog.set_config('synchronous_commit', 'off', true), tego.publish($1, $2)",
        [channelTopic(channel), value]);
    }
  }
}

/** IPubSubAdapter of @tego/core 1.6.3. */
class TegoPubSubAdapter {
  constructor(pubsub) {
    this.pubsub = pubsub;
    this.connected = false;
  }

  // PubSubManager.publish calls this without awaiting it: a plain boolean.
  isConnected() {
    return this.connected && this.pubsub.current === this;
  }

  async connect() {
    if (this.pubsub.current !== this) return;
    await this.pubsub.tego.hub.start();
    this.connected = true;
  }

  async close() {
    this.connected = false;
  }

  async subscribe(channel, callback) {
    await this.pubsub.subscribe(this, channel, callback);
  }

  async unsubscribe(channel, callback) {
    await this.pubsub.unsubscribe(this, channel, callback);
  }

  async publish(channel, message) {
    await this.pubsub.publish(channel, message);
  }
}

module.exports = { PubSubHub, TegoPubSubAdapter, channelTopic };
