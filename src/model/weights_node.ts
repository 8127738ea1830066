/**
 * Node adapter for model directories: `config.json` + `model.safetensors` or a sharded checkpoint
 * (`model.safetensors.index.json` + shards), as Hugging Face lays them out.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DType } from '../tensor.js';
import { FormatError, InputError } from '../errors.js';
import { readSafetensorsFile, readShardedSafetensors, SAFETENSORS_INDEX_FILE, writeSafetensorsFile } from '../io/safetensors_node.js';
import type { SafetensorsTensor } from '../io/safetensors.js';
import { configFromHFWithWarnings, configToHF, type ModelConfig } from './config.js';
import { loadWeights, saveWeights, type Fp8Weights, type ModelWeights, type SaveWeightsOptions } from './weights.js';

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

/**
 * Loads a model in `dtype` from a directory (`config.json` + `model.safetensors` or a sharded
 * index) or from explicit files: config (validated) and weights (FP8 dequantised, BF16/F16
 * widened). Warnings come from defaulted config keys and differing MTP copies.
 */
export function loadModel(source: string | ModelFiles, opts: { dtype: DType }): { config: ModelConfig; weights: ModelWeights; warnings: string[]; fp8: Fp8Weights } {
  const configPath = typeof source === 'string' ? join(source, 'config.json') : source.config;
  const { config, warnings } = readConfigFile(configPath);
  const files = typeof source === 'string' ? readShardedSafetensors(source) : source.weights.map(readSafetensorsFile);
  const name = typeof source === 'string' ? source : source.weights.join(', ');
  const { weights, warnings: w2, fp8 } = loadWeights(files, config, { dtype: opts.dtype, source: name });
  return { config, weights, warnings: [...warnings, ...w2], fp8 };
}

/** Options of saveModel. */
export interface SaveModelOptions extends SaveWeightsOptions {
  /** Split into shards of at most this many bytes of tensor data (plus an index); default: one file. */
  maxShardBytes?: number;
}

/** Writes `config.json` and the weights (one `model.safetensors`, or shards + `model.safetensors.index.json`). */
export function saveModel(dir: string, config: ModelConfig, weights: ModelWeights, opts: SaveModelOptions): void {
  mkdirSync(dir, { recursive: true });
  const torchDtype = { F32: 'float32', F64: 'float64', BF16: 'bfloat16', F16: 'float16' }[opts.dtype];
  const hf = configToHF(config, torchDtype);
  if (opts.fp8) hf.quantization_config = { activation_scheme: 'dynamic', fmt: 'e4m3', quant_method: 'fp8', weight_block_size: [128, 128] };
  writeFileSync(join(dir, 'config.json'), JSON.stringify(hf, null, 2) + '\n');
  const tensors = saveWeights(config, weights, opts);
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
