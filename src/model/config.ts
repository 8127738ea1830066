import { ConfigError } from '../errors.js';
import { preview } from '../preview.js';

/**
 * The model configuration, grouped like SPEC §1. Field names are the camelCase of the Hugging
 * Face `config.json` keys (given in each comment) so a reader maps them without a table.
 */

/** YaRN context extension (HF `rope_scaling` with type "yarn"), SPEC §3.5. */
export interface YarnConfig {
  /** `factor`: the scale s. */
  factor: number;
  /** `original_max_position_embeddings`: L₀, the pre-training context. */
  originalMaxPositionEmbeddings: number;
  /** `beta_fast` (α): rotations at which frequencies start to be interpolated. */
  betaFast: number;
  /** `beta_slow` (β). */
  betaSlow: number;
  /** `mscale`: HF cos/sin attention factor numerator. */
  mscale: number;
  /** `mscale_all_dim`: softmax-scale correction m (official `mscale`). */
  mscaleAllDim: number;
}

export interface ModelConfig {
  /** `vocab_size`: rows of the embedding and of the LM head. */
  vocabSize: number;
  /** `hidden_size`: d. */
  hiddenSize: number;
  /** `num_hidden_layers`: main-model blocks (MTP layers are extra). */
  numHiddenLayers: number;
  /** `first_k_dense_replace`: layers i < this use the dense MLP, the rest MoE. */
  firstKDenseReplace: number;
  /** `intermediate_size`: width of the dense SwiGLU MLP. */
  intermediateSize: number;
  /** `rms_norm_eps` (1e-6 in V3; the official code hard-codes it). */
  rmsNormEps: number;

  // mla
  /** `num_attention_heads`: H. */
  numAttentionHeads: number;
  /** `q_lora_rank`: query latent width; 0 (HF null) = no query compression (`q_proj`). */
  qLoraRank: number;
  /** `kv_lora_rank`: KV latent width C. */
  kvLoraRank: number;
  /** `qk_nope_head_dim`: n. */
  qkNopeHeadDim: number;
  /** `qk_rope_head_dim`: R (even). */
  qkRopeHeadDim: number;
  /** `v_head_dim`. */
  vHeadDim: number;

  // rope / yarn
  /** `rope_theta`: RoPE base. */
  ropeTheta: number;
  /** `rope_scaling`: YaRN parameters, or null for plain RoPE. */
  ropeScaling: YarnConfig | null;
  /** `max_position_embeddings`. */
  maxPositionEmbeddings: number;

  // moe
  /** `n_routed_experts`: E. */
  nRoutedExperts: number;
  /** `n_shared_experts`: fused into one MLP of width nSharedExperts·moeIntermediateSize. */
  nSharedExperts: number;
  /** `num_experts_per_tok`: K. */
  numExpertsPerTok: number;
  /** `moe_intermediate_size`: width of each routed expert. */
  moeIntermediateSize: number;
  /** `n_group`: expert groups (contiguous blocks of E/nGroup experts). */
  nGroup: number;
  /** `topk_group`: groups a token may use. */
  topkGroup: number;
  /** `scoring_func`. */
  scoringFunc: 'sigmoid' | 'softmax';
  /** `norm_topk_prob`: renormalise the K selected weights (true iff sigmoid in the official code). */
  normTopkProb: boolean;
  /** `routed_scaling_factor`: multiplies the routed weights only. */
  routedScalingFactor: number;
  /** `topk_method`: "noaux_tc" ⇒ the router has `e_score_correction_bias`; "greedy" ⇒ no bias. */
  topkMethod: 'noaux_tc' | 'greedy';

  // mtp
  /** `num_nextn_predict_layers`: MTP depth D (0 = no MTP modules). */
  numNextnPredictLayers: number;

  // tokens
  /** `bos_token_id`. */
  bosTokenId: number;
  /** `eos_token_id`. */
  eosTokenId: number;
}

