'use strict';
// The plugin registry of a TachyBase app, served by tego:
//
// - the applicationPlugins collection is pointed at the view
//   tego."applicationPlugins" (schema tego, its own table name whatever the
//   database's underscored or tablePrefix options say, camelCase columns)
//   and kept out of db.sync() with the collection option sync: false, which
//   TachyBase's own sync runner honours;
// - every process applies the registry changes of the others: the
//   tego_plugins events that tego.events_since() returns name the plugins
//   that changed; when this process's plugin manager differs from the
//   registry (a plugin added, removed, enabled or disabled elsewhere), the
//   app reloads or restarts as @tego/core does after pm.enable;
// - a plugin's install() runs once per cluster, under the plugin's
//   operation guard (tego.plugin_begin/plugin_end): the holder re-reads the
//   row under the guard and skips install() when another process has run
//   it; a failed install() leaves the plugin not enabled (TachyBase's own
//   recovery write, made under the guard); a plugin left enabled with its
//   install pending by a process that died is installed by another one.

const pg = require('pg');
const { LogReader, sleep } = require('./hub');

const VIEW_SCHEMA = 'tego';
const VIEW_NAME = 'applicationPlugins';

// beforeDefineCollection listener: the registry collection on tego's view.
function redirectCollection(options) {
  if (options.name !== VIEW_NAME) return;
  options.schema = VIEW_SCHEMA;
  options.tableName = VIEW_NAME;
  options.underscored = false; // the view's columns are camelCase
  options.sync = false; // a view: TachyBase's sync runner skips the collection
}

// afterDefineCollection check: the model must name the view (a tablePrefix
// is added by Sequelize's beforeDefine hook: take it back off); anything
// else is refused, never read as an empty registry.
function checkCollection(collection) {
  if (collection.name !== VIEW_NAME) return;
  const model = collection.model;
  if (model.tableName !== VIEW_NAME) model.tableName = VIEW_NAME;
  const schema = collection.collectionSchema();
  if (schema !== VIEW_SCHEMA || model.tableName !== VIEW_NAME || collection.options.underscored) {
    throw new Error(`tego: the ${VIEW_NAME} collection resolves to ${schema}.${model.tableName}, not to ` +
      `the view ${VIEW_SCHEMA}."${VIEW_NAME}"; define it without its own schema, table name or underscored option`);
  }
}

class Registry {
  constructor(tego) {
    this.tego = tego;
    this.app = tego.app;
    this.hub = tego.hub;
    this.pending = new Set(); // names whose change this process has not applied yet
    this.applying = null;
    this.takeovers = new Map(); // name -> promise of a pending-install takeover
    this.reader = new LogReader(this.hub, {
      topics: () => ['tego_plugins'],
      onEvent: (e) => this.onEvent(e),
    });
    this.wake = () => this.reader.wake();
  }

  async start() {
    await this.hub.listen('tego_plugins', this.wake);
    await this.reader.position();
  }

  onEvent(e) {
    if (e.event === 'plugin-state-changed') {
      this.pending.add(e.key);
      this.schedule();
    }
  }

  // Apply the pending changes once the app is idle (not loading, not
  // running a command of its own); one at a time.
  schedule() {
    if (this.applying) return;
    this.applying = (async () => {
      while (this.pending.size > 0 && !this.tego.closed) {
        if (!this.idle()) {
          await sleep(50);
          continue;
        }
        const names = [...this.pending];
        this.pending.clear();
        try {
          await this.apply(names);
        } catch (err) {
          this.hub.emit('warning', err);
          for (const n of names) this.pending.add(n);
          await sleep(500);
        }
      }
    })().finally(() => {
      this.applying = null;
      if (this.pending.size > 0 && !this.tego.closed) this.schedule();
    });
  }

  idle() {
    const app = this.app;
    // NB: not app._maintaining, which a failed command leaves set
    return app._loaded && !app.activatedCommand && !this.tego.reloading;
  }

  // Compare this process's plugin manager with the registry rows of names;
  // reload or restart the app when they differ; then see to pending installs.
  async apply(names) {
    const { rows } = await this.hub.query(
      'SELECT name, enabled, installed FROM tego."applicationPlugins" WHERE name = ANY($1)', [names]);
    const byName = new Map(rows.map((r) => [r.name, r]));
    const pm = this.app.pm;
    let differs = false;
    for (const name of names) {
      const row = byName.get(name);
      const plugin = pm.get(name);
      if (plugin && plugin.options && plugin.options.isPreset) continue;
      if (!row) {
        if (plugin) differs = true;
      } else if (!plugin || Boolean(plugin.enabled) !== Boolean(row.enabled)) {
        differs = true;
      }
    }
    if (differs) {
      this.tego.stats.applied++;
      this.hub.emit('apply', names);
      await this.app.tryReloadOrRestart();
      this.hub.emit('applied', names);
    }
    for (const row of rows) {
      if (row.enabled && !row.installed) this.takeOver(row.name);
    }
  }

