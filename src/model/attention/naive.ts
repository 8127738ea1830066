/**
 * The naive MLA path: per-head keys k = [k_nope ; k_pe] and values v from kv_b_proj(ĉ), scores Q·Kᵀ and outputs P·v
 * per (batch row, head); with a cache, the head-major naive cache holds K and V. Also the cache-free causal fast path.
 */
import { kernelsFor } from '../../kernels/index.js';
import { allocate, dtypeOf, type FloatArray } from '../../tensor.js';
import type { NaiveKVCache } from '../kv_cache.js';
import { writeNaiveCache } from './cache.js';
import { copyBlocks, headMajor, tokenMajor } from './layout.js';
import { addRopeScores, scaleAndMask } from './scores.js';
import type { Dims } from './weights.js';

/** Per-head keys and values of the new tokens from kv [B, S, H, n+V] (head h = [k_nope | v]): k_nope [B,H,S,n], V [B,H,S,V]. */
export function naiveKV(dm: Dims, B: number, S: number, kv: FloatArray): { kNope: FloatArray; Vh: FloatArray } {
  const { H, n, V } = dm;
  const dtype = dtypeOf(kv);
  const kNope = allocate(dtype, B * H * S * n);
  const Vh = allocate(dtype, B * H * S * V);
  copyBlocks(tokenMajor(kv, 0, n + V, H, S), headMajor(kNope, 0, n, H, S), B, H, S, n);
  copyBlocks(tokenMajor(kv, n, n + V, H, S), headMajor(Vh, 0, V, H, S), B, H, S, V);
  return { kNope, Vh };
}


/** The values the naive output reads: [B, H, Tcap, V] with per-(b, h) stride Tcap·V. */
export interface NaiveValues {
  v: FloatArray;
  stride: number;
}

/**
 * Unscaled naive scores [B, H, S, T] = Q·Kᵀ. With a cache the new k and v are written first and Q = [q_nope ; q_pe]
 * attends over the cache's first T rows; without one, Q·Kᵀ = q_nope·k_nopeᵀ + q_pe·k_peᵀ over the S new keys
 * (two parts: no concatenated Q, K to build). Returns the values for {@link naiveOutput}.
 */
export function naiveScores(
  dm: Dims,
  B: number,
  S: number,
  T: number,
  startPos: number,
  qNope: FloatArray,
  qPe: FloatArray,
  kv: { kNope: FloatArray; Vh: FloatArray },
  kPe: FloatArray,
  cache: NaiveKVCache | undefined,
  scores: FloatArray,
): NaiveValues {
  const { H, n, R, V, qk } = dm;
  const dtype = dtypeOf(qNope);
  const k = kernelsFor(dtype);
  if (cache) {
    writeNaiveCache(dm, cache, B, S, startPos, kv.kNope, kPe, kv.Vh);
    const Q = allocate(dtype, B * S * H * qk);
    copyBlocks(headMajor(qNope, 0, n, H, S), headMajor(Q, 0, qk, H, S), B, H, S, n);
    copyBlocks(headMajor(qPe, 0, R, H, S), headMajor(Q, n, qk, H, S), B, H, S, R);
    k.matmulBatched('nt', Q, cache.k, scores, B * H, S, T, qk, false, cache.maxLen * qk);
    return { v: cache.v, stride: cache.maxLen * V };
  }
  k.matmulBatched('nt', qNope, kv.kNope, scores, B * H, S, T, n);
  addRopeScores(dm, B, S, T, S, qPe, kPe, scores);
  return { v: kv.Vh, stride: T * V };
}

/** Head outputs O [B, H, S, V] = P·v per (b, h): [S, T]·[T, V]. */
export function naiveOutput(dm: Dims, B: number, S: number, T: number, P: FloatArray, values: NaiveValues, O: FloatArray): void {
  kernelsFor(dtypeOf(P)).matmulBatched('nn', P, values.v, O, B * dm.H, S, dm.V, T, false, values.stride);
}

/** Query rows per block of {@link causalAttention}. */
const QUERY_BLOCK = 32;

/**
 * Cache-free causal attention o = softmax(τ·QKᵀ + mask)·V, Q = [q_nope ; q_pe], K = [k_nope ; k_pe], by blocks of
 * query rows: block [s0, s1) attends over keys [0, s1) only (key t is visible from query s iff t ≤ s), so the
 * score matmuls, the softmax and P·V skip most of the masked half (those keys have probability exactly 0: same
 * result). Inputs head-major as in mlaForward; writes the head outputs into oFlat [B, S, H·V].
 */
export function causalAttention(
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
