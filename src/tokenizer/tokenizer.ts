/**
 * A Hugging Face tokenizer.json tokenizer (BPE model), exact to the Rust `tokenizers` library:
 *
 *   text ─toWellFormed→ split on raw added tokens → normalize → split on normalized added tokens
 *        → pre-tokenize → BPE per pre-token → post-process (special tokens)
 *
 * Browser-safe: construct it from parsed JSON; the Node file loader is in `tokenizer_node.ts`.
 */
import { FormatError, InputError, UnsupportedError } from '../errors.js';
import { AddedVocabulary, type AddedSplit, type AddedTokenConfig } from './added_tokens.js';
import { BpeModel, type BpeModelConfig } from './bpe.js';
import { byteLevelTokenBytes, decoderFromJSON, type TokenizerDecoder } from './decoders.js';
import { utf8DecodeLossy } from './byte_level.js';
import { normalizerFromJSON, type TokenizerNormalizer } from './normalizers.js';
import { postProcessorFromJSON, templatePostProcessor, type TokenizerPostProcessor } from './post_processors.js';
import { preTokenizerFromJSON, type TokenizerPreTokenizer } from './pre_tokenizers.js';
import { applyChatTemplate, type ChatMessage, type ChatTemplateOptions } from './chat_template.js';

/** Options of {@link Tokenizer.encode}. */
export interface TokenizerEncodeOptions {
  /**
   * Add the post-processor's special tokens (default true, as in Rust and transformers).
   * With tokenizer.json alone, DeepSeek-V3's ByteLevel post-processor adds nothing; with a
   * tokenizer_config.json that says `add_bos_token: true`, id 0 (BOS) is prepended.
   */
  addSpecialTokens?: boolean;
}

/** Options of {@link Tokenizer.decode}. */
export interface TokenizerDecodeOptions {
  /** Drop tokens flagged `special` in added_tokens (default false). Non-special added tokens stay. */
  skipSpecialTokens?: boolean;
  /**
   * What to do with an id that has no token (e.g. DeepSeek-V3 ids 128815..129279, which exist
   * only as embedding rows): 'error' (default) throws {@link InputError}; 'skip' drops it
   * silently as the Rust library does.
   */
  unknownIds?: 'error' | 'skip';
}

/** The fields of tokenizer_config.json this library uses. */
export interface TokenizerConfig {
  add_bos_token?: boolean;
  add_eos_token?: boolean;
  bos_token?: string | { content: string } | null;
  eos_token?: string | { content: string } | null;
  pad_token?: string | { content: string } | null;
  unk_token?: string | { content: string } | null;
  chat_template?: string | Array<{ name: string; template: string }> | null;
}

/** An encoding with the vocabulary string of every id. */
export interface TokenizerEncoding {
  ids: number[];
  tokens: string[];
}

function tokenContent(t: TokenizerConfig['bos_token']): string | null {
  if (t === null || t === undefined) return null;
  return typeof t === 'string' ? t : t.content;
}

/** Rust receives well-formed UTF-8: every lone surrogate becomes U+FFFD (String.prototype.toWellFormed). */
export function toWellFormedString(s: string): string {
  return s.replace(/\p{Surrogate}/gu, '\uFFFD');
}

/** A tokenizer loaded from tokenizer.json (and optionally tokenizer_config.json). */
export class Tokenizer {
  /** The BPE model. */
  readonly model: BpeModel;
  /** Added tokens (special and not). */
  readonly added: AddedVocabulary;
  /** tokenizer_config.json, when given. */
  readonly config: TokenizerConfig | null;
  private readonly normalizer: TokenizerNormalizer | null;
  private readonly preTokenizer: TokenizerPreTokenizer | null;
  private readonly postProcessor: TokenizerPostProcessor | null;
  private readonly decoder: TokenizerDecoder | null;
  private readonly byteCache: Array<Uint8Array | undefined> = [];

