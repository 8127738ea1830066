import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import type { ModelConfig } from '../../src/model/config.js';
import { configFromHF, configFromHFWithWarnings, configToHF, countParameters, validateConfig } from '../../src/model/config.js';
import { bench, deepseekV3, getPreset, presets, small, tiny } from '../../src/model/presets.js';
import { ConfigError } from '../../src/errors.js';

const dir = new URL('../fixtures/golden/', import.meta.url).pathname;
const CASES = ['v3', 'v2lite', 'yarn', 'bf16', 'fp8'] as const;
const hf = (c: string): Record<string, unknown> => JSON.parse(readFileSync(`${dir}${c}/config.json`, 'utf8'));

/** Expects a ConfigError whose key is `key` and whose message contains the offending value. */
function expectConfigError(fn: () => unknown, key: string, value?: string): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err, `expected ConfigError for ${key}`).toBeInstanceOf(ConfigError);
  expect((err as ConfigError).key).toBe(key);
  expect((err as Error).message).toContain(`'${key}'`);
  if (value !== undefined) expect((err as Error).message).toContain(value);
}

describe('configFromHF on the golden config.json files', () => {
  for (const c of CASES) {
    it(`${c}: parses, validates, and configToHF gives back every architectural key`, () => {
      const json = hf(c);
      const { config, warnings } = configFromHFWithWarnings(json);
      expect(warnings.filter((w) => !/bos_token_id|eos_token_id/.test(w))).toEqual([]);
      const back = configToHF(config);
      for (const [k, v] of Object.entries(json)) {
        if (k === 'torch_dtype' || k === 'quantization_config' || k === 'ep_size') continue;
        expect(back[k], k).toEqual(v);
      }
      expect(configFromHF(back)).toEqual(config);
    });
  }

  it('maps the V2-style case: q_lora_rank null → 0, softmax, greedy, no renormalisation', () => {
    const c = configFromHF(hf('v2lite'));
    expect(c.qLoraRank).toBe(0);
    expect(c.scoringFunc).toBe('softmax');
    expect(c.topkMethod).toBe('greedy');
    expect(c.normTopkProb).toBe(false);
    expect(c.nGroup).toBe(1);
  });

  it('reads YaRN from the yarn case', () => {
    expect(configFromHF(hf('yarn')).ropeScaling).toEqual({
      factor: 8, originalMaxPositionEmbeddings: 128, betaFast: 32, betaSlow: 1, mscale: 1, mscaleAllDim: 1,
    });
    expect(configFromHF(hf('yarn')).ropeTheta).toBe(50000);
  });
});

describe('rope_scaling variants', () => {
  const yarn = hf('yarn');
  const rs = yarn.rope_scaling as Record<string, unknown>;
  const expected = configFromHF(yarn);

  it('accepts rope_type instead of type', () => {
    const { type: _t, ...rest } = rs;
    expect(configFromHF({ ...yarn, rope_scaling: { ...rest, rope_type: 'yarn' } })).toEqual(expected);
  });

  it('accepts newer HF rope_parameters (carrying rope_theta)', () => {
    const { type: _t, ...rest } = rs;
    const { rope_scaling: _s, rope_theta: _th, ...others } = yarn;
    expect(configFromHF({ ...others, rope_parameters: { ...rest, rope_type: 'yarn', rope_theta: 50000 } })).toEqual(expected);
  });

  it('rope_parameters of type "default" means plain RoPE', () => {
    const c = configFromHF({ ...hf('v3'), rope_scaling: undefined, rope_parameters: { rope_type: 'default', rope_theta: 1234 } });
    expect(c.ropeScaling).toBeNull();
    expect(c.ropeTheta).toBe(1234);
  });

  it('missing mscale / mscale_all_dim default to 1.0 with a warning each', () => {
    const { mscale: _a, mscale_all_dim: _b, ...rest } = rs;
    const { config, warnings } = configFromHFWithWarnings({ ...yarn, rope_scaling: rest });
    expect(config.ropeScaling?.mscale).toBe(1);
    expect(config.ropeScaling?.mscaleAllDim).toBe(1);
    expect(warnings.some((w) => w.includes('rope_scaling.mscale missing'))).toBe(true);
    expect(warnings.some((w) => w.includes('rope_scaling.mscale_all_dim missing'))).toBe(true);
  });

  it('scaling parameters without a type are rejected naming the key', () => {
    const { type: _t, ...rest } = rs;
    expectConfigError(() => configFromHF({ ...yarn, rope_scaling: rest }), 'rope_scaling.type', 'missing');
  });

  it('a non-yarn scaling type is rejected naming the key', () => {
    expectConfigError(() => configFromHF({ ...yarn, rope_scaling: { ...rs, type: 'linear' } }), 'rope_scaling.type', 'linear');
  });
});