/** HF `config.json` key of each ModelConfig field (error messages name the HF key). */
export const HF_CONFIG_KEYS: Readonly<Record<keyof ModelConfig, string>> = Object.freeze({
  vocabSize: 'vocab_size',
  hiddenSize: 'hidden_size',
  numHiddenLayers: 'num_hidden_layers',
  firstKDenseReplace: 'first_k_dense_replace',
  intermediateSize: 'intermediate_size',
  rmsNormEps: 'rms_norm_eps',
  numAttentionHeads: 'num_attention_heads',
  qLoraRank: 'q_lora_rank',
  kvLoraRank: 'kv_lora_rank',
  qkNopeHeadDim: 'qk_nope_head_dim',
  qkRopeHeadDim: 'qk_rope_head_dim',
  vHeadDim: 'v_head_dim',
  ropeTheta: 'rope_theta',
  ropeScaling: 'rope_scaling',
  maxPositionEmbeddings: 'max_position_embeddings',
  nRoutedExperts: 'n_routed_experts',
  nSharedExperts: 'n_shared_experts',
  numExpertsPerTok: 'num_experts_per_tok',
  moeIntermediateSize: 'moe_intermediate_size',
  nGroup: 'n_group',
  topkGroup: 'topk_group',
  scoringFunc: 'scoring_func',
  normTopkProb: 'norm_topk_prob',
  routedScalingFactor: 'routed_scaling_factor',
  topkMethod: 'topk_method',
  numNextnPredictLayers: 'num_nextn_predict_layers',
  bosTokenId: 'bos_token_id',
  eosTokenId: 'eos_token_id',
});

const YARN_KEYS: Readonly<Record<keyof YarnConfig, string>> = Object.freeze({
  factor: 'factor',
  originalMaxPositionEmbeddings: 'original_max_position_embeddings',
  betaFast: 'beta_fast',
  betaSlow: 'beta_slow',
  mscale: 'mscale',
  mscaleAllDim: 'mscale_all_dim',
});

// ---------------------------------------------------------------------------------------------
// Validation (SPEC §1.4)

function show(v: unknown): string {
  return preview(v);
}

function requireInt(key: string, v: unknown, min: number): void {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) {
    throw new ConfigError(key, `must be an integer ≥ ${min}, got ${show(v)}`);
  }
}

function requirePositive(key: string, v: unknown): void {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new ConfigError(key, `must be a finite number > 0, got ${show(v)}`);
}

/**
 * Checks the rules of SPEC §1.4 (and that every size is a valid integer). Throws ConfigError
 * naming the HF key and the offending value. Rule 7 (`num_key_value_heads`) is checked by
 * configFromHF, rules 10–11 by the weight loader / FP8 GEMM.
 */
