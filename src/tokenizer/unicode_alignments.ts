/**
 * Unicode normalization WITH alignment changes, as the Rust crate
 * `unicode-normalization-alignments` (used by `tokenizers` for NFC/NFD/NFKC/NFKD offsets)
 * yields it: a stream of (char, change) where change is 0 for the first char of a char's
 * decomposition, 1 for the others, and a composition of k and c gets `change(k) + change(c) − 1`.
 * The normalization data (decompositions, compositions, canonical combining class ORDER) is read
 * from the JS engine's `String.prototype.normalize`, so the text equals `s.normalize(form)`.
 */
import type { Changes } from './normalized_text.js';

const cccCache = new Map<number, boolean>();
/** Canonical combining class ≠ 0 (every such char is a mark; tested by canonical reordering). */
function nonStarter(cp: number): boolean {
  let v = cccCache.get(cp);
  if (v === undefined) {
    const x = String.fromCodePoint(cp);
    // U+0334 has class 1 (the lowest), U+0345 class 240 (the highest): x reorders against one of them iff its class ≠ 0.
    v = cp === 0x334 || cp === 0x345 || ('A' + x + '\u0334').normalize('NFD') !== 'A' + x + '\u0334' || ('A\u0345' + x).normalize('NFD') !== 'A\u0345' + x;
    cccCache.set(cp, v);
  }
  return v;
}

const lessCache = new Map<string, boolean>();
/** ccc(x) < ccc(y) for two non-starters: canonical reordering swaps "y x" into "x y". */
function cccLess(x: number, y: number): boolean {
  const key = `${x},${y}`;
  let v = lessCache.get(key);
  if (v === undefined) {
    const a = String.fromCodePoint(x);
    const b = String.fromCodePoint(y);
    v = ('A' + b + a).normalize('NFD') === 'A' + a + b && x !== y;
    lessCache.set(key, v);
  }
  return v;
}

/** class(l) ≥ class(c), l a non-starter. */
function cccGeq(l: number, c: number): boolean {
  return !nonStarter(c) || !cccLess(l, c);
}

const composeCache = new Map<string, number>();
/** The primary composite of (a, b), or −1. */
function compose(a: number, b: number): number {
  const key = `${a},${b}`;
  let v = composeCache.get(key);
  if (v === undefined) {
    const r = (String.fromCodePoint(a) + String.fromCodePoint(b)).normalize('NFC');
    const cp = r.codePointAt(0)!;
    v = r.length === (cp > 0xffff ? 2 : 1) ? cp : -1;
    composeCache.set(key, v);
  }
  return v;
}

/** Decompositions iterator: per char its decomposition, then each starter-to-starter run stably sorted by class. */
function decompose(text: string, compat: boolean): Changes {
  const out: Changes = [];
  let pendingStart = 0; // start (in out) of the block not yet canonically ordered
  const sortPending = () => {
    // Stable insertion sort of the pending block by combining class (starters have class 0).
    for (let i = pendingStart + 2; i < out.length; i += 2) {
      const cp = out[i]!;
      const ch = out[i + 1]!;
      if (!nonStarter(cp)) continue;
      let j = i - 2;
      while (j >= pendingStart && nonStarter(out[j]!) && cccLess(cp, out[j]!)) {
        out[j + 2] = out[j]!;
        out[j + 3] = out[j + 1]!;
        j -= 2;
      }
      out[j + 2] = cp;
      out[j + 3] = ch;
    }
  };
  for (const ch of text) {
    let first = true;
    for (const d of ch.normalize(compat ? 'NFKD' : 'NFD')) {
      const cp = d.codePointAt(0)!;
      if (!nonStarter(cp)) {
        sortPending();
        pendingStart = out.length;
      }
      out.push(cp, first ? 0 : 1);
      first = false;
    }
  }
  sortPending();
  return out;
}

/** Recompositions iterator (canonical composition over the decomposition stream). */
function recompose(dec: Changes): Changes {
  const out: Changes = [];
  let composee = -1;
  let composeeChange = 0;
  let lastCcc = -1; // the last buffered non-starter (its class stands for last_ccc), −1 = None
  let buffer: Changes = [];
  const flushBuffer = () => {
    for (let k = 0; k < buffer.length; k++) out.push(buffer[k]!);
    buffer = [];
  };
  for (let i = 0; i < dec.length; i += 2) {
    const ch = dec[i]!;
    const change = dec[i + 1]!;
    const isStarter = !nonStarter(ch);
    if (composee < 0) {
      if (!isStarter) {
        out.push(ch, change);
        continue;
      }
      composee = ch;
      composeeChange = change;
      continue;
    }
    if (lastCcc < 0) {
      const r = compose(composee, ch);
      if (r >= 0) {
        composee = r;
        composeeChange = composeeChange + change - 1;
        continue;
      }
      if (isStarter) {
        out.push(composee, composeeChange);
        composee = ch;
        composeeChange = change;
        continue;
      }
      buffer.push(ch, change);
      lastCcc = ch;
      continue;
    }
    if (cccGeq(lastCcc, ch)) {
      // ch is blocked from the composee
      if (isStarter) {
        out.push(composee, composeeChange);
        composee = ch;
        composeeChange = change;
        lastCcc = -1;
        flushBuffer(); // Purging: the buffered marks follow the emitted composee
        continue;
      }
      buffer.push(ch, change);
      lastCcc = ch;
      continue;
    }
    const r = compose(composee, ch);
    if (r >= 0) {
      composee = r;
      composeeChange = composeeChange + change - 1;
      continue;
    }
    buffer.push(ch, change);
    lastCcc = ch;
  }
  // Finished: the composee, then the buffered marks.
  if (composee >= 0) out.push(composee, composeeChange);
  flushBuffer();
  return out;
}

/** The (char, change) stream of `form` applied to `text`. */
export function normalizeWithChanges(text: string, form: 'NFC' | 'NFD' | 'NFKC' | 'NFKD'): Changes {
  const dec = decompose(text, form === 'NFKC' || form === 'NFKD');
  return form === 'NFC' || form === 'NFKC' ? recompose(dec) : dec;
}
