/**
 * A Hugging Face tokenizer.json tokenizer (BPE model), exact to the Rust `tokenizers` library:
 *
 *   text ─toWellFormed→ split on raw added tokens → normalize → split on normalized added tokens
 *        → pre-tokenize → BPE per pre-token → post-process (special tokens)
 *
 * Browser-safe: construct it from parsed JSON; the Node file loader is in `tokenizer_node.ts`.
 */
import { FormatError, InputError, UnsupportedError } from '../errors.js';
import { preview, previewText } from '../preview.js';
import { AddedVocabulary, type AddedSplit, type AddedTokenConfig } from './added_tokens.js';
export type { TokenizerOffsetEncoding } from './post_processors.js';
import { BpeModel, type BpeModelConfig } from './bpe.js';
import { byteLevelTokenBytes, decoderFromJSON, type TokenizerDecoder } from './decoders.js';
import { utf8DecodeLossy } from './byte_level.js';
import { isIdentityNormalizer, normalizerFromJSON, type TokenizerNormalizer } from './normalizers.js';
import { postProcessorFromJSON, templatePostProcessor, type TemplateSpecial, type TokenizerOffsetEncoding, type TokenizerPostProcessor } from './post_processors.js';
import { preTokenizerFromJSON, type SpanPlan, type SpanSink, type TokenizerPreTokenizer } from './pre_tokenizers.js';
import { ByteToCharConverter, NormalizedText } from './normalized_text.js';
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

