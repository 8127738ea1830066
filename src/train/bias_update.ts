/**
 * Auxiliary-loss-free load balancing (SPEC §5.2, paper §2.1.2): the router bias
 * `e_score_correction_bias` is not trained by backprop; once per optimizer step it moves by a
 * fixed ±γ from the step's expert loads (all micro-batches), outside autograd.
 */
import { ShapeError } from '../errors.js';
import type { FloatArray, Tensor } from '../tensor.js';

/** Options of {@link updateRouterBias}. */
export interface RouterBiasUpdateOptions {
  /**
   * Subtract the mean of the update so Σ_e b_e stays constant: not in the paper, a variant some
   * training frameworks use. In exact arithmetic it routes like the plain rule: the two differ by a common
   * shift of every b_e, which changes no top-k ranking and shifts every top-2 group sum alike.
   */
  centred?: boolean;
}

/**
 * In place: b_e ← b_e + γ·sign(mean − load_e), mean = Σ load / E, sign(0) = 0. Overloaded experts
 * go down by γ, underloaded ones up. `load` = (token, slot) assignments per expert over the
 * whole step. Returns the bias array.
 */
export function updateRouterBias(
  bias: FloatArray | Tensor,
  load: ArrayLike<number>,
  gamma = 0.001,
  opts: RouterBiasUpdateOptions = {},
): FloatArray {
  const b = 'data' in bias ? bias.data : bias;
  const E = b.length;
  if (load.length !== E) throw new ShapeError(`router bias update: load has ${load.length} entries, bias has ${E}`);
  let total = 0;
  for (let e = 0; e < E; e++) total += load[e]!;
  // sign(mean − load_e) = sign(Σ load − E·load_e): exact in integers
  const step = new Float64Array(E);
  for (let e = 0; e < E; e++) step[e] = gamma * Math.sign(total - E * load[e]!);
  if (opts.centred === true) {
    let mean = 0;
    for (let e = 0; e < E; e++) mean += step[e]! / E;
    for (let e = 0; e < E; e++) step[e] = step[e]! - mean;
  }
  for (let e = 0; e < E; e++) b[e] = b[e]! + step[e]!;
  return b;
}

/** Load statistics of one MoE layer. */
export interface LoadStats {
  /** load per expert (a copy). */
  counts: number[];
  /** Σ load. */
  total: number;
  /** Σ load / E. */
  mean: number;
  max: number;
  min: number;
  /** max / mean (1 = perfectly balanced); NaN when nothing was routed. */
  maxOverMean: number;
  /** Coefficient of variation: population std / mean; NaN when nothing was routed. */
  cv: number;
}

/** Counts, mean, max, max/mean and coefficient of variation of an expert load vector. */
export function loadStats(load: ArrayLike<number>): LoadStats {
  const counts = Array.from(load);
  const E = counts.length;
  if (E === 0) throw new ShapeError('loadStats: empty load vector');
  let total = 0;
  let max = -Infinity;
  let min = Infinity;
  for (const c of counts) {
    total += c;
    max = Math.max(max, c);
    min = Math.min(min, c);
  }
  const mean = total / E;
  let v = 0;
  for (const c of counts) v += (c - mean) * (c - mean);
  const std = Math.sqrt(v / E);
  return { counts, total, mean, max, min, maxOverMean: mean > 0 ? max / mean : NaN, cv: mean > 0 ? std / mean : NaN };
}
