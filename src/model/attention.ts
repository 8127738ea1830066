/**
 * Multi-head Latent Attention (SPEC §3.6), both paths, forward and backward.
 *
 * Notation: B batch, S new tokens, d hidden, H heads, n = qk_nope_head_dim, R = qk_rope_head_dim,
 * V = v_head_dim, C = kv_lora_rank, qr = q_lora_rank, T = key length, τ = softmaxScale(config).
 * Query-side head tensors are kept head-major, [B, H, S, ·], so each (b, h) is one contiguous
 * slab for the batched matmuls.
 *
 * Trace hooks (when `opts.trace` is set; prefix defaults to `self_attn`):
 * - `${prefix}.q_a_layernorm:out` [B, S, qr]   (only with q LoRA)
 * - `${prefix}:q`                 [B, S, H, n+R] q_b_proj / q_proj output, before RoPE
 * - `${prefix}.kv_a_layernorm:out` [B, S, C]   ĉ of the new tokens
 * - `${prefix}:q_pe`              [B, S, H, R]  after RoPE
 * - `${prefix}:k_pe`              [B, S, R]     shared RoPE key of the new tokens, after RoPE
 * - `${prefix}.kv_b_proj:out`     [B, S, H, n+V] (naive path only)
 * - `${prefix}:attn_scores`       [B, H, S, T]  τ·q·k before softmax, masked entries −∞
 * - `${prefix}:attn_probs`        [B, H, S, T]
 * - `${prefix}:o`                 [B, S, H·V]   head outputs, the input of o_proj
 * - `${prefix}:out`               [B, S, d]
 */
import { InputError, ShapeError, WeightsError } from '../errors.js';
import { kernelsFor } from '../kernels/index.js';
import { linearBackward, linearForward, type LinearGemm, type LinearSite } from '../ops/linear.js';
import { allocate, dtypeOf, Tensor, type DType, type FloatArray } from '../tensor.js';
import type { ModelConfig } from './config.js';
import type { MLACache } from './kv_cache.js';
import { rmsnormBackward, rmsnormForward } from './rmsnorm.js';
import { softmaxScale, type RopeTables } from './rope.js';
import type { TraceFn } from './trace.js';

/** The weights of one MLA module (HF names, without `.weight`); the same record holds gradients. */
export interface MLAWeights {
  /** [H·(n+R), d], only when q_lora_rank = 0. */
  q_proj?: Tensor;
  /** [qr, d]. */
  q_a_proj?: Tensor;
  /** [qr]. */
  q_a_layernorm?: Tensor;
  /** [H·(n+R), qr]. */
  q_b_proj?: Tensor;
  /** [C+R, d], rows 0..C−1 the latent and C..C+R−1 the shared RoPE key. */
  kv_a_proj_with_mqa: Tensor;
  /** [C]. */
  kv_a_layernorm: Tensor;
  /** [H·(n+V), C], the rows of head h being [k_nope (n) | v (V)]. */
  kv_b_proj: Tensor;
  /** [d, H·V]. */
  o_proj: Tensor;
}

/** Which attention path computes the scores: `naive` (per-head K, V) or `absorb` (kv_b_proj folded into q and o). */
export type AttnImpl = 'naive' | 'absorb';

/** Options of {@link mlaForward}. */
export interface MLAOptions {
  /** Absolute position of the first new token (= tokens already in the cache). */
  startPos: number;
  rope: RopeTables;
  attn: AttnImpl;
  /** This layer's cache; its kind must match `attn`. */
  cache?: MLACache;
  /** Keep what {@link mlaBackward} needs (cache-free calls only). */
  save?: boolean;
  trace?: TraceFn;
  /** Module path for trace names, e.g. `model.layers.3.self_attn`. */
  prefix?: string;
  /** GEMMs of the projections (q_a/q_b/q, kv_a, kv_b, o_proj); the attention core stays exact. Default exact. */
  gemm?: LinearGemm;
}

/** The Linear call site of projection `proj` under `prefix` (undefined: exact). */
function projSite(gemm: LinearGemm | undefined, prefix: string, proj: string): LinearSite | undefined {
  return gemm !== undefined ? { gemm, name: `${prefix}.${proj}` } : undefined;
}

/**
 * What the forward keeps for the backward (naive form; both paths compute the same function,
 * so an absorbed forward also builds the naive k_nope and V when saving). `x` is referenced, not
 * copied: the caller must not overwrite it before the backward. Q = [q_nope ; q_pe] and
 * K = [k_nope ; k_pe] are kept as their two parts (k_pe once per token, not per head).
 */
