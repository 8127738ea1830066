/**
 * tokenizer.json pre-tokenizers: split normalized text into pieces ("pre-tokens") that the model
 * encodes independently (Rust `tokenizers` `pre_tokenizers::*`, `NormalizedString::split`).
 */
import { FormatError, UnsupportedError } from '../errors.js';
import { GPT2_SPLIT_PATTERN, toByteLevel } from './byte_level.js';
import { compileJsonPattern, compileOnigRegex, findAllMatches, forEachMatch, isNewerThanRust, RUST_WORD_CLASS } from './regex.js';
import { RUST_PUNCTUATION } from './unicode_compat.js';

/** A piece of text; `origin` is true when it starts at offset 0 of the original input. */
export interface PreToken {
  text: string;
  origin: boolean;
}

/** Receives the pieces a pre-tokenizer produces, left to right. */
export type PreTokenSink = (text: string, origin: boolean) => void;

/** A pre-tokenizer: splits a piece into finer pieces (never emits an empty piece). */
export interface TokenizerPreTokenizer {
  /** Stream the pieces of one non-empty piece into `emit` (no intermediate arrays). */
  each(text: string, origin: boolean, emit: PreTokenSink): void;
  /** Array form of {@link TokenizerPreTokenizer.each} over several pieces. */
  preTokenize(pieces: PreToken[]): PreToken[];
}

/** Wrap a streaming split function; empty input pieces are skipped, as Rust filters them. */
function preTokenizer(each: (text: string, origin: boolean, emit: PreTokenSink) => void): TokenizerPreTokenizer {
  const guarded = (t: string, o: boolean, emit: PreTokenSink) => {
    if (t.length > 0) each(t, o, emit);
  };
  return {
    each: guarded,
    preTokenize: (pieces) => {
      const out: PreToken[] = [];
      const emit: PreTokenSink = (text, origin) => out.push({ text, origin });
      for (const p of pieces) guarded(p.text, p.origin, emit);
      return out;
    },
  };
}

/** How matched delimiters are kept (Rust `SplitDelimiterBehavior`). */
export type SplitBehavior = 'Removed' | 'Isolated' | 'MergedWithPrevious' | 'MergedWithNext' | 'Contiguous';

const BEHAVIORS: readonly SplitBehavior[] = ['Removed', 'Isolated', 'MergedWithPrevious', 'MergedWithNext', 'Contiguous'];

/**
 * Segments of `text` as Rust `Pattern::find_matches` returns them: a flat list
 * [start, end, isMatch(0|1), ...] covering the whole text (one non-match segment for "").
 */
type Segments = number[];

function regexSegments(re: RegExp, text: string, invert: boolean): Segments {
  if (text.length === 0) return [0, 0, invert ? 1 : 0];
  const m = findAllMatches(re, text);
  const out: Segments = [];
  const yes = invert ? 0 : 1;
  let prev = 0;
  for (let k = 0; k < m.length; k += 2) {
    if (prev !== m[k]) out.push(prev, m[k]!, 1 - yes);
    out.push(m[k]!, m[k + 1]!, yes);
    prev = m[k + 1]!;
  }
  if (prev !== text.length) out.push(prev, text.length, 1 - yes);
  return out;
}

/** Each code point satisfying `pred` is its own match segment (Rust `impl Pattern for Fn(char)`). */
function charSegments(pred: (cp: number) => boolean, text: string): Segments {
  const out: Segments = [];
  let last = 0;
  for (let i = 0; i < text.length; ) {
    const cp = text.codePointAt(i)!;
    const w = cp > 0xffff ? 2 : 1;
    if (pred(cp)) {
      if (last < i) out.push(last, i, 0);
      out.push(i, i + w, 1);
      last = i + w;
    }
    i += w;
  }
  if (text.length > last) out.push(last, text.length, 0);
  return out;
}

