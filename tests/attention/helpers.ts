/**
 * Test helpers of the attention area: small configs, seeded random MLA weights, and the golden
 * fixtures (config.json via configFromHF, safetensors tensors as f32/f64 arrays).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseSafetensors, tensorToFloat32, tensorToFloat64 } from '../../src/io/safetensors.js';
import { configFromHF, type ModelConfig } from '../../src/model/config.js';
import { deepseekV3 } from '../../src/model/presets.js';
import type { MLAWeights } from '../../src/model/attention.js';
import { Random } from '../../src/random.js';
import { Tensor, type DType } from '../../src/tensor.js';
import { GOLDEN_DIR } from '../helpers/golden.js';
import { randomTensor } from '../helpers/random.js';

/** The MLA-relevant shape of a config; everything else gets harmless defaults. */
export interface MLAShape {
  hidden: number;
  heads: number;
  qLoraRank: number;
  kvLoraRank: number;
  nope: number;
  rope: number;
  v: number;
  ropeTheta?: number;
  yarn?: ModelConfig['ropeScaling'];
}

/** A one-layer config of MLA shape `s`; the rest is V3's (router, norms) at toy sizes, greedy routing, no MTP. */
export function mlaConfig(s: MLAShape): ModelConfig {
  return {
    ...deepseekV3,
    vocabSize: 32,
    hiddenSize: s.hidden,
    numHiddenLayers: 1,
    firstKDenseReplace: 1,
    intermediateSize: 16,
    numAttentionHeads: s.heads,
    qLoraRank: s.qLoraRank,
    kvLoraRank: s.kvLoraRank,
    qkNopeHeadDim: s.nope,
    qkRopeHeadDim: s.rope,
    vHeadDim: s.v,
    ropeTheta: s.ropeTheta ?? 10000,
    ropeScaling: s.yarn ?? null,
    maxPositionEmbeddings: 4096,
    nRoutedExperts: 4,
    numExpertsPerTok: 2,
    moeIntermediateSize: 8,
    nGroup: 1,
    topkGroup: 1,
    routedScalingFactor: 1,
    topkMethod: 'greedy',
    numNextnPredictLayers: 0,
  };
}

export interface GoldenCase {
  config: ModelConfig;
  meta: Record<string, any>;
  has(name: string): boolean;
  /** model.safetensors tensors converted to the requested precision. */
  weight(name: string, dtype: DType): Tensor;
  /** expected.safetensors tensor as f64 values plus its shape. */
  expected(name: string): { shape: number[]; data: Float64Array };
}

export function loadGolden(name: string): GoldenCase {
  const dir = join(GOLDEN_DIR, name);
  const config = configFromHF(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')));
  const meta = JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8'));
  const model = parseSafetensors(new Uint8Array(readFileSync(join(dir, 'model.safetensors'))), `${name}/model.safetensors`);
  const exp = parseSafetensors(new Uint8Array(readFileSync(join(dir, 'expected.safetensors'))), `${name}/expected.safetensors`);
  return {
    config,
    meta,
    has: (n) => model.tensors.has(n),
    weight(n, dtype) {
      const t = model.tensors.get(n);
      if (!t) throw new Error(`golden ${name}: no weight ${n}`);
      const data = dtype === 'float64' ? tensorToFloat64(t, n) : tensorToFloat32(t, n);
      return new Tensor(t.shape, data);
    },
    expected(n) {
      const t = exp.tensors.get(n);
      if (!t) throw new Error(`golden ${name}: no expected tensor ${n}`);
      return { shape: t.shape, data: tensorToFloat64(t, n) };
    },
  };
}

/** Seeded random MLA weights: linear N(0, 1/fan_in), norm weights 1 + 0.1·N(0,1) (the golden README's init). */
export function randomMLAWeights(config: ModelConfig, seed: number, dtype: DType): MLAWeights {
  const rng = new Random(seed);
  const d = config.hiddenSize;
  const H = config.numAttentionHeads;
  const qk = config.qkNopeHeadDim + config.qkRopeHeadDim;
  const C = config.kvLoraRank;
  const R = config.qkRopeHeadDim;
  const V = config.vHeadDim;
  const lin = (out: number, inp: number): Tensor => randomTensor(rng, [out, inp], dtype, 1 / Math.sqrt(inp));
  const norm = (n: number): Tensor => randomTensor(rng, [n], dtype, 0.1, 1);
  const w: MLAWeights = {
    kv_a_proj_with_mqa: lin(C + R, d),
    kv_a_layernorm: norm(C),
    kv_b_proj: lin(H * (config.qkNopeHeadDim + V), C),
    o_proj: lin(d, H * V),
  };
  if (config.qLoraRank > 0) {
    w.q_a_proj = lin(config.qLoraRank, d);
    w.q_a_layernorm = norm(config.qLoraRank);
    w.q_b_proj = lin(H * qk, config.qLoraRank);
  } else {
    w.q_proj = lin(H * qk, d);
  }
  return w;
}

/** max |a − b| / max |b|. */
export function relMaxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  let r = 0;
  for (let i = 0; i < b.length; i++) {
    m = Math.max(m, Math.abs(a[i]! - b[i]!));
    r = Math.max(r, Math.abs(b[i]!));
  }
  return m / r;
}
