/**
 * Complementary sequence-wise balance loss (SPEC §5.3, paper eq. 17–20). Per MoE layer and per
 * sequence of T tokens:
 *
 *   f_e = (E/(K·T))·#{t : e ∈ I[t]}   (a count: no gradient)
 *   s'_{e,t} = s_{e,t} / Σ_{j<E} s_{j,t}   (unbiased affinities, normalised over ALL E experts)
 *   P_e = (1/T)·Σ_t s'_{e,t}
 *   L = α·Σ_e f_e·P_e
 *
 * averaged over the B sequences (DeepSeek-V2's published aggregation; [UNVERIFIED] for V3).
 * Under perfectly uniform routing Σ_e f_e·P_e = 1.
 */
import { ShapeError } from '../errors.js';
import type { ModelConfig } from './config.js';
import type { Routing } from './gate.js';
import { allocate, dtypeOf, type FloatArray } from '../tensor.js';

/** Options of {@link sequenceBalanceLoss}. */
export interface BalanceLossOptions {
  /**
   * Count f_e from the top-K of the UNBIASED scores (the paper's literal "s ∈ Topk(s, K)", no
   * group limit, ties → lower index) instead of the experts actually selected (default).
   */
  literalTopk?: boolean;
}

/** Result of {@link sequenceBalanceLoss}. */
export interface BalanceLossResult {
  /** α·mean_b Σ_e f_e·P_e. */
  loss: number;
  /** ∂loss/∂s [N, E] w.r.t. the unbiased scores, to pass to `gateBackward`/`moeBackward` as `dscores`. */
  dscores: FloatArray;
}

/**
 * The sequence-wise balance loss of one MoE layer for a batch of B sequences of T tokens
 * (routing rows ordered r = b·T + t), and its gradient w.r.t. the router scores.
 */
export function sequenceBalanceLoss(
  config: ModelConfig,
  routing: Routing,
  B: number,
  T: number,
  alpha = 1e-4,
  opts: BalanceLossOptions = {},
): BalanceLossResult {
  const E = config.nRoutedExperts;
  const K = config.numExpertsPerTok;
  const N = B * T;
  const { scores, indices } = routing;
  if (scores.length !== N * E) throw new ShapeError(`balance loss: scores have ${scores.length} elements, expected B·T·E = ${B}·${T}·${E}`);
  if (indices.length !== N * K) throw new ShapeError(`balance loss: indices have ${indices.length} elements, expected B·T·K = ${B}·${T}·${K}`);
  const dscores = allocate(dtypeOf(scores), N * E);
  const f = new Float64Array(E);
  const chosen = new Int32Array(K);
  let total = 0;
  for (let b = 0; b < B; b++) {
    // f_e = E/(K·T) · (number of tokens of this sequence that select e)
    f.fill(0);
    for (let t = 0; t < T; t++) {
      const r = b * T + t;
      if (opts.literalTopk === true) topkUnbiased(scores, r * E, E, K, chosen);
      else chosen.set(indices.subarray(r * K, (r + 1) * K));
      for (let k = 0; k < K; k++) f[chosen[k]!]! += E / (K * T);
    }
    // Σ_e f_e·P_e = (1/T) Σ_t Σ_e f_e·s_{e,t}/S_t, S_t = Σ_j s_{j,t}
    let seq = 0;
    for (let t = 0; t < T; t++) {
      const o = (b * T + t) * E;
      let S = 0;
      let fs = 0;
      for (let e = 0; e < E; e++) {
        S += scores[o + e]!;
        fs += f[e]! * scores[o + e]!;
      }
      seq += fs / S / T;
      // ∂L/∂s_{j,t} = α/(B·T) · (f_j/S_t − Σ_e f_e·s_{e,t}/S_t²)
      const c = alpha / (B * T);
      for (let j = 0; j < E; j++) dscores[o + j] = c * (f[j]! / S - fs / (S * S));
    }
    total += seq;
  }
  return { loss: (alpha * total) / B, dscores };
}

/** The K largest of s[o..o+E), descending, ties → lower index, into `out`. */
function topkUnbiased(s: FloatArray, o: number, E: number, K: number, out: Int32Array): void {
  for (let k = 0; k < K; k++) {
    let best = -1;
    for (let e = 0; e < E; e++) {
      let taken = false;
      for (let j = 0; j < k; j++) if (out[j] === e) taken = true;
      if (!taken && (best < 0 || s[o + e]! > s[o + best]!)) best = e;
    }
    out[k] = best;
  }
}
