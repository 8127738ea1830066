// DeepSeek-V3 tokenizer: ids compared with the Rust `tokenizers` binding on the real tokenizer.json.
import { readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import { Tokenizer } from '../../src/tokenizer/tokenizer.js';
import { tokenizerFromFile } from '../../src/tokenizer/tokenizer_node.js';
import { DSV3_CONFIG, DSV3_TOKENIZER, LONG, rust, type RustTokenizer } from './oracle.js';

/** Native String.prototype.toWellFormed (ES2024; Node 20 has it), independent of the code under test. */
const wf = (s: string) => (s as unknown as { toWellFormed(): string }).toWellFormed();

const here = dirname(fileURLToPath(import.meta.url));
const corpus = JSON.parse(readFileSync(join(here, '../fixtures/tokenizer/corpus.json'), 'utf8')) as string[];

let ours: Tokenizer;
let withConfig: Tokenizer;
let oracle: RustTokenizer;

beforeAll(() => {
  ours = tokenizerFromFile(DSV3_TOKENIZER, { config: false });
  withConfig = tokenizerFromFile(DSV3_TOKENIZER, { config: DSV3_CONFIG });
  oracle = rust.Tokenizer.fromFile(DSV3_TOKENIZER);
});

async function rustIds(s: string): Promise<number[]> {
  return (await oracle.encode(s, null, { addSpecialTokens: true })).getIds();
}

/** Strings that stress the pre-tokenizer: pieces from every class the regexes distinguish. */
const PIECES = [
  ' ', '  ', '\n', '\r\n', '\r', '\t', '\u0085', '\ufeff', '\u00a0', '\u3000', '\u2028', '0', '12', '345', '٣', '½',
  'a', 'Ab', 'xyz', "'", "'s", '.', '.com', '_', '!', '?!', '$', '€', '+', '中', '文字', 'ひら', 'カタ', 'ー', '한',
  'é', 'e\u0301', '\u0301', '👍', '🏽', '\u200d', '👨‍👩‍👧', 'ا', 'ש', '\u202e', '<｜User｜>', '<｜begin▁of▁sentence｜>',
  '<|EOT|>', '<｜', '｜>', '\ud800', '\udfff', '\u0000', '\ufffd',
];

/** Arbitrary strings: any UTF-16 unit (lone surrogates included), any code point, or a stress piece. */
const arbText = fc.string({
  unit: fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...PIECES) },
    { weight: 2, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) },
    { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xffff }).map((u) => String.fromCharCode(u)) },
  ),
  maxLength: 40,
});

describe('DeepSeek-V3 tokenizer vs Rust tokenizers', () => {
  it('loads the real file: 128,815 ids, the specials, a ByteLevel decoder', () => {
    expect(ours.vocabSize).toBe(128815);
    expect(ours.vocabSize).toBe(oracle.getVocabSize(true));
    expect(ours.tokenToId('<｜begin▁of▁sentence｜>')).toBe(0);
    expect(ours.idToToken(128803)).toBe('<｜User｜>');
    expect(ours.specialTokens).toContain('<|EOT|>');
    expect(ours.specialTokens).not.toContain('<｜User｜>');
  });

  it('curated corpus: zero mismatches and exact round trip', async () => {
    const mismatches: string[] = [];
    for (const s of corpus) {
      const a = ours.encode(s);
      const b = await rustIds(s);
      if (JSON.stringify(a) !== JSON.stringify(b)) mismatches.push(`${JSON.stringify(s)}: ${a} vs ${b}`);
      expect(ours.decode(a)).toBe(s);
      expect(ours.decode(a)).toBe(await oracle.decode(b, false));
    }
    expect(mismatches).toEqual([]);
  });

  it('the whole corpus as one text, and each line doubled, agree', async () => {
    const all = corpus.join('\n');
    expect(ours.encode(all)).toEqual(await rustIds(all));
    for (const s of corpus) expect(ours.encode(s + s)).toEqual(await rustIds(s + s));
  });

  it('fast-check strings over the full Unicode range (lone surrogates included) agree with Rust', async () => {
    await fc.assert(
      fc.asyncProperty(arbText, async (s) => {
        const a = ours.encode(s);
        expect(a).toEqual(await rustIds(s));
        // decode(encode(s)) is s for well-formed s, and s with lone surrogates → U+FFFD otherwise.
        expect(ours.decode(a)).toBe(wf(s));
      }),
      { seed: 5, numRuns: LONG ? 20000 : 600 },
    );
  });

  it('lone surrogates are encoded exactly as U+FFFD', () => {
    for (const s of ['\ud800', 'a\udc00b', '\udbff\ud800x', '👍\ud83d']) {
      expect(ours.encode(s)).toEqual(ours.encode(wf(s)));
      expect(wf(s)).toContain('\ufffd');
    }
  });
});