describe('validation rules of SPEC §1.4 name the key and value', () => {
  const base = configFromHF(hf('v3')); // E 12, n_group 3, topk_group 2, K 3
  const bad = (patch: Partial<ModelConfig>): (() => void) => () => validateConfig({ ...base, ...patch });
  const badHF = (patch: Record<string, unknown>): (() => unknown) => () => configFromHF({ ...hf('v3'), ...patch });

  it('rule 1: n_routed_experts % n_group == 0', () => expectConfigError(bad({ nRoutedExperts: 13 }), 'n_routed_experts', '13'));
  it('rule 2: 1 ≤ topk_group ≤ n_group', () => {
    expectConfigError(bad({ topkGroup: 0 }), 'topk_group', '0');
    expectConfigError(bad({ topkGroup: 4 }), 'topk_group', '4');
  });
  it('rule 3: 1 ≤ K ≤ topk_group · E/n_group', () => {
    expectConfigError(bad({ numExpertsPerTok: 9 }), 'num_experts_per_tok', '9');
    expectConfigError(bad({ numExpertsPerTok: 0 }), 'num_experts_per_tok', '0');
    expect(() => validateConfig({ ...base, numExpertsPerTok: 8 })).not.toThrow();
  });
  it('rule 4: top-2 group sums need ≥ 2 experts per group', () => {
    expectConfigError(bad({ nRoutedExperts: 3, nGroup: 3, topkGroup: 2, numExpertsPerTok: 2 }), 'n_group', '1');
    expect(() => validateConfig({ ...base, nRoutedExperts: 3, nGroup: 3, topkGroup: 2, numExpertsPerTok: 2, topkMethod: 'greedy' })).not.toThrow();
  });
  it('rule 5: qk_rope_head_dim even', () => expectConfigError(bad({ qkRopeHeadDim: 7 }), 'qk_rope_head_dim', '7'));
  it('rule 6: 0 ≤ first_k_dense_replace ≤ num_hidden_layers', () => {
    expectConfigError(bad({ firstKDenseReplace: 5 }), 'first_k_dense_replace', '5');
    expectConfigError(bad({ firstKDenseReplace: -1 }), 'first_k_dense_replace', '-1');
  });
  it('rule 7: num_key_value_heads == num_attention_heads', () => expectConfigError(badHF({ num_key_value_heads: 2 }), 'num_key_value_heads', '2'));
  it('rule 8: q_lora_rank null/0 or positive; kv_lora_rank > 0', () => {
    expectConfigError(bad({ qLoraRank: -4 }), 'q_lora_rank', '-4');
    expectConfigError(bad({ kvLoraRank: 0 }), 'kv_lora_rank', '0');
    expect(configFromHF({ ...hf('v3'), q_lora_rank: 0 }).qLoraRank).toBe(0);
  });
  it('rule 9: YaRN factor ≥ 1, beta_fast > beta_slow > 0, original_max_position_embeddings > 0', () => {
    const y = deepseekV3.ropeScaling!;
    expectConfigError(bad({ ropeScaling: { ...y, factor: 0.5 } }), 'rope_scaling.factor', '0.5');
    expectConfigError(bad({ ropeScaling: { ...y, betaFast: 1 } }), 'rope_scaling.beta_fast', '1');
    expectConfigError(bad({ ropeScaling: { ...y, betaSlow: 0 } }), 'rope_scaling.beta_slow', '0');
    expectConfigError(bad({ ropeScaling: { ...y, originalMaxPositionEmbeddings: 0 } }), 'rope_scaling.original_max_position_embeddings', '0');
  });
  it('rule 12: sigmoid requires norm_topk_prob', () => expectConfigError(bad({ normTopkProb: false }), 'norm_topk_prob', 'false'));
  it('sizes must be positive integers', () => {
    expectConfigError(bad({ hiddenSize: 0 }), 'hidden_size', '0');
    expectConfigError(bad({ vocabSize: 2.5 }), 'vocab_size', '2.5');
    expectConfigError(badHF({ hidden_size: '48' }), 'hidden_size', '"48"');
  });
  it('required keys missing, unsupported keys', () => {
    const { kv_lora_rank: _k, ...rest } = hf('v3');
    expectConfigError(() => configFromHF(rest), 'kv_lora_rank', 'missing');
    expectConfigError(badHF({ tie_word_embeddings: true }), 'tie_word_embeddings', 'true');
    expectConfigError(badHF({ moe_layer_freq: 2 }), 'moe_layer_freq', '2');
    expectConfigError(badHF({ hidden_act: 'gelu' }), 'hidden_act', 'gelu');
    expectConfigError(badHF({ scoring_func: 'relu' }), 'scoring_func', 'relu');
  });

  it('property: random valid MoE shapes pass, and breaking divisibility names n_routed_experts', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 8 }), fc.integer({ min: 2, max: 8 }), fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 64 }), (g, per, tg, k) => {
        const topkGroup = Math.min(tg, g);
        const K = Math.min(k, topkGroup * per);
        const c = { ...base, nGroup: g, nRoutedExperts: g * per, topkGroup, numExpertsPerTok: K };
        validateConfig(c);
        expectConfigError(() => validateConfig({ ...c, nRoutedExperts: g * per + 1 }), 'n_routed_experts');
        return true;
      }),
      { seed: 4242, numRuns: 200 },
    );
  });
});