/** Options of {@link Tokenizer.encodeWithOffsets}. */
export interface TokenizerOffsetOptions extends TokenizerEncodeOptions {
  /** 'codePoint' (default, Rust's chars) or 'utf16' (JavaScript string indices). */
  offsetUnit?: 'codePoint' | 'utf16';
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

/** Without a pre-tokenizer the model sees each piece whole. */
const NO_PRE_TOKENIZER: SpanPlan = { cutters: [], byteLevel: false };

/** Run the cutting stages of a span plan over `text` and hand each final span to `sink`. */
function runPlan(plan: SpanPlan, text: string, sink: SpanSink): void {
  const cutters = plan.cutters;
  const n = cutters.length;
  if (n === 0) {
    sink(0, text.length);
    return;
  }
  const stages: SpanSink[] = new Array(n);
  stages[n - 1] = (a, b) => cutters[n - 1]!(text, a, b, sink);
  for (let i = n - 2; i >= 0; i--) {
    const next = stages[i + 1]!;
    const cut = cutters[i]!;
    stages[i] = (a, b) => cut(text, a, b, next);
  }
  stages[0]!(0, text.length);
}

/** For each UTF-8 byte of a well-formed string, the UTF-16 index of the char holding it. */
function byteToUnitMap(s: string): Int32Array {
  const out: number[] = [];
  for (let i = 0; i < s.length; ) {
    const cp = s.codePointAt(i)!;
    const n = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    for (let k = 0; k < n; k++) out.push(i);
    i += cp > 0xffff ? 2 : 1;
  }
  return Int32Array.from(out);
}

/** Map code-point offsets of `s` to UTF-16 offsets (an offset past the end stays past by the same count). */
function codePointToUtf16(s: string): (o: [number, number]) => [number, number] {
  const units: number[] = [];
  for (let i = 0; i < s.length; ) {
    units.push(i);
    i += s.codePointAt(i)! > 0xffff ? 2 : 1;
  }
  const at = (c: number) => (c < units.length ? units[c]! : s.length + (c - units.length));
  return ([a, b]) => [at(a), at(b)];
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
  /** The normalizer changes nothing, so pieces are spans of the input (fast offsets path). */
  private readonly identityNormalizer: boolean;

  private constructor(json: Record<string, unknown>, config: TokenizerConfig | null) {
    const model = json['model'] as Record<string, unknown> | undefined;
    if (model === undefined || model === null) throw new FormatError('tokenizer.json', "missing 'model'");
    const modelType = model['type'] ?? (model['merges'] !== undefined ? 'BPE' : undefined);
    if (modelType !== 'BPE') throw new UnsupportedError(`tokenizer.json model '${previewText(modelType)}' is not supported (only BPE)`);
    if (json['truncation'] !== null && json['truncation'] !== undefined) throw new UnsupportedError('tokenizer.json truncation is not supported');
    if (json['padding'] !== null && json['padding'] !== undefined) throw new UnsupportedError('tokenizer.json padding is not supported');
    this.model = new BpeModel(model as unknown as BpeModelConfig);
    this.normalizer = normalizerFromJSON(json['normalizer']);
    this.identityNormalizer = isIdentityNormalizer(json['normalizer']);
    this.preTokenizer = preTokenizerFromJSON(json['pre_tokenizer']);
    this.decoder = decoderFromJSON(json['decoder']);
    const norm = this.normalizer;
    const added = json['added_tokens'] ?? [];
    if (!Array.isArray(added)) throw new FormatError('tokenizer.json', `added_tokens is ${preview(added)}, not an array`);
    this.added = new AddedVocabulary(added as AddedTokenConfig[], norm === null ? null : (s) => norm.normalize(s), this.model.vocab, this.model.size);
    this.config = config;
    this.postProcessor = this.configPostProcessor(config) ?? postProcessorFromJSON(json['post_processor']);
  }

  /**
   * transformers' LlamaTokenizerFast replaces the post-processor by `[BOS] A [EOS]` according to
   * `add_bos_token`/`add_eos_token`; we do the same when the config has either key.
   */
  private configPostProcessor(config: TokenizerConfig | null): TokenizerPostProcessor | null {
    if (config === null || (config.add_bos_token === undefined && config.add_eos_token === undefined)) return null;
    const parts: Array<TemplateSpecial | 'sequence'> = [];
    const special = (key: 'bos_token' | 'eos_token'): TemplateSpecial => {
      const c = tokenContent(config[key]);
      const id = c === null ? undefined : this.tokenToId(c);
      if (id === undefined) throw new FormatError('tokenizer_config.json', `${key} ${preview(c)} is not a token of tokenizer.json`);
      return { ids: [id], tokens: [c!] };
    };
    if (config.add_bos_token === true) parts.push(special('bos_token'));
    parts.push('sequence');
    if (config.add_eos_token === true) parts.push(special('eos_token'));
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
    const plan = this.preTokenizer === null ? NO_PRE_TOKENIZER : this.preTokenizer.plan;
    for (const piece of this.addedSplits(s)) {
      if (piece.id >= 0) ids.push(piece.id);
      else if (plan !== null) runPlan(plan, piece.text, (a, b) => model.tokenizeSpan(piece.text, a, b, plan.byteLevel, ids));
      else this.preTokenizer!.each(piece.text, piece.origin, (t) => model.tokenize(t, ids));
    }
    return this.postProcessor === null ? ids : this.postProcessor.process(ids, options.addSpecialTokens !== false);
  }

  /** Encode and also return the vocabulary string of each id. */
  encodeWithTokens(text: string, options: TokenizerEncodeOptions = {}): TokenizerEncoding {
    const ids = this.encode(text, options);
    return { ids, tokens: ids.map((id) => this.idToToken(id)!) };
  }

  /**
   * Encode and return, per token, its id, its token string and its character offsets into
   * `text`, exactly as the Rust binding's `Encoding` (`getIds`, `getTokens`, `getOffsets`) reports
   * them. Offsets are [start, end) in Unicode code points of `text` (Rust chars; a lone
   * surrogate counts as the one char U+FFFD it becomes), or in UTF-16 units with
   * `{offsetUnit: 'utf16'}` (then `text.slice(start, end)` is the token's source). A byte-level
   * token that holds part of a multi-byte char gets the whole char's range; tokens added by the
   * post-processor get (0, 0); ByteLevel `trim_offsets` moves offsets past leading/trailing
   * spaces. Token strings are Rust's: an added token's is the matched text (with the whitespace
   * `lstrip`/`rstrip` took). With an identity normalizer and a pre-tokenizer that only cuts the
   * text (DeepSeek-V3), offsets come straight from the piece spans; otherwise every normalizer and
   * pre-tokenizer step tracks alignments as Rust's `NormalizedString` does (slower).
   */
  encodeWithOffsets(text: string, options: TokenizerOffsetOptions = {}): TokenizerOffsetEncoding {
    const s = toWellFormedString(text);
    const plan = this.preTokenizer === null ? NO_PRE_TOKENIZER : this.preTokenizer.plan;
    const enc = (this.identityNormalizer && plan !== null ? this.offsetsFromSpans(s, plan) : null) ?? this.offsetsTracked(s);
    const out = this.postProcessor === null ? enc : this.postProcessor.processEncoding(enc, options.addSpecialTokens !== false);
    if (options.offsetUnit === 'utf16') out.offsets = out.offsets.map(codePointToUtf16(s));
    return out;
  }

  /**
   * Offsets when every piece is a span of the input (identity normalizer, cutting pre-tokenizer):
   * a token covering bytes [b0, b1) of the input gets the chars [char(b0), char(b1 − 1) + 1), which
   * is what Rust's alignments give there. Null when a word needs Rust's raw-offset fallback.
   */
  private offsetsFromSpans(s: string, plan: SpanPlan): TokenizerOffsetEncoding | null {
    const n = s.length;
    // Code point index of each UTF-16 unit; UTF-8 offset of each unit; code point of each byte.
    const cpOfUnit = new Int32Array(n + 1);
    const byteOfUnit = new Int32Array(n + 1);
    let cp = 0;
    let b = 0;
    for (let i = 0; i < n; i++) {
      cpOfUnit[i] = cp;
      byteOfUnit[i] = b;
      const c = s.charCodeAt(i);
      if (c < 0xd800 || c >= 0xdc00) cp++;
      b += c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0xd800 || c >= 0xe000 ? 3 : c < 0xdc00 ? 4 : 0;
    }
    cpOfUnit[n] = cp;
    byteOfUnit[n] = b;
    let cpOfByte: Int32Array | null = null;
    if (plan.byteLevel) {
      cpOfByte = new Int32Array(b);
      for (let i = 0; i < n; i++) cpOfByte.fill(cpOfUnit[i]!, byteOfUnit[i]!, byteOfUnit[i + 1]!);
    }
    const enc: TokenizerOffsetEncoding = { ids: [], tokens: [], offsets: [] };
    let ok = true;
    for (const piece of this.addedSplits(s)) {
      const p0 = piece.start;
      if (piece.id >= 0) {
        enc.ids.push(piece.id);
        enc.tokens.push(piece.text);
        enc.offsets.push([cpOfUnit[p0]!, cpOfUnit[p0 + piece.text.length - 1]! + 1]);
        continue;
      }
      runPlan(plan, piece.text, (a, e) => {
        const w = this.model.spanWord(piece.text, a, e, plan.byteLevel);
        const units = w.units!;
        if (units === null) {
          ok = false;
          return;
        }
        const base = plan.byteLevel ? byteOfUnit[p0 + a]! : p0 + a;
        const at = plan.byteLevel ? cpOfByte! : cpOfUnit;
        for (let k = 0; k < w.ids.length; k++) {
          enc.ids.push(w.ids[k]!);
          enc.tokens.push(this.model.vocabR.get(w.ids[k]!)!);
          enc.offsets.push([at[base + units[2 * k]!]!, at[base + units[2 * k + 1]! - 1]! + 1]);
        }
      });
    }
    return ok ? enc : null;
  }

  /** Offsets by Rust's own bookkeeping: alignments through every normalizer and pre-tokenizer step. */
  private offsetsTracked(s: string): TokenizerOffsetEncoding {
    const enc: TokenizerOffsetEncoding = { ids: [], tokens: [], offsets: [] };
    const toChars = new ByteToCharConverter(s);
    const pushToken = (id: number, token: string, start: number, end: number) => {
      enc.ids.push(id);
      enc.tokens.push(token);
      enc.offsets.push(toChars.convert(start, end));
    };
    const model = (piece: NormalizedText) => {
      const { ids, lens } = this.model.encodeWord(piece.text);
      const unitOfByte = byteToUnitMap(piece.text);
      let b = 0;
      for (let k = 0; k < ids.length; k++) {
        const id = ids[k]!;
        const start = b;
        b += lens[k]!;
        // Rust convert_offsets(Normalized(start..b)): outside the piece it keeps the raw offsets.
        if (b > unitOfByte.length) pushToken(id, this.model.vocabR.get(id)!, start, b);
        else pushToken(id, this.model.vocabR.get(id)!, piece.align[2 * unitOfByte[start]!]!, piece.align[2 * unitOfByte[b - 1]! + 1]!);
      }
    };
    const whole = NormalizedText.fromOriginal(s);
    const raw: AddedSplit[] = [];
    this.added.splitRaw(s, true, raw);
    for (const p of raw) {
      if (p.text.length === 0) continue;
      const piece = whole.slice(p.start, p.start + p.text.length);
      if (p.id >= 0) {
        pushToken(p.id, piece.text, piece.align[0]!, piece.align[piece.align.length - 1]!);
        continue;
      }
      const norm = this.normalizer === null ? piece : this.normalizer.normalizeTracked(piece);
      const sub: AddedSplit[] = [];
      this.added.splitNormalized(norm.text, false, sub);
      for (const q of sub) {
        if (q.text.length === 0) continue;
        const part = norm.slice(q.start, q.start + q.text.length);
        if (q.id >= 0) pushToken(q.id, part.text, part.align[0]!, part.align[part.align.length - 1]!);
        else if (this.preTokenizer === null) model(part);
        else this.preTokenizer.eachTracked(part, model);
      }
    }
    return enc;
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
      for (const q of sub) {
        q.start += p.start; // in the input when the normalizer is the identity
        if (q.id >= 0 || q.text.length > 0) out.push(q);
      }
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
