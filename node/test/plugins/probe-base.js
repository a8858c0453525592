'use strict';
// What the test plugins share: load() and install() leave traces that the
// test reads (globalThis.tegoProbe in the process, tb_probe_installs in the
// database).
function pluginClass(Plugin, name, { fail = false, slowMs = 0 } = {}) {
  const C = class extends Plugin {
    async load() {
      const t = (globalThis.tegoProbe ??= { loads: {}, installs: [] });
      t.loads[name] = (t.loads[name] || 0) + 1;
      if (process.send && process.env.TB_BENCH) {
        process.send({ type: 'loaded', plugin: name, t: String(process.hrtime.bigint()) });
      }
    }

    async install() {
      const t = (globalThis.tegoProbe ??= { loads: {}, installs: [] });
      t.installs.push(name);
      if (process.send) process.send({ type: 'installing', plugin: name });
      if (slowMs) await new Promise((r) => setTimeout(r, slowMs));
      if (fail) throw new Error(`install of ${name} failed on purpose`);
      await this.app.db.sequelize.query(
        'INSERT INTO public.tb_probe_installs (plugin, pid) VALUES ($1, $2)',
        { bind: [name, process.pid] });
    }
  };
  Object.defineProperty(C, 'name', { value: `Probe_${name.replace(/-/g, '_')}` });
  C.default = C;
  return C;
}
module.exports = { pluginClass };
