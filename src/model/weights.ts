/**
 * Model weights by Hugging Face checkpoint name (SPEC §2): the parameter listing of a config,
 * seeded initialisation (SPEC §5.9), loading from safetensors tensors (FP8 dequantised, BF16/F16
 * widened) with a by-name report of every mismatch, and saving back to safetensors tensors.
 */
import type { ModelConfig } from './config.js';
import { hasRouterBias, isDenseLayer, qkHeadDim } from './config.js';
import { Tensor, allocate, numel, type DType } from '../tensor.js';
import { Random } from '../random.js';
import { WeightsError } from '../errors.js';
import type { SafetensorsFile, SafetensorsTensor } from '../io/safetensors.js';
import { fromFloatArray, parseSafetensors, tensorToFloat32, toFloatTensor } from '../io/safetensors.js';
import { configFromHFWithWarnings } from './config.js';
import { dequantizeBlockFp8, fp8ScaleShape, quantizeBlockFp8 } from '../io/numeric.js';
import { checkDType, checkMemory, estimateMemory, resolveMaxBytes, scanLoadedWeights, type NonFinitePolicy } from './guards.js';

/** Weights (or gradients) keyed by exact HF names, all in the model's precision. */
export type ModelWeights = Map<string, Tensor>;

/** One parameter of the model. */
export interface ParameterSpec {
  /** HF checkpoint name, e.g. `model.layers.3.self_attn.kv_b_proj.weight`. */
  name: string;
  shape: number[];
  /** SPEC §5.9: matrices normal(0, std), RMSNorm weights 1, router bias 0. */
  init: 'normal' | 'ones' | 'zeros';
  /** false only for `e_score_correction_bias` (updated by the load-balancing rule, not by gradients). */
  trainable: boolean;
}

const matrix = (name: string, out: number, inn: number): ParameterSpec => ({ name, shape: [out, inn], init: 'normal', trainable: true });
const norm = (name: string, n: number): ParameterSpec => ({ name, shape: [n], init: 'ones', trainable: true });

function mlpSpecs(prefix: string, d: number, inter: number): ParameterSpec[] {
  return [matrix(`${prefix}.gate_proj.weight`, inter, d), matrix(`${prefix}.up_proj.weight`, inter, d), matrix(`${prefix}.down_proj.weight`, d, inter)];
}

/** The tensors of Transformer block `i` (main layer, or MTP layer L+k), in module order. */
function blockSpecs(c: ModelConfig, i: number): ParameterSpec[] {
  const p = `model.layers.${i}`;
  const d = c.hiddenSize;
  const H = c.numAttentionHeads;
  const specs: ParameterSpec[] = [norm(`${p}.input_layernorm.weight`, d)];
  if (c.qLoraRank > 0) {
    specs.push(matrix(`${p}.self_attn.q_a_proj.weight`, c.qLoraRank, d), norm(`${p}.self_attn.q_a_layernorm.weight`, c.qLoraRank));
    specs.push(matrix(`${p}.self_attn.q_b_proj.weight`, H * qkHeadDim(c), c.qLoraRank));
  } else {
    specs.push(matrix(`${p}.self_attn.q_proj.weight`, H * qkHeadDim(c), d));
  }
  specs.push(
    matrix(`${p}.self_attn.kv_a_proj_with_mqa.weight`, c.kvLoraRank + c.qkRopeHeadDim, d), // rows: [latent C | shared k_pe R]
    norm(`${p}.self_attn.kv_a_layernorm.weight`, c.kvLoraRank),
    matrix(`${p}.self_attn.kv_b_proj.weight`, H * (c.qkNopeHeadDim + c.vHeadDim), c.kvLoraRank), // rows of head h: [k_nope | v]
    matrix(`${p}.self_attn.o_proj.weight`, d, H * c.vHeadDim),
    norm(`${p}.post_attention_layernorm.weight`, d),
  );
  if (isDenseLayer(c, i)) {
    specs.push(...mlpSpecs(`${p}.mlp`, d, c.intermediateSize));
  } else {
    specs.push(matrix(`${p}.mlp.gate.weight`, c.nRoutedExperts, d));
    // the bias exists iff topk_method is noaux_tc (the official code's `dim == 7168` test is not used)
    if (hasRouterBias(c)) specs.push({ name: `${p}.mlp.gate.e_score_correction_bias`, shape: [c.nRoutedExperts], init: 'zeros', trainable: false });
    for (let j = 0; j < c.nRoutedExperts; j++) specs.push(...mlpSpecs(`${p}.mlp.experts.${j}`, d, c.moeIntermediateSize));
    if (c.nSharedExperts > 0) specs.push(...mlpSpecs(`${p}.mlp.shared_experts`, d, c.nSharedExperts * c.moeIntermediateSize));
  }
  return specs;
}

