/**
 * Test helpers for the MoE area: a small local safetensors reader (F32/F64/I64 only, until the
 * io helper's loader is in place), the HF config → ModelConfig mapping for the golden cases,
 * random configs/weights, and a central finite-difference checker.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { ModelConfig } from '../../src/model/config.js';
import type { GateWeights } from '../../src/model/gate.js';
import type { MLPWeights } from '../../src/model/mlp.js';
import type { MoEWeights } from '../../src/model/moe.js';
import { Random } from '../../src/random.js';
import { allocate, type DType, type FloatArray, Tensor } from '../../src/tensor.js';

export const GOLDEN_DIR = fileURLToPath(new URL('../fixtures/golden/', import.meta.url));

/** A raw tensor read from a safetensors file: shape and values (f32/f64 as typed arrays, I64 as numbers). */
export interface RawTensor {
  dtype: string;
  shape: number[];
  data: Float32Array | Float64Array | Int32Array;
}

/** Reads a safetensors file holding only F32, F64 and I64 tensors (I64 narrowed to Int32). */
export function readSafetensorsLocal(path: string): Map<string, RawTensor> {
  const buf = readFileSync(path);
  const bytes = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = Number(view.getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLen))) as Record<
    string,
    { dtype: string; shape: number[]; data_offsets: [number, number] }
  >;
  const base = 8 + headerLen;
  const out = new Map<string, RawTensor>();
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const [b, e] = info.data_offsets;
    const raw = bytes.slice(base + b, base + e); // copy: aligned
    let data: Float32Array | Float64Array | Int32Array;
    if (info.dtype === 'F32') data = new Float32Array(raw.buffer);
    else if (info.dtype === 'F64') data = new Float64Array(raw.buffer);
    else if (info.dtype === 'I64') data = Int32Array.from(new BigInt64Array(raw.buffer), (v) => Number(v));
    else continue; // BF16 / F8 are the io helper's job
    out.set(name, { dtype: info.dtype, shape: info.shape, data });
  }
  return out;
}

/** The golden config.json mapped to a ModelConfig (the keys this area needs, plus the rest). */
export function configFromHFLocal(j: Record<string, unknown>): ModelConfig {
  const n = (k: string) => j[k] as number;
  return {
    vocabSize: n('vocab_size'),
    hiddenSize: n('hidden_size'),
    numHiddenLayers: n('num_hidden_layers'),
    firstKDenseReplace: n('first_k_dense_replace'),
    intermediateSize: n('intermediate_size'),
    rmsNormEps: n('rms_norm_eps'),
    numAttentionHeads: n('num_attention_heads'),
    qLoraRank: (j['q_lora_rank'] as number | null) ?? 0,
    kvLoraRank: n('kv_lora_rank'),
    qkNopeHeadDim: n('qk_nope_head_dim'),
    qkRopeHeadDim: n('qk_rope_head_dim'),
    vHeadDim: n('v_head_dim'),
    ropeTheta: n('rope_theta'),
    ropeScaling: null,
    maxPositionEmbeddings: n('max_position_embeddings'),
    nRoutedExperts: n('n_routed_experts'),
    nSharedExperts: n('n_shared_experts'),
    numExpertsPerTok: n('num_experts_per_tok'),
    moeIntermediateSize: n('moe_intermediate_size'),
    nGroup: n('n_group'),
    topkGroup: n('topk_group'),
    scoringFunc: j['scoring_func'] as 'sigmoid' | 'softmax',
    normTopkProb: j['norm_topk_prob'] as boolean,
    routedScalingFactor: n('routed_scaling_factor'),
    topkMethod: j['topk_method'] as 'noaux_tc' | 'greedy',
    numNextnPredictLayers: n('num_nextn_predict_layers'),
    bosTokenId: 0,
    eosTokenId: 1,
  };
}

/** One golden case as this area uses it. */
export interface GoldenCaseLocal {
  config: ModelConfig;
  meta: { moe_layers: number[]; batch: number; seq_len: number };
  /** Weights converted to `dtype`. */
  weights: Map<string, Tensor>;
  expected: Map<string, RawTensor>;
}

export function loadGoldenCaseLocal(name: string, dtype: DType): GoldenCaseLocal {
  const dir = `${GOLDEN_DIR}${name}/`;
  const config = configFromHFLocal(JSON.parse(readFileSync(`${dir}config.json`, 'utf8')) as Record<string, unknown>);
  const meta = JSON.parse(readFileSync(`${dir}meta.json`, 'utf8')) as GoldenCaseLocal['meta'];
  const weights = new Map<string, Tensor>();
  for (const [k, v] of readSafetensorsLocal(`${dir}model.safetensors`)) {
    if (v.data instanceof Int32Array) continue;
    weights.set(k, Tensor.from(v.shape, v.data, dtype));
  }
  return { config, meta, weights, expected: readSafetensorsLocal(`${dir}expected.safetensors`) };
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
