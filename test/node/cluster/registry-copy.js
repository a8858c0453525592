'use strict';
// A process that keeps a registry copy and nothing else, for the security
// soak (test/t/055_security_soak.pl): a TegoListener and a PluginRegistry
// from tego-client.js, used as an application would use them, while other
// roles send forged notifications on every tego_ channel.
//
//   node registry-copy.js STATE_FILE [SECONDS]
//
// Connects with the PG* environment (PGUSER is the application role).
// After every change of its copy it writes STATE_FILE (written to a
// temporary file, then renamed): {"lastSeq": N, "applied": N}.  On SIGTERM,
// or after SECONDS (default 120), it prints its copy as one JSON line and
// exits:
//
//   {"lastSeq": N, "plugins": [{"name", "state", "revision"}, ...],
//    "stats": {...}, "errors": [...]}
//
// It never reads the log by itself at the end: what it prints is what the
// notifications (hints) and the reads they caused made of the copy.

const fs = require('node:fs');
const { TegoListener, PluginRegistry } = require('./tego-client');

const stateFile = process.argv[2];
const seconds = Number(process.argv[3] ?? 120);
if (!stateFile || !(seconds > 0)) {
  process.stderr.write('usage: node registry-copy.js STATE_FILE [SECONDS]\n');
  process.exit(2);
}

const errors = [];
const listener = new TegoListener({ name: 'tego-soak-registry' });
const registry = new PluginRegistry(listener, { pageSize: 100 });
let applied = 0;

// Write STATE_FILE: where the copy is in the log.
function writeState() {
  const tmp = `${stateFile}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify({ lastSeq: registry.lastSeq, applied }));
  fs.renameSync(tmp, stateFile);
}

registry.on('loaded', writeState);
registry.on('applied', () => {
  applied++;
  writeState();
});
registry.on('apply-error', (err) => errors.push(`apply: ${err.message}`));
listener.on('connect-error', (err) => errors.push(`connect: ${err.message}`));
listener.on('disconnected', (err) => errors.push(`disconnected: ${err?.message ?? err}`));

let done = false;
// Print the copy and stop.
async function finish(why) {
  if (done) return;
  done = true;
  const out = {
    why,
    lastSeq: registry.lastSeq,
    plugins: registry.list().map((p) => ({ name: p.name, state: p.state, revision: p.revision })),
    stats: { ...registry.stats, held: listener.stats.held, connections: listener.connections },
    errors,
  };
  process.stdout.write(`${JSON.stringify(out)}\n`);
  await listener.close();
  process.exit(0);
}

process.on('SIGTERM', () => finish('SIGTERM'));
setTimeout(() => finish('timeout'), seconds * 1000);

listener.start().then(writeState, (err) => {
  errors.push(`start: ${err.message}`);
  finish('start failed');
});
