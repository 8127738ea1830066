/**
 * MLA's attention core on the fused kernels (`attentionForward` / `attentionBackward`, src/kernels/kernels.ts): the
 * scores τ·(q_nope·k_nope + q_pe·k_pe) (naive) or τ·(q̃·ĉ + q_pe·k_pe) (absorbed), the causal softmax and the
 * weighted values, without a [B, H, S, T] matrix. Operands are strided views, so the projections' token-major
 * outputs and the caches are read in place. What this file computes is what naive.ts / absorbed.ts compute with
 * explicit scores and probabilities (the path a trace takes); tests/attention/fused.test.ts holds them equal.
 */
import type { AttentionInputs, AttentionShape } from '../../kernels/index.js';
import { kernelsFor } from '../../kernels/index.js';
import { allocate, dtypeOf, type FloatArray } from '../../tensor.js';
import type { LatentKVCache, NaiveKVCache } from '../kv_cache.js';
import { writeLatentCache, writeNaiveCache } from './cache.js';
import { absorbOutput, absorbQuery } from './absorbed.js';
import { headMajor, tokenMajor, toTokenMajor } from './layout.js';
import { naiveKV } from './naive.js';
import type { Dims } from './weights.js';

/** The naive keys and values of the S new tokens, read in place: k_nope and v from kv [B, S, H, n+V], k_pe [B, S, R] shared by the heads. */
export function naiveKeys(dm: Dims, S: number, kv: FloatArray, kPe: FloatArray): Omit<AttentionInputs, 'q1' | 'q2'> {
  const { H, n, R, V } = dm;
  return { k1: tokenMajor(kv, 0, n + V, H, S), k2: tokenMajor(kPe, 0, R, 0, S), v: tokenMajor(kv, n, n + V, H, S) };
}

/** The shape of a call with T keys of which query s sees t ≤ s + offset. */
function shapeOf(dm: Dims, B: number, S: number, T: number, offset: number, tau: number, d1: number, dv: number): AttentionShape {
  return { B, H: dm.H, S, T, d1, d2: dm.R, dv, tau, offset };
}

/** The result of a fused forward: head outputs o [B, S, H·V] (token-major: the input of o_proj) and (m, l) per query row. */
export interface FusedOutput {
  oFlat: FloatArray;
  stats: FloatArray;
}

/**
 * Naive path: o = softmax(τ·(q_nope·k_nopeᵀ + q_pe·k_peᵀ) + mask)·v per head. Without a cache the keys are the S new
 * tokens (from kv and kPe, offset 0); with one, the new k and v are written at [startPos, startPos + S) first and
 * the queries attend over its first startPos + S rows (offset startPos).
 */
export function naiveAttention(
  dm: Dims,
  B: number,
  S: number,
  startPos: number,
  tau: number,
  qNope: FloatArray,
  qPe: FloatArray,
  kv: FloatArray,
  kPe: FloatArray,
  cache: NaiveKVCache | undefined,
): FusedOutput {
  const { H, n, R, V, qk } = dm;
  const dtype = dtypeOf(qNope);
  let keys = naiveKeys(dm, S, kv, kPe);
  let T = S;
  let offset = 0;
  if (cache) {
    const nk = naiveKV(dm, B, S, kv);
    writeNaiveCache(dm, cache, B, S, startPos, nk.kNope, kPe, nk.Vh);
    const L = cache.maxLen;
    keys = { k1: headMajor(cache.k, 0, qk, H, L), k2: headMajor(cache.k, n, qk, H, L), v: headMajor(cache.v, 0, V, H, L) };
    T = startPos + S;
    offset = startPos;
  }
  const oFlat = allocate(dtype, B * S * H * V);
  const stats = allocate(dtype, 2 * B * H * S);
  const x = { q1: headMajor(qNope, 0, n, H, S), q2: headMajor(qPe, 0, R, H, S), ...keys };
  kernelsFor(dtype).attentionForward(shapeOf(dm, B, S, T, offset, tau, n, V), x, tokenMajor(oFlat, 0, V, H, S), stats);
  return { oFlat, stats };
}

/**
 * Absorbed path: q̃ = q_nope·W_UK per head, õ = softmax(τ·(q̃·ĉᵀ + q_pe·k_peᵀ) + mask)·ĉ with ĉ and k_pe shared by
 * the heads (one unit per batch row holds all H·S query rows), then o = õ·W_UVᵀ per head. Keys: the S new tokens,
 * or the latent cache after the new ĉ and k_pe are written.
 */