export interface MLASaved {
  B: number;
  S: number;
  startPos: number;
  rope: RopeTables;
  /** x: [B, S, d]. */
  x: FloatArray;
  /** c^Q = x·W_qaᵀ [B·S, qr] and its rstd [B·S] (q LoRA only). */
  cq: FloatArray | null;
  rstdQ: FloatArray | null;
  /** q_a_layernorm(c^Q) [B·S, qr], the input of q_b_proj (q LoRA only). */
  cqn: FloatArray | null;
  /** latent c before kv_a_layernorm [B·S, C] and its rstd [B·S]. */
  latent: FloatArray;
  rstdKv: FloatArray;
  /** ĉ = kv_a_layernorm(c) [B·S, C], the input of kv_b_proj. */
  cHat: FloatArray;
  /** q_nope [B, H, S, n]. */
  qNope: FloatArray;
  /** RoPE(q_pe) [B, H, S, R]. */
  qPe: FloatArray;
  /** k_nope [B, H, S, n]. */
  kNope: FloatArray;
  /** RoPE(k_pe) [B, S, R], the one rope key of each token, shared by every head. */
  kPe: FloatArray;
  /** values [B, H, S, V]. */
  Vh: FloatArray;
  /** softmax probabilities [B, H, S, S]. */
  P: FloatArray;
  /** head outputs flattened [B·S, H·V], the input of o_proj. */
  oFlat: FloatArray;
  /** The projections' GEMM mode and the module path, as the forward ran them. */
  gemm?: LinearGemm;
  prefix: string;
}

/** A strided 4-D view: element (b, h, s, j) is at off + b·sb + h·sh + s·ss + j. */
interface View {
  data: FloatArray;
  off: number;
  sb: number;
  sh: number;
  ss: number;
}

/** dst(b,h,s,0:w) (+)= src(b,h,s,0:w) for b<B, h<H, s<S: all the layout changes of this file. */
function copyBlocks(src: View, dst: View, B: number, H: number, S: number, w: number, add = false): void {
  const a = src.data;
  const c = dst.data;
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      for (let s = 0; s < S; s++) {
        const i = src.off + b * src.sb + h * src.sh + s * src.ss;
        const o = dst.off + b * dst.sb + h * dst.sh + s * dst.ss;
        if (add) for (let j = 0; j < w; j++) c[o + j] = c[o + j]! + a[i + j]!;
        else for (let j = 0; j < w; j++) c[o + j] = a[i + j]!;
      }
    }
  }
}

/** View of [B, H, S, width] (head-major) at column `off`. */
function headMajor(data: FloatArray, off: number, width: number, H: number, S: number): View {
  return { data, off, sb: H * S * width, sh: S * width, ss: width };
}

/**
 * View of [B, Tcap, H, width] (token-major, the layout of projections and caches) at column
 * `off`; H = 0 makes a head-broadcast view of [B, Tcap, width].
 */
function tokenMajor(data: FloatArray, off: number, width: number, H: number, Tcap: number): View {
  const row = Math.max(H, 1) * width;
  return { data, off, sb: Tcap * row, sh: H === 0 ? 0 : width, ss: row };
}

/** Dimensions used throughout; T is the key length of the call. */
interface Dims {
  d: number;
  H: number;
  n: number;
  R: number;
  V: number;
  C: number;
  qr: number;
  qk: number;
}

function dimsOf(config: ModelConfig): Dims {
  const n = config.qkNopeHeadDim;
  const R = config.qkRopeHeadDim;
  return { d: config.hiddenSize, H: config.numAttentionHeads, n, R, V: config.vHeadDim, C: config.kvLoraRank, qr: config.qLoraRank, qk: n + R };
}

function checkTensor(what: string, name: string, t: Tensor | undefined, shape: readonly number[], dtype: DType): Tensor {
  if (t === undefined) throw new WeightsError(`MLA ${what}: missing '${name}' (expected shape [${shape.join(', ')}])`);
  if (t.shape.length !== shape.length || t.shape.some((v, i) => v !== shape[i])) {
    throw new ShapeError(`MLA ${what}: '${name}' has shape [${t.shape.join(', ')}], expected [${shape.join(', ')}]`);
  }
  if (t.dtype !== dtype) throw new ShapeError(`MLA ${what}: '${name}' is ${t.dtype}, the activations are ${dtype}`);
  return t;
}

/** Checks every tensor of an MLA weight (or gradient) record against the config. */
function checkMLAWeights(config: ModelConfig, w: MLAWeights, dtype: DType, what: string): void {
  const { d, H, R, V, C, qr, qk, n } = dimsOf(config);
  if (qr > 0) {
    checkTensor(what, 'q_a_proj', w.q_a_proj, [qr, d], dtype);
    checkTensor(what, 'q_a_layernorm', w.q_a_layernorm, [qr], dtype);
    checkTensor(what, 'q_b_proj', w.q_b_proj, [H * qk, qr], dtype);
  } else {
    checkTensor(what, 'q_proj', w.q_proj, [H * qk, d], dtype);
  }
  checkTensor(what, 'kv_a_proj_with_mqa', w.kv_a_proj_with_mqa, [C + R, d], dtype);
  checkTensor(what, 'kv_a_layernorm', w.kv_a_layernorm, [C], dtype);
  checkTensor(what, 'kv_b_proj', w.kv_b_proj, [H * (n + V), C], dtype);
  checkTensor(what, 'o_proj', w.o_proj, [d, H * V], dtype);
}