export function validateConfig(c: ModelConfig): void {
  const K = HF_CONFIG_KEYS;
  for (const f of ['vocabSize', 'hiddenSize', 'numHiddenLayers', 'intermediateSize', 'numAttentionHeads', 'qkNopeHeadDim', 'vHeadDim',
    'maxPositionEmbeddings', 'nRoutedExperts', 'moeIntermediateSize', 'nGroup'] as const) {
    requireInt(K[f], c[f], 1);
  }
  for (const f of ['nSharedExperts', 'numNextnPredictLayers', 'bosTokenId', 'eosTokenId', 'qLoraRank', 'firstKDenseReplace', 'qkRopeHeadDim'] as const) {
    requireInt(K[f], c[f], 0);
  }
  requirePositive(K.rmsNormEps, c.rmsNormEps);
  requirePositive(K.ropeTheta, c.ropeTheta);
  requirePositive(K.routedScalingFactor, c.routedScalingFactor);
  if (c.scoringFunc !== 'sigmoid' && c.scoringFunc !== 'softmax') throw new ConfigError(K.scoringFunc, `must be "sigmoid" or "softmax", got ${show(c.scoringFunc)}`);
  if (c.topkMethod !== 'noaux_tc' && c.topkMethod !== 'greedy') throw new ConfigError(K.topkMethod, `must be "noaux_tc" or "greedy", got ${show(c.topkMethod)}`);
  if (typeof c.normTopkProb !== 'boolean') throw new ConfigError(K.normTopkProb, `must be a boolean, got ${show(c.normTopkProb)}`);
  // 1. groups are contiguous blocks of E/n_group experts
  if (c.nRoutedExperts % c.nGroup !== 0) {
    throw new ConfigError(K.nRoutedExperts, `${c.nRoutedExperts} is not divisible by n_group = ${c.nGroup}`);
  }
  // 2.
  if (!Number.isSafeInteger(c.topkGroup) || c.topkGroup < 1 || c.topkGroup > c.nGroup) {
    throw new ConfigError(K.topkGroup, `must satisfy 1 ≤ topk_group ≤ n_group = ${c.nGroup}, got ${show(c.topkGroup)}`);
  }
  // 3. top-k must never have to pick a masked (−∞) expert
  const perGroup = c.nRoutedExperts / c.nGroup;
  if (!Number.isSafeInteger(c.numExpertsPerTok) || c.numExpertsPerTok < 1 || c.numExpertsPerTok > c.topkGroup * perGroup) {
    throw new ConfigError(K.numExpertsPerTok, `must satisfy 1 ≤ num_experts_per_tok ≤ topk_group · n_routed_experts / n_group = ${c.topkGroup * perGroup}, got ${show(c.numExpertsPerTok)}`);
  }
  // 4. a group score is the sum of the top-2 biased scores of the group
  if (c.nGroup > 1 && hasRouterBias(c) && perGroup < 2) {
    throw new ConfigError(K.nGroup, `with topk_method "noaux_tc" each group needs ≥ 2 experts (top-2 sum), but n_routed_experts / n_group = ${perGroup}`);
  }
  // 5. RoPE rotates pairs
  if (c.qkRopeHeadDim % 2 !== 0) throw new ConfigError(K.qkRopeHeadDim, `must be even (RoPE rotates pairs), got ${c.qkRopeHeadDim}`);
  // 6.
  if (c.firstKDenseReplace > c.numHiddenLayers) {
    throw new ConfigError(K.firstKDenseReplace, `must be ≤ num_hidden_layers = ${c.numHiddenLayers}, got ${c.firstKDenseReplace}`);
  }
  // 8. q_lora_rank 0 = no query compression (checked ≥ 0 above); the KV latent must exist
  requireInt(K.kvLoraRank, c.kvLoraRank, 1);
  // 9. YaRN
  const y = c.ropeScaling;
  if (y !== null) {
    const key = (f: keyof YarnConfig): string => `rope_scaling.${YARN_KEYS[f]}`;
    if (typeof y.factor !== 'number' || !(y.factor >= 1) || !Number.isFinite(y.factor)) throw new ConfigError(key('factor'), `must be ≥ 1, got ${show(y.factor)}`);
    requireInt(key('originalMaxPositionEmbeddings'), y.originalMaxPositionEmbeddings, 1);
    requirePositive(key('betaSlow'), y.betaSlow);
    if (typeof y.betaFast !== 'number' || !Number.isFinite(y.betaFast) || !(y.betaFast > y.betaSlow)) {
      throw new ConfigError(key('betaFast'), `must be > beta_slow = ${y.betaSlow}, got ${show(y.betaFast)}`);
    }
    for (const f of ['mscale', 'mscaleAllDim'] as const) {
      if (typeof y[f] !== 'number' || !Number.isFinite(y[f])) throw new ConfigError(key(f), `must be a finite number, got ${show(y[f])}`);
    }
  }
  // 12. the official code renormalises iff sigmoid
  if (c.scoringFunc === 'sigmoid' && !c.normTopkProb) {
    throw new ConfigError(K.normTopkProb, `scoring_func "sigmoid" requires norm_topk_prob = true (V3 renormalises the selected sigmoid weights), got false`);
  }
  if (c.bosTokenId >= c.vocabSize) throw new ConfigError(K.bosTokenId, `must be < vocab_size = ${c.vocabSize}, got ${c.bosTokenId}`);
  if (c.eosTokenId >= c.vocabSize) throw new ConfigError(K.eosTokenId, `must be < vocab_size = ${c.vocabSize}, got ${c.eosTokenId}`);
}

// ---------------------------------------------------------------------------------------------
// Hugging Face config.json

