/**
 * Test helpers for the MoE area: golden-case loading (through the library's loaders), random
 * configs and weights, and a central finite-difference checker.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseSafetensors, tensorToFloat64, tensorToInt32, type SafetensorsTensor } from '../../src/io/safetensors.js';
import { configFromHF, type ModelConfig } from '../../src/model/config.js';
import type { GateWeights } from '../../src/model/gate.js';
import type { MLPWeights } from '../../src/model/mlp.js';
import type { MoEWeights } from '../../src/model/moe.js';
import { loadWeights } from '../../src/model/weights.js';
import { Random } from '../../src/random.js';
import { allocate, type DType, type FloatArray, Tensor } from '../../src/tensor.js';

const GOLDEN_DIR = fileURLToPath(new URL('../fixtures/golden/', import.meta.url));

/** One golden case as this area uses it. */
export interface GoldenCaseLocal {
  config: ModelConfig;
  meta: { moe_layers: number[]; batch: number; seq_len: number };
  /** Weights in `dtype` (FP8 dequantised with weight_scale_inv, BF16 widened) by the io loader. */
  weights: Map<string, Tensor>;
  /** The golden tensors, decoded to f64 (floats) or int32 (I64). */
  expected: { float(name: string): Float64Array; int(name: string): Int32Array };
}

function readST(path: string): Map<string, SafetensorsTensor> {
  const buf = readFileSync(path);
  return parseSafetensors(new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength), path).tensors;
}

/** Loads tests/fixtures/golden/<name> through the library's config, safetensors and weight loaders. */
export function loadGoldenCaseLocal(name: string, dtype: DType): GoldenCaseLocal {
  const dir = `${GOLDEN_DIR}${name}/`;
  const config = configFromHF(JSON.parse(readFileSync(`${dir}config.json`, 'utf8')));
  const meta = JSON.parse(readFileSync(`${dir}meta.json`, 'utf8')) as GoldenCaseLocal['meta'];
  const { weights } = loadWeights(readST(`${dir}model.safetensors`), config, { dtype, source: dir });
  const exp = readST(`${dir}expected.safetensors`);
  const get = (n: string): SafetensorsTensor => {
    const t = exp.get(n);
    if (t === undefined) throw new Error(`golden ${name}: no tensor '${n}'`);
    return t;
  };
  return {
    config,
    meta,
    weights,
    expected: { float: (n) => tensorToFloat64(get(n), n), int: (n) => tensorToInt32(get(n), n) },
  };
}

/** Copies numbers into a fresh array of the dtype. */
export function toDtype(x: ArrayLike<number>, dtype: DType): FloatArray {
  const a = allocate(dtype, x.length);
  a.set(x);
  return a;
}

/** A small random MoE config (fields outside the MoE are filler). */
export function moeConfig(p: {
  d: number;
  E: number;
  K: number;
  G: number;
  topkGroup: number;
  I: number;
  shared: number;
  scoring: 'sigmoid' | 'softmax';
  bias: boolean;
  R: number;
  norm?: boolean;
}): ModelConfig {
  return {
    vocabSize: 16,
    hiddenSize: p.d,
    numHiddenLayers: 1,
    firstKDenseReplace: 0,
    intermediateSize: 2 * p.d,
    rmsNormEps: 1e-6,
    numAttentionHeads: 1,
    qLoraRank: 0,
    kvLoraRank: 4,
    qkNopeHeadDim: 4,
    qkRopeHeadDim: 4,
    vHeadDim: 4,
    ropeTheta: 10000,
    ropeScaling: null,
    maxPositionEmbeddings: 64,
    nRoutedExperts: p.E,
    nSharedExperts: p.shared,
    numExpertsPerTok: p.K,
    moeIntermediateSize: p.I,
    nGroup: p.G,
    topkGroup: p.topkGroup,
    scoringFunc: p.scoring,
    normTopkProb: p.norm ?? p.scoring === 'sigmoid',
    routedScalingFactor: p.R,
    topkMethod: p.bias ? 'noaux_tc' : 'greedy',
    numNextnPredictLayers: 0,
    bosTokenId: 0,
    eosTokenId: 1,
  };
}