/**
 * Collects the MLA weights of one layer from a checkpoint map; `prefix` is like
 * `model.layers.3.self_attn`. The query path is q LoRA iff `${prefix}.q_a_proj.weight` exists.
 */
export function mlaWeightsFrom(weights: ReadonlyMap<string, Tensor>, prefix: string): MLAWeights {
  const get = (name: string): Tensor => {
    const t = weights.get(`${prefix}.${name}.weight`);
    if (t === undefined) throw new WeightsError(`missing tensor '${prefix}.${name}.weight'`);
    return t;
  };
  const w: MLAWeights = {
    kv_a_proj_with_mqa: get('kv_a_proj_with_mqa'),
    kv_a_layernorm: get('kv_a_layernorm'),
    kv_b_proj: get('kv_b_proj'),
    o_proj: get('o_proj'),
  };
  if (weights.has(`${prefix}.q_a_proj.weight`)) {
    w.q_a_proj = get('q_a_proj');
    w.q_a_layernorm = get('q_a_layernorm');
    w.q_b_proj = get('q_b_proj');
  } else {
    w.q_proj = get('q_proj');
  }
  return w;
}

/** A zero-filled record with the shapes and precision of `w` (gradient buffers for {@link mlaBackward}). */
export function zerosLikeMLAWeights(w: MLAWeights): MLAWeights {
  const z = (t: Tensor): Tensor => Tensor.zeros(t.shape, t.dtype);
  const g: MLAWeights = { kv_a_proj_with_mqa: z(w.kv_a_proj_with_mqa), kv_a_layernorm: z(w.kv_a_layernorm), kv_b_proj: z(w.kv_b_proj), o_proj: z(w.o_proj) };
  if (w.q_proj) g.q_proj = z(w.q_proj);
  if (w.q_a_proj) g.q_a_proj = z(w.q_a_proj);
  if (w.q_a_layernorm) g.q_a_layernorm = z(w.q_a_layernorm);
  if (w.q_b_proj) g.q_b_proj = z(w.q_b_proj);
  return g;
}

/** Positions of rows laid out [B, H, S] (or [B, S] with H = 1): p = startPos + s. */
function positions(B: number, H: number, S: number, startPos: number): Int32Array {
  const pos = new Int32Array(B * H * S);
  for (let r = 0; r < B * H; r++) for (let s = 0; s < S; s++) pos[r * S + s] = startPos + s;
  return pos;
}

/** Per-head keys and values of the new tokens from kv [B, S, H, n+V] (head h = [k_nope | v]): k_nope [B,H,S,n], V [B,H,S,V]. */
function naiveKV(dm: Dims, B: number, S: number, kv: FloatArray): { kNope: FloatArray; Vh: FloatArray } {
  const { H, n, V } = dm;
  const dtype = dtypeOf(kv);
  const kNope = allocate(dtype, B * H * S * n);
  const Vh = allocate(dtype, B * H * S * V);
  copyBlocks(tokenMajor(kv, 0, n + V, H, S), headMajor(kNope, 0, n, H, S), B, H, S, n);
  copyBlocks(tokenMajor(kv, n, n + V, H, S), headMajor(Vh, 0, V, H, S), B, H, S, V);
  return { kNope, Vh };
}

/**
 * scores[b, h] += q_pe[b, h]·k_pe[b]ᵀ for keys t < T: k_pe [B, Tcap, R] is shared by the heads, so each batch
 * row is one [H·S, R]·[T, R]ᵀ matmul (no per-head copy of k_pe).
 */
function addRopeScores(dm: Dims, B: number, S: number, T: number, Tcap: number, qPe: FloatArray, kPe: FloatArray, scores: FloatArray): void {
  const { H, R } = dm;
  const k = kernelsFor(dtypeOf(qPe));
  for (let b = 0; b < B; b++) {
    const qP = qPe.subarray(b * H * S * R, (b + 1) * H * S * R);
    const kP = kPe.subarray(b * Tcap * R, (b * Tcap + T) * R);
    k.matmul('nt', qP, kP, scores.subarray(b * H * S * T, (b + 1) * H * S * T), H * S, T, R, true);
  }
}

/**
 * scores [rows, S, T] ← τ·scores, then −∞ for the masked keys: in row s, keys t ≥ s + offset + 1 (the causal mask,
 * offset = query position − key position of index 0).
 */
function scaleAndMask(scores: FloatArray, rows: number, S: number, T: number, tau: number, offset: number): void {
  for (let r = 0; r < rows; r++) {
    for (let s = 0; s < S; s++) {
      const o = (r * S + s) * T;
      const visible = Math.max(0, Math.min(T, s + offset + 1)); // keys 0..visible−1
      for (let t = 0; t < visible; t++) scores[o + t] = scores[o + t]! * tau;
      scores.fill(-Infinity, o + visible, o + T); // two branch-free loops: the mask is a prefix per row
    }
  }
}