/** Name prefix of MTP module k: it is stored as layer num_hidden_layers + k (never a hard-coded 61). */
export function mtpLayerPrefix(c: ModelConfig, k: number): string {
  return `model.layers.${c.numHiddenLayers + k}`;
}

/**
 * Every parameter in a fixed order: embedding, layers 0..L−1 in module order, final norm,
 * lm_head, then MTP layers (enorm, hnorm, eh_proj, block, shared_head.norm). The MTP copies of
 * the embedding and head stored in checkpoints are not parameters (see mtpDuplicateNames).
 */
export function parameterSpecs(c: ModelConfig): ParameterSpec[] {
  const d = c.hiddenSize;
  const specs: ParameterSpec[] = [matrix('model.embed_tokens.weight', c.vocabSize, d)];
  for (let i = 0; i < c.numHiddenLayers; i++) specs.push(...blockSpecs(c, i));
  specs.push(norm('model.norm.weight', d), matrix('lm_head.weight', c.vocabSize, d));
  for (let k = 0; k < c.numNextnPredictLayers; k++) {
    const p = mtpLayerPrefix(c, k);
    specs.push(norm(`${p}.enorm.weight`, d), norm(`${p}.hnorm.weight`, d));
    specs.push(matrix(`${p}.eh_proj.weight`, d, 2 * d)); // input [enorm(emb); hnorm(h)]: embedding first
    specs.push(...blockSpecs(c, c.numHiddenLayers + k));
    specs.push(norm(`${p}.shared_head.norm.weight`, d)); // the MTP module's own final norm, not model.norm
  }
  return specs;
}

/** Checkpoint copies of the shared embedding / head stored with each MTP layer: [copy name, main name]. */
export function mtpDuplicateNames(c: ModelConfig): [string, string][] {
  const out: [string, string][] = [];
  for (let k = 0; k < c.numNextnPredictLayers; k++) {
    const p = mtpLayerPrefix(c, k);
    out.push([`${p}.embed_tokens.weight`, 'model.embed_tokens.weight'], [`${p}.shared_head.head.weight`, 'lm_head.weight']);
  }
  return out;
}

/** Options of initWeights. */
export interface InitWeightsOptions {
  /** Seed of the one Random stream (default 0). */
  seed?: number;
  /** 'float32' (default) or 'float64'. */
  dtype?: DType;
  /** Memory budget in bytes (default: guards.ts defaultMemoryBudget); a config whose weights exceed it is refused before allocating. */
  maxBytes?: number;
  /** Standard deviation of the matrices (SPEC §5.9: 0.006). */
  std?: number;
}

/**
 * Seeded initialisation (SPEC §5.9): every matrix N(0, std²) drawn in parameterSpecs order from
 * one `Random(seed)` stream (so f32 weights are the f64 ones rounded), RMSNorm weights 1, router bias 0.
 */
export function initWeights(c: ModelConfig, opts: InitWeightsOptions = {}): ModelWeights {
  const dtype = checkDType(opts.dtype === undefined ? 'float32' : opts.dtype, 'initWeights');
  checkMemory(estimateMemory(c, dtype, { kind: 'weights' }), resolveMaxBytes(opts.maxBytes, 'initWeights'), 'initWeights');
  const std = opts.std ?? 0.006;
  const rng = new Random(opts.seed ?? 0);
  const weights: ModelWeights = new Map();
  for (const s of parameterSpecs(c)) {
    const data = allocate(dtype, numel(s.shape));
    if (s.init === 'normal') rng.fillNormal(data, std);
    else if (s.init === 'ones') data.fill(1);
    weights.set(s.name, new Tensor(s.shape, data));
  }
  return weights;
}

