/**
 * tokenizer.json pre-tokenizers: split normalized text into pieces ("pre-tokens") that the model
 * encodes independently (Rust `tokenizers` `pre_tokenizers::*`, `NormalizedString::split`).
 */
import { FormatError, UnsupportedError } from '../errors.js';
import { preview, previewText } from '../preview.js';
import { BYTE_TO_CHAR, GPT2_SPLIT_PATTERN, toByteLevel, utf8Encode } from './byte_level.js';
import { sequenceField, stringField } from './json_fields.js';
import { nativeMatcher, type NativeMatcher } from './native_patterns.js';
import type { NormalizedText } from './normalized_text.js';
import { compileJsonPattern, compileOnigRegex, findAllMatches, forEachMatch, isNewerThanRust, RUST_WORD_CLASS } from './regex.js';
import { RUST_PUNCTUATION } from './unicode_compat.js';

/** A piece of text; `origin` is true when it starts at offset 0 of the original input. */
export interface PreToken {
  text: string;
  origin: boolean;
}

/** Receives the pieces a pre-tokenizer produces, left to right. */
export type PreTokenSink = (text: string, origin: boolean) => void;

/** Receives the spans [start, end) (UTF-16 indices) of the pieces a cutting stage produces. */
export type SpanSink = (start: number, end: number) => void;

/** A stage that only cuts a piece `text[start, end)` into non-empty sub-pieces, in order. */
export type Cutter = (text: string, start: number, end: number, emit: SpanSink) => void;

/**
 * The pre-tokenizer as index arithmetic, when it only cuts text and, at most, maps each final
 * piece to the byte-level alphabet: the fast `encode` path runs it on the input without creating
 * a substring per piece.
 */
export interface SpanPlan {
  /** Cutting stages, applied in order to each piece of the previous stage. */
  cutters: Cutter[];
  /** Whether each final piece is mapped to the byte-level alphabet (ByteLevel last). */
  byteLevel: boolean;
}

/** A pre-tokenizer: splits a piece into finer pieces (never emits an empty piece). */
export interface TokenizerPreTokenizer {
  /** Stream the pieces of one non-empty piece into `emit` (no intermediate arrays). */
  each(text: string, origin: boolean, emit: PreTokenSink): void;
  /** Array form of {@link TokenizerPreTokenizer.each} over several pieces. */
  preTokenize(pieces: PreToken[]): PreToken[];
  /** The offset-tracking form (Rust `PreTokenizedString::split` on `NormalizedString`s). */
  eachTracked(text: NormalizedText, emit: (piece: NormalizedText) => void): void;
  /** The span form, or null when a stage changes the text other than by a final byte-level map. */
  readonly plan: SpanPlan | null;
}

/** Build a pre-tokenizer from its three forms; empty input pieces are skipped, as Rust filters them. */
function preTokenizer(
  each: (text: string, origin: boolean, emit: PreTokenSink) => void,
  eachTracked: (text: NormalizedText, emit: (piece: NormalizedText) => void) => void,
  plan: SpanPlan | null,
): TokenizerPreTokenizer {
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
    eachTracked: (t, emit) => {
      if (t.text.length > 0) eachTracked(t, emit);
    },
    plan,
  };
}

/** A pre-tokenizer that only cuts: all three forms from the cutter. */
function cutting(cut: Cutter): TokenizerPreTokenizer {
  return preTokenizer(
    (text, origin, emit) => cut(text, 0, text.length, (s, e) => emit(s === 0 && e === text.length ? text : text.slice(s, e), origin && s === 0)),
    (t, emit) => cut(t.text, 0, t.text.length, (s, e) => emit(t.slice(s, e))),
    { cutters: [cut], byteLevel: false },
  );
}

