/**
 * Named model configurations: the full DeepSeek-V3 (SPEC §1.1) and three reduced ones for tests,
 * examples and benchmarks. Reduced sizes are arbitrary; they only have to satisfy SPEC §1.4.
 */
import type { ModelConfig } from './config.js';
import { validateConfig } from './config.js';
import { ConfigError } from '../errors.js';

/** DeepSeek-V3 671B as released (config.json of the HF checkpoint, SPEC §1.1), YaRN 4K → 160K on, one MTP module. */
export const deepseekV3: Readonly<ModelConfig> = Object.freeze({
  vocabSize: 129280,
  hiddenSize: 7168,
  numHiddenLayers: 61,
  firstKDenseReplace: 3,
  intermediateSize: 18432,
  rmsNormEps: 1e-6,
  // mla
  numAttentionHeads: 128,
  qLoraRank: 1536,
  kvLoraRank: 512,
  qkNopeHeadDim: 128,
  qkRopeHeadDim: 64,
  vHeadDim: 128,
  // rope / yarn
  ropeTheta: 10000,
  ropeScaling: Object.freeze({ factor: 40, originalMaxPositionEmbeddings: 4096, betaFast: 32, betaSlow: 1, mscale: 1, mscaleAllDim: 1 }),
  maxPositionEmbeddings: 163840, // 4096 · 40
  // moe
  nRoutedExperts: 256,
  nSharedExperts: 1,
  numExpertsPerTok: 8,
  moeIntermediateSize: 2048,
  nGroup: 8,
  topkGroup: 4,
  scoringFunc: 'sigmoid',
  normTopkProb: true,
  routedScalingFactor: 2.5,
  topkMethod: 'noaux_tc',
  // mtp
  numNextnPredictLayers: 1,
  // tokens
  bosTokenId: 0,
  eosTokenId: 1,
});

/**
 * Tiny V3 (SPEC §1.4's example): byte-level vocab 256, d 64, 3 layers (1 dense), 16 experts in 4
 * groups (keep 2), top-4, one MTP module (an MoE block). A forward takes milliseconds.
 */
export const tiny: Readonly<ModelConfig> = Object.freeze({
  ...deepseekV3,
  vocabSize: 256,
  hiddenSize: 64,
  numHiddenLayers: 3,
  firstKDenseReplace: 1,
  intermediateSize: 128,
  numAttentionHeads: 4,
  qLoraRank: 32,
  kvLoraRank: 16,
  qkNopeHeadDim: 16,
  qkRopeHeadDim: 8,
  vHeadDim: 16,
  ropeScaling: null,
  maxPositionEmbeddings: 512,
  nRoutedExperts: 16,
  numExpertsPerTok: 4,
  moeIntermediateSize: 32,
  nGroup: 4,
  topkGroup: 2,
});

/** Small V3: twice tiny's width, 4 layers (1 dense), 32 experts in 8 groups (keep 4), top-4, one MTP module. */
export const small: Readonly<ModelConfig> = Object.freeze({
  ...deepseekV3,
  vocabSize: 512,
  hiddenSize: 128,
  numHiddenLayers: 4,
  firstKDenseReplace: 1,
  intermediateSize: 256,
  numAttentionHeads: 4,
  qLoraRank: 64,
  kvLoraRank: 32,
  qkNopeHeadDim: 32,
  qkRopeHeadDim: 16,
  vHeadDim: 32,
  ropeScaling: null,
  maxPositionEmbeddings: 1024,
  nRoutedExperts: 32,
  numExpertsPerTok: 4,
  moeIntermediateSize: 64,
  nGroup: 8,
  topkGroup: 4,
});

/**
 * Benchmark config (issue 3): d 256, 4 layers (1 dense), 8 heads, kv_lora 64, q_lora 96,
 * rope/nope/v 32, 16 experts top-4 in 4 groups keep 2, 1 shared, moe_inter 128, inter 512,
 * vocab 4096; no MTP; 4096 positions (decode benchmarks go to 2048).
 */
export const bench: Readonly<ModelConfig> = Object.freeze({
  ...deepseekV3,
  vocabSize: 4096,
  hiddenSize: 256,
  numHiddenLayers: 4,
  firstKDenseReplace: 1,
  intermediateSize: 512,
  numAttentionHeads: 8,
  qLoraRank: 96,
  kvLoraRank: 64,
  qkNopeHeadDim: 32,
  qkRopeHeadDim: 32,
  vHeadDim: 32,
  ropeScaling: null,
  maxPositionEmbeddings: 4096,
  nRoutedExperts: 16,
  numExpertsPerTok: 4,
  moeIntermediateSize: 128,
  nGroup: 4,
  topkGroup: 2,
  numNextnPredictLayers: 0,
});

/** Every preset by name (`deepseek-v3` is the full 671B model). */
export const presets: Readonly<Record<string, Readonly<ModelConfig>>> = Object.freeze({
  tiny,
  small,
  bench,
  'deepseek-v3': deepseekV3,
});

/** A fresh, validated copy of a preset; ConfigError (key `preset`) for an unknown name. */
export function getPreset(name: string): ModelConfig {
  const p = Object.prototype.hasOwnProperty.call(presets, name) ? presets[name] : undefined;
  if (p === undefined) throw new ConfigError('preset', `unknown preset ${JSON.stringify(name)}; known: ${Object.keys(presets).join(', ')}`);
  const c: ModelConfig = { ...p, ropeScaling: p.ropeScaling === null ? null : { ...p.ropeScaling } };
  validateConfig(c);
  return c;
}
