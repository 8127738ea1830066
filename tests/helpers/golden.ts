/**
 * Loads a golden case from tests/fixtures/golden/<case>/ (see its README): the config (parsed and
 * validated), the raw HF config.json, the weights in the requested precision (FP8 dequantised with
 * weight_scale_inv, BF16 widened, through the library's own loader), the expected tensors and meta.json.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { tensorToFloat64, tensorToInt32, type SafetensorsTensor } from '../../src/io/safetensors.js';
import { readSafetensorsFile } from '../../src/io/safetensors_node.js';
import { configFromHF, type ModelConfig } from '../../src/model/config.js';
import { loadWeights, type ModelWeights } from '../../src/model/weights.js';
import type { DType } from '../../src/tensor.js';

/** The five golden cases. */
export type GoldenCaseName = 'v3' | 'v2lite' | 'yarn' | 'bf16' | 'fp8';
export const GOLDEN_CASES: readonly GoldenCaseName[] = ['v3', 'v2lite', 'yarn', 'bf16', 'fp8'];

/** Absolute path of tests/fixtures/golden/ (with a trailing slash). */
export const GOLDEN_DIR = fileURLToPath(new URL('../fixtures/golden/', import.meta.url));

export interface GoldenCase {
  config: ModelConfig;
  hfConfig: any;
  weights: ModelWeights;
  expected: Map<string, SafetensorsTensor>;
  meta: any;
}

const cache = new Map<string, GoldenCase>();

/** Loads (and memoises per case and dtype) a golden case. Do not mutate the returned weights. */
export function loadGoldenCase(name: GoldenCaseName, dtype: DType = 'float32'): GoldenCase {
  const key = `${name}/${dtype}`;
  const hit = cache.get(key);
  if (hit !== undefined) return hit;
  const dir = `${GOLDEN_DIR}${name}/`;
  const hfConfig = JSON.parse(readFileSync(`${dir}config.json`, 'utf8'));
  const config = configFromHF(hfConfig);
  const { weights } = loadWeights(readSafetensorsFile(`${dir}model.safetensors`).tensors, config, { dtype, source: `${dir}model.safetensors` });
  const expected = readSafetensorsFile(`${dir}expected.safetensors`).tensors;
  const meta = JSON.parse(readFileSync(`${dir}meta.json`, 'utf8'));
  const c: GoldenCase = { config, hfConfig, weights, expected, meta };
  cache.set(key, c);
  return c;
}

function expectedTensor(expected: Map<string, SafetensorsTensor>, name: string): SafetensorsTensor {
  const t = expected.get(name);
  if (t === undefined) throw new Error(`golden tensor '${name}' missing`);
  return t;
}

/** An expected tensor decoded to f64 (throws naming it when the case has none). */
export function expectedFloat64(expected: Map<string, SafetensorsTensor>, name: string): Float64Array {
  return tensorToFloat64(expectedTensor(expected, name), name);
}

/** An expected integer tensor (I64 ids and indices) as int32 (throws naming it when the case has none). */
export function expectedInt32(expected: Map<string, SafetensorsTensor>, name: string): Int32Array {
  return tensorToInt32(expectedTensor(expected, name), name);
}
