/**
 * Auxiliary-loss-free load balancing (SPEC §5.2, paper §2.1.2): the router bias
 * `e_score_correction_bias` is not trained by backprop; once per optimizer step it moves by a
 * fixed ±γ from the step's expert loads (all micro-batches), outside autograd.
 *
 * Arithmetic: checkpoints store the bias as F32 and training frameworks update it in float32 (torch adds
 * `float32(γ)·sign` to a float32 tensor), so by default the update is float32 arithmetic even when the bias is held
 * in a Float64Array: b ← f32(b + f32(γ)·sign). `biasDtype: 'model'` updates in the array's own precision instead.
 */
import { InputError, ShapeError } from '../errors.js';
import type { FloatArray, Tensor } from '../tensor.js';

/** Options of {@link updateRouterBias}. */
export interface RouterBiasUpdateOptions {
  /**
   * Subtract the mean of the update so Σ_e b_e stays constant: not in the paper, a variant some
   * training frameworks use. In exact arithmetic it routes like the plain rule: the two differ by a common
   * shift of every b_e, which changes no top-k ranking and shifts every top-2 group sum alike.
   */
  centred?: boolean;
  /**
   * 'float32' (default): float32 γ and a float32 add (the bias keeps float32 values whatever array holds it; a
   * value that is not a float32 is rounded by its first update). 'model': the array's precision (f64 in a float64
   * model, with γ as given).
   */
  biasDtype?: RouterBiasDType;
}

/** Arithmetic of the router-bias update: float32 (the checkpoint's dtype) or the model's precision. */
export type RouterBiasDType = 'float32' | 'model';

/**
 * In place: b_e ← b_e + γ·sign(mean − load_e), mean = Σ load / E, sign(0) = 0. Overloaded experts
 * go down by γ, underloaded ones up. `load` = (token, slot) assignments per expert over the
 * whole step. Float32 arithmetic unless `biasDtype: 'model'` (see {@link RouterBiasUpdateOptions}). Returns the bias array.
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
  const biasDtype = opts.biasDtype ?? 'float32';
  if (biasDtype !== 'float32' && biasDtype !== 'model') throw new InputError(`router bias update: biasDtype must be 'float32' or 'model', got ${JSON.stringify(biasDtype)}`);
  // r rounds every result of the update's arithmetic: to float32, or not at all (the array rounds on store)
  const r = biasDtype === 'float32' ? Math.fround : (x: number): number => x;
  let total = 0;
  for (let e = 0; e < E; e++) total += load[e]!;
  // sign(mean − load_e) = sign(Σ load − E·load_e): exact in integers
  const g = r(gamma);
  const step = new Float64Array(E);
  for (let e = 0; e < E; e++) step[e] = g * Math.sign(total - E * load[e]!);
  if (opts.centred === true) {
    // the mean of ±γ and 0 entries: (#up − #down)·γ / E, one rounding (float32: the f64 quotient rounded once more)
    let net = 0;
    for (let e = 0; e < E; e++) net += Math.sign(step[e]!);
    const mean = r((net * g) / E);
    for (let e = 0; e < E; e++) step[e] = r(step[e]! - mean);
  }
  for (let e = 0; e < E; e++) b[e] = r(b[e]! + step[e]!);
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
