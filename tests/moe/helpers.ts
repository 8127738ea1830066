/** Test helpers for the MoE area: random configs and weights, and a central finite-difference checker. */
import type { ModelConfig } from '../../src/model/config.js';
import { deepseekV3 } from '../../src/model/presets.js';
import type { GateWeights } from '../../src/model/gate.js';
import type { MLPWeights } from '../../src/model/mlp.js';
import type { MoEWeights } from '../../src/model/moe.js';
import { Random } from '../../src/random.js';
import { Tensor, type DType, type FloatArray } from '../../src/tensor.js';
import { centralDifference } from '../helpers/finite_difference.js';
import { randomTensor } from '../helpers/random.js';

/** The MoE shape the property tests draw: G groups of `groupSize` routed experts, and the layer's sizes. */
export interface GroupedMoEShape {
  G: number;
  groupSize: number;
  scoring: 'sigmoid' | 'softmax';
  bias: boolean;
  shared: number;
  d: number;
  I: number;
  norm?: boolean;
}

/** moeConfig of a drawn shape: keep max(1, G − 1) groups, top-min(maxK, experts in the kept groups), scaling R. */
export function groupedMoEConfig(p: GroupedMoEShape, maxK: number, R: number): ModelConfig {
  const topkGroup = Math.max(1, p.G - 1);
  return moeConfig({
    d: p.d,
    E: p.G * p.groupSize,
    K: Math.min(maxK, topkGroup * p.groupSize),
    G: p.G,
    topkGroup,
    I: p.I,
    shared: p.shared,
    scoring: p.scoring,
    bias: p.bias,
    R,
    norm: p.norm,
  });
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
    ...deepseekV3,
    vocabSize: 16,
    hiddenSize: p.d,
    numHiddenLayers: 1,
    firstKDenseReplace: 0,
    intermediateSize: 2 * p.d,
    numAttentionHeads: 1,
    qLoraRank: 0,
    kvLoraRank: 4,
    qkNopeHeadDim: 4,
    qkRopeHeadDim: 4,
    vHeadDim: 4,
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
  };
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
 * worst |fd − analytic| / max(|analytic| over the sample, 1e-8).
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
    const fd = centralDifference(f, param, i, h);
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
