/**
 * Multi-head Latent Attention (SPEC §3.6), both paths, forward and backward: the projections and the orchestration.
 * The paths live beside this file: naive.ts, absorbed.ts (scores and outputs), scores.ts (RoPE part, scale, mask),
 * cache.ts (cache checks and writes), layout.ts (head-major / token-major copies), weights.ts (the weight record).
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
import { InputError, ShapeError } from '../../errors.js';
import { kernelsFor } from '../../kernels/index.js';
import { linearBackward, linearForward, type LinearGemm, type LinearSite } from '../../ops/linear.js';
import { allocate, dtypeOf, type FloatArray } from '../../tensor.js';
import type { ModelConfig } from '../config.js';
import type { MLACache } from '../kv_cache.js';
import { rmsnormBackward, rmsnormForward } from '../rmsnorm.js';
import { ropeBackward, ropeForward, softmaxScale, type RopeTables } from '../rope.js';
import type { TraceFn } from '../trace.js';
import { absorbedOutput, absorbedScores, type LatentKeys } from './absorbed.js';
import { checkCache } from './cache.js';
import { copyBlocks, headMajor, positions, tokenMajor, toTokenMajor } from './layout.js';
import { absorbedAttention, attentionCoreBackward, naiveAttention, type FusedOutput } from './fused.js';
import { naiveKV, naiveOutput, naiveScores, type NaiveValues } from './naive.js';
import { scaleAndMask } from './scores.js';
import { checkMLAWeights, dimsOf, type Dims, type MLAWeights } from './weights.js';

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
 * What the forward keeps for the backward (naive form; both paths compute the same function, so an absorbed forward
 * also builds kv when saving). Arrays are referenced, not copied: the caller must not overwrite `x` before the
 * backward. The attention probabilities are not kept: the backward recomputes them from q, k and the per-row
 * softmax statistics (m, l) (the fused kernels, src/model/attention/fused.ts).
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
  /** kv = kv_b_proj(ĉ) [B, S, H, n+V], head h = [k_nope | v]. */
  kv: FloatArray;
  /** RoPE(k_pe) [B, S, R], the one rope key of each token, shared by every head. */
  kPe: FloatArray;
  /** (m, l) of each query row's softmax [B, H, S, 2]: the largest score and Σ exp(score − m). */
  stats: FloatArray;
  /** head outputs flattened [B·S, H·V], the input of o_proj. */
  oFlat: FloatArray;
  /** The projections' GEMM mode and the module path, as the forward ran them. */
  gemm?: LinearGemm;
  prefix: string;
}

