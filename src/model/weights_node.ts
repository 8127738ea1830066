/**
 * Node adapter for model directories: `config.json` + `model.safetensors` or a sharded checkpoint
 * (`model.safetensors.index.json` + shards), as Hugging Face lays them out.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DType } from '../tensor.js';
import { FormatError, InputError } from '../errors.js';
import { readSafetensorsFile, readShardedSafetensors, SAFETENSORS_INDEX_FILE, writeSafetensorsFile } from '../io/safetensors_node.js';
import type { SafetensorsTensor } from '../io/safetensors.js';
import { configFromHFWithWarnings, configToHF, validateConfig, type ModelConfig } from './config.js';
import { checkStorageOptions, loadWeights, saveWeights, type Fp8Weights, type ModelWeights, type SaveWeightsOptions } from './weights.js';
import { checkDType, checkMemory, estimateMemory, resolveMaxBytes, type NonFinitePolicy } from './guards.js';

/** Reads and parses `config.json` of a model directory (FormatError for bad JSON, ConfigError for bad values). */
export function readConfigFile(path: string): { config: ModelConfig; warnings: string[] } {
  const text = readFile(path);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new FormatError(path, `not valid JSON (${(e as Error).message})`);
  }
  return configFromHFWithWarnings(json);
}

/** Reads a text file; a missing or unreadable file is an InputError that names it. */
function readFile(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new InputError(code === 'ENOENT' ? `${path}: no such file` : `${path}: cannot read (${(e as Error).message})`);
  }
}

/** Explicit files of a model: its config.json and its safetensors files (one, or every shard). */
export interface ModelFiles {
  config: string;
  weights: string[];
}

/** Options of loadModel. */
export interface LoadModelOptions {
  /** Compute dtype of the weights: 'float32' (default) or 'float64'. */
  dtype?: DType;
  /** The load-time scan for NaN/±Inf: one entry in `warnings` (default), a WeightsError, or no scan. */
  nonFinite?: NonFinitePolicy;
  /** Memory budget in bytes (default: 75% of the machine's memory); checked from config.json and file sizes before reading weights. */
  maxBytes?: number;
}

/** Bytes of the safetensors files a model source reads whole (every `*.safetensors` of a directory). */
export function weightFileBytes(source: string | ModelFiles): number {
  const files = typeof source === 'string' ? (existsSync(source) ? readdirSync(source).filter((f) => f.endsWith('.safetensors')).map((f) => join(source, f)) : []) : source.weights;
  return files.reduce((s, f) => s + (existsSync(f) ? statSync(f).size : 0), 0);
}

/**
 * Loads a model in `dtype` from a directory (`config.json` + `model.safetensors` or a sharded
 * index) or from explicit files: config (validated) and weights (FP8 dequantised, BF16/F16
 * widened). Warnings come from defaulted config keys and differing MTP copies.
 */
export function loadModel(source: string | ModelFiles, opts: LoadModelOptions = {}): { config: ModelConfig; weights: ModelWeights; warnings: string[]; fp8: Fp8Weights } {
  const configPath = typeof source === 'string' ? join(source, 'config.json') : source.config;
  const { config, warnings } = readConfigFile(configPath);
  const dtype = checkDType(opts.dtype === undefined ? 'float32' : opts.dtype, 'loadModel');
  const name = typeof source === 'string' ? source : source.weights.join(', ');
  checkMemory(estimateMemory(config, dtype, { kind: 'weights' }, weightFileBytes(source)), resolveMaxBytes(opts.maxBytes, 'loadModel'), name);
  const files = typeof source === 'string' ? readShardedSafetensors(source) : source.weights.map(readSafetensorsFile);
  const { weights, warnings: w2, fp8 } = loadWeights(files, config, { dtype, source: name, ...(opts.nonFinite !== undefined ? { nonFinite: opts.nonFinite } : {}) });
  return { config, weights, warnings: [...warnings, ...w2], fp8 };
}

/** Options of saveModel. */
export interface SaveModelOptions extends SaveWeightsOptions {
  /** Split into shards of at most this many bytes of tensor data (plus an index); default: one file. */
  maxShardBytes?: number;
}

/**
 * Writes `config.json` and the weights (one `model.safetensors`, or shards + `model.safetensors.index.json`).
 * Storage dtype default: F64 for float64 weights, else F32. Everything is validated (options, config, weights)
 * before the first file is written.
 */
export function saveModel(dir: string, config: ModelConfig, weights: ModelWeights, options: Partial<SaveModelOptions> = {}): void {
  const opts: SaveModelOptions = { ...options, dtype: options.dtype ?? (weights.get('model.embed_tokens.weight')?.dtype === 'float64' ? 'F64' : 'F32') };
  checkStorageOptions(opts, 'saveModel');
  validateConfig(config);
  if (opts.maxShardBytes !== undefined && !(opts.maxShardBytes > 0)) throw new TypeError(`saveModel: maxShardBytes must be a positive number of bytes, got ${String(opts.maxShardBytes)}`);
  const torchDtype = { F32: 'float32', F64: 'float64', BF16: 'bfloat16', F16: 'float16' }[opts.dtype];
  const hf = configToHF(config, torchDtype);
  if (opts.fp8) hf.quantization_config = { activation_scheme: 'dynamic', fmt: 'e4m3', quant_method: 'fp8', weight_block_size: [128, 128] };
  const tensors = saveWeights(config, weights, opts); // validates the weights against the config
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), JSON.stringify(hf, null, 2) + '\n');
  if (opts.maxShardBytes === undefined) {
    writeSafetensorsFile(join(dir, 'model.safetensors'), tensors, { format: 'pt' });
    return;
  }
  const shards: Map<string, SafetensorsTensor>[] = [];
  let size = Infinity;
  for (const [name, t] of tensors) {
    if (size + t.bytes.length > opts.maxShardBytes) {
      shards.push(new Map());
      size = 0;
    }
    shards.at(-1)!.set(name, t);
    size += t.bytes.length;
  }
  const weightMap: Record<string, string> = {};
  let total = 0;
  shards.forEach((shard, i) => {
    const file = `model-${String(i + 1).padStart(5, '0')}-of-${String(shards.length).padStart(5, '0')}.safetensors`;
    writeSafetensorsFile(join(dir, file), shard, { format: 'pt' });
    for (const [name, t] of shard) {
      weightMap[name] = file;
      total += t.bytes.length;
    }
  });
  writeFileSync(join(dir, SAFETENSORS_INDEX_FILE), JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2) + '\n');
}
