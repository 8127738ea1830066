import { InputError, ShapeError } from '../errors.js';
import { kernelsFor } from '../kernels/index.js';
import { Tensor } from '../tensor.js';

/** The ignored target id (torch `cross_entropy` default `ignore_index`, SPEC §5.1). */
export const IGNORE_INDEX = -100;

/** Number of non-ignored targets of a batch `ids` [B, T+1] (targets are ids[:, 1:]). */
export function countTargets(ids: Int32Array, B: number, T: number, ignoreIndex = IGNORE_INDEX): number {
  if (ids.length !== B * (T + 1)) throw new ShapeError(`countTargets: ids has ${ids.length} entries, expected B·(T+1) = ${B}·${T + 1}`);
  let n = 0;
  for (let b = 0; b < B; b++) for (let t = 1; t <= T; t++) if (ids[b * (T + 1) + t] !== ignoreIndex) n++;
  return n;
}

/**
 * Gradient accumulation over micro-batches (SPEC §5.8). A micro-batch's gradient is of its
 * token-MEAN loss over N_k targets; adding it with weight N_k/N_global makes the sum the gradient
 * of the mean over the whole global batch (1/n_micro is right only when all N_k are equal).
 */
export class GradientAccumulator {
  /** The accumulated gradients, one zeroed buffer per name. */
  readonly grads: Map<string, Tensor>;

  /** Buffers shaped like `params` restricted to `names` (default: all). */
  constructor(params: Map<string, Tensor>, names: readonly string[] = [...params.keys()]) {
    this.grads = new Map(names.map((n) => {
      const p = params.get(n);
      if (p === undefined) throw new InputError(`GradientAccumulator: no parameter '${n}'`);
      return [n, Tensor.zeros(p.shape, p.dtype)];
    }));
  }

  /** acc[name] += weight·g[name] for every accumulated name; a missing gradient counts as zero. */
  add(grads: Map<string, Tensor>, weight: number): void {
    for (const [name, acc] of this.grads) {
      const g = grads.get(name);
      if (g === undefined) continue;
      if (g.size !== acc.size || g.dtype !== acc.dtype) {
        throw new ShapeError(`GradientAccumulator.add: gradient '${name}' is ${g.dtype}[${g.shape.join(', ')}], expected ${acc.dtype}[${acc.shape.join(', ')}]`);
      }
      kernelsFor(acc.dtype).axpy(weight, g.data, acc.data, acc.size);
    }
  }

  /** Zeroes every buffer (after the optimizer step). */
  zero(): void {
    for (const acc of this.grads.values()) acc.data.fill(0);
  }
}
