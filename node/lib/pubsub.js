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

const crypto = require('node:crypto');
const { LogReader } = require('./hub');

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
    this.reader = new LogReader(this.hub, {
      topics: () => [...this.topics.keys()],
      onEvent: (e) => this.deliver(e),
    });
    this.wake = () => this.reader.wake();
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
    await this.hub.listen(topic, this.wake);
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
    await this.hub.query('SELECT tego.publish($1, $2)',
      [channelTopic(channel), { channel, data: message }]);
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
