// Character offsets (encodeWithOffsets) compared with the Rust binding's Encoding.getOffsets(),
// getTokens() and getIds(): on the real DeepSeek-V3 file (curated corpus and fast-check strings),
// with ByteLevel trim_offsets, and on small tokenizers whose normalizers change the length.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { Tokenizer } from '../../src/tokenizer/tokenizer.js';
import { trainBpe } from '../../src/tokenizer/trainer.js';
import { DSV3_TOKENIZER, LONG, rust, type RustTokenizer } from './oracle.js';

const here = dirname(fileURLToPath(import.meta.url));
const corpus = JSON.parse(readFileSync(join(here, '../fixtures/tokenizer/corpus.json'), 'utf8')) as string[];
const dsv3Json = JSON.parse(readFileSync(DSV3_TOKENIZER, 'utf8')) as Record<string, unknown>;
const ADDED = new Set((dsv3Json['added_tokens'] as Array<{ content: string }>).map((t) => t.content));

interface RustFull {
  getIds(): number[];
  getTokens(): string[];
  getOffsets(): number[][];
}

/** Ids, tokens and offsets of both sides for one string. */
async function compare(ours: Tokenizer, r: RustTokenizer, s: string, addSpecialTokens = true) {
  const a = ours.encodeWithOffsets(s, { addSpecialTokens });
  const b = (await r.encode(s, null, { addSpecialTokens })) as unknown as RustFull;
  expect({ s, ids: a.ids, tokens: a.tokens, offsets: a.offsets }).toEqual({ s, ids: b.getIds(), tokens: b.getTokens(), offsets: b.getOffsets() });
  // The ids are those of the fast path.
  expect(a.ids).toEqual(ours.encode(s, { addSpecialTokens }));
}

/** Pieces that stress offsets: multi-byte chars split by byte-level tokens, astral chars, marks, length-changing normalizations. */
const PIECES = [
  ' ', '  ', '\n', '\r\n', '\t', '\u3000', '\u0085', '0', '12345', 'a', 'Hello', ' world', "'s", '.com', '_x', '!', '?!', '中文', 'ひら', 'カタ',
  'é', 'e\u0301', '\u0301', 'ﬁ', 'İ', 'ß', 'Σ', 'ǅ', '①', '㎏', '한국', '\u1100\u1161', 'Å', '\u212b', '👍', '🏽', '\u200d', '👨‍👩‍👧', '𝔘', 'ا', 'ש',
  '<｜User｜>', '<｜begin▁of▁sentence｜>', '<|EOT|>', '\ud800', '\udfff', '\ufffd', '▁', 'a\u0323\u0302',
];
const arbText = fc.string({
  unit: fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...PIECES) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) },
  ),
  maxLength: 30,
});