// ---------------------------------------------------------------------------------------------
// Loading

/** WeightsError with the offending names, by category. */
export class WeightsMismatchError extends WeightsError {
  constructor(
    readonly missing: string[],
    readonly unexpected: string[],
    /** `name: reason` (mis-shaped tensors, bad dtypes, bad or missing FP8 scales). */
    readonly invalid: string[],
    source: string,
  ) {
    const list = (xs: string[]): string => xs.slice(0, 20).join(', ') + (xs.length > 20 ? `, … (${xs.length - 20} more)` : '');
    const parts: string[] = [];
    if (missing.length) parts.push(`${missing.length} missing: ${list(missing)}`);
    if (unexpected.length) parts.push(`${unexpected.length} unexpected: ${list(unexpected)}`);
    if (invalid.length) parts.push(`${invalid.length} invalid: ${list(invalid)}`);
    super(`${source}: weights do not match the config; ${parts.join('; ')}`);
  }
}

/** An FP8 checkpoint tensor as stored: e4m3 codes [rows, cols] and f32 `weight_scale_inv` [⌈rows/128⌉, ⌈cols/128⌉] (SPEC §6.4). */
export interface Fp8Weight {
  codes: Uint8Array;
  scales: Float32Array;
  rows: number;
  cols: number;
}

/** FP8 checkpoint tensors by HF weight name (`….weight`). */
export type Fp8Weights = ReadonlyMap<string, Fp8Weight>;

/** Options of loadWeights. */
export interface LoadWeightsOptions {
  /** Compute dtype of the returned weights: 'float32' (default) or 'float64'. */
  dtype?: DType;
  /** The load-time scan for NaN/±Inf: one entry in `warnings` (default), a WeightsError, or no scan. */
  nonFinite?: NonFinitePolicy;
  /** Names the source in errors (file or directory). */
  source?: string;
}

const FLOAT_DTYPES = new Set(['F64', 'F32', 'F16', 'BF16']);
const shapeStr = (s: readonly number[]): string => `[${s.join(', ')}]`;
const sameShape = (a: readonly number[], b: readonly number[]): boolean => a.length === b.length && a.every((x, i) => x === b[i]);

/** Checkpoint tensors: one map, one parsed file, or the parsed shards of a checkpoint. */
export type WeightsSource = Map<string, SafetensorsTensor> | SafetensorsFile | SafetensorsFile[];

/** One name → tensor map from any WeightsSource; a name in two shards is a WeightsError. */
function mergeTensors(files: WeightsSource, source: string): Map<string, SafetensorsTensor> {
  if (files instanceof Map) return files;
  const list = Array.isArray(files) ? files : [files];
  if (list.length === 1) return list[0]!.tensors;
  const out = new Map<string, SafetensorsTensor>();
  for (const f of list) {
    for (const [name, t] of f.tensors) {
      if (out.has(name)) throw new WeightsMismatchError([], [], [`${name}: present in two files`], source);
      out.set(name, t);
    }
  }
  return out;
}

/**
 * Builds ModelWeights in `dtype` from checkpoint tensors: F8_E4M3 weights are dequantised with
 * their `<name>_scale_inv` (shape checked, SPEC §1.4 rule 10), BF16/F16 widened, F32/F64
 * converted. Missing, unexpected and mis-shaped tensors are all reported by name in one
 * WeightsMismatchError. MTP copies of the embedding/head are accepted, compared with the main
 * tensors (a warning if they differ, SPEC §2.2) and not returned. `fp8` keeps every F8_E4M3 weight as stored
 * (codes and f32 scales), for the FP8 numerics profiles (pass it to `new DeepSeekV3(config, weights, { fp8 })`).
 */
