// BPE trainer round trip through the Rust binding, and full tokenizer pipelines with the options
// DeepSeek-V3 does not use (added-token lstrip/rstrip/single_word/normalized, TemplateProcessing,
// byte_fallback, continuing_subword_prefix, end_of_word_suffix, unk), all compared with Rust.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Tokenizer } from '../../src/tokenizer/tokenizer.js';
import { trainBpe } from '../../src/tokenizer/trainer.js';
import { parseIdsText } from '../../src/cli/commands/tokenize.js';
import { InputError } from '../../src/errors.js';
import { LONG, rust } from './oracle.js';

const TRAIN_TEXT = [
  'the cat sat on the mat. the cat ate the rat!',
  "it's 12345 o'clock; numbers 0 1 22 333 4444",
  '深度求索 人工智能 日本語のテキスト',
  'def f(x):\n    return x * 2\n\nprint(f(21))',
  'emoji 👍🏽 and café and naïve and façade',
];

const arbText = fc.string({
  unit: fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom('the', ' cat', ' ', '  ', '\n', '1', '234', "'s", '.', '!', '<s>', '</s>', '[X]', 'tok', '深度', '👍', 'é', 'ab', 'Ab', '_', '\t') },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) },
  ),
  maxLength: 25,
});
const RUNS = LONG ? 5000 : 300;

async function agree(json: Record<string, unknown>, extra: string[] = [], addSpecial = true) {
  const ours = Tokenizer.fromJSON(json);
  const r = rust.Tokenizer.fromString(JSON.stringify(json));
  const check = async (s: string) => {
    const ids = ours.encode(s, { addSpecialTokens: addSpecial });
    expect(ids).toEqual((await r.encode(s, null, { addSpecialTokens: addSpecial })).getIds());
    expect(ours.decode(ids)).toBe(await r.decode(ids, false));
    expect(ours.decode(ids, { skipSpecialTokens: true })).toBe(await r.decode(ids, true));
  };
  for (const s of extra) await check(s);
  await fc.assert(
    fc.asyncProperty(arbText, async (s) => {
      await check(s);
    }),
    { seed: 21, numRuns: RUNS },
  );
}

describe('BPE trainer', () => {
  const trained = trainBpe(TRAIN_TEXT, { vocabSize: 330, specialTokens: ['<s>', '</s>'] });

  it('is deterministic and has the requested size', () => {
    expect(JSON.stringify(trainBpe(TRAIN_TEXT, { vocabSize: 330, specialTokens: ['<s>', '</s>'] }))).toBe(JSON.stringify(trained));
    const model = trained['model'] as { vocab: Record<string, number>; merges: unknown[] };
    expect(Object.keys(model.vocab).length).toBe(330);
    expect(model.merges.length).toBe(330 - 2 - 256);
    expect(model.vocab['<s>']).toBe(0);
  });

  it('first merge is the most frequent pair, ties to the smallest id pair (definition check)', () => {
    // Independent recount of adjacent byte-level pairs in the pre-tokenized corpus.
    const ours = Tokenizer.fromJSON(trained);
    const model = trained['model'] as { vocab: Record<string, number>; merges: Array<[string, string]> };
    const counts = new Map<string, number>();
    const r = rust.Tokenizer.fromString(JSON.stringify(trained)).getPreTokenizer()!;
    for (const t of TRAIN_TEXT) {
      for (const [w] of r.preTokenizeString(t)) {
        const cs = [...w];
        for (let k = 0; k + 1 < cs.length; k++) counts.set(`${cs[k]}\u0000${cs[k + 1]}`, (counts.get(`${cs[k]}\u0000${cs[k + 1]}`) ?? 0) + 1);
      }
    }
    const max = Math.max(...counts.values());
    const best = [...counts.entries()]
      .filter(([, c]) => c === max)
      .map(([k]) => k.split('\u0000') as [string, string])
      .sort((x, y) => model.vocab[x[0]]! - model.vocab[y[0]]! || model.vocab[x[1]]! - model.vocab[y[1]]!)[0]!;
    expect(model.merges[0]).toEqual(best);
    expect(ours.vocabSize).toBe(330);
  });

  it('the trained tokenizer.json loads in Rust and both agree on every string', async () => {
    await agree(trained, [...TRAIN_TEXT, '<s>the cat</s>']);
  });

  it('rejects a vocabulary smaller than specials + 256 bytes', () => {
    expect(() => trainBpe(['x'], { vocabSize: 100 })).toThrow(InputError);
  });
});