  private constructor(json: Record<string, unknown>, config: TokenizerConfig | null) {
    const model = json['model'] as Record<string, unknown> | undefined;
    if (model === undefined || model === null) throw new FormatError('tokenizer.json', "missing 'model'");
    const modelType = model['type'] ?? (model['merges'] !== undefined ? 'BPE' : undefined);
    if (modelType !== 'BPE') throw new UnsupportedError(`tokenizer.json model '${String(modelType)}' is not supported (only BPE)`);
    if (json['truncation'] !== null && json['truncation'] !== undefined) throw new UnsupportedError('tokenizer.json truncation is not supported');
    if (json['padding'] !== null && json['padding'] !== undefined) throw new UnsupportedError('tokenizer.json padding is not supported');
    this.model = new BpeModel(model as unknown as BpeModelConfig);
    this.normalizer = normalizerFromJSON(json['normalizer']);
    this.preTokenizer = preTokenizerFromJSON(json['pre_tokenizer']);
    this.decoder = decoderFromJSON(json['decoder']);
    const norm = this.normalizer;
    this.added = new AddedVocabulary((json['added_tokens'] as AddedTokenConfig[]) ?? [], norm === null ? null : (s) => norm.normalize(s), this.model.vocab, this.model.size);
    this.config = config;
    this.postProcessor = this.configPostProcessor(config) ?? postProcessorFromJSON(json['post_processor']);
  }

  /**
   * transformers' LlamaTokenizerFast replaces the post-processor by `[BOS] A [EOS]` according to
   * `add_bos_token`/`add_eos_token`; we do the same when the config has either key.
   */
  private configPostProcessor(config: TokenizerConfig | null): TokenizerPostProcessor | null {
    if (config === null || (config.add_bos_token === undefined && config.add_eos_token === undefined)) return null;
    const parts: Array<number[] | 'sequence'> = [];
    const idOf = (key: 'bos_token' | 'eos_token') => {
      const c = tokenContent(config[key]);
      const id = c === null ? undefined : this.tokenToId(c);
      if (id === undefined) throw new FormatError('tokenizer_config.json', `${key} ${JSON.stringify(c)} is not a token of tokenizer.json`);
      return id;
    };
    if (config.add_bos_token === true) parts.push([idOf('bos_token')]);
    parts.push('sequence');
    if (config.add_eos_token === true) parts.push([idOf('eos_token')]);
    return templatePostProcessor(parts);
  }

  /**
   * Build from tokenizer.json (parsed object or JSON text) and optionally tokenizer_config.json.
   * Unsupported components throw {@link UnsupportedError} naming the component.
   */
  static fromJSON(json: unknown, config?: unknown): Tokenizer {
    const obj = typeof json === 'string' ? parseJson(json, 'tokenizer.json') : json;
    if (obj === null || typeof obj !== 'object') throw new FormatError('tokenizer.json', 'not a JSON object');
    const cfg = typeof config === 'string' ? parseJson(config, 'tokenizer_config.json') : (config ?? null);
    return new Tokenizer(obj as Record<string, unknown>, cfg as TokenizerConfig | null);
  }

  /** Number of distinct ids (model vocabulary plus added tokens outside it); DeepSeek-V3: 128,815. */
  get vocabSize(): number {
    let n = this.model.size;
    for (const id of this.added.byId.keys()) if (!this.model.vocabR.has(id)) n++;
    return n;
  }

  /** Contents of the added tokens flagged `special`. */
  get specialTokens(): string[] {
    return [...this.added.specialContents];
  }

  /** Id of a token string (added tokens first, then the model vocabulary). */
  tokenToId(token: string): number | undefined {
    return this.added.byContent.get(token) ?? this.model.vocab.get(token);
  }

  /** Token string of an id (added tokens first, then the model vocabulary). */
  idToToken(id: number): string | undefined {
    return this.added.byId.get(id)?.content ?? this.model.vocabR.get(id);
  }

  /** Forget the BPE word cache (results never depend on it). */
  clearCache(): void {
    this.model.clearCache();
  }

  /** Encode text to ids. Lone surrogates are encoded as U+FFFD. */
  encode(text: string, options: TokenizerEncodeOptions = {}): number[] {
    const ids: number[] = [];
    const s = toWellFormedString(text);
    const model = this.model;
    const toModel = (t: string) => model.tokenize(t, ids);
    for (const piece of this.addedSplits(s)) {
      if (piece.id >= 0) ids.push(piece.id);
      else if (this.preTokenizer === null) model.tokenize(piece.text, ids);
      else this.preTokenizer.each(piece.text, piece.origin, toModel);
    }
    return this.postProcessor === null ? ids : this.postProcessor.process(ids, options.addSpecialTokens !== false);
  }

  /** Encode and also return the vocabulary string of each id. */
  encodeWithTokens(text: string, options: TokenizerEncodeOptions = {}): TokenizerEncoding {
    const ids = this.encode(text, options);
    return { ids, tokens: ids.map((id) => this.idToToken(id)!) };
  }