describe('DeepSeek-V3 offsets vs Rust', () => {
  let ours: Tokenizer;
  let oracle: RustTokenizer;
  beforeAll(() => {
    ours = Tokenizer.fromJSON(dsv3Json);
    oracle = rust.Tokenizer.fromFile(DSV3_TOKENIZER);
  });

  it('the unit is the code point (Rust char): a split emoji gives both byte tokens its range', async () => {
    // 😀 is one char (two UTF-16 units, four bytes), encoded as two byte-level tokens.
    const e = ours.encodeWithOffsets('😀a');
    expect(e.offsets).toEqual([[0, 1], [0, 1], [1, 2]]);
    expect(ours.encodeWithOffsets('😀a', { offsetUnit: 'utf16' }).offsets).toEqual([[0, 2], [0, 2], [2, 3]]);
    await compare(ours, oracle, '😀a');
  });

  it('curated corpus: identical ids, tokens and offsets', async () => {
    for (const s of corpus) await compare(ours, oracle, s);
    await compare(ours, oracle, corpus.join('\n'));
  });

  it('fast-check strings (lone surrogates, astral chars, added tokens) agree', async () => {
    await fc.assert(
      fc.asyncProperty(arbText, async (s) => {
        await compare(ours, oracle, s);
      }),
      { seed: 51, numRuns: LONG ? 5000 : 300 },
    );
  });

  it('the span fast path equals the general alignment-tracking path', () => {
    const tracked = (s: string) => (ours as unknown as { offsetsTracked(s: string): unknown }).offsetsTracked(s);
    fc.assert(
      fc.property(arbText, (s0) => {
        const s = (s0 as unknown as { toWellFormed(): string }).toWellFormed();
        expect(ours.encodeWithOffsets(s, { addSpecialTokens: false })).toEqual(tracked(s));
      }),
      { seed: 56, numRuns: 300 },
    );
    const all = corpus.join('\n');
    expect(ours.encodeWithOffsets(all)).toEqual(tracked(all));
  });

  it('definition: each token spans the smallest run of whole chars holding its bytes (UTF-16 units)', () => {
    const utf8 = new TextEncoder();
    fc.assert(
      fc.property(arbText, (s0) => {
        const s = (s0 as unknown as { toWellFormed(): string }).toWellFormed();
        // UTF-16 start of the char holding each byte of s, and the UTF-16 end of that char.
        const charStart: number[] = [];
        const charEnd: number[] = [];
        for (let i = 0; i < s.length; ) {
          const w = s.codePointAt(i)! > 0xffff ? 2 : 1;
          for (let k = 0; k < utf8.encode(s.slice(i, i + w)).length; k++) {
            charStart.push(i);
            charEnd.push(i + w);
          }
          i += w;
        }
        const e = ours.encodeWithOffsets(s, { offsetUnit: 'utf16' });
        let byte = 0;
        e.ids.forEach((_id, k) => {
          // A byte-level vocabulary token has one char per byte; an added token is its own text.
          const len = ADDED.has(e.tokens[k]!) ? utf8.encode(e.tokens[k]!).length : e.tokens[k]!.length;
          expect(e.offsets[k]).toEqual([charStart[byte], charEnd[byte + len - 1]]);
          byte += len;
        });
        expect(byte).toBe(charStart.length);
      }),
      { seed: 52, numRuns: 300 },
    );
  });

  for (const aps of [false, true]) {
    it(`ByteLevel post-processor trim_offsets: true, add_prefix_space: ${aps}`, async () => {
      const json = { ...dsv3Json, post_processor: { type: 'ByteLevel', add_prefix_space: aps, trim_offsets: true, use_regex: true } };
      const t = Tokenizer.fromJSON(json);
      const r = rust.Tokenizer.fromString(JSON.stringify(json));
      for (const s of ['  hi  there ', ' a', 'x  \n  y', '\u3000z', ' <｜User｜> ok']) await compare(t, r, s);
      await fc.assert(
        fc.asyncProperty(arbText, async (s) => {
          await compare(t, r, s);
        }),
        { seed: 53, numRuns: LONG ? 2000 : 100 },
      );
    });
  }
});

