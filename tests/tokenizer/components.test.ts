// Each tokenizer.json component compared with the same component of the Rust binding
// (pre-tokenizers via preTokenizeString, normalizers via normalizeString, decoders via decode).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FormatError, UnsupportedError } from '../../src/errors.js';
import { decoderFromJSON } from '../../src/tokenizer/decoders.js';
import { normalizerFromJSON } from '../../src/tokenizer/normalizers.js';
import { preTokenizerFromJSON } from '../../src/tokenizer/pre_tokenizers.js';
import { translateOnigRegex } from '../../src/tokenizer/regex.js';
import { Tokenizer } from '../../src/tokenizer/tokenizer.js';
import { LONG, rust } from './oracle.js';

/** A minimal tokenizer.json that only carries the component under test. */
function shell(part: Record<string, unknown>): string {
  return JSON.stringify({
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [],
    normalizer: null,
    pre_tokenizer: null,
    post_processor: null,
    decoder: null,
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, vocab: { a: 0 }, merges: [] },
    ...part,
  });
}

const PIECES = [' ', '  ', '\n', '\r\n', '\r', '\t', '\u0085', '\ufeff', '\u00a0', '\u2028', '0', '42', '٣', '½', 'a', 'B', 'xyz', 'ÉÀ', 'Σ', 'ß', "'s", "'LL", '.', '_', '-', '!?', '$', '中文', 'カ', 'é', 'e\u0301', '👍🏽', '\u200d', 'ا', '▁', '<0x41>', 'ﬁ', 'İ'];
const arbText = fc.string({
  unit: fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...PIECES) }, { weight: 1, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) }),
  maxLength: 30,
});
const RUNS = LONG ? 5000 : 300;

function checkPreTokenizer(cfg: Record<string, unknown>, extra: string[] = []) {
  const r = rust.Tokenizer.fromString(shell({ pre_tokenizer: cfg })).getPreTokenizer()!;
  const ours = preTokenizerFromJSON(cfg)!;
  const run = (s: string) => expect(ours.preTokenize([{ text: s, origin: true }]).map((p) => p.text)).toEqual(r.preTokenizeString(s).map((p) => p[0]));
  for (const s of extra) run(s);
  fc.assert(fc.property(arbText, (s) => {
    run(s);
  }), { seed: 11, numRuns: RUNS });
}

const LLAMA3 = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

describe('pre-tokenizers vs Rust', () => {
  for (const behavior of ['Removed', 'Isolated', 'MergedWithPrevious', 'MergedWithNext', 'Contiguous']) {
    for (const invert of [false, true]) {
      it(`Split regex, behavior ${behavior}, invert ${invert}`, () =>
        checkPreTokenizer({ type: 'Split', pattern: { Regex: '\\s+|\\p{N}' }, behavior, invert }, ['a  b1 2', '  ', '12']));
    }
  }
  it('Split with a String pattern is literal', () => checkPreTokenizer({ type: 'Split', pattern: { String: '.' }, behavior: 'Removed', invert: false }, ['a.b..c', 'abc']));
  it('Split with the Llama-3 pattern ((?i:…) group)', () => checkPreTokenizer({ type: 'Split', pattern: { Regex: LLAMA3 }, behavior: 'Isolated', invert: false }, ["I'LL do it's", "'S'Ve"]));
  for (const aps of [false, true]) {
    for (const useRegex of [false, true]) {
      it(`ByteLevel add_prefix_space ${aps} use_regex ${useRegex}`, () =>
        checkPreTokenizer({ type: 'ByteLevel', add_prefix_space: aps, trim_offsets: true, use_regex: useRegex }, ["Hello world it's", ' x']));
    }
  }
  it('Digits (contiguous and individual)', () => {
    checkPreTokenizer({ type: 'Digits', individual_digits: false }, ['a123b٣½4']);
    checkPreTokenizer({ type: 'Digits', individual_digits: true }, ['a123b']);
  });
  it('Whitespace, WhitespaceSplit, Punctuation, BertPreTokenizer, CharDelimiterSplit', () => {
    checkPreTokenizer({ type: 'Whitespace' }, ['Hey friend!  How are you?!?']);
    checkPreTokenizer({ type: 'WhitespaceSplit' });
    checkPreTokenizer({ type: 'Punctuation', behavior: 'Isolated' });
    checkPreTokenizer({ type: 'BertPreTokenizer' });
    checkPreTokenizer({ type: 'CharDelimiterSplit', delimiter: '_' });
  });
  for (const scheme of ['always', 'first', 'never']) {
    it(`Metaspace prepend_scheme ${scheme}`, () => checkPreTokenizer({ type: 'Metaspace', replacement: '▁', prepend_scheme: scheme, split: true }, ['Hey  there', '▁x']));
  }
  it('Sequence (the DeepSeek-V3 chain)', () =>
    checkPreTokenizer({
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: '\\p{N}{1,3}' }, behavior: 'Isolated', invert: false },
        { type: 'Metaspace', replacement: '▁', prepend_scheme: 'first', split: true },
      ],
    }));
});

