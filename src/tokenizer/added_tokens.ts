/**
 * Added tokens (tokenizer.json `added_tokens`): strings matched in the text BEFORE
 * pre-tokenisation and mapped straight to their id, exactly as Rust `AddedVocabulary` does:
 * tokens with `normalized: false` are matched on the raw text, the others on the normalized text;
 * each set is matched leftmost-longest; `single_word` rejects a match touching a word character;
 * `lstrip`/`rstrip` swallow the whitespace to the left/right of the match.
 */
import { FormatError } from '../errors.js';
import { escapeRegexLiteral, RUST_WORD_CLASS } from './regex.js';

/** One added token as stored in tokenizer.json. */
export interface AddedTokenConfig {
  /** Ignored on load, as in Rust: see {@link AddedVocabulary}. */
  id: number;
  content: string;
  single_word?: boolean;
  lstrip?: boolean;
  rstrip?: boolean;
  normalized?: boolean;
  special?: boolean;
}

/** A piece of the input after added-token extraction: text to tokenize, or a matched token id. */
export interface AddedSplit {
  text: string;
  /** Id of the matched added token, or -1 for ordinary text. */
  id: number;
  /** True when the piece starts at offset 0 of the input. */
  origin: boolean;
  /** Start of the piece in the text that was split (UTF-16 index). */
  start: number;
}

// Rust regex crate classes used by AddedVocabulary: `\w` is Alphabetic|M|Nd|Pc|Join_Control, `\s` White_Space.
const STARTS_WITH_WORD = new RegExp(`^${RUST_WORD_CLASS}`, 'v');
const ENDS_WITH_WORD = new RegExp(`${RUST_WORD_CLASS}$`, 'v');
const TRAILING_SPACE = /\p{White_Space}*$/u;
const LEADING_SPACE = /^\p{White_Space}*/u;

/**
 * Leftmost-longest matcher over a set of strings (the Aho-Corasick `LeftmostLongest` semantics):
 * one RegExp alternation with the longest strings first, since a backtracking alternation takes
 * the first alternative that matches at the leftmost position.
 */
class LeftmostLongest {
  private readonly re: RegExp | null;
  private readonly byContent = new Map<string, AddedTokenConfig>();

  constructor(tokens: AddedTokenConfig[], key: (t: AddedTokenConfig) => string) {
    for (const t of tokens) {
      const k = key(t);
      if (k.length > 0 && !this.byContent.has(k)) this.byContent.set(k, { ...t, content: k });
    }
    const keys = [...this.byContent.keys()].sort((x, y) => y.length - x.length);
    this.re = keys.length === 0 ? null : new RegExp(keys.map(escapeRegexLiteral).join('|'), 'gv');
  }

  get empty(): boolean {
    return this.re === null;
  }

  /** The leftmost-longest match starting at or after `from`: [start, end, token] or null. */
  find(text: string, from: number): [number, number, AddedTokenConfig] | null {
    const re = this.re!;
    re.lastIndex = from;
    const m = re.exec(text);
    if (m === null) return null;
    return [m.index, m.index + m[0].length, this.byContent.get(m[0])!];
  }
}

/** `normalized` defaults to true in the Rust AddedToken, except that special tokens default to false. */
const isNormalized = (t: AddedTokenConfig) => t.normalized ?? t.special !== true;

/** The added vocabulary of a tokenizer. */
export class AddedVocabulary {
  readonly byId = new Map<number, AddedTokenConfig>();
  readonly byContent = new Map<string, number>();
  /** Contents of tokens flagged `special` (skipped by `decode(…, {skipSpecialTokens})`). */
  readonly specialContents = new Set<string>();
  /** Decode-time form of normalized tokens whose content the normalizer changes. */
  private readonly normalizedForm = new Map<number, string>();
  private readonly raw: LeftmostLongest;
  private readonly normalized: LeftmostLongest;

  /**
   * `modelVocab` resolves contents already in the model vocabulary. Ids are assigned as Rust's
   * deserializer does: the JSON `id` is NOT used; a token keeps its model-vocabulary id if it has
   * one, otherwise it gets the next id from `modelSize` on (Rust only warns on a mismatch).
   */
  constructor(tokens: AddedTokenConfig[], normalize: ((s: string) => string) | null, modelVocab: { get(token: string): number | undefined }, modelSize: number) {
    let nextId = modelSize;
    tokens.forEach((t0, k) => {
      if (typeof t0.content !== 'string') throw new FormatError('tokenizer.json', `added_tokens[${k}] needs a string 'content'`);
      if (t0.content.length === 0) return;
      const id = this.byContent.get(t0.content) ?? modelVocab.get(t0.content) ?? nextId++;
      const t = { ...t0, id };
      this.byId.set(id, t);
      this.byContent.set(t.content, id);
      if (t.special === true) this.specialContents.add(t.content);
      if (isNormalized(t) && normalize !== null) {
        const n = normalize(t.content);
        if (n !== t.content) this.normalizedForm.set(id, n);
      }
    });
    const all = [...this.byId.values()];
    this.raw = new LeftmostLongest(all.filter((t) => !isNormalized(t)), (t) => t.content);
    this.normalized = new LeftmostLongest(all.filter(isNormalized), (t) => this.normalizedForm.get(t.id) ?? t.content);
  }

  /** The string an id decodes to (the normalized form for normalized tokens), or undefined. */
  decodeForm(id: number): string | undefined {
    const t = this.byId.get(id);
    return t === undefined ? undefined : (this.normalizedForm.get(id) ?? t.content);
  }

  /** Split raw text on the non-normalized added tokens. */
  splitRaw(text: string, origin: boolean, out: AddedSplit[]): void {
    splitOn(this.raw, text, origin, out);
  }

  /** Split normalized text on the normalized added tokens. */
  splitNormalized(text: string, origin: boolean, out: AddedSplit[]): void {
    splitOn(this.normalized, text, origin, out);
  }
}

/** Rust `AddedVocabulary::find_matches` + `split_with_indices` (empty pieces are dropped by the caller). */
function splitOn(m: LeftmostLongest, text: string, origin: boolean, out: AddedSplit[]): void {
  if (m.empty || text.length === 0) {
    out.push({ text, id: -1, origin, start: 0 });
    return;
  }
  let startOffset = 0;
  let from = 0;
  for (;;) {
    const hit = m.find(text, from);
    if (hit === null) break;
    let [start, stop] = hit;
    const tok = hit[2];
    from = stop;
    if (tok.single_word === true) {
      const startSpace = start === 0 || !ENDS_WITH_WORD.test(text.slice(0, start));
      const stopSpace = stop === text.length || !STARTS_WITH_WORD.test(text.slice(stop));
      if (!startSpace || !stopSpace) continue;
    }
    if (tok.lstrip === true) {
      const newStart = TRAILING_SPACE.exec(text.slice(0, start))!.index;
      start = Math.max(newStart, startOffset);
    }
    if (tok.rstrip === true) stop += LEADING_SPACE.exec(text.slice(stop))![0].length;
    if (startOffset < start) out.push({ text: text.slice(startOffset, start), id: -1, origin: origin && startOffset === 0, start: startOffset });
    out.push({ text: text.slice(start, stop), id: tok.id, origin: origin && start === 0, start });
    startOffset = stop;
  }
  if (startOffset !== text.length) out.push({ text: text.slice(startOffset), id: -1, origin: origin && startOffset === 0, start: startOffset });
}
