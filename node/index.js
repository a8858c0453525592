'use strict';
// Plugs tego into a @tego/core (TachyBase) Application:
//
//   const { attachTego } = require('@tego/pg');
//   const app = new Application(options);
//   const tego = await attachTego(app);      // before app.load()/runAsCLI()
//
// What it changes, for this app, in every process that attaches it:
//   registry   applicationPlugins is tego's view tego."applicationPlugins",
//              kept out of db.sync(); other processes' changes are applied
//              here (reload or restart, as after pm.enable); install() runs
//              once per cluster under the plugin's operation guard;
//   pub-sub    app.pubSubManager gets a TegoPubSubAdapter (tego.publish +
//              LISTEN, read from the event log), so SyncMessageManager
//              messages reach every process;
//   cron       app.cronJobManager is a TegoCronJobManager: a job fires once
//              per tick across all processes (tego app jobs);
//   status     AppSupervisor statuses and maintaining commands go to
//              tego.apps.
//
// Nothing of @tego/core is patched: the app instance's init() and
// createDatabase() are wrapped so that the above is set up again on every
// reload (TachyBase rebuilds its database, plugin manager, pub-sub manager
// and cron manager then), with TachyBase's own hooks (collection
// definition events, the collection option sync: false, setAdapter).

const os = require('node:os');
const { Hub } = require('./lib/hub');
const { Registry, redirectCollection, checkCollection, VIEW_NAME, VIEW_SCHEMA } = require('./lib/registry');
const { PubSubHub, TegoPubSubAdapter, channelTopic } = require('./lib/pubsub');
const { TegoCronJobManager, JobRunner } = require('./lib/cron');
const { StatusMirror } = require('./lib/status');

const DEFAULTS = {
  installTimeout: '10 minutes', // the guard's timeout while install() runs
  installPollMs: 200, // how often a process waiting for another's install() looks again
  installGraceMs: 2000, // before another process takes over a pending install
  cron: { claimTimeout: '1 minute', heartbeatTimeout: '30 seconds', heartbeatMs: 5000, maxAttempts: 3 },
  pubsub: true,
  pubsubWait: true, // a tego.wait_events() connection as the messages' fast path
  durableMessages: false, // true: publish waits for the WAL flush (synchronous_commit)
  cronJobs: true,
  status: true,
};

// node-postgres settings from the app's database options (Sequelize style).
function connectionFrom(app) {
  const d = (app.options && app.options.database) || {};
  const o = d.options || d;
  const c = {};
  if (o.host) c.host = o.host;
  if (o.port) c.port = Number(o.port);
  if (o.database) c.database = o.database;
  if (o.username || o.user) c.user = o.username || o.user;
  if (o.password) c.password = o.password;
  return c;
}

class Tego {
  constructor(app, options = {}) {
    this.app = app;
    this.options = {
      ...DEFAULTS,
      ...options,
      cron: { ...DEFAULTS.cron, ...(options.cron || {}) },
    };
    this.config = { ...connectionFrom(app), ...(options.connection || {}) };
    this.name = `tb:${app.name}:${process.pid}`.slice(0, 63);
    this.worker = options.worker || `${os.hostname()}:${process.pid}:${app.name}`.slice(0, 200);
    this.hub = new Hub(this.config, { name: this.name });
    this.registry = new Registry(this);
    this.pubsub = new PubSubHub(this);
    this.jobs = new JobRunner(this);
    this.status = new StatusMirror(this);
    this.stats = { applied: 0, installs: 0 };
    this.closed = false;
    this.reloading = false;
  }

  // Set up the current database, plugin manager, pub-sub and cron managers
  // of the app (after each init()).
  afterInit() {
    const app = this.app;
    this.registry.attachPluginManager(app.pm);
    this.registry.wrapAll();
    if (this.options.pubsub && app.pubSubManager) {
      const adapter = new TegoPubSubAdapter(this.pubsub);
      this.pubsub.replace(adapter);
      app.pubSubManager.setAdapter(adapter);
    }
    if (this.options.cronJobs) {
      app._cronJobManager = new TegoCronJobManager(this, app);
    }
  }

  // The database of a new init(): the registry collection on the view.
  prepareDatabase(db) {
    db.on('beforeDefineCollection', redirectCollection);
    db.on('afterDefineCollection', checkCollection);
    const existing = db.getCollection && db.getCollection(VIEW_NAME);
    if (existing) checkCollection(existing);
  }

  async start() {
    const app = this.app;
    // the view must be there and readable: never an empty registry by mistake
    try {
      await this.hub.query(`SELECT 1 FROM ${VIEW_SCHEMA}."${VIEW_NAME}" LIMIT 0`);
    } catch (err) {
      throw new Error(`tego: cannot read the plugin registry ${VIEW_SCHEMA}."${VIEW_NAME}" ` +
        `(${err.message}); create the extension tego in this database and grant the app's role ` +
        'the privileges listed in the README', { cause: err });
    }
    const createDatabase = app.createDatabase;
    const tego = this;
    app.createDatabase = function tegoCreateDatabase(...args) {
      const db = createDatabase.apply(this, args);
      tego.prepareDatabase(db);
      return db;
    };
    const init = app.init;
    app.init = function tegoInit(...args) {
      const r = init.apply(this, args);
      tego.afterInit();
      return r;
    };
    // the app's constructor ran init() before: run it again, wrapped, so
    // that its database, plugin manager and managers are tego's
    if (app._loaded) throw new Error('tego: attach tego before app.load() (and before runAsCLI)');
    app.init();
    app.on('beforeReload', () => { this.reloading = true; });
    app.on('afterReload', () => { this.reloading = false; });
    if (this.options.pubsub) {
      // hold sync messages from before the handlers go (SyncMessageManager
      // unsubscribes them on beforeStop) until the new pub-sub manager has
      // subscribed them again (its afterStart) or a reload without a
      // restart is over
      let stopping = false;
      app.prependListener('beforeStop', () => { stopping = true; this.pubsub.suspend(); });
      app.prependListener('beforeReload', () => this.pubsub.suspend());
      app.on('afterReload', () => { if (!stopping) this.pubsub.resume(); });
      app.on('__started', () => { stopping = false; this.pubsub.resume(); });
    }
    if (this.options.cronJobs) {
      app.on('afterStart', () => app.cronJobManager.start && app.cronJobManager.start());
      app.on('beforeStop', () => app.cronJobManager.stop && app.cronJobManager.stop());
      app.on('beforeReload', () => app.cronJobManager.stop && app.cronJobManager.stop());
    }
    if (this.options.status && app._appSupervisor) this.status.start(app, app._appSupervisor);
    await this.hub.start();
    await this.registry.start();
    await this.jobs.start();
    return this;
  }

  async close() {
    this.closed = true;
    this.status.stop();
    await this.status.queue.catch(() => {});
    await this.pubsub.close();
    await this.hub.close();
  }
}

/** Attach tego to a @tego/core Application; resolves once it is connected. */
async function attachTego(app, options) {
  if (app.__tego) return app.__tego;
  const tego = new Tego(app, options);
  app.__tego = tego;
  await tego.start();
  return tego;
}

module.exports = { attachTego, Tego, TegoPubSubAdapter, TegoCronJobManager, channelTopic };