export function absorbedAttention(
  dm: Dims,
  B: number,
  S: number,
  startPos: number,
  tau: number,
  qNope: FloatArray,
  qPe: FloatArray,
  cHat: FloatArray,
  kPe: FloatArray,
  Wkvb: FloatArray,
  cache: LatentKVCache | undefined,
): FusedOutput {
  const { H, R, C } = dm;
  const dtype = dtypeOf(qNope);
  const k = kernelsFor(dtype);
  let c = cHat;
  let pe = kPe;
  let Tcap = S;
  if (cache) {
    writeLatentCache(dm, cache, B, S, startPos, cHat, kPe);
    c = cache.latent;
    pe = cache.kPe;
    Tcap = cache.maxLen;
  }
  const qAbs = absorbQuery(dm, B, S, qNope, Wkvb);
  const oLat = allocate(dtype, B * H * S * C);
  const stats = allocate(dtype, 2 * B * H * S);
  const latent = tokenMajor(c, 0, C, 0, Tcap);
  const x = { q1: headMajor(qAbs, 0, C, H, S), q2: headMajor(qPe, 0, R, H, S), k1: latent, k2: tokenMajor(pe, 0, R, 0, Tcap), v: latent };
  k.attentionForward(shapeOf(dm, B, S, cache ? startPos + S : S, cache ? startPos : 0, tau, C, C), x, headMajor(oLat, 0, C, H, S), stats);
  // o[b, h] = õ[b, h]·W_UV[h]ᵀ, then token-major
  return { oFlat: toTokenMajor(absorbOutput(dm, B, S, oLat, Wkvb), B, H, S, dm.V), stats };
}

/** Gradients of the naive-form attention core: dq_nope, dq_pe [B, H, S, ·], dkv [B, S, H, n+V] and dk_pe [B, S, R]. */
export interface FusedGrads {
  dqNope: FloatArray;
  dqPe: FloatArray;
  dkv: FloatArray;
  dkPe: FloatArray;
}

/**
 * Backward of the cache-free attention core in the naive form (both paths compute the same function), from the
 * forward's o and (m, l): the probabilities are recomputed, never stored. dO: [B, S, H·V] token-major. dk_pe is
 * accumulated per head by the kernel (so heads never write the same row) and summed over the heads in head order.
 */
export function attentionCoreBackward(
  dm: Dims,
  B: number,
  S: number,
  tau: number,
  saved: { qNope: FloatArray; qPe: FloatArray; kv: FloatArray; kPe: FloatArray; oFlat: FloatArray; stats: FloatArray },
  doFlat: FloatArray,
): FusedGrads {
  const { H, n, R, V } = dm;
  const dtype = dtypeOf(doFlat);
  const dqNope = allocate(dtype, B * H * S * n);
  const dqPe = allocate(dtype, B * H * S * R);
  const dkv = allocate(dtype, B * S * H * (n + V));
  const dkPeH = allocate(dtype, B * H * S * R);
  const x = { q1: headMajor(saved.qNope, 0, n, H, S), q2: headMajor(saved.qPe, 0, R, H, S), ...naiveKeys(dm, S, saved.kv, saved.kPe) };
  const grads = {
    q1: headMajor(dqNope, 0, n, H, S),
    q2: headMajor(dqPe, 0, R, H, S),
    k1: tokenMajor(dkv, 0, n + V, H, S),
    k2: headMajor(dkPeH, 0, R, H, S),
    v: tokenMajor(dkv, n, n + V, H, S),
  };
  const o = tokenMajor(saved.oFlat, 0, V, H, S);
  kernelsFor(dtype).attentionBackward(shapeOf(dm, B, S, S, 0, tau, n, V), x, o, saved.stats, tokenMajor(doFlat, 0, V, H, S), grads);
  // dk_pe[b, t] = Σ_h dk_pe[b, h, t], heads in order
  const dkPe = allocate(dtype, B * S * R);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const src = (b * H + h) * S * R;
      const dst = b * S * R;
      for (let i = 0; i < S * R; i++) dkPe[dst + i] = dkPe[dst + i]! + dkPeH[src + i]!;
    }
  }
  return { dqNope, dqPe, dkv, dkPe };
}
