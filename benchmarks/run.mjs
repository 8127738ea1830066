// Benchmark dispatcher (`npm run bench [-- <filter>] [flags]`): runs every benchmarks/*.bench.mjs and
// *.bench.ts file, each in its own `node --expose-gc` process, in name order. An optional first
// argument (not starting with --) keeps only files whose name contains it; the flags (--json,
// --threads N, ...) are passed to every bench. With --json the headers go to stderr, so stdout
// holds one JSON document per bench. Bench files import the compiled library
// from ../dist (`npm run bench` builds it first). A .bench.ts file is transpiled with
// TypeScript to a temporary .mjs beside it (so its relative imports resolve), run, and removed.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const filter = args[0] !== undefined && !args[0].startsWith('--') ? args.shift() : '';
const header = args.includes('--json') ? console.error : console.log;
const files = readdirSync(here)
  .filter((f) => /\.bench\.(mjs|ts)$/.test(f) && f.includes(filter))
  .sort();
if (files.length === 0) {
  console.error(`bench: no benchmarks/*.bench.{mjs,ts} file matches '${filter}'`);
  process.exit(1);
}

async function transpile(file) {
  const ts = (await import('typescript')).default;
  const out = ts.transpileModule(readFileSync(join(here, file), 'utf8'), {
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
    fileName: file,
  });
  const tmp = join(here, `.${file.replace(/\.ts$/, '')}.tmp.mjs`);
  writeFileSync(tmp, out.outputText);
  return tmp;
}

const failed = [];
for (const file of files) {
  header(`\n=== ${file} ===`);
  const script = file.endsWith('.ts') ? await transpile(file) : join(here, file);
  try {
    const r = spawnSync(process.execPath, ['--expose-gc', script, ...args], { stdio: 'inherit' });
    if (r.status !== 0) failed.push(`${file} (exit ${r.status ?? r.signal})`);
  } finally {
    if (script !== join(here, file)) rmSync(script, { force: true });
  }
}
if (failed.length > 0) {
  console.error(`\nbench: failed: ${failed.join(', ')}`);
  process.exit(1);
}