/** Run a cutter written for whole strings on `text[start, end)`. */
function onPiece(cut: (piece: string, emit: SpanSink) => void): Cutter {
  return (text, start, end, emit) => {
    const piece = start === 0 && end === text.length ? text : text.slice(start, end);
    cut(piece, start === 0 ? emit : (s, e) => emit(start + s, start + e));
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

/** Apply a split behaviour to segments and emit the spans of the kept, non-empty pieces. */
function splitInto(seg: Segments, behavior: SplitBehavior, emit: SpanSink): void {
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
    emit(s, e);
  }
}

/**
 * `Isolated` without `invert` (the DeepSeek-V3 and GPT-2 case): matches and the gaps between them
 * become pieces directly, same result as regexSegments + splitInto. Uses the native matcher of
 * the pattern when there is one, else the translated RegExp on the piece.
 */
function isolatedCutter(re: RegExp, native: NativeMatcher | null): Cutter {
  if (native !== null) {
    return (text, start, end, emit) => {
      let prev = start;
      native(text, start, end, (s, e) => {
        if (prev < s) emit(prev, s);
        emit(s, e);
        prev = e;
      });
      if (prev < end) emit(prev, end);
    };
  }
  return onPiece((text, emit) => {
    let prev = 0;
    forEachMatch(re, text, (s, e) => {
      if (prev < s) emit(prev, s);
      if (s < e) emit(s, e);
      prev = e;
    });
    if (prev < text.length) emit(prev, text.length);
  });
}

function behaviorOf(v: unknown, where: string): SplitBehavior {
  if (BEHAVIORS.includes(v as SplitBehavior)) return v as SplitBehavior;
  throw new FormatError('tokenizer.json', `${where}: unknown split behavior ${preview(v)}`);
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
  const bySegments = (seg: (text: string) => Segments, behavior: SplitBehavior) => cutting(onPiece((t, emit) => splitInto(seg(t), behavior, emit)));
  switch (type) {
    case 'Sequence': {
      return sequencePreTokenizer(sequenceField(o, 'pretokenizers', 'pre_tokenizer Sequence', preTokenizerFromJSON));
    }
    case 'Split': {
      const re = compileJsonPattern(o['pattern'], 'pre_tokenizer Split');
      const behavior = behaviorOf(o['behavior'], 'pre_tokenizer Split');
      const invert = o['invert'] === true;
      const pattern = o['pattern'] as Record<string, unknown> | null;
      const native = typeof pattern?.['Regex'] === 'string' ? nativeMatcher(pattern['Regex']) : null;
      if (behavior === 'Isolated' && !invert) return cutting(isolatedCutter(re, native));
      return bySegments((t) => regexSegments(re, t, invert), behavior);
    }
    case 'ByteLevel':
      return byteLevelPreTokenizer(o['add_prefix_space'] === true, o['use_regex'] !== false);
    case 'Digits':
      return bySegments((t) => charSegments(isNumeric, t), o['individual_digits'] === true ? 'Isolated' : 'Contiguous');
    case 'Whitespace':
      return bySegments((t) => regexSegments(WHITESPACE_RE, t, true), 'Removed');
    case 'WhitespaceSplit':
      return bySegments((t) => charSegments(isWhitespace, t), 'Removed');
    case 'Punctuation': {
      const behavior = o['behavior'] === undefined ? 'Isolated' : behaviorOf(o['behavior'], 'pre_tokenizer Punctuation');
      return bySegments((t) => charSegments(isPunctuation, t), behavior);
    }
    case 'BertPreTokenizer':
      return sequencePreTokenizer([bySegments((t) => charSegments(isWhitespace, t), 'Removed'), bySegments((t) => charSegments(isPunctuation, t), 'Isolated')]);
    case 'CharDelimiterSplit': {
      const d = stringField(o, 'delimiter', 'pre_tokenizer CharDelimiterSplit').codePointAt(0);
      return bySegments((t) => charSegments((cp) => cp === d, t), 'Removed');
    }
    case 'Metaspace':
      return metaspacePreTokenizer(o);
    default:
      throw new UnsupportedError(`tokenizer.json pre_tokenizer '${previewText(type)}' is not supported`);
  }
}

let gpt2Cutter: Cutter | null = null;

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
  const eachTracked = (t: NormalizedText, emit: (p: NormalizedText) => void, i = 0): void => {
    if (i === list.length) emit(t);
    else list[i]!.eachTracked(t, (p) => eachTracked(p, emit, i + 1));
  };
  // The span form exists when every stage has one and only the last maps to byte-level.
  let plan: SpanPlan | null = { cutters: [], byteLevel: false };
  for (const pt of list) {
    if (pt.plan === null || plan === null || plan.byteLevel) {
      plan = null;
      break;
    }
    plan = { cutters: [...plan.cutters, ...pt.plan.cutters], byteLevel: pt.plan.byteLevel };
  }
  return preTokenizer(
    (t, o, emit) => {
      const saved = sink;
      sink = emit;
      try {
        stages[0]!(t, o);
      } finally {
        sink = saved;
      }
    },
    (t, emit) => eachTracked(t, emit),
    plan,
  );
}

