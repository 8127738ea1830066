/**
 * Cross-entropy over rows of logits (SPEC §5.1): `torch.nn.functional.cross_entropy` with
 * `reduction = "mean"` and `ignore_index = −100`, log-softmax with max-subtraction (through the kernels).
 */
import { InputError } from '../errors.js';
import { kernelsFor } from '../kernels/index.js';
import { allocate, dtypeOf, type FloatArray } from '../tensor.js';

/** The ignore index of torch's cross_entropy: targets equal to it contribute nothing. */
export const IGNORE_INDEX = -100;

/** Result of {@link crossEntropyLoss}. */
export interface CrossEntropyResult {
  /** sum / denominator (0 when nothing is counted). */
  loss: number;
  /** Σ −log softmax(logits_r)[target_r] over non-ignored rows. */
  sum: number;
  /** Number of non-ignored rows. */
  count: number;
  /** The denominator used (count unless given). */
  denominator: number;
}

/** Checks targets lie in [0, vocab) or equal the ignore index; the error names the row. */
export function validateTargets(targets: Int32Array, rows: number, vocab: number, what = 'target'): void {
  for (let r = 0; r < rows; r++) {
    const t = targets[r]!;
    if (t !== IGNORE_INDEX && (t < 0 || t >= vocab)) throw new InputError(`${what} ${t} at row ${r} is outside [0, ${vocab}) and is not ${IGNORE_INDEX}`);
  }
}

/**
 * Mean cross-entropy of `logits` [rows, vocab] against `targets` [rows], i.e. Σ_r CE_r / denominator, with
 * denominator = the number of non-ignored rows unless `denominator` is given (the MTP loss uses T, SPEC §4.2;
 * gradient accumulation uses the global target count, SPEC §5.8).
 */
export function crossEntropyLoss(
  logits: FloatArray,
  targets: Int32Array,
  rows: number,
  vocab: number,
  opts: { denominator?: number } = {},
): CrossEntropyResult {
  validateTargets(targets, rows, vocab);
  const losses = allocate(dtypeOf(logits), rows);
  const { sum, count } = kernelsFor(dtypeOf(logits)).crossEntropyForward(logits, targets, losses, rows, vocab, IGNORE_INDEX);
  const denominator = opts.denominator ?? count;
  return { loss: denominator > 0 ? sum / denominator : 0, sum, count, denominator };
}

/** dlogits[r,:] += (softmax(logits_r) − onehot(target_r)) / denominator for non-ignored rows (SPEC §5.1). */
export function crossEntropyLossBackward(
  logits: FloatArray,
  targets: Int32Array,
  dlogits: FloatArray,
  rows: number,
  vocab: number,
  denominator: number,
): void {
  if (denominator <= 0) return;
  kernelsFor(dtypeOf(logits)).crossEntropyBackward(logits, targets, dlogits, rows, vocab, IGNORE_INDEX, 1 / denominator);
}