/** Apply a split behaviour to segments and emit the kept, non-empty pieces. */
function splitInto(text: string, origin: boolean, seg: Segments, behavior: SplitBehavior, emit: PreTokenSink): void {
  const spans: number[] = []; // [start, end, remove]
  const n = seg.length / 3;
  if (behavior === 'Isolated') {
    for (let k = 0; k < n; k++) spans.push(seg[3 * k]!, seg[3 * k + 1]!, 0);
  } else if (behavior === 'Removed') {
    for (let k = 0; k < n; k++) spans.push(seg[3 * k]!, seg[3 * k + 1]!, seg[3 * k + 2]!);
  } else if (behavior === 'Contiguous' || behavior === 'MergedWithPrevious') {
    let prevMatch = 0;
    for (let k = 0; k < n; k++) {
      const isMatch = seg[3 * k + 2]!;
      const join = behavior === 'Contiguous' ? isMatch === prevMatch : isMatch === 1 && prevMatch === 0;
      if (join && spans.length > 0) spans[spans.length - 2] = seg[3 * k + 1]!;
      else spans.push(seg[3 * k]!, seg[3 * k + 1]!, 0);
      prevMatch = isMatch;
    }
  } else {
    // MergedWithNext: the same fold run from the right, a match joins the piece after it.
    const rev: number[] = [];
    let prevMatch = 0;
    for (let k = n - 1; k >= 0; k--) {
      const isMatch = seg[3 * k + 2]!;
      if (isMatch === 1 && prevMatch === 0 && rev.length > 0) rev[rev.length - 3] = seg[3 * k]!;
      else rev.push(seg[3 * k]!, seg[3 * k + 1]!, 0);
      prevMatch = isMatch;
    }
    for (let k = rev.length - 3; k >= 0; k -= 3) spans.push(rev[k]!, rev[k + 1]!, 0);
  }
  for (let k = 0; k < spans.length; k += 3) {
    const s = spans[k]!;
    const e = spans[k + 1]!;
    if (spans[k + 2] === 1 || s === e) continue;
    emit(text.slice(s, e), origin && s === 0);
  }
}

/**
 * Fast path of `Isolated` without `invert` (the DeepSeek-V3 and GPT-2 case): matches and the
 * gaps between them become pieces directly, same result as regexSegments + splitInto.
 */
function splitIsolated(re: RegExp, text: string, origin: boolean, emit: PreTokenSink): void {
  let prev = 0;
  forEachMatch(re, text, (s, e) => {
    if (prev < s) emit(text.slice(prev, s), origin && prev === 0);
    if (s < e) emit(text.slice(s, e), origin && s === 0);
    prev = e;
  });
  if (prev < text.length) emit(prev === 0 ? text : text.slice(prev), origin && prev === 0);
}

function behaviorOf(v: unknown, where: string): SplitBehavior {
  if (BEHAVIORS.includes(v as SplitBehavior)) return v as SplitBehavior;
  throw new FormatError('tokenizer.json', `${where}: unknown split behavior ${JSON.stringify(v)}`);
}

const WHITE_SPACE = /^\p{White_Space}$/u;
const NUMERIC = /^\p{N}$/u;
/** The exact set of Rust tokenizers' `is_punctuation` (its unicode_categories tables are older than JS's). */
const PUNCT = new RegExp(`^[${RUST_PUNCTUATION}]$`, 'v');
/** Rust `char::is_whitespace` (Unicode White_Space). */
const isWhitespace = (cp: number) => WHITE_SPACE.test(String.fromCodePoint(cp)) && !isNewerThanRust(cp);
/** Rust `char::is_numeric` (general categories Nd, Nl, No). */
const isNumeric = (cp: number) => (cp >= 0x30 && cp <= 0x39) || (cp >= 0x80 && NUMERIC.test(String.fromCodePoint(cp)) && !isNewerThanRust(cp));
/** tokenizers' `is_punctuation`: ASCII punctuation or a Unicode P* category (in Rust's tables). */
const isPunctuation = (cp: number) =>
  (cp >= 0x21 && cp <= 0x2f) || (cp >= 0x3a && cp <= 0x40) || (cp >= 0x5b && cp <= 0x60) || (cp >= 0x7b && cp <= 0x7e) || PUNCT.test(String.fromCodePoint(cp));

/** Rust regex-crate `\w+|[^\w\s]+` (Whitespace pre-tokenizer): Unicode word = Alphabetic, M, Nd, Pc, Join_Control. */
const WHITESPACE_RE = new RegExp(`${RUST_WORD_CLASS}+|[^${RUST_WORD_CLASS}\\p{White_Space}]+`, 'gv');