describe('presets', () => {
  it('every preset validates and round-trips through config.json', () => {
    for (const name of Object.keys(presets)) {
      const c = getPreset(name);
      expect(configFromHF(configToHF(c))).toEqual(c);
    }
    expectConfigError(() => getPreset('huge'), 'preset', 'huge');
    expectConfigError(() => getPreset('toString'), 'preset');
  });

  it('bench has the dimensions of issue 3', () => {
    expect([bench.hiddenSize, bench.numHiddenLayers, bench.firstKDenseReplace, bench.numAttentionHeads, bench.kvLoraRank, bench.qLoraRank]).toEqual([256, 4, 1, 8, 64, 96]);
    expect([bench.qkRopeHeadDim, bench.qkNopeHeadDim, bench.vHeadDim]).toEqual([32, 32, 32]);
    expect([bench.nRoutedExperts, bench.numExpertsPerTok, bench.nGroup, bench.topkGroup, bench.nSharedExperts]).toEqual([16, 4, 4, 2, 1]);
    expect([bench.moeIntermediateSize, bench.intermediateSize, bench.vocabSize]).toEqual([128, 512, 4096]);
  });

  it('tiny is SPEC §1.4 example; small is larger', () => {
    expect([tiny.vocabSize, tiny.hiddenSize, tiny.intermediateSize, tiny.moeIntermediateSize, tiny.numHiddenLayers, tiny.firstKDenseReplace]).toEqual([256, 64, 128, 32, 3, 1]);
    expect([tiny.numAttentionHeads, tiny.qLoraRank, tiny.kvLoraRank, tiny.qkNopeHeadDim, tiny.qkRopeHeadDim, tiny.vHeadDim]).toEqual([4, 32, 16, 16, 8, 16]);
    expect([tiny.nRoutedExperts, tiny.nSharedExperts, tiny.numExpertsPerTok, tiny.nGroup, tiny.topkGroup, tiny.routedScalingFactor, tiny.numNextnPredictLayers]).toEqual([16, 1, 4, 4, 2, 2.5, 1]);
    expect(countParameters(small).total).toBeGreaterThan(countParameters(tiny).total);
  });

  it('the full config.json of DeepSeek-V3 (SPEC §1.1) parses to the deepseek-v3 preset', () => {
    const json = {
      architectures: ['DeepseekV3ForCausalLM'], model_type: 'deepseek_v3', vocab_size: 129280, hidden_size: 7168, intermediate_size: 18432,
      moe_intermediate_size: 2048, num_hidden_layers: 61, first_k_dense_replace: 3, moe_layer_freq: 1, num_attention_heads: 128,
      num_key_value_heads: 128, n_routed_experts: 256, n_shared_experts: 1, num_experts_per_tok: 8, n_group: 8, topk_group: 4,
      scoring_func: 'sigmoid', routed_scaling_factor: 2.5, norm_topk_prob: true, topk_method: 'noaux_tc', q_lora_rank: 1536,
      kv_lora_rank: 512, qk_nope_head_dim: 128, qk_rope_head_dim: 64, v_head_dim: 128, rope_theta: 10000,
      rope_scaling: { type: 'yarn', factor: 40, original_max_position_embeddings: 4096, beta_fast: 32, beta_slow: 1, mscale: 1.0, mscale_all_dim: 1.0 },
      max_position_embeddings: 163840, rms_norm_eps: 1e-6, hidden_act: 'silu', num_nextn_predict_layers: 1, tie_word_embeddings: false,
      attention_bias: false, attention_dropout: 0.0, bos_token_id: 0, eos_token_id: 1, torch_dtype: 'bfloat16', ep_size: 1,
      initializer_range: 0.02, aux_loss_alpha: 0.001, seq_aux: true, pretraining_tp: 1, use_cache: true,
      quantization_config: { activation_scheme: 'dynamic', fmt: 'e4m3', quant_method: 'fp8', weight_block_size: [128, 128] },
    };
    expect(configFromHFWithWarnings(json)).toEqual({ config: { ...deepseekV3 }, warnings: [] });
  });
});

