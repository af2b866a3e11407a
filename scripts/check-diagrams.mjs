// Parses every Mermaid diagram (```mermaid blocks) in the Markdown files given, or in README.md
// and docs/**/*.md, with Mermaid's own parser (the npm package `mermaid`, pinned in .github/lint;
// jsdom provides the DOM it expects). GitHub renders these blocks; one that does not parse shows
// as an error box instead of the diagram.
//
// Usage: node scripts/check-diagrams.mjs [FILE.md...]
// Exits 1 if a diagram does not parse, 2 when there is no diagram or the parser cannot load.
import { readdir, readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const require = createRequire(path.join(root, ".github", "lint", "package.json"));

let mermaid;
try {
  const { JSDOM } = require("jsdom");
  const dom = new JSDOM("<!doctype html><html><body></body></html>");
  globalThis.window = dom.window;
  globalThis.document = dom.window.document;
  globalThis.DOMParser = dom.window.DOMParser;
  globalThis.Element = dom.window.Element;
  ({ default: mermaid } = await import(pathToFileURL(require.resolve("mermaid")).href));
} catch (err) {
  console.error(`check-diagrams: cannot load mermaid/jsdom (run: cd .github/lint && npm ci): ${err.message}`);
  process.exit(2);
}

async function markdownFiles() {
  const docs = await readdir(path.join(root, "docs"), { recursive: true });
  return [
    path.join(root, "README.md"),
    ...docs.filter((f) => f.endsWith(".md")).sort().map((f) => path.join(root, "docs", f)),
  ];
}

const files = process.argv.length > 2 ? process.argv.slice(2) : await markdownFiles();
let diagrams = 0;
let failed = 0;
for (const file of files) {
  const rel = path.relative(root, path.resolve(file));
  const text = await readFile(file, "utf8");
  for (const m of text.matchAll(/^```mermaid\n([\s\S]*?)^```/gm)) {
    diagrams += 1;
    const line = text.slice(0, m.index).split("\n").length;
    try {
      await mermaid.parse(m[1]);
      console.log(`ok      ${rel}:${line}`);
    } catch (err) {
      failed += 1;
      console.log(`${rel}:${line}: the Mermaid diagram does not parse: ${String(err.message ?? err).trim()}`);
    }
  }
}
console.log(`check-diagrams: ${diagrams} diagram(s) in ${files.length} file(s), ${failed} that do not parse`);
process.exit(diagrams === 0 ? 2 : failed === 0 ? 0 : 1);
