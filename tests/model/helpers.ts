/** Test helpers for the model area: micro configs, random weights and token ids. */
import type { ModelConfig } from '../../src/model/config.js';
import { deepseekV3 } from '../../src/model/presets.js';
import { Random } from '../../src/random.js';
import { Tensor, type DType } from '../../src/tensor.js';

/**
 * A micro V3-style config for gradient checks and decoding tests (override any field): V3's router
 * (sigmoid, noaux_tc, norm_topk_prob, scaling 2.5), one shared expert and one MTP module, at toy sizes, no YaRN.
 */
export function microConfig(overrides: Partial<ModelConfig> = {}): ModelConfig {
  return {
    ...deepseekV3,
    vocabSize: 32,
    hiddenSize: 16,
    numHiddenLayers: 2,
    firstKDenseReplace: 1,
    intermediateSize: 24,
    numAttentionHeads: 2,
    qLoraRank: 12,
    kvLoraRank: 8,
    qkNopeHeadDim: 4,
    qkRopeHeadDim: 4,
    vHeadDim: 6,
    ropeScaling: null,
    maxPositionEmbeddings: 256,
    nRoutedExperts: 4,
    numExpertsPerTok: 2,
    moeIntermediateSize: 8,
    nGroup: 2,
    topkGroup: 1,
    ...overrides,
  };
}

/** [name, shape, kind] of every tensor of a block at layer index i. */
function blockSpecs(c: ModelConfig, i: number): [string, number[], 'mat' | 'norm' | 'bias'][] {
  const p = `model.layers.${i}`;
  const d = c.hiddenSize;
  const H = c.numAttentionHeads;
  const qk = c.qkNopeHeadDim + c.qkRopeHeadDim;
  const out: [string, number[], 'mat' | 'norm' | 'bias'][] = [
    [`${p}.input_layernorm.weight`, [d], 'norm'],
    [`${p}.post_attention_layernorm.weight`, [d], 'norm'],
  ];
  if (c.qLoraRank > 0) {
    out.push([`${p}.self_attn.q_a_proj.weight`, [c.qLoraRank, d], 'mat']);
    out.push([`${p}.self_attn.q_a_layernorm.weight`, [c.qLoraRank], 'norm']);
    out.push([`${p}.self_attn.q_b_proj.weight`, [H * qk, c.qLoraRank], 'mat']);
  } else {
    out.push([`${p}.self_attn.q_proj.weight`, [H * qk, d], 'mat']);
  }
  out.push([`${p}.self_attn.kv_a_proj_with_mqa.weight`, [c.kvLoraRank + c.qkRopeHeadDim, d], 'mat']);
  out.push([`${p}.self_attn.kv_a_layernorm.weight`, [c.kvLoraRank], 'norm']);
  out.push([`${p}.self_attn.kv_b_proj.weight`, [H * (c.qkNopeHeadDim + c.vHeadDim), c.kvLoraRank], 'mat']);
  out.push([`${p}.self_attn.o_proj.weight`, [d, H * c.vHeadDim], 'mat']);
  const mlp = (q: string, I: number): void => {
    out.push([`${q}.gate_proj.weight`, [I, d], 'mat']);
    out.push([`${q}.up_proj.weight`, [I, d], 'mat']);
    out.push([`${q}.down_proj.weight`, [d, I], 'mat']);
  };
  if (i < c.firstKDenseReplace) {
    mlp(`${p}.mlp`, c.intermediateSize);
  } else {
    out.push([`${p}.mlp.gate.weight`, [c.nRoutedExperts, d], 'mat']);
    if (c.topkMethod === 'noaux_tc') out.push([`${p}.mlp.gate.e_score_correction_bias`, [c.nRoutedExperts], 'bias']);
    for (let e = 0; e < c.nRoutedExperts; e++) mlp(`${p}.mlp.experts.${e}`, c.moeIntermediateSize);
    if (c.nSharedExperts > 0) mlp(`${p}.mlp.shared_experts`, c.nSharedExperts * c.moeIntermediateSize);
  }
  return out;
}

/**
 * Random weights for every tensor of `c` (main model and MTP layers), like the golden generator: matrices
 * N(0, 1/fan_in), embedding N(0, 1), norms 1 + 0.1·N(0, 1), router bias U(−0.1, 0.1).
 */
export function randomWeights(c: ModelConfig, dtype: DType, seed: number): Map<string, Tensor> {
  const d = c.hiddenSize;
  const specs: [string, number[], 'mat' | 'norm' | 'bias' | 'embed'][] = [['model.embed_tokens.weight', [c.vocabSize, d], 'embed']];
  for (let i = 0; i < c.numHiddenLayers; i++) specs.push(...blockSpecs(c, i));
  specs.push(['model.norm.weight', [d], 'norm'], ['lm_head.weight', [c.vocabSize, d], 'mat']);
  for (let k = 0; k < c.numNextnPredictLayers; k++) {
    const i = c.numHiddenLayers + k;
    const p = `model.layers.${i}`;
    specs.push([`${p}.enorm.weight`, [d], 'norm'], [`${p}.hnorm.weight`, [d], 'norm'], [`${p}.eh_proj.weight`, [d, 2 * d], 'mat']);
    specs.push(...blockSpecs(c, i));
    specs.push([`${p}.shared_head.norm.weight`, [d], 'norm']);
  }
  const rng = new Random(seed);
  const w = new Map<string, Tensor>();
  for (const [name, shape, kind] of specs) {
    const t = Tensor.zeros(shape, dtype);
    for (let j = 0; j < t.size; j++) {
      if (kind === 'mat') t.data[j] = rng.normal() / Math.sqrt(shape[1]!);
      else if (kind === 'embed') t.data[j] = rng.normal();
      else if (kind === 'norm') t.data[j] = 1 + 0.1 * rng.normal();
      else t.data[j] = 0.2 * rng.uniform() - 0.1;
    }
    w.set(name, t);
  }
  return w;
}

/** Random token rows [B, T] in [0, vocab). */
export function randomIds(B: number, T: number, vocab: number, seed: number): number[][] {
  const rng = new Random(seed);
  return Array.from({ length: B }, () => Array.from({ length: T }, () => rng.int(vocab)));
}
