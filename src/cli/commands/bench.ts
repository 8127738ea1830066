/**
 * `dsv3 bench [filter]`: runs the benchmark suite (benchmarks/run.mjs of the source tree) on the built
 * library in a child Node process and passes its output and exit code through. `--list` names the
 * benchmarks (benchmarks/*.bench.{mjs,ts}) with the first sentence of each file's header comment,
 * without running them. The filter is the one of run.mjs: keep files whose name contains it.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { CliUsageError } from '../errors.js';
import { printJSON } from '../inputs.js';

/** Path of benchmarks/ relative to this module (dist/cli/commands or src/cli/commands). */
function benchDirPath(): string {
  return fileURLToPath(new URL('../../../benchmarks/', import.meta.url));
}

/** Path of benchmarks/run.mjs (the dispatcher `dsv3 bench` runs). */
function benchScriptPath(): string {
  return join(benchDirPath(), 'run.mjs');
}

/** One benchmark file: `name` is the file name without `.bench.mjs` / `.bench.ts`. */
interface BenchmarkEntry {
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
    .description('run the benchmarks (benchmarks/*.bench.mjs of the source checkout, after `npm run build`)')
    .argument('[filter]', 'run (or list) only the benchmark files whose name contains this, e.g. tokenizer')
    .option('--list', 'list the benchmarks with a one-line description instead of running them')
    .option('--json', 'with --list: print the list as JSON')
    .addHelpText('after', '\nExamples:\n  $ dsv3 bench --list\n  $ dsv3 bench tokenizer')
    .action((filterArg: string | undefined, o: { list?: boolean; json?: boolean }) => {
      const filter = filterArg ?? '';
      const dir = benchDirPath();
      const script = benchScriptPath();
      if (!existsSync(script)) throw new CliUsageError(`${script} not found: bench runs from a source checkout (git clone, npm install)`);
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
      const r = spawnSync(process.execPath, ['--expose-gc', script, ...(filter === '' ? [] : [filter])], { stdio: 'inherit' });
      if (r.error) throw r.error;
      process.exitCode = r.status ?? 1;
    });
}
