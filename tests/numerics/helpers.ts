/**
 * The GPU fixture of tests/fixtures/gpu/fp8model (see its README): the tiny FP8 checkpoint, the official model's
 * outputs on an H200 (expected.safetensors) and the dumps of its bf16 / fp8 / fp8-ue8m0 runs (trace_official_*).
 * Plus the distance measures the whole-model checks use.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { tensorToFloat32, tensorToInt32, type SafetensorsTensor } from '../../src/io/safetensors.js';
import { readSafetensorsFile } from '../../src/io/safetensors_node.js';
import { configFromHF, type ModelConfig } from '../../src/model/config.js';
import { DeepSeekV3 } from '../../src/model/model.js';
import type { NumericsProfile } from '../../src/model/numerics.js';
import { loadWeights } from '../../src/model/weights.js';
import type { DType } from '../../src/tensor.js';

export const FP8MODEL_DIR = fileURLToPath(new URL('../fixtures/gpu/fp8model/', import.meta.url));

/** The three official GPU runs: the key prefix in expected.safetensors, the trace file and the matching profile. */
export const GPU_RUNS = [
  { gemm: 'bf16', trace: 'trace_official_bf16.safetensors', profile: 'official-bf16' },
  { gemm: 'fp8', trace: 'trace_official_fp8.safetensors', profile: 'official-fp8' },
  { gemm: 'fp8ue8m0', trace: 'trace_official_fp8ue8m0.safetensors', profile: 'official-fp8-ue8m0' },
] as const satisfies readonly { gemm: string; trace: string; profile: NumericsProfile }[];

export interface Fp8Fixture {
  config: ModelConfig;
  model: DeepSeekV3;
  expected: Map<string, SafetensorsTensor>;
  ids: Int32Array;
  B: number;
  T: number;
}

const cache = new Map<DType, Fp8Fixture>();

/** The fixture model in `dtype` (FP8 codes kept), its expected outputs and input ids. */
export function loadFp8Fixture(dtype: DType = 'float32'): Fp8Fixture {
  const hit = cache.get(dtype);
  if (hit !== undefined) return hit;
  const config = configFromHF(JSON.parse(readFileSync(`${FP8MODEL_DIR}config.json`, 'utf8')));
  const { weights, fp8 } = loadWeights(readSafetensorsFile(`${FP8MODEL_DIR}model.safetensors`).tensors, config, { dtype });
  const expected = readSafetensorsFile(`${FP8MODEL_DIR}expected.safetensors`).tensors;
  const idsT = expected.get('input_ids')!;
  const fx: Fp8Fixture = { config, model: new DeepSeekV3(config, weights, { fp8 }), expected, ids: tensorToInt32(idsT), B: idsT.shape[0]!, T: idsT.shape[1]! };
  cache.set(dtype, fx);
  return fx;
}

/** A trace dump of an official GPU run: name → f32 (or i32) data and shape. */
export function loadGpuTrace(file: string): Map<string, { shape: number[]; data: Float32Array | Int32Array }> {
  const out = new Map<string, { shape: number[]; data: Float32Array | Int32Array }>();
  for (const [name, t] of readSafetensorsFile(`${FP8MODEL_DIR}${file}`).tensors) {
    out.set(name, { shape: [...t.shape], data: t.dtype === 'I32' || t.dtype === 'I64' ? tensorToInt32(t) : tensorToFloat32(t) });
  }
  return out;
}

/** Median over rows (of width `cols`) of the per-row RMS of a − b. */
export function medianRowRms(a: ArrayLike<number>, b: ArrayLike<number>, cols: number): number {
  const rows = a.length / cols;
  const r: number[] = [];
  for (let i = 0; i < rows; i++) {
    let s = 0;
    for (let j = 0; j < cols; j++) s += (a[i * cols + j]! - b[i * cols + j]!) ** 2;
    r.push(Math.sqrt(s / cols));
  }
  r.sort((x, y) => x - y);
  return rows % 2 === 1 ? r[(rows - 1) / 2]! : (r[rows / 2 - 1]! + r[rows / 2]!) / 2;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
/** Position of a bf16 value on the ordered line of bf16 values (monotone; −0 and +0 share 0). */
function bf16Ordinal(x: number): number {
  f32[0] = x;
  const u = u32[0]! >>> 16;
  return u & 0x8000 ? -(u & 0x7fff) : u;
}

/** How many bf16 steps apart two bf16 values are (0 = identical, 1 = neighbours). */
export function bf16Steps(a: number, b: number): number {
  return Math.abs(bf16Ordinal(a) - bf16Ordinal(b));
}

/** Identical fraction and largest distance in bf16 steps of `got` from `ref` (both bf16 values). */
export function bf16Agreement(got: ArrayLike<number>, ref: ArrayLike<number>): { identical: number; maxSteps: number } {
  let same = 0;
  let maxSteps = 0;
  for (let i = 0; i < ref.length; i++) {
    const s = bf16Steps(got[i]!, ref[i]!);
    if (s === 0) same++;
    maxSteps = Math.max(maxSteps, s);
  }
  return { identical: same / ref.length, maxSteps };
}