/** Result of configFromHFWithWarnings: the config and what was defaulted or ignored. */
export interface ParsedHFConfig {
  config: ModelConfig;
  /** One sentence per key that was missing (and defaulted) or accepted with a caveat. */
  warnings: string[];
}

type Json = Record<string, unknown>;

/**
 * Defaults of HF `DeepseekV3Config` for keys a config.json may omit. Keys that fix the model's
 * shape (sizes, heads, ranks, experts) have no default: a file missing them is rejected.
 */
const HF_DEFAULTS: Readonly<Json> = {
  first_k_dense_replace: 3,
  rms_norm_eps: 1e-6,
  rope_theta: 10000,
  n_shared_experts: 1,
  n_group: 8,
  topk_group: 4,
  scoring_func: 'sigmoid',
  norm_topk_prob: true,
  routed_scaling_factor: 2.5,
  topk_method: 'noaux_tc',
  num_nextn_predict_layers: 0,
  bos_token_id: 0,
  eos_token_id: 1,
  max_position_embeddings: 4096,
};

const REQUIRED_KEYS = ['vocab_size', 'hidden_size', 'num_hidden_layers', 'intermediate_size', 'num_attention_heads', 'kv_lora_rank',
  'qk_nope_head_dim', 'qk_rope_head_dim', 'v_head_dim', 'n_routed_experts', 'num_experts_per_tok', 'moe_intermediate_size'];

/** The JSON type of each known key (checked first, so an error names the key whose type is wrong). */
type JsonKind = 'integer' | 'number' | 'boolean' | 'string' | 'object' | 'integer or list of integers';
const JSON_KINDS: Readonly<Record<string, JsonKind>> = {
  vocab_size: 'integer', hidden_size: 'integer', num_hidden_layers: 'integer', first_k_dense_replace: 'integer',
  intermediate_size: 'integer', num_attention_heads: 'integer', num_key_value_heads: 'integer', q_lora_rank: 'integer',
  kv_lora_rank: 'integer', qk_nope_head_dim: 'integer', qk_rope_head_dim: 'integer', v_head_dim: 'integer',
  max_position_embeddings: 'integer', n_routed_experts: 'integer', n_shared_experts: 'integer', num_experts_per_tok: 'integer',
  moe_intermediate_size: 'integer', n_group: 'integer', topk_group: 'integer', num_nextn_predict_layers: 'integer',
  moe_layer_freq: 'integer', bos_token_id: 'integer', eos_token_id: 'integer or list of integers',
  rms_norm_eps: 'number', rope_theta: 'number', routed_scaling_factor: 'number',
  norm_topk_prob: 'boolean', tie_word_embeddings: 'boolean', attention_bias: 'boolean', rope_interleave: 'boolean',
  scoring_func: 'string', topk_method: 'string', hidden_act: 'string', rope_scaling: 'object', rope_parameters: 'object',
};

function isKind(v: unknown, kind: JsonKind): boolean {
  switch (kind) {
    case 'integer':
      return typeof v === 'number' && Number.isInteger(v);
    case 'integer or list of integers':
      return isKind(v, 'integer') || (Array.isArray(v) && v.length > 0 && v.every((x) => isKind(x, 'integer')));
    case 'object':
      return typeof v === 'object' && v !== null && !Array.isArray(v);
    default:
      return typeof v === kind;
  }
}

/** A JSON value's type in words: `the string "4"`, `a list`, `null`. */
function jsonTypeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return `a list ${show(v)}`;
  if (typeof v === 'string') return `the string ${show(v)}`;
  if (typeof v === 'number') return `the number ${show(v)}`;
  if (typeof v === 'boolean') return `the boolean ${show(v)}`;
  return `an object`;
}

/** ConfigError naming the first known key whose JSON type is wrong (null counts as missing: defaulted or required). */
function checkJsonTypes(j: Json): void {
  for (const [key, kind] of Object.entries(JSON_KINDS)) {
    const v = j[key];
    if (v !== undefined && v !== null && !isKind(v, kind)) throw new ConfigError(key, `expected ${/^[aeiou]/.test(kind) ? 'an' : 'a'} ${kind}, got ${jsonTypeOf(v)}`);
  }
}

