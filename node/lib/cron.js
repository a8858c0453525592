'use strict';
// TachyBase's CronJobManager over tego's app jobs: each job is scheduled
// once for the cluster (tego.schedule_app, or tego.alter_job when another
// process made it first) under a stable name derived from the app and the
// job; the scheduler inserts one run per tick and announces it on
// tego_jobs; every worker that has the job started claims (tego.job_claim,
// a hint-driven claim that hands a run to exactly one worker), runs onTick
// with heartbeats and finishes the run.  A worker that dies during a tick
// stops its heartbeats: the scheduler puts the run back and another worker
// runs it (attempt 2), so a tick is retried, not lost, and not run twice.

const crypto = require('node:crypto');

class TegoCronJob {
  constructor(manager, options) {
    this.manager = manager;
    this.options = options;
    this.cronTime = String(options.cronTime);
    this.timeZone = options.timeZone || 'UTC';
    this.onTick = options.onTick;
    this.context = options.context;
    this.name = manager.jobName(options);
    this.running = false;
    this.lastRun = null;
  }

  start() {
    this.running = true;
    this.manager.activate(this);
  }

  stop() {
    this.running = false;
  }
}

class TegoCronJobManager {
  constructor(tego, app) {
    this.tego = tego;
    this.app = app;
    this._jobs = new Set();
    this._started = false;
    this.keys = new Map(); // base name -> count, for identical jobs
  }

  get started() {
    return this._started;
  }

  get jobs() {
    return this._jobs;
  }

  // Stable name: the app, then options.name when given, else a hash of the
  // schedule, time zone and onTick's source (a second identical job gets #2).
  jobName(options) {
    if (options.name) return `tb:${this.app.name}:${options.name}`.slice(0, 200);
    const h = crypto.createHash('sha256')
      .update(`${options.cronTime}\n${options.timeZone || 'UTC'}\n${String(options.onTick)}`)
      .digest('hex').slice(0, 16);
    const base = `tb:${this.app.name}:${h}`.slice(0, 196);
    const n = (this.keys.get(base) || 0) + 1;
    this.keys.set(base, n);
    return n === 1 ? base : `${base}#${n}`;
  }

  addJob(options) {
    const job = new TegoCronJob(this, options);
    this._jobs.add(job);
    if (options.start !== false && this._started) job.start();
    return job;
  }

  removeJob(job) {
    job.stop();
    this._jobs.delete(job);
  }

  start() {
    this._started = true;
    for (const job of this._jobs) job.start(); // as TachyBase's manager does
    this.tego.jobs.use(this);
  }

  stop() {
    this._started = false;
    for (const job of this._jobs) job.running = false;
  }

  // Make (or update) the job's schedule in tego; then claim.
  activate(job) {
    this.tego.jobs.schedule(job).catch((err) => this.tego.hub.emit('warning', err));
  }
}

/** Claims and runs the app jobs of the app's current cron manager. */
class JobRunner {
  constructor(tego) {
    this.tego = tego;
    this.hub = tego.hub;
    this.manager = null;
    this.claiming = false;
    this.again = false;
    this.wake = () => this.claimAll();
  }

  async start() {
    await this.hub.listen('tego_jobs', this.wake);
  }

  use(manager) {
    this.manager = manager;
    this.claimAll();
  }

  async schedule(job) {
    const o = this.tego.options.cron;
    try {
      await this.hub.query(
        `SELECT tego.schedule_app($1, $2, '{}'::jsonb, timezone => $3, overlap => 'queue',
                                  max_attempts => $4, claim_timeout => $5, heartbeat_timeout => $6)`,
        [job.name, job.cronTime, job.timeZone, o.maxAttempts, o.claimTimeout, o.heartbeatTimeout]);
    } catch (err) {
      if (err.code !== '23505') throw err; // made by another process (or an earlier start)
      await this.hub.query(
        `SELECT tego.alter_job($1, schedule => $2, timezone => $3, overlap => 'queue', max_attempts => $4,
                               claim_timeout => $5, heartbeat_timeout => $6, active => true)`,
        [job.name, job.cronTime, job.timeZone, o.maxAttempts, o.claimTimeout, o.heartbeatTimeout]);
    }
    this.claimAll();
  }

  // The started jobs of the current manager, by name.
  runnable() {
    const m = this.manager;
    const byName = new Map();
    if (!m || !m.started || this.tego.closed) return byName;
    for (const job of m.jobs) if (job.running) byName.set(job.name, job);
    return byName;
  }

  async claimAll() {
    if (this.claiming) {
      this.again = true;
      return;
    }
    this.claiming = true;
    try {
      do {
        this.again = false;
        for (;;) {
          const jobs = this.runnable();
          if (jobs.size === 0) break;
          const { rows } = await this.hub.query('SELECT * FROM tego.job_claim($1, $2)',
            [this.tego.worker, [...jobs.keys()]]);
          if (rows.length === 0) break;
          for (const run of rows) this.execute(jobs.get(run.job_name), run);
        }
      } while (this.again);
    } catch (err) {
      this.hub.emit('warning', err);
    } finally {
      this.claiming = false;
    }
  }

  async execute(job, run) {
    const worker = this.tego.worker;
    const beat = setInterval(() => {
      this.hub.query('SELECT tego.job_heartbeat($1, $2)', [run.run_id, worker]).catch(() => {});
    }, this.tego.options.cron.heartbeatMs);
    let ok = true;
    let message = null;
    try {
      job.lastRun = run;
      await job.onTick.call(job.context === undefined ? job : job.context, () => {});
    } catch (err) {
      ok = false;
      message = String(err && err.message || err).slice(0, 8000);
    } finally {
      clearInterval(beat);
    }
    await this.hub.query('SELECT tego.job_finish($1, $2, $3, $4)', [run.run_id, worker, ok, message])
      .catch((err) => this.hub.emit('warning', err)); // 55000: the run went to another worker
  }
}

module.exports = { TegoCronJobManager, TegoCronJob, JobRunner };
