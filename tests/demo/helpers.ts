/** Runs a `dsv3` subcommand in-process on a local commander program, capturing stdout/stderr. */
import { Command } from 'commander';
import { vi } from 'vitest';
import { reportError } from '../../src/cli/errors.js';

/** Result of an in-process run: exit code as the CLI would set it, and the captured output. */
export interface InProcessRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Registers one command on a fresh program and runs `argv` (errors map to exit codes as in src/cli/main.ts). */
export async function runCommand(register: (p: Command) => void, argv: string[]): Promise<InProcessRun> {
  const program = new Command('dsv3').exitOverride();
  register(program);
  for (const c of program.commands) c.exitOverride();
  let stdout = '';
  let stderr = '';
  const out = vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => {
    stdout += String(s);
    return true;
  });
  const err = vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => {
    stderr += String(s);
    return true;
  });
  process.exitCode = 0;
  let code: number;
  try {
    await program.parseAsync(argv, { from: 'user' });
    code = Number(process.exitCode ?? 0);
  } catch (e) {
    code = reportError(e, argv[0] ?? '');
  } finally {
    out.mockRestore();
    err.mockRestore();
    process.exitCode = 0;
  }
  return { code, stdout, stderr };
}