describe('offsets through normalizers, pre-tokenizers and added tokens vs Rust', () => {
  const TRAIN = ['the cat sat on the mat', 'fi ﬁ ǆ café naïve ß', '한국어 日本語 ①②', 'it is 12345 ok', 'hello world hello'];
  const base = trainBpe(TRAIN, { vocabSize: 320, specialTokens: ['<s>', '</s>'] });
  const n = Object.keys((base['model'] as { vocab: object }).vocab).length;
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  const added = [
    { id: 0, content: '<s>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
    { id: 1, content: '</s>', single_word: false, lstrip: true, rstrip: true, normalized: false, special: true },
    { id: n, content: '[x]', single_word: false, lstrip: true, rstrip: false, normalized: true, special: false },
    { id: n + 1, content: 'tok', single_word: true, lstrip: false, rstrip: true, normalized: true, special: false },
  ];
  const EXTRA = ['ﬁne İstanbul ß', 'e\u0301 é Å \u212b', 'a\u0323\u0302 \u1e69', '  lead and trail  ', '①② ㎏', '[X] a tok b </s>  c', ' [x]tok  ', '한국 \u1100\u1161\u11a8', ''];
  const cases: Array<[string, Record<string, unknown>]> = [
    ['NFKC', { normalizer: { type: 'NFKC' }, pre_tokenizer: byteLevel }],
    ['NFC', { normalizer: { type: 'NFC' }, pre_tokenizer: byteLevel }],
    ['NFD', { normalizer: { type: 'NFD' }, pre_tokenizer: byteLevel }],
    ['NFKD + StripAccents + Lowercase', { normalizer: { type: 'Sequence', normalizers: [{ type: 'NFKD' }, { type: 'StripAccents' }, { type: 'Lowercase' }] }, pre_tokenizer: byteLevel }],
    ['Lowercase', { normalizer: { type: 'Lowercase' }, pre_tokenizer: byteLevel }],
    ['Strip', { normalizer: { type: 'Strip', strip_left: true, strip_right: true }, pre_tokenizer: byteLevel }],
    ['Prepend + Replace', { normalizer: { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: '▁' }, { type: 'Replace', pattern: { String: ' ' }, content: '▁' }] }, pre_tokenizer: byteLevel }],
    ['Replace regex to longer and empty', { normalizer: { type: 'Sequence', normalizers: [{ type: 'Replace', pattern: { Regex: '\\s+' }, content: ' __ ' }, { type: 'Replace', pattern: { String: 'a' }, content: '' }] }, pre_tokenizer: byteLevel }],
    ['ByteLevel add_prefix_space + ByteLevel trim_offsets post-processor', { pre_tokenizer: { ...byteLevel, add_prefix_space: true }, post_processor: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true } }],
    ['Metaspace + Digits + Whitespace split', { pre_tokenizer: { type: 'Sequence', pretokenizers: [{ type: 'WhitespaceSplit' }, { type: 'Digits', individual_digits: true }, byteLevel] } }],
    ['TemplateProcessing', {
      normalizer: { type: 'Lowercase' },
      pre_tokenizer: byteLevel,
      post_processor: {
        type: 'TemplateProcessing',
        single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '</s>', type_id: 0 } }],
        pair: [{ Sequence: { id: 'A', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } }],
        special_tokens: { '<s>': { id: '<s>', ids: [0], tokens: ['<s>'] }, '</s>': { id: '</s>', ids: [1], tokens: ['</s>'] } },
      },
    }],
  ];
  for (const [name, part] of cases) {
    it(name, async () => {
      const json = { ...base, added_tokens: added, ...part };
      const ours = Tokenizer.fromJSON(json);
      const r = rust.Tokenizer.fromString(JSON.stringify(json));
      for (const s of EXTRA) await compare(ours, r, s);
      await fc.assert(
        fc.asyncProperty(arbText, async (s) => {
          await compare(ours, r, s);
        }),
        { seed: 54, numRuns: LONG ? 2000 : 150 },
      );
    });
  }

  it('Metaspace with byte_fallback, unk and fused unk (Llama-style char BPE)', async () => {
    const v: Record<string, number> = { '<unk>': 0, '▁': 1, a: 2, b: 3, c: 4, '▁a': 5, ab: 6 };
    for (let b = 0; b < 256; b++) v[`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`] = 7 + b;
    for (const [fallback, fuse] of [[true, false], [false, false], [false, true]] as const) {
      const json = {
        version: '1.0', truncation: null, padding: null,
        added_tokens: [{ id: 0, content: '<unk>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }],
        normalizer: { type: 'Sequence', normalizers: [{ type: 'NFKC' }] },
        pre_tokenizer: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'first', split: true },
        post_processor: null, decoder: null,
        model: { type: 'BPE', dropout: null, unk_token: '<unk>', fuse_unk: fuse, byte_fallback: fallback, vocab: v, merges: ['▁ a', 'a b'], continuing_subword_prefix: null, end_of_word_suffix: null },
      };
      const ours = Tokenizer.fromJSON(json);
      const r = rust.Tokenizer.fromString(JSON.stringify(json));
      for (const s of ['ab cab é', 'xyz ab', ' ﬁ a', '<unk>a 👍']) await compare(ours, r, s);
      await fc.assert(
        fc.asyncProperty(arbText, async (s) => {
          await compare(ours, r, s);
        }),
        { seed: 55, numRuns: LONG ? 1000 : 100 },
      );
    }
  });
});
