'use strict';
// AppSupervisor statuses and maintaining commands of the apps of this
// process, mirrored into tego (tego.app_status_set, tego.app_maintaining_set)
// so that every process reads them in tego.apps.  Calls are made in the
// order of the events, one at a time.

class StatusMirror {
  constructor(tego) {
    this.tego = tego;
    this.queue = Promise.resolve();
  }

  push(fn) {
    this.queue = this.queue.then(fn).catch((err) => this.tego.hub.emit('warning', err));
    return this.queue;
  }

  // Listen to the app's supervisor and maintaining events (once per attach).
  start(app, supervisor) {
    const name = app.name;
    const errorText = (e) => (e ? String(e.message || e).slice(0, 4000) : null);
    this.onStatus = ({ appName, status, options }) => {
      if (appName !== name) return;
      this.push(() => this.tego.hub.query('SELECT tego.app_status_set($1, $2, NULL, $3)',
        [name, status, errorText(options && options.error)]));
    };
    supervisor.on('appStatusChanged', this.onStatus);
    this.supervisor = supervisor;
    app.on('maintaining', (s) => {
      if (!s || !s.status || !s.command) return;
      // command_error is fatal in tego only with an error: pass it when
      // TachyBase's supervisor judged it fatal (the app's status is error)
      const fatal = s.status === 'command_error' && supervisor.getAppStatus(name) === 'error';
      const command = String(s.command.name || 'unknown').slice(0, 63);
      this.push(() => this.tego.hub.query('SELECT tego.app_maintaining_set($1, $2, $3, NULL, $4)',
        [name, command, s.status, fatal ? errorText(s.error) || 'error' : null]));
    });
    const current = supervisor.getAppStatus(name);
    if (current) this.onStatus({ appName: name, status: current });
  }

  stop() {
    if (this.supervisor) this.supervisor.off('appStatusChanged', this.onStatus);
  }
}

module.exports = { StatusMirror };