/** Parses YaRN parameters from HF `rope_scaling` / `rope_parameters` (`type` or `rope_type`). */
function yarnFromHF(r: Json, keyName: string, maxPos: unknown, warnings: string[]): YarnConfig | null {
  const type = r.type ?? r.rope_type;
  if (type === undefined && r.factor !== undefined) throw new ConfigError(`${keyName}.type`, `missing: scaling parameters given without a type (expected "yarn")`);
  if (type === undefined || type === 'default') return null;
  if (type !== 'yarn') throw new ConfigError(`${keyName}.type`, `only "yarn" rope scaling is supported, got ${show(type)}`);
  const num = (k: string, dflt: number | undefined, note: string): number => {
    const v = r[k];
    if (v === undefined || v === null) {
      if (dflt === undefined) throw new ConfigError(`${keyName}.${k}`, `missing (required for YaRN)`);
      warnings.push(`${keyName}.${k} missing: using ${dflt} (${note})`);
      return dflt;
    }
    if (typeof v !== 'number') throw new ConfigError(`${keyName}.${k}`, `must be a number, got ${show(v)}`);
    return v;
  };
  return {
    factor: num('factor', undefined, ''),
    originalMaxPositionEmbeddings: num('original_max_position_embeddings', typeof maxPos === 'number' ? maxPos : undefined, 'HF falls back to max_position_embeddings'),
    betaFast: num('beta_fast', 32, 'official and HF default'),
    betaSlow: num('beta_slow', 1, 'official and HF default'),
    mscale: num('mscale', 1, 'official default'),
    mscaleAllDim: num('mscale_all_dim', 1, 'official default of ModelArgs.mscale'),
  };
}

/**
 * Reads a Hugging Face `config.json` object (DeepSeek-V3 or V2 style) into a validated
 * ModelConfig, returning warnings for defaulted keys instead of printing them.
 * Accepts `q_lora_rank` null, `rope_scaling` with `type` or `rope_type`, and newer HF
 * `rope_parameters` (which then also carries `rope_theta`).
 */
