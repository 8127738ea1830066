#!/usr/bin/env node
/**
 * The `dsv3` command. Each subcommand lives in src/cli/commands/<name>.ts and exports
 * `registerXxxCommand(program)`. Exit codes and error output: see src/cli/errors.ts
 * (0 ok, 1 verify/diff mismatch, 2 usage/input error, 3 internal error).
 */
import { readFileSync } from 'node:fs';
import { Command, type Option } from 'commander';
import { registerBenchCommand } from './commands/bench.js';
import { registerDemoCommand } from './commands/demo.js';
import { registerDiffCommand } from './commands/diff.js';
import { registerDumpScriptCommand } from './commands/dump_script.js';
import { registerForwardCommand } from './commands/forward.js';
import { registerGenerateCommand } from './commands/generate.js';
import { registerGradCommand } from './commands/grad.js';
import { registerInfoCommand } from './commands/info.js';
import { registerTokenizeCommands } from './commands/tokenize.js';
import { registerTraceCommand } from './commands/trace.js';
import { registerTrainCommand } from './commands/train.js';
import { registerVerifyCommand } from './commands/verify.js';
import { EXIT, reportError } from './errors.js';
import { setGuardFlags, type GuardFlags } from './resources.js';

function packageVersion(): string {
  try {
    // dist/cli/main.js and src/cli/main.ts both sit two levels below the package root
    return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/** commander's error text as one line: its "(Did you mean …?)" hint goes on the same line. */
function oneLine(str: string): string {
  return str.trim().replace(/\s*\n\s*/g, ' ');
}

/**
 * Makes the required options of `cmd` checked after the unknown-option check: commander reports a missing
 * required option before an unknown one, so `--modle` would read "required option '--model <dir>' not
 * specified" without naming the typo.
 */
function checkRequiredAfterUnknown(cmd: Command): void {
  const required: Option[] = cmd.options.filter((o) => o.mandatory);
  for (const o of required) o.mandatory = false;
  cmd.hook('preAction', (c) => {
    const missing = required.find((o) => c.getOptionValue(o.attributeName()) === undefined);
    if (missing) c.error(`error: required option '${missing.flags}' not specified`, { code: 'commander.missingMandatoryOptionValue', exitCode: EXIT.USAGE });
  });
}

/** Builds the program with every subcommand registered (exported for tests and embedding). */
function buildProgram(): Command {
  const program = new Command('dsv3');
  program
    .description('DeepSeek-V3 reference implementation: inspect, run, trace and verify models')
    .version(packageVersion())
    .exitOverride()
    .configureOutput({ outputError: (str, write) => write(`dsv3: ${oneLine(str)} (see --help)\n`) })
    .addHelpText('after', '\nExit codes: 0 ok, 1 verify/diff mismatch, 2 usage or input error, 3 internal error.\nRun `dsv3 <command> --help` for each command.');
  registerInfoCommand(program);
  registerForwardCommand(program);
  registerGradCommand(program);
  registerTraceCommand(program);
  registerVerifyCommand(program);
  registerDiffCommand(program);
  registerDumpScriptCommand(program);
  registerGenerateCommand(program);
  registerTrainCommand(program);
  registerTokenizeCommands(program);
  registerBenchCommand(program);
  registerDemoCommand(program);
  // subcommands must not let commander exit: errors come back here
  for (const c of program.commands) {
    c.exitOverride().configureOutput({ outputError: (str, write) => write(`dsv3 ${c.name()}: ${oneLine(str)} (see dsv3 ${c.name()} --help)\n`) });
    checkRequiredAfterUnknown(c);
  }
  // --max-memory, --strict, --allow-long of the command about to run (src/cli/resources.ts)
  program.hook('preAction', (_program, action) => setGuardFlags(action.opts<GuardFlags>()));
  return program;
}

/** Runs the CLI on `argv` (without node and script); resolves to the exit code. */
async function runCli(argv: readonly string[]): Promise<number> {
  const program = buildProgram();
  process.exitCode = 0;
  if (argv.length === 0) {
    // no command is a usage error: the help goes to stderr
    program.outputHelp({ error: true });
    return EXIT.USAGE;
  }
  if (argv[0] === 'help' && argv[1] !== undefined && !program.commands.some((c) => c.name() === argv[1])) {
    // commander would print the whole help on stderr; an error is one line
    process.stderr.write(`dsv3: error: unknown command '${argv[1]}' (see --help)\n`);
    return EXIT.USAGE;
  }
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return Number(process.exitCode ?? 0);
  } catch (err) {
    const command = argv.find((a) => !a.startsWith('-')) ?? '';
    const known = program.commands.some((c) => c.name() === command);
    return reportError(err, known ? command : '');
  }
}

// `dsv3 … | head`: a reader that closes the pipe early is not an error of ours
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw err;
});

process.exitCode = await runCli(process.argv.slice(2));