describe('Oniguruma → JavaScript regex translation (the differences, tested against Rust)', () => {
  const cases: Array<[string, string[]]> = [
    ['\\s+', ['a\u0085b', 'a\ufeffb', 'a\u00a0\u2028b']], // White_Space, not JS \s
    ['\\S+', ['a\u0085b\ufeffc']],
    ['\\d+', ['12٣४५x']], // Unicode Nd, not ASCII
    ['\\w+', ['héllo_wörld٣ x\u0301y']],
    ['\\W+', ['a, b!']],
    ['\\h+', ['deadBEEFxyz']], // hex digit in Oniguruma (not horizontal space)
    ['.', ['a\rb\u2028c\nd']], // '.' matches \r and U+2028 in Oniguruma
    ['^a|b$', ['a\nab\nb', 'ba\r\nb']], // multi-line anchors on \n only
    ['\\Aa|a\\z', ['aaa\na']],
    ['\\ba\\w*', ['a ab bä aé']],
    ['a++b|a', ['aaab aaa']], // possessive
    ['(?>a+)a|b', ['aaa b']], // atomic: never matches 'a' after a+
    ['x{,2}', ['xxxx']],
    ['(?i:ab)c|(?i)Z', ['ABc abC aBc zZ']],
    ['[\\p{L}&&[^a-c]]+', ['abcdefÉ']], // class intersection
    ['[^\\s\\p{L}]+', ['a \u0085 1-2\ufeff']],
    ['\\p{^L}+|\\pN', ['ab12 x']],
    ['[\\w.-]+', ['a.b-c_d é']],
    ['\\x{4E00}-\\u9FA5|\\x41', ['一-龥 A']],
    ['(?#comment)a', ['aa']],
  ];
  for (const [pattern, texts] of cases) {
    it(`/${pattern}/`, () => {
      const cfg = { type: 'Split', pattern: { Regex: pattern }, behavior: 'Isolated', invert: false };
      const r = rust.Tokenizer.fromString(shell({ pre_tokenizer: cfg })).getPreTokenizer()!;
      const ours = preTokenizerFromJSON(cfg)!;
      for (const s of texts) expect(ours.preTokenize([{ text: s, origin: true }]).map((p) => p.text)).toEqual(r.preTokenizeString(s).map((p) => p[0]));
    });
  }
  it('a verbatim copy into JavaScript would differ (so the translation is needed)', () => {
    expect(/\s/u.test('\u0085')).toBe(false);
    expect(/\s/u.test('\ufeff')).toBe(true);
    expect(new RegExp(translateOnigRegex('\\s'), 'v').test('\u0085')).toBe(true);
    expect(new RegExp(translateOnigRegex('\\s'), 'v').test('\ufeff')).toBe(false);
  });
  it('constructs without a faithful translation raise UnsupportedError', () => {
    for (const p of ['(a)\\1', 'a\\Kb', '(?x) a', '\\G']) expect(() => translateOnigRegex(p)).toThrow(UnsupportedError);
  });
});