export function loadWeights(
  files: WeightsSource,
  c: ModelConfig,
  opts: LoadWeightsOptions = {},
): { weights: ModelWeights; warnings: string[]; fp8: Fp8Weights } {
  const source = opts.source ?? '<tensors>';
  const dtype = checkDType(opts.dtype === undefined ? 'float32' : opts.dtype, 'loadWeights');
  const tensors = mergeTensors(files, source);
  const missing: string[] = [];
  const invalid: string[] = [];
  const warnings: string[] = [];
  const used = new Set<string>();
  const weights: ModelWeights = new Map();
  const fp8 = new Map<string, Fp8Weight>();

  const decode = (name: string, shape: number[]): Tensor | null => {
    const t = tensors.get(name);
    if (t === undefined) {
      missing.push(name);
      return null;
    }
    used.add(name);
    if (!sameShape(t.shape, shape)) {
      invalid.push(`${name}: shape ${shapeStr(t.shape)}, expected ${shapeStr(shape)}`);
      return null;
    }
    if (FLOAT_DTYPES.has(t.dtype)) return toFloatTensor(t, dtype, name);
    if (t.dtype !== 'F8_E4M3' || shape.length !== 2) {
      invalid.push(`${name}: dtype ${t.dtype} is not a float format`);
      return null;
    }
    const scaleName = `${name}_scale_inv`;
    const s = tensors.get(scaleName);
    if (s === undefined) {
      invalid.push(`${name}: F8_E4M3 weight without ${scaleName}`);
      return null;
    }
    used.add(scaleName);
    const [rows, cols] = shape as [number, number];
    const want = fp8ScaleShape(rows, cols);
    if (!sameShape(s.shape, want)) {
      invalid.push(`${scaleName}: shape ${shapeStr(s.shape)}, expected ${shapeStr(want)} = [ceil(${rows}/128), ceil(${cols}/128)]`);
      return null;
    }
    if (!FLOAT_DTYPES.has(s.dtype)) {
      invalid.push(`${scaleName}: dtype ${s.dtype} is not a float format`);
      return null;
    }
    const scales = tensorToFloat32(s, scaleName);
    fp8.set(name, { codes: t.bytes, scales, rows, cols });
    return new Tensor(shape, dequantizeBlockFp8(t.bytes, scales, rows, cols, 128, dtype));
  };

  for (const spec of parameterSpecs(c)) {
    const t = decode(spec.name, spec.shape);
    if (t !== null) weights.set(spec.name, t);
  }
  for (const [copy, main] of mtpDuplicateNames(c)) {
    if (!tensors.has(copy)) continue; // the copies are optional: the main tensors are what the model uses
    const t = decode(copy, [c.vocabSize, c.hiddenSize]);
    const m = weights.get(main);
    if (t !== null && m !== undefined && !t.data.every((v, i) => Object.is(v, m.data[i]))) {
      warnings.push(`${copy} differs from ${main}; using ${main} (the embedding and head are shared, SPEC §2.2)`);
    }
  }
  const unexpected = [...tensors.keys()].filter((n) => !used.has(n));
  if (missing.length || unexpected.length || invalid.length) throw new WeightsMismatchError(missing, unexpected, invalid, source);
  scanLoadedWeights(weights, opts.nonFinite, source, warnings);
  for (const [copy] of mtpDuplicateNames(c)) fp8.delete(copy);
  return { weights, warnings, fp8 };
}

/** Checks that `weights` holds exactly the parameters of `c` with the right shapes (WeightsMismatchError otherwise). */
export function checkWeights(c: ModelConfig, weights: ModelWeights, source = '<weights>'): void {
  const specs = parameterSpecs(c);
  const names = new Set(specs.map((s) => s.name));
  const missing = specs.filter((s) => !weights.has(s.name)).map((s) => s.name);
  const invalid = specs
    .filter((s) => weights.has(s.name) && !sameShape(weights.get(s.name)!.shape, s.shape))
    .map((s) => `${s.name}: shape ${shapeStr(weights.get(s.name)!.shape)}, expected ${shapeStr(s.shape)}`);
  const unexpected = [...weights.keys()].filter((n) => !names.has(n));
  if (missing.length || unexpected.length || invalid.length) throw new WeightsMismatchError(missing, unexpected, invalid, source);
}

// ---------------------------------------------------------------------------------------------
// Saving

/** Options of saveWeights. */
export interface SaveWeightsOptions {
  /** Storage dtype of the weights. The router bias is F32 when this is BF16/F16 (as in the real checkpoint). */
  dtype: 'F32' | 'F64' | 'BF16' | 'F16';
  /** Store every Linear weight of attention, MLPs and experts as F8_E4M3 + F32 `weight_scale_inv` (128×128 blocks), as the V3 checkpoint does. */
  fp8?: boolean;
}

