/**
 * Hand-written matchers for the Split patterns of DeepSeek-V3's tokenizer.json, used instead of
 * the translated RegExp when a pattern's Oniguruma source is exactly one of them. Each visits the
 * matches of the pattern over the piece `text[start, end)` (the piece is the whole regex input:
 * look-aheads see its end) with `onig` `find_iter` semantics, in UTF-16 indices, without
 * allocating substrings. Character classes are those of the translation in regex.ts (property
 * classes restricted to the Unicode version of the Rust library); the equivalence with the
 * translated RegExp is property-tested in tests/tokenizer/native_patterns.test.ts.
 */
import { compileOnigRegex } from './regex.js';

/** Visit the match spans of a pattern over `text[start, end)`. */
export type NativeMatcher = (text: string, start: number, end: number, visit: (s: number, e: number) => void) => void;

const N = 1;
const L = 2;
const M = 4;
const P = 8;
const S = 16;
const WS = 32;

/** Class bits of each BMP code unit, built on first use from the translated classes. */
let bmp: Uint8Array | null = null;
const astral = new Map<number, number>();
let classRes: Array<[RegExp, number]> = [];

function classRegexes(): Array<[RegExp, number]> {
  // The same translation as the Split patterns go through (restricted property classes, \s = White_Space).
  const one = (p: string) => new RegExp(compileOnigRegex(p).source, 'gv');
  return [
    [one('\\p{N}'), N],
    [one('\\p{L}'), L],
    [one('\\p{M}'), M],
    [one('\\p{P}'), P],
    [one('\\p{S}'), S],
    [one('\\s'), WS],
  ];
}

function buildBmp(): Uint8Array {
  const t = new Uint8Array(0x10000);
  classRes = classRegexes();
  const units: string[] = new Array(0x10000);
  for (let c = 0; c < 0x10000; c++) units[c] = c >= 0xd800 && c < 0xe000 ? '\0' : String.fromCharCode(c);
  const all = units.join('');
  for (const [re, bit] of classRes) for (const m of all.matchAll(re)) if (m.index < 0xd800 || m.index >= 0xe000) t[m.index]! |= bit;
  return t;
}

/** Class bits of a code point. */
function cls(cp: number): number {
  if (cp < 0x10000) return (bmp ??= buildBmp())[cp]!;
  let v = astral.get(cp);
  if (v === undefined) {
    if (bmp === null) bmp = buildBmp();
    const ch = String.fromCodePoint(cp);
    v = 0;
    for (const [re, bit] of classRes) {
      re.lastIndex = 0;
      const m = re.exec(ch);
      if (m !== null && m.index === 0 && m[0].length === ch.length) v |= bit;
    }
    astral.set(cp, v);
  }
  return v;
}

/** Code point at i (a surrogate pair only if it ends by `end`) and its width, in one number: cp·4 + width. */
function cpAt(text: string, i: number, end: number): number {
  const c = text.charCodeAt(i);
  if (c >= 0xd800 && c < 0xdc00 && i + 1 < end) {
    const d = text.charCodeAt(i + 1);
    if (d >= 0xdc00 && d < 0xe000) return (0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00)) * 4 + 2;
  }
  return c * 4 + 1;
}

/** End of the run of chars with any of `bits` starting at i (i itself included if it qualifies). */
function runEnd(text: string, i: number, end: number, bits: number): number {
  while (i < end) {
    const c = text.charCodeAt(i);
    if (c < 0xd800 || c >= 0xe000) {
      if (((bmp ??= buildBmp())[c]! & bits) === 0) return i;
      i++;
    } else {
      const x = cpAt(text, i, end);
      if ((cls(x >>> 2) & bits) === 0) return i;
      i += x & 3;
    }
  }
  return i;
}

/** `\p{N}{1,3}`: runs of numbers cut in groups of three from the left. */
const digits: NativeMatcher = (text, start, end, visit) => {
  let i = start;
  while (i < end) {
    const x = cpAt(text, i, end);
    const w = x & 3;
    if ((cls(x >>> 2) & N) === 0) {
      i += w;
      continue;
    }
    let j = i + w;
    for (let k = 1; k < 3 && j < end; k++) {
      const y = cpAt(text, j, end);
      if ((cls(y >>> 2) & N) === 0) break;
      j += y & 3;
    }
    visit(i, j);
    i = j;
  }
};

const isKanaOrIdeograph = (c: number) => (c >= 0x4e00 && c <= 0x9fa5) || (c >= 0x3040 && c <= 0x30ff);