describe('normalizers vs Rust', () => {
  const cfgs: Array<Record<string, unknown>> = [
    { type: 'NFC' },
    { type: 'NFD' },
    { type: 'NFKC' },
    { type: 'NFKD' },
    { type: 'Lowercase' },
    { type: 'Strip', strip_left: true, strip_right: true },
    { type: 'Strip', strip_left: false, strip_right: true },
    { type: 'Prepend', prepend: '▁' },
    { type: 'Replace', pattern: { String: ' ' }, content: '▁' },
    { type: 'Replace', pattern: { Regex: '\\s+' }, content: ' ' },
    { type: 'Sequence', normalizers: [{ type: 'NFD' }, { type: 'StripAccents' }, { type: 'Lowercase' }] },
  ];
  for (const cfg of cfgs) {
    it(JSON.stringify(cfg), () => {
      const r = rust.Tokenizer.fromString(shell({ normalizer: cfg })).getNormalizer()!;
      const ours = normalizerFromJSON(cfg)!;
      fc.assert(fc.property(arbText, (s) => {
        expect(ours.normalize(s)).toBe(r.normalizeString(s));
      }), { seed: 12, numRuns: RUNS });
    });
  }
});

describe('decoders vs Rust', () => {
  const arbTokens = fc.array(fc.oneof(fc.constantFrom('Ġhello', 'Ċ', 'â', 'Ģ', '<0x41>', '<0xE4>', '<0xB8>', '<0xAD>', '<0xFF>', '▁a', '▁', 'ab▁', '</w>', 'x</w>', '<｜User｜>', 'é'), fc.string({ maxLength: 3 })), { minLength: 1, maxLength: 12 });
  const cfgs: Array<Record<string, unknown>> = [
    { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    { type: 'ByteFallback' },
    { type: 'Fuse' },
    { type: 'Strip', content: ' ', start: 1, stop: 0 },
    { type: 'Replace', pattern: { String: '▁' }, content: ' ' },
    { type: 'Metaspace', replacement: '▁', prepend_scheme: 'always', split: true },
    { type: 'Metaspace', replacement: '▁', prepend_scheme: 'never', split: true },
    { type: 'BPEDecoder', suffix: '</w>' },
    { type: 'Sequence', decoders: [{ type: 'Replace', pattern: { String: '▁' }, content: ' ' }, { type: 'ByteFallback' }, { type: 'Fuse' }, { type: 'Strip', content: ' ', start: 1, stop: 0 }] },
  ];
  for (const cfg of cfgs) {
    it(JSON.stringify(cfg), () => {
      const r = rust.Tokenizer.fromString(shell({ decoder: cfg })).getDecoder()!;
      const ours = decoderFromJSON(cfg)!;
      fc.assert(fc.property(arbTokens, (ts) => {
        expect(ours.decodeChain(ts).join("")).toBe(r.decode(ts));
      }), { seed: 13, numRuns: RUNS });
    });
  }
});

describe('unsupported components are named, never approximated', () => {
  it('model, pre-tokenizer, normalizer, decoder', () => {
    const base = JSON.parse(shell({})) as Record<string, unknown>;
    expect(() => Tokenizer.fromJSON({ ...base, model: { type: 'Unigram', vocab: [] } })).toThrow(/model 'Unigram'/);
    expect(() => Tokenizer.fromJSON({ ...base, pre_tokenizer: { type: 'UnicodeScripts' } })).toThrow(/pre_tokenizer 'UnicodeScripts'/);
    expect(() => Tokenizer.fromJSON({ ...base, normalizer: { type: 'Precompiled' } })).toThrow(/normalizer 'Precompiled'/);
    expect(() => Tokenizer.fromJSON({ ...base, decoder: { type: 'CTC' } })).toThrow(UnsupportedError);
  });
  it('a merge naming a token outside the vocabulary raises FormatError on the first encode that merges', () => {
    const base = JSON.parse(shell({})) as Record<string, unknown>;
    const model = { ...(base['model'] as object), vocab: { a: 0, b: 1, ab: 2 }, merges: ['a b', 'b c'] };
    const t = Tokenizer.fromJSON({ ...base, model });
    expect(t.encode('a')).toEqual([0]); // one symbol: the merge table is not needed yet
    expect(() => t.encode('ab')).toThrow(FormatError);
    expect(() => t.encode('ab')).toThrow(/model\.merges\[1\]: 'c' is not in model\.vocab/);
  });
});