/** Query rows per block of {@link causalAttention}. */
const QUERY_BLOCK = 32;

/**
 * Cache-free causal attention o = softmax(τ·QKᵀ + mask)·V, Q = [q_nope ; q_pe], K = [k_nope ; k_pe], by blocks of
 * query rows: block [s0, s1) attends over keys [0, s1) only (key t is visible from query s iff t ≤ s), so the
 * score matmuls, the softmax and P·V skip most of the masked half (those keys have probability exactly 0: same
 * result). Inputs head-major as in {@link mlaForward}; writes the head outputs into oFlat [B, S, H·V].
 */
function causalAttention(
  dm: Dims,
  B: number,
  S: number,
  tau: number,
  qNope: FloatArray,
  qPe: FloatArray,
  kNope: FloatArray,
  kPe: FloatArray,
  Vh: FloatArray,
  oFlat: FloatArray,
): void {
  const { H, n, R, V } = dm;
  const dtype = dtypeOf(qNope);
  const k = kernelsFor(dtype);
  for (let s0 = 0; s0 < S; s0 += QUERY_BLOCK) {
    const Sb = Math.min(QUERY_BLOCK, S - s0);
    const T = s0 + Sb; // keys 0..T−1
    // the block's query rows [B, H, Sb, ·] (contiguous per (b, h) for the batched matmuls)
    const qN = allocate(dtype, B * H * Sb * n);
    const qP = allocate(dtype, B * H * Sb * R);
    copyBlocks(headMajor(qNope, s0 * n, n, H, S), headMajor(qN, 0, n, H, Sb), B, H, Sb, n);
    copyBlocks(headMajor(qPe, s0 * R, R, H, S), headMajor(qP, 0, R, H, Sb), B, H, Sb, R);
    // A = q_nope·k_nopeᵀ + q_pe·k_peᵀ over the first T keys (slab stride S·n of the keys)
    const P = allocate(dtype, B * H * Sb * T);
    k.matmulBatched('nt', qN, kNope, P, B * H, Sb, T, n, false, S * n);
    addRopeScores(dm, B, Sb, T, S, qP, kPe, P);
    scaleAndMask(P, B * H, Sb, T, tau, s0);
    k.softmaxForward(P, P, B * H * Sb, T);
    // o = P·v over the first T values, into the block's rows of oFlat
    const O = allocate(dtype, B * H * Sb * V);
    k.matmulBatched('nn', P, Vh, O, B * H, Sb, V, T, false, S * V);
    copyBlocks(headMajor(O, 0, V, H, Sb), tokenMajor(oFlat, s0 * H * V, V, H, S), B, H, Sb, V);
  }
}

/** Transposes head-major [B, H, S, w] into token-major [B, S, H, w] for a trace. */
function toTokenMajor(x: FloatArray, B: number, H: number, S: number, w: number): FloatArray {
  const y = allocate(dtypeOf(x), B * H * S * w);
  copyBlocks(headMajor(x, 0, w, H, S), tokenMajor(y, 0, w, H, S), B, H, S, w);
  return y;
}

function checkCache(config: ModelConfig, cache: MLACache, attn: AttnImpl, B: number, dtype: DType): void {
  if (cache.attn !== attn) throw new InputError(`mlaForward: a '${cache.attn}' cache cannot serve the '${attn}' attention path`);
  if (cache.dtype !== dtype) throw new InputError(`mlaForward: the cache is ${cache.dtype}, the activations are ${dtype}`);
  if (cache.batch !== B) throw new InputError(`mlaForward: batch ${B} does not match the cache's batch ${cache.batch}`);
  const ok =
    cache.attn === 'naive'
      ? cache.heads === config.numAttentionHeads && cache.qkHeadDim === config.qkNopeHeadDim + config.qkRopeHeadDim && cache.vHeadDim === config.vHeadDim
      : cache.kvLoraRank === config.kvLoraRank && cache.ropeDim === config.qkRopeHeadDim;
  if (!ok) throw new InputError(`mlaForward: the ${cache.attn} cache was created for other attention dimensions than this config's`);
}

/**
 * MLA forward (SPEC §3.6). x: [B, S, d] → out: [B, S, d]. Query s sits at position
 * p = startPos + s. With a cache, the S new entries are written at [startPos, startPos + S)
 * and the queries attend over keys [0, startPos + S) with the general causal mask
 * t ≤ startPos + s (chunked prefill, decode, speculative verification). Without a cache the
 * keys are the S new tokens (positions startPos..startPos+S−1). `attn` picks the naive or the
 * weight-absorbed path; both compute the same function. With `save`, returns what
 * {@link mlaBackward} needs (cache-free calls only). A naive call without cache, save or trace
 * runs by causal query blocks (see causalAttention); the others build the full [B, H, S, T] scores.
 */
