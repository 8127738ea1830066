/**
 * `dsv3 bench [filter]`: runs the benchmark suite (benchmarks/run.mjs, shipped in the package) on the
 * built library in a child Node process and passes its output and exit code through. `--list` names the
 * benchmarks (benchmarks/*.bench.{mjs,ts}) with the first sentence of each file's header comment,
 * without running them. The filter is the one of run.mjs: keep files whose name contains it. Before
 * running, it checks that the packages the chosen files import are installed (in a consumer project
 * the comparison libraries, dev dependencies here, are not) and names the missing ones.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { CliUsageError } from '../errors.js';
import { parsePositiveInt, printJSON } from '../inputs.js';

/** Path of benchmarks/ relative to this module (dist/cli/commands or src/cli/commands). */
function benchDirPath(): string {
  return fileURLToPath(new URL('../../../benchmarks/', import.meta.url));
}

/** Path of benchmarks/run.mjs (the dispatcher `dsv3 bench` runs). */
function benchScriptPath(): string {
  return join(benchDirPath(), 'run.mjs');
}

/** One benchmark file: `name` is the file name without `.bench.mjs` / `.bench.ts`. */
export interface BenchmarkEntry {
  name: string;
  file: string;
  description: string;
}

const BENCH_FILE = /\.bench\.(mjs|ts)$/;

/** First sentence of the leading `//` comment block of a benchmark file ('' when it has none). */
function benchDescription(source: string): string {
  const lines: string[] = [];
  for (const line of source.split('\n')) {
    const m = /^\s*\/\/ ?(.*)$/.exec(line);
    if (m === null || m[1]!.trim() === '') break; // the header ends at the first blank comment line or code
    lines.push(m[1]!.trim());
  }
  const text = lines.join(' ');
  const end = text.search(/\.(\s|$)/); // first sentence: up to the first '.' followed by a space or the end
  return end < 0 ? text : text.slice(0, end + 1);
}

/** npm packages a benchmark file imports (bare specifiers, and `node_modules/<pkg>` paths it reads), without node: built-ins. */
function packagesOf(source: string): string[] {
  const names = new Set<string>();
  for (const m of source.matchAll(/(?:from\s+|import\(\s*|require\(\s*)'([^'./][^']*)'|node_modules\/((?:@[\w.-]+\/)?[\w.-]+)/g)) {
    const spec = m[1] ?? m[2]!;
    if (spec.startsWith('node:')) continue;
    const parts = spec.split('/');
    names.add(spec.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!);
  }
  return [...names];
}

/** Whether a bare import of `name` from `dir` would find a package: node_modules/<name> in `dir` or an ancestor. */
function installed(name: string, dir: string): boolean {
  for (let d = dir; ; d = dirname(d)) {
    if (existsSync(join(d, 'node_modules', name, 'package.json'))) return true;
    if (dirname(d) === d) return false;
  }
}

/**
 * The benchmarks compare against libraries that are dev dependencies (tinybench, tfjs, the Rust
 * tokenizers binding, ...), absent where the package is installed as a dependency. Names the
 * missing packages with the versions this package pins, and the benchmarks that need none.
 */
export function checkBenchDependencies(dir: string, entries: BenchmarkEntry[]): void {
  const missingOf = (e: BenchmarkEntry) => packagesOf(readFileSync(join(dir, e.file), 'utf8')).filter((p) => !installed(p, dir));
  const missing = [...new Set(entries.flatMap(missingOf))].sort();
  if (missing.length === 0) return;
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { devDependencies?: Record<string, string> };
  const spec = missing.map((p) => (pkg.devDependencies?.[p] ? `${p}@${pkg.devDependencies[p]}` : p)).join(' ');
  const runnable = listBenchmarks(dir).filter((e) => missingOf(e).length === 0).map((e) => e.name);
  throw new CliUsageError(
    `these benchmarks need packages that are not installed: ${missing.join(', ')} (dev dependencies of deepseek-v3-ref): ` +
      `\`npm install --no-save ${spec}\` adds them` +
      (runnable.length > 0 ? `; ${runnable.map((n) => `\`dsv3 bench ${n}\``).join(', ')} need none` : ''),
  );
}

/** The benchmark files in `dir` whose file name contains `filter` (run.mjs's rule), by name. */
function listBenchmarks(dir: string, filter = ''): BenchmarkEntry[] {
  return readdirSync(dir)
    .filter((f) => BENCH_FILE.test(f) && f.includes(filter))
    .sort()
    .map((file) => ({ name: file.replace(BENCH_FILE, ''), file, description: benchDescription(readFileSync(join(dir, file), 'utf8')) }));
}

/** Registers `dsv3 bench`. */
export function registerBenchCommand(program: Command): void {
  program
    .command('bench')
    .description('run the benchmarks (benchmarks/*.bench.mjs, shipped with the package; some need its dev dependencies)')
    .argument('[filter]', 'run (or list) only the benchmark files whose name contains this, e.g. tokenizer')
    .option('--list', 'list the benchmarks with a one-line description instead of running them')
    .option('--json', 'with --list: print the list as JSON')
    .option('--threads <n>', 'threads of the wasm kernels in the model and kernel benchmarks (their default: 1)', parsePositiveInt('--threads'))
    .addHelpText('after', '\nExamples:\n  $ dsv3 bench --list\n  $ dsv3 bench tokenizer\n  $ dsv3 bench model --threads 2')
    .action((filterArg: string | undefined, o: { list?: boolean; json?: boolean; threads?: number }) => {
      const filter = filterArg ?? '';
      const dir = benchDirPath();
      const script = benchScriptPath();
      if (!existsSync(script)) throw new CliUsageError(`${script} not found (the package ships benchmarks/; reinstall it, or run from a source checkout)`);
      if (o.json === true && o.list !== true) throw new CliUsageError('--json needs --list (benchmark output is text)');
      const entries = listBenchmarks(dir, filter);
      if (entries.length === 0) {
        const names = listBenchmarks(dir).map((e) => e.name);
        throw new CliUsageError(`no benchmark file name contains '${filter}' (available: ${names.join(', ')})`);
      }
      if (o.list === true) {
        if (o.json === true) printJSON(entries);
        else {
          const w = Math.max(...entries.map((e) => e.name.length));
          for (const e of entries) process.stdout.write(`${e.name.padEnd(w)}  ${e.description}\n`);
        }
        return;
      }
      checkBenchDependencies(dir, entries);
      const threads = o.threads !== undefined ? ['--threads', String(o.threads)] : [];
      const r = spawnSync(process.execPath, ['--expose-gc', script, ...(filter === '' ? [] : [filter]), ...threads], { stdio: 'inherit' });
      if (r.error) throw r.error;
      process.exitCode = r.status ?? 1;
    });
}
