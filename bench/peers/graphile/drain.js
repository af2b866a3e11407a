#!/usr/bin/env node
'use strict';
// Drain throughput of graphile-worker: pre-insert N no-op jobs (untimed), then
// time from worker start until every job has been completed (deleted).
const { performance } = require('node:perf_hooks');
const lib = require('./lib');
const { run, runMigrations } = require('graphile-worker');
const { Client } = require('pg');

const SPEC = {
  jobs: { type: 'int', default: 200000, help: 'number of no-op jobs to drain' },
  concurrency: { type: 'int', default: 50, help: 'concurrent jobs (graphile `concurrency`)' },
  localQueueSize: { type: 'int', default: 10000, help: 'preset.worker.localQueue.size (-1 disables)' },
  completeBatchDelay: { type: 'int', default: 0, help: 'preset.worker.completeJobBatchDelay ms (-1 disables)' },
  failBatchDelay: { type: 'int', default: -1, help: 'preset.worker.failJobBatchDelay ms (-1 disables)' },
  maxPoolSize: { type: 'int', default: undefined, help: 'pg pool size (default max(10, concurrency + 2))' },
  pollInterval: { type: 'int', default: 2000, help: 'pollInterval ms' },
  useNodeTime: { type: 'bool', default: false, help: 'useNodeTime' },
  reps: { type: 'int', default: 1, help: 'repetitions (re-insert + drain); reports the median' },
  timeout: { type: 'int', default: 300, help: 'abort a single drain after this many seconds' },
  sweep: { type: 'bool', default: false, help: 'try a grid of configs and print the best one' },
  sweepJobs: { type: 'int', default: 50000, help: 'jobs per sweep trial' },
  sweepReps: { type: 'int', default: 3, help: 'repetitions per sweep trial (median)' },
  sweepLocalQueue: { type: 'ints', default: [1000, 5000, 10000], help: 'sweep: local queue sizes' },
  sweepConcurrency: { type: 'ints', default: [10, 25, 50, 100], help: 'sweep: concurrency values' },
  sweepCompleteDelay: { type: 'ints', default: [0, 10], help: 'sweep: completeJobBatchDelay values' },
  verbose: { type: 'bool', default: false, help: 'show graphile-worker info/debug logs' },
  help: { type: 'bool', default: false, help: 'show this help' },
};

const INSERT_CHUNK = 10000;
const REMAINING_SQL = `select count(*)::int as n from graphile_worker._private_jobs j
  join graphile_worker._private_tasks t on t.id = j.task_id where t.identifier = 'noop'`;

async function remaining(client) {
  return (await client.query(REMAINING_SQL)).rows[0].n;
}

// Bulk insert via graphile_worker.add_jobs(job_spec[]), built server-side.
async function insertJobs(client, n) {
  for (let done = 0; done < n; done += INSERT_CHUNK) {
    const k = Math.min(INSERT_CHUNK, n - done);
    await client.query(
      `select count(*) from graphile_worker.add_jobs(array(
         select row('noop', null, null, null, null, null, null, null)::graphile_worker.job_spec
         from generate_series(1, $1::int)))`,
      [k],
    );
  }
}

function workerConfig(o) {
  return {
    concurrency: o.concurrency,
    local_queue_size: o.localQueueSize,
    complete_job_batch_delay: o.completeBatchDelay,
    fail_job_batch_delay: o.failBatchDelay,
    max_pool_size: o.maxPoolSize ?? Math.max(10, o.concurrency + 2),
    poll_interval: o.pollInterval,
    use_node_time: o.useNodeTime,
  };
}

// One timed drain of n jobs with the given config. Returns seconds.
async function drainOnce(url, cfg, n, timeoutS, logger) {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    const left = await remaining(client);
    if (left > 0) {
      lib.log(`warning: deleting ${left} leftover noop jobs`);
      await client.query(`delete from graphile_worker._private_jobs j using graphile_worker._private_tasks t
        where t.id = j.task_id and t.identifier = 'noop'`);
    }
    let t = performance.now();
    await insertJobs(client, n);
    await client.query('vacuum analyze graphile_worker._private_jobs');
    lib.log(`inserted ${n} jobs in ${((performance.now() - t) / 1000).toFixed(1)} s (untimed); draining with`, JSON.stringify(cfg));

    let started = 0;
    const taskList = { noop: async () => { started++; } };
    const deadline = performance.now() + timeoutS * 1000;
    const t0 = performance.now();
    const runner = await run({
      connectionString: url,
      concurrency: cfg.concurrency,
      maxPoolSize: cfg.max_pool_size,
      pollInterval: cfg.poll_interval,
      useNodeTime: cfg.use_node_time,
      noHandleSignals: true,
      logger,
      taskList,
      parsedCronItems: [],
      preset: {
        worker: {
          localQueue: { size: cfg.local_queue_size },
          completeJobBatchDelay: cfg.complete_job_batch_delay,
          failJobBatchDelay: cfg.fail_job_batch_delay,
        },
      },
    });
    const startupMs = performance.now() - t0;
    let t1;
    try {
      let lastLog = performance.now();
      const check = () => {
        const now = performance.now();
        if (now > deadline) throw new Error(`timeout after ${timeoutS} s: ${started}/${n} jobs started`);
        if (now - lastLog > 5000) { lastLog = now; lib.log(`progress: ${started}/${n} started`); }
      };
      // Cheap in-process wait until every handler ran, then confirm in the DB
      // that all jobs are completed (rows deleted; completion may be batched).
      while (started < n) { check(); await lib.sleep(5); }
      while ((await remaining(client)) > 0) { check(); await lib.sleep(5); }
      t1 = performance.now();
    } finally {
      await Promise.race([runner.stop(), lib.sleep(30000)]);
    }
    const seconds = (t1 - t0) / 1000;
    lib.log(`drained ${n} jobs in ${seconds.toFixed(3)} s = ${Math.round(n / seconds)} jobs/s (startup ${startupMs.toFixed(0)} ms)`);
    return { seconds, startup_ms: lib.round(startupMs, 1) };
  } finally {
    await client.end();
  }
}

