'use strict';
// TachyBase's applicationPlugins model, unchanged, over the view
// tego."applicationPlugins": the queries its PluginManagerRepository makes,
// run through Sequelize as an application role that holds only
// SELECT/INSERT/UPDATE/DELETE on the view and USAGE on schema tego.
//
// Environment (set by test/scripts/extra-suites.d/node-sequelize.sh):
//   TEGO_PGHOST      server socket folder (or host)          default /tmp
//   TEGO_PGPORT      port                                     default 5432
//   TEGO_PGDATABASE  database with CREATE EXTENSION tego done default postgres
//   TEGO_PGSUPER     a superuser to set up roles and read tego.events
//                                                             default postgres
//   TEGO_SQL_LOG=1   print every statement Sequelize sends
//
// The set-up creates the role tego_orm_app (dropped first if it exists) and
// plugins whose names begin with "orm-"; it drops them at the end.

const test = require('node:test');
const assert = require('node:assert/strict');
const { Client } = require('pg');
const { Sequelize, DataTypes, Op } = require('sequelize');

const conn = {
  host: process.env.TEGO_PGHOST || '/tmp',
  port: Number(process.env.TEGO_PGPORT || 5432),
  database: process.env.TEGO_PGDATABASE || 'postgres',
};
const SUPER = process.env.TEGO_PGSUPER || 'postgres';
const APP_ROLE = 'tego_orm_app';
const sqlLog = process.env.TEGO_SQL_LOG ? (sql) => console.log(`# ${sql}`) : false;

let admin;        // superuser pg client: set-up, and reads tego.plugins / tego.events
let listener;     // pg client of the application role: LISTEN tego_plugins
let sequelize;    // Sequelize as the application role
let Plugin;       // the model
const notices = []; // notifications received on tego_plugins

// --- helpers -------------------------------------------------------------------

// TachyBase's collection options/collection.ts, as a Sequelize model
function defineApplicationPlugins(seq, modelOptions) {
  return seq.define('applicationPlugins', {
    id: { type: DataTypes.BIGINT, autoIncrement: true, primaryKey: true },
    name: { type: DataTypes.STRING, unique: true },
    packageName: { type: DataTypes.STRING, unique: true },
    version: { type: DataTypes.STRING },
    enabled: { type: DataTypes.BOOLEAN },
    installed: { type: DataTypes.BOOLEAN },
    builtIn: { type: DataTypes.BOOLEAN },
    options: { type: DataTypes.JSON },
    subView: { type: DataTypes.BOOLEAN, defaultValue: true },
  }, {
    tableName: 'applicationPlugins',
    freezeTableName: true,
    timestamps: true,
    ...modelOptions,
  });
}

async function registry(where = "name LIKE 'orm-%'") {
  const { rows } = await admin.query(
    `SELECT id, name, package_name, version, enabled, installed, built_in, sub_view,
            options, state, created_at, updated_at
       FROM tego.plugins WHERE ${where} ORDER BY id`);
  return rows;
}

async function plugin(name) {
  const { rows } = await admin.query(
    'SELECT id, name, package_name, version, enabled, installed, built_in, sub_view, options, state, ' +
    'created_at, updated_at FROM tego.plugins WHERE name = $1', [name]);
  return rows[0];
}

async function eventSeq() {
  const { rows } = await admin.query('SELECT tego.event_seq() AS seq');
  return Number(rows[0].seq);
}

// tego_plugins events after seq, as {key, action, from, to}
async function eventsAfter(seq) {
  const { rows } = await admin.query(
    `SELECT seq, event, key, payload FROM tego.events
      WHERE seq > $1 AND topic = 'tego_plugins' ORDER BY seq`, [seq]);
  return rows.map((r) => ({
    key: r.key, event: r.event, action: r.payload.action, from: r.payload.from, to: r.payload.to,
  }));
}

function actions(events) {
  return events.map((e) => `${e.key}:${e.action}`);
}

