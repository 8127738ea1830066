/**
 * Exit codes and error reporting of the `dsv3` command. Every failure prints ONE line on stderr
 * (`dsv3 <command>: error: <message>`) and sets the exit code:
 *
 * | code | meaning |
 * | --- | --- |
 * | 0 | success (verify/diff: every compared tensor passes) |
 * | 1 | verify/diff: at least one tensor mismatches (or nothing could be compared) |
 * | 2 | usage or input error: bad flags, missing/malformed files, invalid config, bad token ids |
 * | 3 | internal error (a bug in this library: please report it; `DSV3_DEBUG=1` prints the stack) |
 */
import { CommanderError } from 'commander';
import { BackendError, DeepSeekError } from '../errors.js';

/** Exit codes of `dsv3` (see the table above). */
export const EXIT = Object.freeze({ OK: 0, MISMATCH: 1, USAGE: 2, INTERNAL: 3 });

/** A usage error raised by a command's own option checks (exit code 2). */
export class CliUsageError extends DeepSeekError {}

const FS_INPUT_CODES = new Set(['ENOENT', 'EACCES', 'EISDIR', 'ENOTDIR', 'EPERM', 'EEXIST', 'ENOSPC', 'EROFS']);

/** One phrasing per file-system failure, after the path (`nope.json: no such file`, as the library's own errors say). */
const FS_PHRASES: Readonly<Record<string, string>> = {
  ENOENT: 'no such file',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EISDIR: 'is a directory, expected a file',
  ENOTDIR: 'a parent of this path is not a directory',
  EEXIST: 'already exists',
  ENOSPC: 'no space left on the device',
  EROFS: 'read-only file system',
};

/** How an error maps to an exit code and a one-line message. */
function classifyError(err: unknown): { code: number; message: string } {
  if (err instanceof CommanderError) {
    // commander already printed its message; help and version are successes
    const ok = err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || (err.code === 'commander.help' && err.exitCode === 0);
    return { code: ok ? EXIT.OK : EXIT.USAGE, message: '' };
  }
  if (err instanceof BackendError) return { code: EXIT.USAGE, message: err.message };
  // Every typed error of the library (InputError, ConfigError, FormatError, WeightsError,
  // ShapeError, UnsupportedError) describes bad input or an unsupported request.
  if (err instanceof DeepSeekError) return { code: EXIT.USAGE, message: err.message };
  const e = err as { code?: unknown; message?: unknown; path?: unknown };
  if (typeof e?.code === 'string' && FS_INPUT_CODES.has(e.code)) {
    return { code: EXIT.USAGE, message: typeof e.path === 'string' ? `${e.path}: ${FS_PHRASES[e.code] ?? e.code}` : String(e.message ?? e.code) };
  }
  if (err instanceof SyntaxError) return { code: EXIT.USAGE, message: `malformed JSON: ${err.message}` };
  const msg = err instanceof Error ? err.message : String(err);
  return { code: EXIT.INTERNAL, message: `internal error: ${msg} (a bug; rerun with DSV3_DEBUG=1 for the stack and please report it)` };
}

/** Prints the one-line error (and the stack when DSV3_DEBUG is set) and returns the exit code. */
export function reportError(err: unknown, command: string): number {
  const { code, message } = classifyError(err);
  if (message !== '') process.stderr.write(`dsv3${command ? ` ${command}` : ''}: error: ${message.replace(/\s*\n\s*/g, ' ')}\n`);
  if (process.env.DSV3_DEBUG && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
  return code;
}
