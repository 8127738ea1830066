/**
 * Shared input handling of the `dsv3` subcommands: token-id files, option parsing helpers and
 * writing outputs. Errors are `InputError`s naming the file and position (exit code 2).
 */
import { NUMERICS_PROFILES, type NumericsProfile } from '../model/numerics.js';
import { readFileSync } from 'node:fs';
import { Option } from 'commander';
import { InputError } from '../errors.js';
import { preview } from '../preview.js';
import type { AttnImpl } from '../model/attention.js';
import type { DType } from '../tensor.js';
import { CliUsageError } from './errors.js';
import { checkInputFile, jsonInputLimit } from './resources.js';

/**
 * Reads token ids from a JSON file: `[[1, 2, 3], [4, 5, 6]]` (rows of equal length), a single
 * row `[1, 2, 3]`, or an object with `input_ids` (or `ids`) holding either.
 */
export function readIdsFile(path: string): number[][] {
  checkInputFile(path, jsonInputLimit(), 'an ids file');
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8').replace(/^\uFEFF/, '')); // a UTF-8 byte-order mark is not an error
  } catch (e) {
    if (e instanceof SyntaxError) throw new InputError(`${path}: not valid JSON (${e.message})`);
    throw e;
  }
  if (typeof json === 'object' && json !== null && !Array.isArray(json)) {
    const o = json as Record<string, unknown>;
    json = o.input_ids ?? o.ids;
    if (json === undefined) throw new InputError(`${path}: expected an array of token ids or an object with 'input_ids'`);
  }
  if (!Array.isArray(json) || json.length === 0) throw new InputError(`${path}: expected a non-empty array of token ids`);
  const rows = (Array.isArray(json[0]) ? json : [json]) as unknown[];
  const out: number[][] = [];
  rows.forEach((row, b) => {
    if (!Array.isArray(row) || row.length === 0) throw new InputError(`${path}: row ${b} is not a non-empty array of token ids`);
    row.forEach((v, t) => {
      if (!Number.isInteger(v) || (v as number) < 0 || (v as number) > 0x7fffffff) throw new InputError(`${path}: token [${b}][${t}] = ${preview(v)} is not a token id (an integer in [0, 2³¹))`);
    });
    if (row.length !== (rows[0] as unknown[]).length) {
      throw new InputError(`${path}: row ${b} has ${row.length} ids, row 0 has ${(rows[0] as unknown[]).length} (rows must have equal length)`);
    }
    out.push(row as number[]);
  });
  return out;
}

/** commander option parser for a non-negative number (`--rtol 1e-3`). */
export function parseNonNegative(flag: string): (v: string) => number {
  return (v) => {
    const x = Number(v);
    if (v.trim() === '' || !(x >= 0) || !Number.isFinite(x)) throw new CliUsageError(`${flag} must be a non-negative number, got '${v}'`);
    return x;
  };
}

/** commander option parser for a positive integer. */
export function parsePositiveInt(flag: string): (v: string) => number {
  return (v) => {
    const x = Number(v);
    if (!Number.isInteger(x) || x <= 0) throw new CliUsageError(`${flag} must be a positive integer, got '${v}'`);
    return x;
  };
}

/** commander option parser for an integer (`--seed`), naming the flag and the text given. */
export function parseInteger(flag: string): (v: string) => number {
  return (v) => {
    const x = Number(v);
    if (v.trim() === '' || !Number.isSafeInteger(x)) throw new CliUsageError(`${flag} must be an integer, got '${v}'`);
    return x;
  };
}

/** commander collector for repeatable options (`--tol a=1,2 --tol b=3,4`). */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** Parses `--dtype`: `f32 | f64` (the help texts' spelling; `float32 | float64`, the API's, are accepted too). */
export function parseDType(v: string): DType {
  if (v === 'float32' || v === 'f32') return 'float32';
  if (v === 'float64' || v === 'f64') return 'float64';
  throw new CliUsageError(`--dtype must be f32 or f64, got '${v}'`);
}

/** Parses `--numerics` (exact | official-bf16 | official-fp8 | official-fp8-ue8m0). */
export function parseNumerics(v: string): NumericsProfile {
  if ((NUMERICS_PROFILES as readonly string[]).includes(v)) return v as NumericsProfile;
  throw new CliUsageError(`--numerics must be one of ${NUMERICS_PROFILES.join(' | ')}, got '${v}'`);
}

/** Help text of `--numerics`. */
export const NUMERICS_HELP = `numerics profile: ${NUMERICS_PROFILES.join(' | ')} (official-*: emulate the official GPU inference in bf16/FP8, docs/numerics-profiles.md)`;

/** The `--dtype` option (default f32), spelled `f32 | f64` in the help like every command's. */
export function dtypeOption(): Option {
  return new Option('--dtype <dtype>', 'compute precision: f32 | f64').argParser(parseDType).default('float32' as DType, 'f32');
}

/** Parses `--attn`. */
export function parseAttn(v: string): AttnImpl {
  if (v === 'naive' || v === 'absorb') return v;
  throw new CliUsageError(`--attn must be naive or absorb, got '${v}'`);
}

/** Prints a JSON value on stdout (non-finite numbers as strings). */
export function printJSON(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v), 2)}\n`);
}
