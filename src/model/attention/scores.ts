/** The score matrix of MLA, shared by both paths: the RoPE part q_pe·k_peᵀ, the scale τ and the causal mask. */
import { kernelsFor } from '../../kernels/index.js';
import { dtypeOf, type FloatArray } from '../../tensor.js';
import type { Dims } from './weights.js';

/**
 * scores[b, h] += q_pe[b, h]·k_pe[b]ᵀ for keys t < T: k_pe [B, Tcap, R] is shared by the heads, so each batch
 * row is one [H·S, R]·[T, R]ᵀ matmul (no per-head copy of k_pe).
 */
export function addRopeScores(dm: Dims, B: number, S: number, T: number, Tcap: number, qPe: FloatArray, kPe: FloatArray, scores: FloatArray): void {
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
export function scaleAndMask(scores: FloatArray, rows: number, S: number, T: number, tau: number, offset: number): void {
  for (let r = 0; r < rows; r++) {
    for (let s = 0; s < S; s++) {
      const o = (r * S + s) * T;
      const visible = Math.max(0, Math.min(T, s + offset + 1)); // keys 0..visible−1
      for (let t = 0; t < visible; t++) scores[o + t] = scores[o + t]! * tau;
      scores.fill(-Infinity, o + visible, o + T); // two branch-free loops: the mask is a prefix per row
    }
  }
}