async function drainReps(url, cfg, n, reps, timeoutS, logger) {
  const runs = [];
  for (let i = 0; i < reps; i++) {
    if (reps > 1) lib.log(`rep ${i + 1}/${reps}`);
    runs.push(await drainOnce(url, cfg, n, timeoutS, logger));
  }
  const seconds = lib.median(runs.map((r) => r.seconds));
  return {
    seconds: lib.round(seconds),
    jobs_per_sec: Math.round(n / seconds),
    runs: runs.map((r) => ({ seconds: lib.round(r.seconds), jobs_per_sec: Math.round(n / r.seconds), startup_ms: r.startup_ms })),
  };
}

lib.main(async () => {
  const o = lib.parseArgs(process.argv.slice(2), SPEC);
  if (o.help) {
    console.error(lib.usage('Usage: DATABASE_URL=postgres://... node drain.js [options]', SPEC));
    return;
  }
  const url = lib.requireDatabaseUrl();
  const logger = lib.makeLogger(o.verbose);
  const base = { peer: 'graphile-worker', version: lib.GW_VERSION };

  const grid = [];
  if (o.sweep) {
    for (const lq of o.sweepLocalQueue)
      for (const c of o.sweepConcurrency)
        for (const d of o.sweepCompleteDelay)
          grid.push(workerConfig({ ...o, maxPoolSize: undefined, localQueueSize: lq, concurrency: c, completeBatchDelay: d }));
  }
  // Hard stop in case anything hangs outside the per-drain deadline.
  const runsTotal = o.sweep ? grid.length * o.sweepReps : o.reps;
  setTimeout(() => {
    console.error('ERROR: global watchdog expired');
    process.exit(2);
  }, (o.timeout + 120) * 1000 * runsTotal).unref();

  await runMigrations({ connectionString: url, logger });

  if (!o.sweep) {
    const config = workerConfig(o);
    const r = await drainReps(url, config, o.jobs, o.reps, o.timeout, logger);
    console.log(JSON.stringify({ ...base, test: 'drain', jobs: o.jobs, seconds: r.seconds, jobs_per_sec: r.jobs_per_sec, config, reps: o.reps, runs: r.runs }));
    return;
  }

  // Round-robin: every config runs once per round, in a fresh random order each
  // round, so background load drifts hit all configs alike. Score = median.
  const results = grid.map(() => []);
  for (let rep = 0; rep < o.sweepReps; rep++) {
    const order = grid.map((_, i) => i);
    for (let j = order.length - 1; j > 0; j--) {
      const r = Math.floor(Math.random() * (j + 1));
      [order[j], order[r]] = [order[r], order[j]];
    }
    for (const [k, i] of order.entries()) {
      lib.log(`sweep round ${rep + 1}/${o.sweepReps}, trial ${k + 1}/${grid.length}`);
      results[i].push((await drainOnce(url, grid[i], o.sweepJobs, o.timeout, logger)).seconds);
    }
  }
  const trials = grid.map((config, i) => {
    const seconds = lib.median(results[i]);
    const trial = { config, seconds: lib.round(seconds), jobs_per_sec: Math.round(o.sweepJobs / seconds), runs_jobs_per_sec: results[i].map((x) => Math.round(o.sweepJobs / x)) };
    console.error(JSON.stringify(trial));
    return trial;
  });
  const best = trials.reduce((a, b) => (b.jobs_per_sec > a.jobs_per_sec ? b : a));
  const args = `--concurrency ${best.config.concurrency} --local-queue-size ${best.config.local_queue_size} --complete-batch-delay ${best.config.complete_job_batch_delay}`;
  console.log(JSON.stringify({ ...base, test: 'drain-sweep', jobs: o.sweepJobs, reps: o.sweepReps, best, best_args: args, trials }));
});
