/**
 * The guard rails of the `dsv3` commands: `--max-memory`, `--strict` and `--allow-long`, existence and size
 * checks of input files before they are read, and opening a model (directory or preset) only after the memory
 * estimate of the whole command fits the budget. Every refusal is one error line with exit code 2, in well
 * under a second: nothing large is read or allocated before the checks.
 *
 * The flags of the running command reach the helpers through {@link setGuardFlags}, which main.ts calls once
 * per process (commander's preAction hook), so commands that share a runner (trace, verify) need not pass them.
 */
import { statSync } from 'node:fs';
import { totalmem } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { InputError } from '../errors.js';
import { residentWeights } from '../kernels/index.js';
import type { ModelConfig } from '../model/config.js';
import { flattenTokenBatch, validateTokenIds } from '../model/embedding.js';
import { checkMemory, checkPositions, estimateMemory, formatBytes, type Workload } from '../model/guards.js';
import { DeepSeekV3 } from '../model/model.js';
import { getPreset } from '../model/presets.js';
import { initWeights } from '../model/weights.js';
import { loadModel, readConfigFile, weightFileBytes } from '../model/weights_node.js';
import type { DType } from '../tensor.js';
import { CliUsageError } from './errors.js';

/** The guard flags of a command (each command declares those that apply to it). */
export interface GuardFlags {
  /** `--max-memory`: budget in bytes (Infinity = unlimited). */
  maxMemory?: number;
  /** `--strict`: non-finite weights are an error. */
  strict?: boolean;
  /** `--allow-long`: run past max_position_embeddings. */
  allowLong?: boolean;
}

let active: GuardFlags = {};

/** Records the guard flags of the command about to run (main.ts). */
export function setGuardFlags(flags: GuardFlags): void {
  active = { ...flags };
}

/** The guard flags of the running command. */
export function guardFlags(): GuardFlags {
  return active;
}

/** The default budget: 75% of the machine's memory. */
export function defaultBudget(): number {
  return Math.floor(0.75 * totalmem());
}

/** The budget of the running command: `--max-memory`, or 75% of the machine's memory. */
export function memoryBudget(): number {
  return active.maxMemory ?? defaultBudget();
}

/** How a user raises the budget (the end of every refusal). */
export const MEMORY_OVERRIDE = '--max-memory SIZE overrides';

const UNITS: Readonly<Record<string, number>> = {
  '': 1, b: 1, k: 1e3, kb: 1e3, m: 1e6, mb: 1e6, g: 1e9, gb: 1e9, t: 1e12, tb: 1e12,
  kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30, tib: 2 ** 40,
};

/** Parses `--max-memory`: bytes, or a number with a unit (k, M, G, T: powers of 1000; KiB, MiB, GiB, TiB), or `unlimited`. */
export function parseMemorySize(v: string): number {
  const s = v.trim().toLowerCase();
  if (s === 'unlimited' || s === 'none') return Infinity;
  const m = /^(\d+(?:\.\d+)?(?:e\d+)?)\s*([a-z]*)$/.exec(s);
  const unit = m ? UNITS[m[2]!] : undefined;
  const bytes = m && unit !== undefined ? Number(m[1]) * unit : NaN;
  if (!(bytes > 0) || !Number.isFinite(bytes)) throw new CliUsageError(`--max-memory must be a size such as 8G, 512M, 1.5T or 'unlimited', got '${v}'`);
  return Math.floor(bytes);
}

/** Adds the guard options that apply to a command. */
export function addGuardOptions(cmd: Command, which: { weights?: boolean; positions?: boolean } = {}): Command {
  cmd.option('--max-memory <size>', `refuse to start when the estimated memory exceeds this: 8G, 512M, 1.5T (G = 10⁹ bytes) or 'unlimited' (default 75% of RAM, ${formatBytes(defaultBudget())})`, parseMemorySize);
  if (which.weights) cmd.option('--strict', 'a NaN or Inf in the loaded weights is an error (exit 2) instead of a warning');
  if (which.positions) cmd.option('--allow-long', 'run past max_position_embeddings (default: an error naming the length and the limit)');
  return cmd;
}

/** Largest JSON input (ids, tokens, tokenizer.json) read whole: V8 strings stop at 512 MiB, parsing takes ~16× the text. */
export function jsonInputLimit(): number {
  return Math.min(256 * 2 ** 20, Math.floor(memoryBudget() / 16));
}

/** Largest config.json (a real one is ~2 kB). */
export const CONFIG_FILE_LIMIT = 16 * 2 ** 20;

/**
 * Checks that `path` is a readable regular file of at most `maxBytes`, before anything reads it; returns its size.
 * `what` names the kind of file in the size error.
 */