export function randomTensor(rng: Random, shape: number[], dtype: DType, std: number, mean = 0): Tensor {
  const t = Tensor.zeros(shape, dtype);
  rng.fillNormal(t.data, std, mean);
  return t;
}

export function randomMLP(rng: Random, d: number, I: number, dtype: DType, std = 0.3): MLPWeights {
  return {
    gate_proj: randomTensor(rng, [I, d], dtype, std),
    up_proj: randomTensor(rng, [I, d], dtype, std),
    down_proj: randomTensor(rng, [d, I], dtype, std),
  };
}

export function zerosLikeMLP(w: MLPWeights): MLPWeights {
  return {
    gate_proj: Tensor.zeros(w.gate_proj.shape, w.gate_proj.dtype),
    up_proj: Tensor.zeros(w.up_proj.shape, w.up_proj.dtype),
    down_proj: Tensor.zeros(w.down_proj.shape, w.down_proj.dtype),
  };
}

export function randomGate(rng: Random, config: ModelConfig, dtype: DType, std = 0.5, biasRange = 0.1): GateWeights {
  const g: GateWeights = { weight: randomTensor(rng, [config.nRoutedExperts, config.hiddenSize], dtype, std) };
  if (config.topkMethod === 'noaux_tc') {
    const b = Tensor.zeros([config.nRoutedExperts], dtype);
    for (let e = 0; e < b.size; e++) b.data[e] = (2 * rng.uniform() - 1) * biasRange;
    g.e_score_correction_bias = b;
  }
  return g;
}

export function randomMoE(rng: Random, config: ModelConfig, dtype: DType): MoEWeights {
  const { hiddenSize: d, moeIntermediateSize: I } = config;
  return {
    gate: randomGate(rng, config, dtype),
    experts: Array.from({ length: config.nRoutedExperts }, () => randomMLP(rng, d, I, dtype)),
    shared_experts: config.nSharedExperts > 0 ? randomMLP(rng, d, I * config.nSharedExperts, dtype) : null,
  };
}

export function zerosLikeMoE(w: MoEWeights): MoEWeights {
  const gate: GateWeights = { weight: Tensor.zeros(w.gate.weight.shape, w.gate.weight.dtype) };
  return {
    gate,
    experts: w.experts.map(zerosLikeMLP),
    shared_experts: w.shared_experts === null ? null : zerosLikeMLP(w.shared_experts),
  };
}

/**
 * Central finite differences of a scalar f at `param[i]` for the sampled indices; returns the
 * worst |fd − analytic| / (max(|analytic|) over the sample + floor).
 */
export function fdCheck(
  f: () => number,
  param: FloatArray,
  analytic: ArrayLike<number>,
  indices: number[],
  h = 1e-5,
): { worst: number; detail: string } {
  let worst = 0;
  let detail = '';
  let scale = 1e-8;
  for (const i of indices) scale = Math.max(scale, Math.abs(analytic[i]!));
  for (const i of indices) {
    const old = param[i]!;
    param[i] = old + h;
    const fp = f();
    param[i] = old - h;
    const fm = f();
    param[i] = old;
    const fd = (fp - fm) / (2 * h);
    const err = Math.abs(fd - analytic[i]!) / scale;
    if (err > worst) {
      worst = err;
      detail = `index ${i}: fd ${fd}, analytic ${analytic[i]}`;
    }
  }
  return { worst, detail };
}

/** Up to `count` distinct indices in [0, n) from the rng (all of them when n ≤ count). */
export function sampleIndices(rng: Random, n: number, count: number): number[] {
  if (n <= count) return Array.from({ length: n }, (_, i) => i);
  const s = new Set<number>();
  while (s.size < count) s.add(rng.int(n));
  return [...s];
}

/** Σ_i c[i]·y[i]: a random linear functional, to turn vector outputs into scalars for FD. */
export function dot(c: ArrayLike<number>, y: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < y.length; i++) s += c[i]! * y[i]!;
  return s;
}