export function mlaForward(
  config: ModelConfig,
  w: MLAWeights,
  x: FloatArray,
  B: number,
  S: number,
  opts: MLAOptions,
): { out: FloatArray; saved: MLASaved | null } {
  const dtype = dtypeOf(x);
  const k = kernelsFor(dtype);
  const dm = dimsOf(config);
  const { d, H, n, R, V, C, qr, qk } = dm;
  const N = B * S;
  const { startPos, rope, attn, cache, trace } = opts;
  const prefix = opts.prefix ?? 'self_attn';
  const save = opts.save === true;
  if (!Number.isInteger(B) || !Number.isInteger(S) || B < 1 || S < 1) throw new ShapeError(`mlaForward: B and S must be positive integers, got B=${B}, S=${S}`);
  if (x.length !== N * d) throw new ShapeError(`mlaForward: x has ${x.length} elements, expected B·S·d = ${B}·${S}·${d}`);
  if (!Number.isInteger(startPos) || startPos < 0) throw new InputError(`mlaForward: startPos must be a non-negative integer, got ${startPos}`);
  if (attn !== 'naive' && attn !== 'absorb') throw new InputError(`mlaForward: unknown attention path '${String(attn)}' (expected 'naive' or 'absorb')`);
  if (startPos + S > rope.maxPositions) throw new InputError(`mlaForward: position ${startPos + S - 1} is beyond the RoPE tables (${rope.maxPositions} positions)`);
  if (rope.halfDim * 2 !== R || dtypeOf(rope.cos) !== dtype) throw new ShapeError(`mlaForward: RoPE tables (${rope.halfDim * 2}-wide, ${dtypeOf(rope.cos)}) do not fit R = ${R}, ${dtype}`);
  if (save && cache) throw new InputError('mlaForward: save (for the backward) is only supported on cache-free calls');
  checkMLAWeights(config, w, dtype, 'weights');
  if (cache) checkCache(config, cache, attn, B, dtype);
  const tau = softmaxScale(config);
  const eps = config.rmsNormEps;

  // ---- query path: q = q_b_proj(q_a_layernorm(q_a_proj(x))) or q_proj(x): [B, S, H, n+R]
  let q: FloatArray;
  let cq: FloatArray | null = null;
  let cqn: FloatArray | null = null;
  let rstdQ: FloatArray | null = null;
  if (qr > 0) {
    cq = linearForward(x, w.q_a_proj!.data, N, qr, d, projSite(opts.gemm, prefix, 'q_a_proj'));
    ({ y: cqn, rstd: rstdQ } = rmsnormForward(cq, w.q_a_layernorm!.data, N, qr, eps));
    trace?.(`${prefix}.q_a_layernorm:out`, [B, S, qr], cqn);
    q = linearForward(cqn, w.q_b_proj!.data, N, H * qk, qr, projSite(opts.gemm, prefix, 'q_b_proj'));
  } else {
    q = linearForward(x, w.q_proj!.data, N, H * qk, d, projSite(opts.gemm, prefix, 'q_proj'));
  }
  trace?.(`${prefix}:q`, [B, S, H, qk], q);
  // split per head into q_nope [B,H,S,n] and q_pe [B,H,S,R]; RoPE on q_pe at p = startPos + s
  const qNope = allocate(dtype, N * H * n);
  const qPe = allocate(dtype, N * H * R);
  copyBlocks(tokenMajor(q, 0, qk, H, S), headMajor(qNope, 0, n, H, S), B, H, S, n);
  copyBlocks(tokenMajor(q, n, qk, H, S), headMajor(qPe, 0, R, H, S), B, H, S, R);
  k.rope(qPe, qPe, rope.cos, rope.sin, positions(B, H, S, startPos), N * H, R, false);
  if (trace) trace(`${prefix}:q_pe`, [B, S, H, R], toTokenMajor(qPe, B, H, S, R));

  // ---- KV path: [c | k_pe] = kv_a_proj_with_mqa(x); ĉ = kv_a_layernorm(c) (the norm sees the latent only)
  const kva = linearForward(x, w.kv_a_proj_with_mqa.data, N, C + R, d, projSite(opts.gemm, prefix, 'kv_a_proj_with_mqa'));
  const latent = allocate(dtype, N * C);
  const kPe = allocate(dtype, N * R);
  copyBlocks(tokenMajor(kva, 0, C + R, 0, S), tokenMajor(latent, 0, C, 0, S), B, 1, S, C);
  copyBlocks(tokenMajor(kva, C, C + R, 0, S), tokenMajor(kPe, 0, R, 0, S), B, 1, S, R);
  const { y: cHat, rstd: rstdKv } = rmsnormForward(latent, w.kv_a_layernorm.data, N, C, eps);
  // the single shared RoPE key, rotated at the same positions as the queries
  k.rope(kPe, kPe, rope.cos, rope.sin, positions(B, 1, S, startPos), N, R, false);
  trace?.(`${prefix}.kv_a_layernorm:out`, [B, S, C], cHat);
  trace?.(`${prefix}:k_pe`, [B, S, R], kPe);

  // keys: with a cache, [0, startPos + S) at positions t; without, the S new tokens at startPos + t
  if (cache) cache.reserve(startPos, S, B);
  const T = cache ? startPos + S : S;
  const keyPos0 = cache ? 0 : startPos;
  let naive: { kNope: FloatArray; Vh: FloatArray } | null = null;
  let vKeys: FloatArray | null = null; // naive path: values [B, H, Tcap, V] (first T rows used)
  let vStride = 0; // Tcap·V
  const kvW = H * (n + V);
  let kv: FloatArray | null = null;
  if (attn === 'naive' || save) {
    // kv = kv_b_proj(ĉ): [B, S, H, n+V], head h = [k_nope | v]
    kv = linearForward(cHat, w.kv_b_proj.data, N, kvW, C, projSite(opts.gemm, prefix, 'kv_b_proj'));
    naive = naiveKV(dm, B, S, kv);
  }

  if (attn === 'naive' && !cache && !save && trace === undefined) {
    // inference without a cache: causal query blocks skip the masked keys (same result, less work)
    const oFlat = allocate(dtype, N * H * V);
    causalAttention(dm, B, S, tau, qNope, qPe, naive!.kNope, kPe, naive!.Vh, oFlat);
    const out = linearForward(oFlat, w.o_proj.data, N, d, H * V, projSite(opts.gemm, prefix, 'o_proj'));
    return { out, saved: null };
  }

  const scores = allocate(dtype, B * H * S * T); // [B, H, S, T]
  const O = allocate(dtype, B * H * S * V); // head outputs [B, H, S, V]
  if (attn === 'naive') {
    trace?.(`${prefix}.kv_b_proj:out`, [B, S, H, n + V], kv!);
    const { kNope, Vh } = naive!;
    if (cache && cache.attn === 'naive') {
      // write k = [k_nope ; k_pe] (k_pe broadcast to every head) and v of the new tokens at [startPos, startPos+S)
      // of the head-major cache, then attend with Q = [q_nope ; q_pe] over its first T rows per (b, h)
      const Tc = cache.maxLen;
      copyBlocks(headMajor(kNope, 0, n, H, S), headMajor(cache.k, startPos * qk, qk, H, Tc), B, H, S, n);
      copyBlocks(tokenMajor(kPe, 0, R, 0, S), headMajor(cache.k, startPos * qk + n, qk, H, Tc), B, H, S, R);
      copyBlocks(headMajor(Vh, 0, V, H, S), headMajor(cache.v, startPos * V, V, H, Tc), B, H, S, V);
      const Q = allocate(dtype, N * H * qk);
      copyBlocks(headMajor(qNope, 0, n, H, S), headMajor(Q, 0, qk, H, S), B, H, S, n);
      copyBlocks(headMajor(qPe, 0, R, H, S), headMajor(Q, n, qk, H, S), B, H, S, R);
      k.matmulBatched('nt', Q, cache.k, scores, B * H, S, T, qk, false, Tc * qk);
      vKeys = cache.v;
      vStride = Tc * V;
    } else {
      // A = Q·Kᵀ = q_nope·k_nopeᵀ + q_pe·k_peᵀ per (b, h): [S, T] (in two parts: no concatenated Q, K to build)
      k.matmulBatched('nt', qNope, kNope, scores, B * H, S, T, n);
      addRopeScores(dm, B, S, T, S, qPe, kPe, scores);
      vKeys = Vh;
      vStride = T * V;
    }
  } else {
    // absorbed: W_kvb viewed as [H, n+V, C]; W_UK[h] = rows 0..n−1, W_UV[h] = rows n..n+V−1
    const Wkvb = w.kv_b_proj.data;
    let keysC = cHat; // ĉ of the keys: [B, Tcap, C]
    let keysR = kPe; // rotated k_pe of the keys: [B, Tcap, R]
    let Tcap = S;
    if (cache && cache.attn === 'absorb') {
      // the latent cache stores ĉ (normalised) and the rotated k_pe of the new tokens at [startPos, startPos+S)
      Tcap = cache.maxLen;
      copyBlocks(tokenMajor(cHat, 0, C, 0, S), tokenMajor(cache.latent, startPos * C, C, 0, Tcap), B, 1, S, C);
      copyBlocks(tokenMajor(kPe, 0, R, 0, S), tokenMajor(cache.kPe, startPos * R, R, 0, Tcap), B, 1, S, R);
      keysC = cache.latent;
      keysR = cache.kPe;
    }
    const qAbs = allocate(dtype, H * S * C); // q̃ of one batch row: [H, S, C]
    for (let b = 0; b < B; b++) {
      const qN = qNope.subarray(b * H * S * n, (b + 1) * H * S * n);
      const cB = keysC.subarray(b * Tcap * C, (b * Tcap + T) * C);
      const sc = scores.subarray(b * H * S * T, (b + 1) * H * S * T);
      // q̃[h] = q_nope[h] · W_UK[h]: [S, n]·[n, C]
      k.matmulBatched('nn', qN, Wkvb, qAbs, H, S, C, n, false, (n + V) * C);
      // A = q̃·ĉᵀ (+ q_pe·k_peᵀ below), rows (h, s): [H·S, T]
      k.matmul('nt', qAbs, cB, sc, H * S, T, C);
    }
    addRopeScores(dm, B, S, T, Tcap, qPe, keysR, scores);
  }

  // scale, then the general causal mask: key t (position keyPos0 + t) is visible iff keyPos0 + t ≤ startPos + s
  scaleAndMask(scores, B * H, S, T, tau, startPos - keyPos0);
  trace?.(`${prefix}:attn_scores`, [B, H, S, T], scores);
  const P = scores;
  k.softmaxForward(scores, P, B * H * S, T);
  trace?.(`${prefix}:attn_probs`, [B, H, S, T], P);

  if (attn === 'naive') {
    // o = P·v per (b, h): [S, T]·[T, V]
    k.matmulBatched('nn', P, vKeys!, O, B * H, S, V, T, false, vStride);
  } else {
    const Tcap = cache ? cache.maxLen : S;
    const keysC = cache && cache.attn === 'absorb' ? cache.latent : cHat;
    const WUV = w.kv_b_proj.data.subarray(n * C);
    const oLat = allocate(dtype, H * S * C); // õ of one batch row: [H, S, C]
    for (let b = 0; b < B; b++) {
      const cB = keysC.subarray(b * Tcap * C, (b * Tcap + T) * C);
      // õ = P·ĉ: [H·S, T]·[T, C]
      k.matmul('nn', P.subarray(b * H * S * T, (b + 1) * H * S * T), cB, oLat, H * S, C, T);
      // o[h] = õ[h]·W_UV[h]ᵀ: [S, C]·[C, V]
      k.matmulBatched('nt', oLat, WUV, O.subarray(b * H * S * V, (b + 1) * H * S * V), H, S, V, C, false, (n + V) * C);
    }
  }

  // u = o_proj(flatten_{h,j} o): o flattened at index h·V + j
  const oFlat = toTokenMajor(O, B, H, S, V);
  trace?.(`${prefix}:o`, [B, S, H * V], oFlat);
  const out = linearForward(oFlat, w.o_proj.data, N, d, H * V, projSite(opts.gemm, prefix, 'o_proj'));
  trace?.(`${prefix}:out`, [B, S, d], out);

  const saved: MLASaved | null = save
    ? { B, S, startPos, rope, x, cq, rstdQ, cqn, latent, rstdKv, cHat, qNope, qPe, kNope: naive!.kNope, kPe, Vh: naive!.Vh, P, oFlat, ...(opts.gemm !== undefined ? { gemm: opts.gemm } : {}), prefix }
    : null;
  return { out, saved };
}

