/**
 * The unigram entropy of a token corpus: the loss (nats per token) of the best model that ignores
 * context, H = −Σ_v p_v·ln p_v with p_v the corpus frequency of token v. A language model has learnt
 * something beyond token frequencies only when its loss falls below it.
 */
import { InputError } from '../errors.js';

/** H = −Σ p_v ln p_v over the empirical token distribution, in nats per token (0 for a one-symbol corpus). */
export function unigramEntropy(tokens: ArrayLike<number>): number {
  if (tokens.length === 0) throw new InputError('unigramEntropy: the corpus is empty');
  const counts = new Map<number, number>();
  for (let i = 0; i < tokens.length; i++) counts.set(tokens[i]!, (counts.get(tokens[i]!) ?? 0) + 1);
  // sort the counts so the sum's rounding does not depend on the order tokens first appear in
  const sorted = [...counts.values()].sort((a, b) => a - b);
  let h = 0;
  for (const c of sorted) {
    const p = c / tokens.length;
    h -= p * Math.log(p);
  }
  return h;
}
