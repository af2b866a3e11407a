#!/usr/bin/env node
'use strict';
// Idle-worker pickup latency of graphile-worker: with a running, idle worker
// (LISTEN/NOTIFY as normal), add jobs one at a time from a separate autocommit
// connection; latency = handler start - add_job() returned (same process clock).
const { performance } = require('node:perf_hooks');
const { EventEmitter } = require('node:events');
const lib = require('./lib');
const { run, runMigrations } = require('graphile-worker');
const { Client } = require('pg');

const SPEC = {
  n: { type: 'int', default: 1000, help: 'number of measured jobs' },
  warmup: { type: 'int', default: 10, help: 'unmeasured warm-up jobs first' },
  concurrency: { type: 'int', default: 1, help: 'worker concurrency' },
  localQueueSize: { type: 'int', default: -1, help: 'preset.worker.localQueue.size (-1 = disabled, graphile default)' },
  pollInterval: { type: 'int', default: 2000, help: 'pollInterval ms (fallback polling; graphile default)' },
  idleMs: { type: 'int', default: 1000, help: 'let the worker sit idle this long before the first add' },
  jobTimeout: { type: 'int', default: 10000, help: 'abort if one job is not picked up within this many ms' },
  verbose: { type: 'bool', default: false, help: 'show graphile-worker info/debug logs' },
  help: { type: 'bool', default: false, help: 'show this help' },
};

const now = () => performance.timeOrigin + performance.now();

lib.main(async () => {
  const o = lib.parseArgs(process.argv.slice(2), SPEC);
  if (o.help) {
    console.error(lib.usage('Usage: DATABASE_URL=postgres://... node pickup.js [options]', SPEC));
    return;
  }
  const url = lib.requireDatabaseUrl();
  const logger = lib.makeLogger(o.verbose);
  const total = o.warmup + o.n;
  setTimeout(() => {
    console.error('ERROR: global watchdog expired');
    process.exit(2);
  }, o.idleMs + 60000 + total * (o.jobTimeout + 100)).unref();

  await runMigrations({ connectionString: url, logger });
  const adder = new Client({ connectionString: url });
  await adder.connect();
  await adder.query(`delete from graphile_worker._private_jobs j using graphile_worker._private_tasks t
    where t.id = j.task_id and t.identifier = 'pickup'`);

  // Handler records its start time and wakes the waiting producer.
  const startedAt = new Map();
  let waiter = null; // { i, resolve }
  const taskList = {
    pickup: async (payload) => {
      const t = now();
      startedAt.set(payload.i, t);
      if (waiter && waiter.i === payload.i) waiter.resolve();
    },
  };
  // Count "no job found" fetches, so we only add the next job once the worker is idle again.
  const events = new EventEmitter();
  let emptyFetches = 0;
  events.on('worker:getJob:empty', () => { emptyFetches++; });

  const runner = await run({
    connectionString: url,
    concurrency: o.concurrency,
    pollInterval: o.pollInterval,
    noHandleSignals: true,
    logger,
    events,
    taskList,
    parsedCronItems: [],
    preset: { worker: { localQueue: { size: o.localQueueSize } } },
  });
  const latencies = [];
  const addMs = []; // add_job round trip (includes the durable commit)
  try {
    await lib.sleep(o.idleMs);
    lib.log(`worker idle; adding ${o.warmup} warm-up + ${o.n} jobs one at a time`);
    for (let i = 0; i < total; i++) {
      const emptyBefore = emptyFetches;
      const started = new Promise((resolve, reject) => {
        waiter = { i, resolve };
        setTimeout(() => reject(new Error(`job ${i} not picked up within ${o.jobTimeout} ms`)), o.jobTimeout).unref();
      });
      const before = now();
      await adder.query(`select (graphile_worker.add_job('pickup', json_build_object('i', $1::int))).id`, [i]);
      const added = now();
      await started;
      if (i >= o.warmup) {
        latencies.push(startedAt.get(i) - added);
        addMs.push(added - before);
      }
      startedAt.delete(i);
      // Wait until the worker has finished the job and found the queue empty
      // (i.e. it is idle waiting for NOTIFY), then a small random gap.
      const idleBy = performance.now() + o.jobTimeout;
      while (emptyFetches === emptyBefore) {
        if (performance.now() > idleBy) throw new Error(`worker did not go idle after job ${i}`);
        await lib.sleep(1);
      }
      await lib.sleep(1 + Math.floor(Math.random() * 5));
      if ((i + 1) % 200 === 0) lib.log(`${i + 1}/${total}`);
    }
  } finally {
    await Promise.race([runner.stop(), lib.sleep(30000)]);
    await adder.end();
  }

  const s = [...latencies].sort((a, b) => a - b);
  const mean = s.reduce((a, b) => a + b, 0) / s.length;
  const a = addMs.sort((x, y) => x - y);
  console.log(JSON.stringify({
    peer: 'graphile-worker', version: lib.GW_VERSION, test: 'pickup', n: o.n,
    p50_ms: lib.round(lib.pct(s, 50)), p90_ms: lib.round(lib.pct(s, 90)), p99_ms: lib.round(lib.pct(s, 99)),
    max_ms: lib.round(s[s.length - 1]), mean_ms: lib.round(mean), min_ms: lib.round(s[0]),
    negative: s.filter((x) => x < 0).length, add_p50_ms: lib.round(lib.pct(a, 50)), add_p99_ms: lib.round(lib.pct(a, 99)),
    config: { concurrency: o.concurrency, local_queue_size: o.localQueueSize, poll_interval: o.pollInterval, warmup: o.warmup },
  }));
});