export function configFromHFWithWarnings(json: unknown): ParsedHFConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new ConfigError('<root>', `config.json must be a JSON object, got ${show(json)}`);
  const j = json as Json;
  checkJsonTypes(j);
  const warnings: string[] = [];
  for (const k of REQUIRED_KEYS) if (j[k] === undefined || j[k] === null) throw new ConfigError(k, `missing (required)`);
  const get = (k: string): unknown => {
    if (j[k] !== undefined && j[k] !== null) return j[k];
    warnings.push(`${k} missing: using the HF DeepseekV3Config default ${show(HF_DEFAULTS[k])}`);
    return HF_DEFAULTS[k];
  };
  // Keys outside ModelConfig that must have V3's value for this implementation to be exact.
  const mustBe = (k: string, ok: (v: unknown) => boolean, what: string): void => {
    if (j[k] !== undefined && j[k] !== null && !ok(j[k])) throw new ConfigError(k, `unsupported value ${show(j[k])}: ${what}`);
  };
  // 7. MLA has no grouped KV heads
  mustBe('num_key_value_heads', (v) => v === j.num_attention_heads, `must equal num_attention_heads = ${show(j.num_attention_heads)}`);
  mustBe('moe_layer_freq', (v) => v === 1, 'every layer ≥ first_k_dense_replace is MoE (1)');
  mustBe('hidden_act', (v) => v === 'silu', 'DeepSeek-V3 uses SiLU (SwiGLU)');
  mustBe('tie_word_embeddings', (v) => v === false, 'lm_head is a separate matrix (false)');
  mustBe('attention_bias', (v) => v === false, 'no linear layer has a bias (false)');
  mustBe('rope_interleave', (v) => v === true, 'the checkpoint stores RoPE channels as interleaved pairs (true)');

  let topkMethod = get('topk_method');
  if (topkMethod === 'group_limited_greedy') {
    warnings.push('topk_method "group_limited_greedy" read as "greedy": no bias; groups (if n_group > 1) are ranked by their max score');
    topkMethod = 'greedy';
  }
  let eos = get('eos_token_id');
  if (Array.isArray(eos)) {
    warnings.push(`eos_token_id is a list ${show(eos)}: using its first entry`);
    eos = eos[0];
  }
  const ropeParams = j.rope_parameters as Json | undefined | null;
  const ropeSource = ropeParams ?? (j.rope_scaling as Json | undefined | null);
  const ropeKey = ropeParams ? 'rope_parameters' : 'rope_scaling';
  if (ropeSource !== undefined && ropeSource !== null && (typeof ropeSource !== 'object' || Array.isArray(ropeSource))) {
    throw new ConfigError(ropeKey, `must be an object or null, got ${show(ropeSource)}`);
  }
  const ropeTheta = ropeParams?.rope_theta ?? get('rope_theta');
  const qLora = j.q_lora_rank ?? 0; // HF null ⇔ official 0 ⇔ one q_proj

  const config: ModelConfig = {
    vocabSize: j.vocab_size as number,
    hiddenSize: j.hidden_size as number,
    numHiddenLayers: j.num_hidden_layers as number,
    firstKDenseReplace: get('first_k_dense_replace') as number,
    intermediateSize: j.intermediate_size as number,
    rmsNormEps: get('rms_norm_eps') as number,
    numAttentionHeads: j.num_attention_heads as number,
    qLoraRank: qLora as number,
    kvLoraRank: j.kv_lora_rank as number,
    qkNopeHeadDim: j.qk_nope_head_dim as number,
    qkRopeHeadDim: j.qk_rope_head_dim as number,
    vHeadDim: j.v_head_dim as number,
    ropeTheta: ropeTheta as number,
    ropeScaling: ropeSource ? yarnFromHF(ropeSource, ropeKey, j.max_position_embeddings, warnings) : null,
    maxPositionEmbeddings: get('max_position_embeddings') as number,
    nRoutedExperts: j.n_routed_experts as number,
    nSharedExperts: get('n_shared_experts') as number,
    numExpertsPerTok: j.num_experts_per_tok as number,
    moeIntermediateSize: j.moe_intermediate_size as number,
    nGroup: get('n_group') as number,
    topkGroup: get('topk_group') as number,
    scoringFunc: get('scoring_func') as ModelConfig['scoringFunc'],
    normTopkProb: get('norm_topk_prob') as boolean,
    routedScalingFactor: get('routed_scaling_factor') as number,
    topkMethod: topkMethod as ModelConfig['topkMethod'],
    numNextnPredictLayers: get('num_nextn_predict_layers') as number,
    bosTokenId: get('bos_token_id') as number,
    eosTokenId: eos as number,
  };
  validateConfig(config);
  return { config, warnings };
}

/** Reads a Hugging Face `config.json` object into a validated ModelConfig (warnings dropped; see configFromHFWithWarnings). */
export function configFromHF(json: unknown): ModelConfig {
  return configFromHFWithWarnings(json).config;
}

/**
 * A Hugging Face `config.json` object for a config, with the keys of the real checkpoint
 * (`q_lora_rank` null when 0, `rope_scaling` null or a full yarn record, `num_key_value_heads`).
 */
