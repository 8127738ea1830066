/**
 * Byte-level BPE training (for small-vocabulary tiny models), producing a tokenizer.json that
 * this library and the Rust `tokenizers` library both load.
 *
 * Algorithm (that of Rust `BpeTrainer`): count the words the normalizer + pre-tokenizer produce;
 * the initial vocabulary is the special tokens, then the 256 byte-level characters in code-point
 * order; then repeatedly merge the most frequent adjacent pair. Tie-break (deterministic, as
 * Rust's trainer): equal counts → the pair with the smallest (left id, right id). Training stops
 * at `vocabSize` or when the best count falls below `max(1, minFrequency)`.
 * Pair counts are recomputed each step: O(merges × corpus), fine for small vocabularies.
 */
import { InputError } from '../errors.js';
import { BYTE_TO_CHAR } from './byte_level.js';
import { normalizerFromJSON } from './normalizers.js';
import { preTokenizerFromJSON } from './pre_tokenizers.js';

/** DeepSeek-V3's pre-tokenizer (tokenizer.json `pre_tokenizer`), the default for training. */
export const DEEPSEEK_V3_PRE_TOKENIZER = {
  type: 'Sequence',
  pretokenizers: [
    { type: 'Split', pattern: { Regex: '\\p{N}{1,3}' }, behavior: 'Isolated', invert: false },
    { type: 'Split', pattern: { Regex: '[一-龥぀-ゟ゠-ヿ]+' }, behavior: 'Isolated', invert: false },
    {
      type: 'Split',
      pattern: {
        Regex: "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+",
      },
      behavior: 'Isolated',
      invert: false,
    },
    { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
  ],
} as const;

/** Options of {@link trainBpe}. */
export interface BpeTrainOptions {
  /** Target vocabulary size, special tokens and the 256 byte characters included. */
  vocabSize: number;
  /** Minimum pair count for a merge (default 0, as Rust). */
  minFrequency?: number;
  /** Special tokens, given ids 0, 1, ... in this order. */
  specialTokens?: string[];
  /** tokenizer.json `pre_tokenizer`; must end in byte-level form (default: DeepSeek-V3's). */
  preTokenizer?: unknown;
  /** tokenizer.json `normalizer` (default none). */
  normalizer?: unknown;
}

/** Train a byte-level BPE tokenizer on `texts`; returns the tokenizer.json object. */
export function trainBpe(texts: Iterable<string>, options: BpeTrainOptions): Record<string, unknown> {
  const specials = options.specialTokens ?? [];
  const minFrequency = Math.max(1, options.minFrequency ?? 0);
  const preJson = options.preTokenizer ?? DEEPSEEK_V3_PRE_TOKENIZER;
  const normJson = options.normalizer ?? null;
  if (options.vocabSize < specials.length + 256) {
    throw new InputError(`trainBpe: vocabSize ${options.vocabSize} < ${specials.length} special tokens + 256 byte characters`);
  }
  const pre = preTokenizerFromJSON(preJson);
  const norm = normalizerFromJSON(normJson);

  // Word counts over the pre-tokenized corpus.
  const counts = new Map<string, number>();
  for (const text of texts) {
    const t = norm === null ? text : norm.normalize(text);
    const pieces = pre === null ? [{ text: t, origin: true }] : pre.preTokenize([{ text: t, origin: true }]);
    for (const p of pieces) counts.set(p.text, (counts.get(p.text) ?? 0) + 1);
  }

  const idToToken: string[] = [...specials];
  const tokenToId = new Map<string, number>(specials.map((s, i) => [s, i]));
  for (const c of [...BYTE_TO_CHAR].sort((a, b) => a.charCodeAt(0) - b.charCodeAt(0))) {
    if (!tokenToId.has(c)) {
      tokenToId.set(c, idToToken.length);
      idToToken.push(c);
    }
  }
  const words: number[][] = [];
  const freq: number[] = [];
  for (const [w, n] of counts) {
    const ids: number[] = [];
    for (const ch of w) {
      const id = tokenToId.get(ch);
      if (id === undefined) throw new InputError(`trainBpe: pre-tokenizer output '${w}' has char U+${ch.codePointAt(0)!.toString(16)} outside the byte-level alphabet (end the pre-tokenizer with ByteLevel)`);
      ids.push(id);
    }
    words.push(ids);
    freq.push(n);
  }

  const merges: Array<[string, string]> = [];
  const base = options.vocabSize + 1;
  while (idToToken.length < options.vocabSize) {
    const pairCounts = new Map<number, number>();
    for (let w = 0; w < words.length; w++) {
      const ids = words[w]!;
      for (let k = 0; k + 1 < ids.length; k++) {
        const key = ids[k]! * base + ids[k + 1]!;
        pairCounts.set(key, (pairCounts.get(key) ?? 0) + freq[w]!);
      }
    }
    let bestKey = -1;
    let bestCount = 0;
    for (const [key, c] of pairCounts) {
      if (c > bestCount || (c === bestCount && key < bestKey)) {
        bestKey = key;
        bestCount = c;
      }
    }
    if (bestKey < 0 || bestCount < minFrequency) break;
    const a = Math.floor(bestKey / base);
    const b = bestKey % base;
    const merged = idToToken[a]! + idToToken[b]!;
    let newId = tokenToId.get(merged);
    if (newId === undefined) {
      newId = idToToken.length;
      idToToken.push(merged);
      tokenToId.set(merged, newId);
    }
    merges.push([idToToken[a]!, idToToken[b]!]);
    for (const ids of words) {
      for (let k = 0; k + 1 < ids.length; k++) {
        if (ids[k] === a && ids[k + 1] === b) ids.splice(k, 2, newId);
      }
    }
  }

  const vocab: Record<string, number> = {};
  idToToken.forEach((t, i) => (vocab[t] = i));
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: specials.map((content, id) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: normJson,
    pre_tokenizer: preJson,
    post_processor: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges,
    },
  };
}