  /** Pieces after raw added tokens, normalization and normalized added tokens (empty pieces dropped). */
  private addedSplits(s: string): AddedSplit[] {
    const raw: AddedSplit[] = [];
    this.added.splitRaw(s, true, raw);
    const out: AddedSplit[] = [];
    for (const p of raw) {
      if (p.id >= 0) {
        out.push(p);
        continue;
      }
      if (p.text.length === 0) continue;
      const t = this.normalizer === null ? p.text : this.normalizer.normalize(p.text);
      const sub: AddedSplit[] = [];
      this.added.splitNormalized(t, p.origin, sub);
      for (const q of sub) if (q.id >= 0 || q.text.length > 0) out.push(q);
    }
    return out;
  }

  /** Decode ids to text. */
  decode(ids: ArrayLike<number>, options: TokenizerDecodeOptions = {}): string {
    const skipSpecial = options.skipSpecialTokens === true;
    const strict = options.unknownIds !== 'skip';
    if (this.decoder?.type === 'ByteLevel') return this.decodeByteLevel(ids, skipSpecial, strict);
    const tokens: string[] = [];
    for (let k = 0; k < ids.length; k++) {
      const t = this.decodeToken(ids[k]!, k, skipSpecial, strict);
      if (t !== null) tokens.push(t);
    }
    if (this.decoder === null) return tokens.join(' ');
    return this.decoder.decodeChain(tokens).join('');
  }

  /** The string an id contributes to decoding, or null when it is skipped. */
  private decodeToken(id: number, index: number, skipSpecial: boolean, strict: boolean): string | null {
    const t = this.added.decodeForm(id) ?? this.model.vocabR.get(id);
    if (t === undefined) {
      if (strict) throw new InputError(`decode: id ${id} at index ${index} has no token (vocabulary has ${this.vocabSize} ids)`);
      return null;
    }
    if (skipSpecial && this.added.specialContents.has(t)) return null;
    return t;
  }

  /** ByteLevel decoding with per-id byte arrays cached, copied into one growing buffer (same result as the generic path). */
  private decodeByteLevel(ids: ArrayLike<number>, skipSpecial: boolean, strict: boolean): string {
    let buf = new Uint8Array(Math.max(16, ids.length * 4));
    let n = 0;
    for (let k = 0; k < ids.length; k++) {
      const id = ids[k]!;
      let bytes = Number.isInteger(id) && id >= 0 ? this.byteCache[id] : undefined;
      if (bytes === undefined) {
        const t = this.decodeToken(id, k, false, strict);
        if (t === null) continue;
        bytes = byteLevelTokenBytes(t);
        if (Number.isInteger(id) && id >= 0 && id < 1 << 24) this.byteCache[id] = bytes;
      }
      if (skipSpecial && this.added.specialContents.has(this.added.decodeForm(id) ?? '')) continue;
      const len = bytes.length;
      if (n + len > buf.length) {
        const grown = new Uint8Array(Math.max(2 * buf.length, n + len));
        grown.set(buf.subarray(0, n));
        buf = grown;
      }
      for (let i = 0; i < len; i++) buf[n + i] = bytes[i]!;
      n += len;
    }
    return utf8DecodeLossy(buf.subarray(0, n));
  }

  /** The chat template of tokenizer_config.json, if any (the `default` one when several are named). */
  get chatTemplate(): string | null {
    const t = this.config?.chat_template;
    if (t === null || t === undefined) return null;
    if (typeof t === 'string') return t;
    return t.find((x) => x.name === 'default')?.template ?? null;
  }

  /**
   * Render `messages` with the chat template of tokenizer_config.json (Jinja, via
   * `@huggingface/jinja`), with `bos_token`/`eos_token` from the config.
   */
  applyChatTemplate(messages: ChatMessage[], options: ChatTemplateOptions = {}): string {
    const template = options.chatTemplate ?? this.chatTemplate;
    if (template === null) throw new InputError('applyChatTemplate: no chat_template (load tokenizer_config.json or pass options.chatTemplate)');
    return applyChatTemplate(template, messages, {
      ...options,
      specialTokens: {
        bos_token: tokenContent(this.config?.bos_token) ?? '',
        eos_token: tokenContent(this.config?.eos_token) ?? '',
        pad_token: tokenContent(this.config?.pad_token) ?? '',
        unk_token: tokenContent(this.config?.unk_token) ?? '',
        ...options.specialTokens,
      },
    });
  }
}

function parseJson(text: string, file: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new FormatError(file, `invalid JSON: ${(e as Error).message}`);
  }
}