  // A plugin enabled with its install pending: after a grace period (the
  // enabling process normally takes the guard first), run the guarded
  // install here; it waits for a live holder and skips when the holder
  // installed it.
  takeOver(name) {
    if (this.takeovers.has(name)) return;
    const p = (async () => {
      await sleep(this.tego.options.installGraceMs);
      const { rows } = await this.hub.query(
        'SELECT enabled, installed FROM tego."applicationPlugins" WHERE name = $1', [name]);
      if (!rows[0] || !rows[0].enabled || rows[0].installed) return;
      while (!this.idle()) await sleep(50);
      const plugin = this.app.pm.get(name);
      if (!plugin || !plugin.enabled || plugin.installed) return;
      await this.app.db.sync();
      await plugin.install();
      plugin.installed = true;
    })().catch((err) => this.hub.emit('warning', err))
      .finally(() => this.takeovers.delete(name));
    this.takeovers.set(name, p);
  }

  // Wrap the install() of a plugin instance so that it runs under the
  // plugin's operation guard, once per cluster.
  wrapInstall(plugin) {
    if (plugin.__tegoInstall) return;
    const original = plugin.install;
    const registry = this;
    plugin.__tegoInstall = original;
    plugin.install = async function tegoGuardedInstall(...args) {
      return registry.guardedInstall(this, original, args);
    };
  }

  async guardedInstall(plugin, original, args) {
    const name = plugin.name;
    const holder = this.tego.worker;
    // the guard belongs to this session: a process that dies lets it go
    const client = new pg.Client({ ...this.tego.config, application_name: `${this.tego.name}:install` });
    await client.connect();
    try {
      for (;;) {
        try {
          await client.query("SELECT tego.plugin_begin($1, 'install', $2, $3)",
            [name, holder, this.tego.options.installTimeout]);
          break;
        } catch (err) {
          if (err.code === '42704') return original.apply(plugin, args); // not in the registry
          if (err.code !== '55006') throw err; // 55006: another process is installing it
          await sleep(this.tego.options.installPollMs);
        }
      }
      const { rows } = await client.query(
        'SELECT enabled, installed FROM tego."applicationPlugins" WHERE name = $1', [name]);
      const row = rows[0];
      if (row && row.installed) {
        // another process ran install(): nothing to do here
        await client.query('SELECT tego.plugin_end($1, $2, true)', [name, holder]);
        return undefined;
      }
      if (!row || !row.enabled) {
        await client.query('SELECT tego.plugin_end($1, $2, false, $3)',
          [name, holder, 'not enabled any more']);
        throw new Error(`tego: plugin "${name}" is no longer enabled; its install() was not run`);
      }
      let result;
      try {
        this.tego.stats.installs++;
        result = await original.apply(plugin, args);
      } catch (err) {
        // as on TachyBase's own table: the plugin ends not enabled
        await client.query(
          'UPDATE tego."applicationPlugins" SET enabled = false, installed = false WHERE name = $1', [name])
          .catch((e) => this.hub.emit('warning', e));
        await client.query('SELECT tego.plugin_end($1, $2, false, $3)',
          [name, holder, String(err && err.message || err).slice(0, 8000)]).catch(() => {});
        throw err;
      }
      await client.query('UPDATE tego."applicationPlugins" SET installed = true WHERE name = $1', [name]);
      try {
        await client.query('SELECT tego.plugin_end($1, $2, true)', [name, holder]);
      } catch (err) {
        if (err.code !== '55000') throw err; // marking it installed ended the operation already
      }
      return result;
    } finally {
      await client.end().catch(() => {});
    }
  }

  // Wrap install() of every plugin of the current plugin manager.
  wrapAll() {
    for (const plugin of this.app.pm.getPlugins().values()) this.wrapInstall(plugin);
  }

  // After each init(): wrap the new plugin manager's add() so that every
  // plugin it adds gets the guarded install().
  attachPluginManager(pm) {
    if (pm.__tego) return;
    pm.__tego = true;
    const add = pm.add;
    const registry = this;
    pm.add = async function tegoAdd(...args) {
      const r = await add.apply(this, args);
      for (const plugin of this.getPlugins().values()) registry.wrapInstall(plugin);
      return r;
    };
  }
}

module.exports = { Registry, redirectCollection, checkCollection, VIEW_NAME, VIEW_SCHEMA };