export function configToHF(c: ModelConfig, torchDtype = 'float32'): Record<string, unknown> {
  const y = c.ropeScaling;
  return {
    architectures: ['DeepseekV3ForCausalLM'],
    model_type: 'deepseek_v3',
    vocab_size: c.vocabSize,
    hidden_size: c.hiddenSize,
    intermediate_size: c.intermediateSize,
    moe_intermediate_size: c.moeIntermediateSize,
    num_hidden_layers: c.numHiddenLayers,
    first_k_dense_replace: c.firstKDenseReplace,
    moe_layer_freq: 1,
    num_attention_heads: c.numAttentionHeads,
    num_key_value_heads: c.numAttentionHeads,
    n_routed_experts: c.nRoutedExperts,
    n_shared_experts: c.nSharedExperts,
    num_experts_per_tok: c.numExpertsPerTok,
    n_group: c.nGroup,
    topk_group: c.topkGroup,
    scoring_func: c.scoringFunc,
    routed_scaling_factor: c.routedScalingFactor,
    norm_topk_prob: c.normTopkProb,
    topk_method: c.topkMethod,
    q_lora_rank: c.qLoraRank === 0 ? null : c.qLoraRank,
    kv_lora_rank: c.kvLoraRank,
    qk_nope_head_dim: c.qkNopeHeadDim,
    qk_rope_head_dim: c.qkRopeHeadDim,
    v_head_dim: c.vHeadDim,
    rope_theta: c.ropeTheta,
    rope_scaling:
      y === null
        ? null
        : {
            type: 'yarn',
            factor: y.factor,
            original_max_position_embeddings: y.originalMaxPositionEmbeddings,
            beta_fast: y.betaFast,
            beta_slow: y.betaSlow,
            mscale: y.mscale,
            mscale_all_dim: y.mscaleAllDim,
          },
    max_position_embeddings: c.maxPositionEmbeddings,
    rms_norm_eps: c.rmsNormEps,
    hidden_act: 'silu',
    num_nextn_predict_layers: c.numNextnPredictLayers,
    tie_word_embeddings: false,
    attention_bias: false,
    attention_dropout: 0.0,
    bos_token_id: c.bosTokenId,
    eos_token_id: c.eosTokenId,
    torch_dtype: torchDtype,
  };
}

// ---------------------------------------------------------------------------------------------
// Derived quantities (SPEC §1.3)

/** qk_head_dim = qk_nope_head_dim + qk_rope_head_dim. */
export function qkHeadDim(c: ModelConfig): number {
  return c.qkNopeHeadDim + c.qkRopeHeadDim;
}

/** Layer i (main 0..L−1, or MTP L+k) is dense iff i < first_k_dense_replace. */
export function isDenseLayer(c: ModelConfig, layer: number): boolean {
  return layer < c.firstKDenseReplace;
}

/** The router has `e_score_correction_bias` iff topk_method is "noaux_tc" (never decided by `dim == 7168`). */
export function hasRouterBias(c: ModelConfig): boolean {
  return c.topkMethod === 'noaux_tc';
}

// ---------------------------------------------------------------------------------------------
// Parameter counts (SPEC §2.3)

/** Parameter counts of a config, by part. Scales (`weight_scale_inv`) are never parameters. */
export interface ParameterCount {
  /** Main model: embedding + L blocks + final norm + lm_head (671,026,419,200 for V3). */
  total: number;
  /**
   * Parameters one token uses in the main model: embedding and head matrices in full (the
   * convention of the paper's "37B"), every attention, norm and dense MLP, each MoE layer's router
   * (+ bias), K routed experts and the shared experts. 37,552,297,472 for V3.
   */
  activatedPerToken: number;
  /** activatedPerToken without the embedding matrix (only one row of it is read per token). */
  activatedPerTokenExcludingEmbedding: number;
  embedding: number;
  lmHead: number;
  finalNorm: number;
  /** One layer's MLA: q (q_a_proj, q_a_layernorm, q_b_proj, or q_proj), kv_a_proj_with_mqa, kv_a_layernorm, kv_b_proj, o_proj. */
  attentionPerLayer: number;
  /** input_layernorm + post_attention_layernorm of one block. */
  blockNormsPerLayer: number;
  /** One dense SwiGLU MLP. */
  denseMlp: number;
  /** One routed expert (and, times n_shared_experts, the shared MLP). */
  expert: number;
  /** One MoE layer's MLP: router weight + bias (if any) + routed + shared experts. */
  moeLayerMlp: number;
  denseLayers: number;
  moeLayers: number;
  /** All MTP modules, without the duplicated embed/head copies (11,610,068,224 for V3). */
  mtp: number;
  /** All MTP modules with their stored `embed_tokens` and `shared_head.head` copies (13,463,426,304 for V3). */
  mtpWithDuplicates: number;
  /** Everything the HF checkpoint stores (684,489,845,504 for V3). */
  checkpointTotal: number;
  /** Entries of all `weight_scale_inv` tensors if every Linear except router, eh_proj and head is FP8 (41,540,496 for V3). */
  fp8ScaleEntries: number;
}