const STORAGE_DTYPES: readonly string[] = ['F32', 'F64', 'BF16', 'F16'];

/** TypeError unless `opts.dtype` is a safetensors storage dtype and `opts.fp8` a boolean (or absent). */
export function checkStorageOptions(opts: { dtype?: unknown; fp8?: unknown }, where: string): void {
  if (!STORAGE_DTYPES.includes(opts.dtype as string)) {
    const got = typeof opts.dtype === 'string' ? `'${opts.dtype}'` : String(opts.dtype);
    throw new TypeError(`${where}: dtype is the storage format, one of ${STORAGE_DTYPES.map((d) => `'${d}'`).join(', ')} (safetensors names), got ${got}`);
  }
  if (opts.fp8 !== undefined && typeof opts.fp8 !== 'boolean') throw new TypeError(`${where}: fp8 must be a boolean, got ${String(opts.fp8)}`);
}

/** Linear weights the V3 checkpoint stores in FP8 (not the router, eh_proj, embedding or head). */
const FP8_LINEAR = /\.(q_a_proj|q_b_proj|q_proj|kv_a_proj_with_mqa|kv_b_proj|o_proj|gate_proj|up_proj|down_proj)\.weight$/;

/**
 * Checkpoint tensors for `weights` (pass to serializeSafetensors), with the MTP copies of the
 * embedding and head that HF checkpoints carry.
 */
export function saveWeights(c: ModelConfig, weights: ModelWeights, opts: SaveWeightsOptions): Map<string, SafetensorsTensor> {
  checkStorageOptions(opts, 'saveWeights');
  checkWeights(c, weights);
  const out = new Map<string, SafetensorsTensor>();
  for (const spec of parameterSpecs(c)) {
    const t = weights.get(spec.name)!;
    if (opts.fp8 && FP8_LINEAR.test(spec.name)) {
      const [rows, cols] = spec.shape as [number, number];
      const { q, scaleInv } = quantizeBlockFp8(t.data, rows, cols);
      out.set(spec.name, { dtype: 'F8_E4M3', shape: [...spec.shape], bytes: q });
      out.set(`${spec.name}_scale_inv`, fromFloatArray(scaleInv, fp8ScaleShape(rows, cols), 'F32'));
    } else {
      const narrow = opts.dtype === 'BF16' || opts.dtype === 'F16';
      const dtype = spec.init === 'zeros' && narrow ? 'F32' : opts.dtype;
      out.set(spec.name, fromFloatArray(t.data, spec.shape, dtype));
    }
  }
  for (const [copy, main] of mtpDuplicateNames(c)) out.set(copy, { ...out.get(main)!, shape: [...out.get(main)!.shape] });
  return out;
}

/**
 * Browser-safe model loading from bytes: a parsed `config.json` object and the bytes of
 * `model.safetensors` (or of every shard). Returns the validated config, the weights and all warnings.
 */
export function loadModelFromBytes(
  configJson: unknown,
  files: { name: string; bytes: Uint8Array }[],
  opts: { dtype?: DType; nonFinite?: NonFinitePolicy; maxBytes?: number } = {},
): { config: ModelConfig; weights: ModelWeights; warnings: string[]; fp8: Fp8Weights } {
  const { config, warnings } = configFromHFWithWarnings(configJson);
  const need = estimateMemory(config, checkDType(opts.dtype === undefined ? 'float32' : opts.dtype, 'loadModelFromBytes'), { kind: 'weights' }, files.reduce((s, f) => s + f.bytes.byteLength, 0));
  checkMemory(need, resolveMaxBytes(opts.maxBytes, 'loadModelFromBytes'), 'loadModelFromBytes');
  const parsed = files.map((f) => parseSafetensors(f.bytes, f.name));
  const { weights, warnings: w2, fp8 } = loadWeights(parsed, config, { ...opts, source: files.map((f) => f.name).join(', ') });
  return { config, weights, warnings: [...warnings, ...w2], fp8 };
}