// wait until a tego_plugins notification for `key` with `action` arrives
async function notified(key, action, ms = 3000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const hit = notices.find((n) => n.key === key && n.action === action);
    if (hit) return hit;
    if (Date.now() > deadline) {
      assert.fail(`no NOTIFY tego_plugins for ${key} ${action} within ${ms} ms (got ${JSON.stringify(notices)})`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

// the error a rejected ORM call gave, with the server's message and code
async function rejection(promise) {
  try {
    await promise;
  } catch (e) {
    const server = e.parent || e.original || e;
    return { error: e, message: server.message, code: server.code, name: e.name };
  }
  assert.fail('expected the ORM call to be rejected');
}

// TachyBase's Repository.updateOrCreate({values, filterKeys: ['name']}):
// find one by name; if found, update it with the values (Repository.update
// loads the instances and saves each); else create.
async function updateOrCreate(values) {
  const found = await Plugin.findOne({ where: { name: values.name } });
  if (found) {
    await found.update(values);
    return { created: false, instance: found };
  }
  return { created: true, instance: await Plugin.create(values) };
}

// --- set-up and tear-down ---------------------------------------------------------

test.before(async () => {
  admin = new Client({ ...conn, user: SUPER });
  await admin.connect();
  await admin.query("SET client_min_messages = warning");
  await cleanup();
  await admin.query(`CREATE ROLE ${APP_ROLE} LOGIN`);
  // only what the view needs
  await admin.query(`GRANT USAGE ON SCHEMA tego TO ${APP_ROLE}`);
  await admin.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON tego."applicationPlugins" TO ${APP_ROLE}`);

  // plugins already there, in this insertion order
  await admin.query("SELECT tego.plugin_add('orm-acl', '@tachybase/plugin-orm-acl', '1.0.0', '{\"strategy\": \"allow\"}', built_in => true)");
  await admin.query("SELECT tego.plugin_enable('orm-acl')");
  await admin.query("SELECT tego.plugin_install('orm-acl')");
  await admin.query("SELECT tego.plugin_add('orm-users', '@tachybase/plugin-orm-users', '1.0.0')");
  await admin.query("SELECT tego.plugin_install('orm-users')");
  await admin.query("SELECT tego.plugin_add('orm-sample', '@tachybase/plugin-orm-sample', '0.1.0')");

  listener = new Client({ ...conn, user: APP_ROLE });
  await listener.connect();
  listener.on('notification', (m) => {
    if (m.channel !== 'tego_plugins') return;
    let p = {};
    try { p = JSON.parse(m.payload); } catch { /* a large payload is cut; ignore it */ }
    // the NOTIFY payload is the event: {seq, topic, event, key, payload}
    notices.push({ key: p.key, action: p.payload?.action, payload: p.payload ?? {} });
  });
  await listener.query('LISTEN tego_plugins');

  sequelize = new Sequelize(conn.database, APP_ROLE, null, {
    dialect: 'postgres',
    host: conn.host,
    port: conn.port,
    logging: sqlLog,
    pool: { max: 2 },
  });
  await sequelize.authenticate();
  Plugin = defineApplicationPlugins(sequelize, { schema: 'tego' });
});

async function cleanup() {
  const { rows } = await admin.query(`SELECT 1 FROM pg_roles WHERE rolname = '${APP_ROLE}'`);
  if (rows.length) {
    await admin.query(`DROP OWNED BY ${APP_ROLE}`);
    await admin.query(`DROP ROLE ${APP_ROLE}`);
  }
  // built-in plugins cannot be removed; unmark them first
  await admin.query(`SELECT tego.plugin_update(name, '{"built_in": false}')
                       FROM tego.plugins WHERE name LIKE 'orm-%' AND built_in`);
  await admin.query(`SELECT tego.plugin_remove(array_agg(name), force => true)
                       FROM tego.plugins WHERE name LIKE 'orm-%' HAVING count(*) > 0`);
}

test.after(async () => {
  if (sequelize) await sequelize.close();
  if (listener) await listener.end();
  if (admin) {
    await cleanup();
    await admin.end();
  }
});

// --- the tests ---------------------------------------------------------------------

test('the application role has no privilege but the view (lifecycle functions and tables refused)', async () => {
  let r = await rejection(sequelize.query("SELECT * FROM tego.plugin_add('orm-direct')"));
  assert.equal(r.code, '42501', r.message);
  r = await rejection(sequelize.query('SELECT * FROM tego.plugins'));
  assert.equal(r.code, '42501', r.message);
  r = await rejection(sequelize.query('SELECT * FROM tego.events'));
  assert.equal(r.code, '42501', r.message);
});

test("TachyBase's existsInDb query finds the view (information_schema.tables, schema tego)", async () => {
  const rows = await sequelize.query(
    `SELECT EXISTS(SELECT 1 FROM information_schema.tables
                    WHERE table_schema = 'tego' AND table_name = 'applicationPlugins')`,
    { type: Sequelize.QueryTypes.SELECT });
  assert.equal(rows[0].exists, true);
});

test('Model.sync() (db.sync) sees the view and changes nothing', async () => {
  const before = await eventSeq();
  await Plugin.sync();
  assert.equal(await eventSeq(), before);
  const { rows } = await admin.query(
    "SELECT relkind FROM pg_class WHERE relname = 'applicationPlugins' AND relnamespace = 'tego'::regnamespace");
  assert.deepEqual(rows, [{ relkind: 'v' }]);
});

test("findAll sorted by id returns tego.plugins' rows in id order", async () => {
  const rows = await Plugin.findAll({ where: { name: { [Op.like]: 'orm-%' } }, order: [['id', 'ASC']] });
  const reg = await registry();
  assert.deepEqual(rows.map((r) => r.name), ['orm-acl', 'orm-users', 'orm-sample']);
  assert.deepEqual(rows.map((r) => String(r.id)), reg.map((r) => String(r.id)));
  const acl = rows[0].toJSON();
  assert.equal(acl.packageName, '@tachybase/plugin-orm-acl');
  assert.equal(acl.version, '1.0.0');
  assert.equal(acl.enabled, true);
  assert.equal(acl.installed, true);
  assert.equal(acl.builtIn, true);
  assert.equal(acl.subView, true);
  assert.deepEqual(acl.options, { strategy: 'allow' });
  assert.ok(acl.createdAt instanceof Date && acl.updatedAt instanceof Date);
  assert.equal(acl.createdAt.getTime(), reg[0].created_at.getTime());
  // PluginManagerRepository.init: the enabled ones, sorted by id, {...row, ...row.options}
  const enabled = await Plugin.findAll({ where: { enabled: true, name: { [Op.like]: 'orm-%' } }, order: [['id', 'ASC']] });
  assert.deepEqual(enabled.map((r) => r.name), ['orm-acl']);
  const { options, ...others } = enabled[0].toJSON();
  assert.equal({ ...others, ...options }.strategy, 'allow');
});

test('updateOrCreate by name, create branch: INSERT ... RETURNING gives id and timestamps', async () => {
  const before = await eventSeq();
  const { created, instance } = await updateOrCreate({
    name: 'orm-crm', packageName: '@tachybase/plugin-orm-crm', version: '1.2.0', options: { region: 'eu' },
  });
  assert.equal(created, true);
  const row = await plugin('orm-crm');
  assert.ok(row, 'orm-crm is in tego.plugins');
  assert.equal(String(instance.id), String(row.id));
  assert.ok(instance.createdAt instanceof Date);
  assert.equal(instance.createdAt.getTime(), row.created_at.getTime());
  assert.equal(instance.updatedAt.getTime(), row.updated_at.getTime());
  assert.equal(row.package_name, '@tachybase/plugin-orm-crm');
  assert.equal(row.version, '1.2.0');
  assert.deepEqual(row.options, { region: 'eu' });
  assert.equal(row.sub_view, true);
  assert.equal(row.state, 'added');
  // the id is the last one: findAll by id lists it last
  const all = await Plugin.findAll({ where: { name: { [Op.like]: 'orm-%' } }, order: [['id', 'ASC']] });
  assert.equal(all.at(-1).name, 'orm-crm');
  assert.deepEqual(actions(await eventsAfter(before)), ['orm-crm:add']);
  await notified('orm-crm', 'add');
});

test('updateOrCreate by name, update branch: instance.save() changes version, options and subView', async () => {
  const before = await eventSeq();
  const { created, instance } = await updateOrCreate({
    name: 'orm-crm', packageName: '@tachybase/plugin-orm-crm', version: '1.3.0', options: { region: 'us' }, subView: false,
  });
  assert.equal(created, false);
  const row = await plugin('orm-crm');
  assert.equal(row.version, '1.3.0');
  assert.deepEqual(row.options, { region: 'us' });
  assert.equal(row.sub_view, false);
  assert.equal(row.state, 'added');
  assert.equal(instance.version, '1.3.0');
  const evs = await eventsAfter(before);
  assert.deepEqual(actions(evs), ['orm-crm:update']);
  assert.equal(evs[0].event, 'plugin-state-changed');
  await notified('orm-crm', 'update');
  // the same values again: the UPDATE reaches the server and changes nothing, no event
  const again = await eventSeq();
  const [count] = await Plugin.update({ packageName: '@tachybase/plugin-orm-crm', version: '1.3.0', options: { region: 'us' } },
    { where: { name: 'orm-crm' } });
  assert.equal(count, 1);
  assert.deepEqual(await eventsAfter(again), []);
  assert.deepEqual(await plugin('orm-crm'), row);
});

test('Model.update({enabled: true}, {where: {name}}): enables with its install pending, event and NOTIFY', async () => {
  const before = await eventSeq();
  const [count] = await Plugin.update({ enabled: true }, { where: { name: 'orm-crm' } });
  assert.equal(count, 1);
  const row = await plugin('orm-crm');
  assert.equal(row.enabled, true);
  assert.equal(row.installed, false, 'installed means install() has run: the application marks it');
  assert.equal(row.state, 'enabled');
  // one event, from added to enabled
  const evs = await eventsAfter(before);
  assert.deepEqual(actions(evs), ['orm-crm:enable']);
  assert.equal(evs[0].from, 'added');
  assert.equal(evs[0].to, 'enabled');
  const n = await notified('orm-crm', 'enable');
  assert.equal(n.payload.to, 'enabled');
});

test('TachyBase enable/disable writes: {installed: true} after enabling marks it installed; {enabled: false} disables', async () => {
  let before = await eventSeq();
  // PluginManager.enable writes installed: true after the install hooks
  let [count] = await Plugin.update({ installed: true }, { where: { name: ['orm-crm'] } });
  assert.equal(count, 1);
  assert.deepEqual(actions(await eventsAfter(before)), ['orm-crm:install']);
  assert.equal((await plugin('orm-crm')).installed, true);
  await notified('orm-crm', 'install');
  // the same write again changes nothing
  before = await eventSeq();
  [count] = await Plugin.update({ installed: true }, { where: { name: ['orm-crm'] } });
  assert.equal(count, 1);
  assert.deepEqual(await eventsAfter(before), []);

  before = await eventSeq();
  [count] = await Plugin.update({ enabled: false }, { where: { name: ['orm-crm'] } });
  assert.equal(count, 1);
  const row = await plugin('orm-crm');
  assert.equal(row.enabled, false);
  assert.equal(row.installed, true);
  assert.deepEqual(actions(await eventsAfter(before)), ['orm-crm:disable']);
  await notified('orm-crm', 'disable');
});

test('instance.save() of enabled and installed; {enabled: false, installed: false} disables and uninstalls', async () => {
  const inst = await Plugin.findOne({ where: { name: 'orm-sample' } });
  assert.equal(inst.installed, false);
  let before = await eventSeq();
  inst.installed = true;
  await inst.save();
  let row = await plugin('orm-sample');
  assert.equal(row.installed, true);
  assert.equal(row.enabled, false);
  assert.deepEqual(actions(await eventsAfter(before)), ['orm-sample:install']);

  before = await eventSeq();
  inst.enabled = true;
  await inst.save();
  row = await plugin('orm-sample');
  assert.equal(row.state, 'enabled');
  assert.deepEqual(actions(await eventsAfter(before)), ['orm-sample:enable']);
  await notified('orm-sample', 'enable');

  // PluginManager.enable's error path writes {enabled: false, installed: false}:
  // the plugin ends as on TachyBase's own table, disabled and not installed
  before = await eventSeq();
  await inst.update({ enabled: false, installed: false });
  row = await plugin('orm-sample');
  assert.equal(row.enabled, false);
  assert.equal(row.installed, false);
  assert.equal(row.state, 'added');
  assert.deepEqual(actions(await eventsAfter(before)), ['orm-sample:disable', 'orm-sample:uninstall']);
  await notified('orm-sample', 'uninstall');

  // Sequelize's save() of an existing row has no RETURNING: the instance
  // keeps the values it sent until reloaded (options null is stored as {})
  inst.options = null;
  await inst.save();
  assert.equal(inst.options, null);
  await inst.reload();
  assert.deepEqual(inst.options, {});
  row = await plugin('orm-sample');
  assert.equal(inst.updatedAt.getTime(), row.updated_at.getTime());
  const reread = await Plugin.findOne({ where: { name: 'orm-sample' } });
  assert.deepEqual(reread.options, {});

  // with {returning: true}, UPDATE ... RETURNING gives what the server kept
  inst.options = null;
  inst.version = '0.1.1';
  await inst.save({ returning: true });
  row = await plugin('orm-sample');
  assert.equal(row.version, '0.1.1');
  assert.deepEqual(inst.options, {});
  assert.equal(inst.updatedAt.getTime(), row.updated_at.getTime());
});

test('create with enabled: true, installed: true adds, enables and marks installed', async () => {
  const before = await eventSeq();
  const inst = await Plugin.create({ name: 'orm-flow', packageName: '@tachybase/plugin-orm-flow', enabled: true, installed: true });
  assert.equal(inst.enabled, true);
  assert.equal(inst.installed, true);
  assert.deepEqual(inst.options, {});
  assert.equal((await plugin('orm-flow')).state, 'enabled');
  assert.deepEqual(actions(await eventsAfter(before)), ['orm-flow:add', 'orm-flow:enable', 'orm-flow:install']);
});

test('destroy({where: {name}}) removes (even an enabled plugin) with a remove event', async () => {
  let before = await eventSeq();
  let count = await Plugin.destroy({ where: { name: 'orm-flow' } });
  assert.equal(count, 1);
  assert.equal(await plugin('orm-flow'), undefined);
  let evs = await eventsAfter(before);
  assert.deepEqual(actions(evs), ['orm-flow:remove']);
  assert.equal(evs[0].from, 'enabled');
  await notified('orm-flow', 'remove');

  // TachyBase's Repository.destroy: find by filter, then destroy by ids with individualHooks
  await Plugin.create({ name: 'orm-tmp' });
  before = await eventSeq();
  const ids = (await Plugin.findAll({ where: { name: ['orm-tmp'] } })).map((r) => r.id);
  count = await Plugin.destroy({ where: { id: ids }, individualHooks: true });
  assert.equal(count, 1);
  assert.equal(await plugin('orm-tmp'), undefined);
  assert.deepEqual(actions(await eventsAfter(before)), ['orm-tmp:remove']);

  // no row matches: nothing happens
  before = await eventSeq();
  assert.equal(await Plugin.destroy({ where: { name: 'orm-none' } }), 0);
  assert.deepEqual(await eventsAfter(before), []);
});

test('rules through the ORM: each refusal leaves tego.plugins and tego.events unchanged', async (t) => {
  // a built-in plugin added through the ORM, after the others
  const core = await Plugin.create({ name: 'orm-core', builtIn: true, enabled: true });
  assert.equal(core.builtIn, true);
  assert.equal((await plugin('orm-core')).state, 'enabled');
  const snapshot = await registry();
  const seq = await eventSeq();
  const unchanged = async () => {
    assert.deepEqual(await registry(), snapshot);
    assert.equal(await eventSeq(), seq);
  };

  await t.test('create with a name that exists', async () => {
    const r = await rejection(Plugin.create({ name: 'orm-users' }));
    assert.match(r.message, /plugin "orm-users" already exists/);
    assert.equal(r.code, '23505');
    assert.equal(r.name, 'SequelizeUniqueConstraintError');
    assert.equal(r.error.message, r.message, "Sequelize's error carries the server's message");
    await unchanged();
  });
  await t.test('create with a packageName that another plugin has', async () => {
    const r = await rejection(Plugin.create({ name: 'orm-users2', packageName: '@tachybase/plugin-orm-users' }));
    assert.equal(r.code, '23505', r.message);
    assert.equal(r.name, 'SequelizeUniqueConstraintError');
    await unchanged();
  });
  await t.test('options that are not an object (create)', async () => {
    for (const options of ['text', [1, 2], 42]) {
      const r = await rejection(Plugin.create({ name: 'orm-bad', options }));
      assert.match(r.message, /options must be a JSON object/, JSON.stringify(options));
      assert.equal(r.code, '22023');
      assert.equal(r.error.message, r.message);
    }
    await unchanged();
  });
  await t.test('options that are not an object (update)', async () => {
    const r = await rejection(Plugin.update({ options: ['x'] }, { where: { name: 'orm-users' } }));
    assert.match(r.message, /must be a JSON object/);
    await unchanged();
  });
  await t.test('destroy of a built-in plugin', async () => {
    const r = await rejection(Plugin.destroy({ where: { name: 'orm-acl' } }));
    assert.match(r.message, /built-in/);
    await unchanged();
  });
  await t.test('disable of a built-in plugin (Model.update and instance.save)', async () => {
    let r = await rejection(Plugin.update({ enabled: false }, { where: { name: 'orm-acl' } }));
    assert.match(r.message, /built-in/);
    const acl = await Plugin.findOne({ where: { name: 'orm-acl' } });
    acl.enabled = false;
    r = await rejection(acl.save());
    assert.match(r.message, /built-in/);
    await unchanged();
  });
  await t.test('rename (instance.save of a new name)', async () => {
    const users = await Plugin.findOne({ where: { name: 'orm-users' } });
    users.name = 'orm-people';
    const r = await rejection(users.save());
    assert.match(r.message, /cannot rename plugin "orm-users"/);
    assert.equal(r.code, '0A000');
    assert.match(r.error.parent.hint, /Remove the plugin and add it under the new name/);
    await unchanged();
  });
  await t.test('a batch update with one refusal changes none of the rows', async () => {
    const r = await rejection(Plugin.update({ version: '5.0.0', enabled: false },
      { where: { name: ['orm-users', 'orm-core'] } }));
    assert.match(r.message, /built-in/);
    await unchanged();
  });
});

test('differences from a table: ids are tego\'s, no ON CONFLICT, no schema changes', async (t) => {
  await t.test('an id given to create is replaced by the one tego.plugins assigns', async () => {
    const inst = await Plugin.create({ id: 999999, name: 'orm-with-id' });
    const row = await plugin('orm-with-id');
    assert.notEqual(String(row.id), '999999');
    assert.equal(String(inst.id), String(row.id));
    assert.equal(await Plugin.destroy({ where: { name: 'orm-with-id' } }), 1);
  });
  await t.test('upsert (INSERT ... ON CONFLICT (name)) is refused: the view has no unique constraint', async () => {
    const r = await rejection(Plugin.upsert({ name: 'orm-users', version: '9.9.9' }));
    assert.equal(r.code, '42P10', r.message);
    assert.equal((await plugin('orm-users')).version, '1.0.0');
  });
  await t.test('bulkCreate with ignoreDuplicates still fails on a name that exists, and adds nothing', async () => {
    const seq = await eventSeq();
    const r = await rejection(Plugin.bulkCreate([{ name: 'orm-bulk' }, { name: 'orm-users' }], { ignoreDuplicates: true }));
    assert.match(r.message, /plugin "orm-users" already exists/);
    assert.equal(await plugin('orm-bulk'), undefined);
    assert.equal(await eventSeq(), seq);
  });
  await t.test('sync({alter: true}), addIndex and changeColumn are refused (the role does not own the view)', async () => {
    let r = await rejection(Plugin.sync({ alter: true }));
    assert.match(r.message, /must be owner of view/);
    const qi = sequelize.getQueryInterface();
    const table = { tableName: 'applicationPlugins', schema: 'tego' };
    r = await rejection(qi.addIndex(table, ['name'], { unique: true }));
    assert.ok(/must be owner|not supported for views/.test(r.message), r.message);
    r = await rejection(qi.changeColumn(table, 'subView', { type: DataTypes.BOOLEAN, defaultValue: true }));
    assert.match(r.message, /must be owner of view/);
    r = await rejection(Plugin.drop());
    assert.match(r.message, /is not a table/);
    r = await rejection(Plugin.truncate());
    assert.match(r.message, /is not a table/);
  });
});

test('a transaction that updates then rolls back emits no event', async () => {
  const before = await eventSeq();
  const noticesBefore = notices.length;
  const rowBefore = await plugin('orm-users');
  await assert.rejects(sequelize.transaction(async (transaction) => {
    const [count] = await Plugin.update({ enabled: true }, { where: { name: 'orm-users' }, transaction });
    assert.equal(count, 1);
    const inside = await Plugin.findOne({ where: { name: 'orm-users' }, transaction });
    assert.equal(inside.enabled, true, 'the change is visible inside the transaction');
    await Plugin.create({ name: 'orm-rolled-back' }, { transaction });
    throw new Error('roll back');
  }), /roll back/);
  assert.deepEqual(await plugin('orm-users'), rowBefore);
  assert.equal(await plugin('orm-rolled-back'), undefined);
  assert.equal(await eventSeq(), before);
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(notices.length, noticesBefore, 'no NOTIFY');

  // and a committed transaction announces its changes at commit
  await sequelize.transaction(async (transaction) => {
    await Plugin.update({ enabled: true }, { where: { name: 'orm-users' }, transaction });
    assert.equal(await eventSeq(), before, 'not yet committed');
  });
  assert.deepEqual(actions(await eventsAfter(before)), ['orm-users:enable']);
  await notified('orm-users', 'enable');
});

test('the application role reads the events with tego.events_since once granted EXECUTE', async () => {
  const seq = await eventSeq();
  let r = await rejection(sequelize.query('SELECT * FROM tego.events_since(0)'));
  assert.equal(r.code, '42501', r.message);
  await admin.query(`GRANT EXECUTE ON FUNCTION tego.event_seq(), tego.events_since(bigint, text[], integer) TO ${APP_ROLE}`);
  await Plugin.update({ version: '0.2.0' }, { where: { name: 'orm-sample' } });
  const rows = await sequelize.query(
    "SELECT key, payload ->> 'action' AS action FROM tego.events_since($1, ARRAY['tego_plugins'])",
    { bind: [seq], type: Sequelize.QueryTypes.SELECT });
  assert.deepEqual(rows, [{ key: 'orm-sample', action: 'update' }]);
  const [{ event_seq: now }] = await sequelize.query('SELECT tego.event_seq()', { type: Sequelize.QueryTypes.SELECT });
  assert.equal(Number(now), seq + 1);
});

test('a model without schema finds the view through search_path, but sync() then creates a table in public', async () => {
  const s2 = new Sequelize(conn.database, APP_ROLE, null, {
    dialect: 'postgres', host: conn.host, port: conn.port, logging: sqlLog, pool: { max: 1 },
    dialectOptions: { options: '-c search_path=public,tego' },
  });
  try {
    const P2 = defineApplicationPlugins(s2, {});
    const rows = await P2.findAll({ where: { name: { [Op.like]: 'orm-%' } }, order: [['id', 'ASC']] });
    assert.deepEqual(rows.map((r) => r.name), ['orm-acl', 'orm-users', 'orm-sample', 'orm-crm', 'orm-core']);
    const before = await eventSeq();
    const [count] = await P2.update({ version: '1.0.1' }, { where: { name: 'orm-users' } });
    assert.equal(count, 1);
    assert.equal((await plugin('orm-users')).version, '1.0.1');
    assert.equal((await eventsAfter(before)).length, 1);
    // Sequelize looks for the table in schema public only, does not find
    // it, and creates it there: refused without CREATE on public ...
    let r = await rejection(P2.sync());
    assert.match(r.message, /permission denied for schema public/);
    // ... and with it (the usual case for the role that owns the
    // database), a new empty table that hides the view
    await admin.query(`GRANT CREATE ON SCHEMA public TO ${APP_ROLE}`);
    try {
      await P2.sync();
      const { rows: rel } = await admin.query(
        `SELECT n.nspname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relname = 'applicationPlugins' ORDER BY 1`);
      assert.deepEqual(rel, [{ nspname: 'public', relkind: 'r' }, { nspname: 'tego', relkind: 'v' }]);
      assert.equal(await P2.count(), 0, 'the model now reads the empty table');
    } finally {
      await admin.query('DROP TABLE IF EXISTS public."applicationPlugins"');
      await admin.query(`REVOKE CREATE ON SCHEMA public FROM ${APP_ROLE}`);
    }
  } finally {
    await s2.close();
  }
});