/**
 * MLA forward (SPEC §3.6). x: [B, S, d] → out: [B, S, d]. Query s sits at position
 * p = startPos + s. With a cache, the S new entries are written at [startPos, startPos + S)
 * and the queries attend over keys [0, startPos + S) with the general causal mask
 * t ≤ startPos + s (chunked prefill, decode, speculative verification). Without a cache the
 * keys are the S new tokens (positions startPos..startPos+S−1). `attn` picks the naive or the
 * weight-absorbed path; both compute the same function. With `save`, returns what
 * {@link mlaBackward} needs (cache-free calls only). The attention core runs on the fused kernels (fused.ts: no
 * [B, H, S, T] matrix); a call with `trace` builds the scores and probabilities explicitly instead (naive.ts,
 * absorbed.ts), to trace them.
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
  const dm = dimsOf(config);
  const { d, H, n, R, V, C } = dm;
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
  const site = (proj: string): LinearSite | undefined => projSite(opts.gemm, prefix, proj);

  const qs = queryPath(config, dm, w, x, B, S, opts, prefix, site);
  const ks = keyPath(config, dm, w, x, B, S, opts, prefix, site);
  const { qNope, qPe } = qs;
  const { cHat, kPe } = ks;

  // keys: with a cache, [0, startPos + S) at positions t; without, the S new tokens at startPos + t
  if (cache) cache.reserve(startPos, S, B);
  // kv = kv_b_proj(ĉ): [B, S, H, n+V], head h = [k_nope | v] (the naive path, and the saved naive form)
  const kv = attn === 'naive' || save ? linearForward(cHat, w.kv_b_proj.data, N, H * (n + V), C, site('kv_b_proj')) : null;

  let fused: FusedOutput | null = null;
  if (trace === undefined || save) {
    fused =
      attn === 'naive'
        ? naiveAttention(dm, B, S, startPos, tau, qNope, qPe, kv!, kPe, cache?.attn === 'naive' ? cache : undefined)
        : absorbedAttention(dm, B, S, startPos, tau, qNope, qPe, cHat, kPe, w.kv_b_proj.data, cache?.attn === 'absorb' ? cache : undefined);
  }
  const oFlat = trace === undefined ? fused!.oFlat : tracedAttention(dm, B, S, startPos, tau, attn, qNope, qPe, cHat, kPe, kv, w, cache, prefix, trace);
  const out = linearForward(oFlat, w.o_proj.data, N, d, H * V, site('o_proj'));
  trace?.(`${prefix}:out`, [B, S, d], out);

  // the backward works from the fused forward's o and (m, l), traced or not
  const saved: MLASaved | null = save
    ? { B, S, startPos, rope, x, ...qs, ...ks, kv: kv!, stats: fused!.stats, oFlat: fused!.oFlat, ...(opts.gemm !== undefined ? { gemm: opts.gemm } : {}), prefix }
    : null;
  return { out, saved };
}

/**
 * The attention core with explicit scores [B, H, S, T] and probabilities, traced: the definition the fused kernels
 * are tested against. Returns the head outputs [B, S, H·V]. (A traced call runs the fused core too only when it
 * saves for the backward, which excludes a cache: the new tokens are written to a cache once.)
 */
function tracedAttention(
  dm: Dims,
  B: number,
  S: number,
  startPos: number,
  tau: number,
  attn: AttnImpl,
  qNope: FloatArray,
  qPe: FloatArray,
  cHat: FloatArray,
  kPe: FloatArray,
  kv: FloatArray | null,
  w: MLAWeights,
  cache: MLACache | undefined,
  prefix: string,
  trace: TraceFn,
): FloatArray {
  const { H, n, V } = dm;
  const dtype = dtypeOf(qNope);
  const T = cache ? startPos + S : S;
  const keyPos0 = cache ? 0 : startPos;
  // A = Q·Kᵀ by the path, then τ and the general causal mask (key t at position keyPos0 + t is visible iff ≤ startPos + s)
  const scores = allocate(dtype, B * H * S * T); // [B, H, S, T]
  const O = allocate(dtype, B * H * S * V); // head outputs [B, H, S, V]
  let keys: { naive?: NaiveValues; latent?: LatentKeys };
  if (attn === 'naive') {
    trace(`${prefix}.kv_b_proj:out`, [B, S, H, n + V], kv!);
    const naive = naiveKV(dm, B, S, kv!);
    keys = { naive: naiveScores(dm, B, S, T, startPos, qNope, qPe, naive, kPe, cache?.attn === 'naive' ? cache : undefined, scores) };
  } else {
    keys = { latent: absorbedScores(dm, B, S, T, startPos, qNope, qPe, cHat, kPe, w.kv_b_proj.data, cache?.attn === 'absorb' ? cache : undefined, scores) };
  }
  scaleAndMask(scores, B * H, S, T, tau, startPos - keyPos0);
  trace(`${prefix}:attn_scores`, [B, H, S, T], scores);
  const P = scores;
  kernelsFor(dtype).softmaxForward(scores, P, B * H * S, T);
  trace(`${prefix}:attn_probs`, [B, H, S, T], P);
  if (keys.naive !== undefined) naiveOutput(dm, B, S, T, P, keys.naive, O);
  else absorbedOutput(dm, B, S, T, P, keys.latent!, w.kv_b_proj.data, O);
  // u = o_proj(flatten_{h,j} o): o flattened at index h·V + j
  const oFlat = toTokenMajor(O, B, H, S, V);
  trace(`${prefix}:o`, [B, S, H * V], oFlat);
  return oFlat;
}