describe('full pipelines vs Rust', () => {
  const base = trainBpe(TRAIN_TEXT, { vocabSize: 350, specialTokens: ['<s>', '</s>'] });
  const vocab = (base['model'] as { vocab: Record<string, number> }).vocab;
  const n = Object.keys(vocab).length;

  it('GPT-2 style ByteLevel pre-tokenizer, added tokens with lstrip/rstrip/single_word/normalized, TemplateProcessing', async () => {
    await agree(
      {
        ...base,
        normalizer: { type: 'NFC' },
        pre_tokenizer: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
        added_tokens: [
          { id: 0, content: '<s>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
          { id: 1, content: '</s>', single_word: false, lstrip: true, rstrip: true, normalized: false, special: true },
          { id: n, content: '[X]', single_word: false, lstrip: true, rstrip: false, normalized: true, special: false },
          { id: n + 1, content: 'tok', single_word: true, lstrip: false, rstrip: false, normalized: true, special: false },
          { id: n + 2, content: 'é', single_word: false, lstrip: false, rstrip: true, normalized: true, special: false },
        ],
        post_processor: {
          type: 'TemplateProcessing',
          single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '</s>', type_id: 0 } }],
          pair: [{ Sequence: { id: 'A', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } }],
          special_tokens: { '<s>': { id: '<s>', ids: [0], tokens: ['<s>'] }, '</s>': { id: '</s>', ids: [1], tokens: ['</s>'] } },
        },
      },
      ['a tok b', 'atok', 'tok_', ' [X] y', 'x  </s>  y', 'e\u0301 é  z'],
    );
  });

  it('Metaspace + BPE with byte_fallback, unk, continuing_subword_prefix and end_of_word_suffix', async () => {
    const v: Record<string, number> = { '<unk>': 0, '▁': 1, a: 2, b: 3, c: 4, '##a': 5, '##b': 6, '##c': 7, 'b</w>': 8, 'a</w>': 9, 'c</w>': 10, '▁a': 11, '##ab': 12, '##b</w>': 13, 'ab</w>': 270 };
    for (let b = 0; b < 256; b++) v[`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`] = 14 + b;
    const model = (extra: Record<string, unknown>) => ({
      type: 'BPE',
      dropout: null,
      unk_token: '<unk>',
      fuse_unk: false,
      byte_fallback: false,
      vocab: v,
      merges: [],
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      ...extra,
    });
    const shell = (m: Record<string, unknown>) => ({
      version: '1.0',
      truncation: null,
      padding: null,
      added_tokens: [{ id: 0, content: '<unk>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }],
      normalizer: null,
      pre_tokenizer: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'always', split: true },
      post_processor: null,
      decoder: { type: 'Sequence', decoders: [{ type: 'Replace', pattern: { String: '▁' }, content: ' ' }, { type: 'ByteFallback' }, { type: 'Fuse' }, { type: 'Strip', content: ' ', start: 1, stop: 0 }] },
      model: m,
    });
    await agree(shell(model({ byte_fallback: true, merges: ['▁ a'] })), ['abc é zz', 'a b']);
    await agree(shell(model({ fuse_unk: true })), ['xyz abc', 'é']);
    await agree(shell(model({ continuing_subword_prefix: '##', merges: ['##a ##b'] })), ['aab cab']);
    await agree(shell(model({ end_of_word_suffix: '</w>', merges: ['a b</w>'] })), ['ab cb']);
  });
});

describe('CLI helpers', () => {
  it('parseIdsText reads JSON arrays and whitespace lists, and names the bad index', () => {
    expect(parseIdsText('[1, 2, 3]')).toEqual([1, 2, 3]);
    expect(parseIdsText(' 4 5\n6 ')).toEqual([4, 5, 6]);
    expect(parseIdsText('')).toEqual([]);
    expect(() => parseIdsText('1 x 3')).toThrow(/index 1/);
  });
});
