/**
 * Held-out loss: the mean next-token cross-entropy of a model over consecutive windows of a token
 * corpus (forward only, no MTP, no balance loss), the figure to hold against the unigram entropy.
 */
import { InputError } from '../errors.js';
import { crossEntropyLoss } from '../model/loss.js';
import type { DeepSeekV3 } from '../model/model.js';

/** Options of {@link heldOutLoss}. */
export interface HeldOutOptions {
  /** Positions predicted per window (each window reads T+1 tokens). */
  seqLen: number;
  /** Windows per forward call (default 8). */
  batch?: number;
  /** Stop after this many windows (default: every whole window of the corpus). */
  maxWindows?: number;
}

/**
 * Mean CE (nats/token) over non-overlapping windows tokens[s, s+T] (inputs [s, s+T), targets [s+1, s+T]),
 * s = 0, T, 2T, …, every predicted token weighted alike.
 */
export function heldOutLoss(model: DeepSeekV3, tokens: Int32Array, opts: HeldOutOptions): number {
  const T = opts.seqLen;
  const perCall = opts.batch ?? 8;
  const total = Math.min(Math.floor((tokens.length - 1) / T), opts.maxWindows ?? Infinity);
  if (!(total >= 1)) throw new InputError(`heldOutLoss: ${tokens.length} tokens hold no window of seqLen+1 = ${T + 1}`);
  const V = model.config.vocabSize;
  let sum = 0;
  let count = 0;
  for (let w0 = 0; w0 < total; w0 += perCall) {
    const B = Math.min(perCall, total - w0);
    const inputs = new Int32Array(B * T);
    const targets = new Int32Array(B * T);
    for (let b = 0; b < B; b++) {
      const s = (w0 + b) * T;
      inputs.set(tokens.subarray(s, s + T), b * T);
      targets.set(tokens.subarray(s + 1, s + T + 1), b * T);
    }
    const { logits } = model.forward(inputs, { B, T });
    const ce = crossEntropyLoss(logits.data, targets, B * T, V);
    sum += ce.sum;
    count += ce.count;
  }
  return sum / count;
}
