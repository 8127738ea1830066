/**
 * Hints for a comparison that fails for a reason outside the numbers: the reference was dumped with gradients
 * (so on ids[:, :-1], one position short) or under the other naming (official `layers.0.attn.wq_a` vs HF
 * `model.layers.0.self_attn.q_a_proj`).
 */
import type { TensorComparison } from './compare.js';
import type { TokenGrid } from './rows.js';

/** The naming a set of trace names uses: HF (`model.…`, `lm_head`), official (`embed`, `layers.…`, `norm`, `head`). */
export function namingOf(names: Iterable<string>): { hf: number; official: number; naming: 'hf' | 'official' | 'unknown' } {
  let hf = 0;
  let official = 0;
  for (const raw of names) {
    const n = raw.startsWith('grad.') ? raw.slice(5) : raw;
    if (/^(model[.:]|lm_head[.:])/.test(n)) hf++;
    else if (/^(embed|layers\.\d+|norm|head)[.:]/.test(n)) official++;
  }
  const naming = hf > official ? 'hf' : official > hf ? 'official' : 'unknown';
  return { hf, official, naming };
}

/**
 * A naming hint when most reference names have no library counterpart: which naming the reference seems to use
 * and whether `--official-names` should be added or dropped. Null when most names matched.
 */
export function namingHint(referenceNames: readonly string[], unmatched: number, officialNames: boolean): string | null {
  if (referenceNames.length === 0 || unmatched * 2 <= referenceNames.length) return null;
  const { hf, official, naming } = namingOf(referenceNames);
  const share = `${unmatched} of ${referenceNames.length} reference names have no library counterpart`;
  if (naming === 'official' && !officialNames) {
    return `${share}; the reference seems to use the official-code names (${official} like 'layers.0.attn:q'): add --official-names.`;
  }
  if (naming === 'hf' && officialNames) {
    return `${share}; the reference seems to use Hugging Face names (${hf} like 'model.layers.0.self_attn:q'): drop --official-names.`;
  }
  return `${share} and they match neither naming: check them against docs/trace-names.md (HF names, or official names with --official-names).`;
}

/** True when `ref` is `lib` with T one shorter: every dim equal, or one less, or B·(S−1) for B·S. */
export function offByOneInT(lib: readonly number[], ref: readonly number[], grid: TokenGrid | null): boolean {
  if (lib.length !== ref.length) return false;
  let changed = false;
  for (let i = 0; i < lib.length; i++) {
    const a = lib[i]!;
    const b = ref[i]!;
    if (a === b) continue;
    changed = true;
    if (b === a - 1) continue;
    if (grid !== null && a === grid.B * grid.S && b === grid.B * (grid.S - 1)) continue;
    return false;
  }
  return changed;
}

/**
 * The gradients hint: the reference holds `grad.*` tensors, the library run has none, and every shape mismatch
 * is one position short in T (a `--grads` dump runs on ids[:, :-1]).
 */
export function gradsHint(results: readonly TensorComparison[], referenceNames: readonly string[], libraryHasGrads: boolean, grid: TokenGrid | null): string | null {
  if (libraryHasGrads || !referenceNames.some((n) => n.startsWith('grad.'))) return null;
  const mismatched = results.filter((r) => r.shape !== null && r.referenceShape !== null && !r.shapeMatch && !r.reshaped);
  if (mismatched.length === 0 || !mismatched.every((r) => offByOneInT(r.shape!, r.referenceShape!, grid))) return null;
  return `the reference has gradients (grad.* tensors) and all ${mismatched.length} shape mismatches are one position short in T, as in a --grads dump (run on ids[:, :-1]): add --grads.`;
}
