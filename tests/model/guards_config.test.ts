/**
 * config.json values of the wrong JSON type (issue 12, "Why" 4): the error names the key whose type is wrong and the
 * type it expects, whatever the other keys hold; before, `"num_attention_heads": "4"` was reported as a problem of
 * `num_key_value_heads`.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { configFromHF, configToHF } from '../../src/model/config.js';
import { getPreset } from '../../src/model/presets.js';

/** The JSON type of each key of HF DeepseekV3Config that this library reads (from its Python annotations). */
const KINDS: Record<string, 'integer' | 'number' | 'boolean' | 'string' | 'object'> = {
  vocab_size: 'integer', hidden_size: 'integer', num_hidden_layers: 'integer', first_k_dense_replace: 'integer',
  intermediate_size: 'integer', num_attention_heads: 'integer', num_key_value_heads: 'integer', q_lora_rank: 'integer',
  kv_lora_rank: 'integer', qk_nope_head_dim: 'integer', qk_rope_head_dim: 'integer', v_head_dim: 'integer',
  max_position_embeddings: 'integer', n_routed_experts: 'integer', n_shared_experts: 'integer', num_experts_per_tok: 'integer',
  moe_intermediate_size: 'integer', n_group: 'integer', topk_group: 'integer', num_nextn_predict_layers: 'integer',
  moe_layer_freq: 'integer', bos_token_id: 'integer',
  rms_norm_eps: 'number', rope_theta: 'number', routed_scaling_factor: 'number',
  norm_topk_prob: 'boolean', tie_word_embeddings: 'boolean', attention_bias: 'boolean',
  scoring_func: 'string', topk_method: 'string', hidden_act: 'string', rope_scaling: 'object',
};

/** Values that are not of `kind` (null is excluded: it means "missing"). */
function wrongValue(kind: string): fc.Arbitrary<unknown> {
  const pool: fc.Arbitrary<unknown>[] = [fc.boolean(), fc.array(fc.integer(), { maxLength: 3 }), fc.constant({ a: 1 })];
  if (kind !== 'string') pool.push(fc.oneof(fc.integer().map(String), fc.string({ minLength: 1 })));
  if (kind === 'string' || kind === 'boolean' || kind === 'object') pool.push(fc.integer());
  if (kind === 'integer') pool.push(fc.double({ noNaN: true, noDefaultInfinity: true }).filter((x) => !Number.isInteger(x)));
  return fc.oneof(...pool).filter((v) => !(kind === 'boolean' && typeof v === 'boolean') && !(kind === 'object' && typeof v === 'object' && !Array.isArray(v)));
}

const base = configToHF(getPreset('tiny'));

describe('config.json JSON types', () => {
  it('the reported issue: "num_attention_heads": "4" names num_attention_heads and its type', () => {
    expect(() => configFromHF({ ...base, num_attention_heads: '4' })).toThrow(new ConfigError('num_attention_heads', 'expected an integer, got the string "4"'));
  });

  it('a wrongly typed value of any key names that key and the expected type (300 cases)', () => {
    const keyed = fc.constantFrom(...Object.keys(KINDS)).chain((key) => fc.tuple(fc.constant(key), wrongValue(KINDS[key]!)));
    fc.assert(
      fc.property(keyed, ([key, value]) => {
        let err: unknown;
        try {
          configFromHF({ ...base, [key]: value });
        } catch (e) {
          err = e;
        }
        expect(err).toBeInstanceOf(ConfigError);
        expect((err as ConfigError).key).toBe(key);
        expect((err as ConfigError).message).toMatch(new RegExp(`: expected an? ${KINDS[key]}, got `));
      }),
      { seed: 12, numRuns: 300 },
    );
  });

  it('eos_token_id may be an integer or a list of integers; null keeps meaning "missing"', () => {
    expect(configFromHF({ ...base, eos_token_id: [1, 2] }).eosTokenId).toBe(1);
    expect(() => configFromHF({ ...base, eos_token_id: ['1'] })).toThrow(/'eos_token_id': expected an integer or list of integers, got a list \["1"\]/);
    expect(configFromHF({ ...base, rope_theta: null }).ropeTheta).toBe(10000);
    expect(() => configFromHF({ ...base, hidden_size: null })).toThrow(/'hidden_size': missing \(required\)/);
  });
});
