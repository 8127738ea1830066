/**
 * tokenizer.json normalizers: string → string transforms applied to each piece of text that is
 * not an added token matched on the raw input (Rust `tokenizers` `normalizers::*`).
 * Each normalizer also has an offset-tracking form ({@link NormalizedText}) that follows Rust's
 * `NormalizedString` alignment rules, used by `Tokenizer.encodeWithOffsets`.
 */
import { UnsupportedError } from '../errors.js';
import { previewText } from '../preview.js';
import { compileJsonPattern, findAllMatches, replaceAll } from './regex.js';
import { sequenceField, stringField } from './json_fields.js';
import { RUST_COMBINING_MARKS } from './unicode_compat.js';
import type { NormalizedText } from './normalized_text.js';
import { normalizeWithChanges } from './unicode_alignments.js';

/** A normalizer: a pure string transform. */
export interface TokenizerNormalizer {
  /** Normalize one piece of text. */
  normalize(text: string): string;
  /** The same transform on offset-tracked text (same resulting text, Rust's alignments). */
  normalizeTracked(text: NormalizedText): NormalizedText;
}

const LEADING_WS = /^\p{White_Space}+/u;
const TRAILING_WS = /\p{White_Space}+$/u;
/** Rust StripAccents' combining marks (exact set of its tables, which predate JS's). */
const COMBINING = new RegExp(`[${RUST_COMBINING_MARKS}]`, 'gv');
const COMBINING_ONE = new RegExp(`^[${RUST_COMBINING_MARKS}]$`, 'v');
const WHITE_SPACE_ONE = /^\p{White_Space}$/u;
const isWhiteSpace = (cp: number) => WHITE_SPACE_ONE.test(String.fromCodePoint(cp));

/** Whether a tokenizer.json normalizer leaves every text unchanged (null, or Sequences of nothing). */
export function isIdentityNormalizer(json: unknown): boolean {
  if (json === null || json === undefined) return true;
  const o = json as Record<string, unknown>;
  return o['type'] === 'Sequence' && ((o['normalizers'] as unknown[]) ?? []).every(isIdentityNormalizer);
}

/** Build a normalizer from its tokenizer.json object; null for `"normalizer": null`. */
export function normalizerFromJSON(json: unknown): TokenizerNormalizer | null {
  if (json === null || json === undefined) return null;
  const o = json as Record<string, unknown>;
  const type = o['type'];
  switch (type) {
    case 'Sequence': {
      const list = sequenceField(o, 'normalizers', 'normalizer Sequence', normalizerFromJSON);
      return {
        normalize: (t: string) => list.reduce((s: string, n) => n.normalize(s), t),
        normalizeTracked: (t) => list.reduce((s: NormalizedText, n) => n.normalizeTracked(s), t),
      };
    }
    case 'NFC':
    case 'NFD':
    case 'NFKC':
    case 'NFKD':
      return { normalize: (t) => t.normalize(type), normalizeTracked: (t) => t.transform(normalizeWithChanges(t.text, type), 0) };
    case 'Lowercase':
      // Rust lower-cases char by char (no final-sigma rule), unlike String.prototype.toLowerCase on a word.
      return {
        normalize: (t) => {
          let out = '';
          for (const ch of t) out += ch.toLowerCase();
          return out;
        },
        normalizeTracked: (t) => t.lowercase(),
      };
    case 'Strip': {
      const left = o['strip_left'] === true;
      const right = o['strip_right'] === true;
      return {
        normalize: (t) => {
          let s = t;
          if (left) s = s.replace(LEADING_WS, '');
          if (right) s = s.replace(TRAILING_WS, '');
          return s;
        },
        normalizeTracked: (t) => t.strip(left, right, isWhiteSpace),
      };
    }
    case 'StripAccents':
      // Removes combining marks; meaningful after NFD/NFKD, as in Rust.
      return { normalize: (t) => t.replace(COMBINING, ''), normalizeTracked: (t) => t.filter((cp) => !COMBINING_ONE.test(String.fromCodePoint(cp))) };
    case 'Prepend': {
      const p = stringField(o, 'prepend', 'normalizer Prepend');
      return { normalize: (t) => (t.length === 0 ? t : p + t), normalizeTracked: (t) => t.prepend(p) };
    }
    case 'Replace': {
      const re = compileJsonPattern(o['pattern'], 'normalizer Replace');
      const content = stringField(o, 'content', 'normalizer Replace');
      return { normalize: (t) => replaceAll(t, re, content), normalizeTracked: (t) => t.replace(findAllMatches(re, t.text), content) };
    }
    default:
      throw new UnsupportedError(`tokenizer.json normalizer '${previewText(type)}' is not supported`);
  }
}
