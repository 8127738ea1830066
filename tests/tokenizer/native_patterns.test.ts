// The hand-written matchers of DeepSeek-V3's Split patterns against the translated RegExp they
// replace (itself tested against Rust in components.test.ts): same match spans on every string,
// on whole strings and on sub-ranges (a sub-range is the whole input of the pattern).
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { nativeMatcher } from '../../src/tokenizer/native_patterns.js';
import { compileOnigRegex, findAllMatches } from '../../src/tokenizer/regex.js';
import { DSV3_TOKENIZER, LONG } from './oracle.js';

const preTokenizer = JSON.parse(readFileSync(DSV3_TOKENIZER, 'utf8'))['pre_tokenizer'] as { pretokenizers: Array<{ type: string; pattern?: { Regex: string } }> };
const PATTERNS = preTokenizer.pretokenizers.filter((p) => p.type === 'Split').map((p) => p.pattern!.Regex);

/** One char of every class the patterns distinguish (BMP and astral), plus boundary cases. */
const CHARS = [
  'a', 'Z', 'é', 'ß', 'ǅ', 'Ω', 'ж', 'ا', 'ש', '한', '中', '龥', '龦', 'ぁ', 'ゟ', '゠', 'ヿ', 'ー', '〇', '𝔘', '𠀀',
  '\u0301', '\u0903', '\u20dd', '\u{1d167}', '0', '9', '٣', '½', 'Ⅻ', '𝟙', '①',
  '!', '"', '-', '\\', '[', ']', '_', '`', '{', '~', "'", '、', '。', '«', '\u{10100}', '$', '€', '+', '^', '👍', '🏽', '©',
  ' ', '  ', '\t', '\n', '\r', '\r\n', '\u000b', '\u0085', '\u00a0', '\u2028', '\u3000', '\ufeff', '\u200d', '\u0000', '\u00ad',
  '\u088f', '\u{1fa8a}', '\u0378', '\ud800', '\udc00', '\ufffd',
];
const arbText = fc.string({
  unit: fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...CHARS) }, { weight: 1, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) }),
  maxLength: 40,
});

describe('native matchers = translated RegExp', () => {
  it('the DeepSeek-V3 file has three Split patterns, each with a native matcher', () => {
    expect(PATTERNS).toHaveLength(3);
    for (const p of PATTERNS) expect(nativeMatcher(p)).not.toBeNull();
    expect(nativeMatcher('\\p{N}{1,2}')).toBeNull();
  });

  for (const [k, pattern] of PATTERNS.entries()) {
    it(`pattern ${k}: same spans on whole strings and on sub-ranges`, () => {
      const re = compileOnigRegex(pattern);
      const native = nativeMatcher(pattern)!;
      const spans = (text: string, a: number, b: number) => {
        const out: number[] = [];
        native(text, a, b, (s, e) => out.push(s, e));
        return out;
      };
      fc.assert(
        fc.property(arbText, fc.nat(), fc.nat(), (text, x, y) => {
          expect(spans(text, 0, text.length)).toEqual(findAllMatches(re, text));
          const a = x % (text.length + 1);
          const b = a + (y % (text.length - a + 1));
          expect(spans(text, a, b)).toEqual(findAllMatches(re, text.slice(a, b)).map((v) => v + a));
        }),
        { seed: 61 + k, numRuns: LONG ? 50000 : 3000 },
      );
    });
  }
});