/**
 * The query path: q = q_b_proj(q_a_layernorm(q_a_proj(x))) or q_proj(x) [B, S, H, n+R], split per head into q_nope
 * [B, H, S, n] and q_pe [B, H, S, R], RoPE on q_pe at p = startPos + s. Returns what the backward keeps too.
 */
function queryPath(
  config: ModelConfig,
  dm: Dims,
  w: MLAWeights,
  x: FloatArray,
  B: number,
  S: number,
  opts: MLAOptions,
  prefix: string,
  site: (proj: string) => LinearSite | undefined,
): { qNope: FloatArray; qPe: FloatArray; cq: FloatArray | null; cqn: FloatArray | null; rstdQ: FloatArray | null } {
  const { d, H, n, R, qr, qk } = dm;
  const N = B * S;
  const dtype = dtypeOf(x);
  const { rope, startPos, trace } = opts;
  let q: FloatArray;
  let cq: FloatArray | null = null;
  let cqn: FloatArray | null = null;
  let rstdQ: FloatArray | null = null;
  if (qr > 0) {
    cq = linearForward(x, w.q_a_proj!.data, N, qr, d, site('q_a_proj'));
    ({ y: cqn, rstd: rstdQ } = rmsnormForward(cq, w.q_a_layernorm!.data, N, qr, config.rmsNormEps));
    trace?.(`${prefix}.q_a_layernorm:out`, [B, S, qr], cqn);
    q = linearForward(cqn, w.q_b_proj!.data, N, H * qk, qr, site('q_b_proj'));
  } else {
    q = linearForward(x, w.q_proj!.data, N, H * qk, d, site('q_proj'));
  }
  trace?.(`${prefix}:q`, [B, S, H, qk], q);
  const qNope = allocate(dtype, N * H * n);
  const qPeRaw = allocate(dtype, N * H * R);
  copyBlocks(tokenMajor(q, 0, qk, H, S), headMajor(qNope, 0, n, H, S), B, H, S, n);
  copyBlocks(tokenMajor(q, n, qk, H, S), headMajor(qPeRaw, 0, R, H, S), B, H, S, R);
  const qPe = ropeForward(rope, qPeRaw, positions(B, H, S, startPos), N * H, R);
  if (trace) trace(`${prefix}:q_pe`, [B, S, H, R], toTokenMajor(qPe, B, H, S, R));
  return { qNope, qPe, cq, cqn, rstdQ };
}

/**
 * The key path: [c | k_pe] = kv_a_proj_with_mqa(x); ĉ = kv_a_layernorm(c) (the norm sees the latent only); the single
 * shared RoPE key rotated at the queries' positions. Returns what the backward keeps too.
 */
function keyPath(
  config: ModelConfig,
  dm: Dims,
  w: MLAWeights,
  x: FloatArray,
  B: number,
  S: number,
  opts: MLAOptions,
  prefix: string,
  site: (proj: string) => LinearSite | undefined,
): { latent: FloatArray; rstdKv: FloatArray; cHat: FloatArray; kPe: FloatArray } {
  const { d, R, C } = dm;
  const N = B * S;
  const dtype = dtypeOf(x);
  const { rope, startPos, trace } = opts;
  const kva = linearForward(x, w.kv_a_proj_with_mqa.data, N, C + R, d, site('kv_a_proj_with_mqa'));
  const latent = allocate(dtype, N * C);
  const kPeRaw = allocate(dtype, N * R);
  copyBlocks(tokenMajor(kva, 0, C + R, 0, S), tokenMajor(latent, 0, C, 0, S), B, 1, S, C);
  copyBlocks(tokenMajor(kva, C, C + R, 0, S), tokenMajor(kPeRaw, 0, R, 0, S), B, 1, S, R);
  const { y: cHat, rstd: rstdKv } = rmsnormForward(latent, w.kv_a_layernorm.data, N, C, config.rmsNormEps);
  const kPe = ropeForward(rope, kPeRaw, positions(B, 1, S, startPos), N, R);
  trace?.(`${prefix}.kv_a_layernorm:out`, [B, S, C], cHat);
  trace?.(`${prefix}:k_pe`, [B, S, R], kPe);
  return { latent, rstdKv, cHat, kPe };
}