/** `[一-龥぀-ゟ゠-ヿ]+` (all BMP). */
const cjk: NativeMatcher = (text, start, end, visit) => {
  let i = start;
  while (i < end) {
    if (!isKanaOrIdeograph(text.charCodeAt(i))) {
      i++;
      continue;
    }
    let j = i + 1;
    while (j < end && isKanaOrIdeograph(text.charCodeAt(j))) j++;
    visit(i, j);
    i = j;
  }
};

/** The 32 ASCII punctuation chars of the first alternative, by code. */
const ASCII_PUNCT = new Uint8Array(128);
for (const ch of '!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~') ASCII_PUNCT[ch.charCodeAt(0)] = 1;
const isAsciiLetter = (c: number) => (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
const isNewline = (c: number) => c === 0x0a || c === 0x0d;

/**
 * The main pattern, alternatives tried in order at each position (leftmost-first):
 *   1 `[!"#…~][A-Za-z]+`   2 `[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+`   3 ` ?[\p{P}\p{S}]+[\r\n]*`
 *   4 `\s*[\r\n]+`          5 `\s+(?!\S)`                               6 `\s+`
 * Returns the end of the match at p, or −1 when no alternative matches there.
 */
function mainAt(text: string, p: number, end: number): number {
  const x0 = cpAt(text, p, end);
  const c0 = x0 >>> 2;
  const w0 = x0 & 3;
  const f0 = cls(c0);
  // 1: one ASCII punctuation mark, then ASCII letters (greedy; nothing follows, no backtracking).
  if (c0 < 128 && ASCII_PUNCT[c0] === 1 && p + 1 < end && isAsciiLetter(text.charCodeAt(p + 1))) {
    let q = p + 2;
    while (q < end && isAsciiLetter(text.charCodeAt(q))) q++;
    return q;
  }
  // 2: a letter/mark run, optionally led by one char that is not CR/LF/L/P/S. A leading M is
  // both: either way the match ends where the L|M run from p ends.
  if ((f0 & (L | M)) !== 0) return runEnd(text, p + w0, end, L | M);
  if ((f0 & (L | P | S)) === 0 && !isNewline(c0) && p + w0 < end) {
    const x1 = cpAt(text, p + w0, end);
    if ((cls(x1 >>> 2) & (L | M)) !== 0) return runEnd(text, p + w0 + (x1 & 3), end, L | M);
  }
  // 3: optional space, punctuation/symbol run, then CR/LF run.
  const q0 = c0 === 0x20 ? p + 1 : p;
  if (q0 < end) {
    const xq = q0 === p ? x0 : cpAt(text, q0, end);
    if ((cls(xq >>> 2) & (P | S)) !== 0) {
      let q = runEnd(text, q0 + (xq & 3), end, P | S);
      while (q < end && isNewline(text.charCodeAt(q))) q++;
      return q;
    }
  }
  if ((f0 & WS) === 0) return -1;
  // White_Space chars are all in the BMP.
  const w = runEnd(text, p + 1, end, WS);
  // 4: `\s*[\r\n]+` ends after the last CR/LF of the whitespace run.
  for (let k = w - 1; k >= p; k--) if (isNewline(text.charCodeAt(k))) return k + 1;
  // 5: `\s+(?!\S)`: the whole run at the end of the piece, else all but its last char;
  // 6: `\s+` for a single space before a non-space.
  if (w === end) return w;
  return w - p >= 2 ? w - 1 : w;
}

const main: NativeMatcher = (text, start, end, visit) => {
  let p = start;
  while (p < end) {
    const e = mainAt(text, p, end);
    if (e < 0) {
      const c = text.charCodeAt(p);
      p += c >= 0xd800 && c < 0xdc00 && p + 1 < end && (text.charCodeAt(p + 1) & 0xfc00) === 0xdc00 ? 2 : 1;
      continue;
    }
    visit(p, e);
    p = e;
  }
};

/** The DeepSeek-V3 Split patterns (Oniguruma source, as in tokenizer.json) with a native matcher. */
const NATIVE = new Map<string, NativeMatcher>([
  ['\\p{N}{1,3}', digits],
  ['[一-龥぀-ゟ゠-ヿ]+', cjk],
  ["[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+", main],
]);

/** The native matcher of an Oniguruma pattern source, if there is one. */
export function nativeMatcher(pattern: string): NativeMatcher | null {
  return NATIVE.get(pattern) ?? null;
}
