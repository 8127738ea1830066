import { kernelsFor } from '../kernels/index.js';
import type { Tensor } from '../tensor.js';

/** G = sqrt(Σ_p ‖g_p‖²) over all gradients, accumulated in f64 in map order. */
export function globalGradNorm(grads: Map<string, Tensor>): number {
  let sumSq = 0;
  for (const g of grads.values()) {
    const d = g.data;
    for (let i = 0; i < d.length; i++) sumSq += d[i]! * d[i]!;
  }
  return Math.sqrt(sumSq);
}

/**
 * Global-norm gradient clipping as `torch.nn.utils.clip_grad_norm_` (SPEC §5.6): with
 * c = maxNorm/(G + 1e-6), every gradient is multiplied by c iff c < 1. Returns G (before clipping).
 */
export function clipGradNorm(grads: Map<string, Tensor>, maxNorm = 1.0): number {
  const norm = globalGradNorm(grads);
  const c = maxNorm / (norm + 1e-6);
  if (c < 1) {
    for (const g of grads.values()) kernelsFor(g.dtype).scale(g.data, c, g.size);
  }
  return norm;
}