export function checkInputFile(path: string, maxBytes: number, what: string): number {
  let size: number;
  try {
    const st = statSync(path);
    if (st.isDirectory()) throw new InputError(`${path}: is a directory, expected ${what}`);
    size = st.size;
  } catch (e) {
    if (e instanceof InputError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new InputError(code === 'ENOENT' ? `${path}: no such file` : `${path}: cannot read (${code ?? (e as Error).message})`);
  }
  if (size > maxBytes) throw new InputError(`${path}: ${formatBytes(size)} is larger than the ${formatBytes(maxBytes)} accepted for ${what}`);
  return size;
}

/** Where a command's model comes from: a directory or a preset (exactly one), in a compute dtype. */
export interface ModelSource {
  model?: string;
  preset?: string;
  dtype: DType;
  /** Seed of a preset's random weights. */
  seed?: number;
}

/** The config of a model source, read without touching the weights (config.json is size-checked first). */
export function sourceConfig(src: ModelSource): { config: ModelConfig; label: string } {
  if ((src.model === undefined) === (src.preset === undefined)) throw new CliUsageError('give exactly one of --model DIR or --preset NAME');
  if (src.preset !== undefined) return { config: getPreset(src.preset), label: src.preset };
  const path = join(src.model!, 'config.json');
  let isDir = true;
  try {
    isDir = statSync(src.model!).isDirectory();
  } catch {
    // a missing directory is reported as its missing config.json below
  }
  if (!isDir) throw new InputError(`${src.model!}: is a file; --model takes a model directory (config.json + *.safetensors)`);
  checkInputFile(path, CONFIG_FILE_LIMIT, 'a config.json');
  return { config: readConfigFile(path).config, label: src.model! };
}

/** What a command will do with its model, for the checks before loading. */
export interface ModelPlan {
  /** The largest number of positions one pass covers (checked against max_position_embeddings), and whose. */
  positions?: { count: number; of: string };
  /** Token ids to check against the vocabulary before loading, and whose (so no error follows the load's warnings). */
  ids?: { rows: readonly (readonly number[])[]; of: string };
  /** The work to estimate (weights and checkpoint file bytes are added). */
  work: Workload;
  /** Bytes of input data the command holds besides the model (token arrays, file buffers). */
  dataBytes?: number;
}

/**
 * Opens the model of a command: reads its config, checks the positions and the memory estimate of the plan against
 * the budget (ResourceError naming the estimate and the limit), then loads the weights (scanning them for NaN/Inf:
 * a warning, or with `--strict` an error) or draws a preset's. Returns the model and the warnings to print.
 */
export function openModel(src: ModelSource, plan: (config: ModelConfig) => ModelPlan): { model: DeepSeekV3; label: string; warnings: string[] } {
  const { config, label } = sourceConfig(src);
  const p = plan(config);
  const flags = guardFlags();
  if (p.ids !== undefined) {
    try {
      const { ids, B, T } = flattenTokenBatch(p.ids.rows);
      validateTokenIds(ids, B, T, config.vocabSize);
    } catch (e) {
      throw e instanceof InputError ? new InputError(`${p.ids.of}: ${e.message}`) : e;
    }
  }
  if (p.positions !== undefined) checkPositions(config, p.positions.count, flags.allowLong === true, p.positions.of, '--allow-long runs past it');
  const budget = memoryBudget();
  const files = src.model !== undefined ? weightFileBytes(src.model) : 0;
  checkMemory(estimateMemory(config, src.dtype, p.work, files + (p.dataBytes ?? 0)), budget, label, MEMORY_OVERRIDE);
  const limits = { maxBytes: budget, allowLongContext: flags.allowLong === true };
  if (src.preset !== undefined) {
    const weights = initWeights(config, { seed: src.seed ?? 0, dtype: src.dtype, maxBytes: budget });
    residentWeights(weights); // f32 weights into the wasm backend's memory when it is shared: no copies per call
    return { model: new DeepSeekV3(config, weights, limits), label, warnings: [] };
  }
  const loaded = loadModel(src.model!, { dtype: src.dtype, nonFinite: flags.strict === true ? 'error' : 'warn', maxBytes: budget });
  residentWeights(loaded.weights);
  return { model: new DeepSeekV3(loaded.config, loaded.weights, { ...limits, fp8: loaded.fp8 }), label, warnings: loaded.warnings };
}

/** Prints warnings as `dsv3 <command>: warning: …`, one line each. */
export function printWarnings(command: string, warnings: readonly string[]): void {
  for (const w of warnings) process.stderr.write(`dsv3 ${command}: warning: ${w.replace(/\s*\n\s*/g, ' ')}\n`);
}