/** The byte-level form of a tracked piece: each char → one alphabet char per UTF-8 byte (Rust `ByteLevel` transform). */
function byteLevelTracked(t: NormalizedText): NormalizedText {
  const dest: number[] = [];
  for (const ch of t.text) {
    const bytes = utf8Encode(ch);
    for (let i = 0; i < bytes.length; i++) dest.push(BYTE_TO_CHAR[bytes[i]!]!.charCodeAt(0), i > 0 ? 1 : 0);
  }
  return t.transform(dest, 0);
}

/** ByteLevel: optional prefix space, optional GPT-2 regex split, then bytes → alphabet chars. */
function byteLevelPreTokenizer(addPrefixSpace: boolean, useRegex: boolean): TokenizerPreTokenizer {
  if (useRegex) gpt2Cutter ??= isolatedCutter(compileOnigRegex(GPT2_SPLIT_PATTERN), null);
  const cut = gpt2Cutter;
  return preTokenizer(
    (t, o, emit) => {
      const text = addPrefixSpace && !t.startsWith(' ') ? ' ' + t : t;
      if (useRegex) cut!(text, 0, text.length, (s, e) => emit(toByteLevel(text.slice(s, e)), o && s === 0));
      else emit(toByteLevel(text), o);
    },
    (t0, emit) => {
      const t = addPrefixSpace && !t0.text.startsWith(' ') ? t0.prepend(' ') : t0;
      if (useRegex) cut!(t.text, 0, t.text.length, (s, e) => emit(byteLevelTracked(t.slice(s, e))));
      else emit(byteLevelTracked(t));
    },
    // A prefix space changes the text, so only the plain form has a span plan.
    addPrefixSpace ? null : { cutters: useRegex ? [cut!] : [], byteLevel: true },
  );
}

/** Metaspace: spaces → replacement char, optional prepend (always/first/never), split before it. */
function metaspacePreTokenizer(o: Record<string, unknown>): TokenizerPreTokenizer {
  const rep = stringField(o, 'replacement', 'pre_tokenizer Metaspace', '▁');
  const repCp = rep.codePointAt(0)!;
  const scheme = metaspaceScheme(o);
  const split = o['split'] !== false;
  const cut = onPiece((t, emit) => splitInto(charSegments((cp) => cp === repCp, t), 'MergedWithNext', emit));
  return preTokenizer(
    (text, origin, emit) => {
      let t = text.replaceAll(' ', rep);
      const prepend = scheme === 'always' || (scheme === 'first' && origin);
      if (prepend && !t.startsWith(rep)) t = rep + t;
      if (split) cut(t, 0, t.length, (s, e) => emit(t.slice(s, e), origin && s === 0));
      else emit(t, origin);
    },
    (t0, emit) => {
      // Rust: replace(' ', rep), prepend by scheme (`first`: offsets_original().0 == 0), split MergedWithNext.
      let t = t0.replace(findAllMatches(SPACE, t0.text), rep);
      if ((scheme === 'always' || (scheme === 'first' && t.atStart)) && !t.text.startsWith(rep)) t = t.prepend(rep);
      if (split) cut(t.text, 0, t.text.length, (s, e) => emit(t.slice(s, e)));
      else emit(t);
    },
    null,
  );
}

const SPACE = / /g;

/** The Metaspace prepend scheme; old files only have `add_prefix_space` (true ⇒ always). */
export function metaspaceScheme(o: Record<string, unknown>): 'always' | 'first' | 'never' {
  const s = o['prepend_scheme'];
  if (s === 'always' || s === 'first' || s === 'never') return s;
  if (s === undefined) return o['add_prefix_space'] === false ? 'never' : 'always';
  throw new FormatError('tokenizer.json', `Metaspace: unknown prepend_scheme ${preview(s)}`);
}