/** Build a pre-tokenizer from its tokenizer.json object; null for `"pre_tokenizer": null`. */
export function preTokenizerFromJSON(json: unknown): TokenizerPreTokenizer | null {
  if (json === null || json === undefined) return null;
  const o = json as Record<string, unknown>;
  const type = o['type'];
  switch (type) {
    case 'Sequence': {
      return sequencePreTokenizer(((o['pretokenizers'] as unknown[]) ?? []).map((p) => preTokenizerFromJSON(p)!));
    }
    case 'Split': {
      const re = compileJsonPattern(o['pattern'], 'pre_tokenizer Split');
      const behavior = behaviorOf(o['behavior'], 'pre_tokenizer Split');
      const invert = o['invert'] === true;
      if (behavior === 'Isolated' && !invert) return preTokenizer((t, o, emit) => splitIsolated(re, t, o, emit));
      return preTokenizer((t, o, emit) => splitInto(t, o, regexSegments(re, t, invert), behavior, emit));
    }
    case 'ByteLevel':
      return byteLevelPreTokenizer(o['add_prefix_space'] === true, o['use_regex'] !== false);
    case 'Digits': {
      const behavior: SplitBehavior = o['individual_digits'] === true ? 'Isolated' : 'Contiguous';
      return preTokenizer((t, o, emit) => splitInto(t, o, charSegments(isNumeric, t), behavior, emit));
    }
    case 'Whitespace':
      return preTokenizer((t, o, emit) => splitInto(t, o, regexSegments(WHITESPACE_RE, t, true), 'Removed', emit));
    case 'WhitespaceSplit':
      return preTokenizer((t, o, emit) => splitInto(t, o, charSegments(isWhitespace, t), 'Removed', emit));
    case 'Punctuation': {
      const behavior = o['behavior'] === undefined ? 'Isolated' : behaviorOf(o['behavior'], 'pre_tokenizer Punctuation');
      return preTokenizer((t, o, emit) => splitInto(t, o, charSegments(isPunctuation, t), behavior, emit));
    }
    case 'BertPreTokenizer':
      return sequencePreTokenizer([
        preTokenizer((t, o, emit) => splitInto(t, o, charSegments(isWhitespace, t), 'Removed', emit)),
        preTokenizer((t, o, emit) => splitInto(t, o, charSegments(isPunctuation, t), 'Isolated', emit)),
      ]);
    case 'CharDelimiterSplit': {
      const d = String(o['delimiter']).codePointAt(0);
      return preTokenizer((t, o, emit) => splitInto(t, o, charSegments((cp) => cp === d, t), 'Removed', emit));
    }
    case 'Metaspace':
      return metaspacePreTokenizer(o);
    default:
      throw new UnsupportedError(`tokenizer.json pre_tokenizer '${String(type)}' is not supported`);
  }
}

let gpt2Regex: RegExp | null = null;

/**
 * Sequence: each stage streams into the next. The stage sinks are built once; the final sink is
 * swapped in per call (saved and restored, so nested use is safe).
 */
function sequencePreTokenizer(list: TokenizerPreTokenizer[]): TokenizerPreTokenizer {
  let sink: PreTokenSink = () => {};
  const stages: PreTokenSink[] = new Array(list.length + 1);
  stages[list.length] = (t, o) => sink(t, o);
  for (let i = list.length - 1; i >= 0; i--) {
    const next = stages[i + 1]!;
    const pt = list[i]!;
    stages[i] = (t, o) => pt.each(t, o, next);
  }
  return preTokenizer((t, o, emit) => {
    const saved = sink;
    sink = emit;
    try {
      stages[0]!(t, o);
    } finally {
      sink = saved;
    }
  });
}

/** ByteLevel: optional prefix space, optional GPT-2 regex split, then bytes → alphabet chars. */
function byteLevelPreTokenizer(addPrefixSpace: boolean, useRegex: boolean): TokenizerPreTokenizer {
  if (useRegex) gpt2Regex ??= compileOnigRegex(GPT2_SPLIT_PATTERN);
  return preTokenizer((t, o, emit) => {
    const text = addPrefixSpace && !t.startsWith(' ') ? ' ' + t : t;
    if (useRegex) splitIsolated(gpt2Regex!, text, o, (s, so) => emit(toByteLevel(s), so));
    else emit(toByteLevel(text), o);
  });
}

/** Metaspace: spaces → replacement char, optional prepend (always/first/never), split before it. */
function metaspacePreTokenizer(o: Record<string, unknown>): TokenizerPreTokenizer {
  const rep = String(o['replacement'] ?? '▁');
  const repCp = rep.codePointAt(0)!;
  const scheme = metaspaceScheme(o);
  const split = o['split'] !== false;
  return preTokenizer((text, origin, emit) => {
    let t = text.replaceAll(' ', rep);
    const prepend = scheme === 'always' || (scheme === 'first' && origin);
    if (prepend && !t.startsWith(rep)) t = rep + t;
    if (split) splitInto(t, origin, charSegments((cp) => cp === repCp, t), 'MergedWithNext', emit);
    else emit(t, origin);
  });
}

/** The Metaspace prepend scheme; old files only have `add_prefix_space` (true ⇒ always). */
export function metaspaceScheme(o: Record<string, unknown>): 'always' | 'first' | 'never' {
  const s = o['prepend_scheme'];
  if (s === 'always' || s === 'first' || s === 'never') return s;
  if (s === undefined) return o['add_prefix_space'] === false ? 'never' : 'always';
  throw new FormatError('tokenizer.json', `Metaspace: unknown prepend_scheme ${JSON.stringify(s)}`);
}
