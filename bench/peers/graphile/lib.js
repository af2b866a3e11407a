'use strict';
// Small shared helpers for the graphile-worker peer benchmarks.

// graphile-worker reads this at module load; skips formatting a log line per
// successful job (documented production knob). Must be set before require().
if (process.env.NO_LOG_SUCCESS === undefined) process.env.NO_LOG_SUCCESS = '1';

const { Logger } = require('graphile-worker');
const GW_VERSION = require('graphile-worker/package.json').version;

const log = (...a) => console.error(`[${new Date().toISOString()}]`, ...a);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Minimal `--key value` / `--key=value` / `--flag` parser (accepts negative numbers).
class UsageError extends Error {}

function parseArgs(argv, spec) {
  const fail = (msg) => { throw new UsageError(msg); };
  const out = {};
  for (const [k, v] of Object.entries(spec)) out[k] = v.default;
  for (let i = 0; i < argv.length; i++) {
    let a = argv[i];
    if (a === '-h' || a === '--help') a = '--help';
    if (!a.startsWith('--')) fail(`unexpected argument: ${a}`);
    let [key, val] = a.slice(2).split(/=(.*)/s);
    const name = key.replace(/-([a-z])/g, (_, c) => c.toUpperCase());
    const s = spec[name];
    if (!s) fail(`unknown option --${key} (see --help)`);
    if (s.type === 'bool') { out[name] = val === undefined ? true : val !== 'false'; continue; }
    if (val === undefined) {
      if (i + 1 >= argv.length) fail(`--${key} needs a value`);
      val = argv[++i];
    }
    if (s.type === 'int') {
      const n = Number(val);
      if (!Number.isInteger(n)) fail(`--${key} expects an integer, got ${val}`);
      out[name] = n;
    } else if (s.type === 'ints') {
      out[name] = val.split(',').map((x) => {
        const n = Number(x);
        if (!Number.isInteger(n)) fail(`--${key} expects integers, got ${x}`);
        return n;
      });
    } else out[name] = val;
  }
  return out;
}

function usage(title, spec) {
  const lines = [title, '', 'Options:'];
  for (const [k, v] of Object.entries(spec)) {
    const flag = '--' + k.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase());
    const def = v.default === undefined ? '' : ` (default: ${v.default})`;
    lines.push(`  ${flag.padEnd(26)} ${v.help}${def}`);
  }
  return lines.join('\n');
}

// graphile-worker logger that writes to stderr; only warnings/errors unless verbose.
function makeLogger(verbose) {
  return new Logger((scope) => (level, message) => {
    if (verbose || level === 'error' || level === 'warning') {
      console.error(`[gw ${level}${scope.label ? ' ' + scope.label : ''}] ${message}`);
    }
  });
}

function requireDatabaseUrl() {
  const url = process.env.DATABASE_URL;
  if (!url) throw new UsageError('DATABASE_URL is not set');
  return url;
}

// Nearest-rank percentile on a sorted array.
function pct(sorted, p) {
  if (!sorted.length) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

const round = (x, d = 3) => Math.round(x * 10 ** d) / 10 ** d;

// Run main(), print errors, and always terminate the process.
function main(fn) {
  fn().then(
    () => process.exit(0),
    (err) => {
      console.error('ERROR:', err instanceof UsageError ? err.message : err && err.stack ? err.stack : err);
      process.exit(1);
    },
  );
}

module.exports = { GW_VERSION, log, sleep, parseArgs, usage, makeLogger, requireDatabaseUrl, pct, median, round, main };