describe('DeepSeek-V3 behaviours measured on the Rust library', () => {
  const pieces = (s: string) => ours.encodeWithTokens(s).tokens.map((t) => ours.decode([ours.tokenToId(t)!]));

  it('digits are cut in groups of three from the left', () => {
    expect(pieces('12345678')).toEqual(['123', '456', '78']);
  });

  it('a space before CJK becomes its own token; punctuation joins following ASCII letters', () => {
    expect(pieces('a 中文')[1]).toBe(' ');
    expect(pieces("IT'S")).toContain("'S");
    expect(pieces('x.com')).toContain('.com');
    expect(pieces('my_name')).toContain('_name');
  });

  it('\\s is White_Space: U+0085 is a space, U+FEFF is not (a verbatim JS regex gets both wrong)', async () => {
    for (const s of ['a\u0085\u0085b', 'a\ufeff\ufeffb', 'x \u0085 y', 'x \ufeff y']) expect(ours.encode(s)).toEqual(await rustIds(s));
  });

  it('no normalizer: composed and decomposed accents tokenize differently', () => {
    expect(ours.encode('café')).not.toEqual(ours.encode('cafe\u0301'));
  });

  it('tokenizer.json adds no BOS; tokenizer_config.json (add_bos_token) prepends id 0', () => {
    expect(ours.encode('Hi')[0]).not.toBe(0);
    expect(withConfig.encode('Hi')).toEqual([0, ...ours.encode('Hi')]);
    expect(withConfig.encode('Hi', { addSpecialTokens: false })).toEqual(ours.encode('Hi'));
  });

  it('skipSpecialTokens drops special tokens but keeps the 14 non-special added tokens', async () => {
    const ids = ours.encode('<｜begin▁of▁sentence｜><｜User｜>hi<｜Assistant｜>yo<|EOT|><｜end▁of▁sentence｜>');
    const skipped = ours.decode(ids, { skipSpecialTokens: true });
    expect(skipped).toBe('<｜User｜>hi<｜Assistant｜>yo');
    expect(skipped).toBe(await oracle.decode(ids, true));
  });

  it('ids without a token: error by default, dropped with unknownIds: "skip" (as Rust)', async () => {
    const ids = [...ours.encode('ab'), 128815, 129279];
    expect(() => ours.decode(ids)).toThrow(InputError);
    expect(() => ours.decode(ids)).toThrow(/id 128815 at index 1/);
    expect(ours.decode(ids, { unknownIds: 'skip' })).toBe(await oracle.decode(ids, false));
  });

  it('a long CJK paragraph without punctuation is one pre-token and encodes in near-linear time', async () => {
    const para = '深度求索人工智能大模型研究与开发'.repeat(4000); // 64,000 ideographs, one pre-token
    const t0 = performance.now();
    const a = ours.encode(para);
    const ms = performance.now() - t0;
    expect(a).toEqual(await rustIds(para));
    // A quadratic merge loop needs minutes here; the heap-based one needs well under a second.
    expect(ms).toBeLessThan(5000);
  });
});

describe('chat template (DeepSeek-V3 tokenizer_config.json)', () => {
  const B = '<｜begin▁of▁sentence｜>';
  const E = '<｜end▁of▁sentence｜>';
  it('system, user, assistant tool call, tool output, assistant, user + generation prompt', () => {
    const out = withConfig.applyChatTemplate(
      [
        { role: 'system', content: 'You are helpful.' },
        { role: 'user', content: 'Weather in Paris?' },
        { role: 'assistant', content: null, tool_calls: [{ type: 'function', function: { name: 'get_weather', arguments: '{"city": "Paris"}' } }] },
        { role: 'tool', content: '{"temp": 20}' },
        { role: 'assistant', content: 'It is 20 degrees.' },
        { role: 'user', content: 'Thanks' },
      ],
      { addGenerationPrompt: true },
    );
    // Hand-derived from the template: BOS + system prompt; each user turn is <｜User｜>+content;
    // the FIRST tool call opens <｜Assistant｜><｜tool▁calls▁begin｜> and (template quirk) the
    // calls-end marker is only written after a SECOND call; a tool turn opens the outputs block,
    // the next assistant turn closes it with <｜tool▁outputs▁end｜> and ends with EOS.
    const expected =
      `${B}You are helpful.` +
      '<｜User｜>Weather in Paris?' +
      '<｜Assistant｜><｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n{"city": "Paris"}\n```<｜tool▁call▁end｜>' +
      '<｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>{"temp": 20}<｜tool▁output▁end｜>' +
      `<｜tool▁outputs▁end｜>It is 20 degrees.${E}` +
      '<｜User｜>Thanks' +
      '<｜Assistant｜>';
    expect(out).toBe(expected);
  });

  it('two system prompts join with a blank line; two tool calls close the calls block; no prompt by default', () => {
    const call = (name: string) => ({ type: 'function', function: { name, arguments: '{}' } });
    const out = withConfig.applyChatTemplate([
      { role: 'system', content: 'S1' },
      { role: 'system', content: 'S2' },
      { role: 'user', content: 'U' },
      { role: 'assistant', content: null, tool_calls: [call('f'), call('g')] },
      { role: 'tool', content: 'r1' },
      { role: 'tool', content: 'r2' },
    ]);
    const callText = (n: string) => `<｜tool▁call▁begin｜>function<｜tool▁sep｜>${n}\n\`\`\`json\n{}\n\`\`\`<｜tool▁call▁end｜>`;
    const expected =
      `${B}S1\n\nS2<｜User｜>U` +
      `<｜Assistant｜><｜tool▁calls▁begin｜>${callText('f')}\n${callText('g')}<｜tool▁calls▁end｜>${E}` +
      '<｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>r1<｜tool▁output▁end｜>\n<｜tool▁output▁begin｜>r2<｜tool▁output▁end｜>' +
      '<｜tool▁outputs▁end｜>';
    expect(out).toBe(expected);
  });

  it('the rendered prompt encodes to the chat-marker ids', () => {
    const ids = withConfig.encode(withConfig.applyChatTemplate([{ role: 'user', content: 'Hi' }], { addGenerationPrompt: true }), { addSpecialTokens: false });
    expect(ids[0]).toBe(0);
    expect(ids[1]).toBe(128803);
    expect(ids[ids.length - 1]).toBe(128804);
  });

  it('without a config there is no template: InputError', () => {
    expect(() => ours.applyChatTemplate([{ role: 'user', content: 'x' }])).toThrow(InputError);
  });
});
