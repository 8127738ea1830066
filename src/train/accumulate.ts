import { InputError, ShapeError } from '../errors.js';
import { allocateResident, kernelsFor, releaseResident } from '../kernels/index.js';
import { IGNORE_INDEX } from '../model/loss.js';
import type { TokenBatch } from '../model/model.js';
import { Tensor } from '../tensor.js';

/** Number of non-ignored (≠ −100) targets of a batch: its `labels` [B, T] if given, else ids[:, 1:]. */
export function countTargets(batch: TokenBatch): number {
  const { ids, B, T, labels } = batch;
  if (ids.length !== B * (T + 1)) throw new ShapeError(`countTargets: ids has ${ids.length} entries, expected B·(T+1) = ${B}·${T + 1}`);
  if (labels !== undefined && labels.length !== B * T) throw new ShapeError(`countTargets: labels have ${labels.length} entries, expected B·T = ${B * T}`);
  let n = 0;
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const y = labels !== undefined ? labels[b * T + t] : ids[b * (T + 1) + t + 1];
      if (y !== IGNORE_INDEX) n++;
    }
  }
  return n;
}

/**
 * Zeroed buffers shaped like `params` restricted to `names` (default: all), for state a training loop keeps across
 * steps (gradients, accumulators, optimizer moments): f32 ones live in the wasm backend's memory where it is shared
 * (`allocateResident`), so the kernels update them in place without copies. Give them back with {@link releaseBuffers}.
 */
export function residentBuffers(params: Map<string, Tensor>, names: readonly string[] = [...params.keys()], owner = 'residentBuffers'): Map<string, Tensor> {
  return new Map(
    names.map((n) => {
      const p = params.get(n);
      if (p === undefined) throw new InputError(`${owner}: no parameter '${n}'`);
      return [n, new Tensor(p.shape, allocateResident(p.dtype, p.size))];
    }),
  );
}

/** Releases buffers from {@link residentBuffers} (their wasm memory is reused; they must not be used afterwards). */
export function releaseBuffers(buffers: Map<string, Tensor>): void {
  for (const t of buffers.values()) releaseResident(t.data);
}

/**
 * Gradient accumulation over micro-batches (SPEC §5.8). A micro-batch's gradient is of its
 * token-MEAN loss over N_k targets; adding it with weight N_k/N_global makes the sum the gradient
 * of the mean over the whole global batch (1/n_micro is right only when all N_k are equal).
 */
export class GradientAccumulator {
  /** The accumulated gradients, one zeroed buffer per name. */
  readonly grads: Map<string, Tensor>;

  /** Buffers shaped like `params` restricted to `names` (default: all); resident where possible ({@link residentBuffers}). */
  constructor(params: Map<string, Tensor>, names: readonly string[] = [...params.keys()]) {
    this.grads = residentBuffers(params, names, 'GradientAccumulator');
  }

  private released = false;

  /** Gives the buffers' wasm memory back; idempotent; the accumulator must not be used afterwards. */
  release(): void {
    if (this.released) return;
    this.released = true;
    releaseBuffers(this.grads);
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
