/** Looking weights up by HF name: the one place that turns a missing tensor into a WeightsError naming it. */
import { WeightsError } from '../errors.js';
import type { Tensor } from '../tensor.js';

/** The tensor `name` of `weights`; a missing one is a WeightsError naming it (and `why`, when given). */
export function requireTensor(weights: ReadonlyMap<string, Tensor>, name: string, why?: string): Tensor {
  const t = weights.get(name);
  if (t === undefined) throw new WeightsError(`missing tensor '${name}'${why !== undefined ? ` (${why})` : ''}`);
  return t;
}