/** Counts parameters by formula (SPEC §2.1–2.3); independent of the weight-name listing. */
export function countParameters(c: ModelConfig): ParameterCount {
  const d = c.hiddenSize;
  const H = c.numAttentionHeads;
  const qk = qkHeadDim(c);
  const C = c.kvLoraRank;
  const R = c.qkRopeHeadDim;
  const blocks = (out: number, inn: number): number => Math.ceil(out / 128) * Math.ceil(inn / 128);
  // [out, in] of every FP8-able linear of one layer's attention
  const attnLinears: [number, number][] = [
    ...(c.qLoraRank > 0 ? ([[c.qLoraRank, d], [H * qk, c.qLoraRank]] as [number, number][]) : ([[H * qk, d]] as [number, number][])),
    [C + R, d],
    [H * (qk - R + c.vHeadDim), C],
    [d, H * c.vHeadDim],
  ];
  const attentionPerLayer = attnLinears.reduce((s, [o, i]) => s + o * i, 0) + (c.qLoraRank > 0 ? c.qLoraRank : 0) + C;
  const blockNormsPerLayer = 2 * d;
  const denseMlp = 3 * d * c.intermediateSize;
  const expert = 3 * d * c.moeIntermediateSize;
  const router = c.nRoutedExperts * d + (hasRouterBias(c) ? c.nRoutedExperts : 0);
  const moeLayerMlp = router + (c.nRoutedExperts + c.nSharedExperts) * expert;
  const activeMoe = router + (c.numExpertsPerTok + c.nSharedExperts) * expert;
  const L = c.numHiddenLayers;
  const denseLayers = c.firstKDenseReplace;
  const moeLayers = L - denseLayers;
  const embedding = c.vocabSize * d;
  const lmHead = c.vocabSize * d;
  const finalNorm = d;
  const blocksTotal = L * (attentionPerLayer + blockNormsPerLayer) + denseLayers * denseMlp + moeLayers * moeLayerMlp;
  const total = embedding + lmHead + finalNorm + blocksTotal;
  const activatedPerToken = embedding + lmHead + finalNorm + L * (attentionPerLayer + blockNormsPerLayer) + denseLayers * denseMlp + moeLayers * activeMoe;
  // MTP layer k has index L + k and follows the dense/MoE rule; + enorm, hnorm, eh_proj [d, 2d], shared_head.norm
  let mtp = 0;
  let fp8ScaleEntries = 0;
  const mlpScales = (inter: number): number => 2 * blocks(inter, d) + blocks(d, inter);
  const layerScales = (i: number): number =>
    attnLinears.reduce((s, [o, inn]) => s + blocks(o, inn), 0) +
    (isDenseLayer(c, i) ? mlpScales(c.intermediateSize) : c.nRoutedExperts * mlpScales(c.moeIntermediateSize) + (c.nSharedExperts > 0 ? mlpScales(c.nSharedExperts * c.moeIntermediateSize) : 0));
  for (let i = 0; i < L + c.numNextnPredictLayers; i++) fp8ScaleEntries += layerScales(i);
  for (let k = 0; k < c.numNextnPredictLayers; k++) {
    mtp += 2 * d + 2 * d * d + attentionPerLayer + blockNormsPerLayer + (isDenseLayer(c, L + k) ? denseMlp : moeLayerMlp) + d;
  }
  const mtpWithDuplicates = mtp + c.numNextnPredictLayers * (embedding + lmHead);
  return {
    total,
    activatedPerToken,
    activatedPerTokenExcludingEmbedding: activatedPerToken - embedding,
    embedding,
    lmHead,
    finalNorm,
    attentionPerLayer,
    blockNormsPerLayer,
    denseMlp,
    expert,
    moeLayerMlp,
    denseLayers,
    moeLayers,
    mtp,
    mtpWithDuplicates,
    checkpointTotal: total + mtpWithDuplicates,
    fp8ScaleEntries,
  };
}
