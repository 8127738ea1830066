/**
 * `dsv3 bench`: runs the benchmark suite (benchmarks/run.mjs of the source tree) on the built
 * library in a child Node process and passes its output and exit code through.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { CliUsageError } from '../errors.js';

/** Path of benchmarks/run.mjs relative to this module (dist/cli/commands or src/cli/commands). */
export function benchScriptPath(): string {
  return fileURLToPath(new URL('../../../benchmarks/run.mjs', import.meta.url));
}

/** Registers `dsv3 bench`. */
export function registerBenchCommand(program: Command): void {
  program
    .command('bench')
    .description('run the benchmarks (benchmarks/run.mjs, needs the source checkout and `npm run build`); extra arguments are passed on')
    .argument('[args...]', 'arguments for benchmarks/run.mjs')
    .allowUnknownOption()
    .addHelpText('after', '\nExamples:\n  $ dsv3 bench\n  $ dsv3 bench -- --json')
    .action((args: string[]) => {
      const script = benchScriptPath();
      if (!existsSync(script)) throw new CliUsageError(`${script} not found: bench runs from a source checkout (git clone, npm install)`);
      const r = spawnSync(process.execPath, ['--expose-gc', script, ...args], { stdio: 'inherit' });
      if (r.error) throw r.error;
      process.exitCode = r.status ?? 1;
    });
}