describe('countParameters (SPEC §2.3)', () => {
  const n = countParameters(deepseekV3);
  it('full model: 671,026,419,200 main-model parameters and the per-part numbers', () => {
    expect(n.total).toBe(671_026_419_200);
    expect(n.attentionPerLayer).toBe(187_107_328);
    expect(n.denseMlp).toBe(396_361_728);
    expect(n.expert).toBe(44_040_192);
    expect(n.moeLayerMlp).toBe(11_320_164_608);
    expect(n.embedding).toBe(129280 * 7168);
  });
  it('MTP layer 11.61 B (13.46 B with duplicates); checkpoint 684,489,845,504 + 41,540,496 scale entries', () => {
    expect(n.mtp).toBe(11_610_068_224);
    expect(n.mtpWithDuplicates).toBe(13_463_426_304);
    expect(n.checkpointTotal).toBe(684_489_845_504);
    expect(n.fp8ScaleEntries).toBe(41_540_496);
  });
  it('activated per token: ≈ 37 B (paper); breakdown by hand', () => {
    // 2·V·d (embedding + head) + d + 61·(attention + 2 norms) + 3 dense MLPs + 58·(router + bias + (8 routed + 1 shared)·expert)
    const byHand = 2 * 129280 * 7168 + 7168 + 61 * (187_107_328 + 2 * 7168) + 3 * 396_361_728 + 58 * (256 * 7168 + 256 + 9 * 44_040_192);
    expect(n.activatedPerToken).toBe(byHand);
    expect(n.activatedPerToken).toBe(37_552_297_472);
    expect(n.activatedPerTokenExcludingEmbedding).toBe(37_552_297_472 - 129280 * 7168);
    expect(Math.round(n.activatedPerToken / 1e9)).toBe(38); // 37.55 B: the paper's "37B" counts slightly differently
  });
});
