/**
 * The naive MLA path: per-head keys k = [k_nope ; k_pe] and values v from kv_b_proj(ĉ), scores Q·Kᵀ and outputs P·v
 * per (batch row, head); with a cache, the head-major naive cache holds K and V. The explicit-scores path (traces);
 * fused.ts computes the same without the score matrix.
 */
import { kernelsFor } from '../../kernels/index.js';
import { allocate, dtypeOf, type FloatArray } from '../../tensor.js';
import type { NaiveKVCache } from '../kv_cache.js';
import { writeNaiveCache } from './cache.js';
import { copyBlocks, headMajor, tokenMajor } from './layout.js';
import { addRopeScores } from './scores.js';
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