/**
 * MLA backward in the naive form (the absorbed path computes the same function, hence the same
 * gradient). dout: [B, S, d]. ACCUMULATES every weight gradient into `grads` (zeroed by the
 * caller, same shapes as `w`) and returns dx [B, S, d] as a fresh array.
 */
export function mlaBackward(config: ModelConfig, w: MLAWeights, grads: MLAWeights, saved: MLASaved, dout: FloatArray): FloatArray {
  const dtype = dtypeOf(dout);
  const k = kernelsFor(dtype);
  const { d, H, n, R, V, C, qr, qk } = dimsOf(config);
  const { B, S, startPos, rope, x, P, qNope, qPe, kNope, kPe, Vh } = saved;
  const N = B * S;
  const T = S;
  if (dout.length !== N * d) throw new ShapeError(`mlaBackward: dout has ${dout.length} elements, expected B·S·d = ${B}·${S}·${d}`);
  checkMLAWeights(config, w, dtype, 'weights');
  checkMLAWeights(config, grads, dtype, 'gradients');
  const tau = softmaxScale(config);
  const dx = allocate(dtype, N * d);

  // u = oFlat·W_oᵀ:  dW_o += duᵀ·oFlat;  doFlat = du·W_o
  const site = (proj: string): LinearSite | undefined => projSite(saved.gemm, saved.prefix, proj);
  const doFlat = linearBackward(saved.oFlat, w.o_proj.data, dout, grads.o_proj.data, N, d, H * V, undefined, site('o_proj'));
  const dO = allocate(dtype, N * H * V); // [B, H, S, V]
  copyBlocks(tokenMajor(doFlat, 0, V, H, S), headMajor(dO, 0, V, H, S), B, H, S, V);

  // o = P·v:  dP = dO·vᵀ;  dv = Pᵀ·dO   (per (b, h))
  const dP = allocate(dtype, B * H * S * T);
  k.matmulBatched('nt', dO, Vh, dP, B * H, S, T, V);
  const dVh = allocate(dtype, B * H * T * V);
  k.matmulBatched('tn', P, dO, dVh, B * H, T, V, S);

  // P = softmax(A), A = τ·(q_nope·k_nopeᵀ + q_pe·k_peᵀ) + mask:  dA = softmaxᵀ(dP) (0 where masked, P = 0 there), then ·τ
  const dA = allocate(dtype, B * H * S * T);
  k.softmaxBackward(P, dP, dA, B * H * S, T);
  k.scale(dA, tau, dA.length);
  // per (b, h): dq_nope = dA·k_nope, dk_nope = dAᵀ·q_nope
  const dqNope = allocate(dtype, N * H * n); // [B, H, S, n]
  k.matmulBatched('nn', dA, kNope, dqNope, B * H, S, n, T);
  const dkNope = allocate(dtype, N * H * n); // [B, H, T, n]
  k.matmulBatched('tn', dA, qNope, dkNope, B * H, T, n, S);
  // k_pe is shared by the heads: per b, with rows (h, s) of dA as one [H·S, T] matrix,
  // dq_pe = dA·k_pe and dk_pe = dAᵀ·q_pe (the sum over heads is part of the reduction)
  const dqPe = allocate(dtype, N * H * R); // [B, H, S, R]
  const dkPe = allocate(dtype, N * R); // [B, T, R]
  for (let b = 0; b < B; b++) {
    const dAb = dA.subarray(b * H * S * T, (b + 1) * H * S * T);
    k.matmul('nn', dAb, kPe.subarray(b * T * R, (b + 1) * T * R), dqPe.subarray(b * H * S * R, (b + 1) * H * S * R), H * S, R, T);
    k.matmul('tn', dAb, qPe.subarray(b * H * S * R, (b + 1) * H * S * R), dkPe.subarray(b * T * R, (b + 1) * T * R), T, R, H * S);
  }

  // back to kv [B, S, H, n+V], head h = [k_nope | v]
  const dkv = allocate(dtype, N * H * (n + V));
  copyBlocks(headMajor(dkNope, 0, n, H, T), tokenMajor(dkv, 0, n + V, H, T), B, H, T, n);
  copyBlocks(headMajor(dVh, 0, V, H, T), tokenMajor(dkv, n, n + V, H, T), B, H, T, V);

  // kv = ĉ·W_kvbᵀ:  dW_kvb += dkvᵀ·ĉ;  dĉ = dkv·W_kvb
  const dcHat = linearBackward(saved.cHat, w.kv_b_proj.data, dkv, grads.kv_b_proj.data, N, H * (n + V), C, undefined, site('kv_b_proj'));

  // [c | k_pe_raw] = x·W_kvaᵀ, ĉ = kv_a_layernorm(c), k_pe = RoPE(k_pe_raw): RoPE backward = rotation by −θ
  const dLatent = allocate(dtype, N * C);
  rmsnormBackward(saved.latent, w.kv_a_layernorm.data, saved.rstdKv, dcHat, dLatent, grads.kv_a_layernorm.data, N, C);
  k.rope(dkPe, dkPe, rope.cos, rope.sin, positions(B, 1, S, startPos), N, R, true);
  const dkva = allocate(dtype, N * (C + R));
  copyBlocks(tokenMajor(dLatent, 0, C, 0, S), tokenMajor(dkva, 0, C + R, 0, S), B, 1, S, C);
  copyBlocks(tokenMajor(dkPe, 0, R, 0, S), tokenMajor(dkva, C, C + R, 0, S), B, 1, S, R);
  linearBackward(x, w.kv_a_proj_with_mqa.data, dkva, grads.kv_a_proj_with_mqa.data, N, C + R, d, dx, site('kv_a_proj_with_mqa'));

  // q [B, S, H, n+R] = [q_nope ; q_pe] per head, q_pe rotated
  k.rope(dqPe, dqPe, rope.cos, rope.sin, positions(B, H, S, startPos), N * H, R, true);
  const dq = allocate(dtype, N * H * qk);
  copyBlocks(headMajor(dqNope, 0, n, H, S), tokenMajor(dq, 0, qk, H, S), B, H, S, n);
  copyBlocks(headMajor(dqPe, 0, R, H, S), tokenMajor(dq, n, qk, H, S), B, H, S, R);

  if (qr > 0) {
    // q = cqn·W_qbᵀ, cqn = q_a_layernorm(cq), cq = x·W_qaᵀ
    const dcqn = linearBackward(saved.cqn!, w.q_b_proj!.data, dq, grads.q_b_proj!.data, N, H * qk, qr, undefined, site('q_b_proj'));
    const dcq = allocate(dtype, N * qr);
    rmsnormBackward(saved.cq!, w.q_a_layernorm!.data, saved.rstdQ!, dcqn, dcq, grads.q_a_layernorm!.data, N, qr);
    linearBackward(x, w.q_a_proj!.data, dcq, grads.q_a_proj!.data, N, qr, d, dx, site('q_a_proj'));
  } else {
    // q = x·W_qᵀ
    linearBackward(x, w.q_proj!.data, dq, grads.q_proj!.data, N, H * qk, d, dx, site('q_proj'));
  }
  return dx;
}
