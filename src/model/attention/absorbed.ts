/**
 * The absorbed MLA path: kv_b_proj folded into the query and the output, W_kvb viewed as [H, n+V, C] with
 * W_UK[h] = rows 0..n−1 and W_UV[h] = rows n..n+V−1. Scores q̃·ĉᵀ + q_pe·k_peᵀ with q̃ = q_nope·W_UK, outputs
 * (P·ĉ)·W_UVᵀ; with a cache, the latent cache holds ĉ and the rotated k_pe (C + R values per token).
 */
import { kernelsFor } from '../../kernels/index.js';
import { allocate, dtypeOf, type FloatArray } from '../../tensor.js';
import type { LatentKVCache } from '../kv_cache.js';
import { writeLatentCache } from './cache.js';
import { addRopeScores } from './scores.js';
import type { Dims } from './weights.js';

/** The keys the absorbed path reads: ĉ [B, Tcap, C] and the rotated k_pe [B, Tcap, R]. */
export interface LatentKeys {
  c: FloatArray;
  kPe: FloatArray;
  Tcap: number;
}

/**
 * Unscaled absorbed scores [B, H, S, T] = q̃·ĉᵀ + q_pe·k_peᵀ. With a cache, the new ĉ and k_pe are written first and
 * the keys are its first T rows; without one, the S new tokens. Returns the keys for {@link absorbedOutput}.
 */
export function absorbedScores(
  dm: Dims,
  B: number,
  S: number,
  T: number,
  startPos: number,
  qNope: FloatArray,
  qPe: FloatArray,
  cHat: FloatArray,
  kPe: FloatArray,
  Wkvb: FloatArray,
  cache: LatentKVCache | undefined,
  scores: FloatArray,
): LatentKeys {
  const { H, C } = dm;
  const k = kernelsFor(dtypeOf(qNope));
  let keys: LatentKeys = { c: cHat, kPe, Tcap: S };
  if (cache) {
    writeLatentCache(dm, cache, B, S, startPos, cHat, kPe);
    keys = { c: cache.latent, kPe: cache.kPe, Tcap: cache.maxLen };
  }
  const qAbs = absorbQuery(dm, B, S, qNope, Wkvb);
  for (let b = 0; b < B; b++) {
    const cB = keys.c.subarray(b * keys.Tcap * C, (b * keys.Tcap + T) * C);
    // A = q̃·ĉᵀ (+ q_pe·k_peᵀ below), rows (h, s): [H·S, T]
    k.matmul('nt', qAbs.subarray(b * H * S * C, (b + 1) * H * S * C), cB, scores.subarray(b * H * S * T, (b + 1) * H * S * T), H * S, T, C);
  }
  addRopeScores(dm, B, S, T, keys.Tcap, qPe, keys.kPe, scores);
  return keys;
}

/** q̃[b, h] = q_nope[b, h]·W_UK[h] ([S, n]·[n, C]) for every batch row: [B, H, S, C]. */
export function absorbQuery(dm: Dims, B: number, S: number, qNope: FloatArray, Wkvb: FloatArray): FloatArray {
  const { H, n, V, C } = dm;
  const k = kernelsFor(dtypeOf(qNope));
  const qAbs = allocate(dtypeOf(qNope), B * H * S * C);
  for (let b = 0; b < B; b++) {
    k.matmulBatched('nn', qNope.subarray(b * H * S * n, (b + 1) * H * S * n), Wkvb, qAbs.subarray(b * H * S * C, (b + 1) * H * S * C), H, S, C, n, false, (n + V) * C);
  }
  return qAbs;
}

/** Head outputs o[b, h] = õ[b, h]·W_UV[h]ᵀ ([S, C]·[C, V]) from õ [B, H, S, C]: [B, H, S, V]. */
export function absorbOutput(dm: Dims, B: number, S: number, oLat: FloatArray, Wkvb: FloatArray): FloatArray {
  const { H, n, V, C } = dm;
  const k = kernelsFor(dtypeOf(oLat));
  const WUV = Wkvb.subarray(n * C);
  const O = allocate(dtypeOf(oLat), B * H * S * V);
  for (let b = 0; b < B; b++) {
    k.matmulBatched('nt', oLat.subarray(b * H * S * C, (b + 1) * H * S * C), WUV, O.subarray(b * H * S * V, (b + 1) * H * S * V), H, S, V, C, false, (n + V) * C);
  }
  return O;
}

/** Head outputs O [B, H, S, V]: õ = P·ĉ ([H·S, T]·[T, C]) per batch row, then o[h] = õ[h]·W_UV[h]ᵀ. */
export function absorbedOutput(dm: Dims, B: number, S: number, T: number, P: FloatArray, keys: LatentKeys, Wkvb: FloatArray, O: FloatArray): void {
  const { H, C } = dm;
  const k = kernelsFor(dtypeOf(P));
  const oLat = allocate(dtypeOf(P), B * H * S * C); // õ [B, H, S, C]
  for (let b = 0; b < B; b++) {
    const cB = keys.c.subarray(b * keys.Tcap * C, (b * keys.Tcap + T) * C);
    k.matmul('nn', P.subarray(b * H * S * T, (b + 1) * H * S * T), cB, oLat.subarray(b * H * S * C, (b + 1) * H * S * C), H * S, C, T);
  }
  O.set(absorbOutput(dm, B, S, oLat, Wkvb));
}