/**
 * MLA backward in the naive form (the absorbed path computes the same function, hence the same
 * gradient). dout: [B, S, d]. ACCUMULATES every weight gradient into `grads` (zeroed by the
 * caller, same shapes as `w`) and returns dx [B, S, d] as a fresh array.
 */
export function mlaBackward(config: ModelConfig, w: MLAWeights, grads: MLAWeights, saved: MLASaved, dout: FloatArray): FloatArray {
  const dtype = dtypeOf(dout);
  const { d, H, n, R, V, C, qr, qk } = dimsOf(config);
  const { B, S, startPos, rope, x } = saved;
  const N = B * S;
  if (dout.length !== N * d) throw new ShapeError(`mlaBackward: dout has ${dout.length} elements, expected B·S·d = ${B}·${S}·${d}`);
  checkMLAWeights(config, w, dtype, 'weights');
  checkMLAWeights(config, grads, dtype, 'gradients');
  const tau = softmaxScale(config);
  const dx = allocate(dtype, N * d);

  // u = oFlat·W_oᵀ:  dW_o += duᵀ·oFlat;  doFlat = du·W_o
  const site = (proj: string): LinearSite | undefined => projSite(saved.gemm, saved.prefix, proj);
  const doFlat = linearBackward(saved.oFlat, w.o_proj.data, dout, grads.o_proj.data, N, d, H * V, undefined, site('o_proj'));

  // the attention core: o = softmax(τ·(q_nope·k_nopeᵀ + q_pe·k_peᵀ) + mask)·v per head, k_pe shared by the heads
  const { dqNope, dqPe, dkv, dkPe } = attentionCoreBackward(dimsOf(config), B, S, tau, saved, doFlat);

  // kv = ĉ·W_kvbᵀ:  dW_kvb += dkvᵀ·ĉ;  dĉ = dkv·W_kvb
  const dcHat = linearBackward(saved.cHat, w.kv_b_proj.data, dkv, grads.kv_b_proj.data, N, H * (n + V), C, undefined, site('kv_b_proj'));

  // [c | k_pe_raw] = x·W_kvaᵀ, ĉ = kv_a_layernorm(c), k_pe = RoPE(k_pe_raw): RoPE backward = rotation by −θ
  const dLatent = allocate(dtype, N * C);
  rmsnormBackward(saved.latent, w.kv_a_layernorm.data, saved.rstdKv, dcHat, dLatent, grads.kv_a_layernorm.data, N, C);
  const dkPeRaw = allocate(dtype, N * R);
  ropeBackward(rope, dkPe, positions(B, 1, S, startPos), N, R, dkPeRaw);
  const dkva = allocate(dtype, N * (C + R));
  copyBlocks(tokenMajor(dLatent, 0, C, 0, S), tokenMajor(dkva, 0, C + R, 0, S), B, 1, S, C);
  copyBlocks(tokenMajor(dkPeRaw, 0, R, 0, S), tokenMajor(dkva, C, C + R, 0, S), B, 1, S, R);
  linearBackward(x, w.kv_a_proj_with_mqa.data, dkva, grads.kv_a_proj_with_mqa.data, N, C + R, d, dx, site('kv_a_proj_with_mqa'));

  // q [B, S, H, n+R] = [q_nope ; q_pe] per head, q_pe rotated
  const dqPeRaw = allocate(dtype, N * H * R);
  ropeBackward(rope, dqPe, positions(B, H, S, startPos), N * H, R, dqPeRaw);
  const dq = allocate(dtype, N * H * qk);
  copyBlocks(headMajor(dqNope, 0, n, H, S), tokenMajor(dq, 0, qk, H, S), B, H, S, n);
  copyBlocks(headMajor(dqPeRaw, 0, R, H, S), tokenMajor(dq, n, qk, H, S), B, H, S, R);

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
