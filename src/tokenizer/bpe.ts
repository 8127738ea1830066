/**
 * The BPE model of tokenizer.json (Rust `tokenizers::models::bpe`): a vocabulary, ranked merges,
 * and the merge loop that turns one pre-token into ids.
 *
 * Merge loop: start from one symbol per character (plus `continuing_subword_prefix` /
 * `end_of_word_suffix`, byte fallback, unknown token), then repeatedly apply the applicable merge
 * with the lowest rank; equal ranks go to the leftmost position. A binary heap keyed by
 * (rank, position) with lazy invalidation makes this O(n log n) per word, so a long pre-token
 * (e.g. a CJK paragraph without punctuation) is not quadratic.
 */
import { FormatError } from '../errors.js';
import { preview, previewText } from '../preview.js';
import { toByteLevel } from './byte_level.js';

/** UTF-8 length of a well-formed string. */
function utf8ByteLength(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    n += c < 0x80 ? 1 : c < 0x800 ? 2 : c >= 0xd800 && c < 0xdc00 ? 4 : c >= 0xdc00 && c < 0xe000 ? 0 : 3;
  }
  return n;
}

/** Options of the BPE model as stored in tokenizer.json. */
export interface BpeModelConfig {
  vocab: Record<string, number>;
  merges: Array<string | [string, string]>;
  unk_token?: string | null;
  continuing_subword_prefix?: string | null;
  end_of_word_suffix?: string | null;
  fuse_unk?: boolean;
  byte_fallback?: boolean;
  ignore_merges?: boolean;
  dropout?: number | null;
}

/** Words up to this many UTF-16 units are cached (Rust caches words shorter than 256 bytes). */
const CACHE_MAX_WORD = 256;
/** Cache capacity, in words (cleared when full; the cache never changes results). */
const CACHE_CAPACITY = 100_000;

/** Byte-fallback token names `<0x00>`..`<0xFF>`. */
const BYTE_TOKENS = Array.from({ length: 256 }, (_, b) => `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);

/** A byte-pair-encoding model. */
export class BpeModel {
  /** token string → id. */
  readonly vocab: TokenVocab;
  /** id → token string (sparse ids allowed). */
  readonly vocabR: VocabById;
  /** (left id, right id) → rank·pairBase + merged id; built on first use (mergeTable). */
  private merges: PairTable | null = null;
  private readonly mergeList: BpeModelConfig['merges'];
  private readonly pairBase: number;
  private readonly cache = new Map<string, number[]>();
  private readonly spanCacheBytes = new SpanCache();
  private readonly spanCachePlain = new SpanCache();
  private readonly unkId: number | null;
  private readonly unkToken: string | null;
  private readonly prefix: string | null;
  private readonly suffix: string | null;
  private readonly fuseUnk: boolean;
  private readonly byteFallback: boolean;
  private readonly ignoreMerges: boolean;

  constructor(cfg: BpeModelConfig) {
    if (cfg.dropout !== null && cfg.dropout !== undefined && cfg.dropout !== 0) {
      throw new FormatError('tokenizer.json', `model.dropout = ${preview(cfg.dropout)}: BPE dropout is random, this library only encodes deterministically`);
    }
    // The parsed `model.vocab` object is used as the token → id table itself: copying its 128K
    // entries into a Map was a third of the load time. One pass validates ids and fills id → token.
    const obj = cfg.vocab;
    if (obj === null || typeof obj !== 'object') throw new FormatError('tokenizer.json', 'model.vocab is not an object');
    const toks = Object.keys(obj);
    let maxId = 0;
    for (let k = 0; k < toks.length; k++) {
      const id = obj[toks[k]!];
      if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) throw new FormatError('tokenizer.json', `model.vocab[${preview(toks[k])}] = ${preview(id)} is not a token id`);
      if (id > maxId) maxId = id;
    }
    this.vocab = new TokenVocab(obj, toks.length);
    this.vocabR = new VocabById(obj, toks, maxId);
    this.pairBase = maxId + 1;
    for (const key of ['continuing_subword_prefix', 'end_of_word_suffix', 'unk_token'] as const) {
      const v: unknown = cfg[key];
      if (v !== null && v !== undefined && typeof v !== 'string') throw new FormatError('tokenizer.json', `model.${key} is ${preview(v)}, expected a string or null`);
    }
    this.prefix = cfg.continuing_subword_prefix ?? null;
    this.suffix = cfg.end_of_word_suffix ?? null;
    this.unkToken = cfg.unk_token ?? null;
    this.unkId = this.unkToken === null ? null : (this.vocab.get(this.unkToken) ?? null);
    if (this.unkToken !== null && this.unkId === null) {
      throw new FormatError('tokenizer.json', `model.unk_token '${previewText(this.unkToken)}' is not in model.vocab`);
    }
    this.fuseUnk = cfg.fuse_unk === true;
    this.byteFallback = cfg.byte_fallback === true;
    this.ignoreMerges = cfg.ignore_merges === true;
    this.mergeList = cfg.merges;
    if (!Array.isArray(cfg.merges)) throw new FormatError('tokenizer.json', 'model.merges is not an array');
  }

  /**
   * The merge table, parsed from `model.merges` on the first word that needs a merge (about a
   * third of the load time of DeepSeek-V3's file is spent here, so loading does not pay it).
   * A malformed merge therefore raises {@link FormatError} on that first encode, not on load.
   */
  private mergeTable(): PairTable {
    if (this.merges !== null) return this.merges;
    const merges = this.mergeList;
    const table = new PairTable(merges.length);
    const vocab = this.vocab;
    const prefix = this.prefix;
    const base = this.pairBase;
    for (let rank = 0; rank < merges.length; rank++) {
      const m = merges[rank]!;
      let a: string;
      let b: string;
      if (typeof m === 'string') {
        const sp = m.indexOf(' ');
        if (sp < 0 || m.indexOf(' ', sp + 1) >= 0) throw new FormatError('tokenizer.json', `model.merges[${rank}] = ${preview(m)} is not "a b"`);
        a = m.slice(0, sp);
        b = m.slice(sp + 1);
      } else if (Array.isArray(m) && m.length === 2 && typeof m[0] === 'string' && typeof m[1] === 'string') {
        [a, b] = m;
      } else {
        throw new FormatError('tokenizer.json', `model.merges[${rank}] = ${preview(m)} is neither "a b" nor ["a", "b"]`);
      }
      const ia = vocab.get(a);
      const ib = vocab.get(b);
      if (ia === undefined || ib === undefined) {
        throw new FormatError('tokenizer.json', `model.merges[${rank}]: '${ia === undefined ? a : b}' is not in model.vocab`);
      }
      // The merged token drops b's continuing-subword prefix: "##a" + "##b" → "##ab".
      const merged = a + (prefix !== null && prefix.length > 0 && b.startsWith(prefix) ? b.slice(prefix.length) : b);
      const id = vocab.get(merged);
      if (id === undefined) throw new FormatError('tokenizer.json', `model.merges[${rank}]: merged token '${merged}' is not in model.vocab`);
      // A repeated pair keeps its last rank, as Rust's HashMap collect does.
      table.set(ia, ib, rank * base + id);
    }
    this.merges = table;
    return table;
  }

  /** Number of entries in the model vocabulary. */
  get size(): number {
    return this.vocab.size;
  }

  /** Forget cached words (results never depend on the cache; this is for benchmarks and memory). */
  clearCache(): void {
    this.cache.clear();
    this.spanCacheBytes.clear();
    this.spanCachePlain.clear();
  }

  /** Encode one pre-token (already in the model's alphabet) to ids, appending to `out`. */
  tokenize(word: string, out: number[]): void {
    if (word.length === 0) return;
    const hit = this.cache.get(word);
    if (hit !== undefined) {
      for (let k = 0; k < hit.length; k++) out.push(hit[k]!);
      return;
    }
    const ids = this.encodeWord(word).ids;
    if (word.length < CACHE_MAX_WORD) {
      if (this.cache.size >= CACHE_CAPACITY) this.cache.clear();
      this.cache.set(word, ids);
    }
    for (let k = 0; k < ids.length; k++) out.push(ids[k]!);
  }

  /**
   * Encode the piece `text[start, end)`, mapped to the byte-level alphabet first when `byteLevel`
   * (the fast path: the word cache is keyed by the piece itself, so a cache hit neither creates a
   * substring nor maps it).
   */
  tokenizeSpan(text: string, start: number, end: number, byteLevel: boolean, out: number[]): void {
    const cache = byteLevel ? this.spanCacheBytes : this.spanCachePlain;
    const ids = (cache.get(text, start, end) ?? this.missSpan(cache, text, start, end, byteLevel, false)).ids;
    for (let k = 0; k < ids.length; k++) out.push(ids[k]!);
  }

  /**
   * The encoding of the piece `text[start, end)` (as {@link BpeModel.tokenizeSpan}) with, per id,
   * the [start, end) it covers in UTF-16 units of the WORD (the byte-level form when `byteLevel`,
   * where a unit is one byte of the piece). `units` is null when Rust's symbol lengths overrun the
   * word (byte fallback of a prefixed char), where Rust keeps raw offsets.
   */
  spanWord(text: string, start: number, end: number, byteLevel: boolean): CachedWord {
    const cache = byteLevel ? this.spanCacheBytes : this.spanCachePlain;
    const w = cache.get(text, start, end) ?? this.missSpan(cache, text, start, end, byteLevel, true);
    if (w.units === undefined) {
      const piece = text.slice(start, end);
      const word = byteLevel ? toByteLevel(piece) : piece;
      w.units = wordUnits(word, this.encodeWord(word).lens);
    }
    return w;
  }

  /** Encode a piece missing from the cache and cache it (with its unit spans when `withUnits`). */
  private missSpan(cache: SpanCache, text: string, start: number, end: number, byteLevel: boolean, withUnits: boolean): CachedWord {
    const piece = text.slice(start, end);
    const word = byteLevel ? toByteLevel(piece) : piece;
    const { ids, lens } = this.encodeWord(word);
    const w: CachedWord = { ids, units: withUnits ? wordUnits(word, lens) : undefined };
    if (end - start < CACHE_MAX_WORD) cache.store(piece, w);
    return w;
  }

  /**
   * Ids of a word and, per id, its length in UTF-8 BYTES of the word (Rust `Word` symbol lengths,
   * from which Rust derives token offsets). Not cached.
   */
  encodeWord(word: string): { ids: number[]; lens: number[] } {
    const whole = this.ignoreMerges ? this.vocab.get(word) : undefined;
    if (whole !== undefined) return { ids: [whole], lens: [utf8ByteLength(word)] };
    return this.mergeWord(word);
  }

  /** The initial symbols of a word: characters with prefix/suffix, byte fallback, unknown token. */
  private initialSymbols(w: string, lens: number[]): number[] {
    const syms: number[] = [];
    let unk: number | null = null; // pending (possibly fused) unknown
    let unkLen = 0;
    let i = 0;
    while (i < w.length) {
      const cp = w.codePointAt(i)!;
      const ch = cp > 0xffff ? w.slice(i, i + 2) : w[i]!;
      const isFirst = i === 0;
      i += ch.length;
      const byteLen = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
      let s = ch;
      if (!isFirst && this.prefix !== null) s = this.prefix + s;
      if (i === w.length && this.suffix !== null) s = s + this.suffix;
      const id = this.vocab.get(s);
      if (id !== undefined) {
        if (unk !== null) {
          syms.push(unk);
          lens.push(unkLen);
        }
        unk = null;
        syms.push(id);
        lens.push(byteLen);
        continue;
      }
      if (this.byteFallback) {
        const bytes = new TextEncoder().encode(s);
        const ids: number[] = [];
        for (const b of bytes) {
          const bid = this.vocab.get(BYTE_TOKENS[b]!);
          if (bid === undefined) break;
          ids.push(bid);
        }
        if (ids.length === bytes.length) {
          // Rust pushes byte tokens (length 1 each, prefix/suffix bytes included) without flushing a pending unknown first.
          for (const bid of ids) {
            syms.push(bid);
            lens.push(1);
          }
          continue;
        }
      }
      if (this.unkId !== null) {
        if (unk !== null && this.fuseUnk) {
          unkLen += byteLen;
        } else {
          if (unk !== null) {
            syms.push(unk);
            lens.push(unkLen);
          }
          unkLen = byteLen;
        }
        unk = this.unkId;
      }
    }
    if (unk !== null) {
      syms.push(unk);
      lens.push(unkLen);
    }
    return syms;
  }

  /** The merge loop (Rust `Word::merge_all` without dropout). */
  private mergeWord(w: string): { ids: number[]; lens: number[] } {
    const lens0: number[] = [];
    const sym = this.initialSymbols(w, lens0);
    const n = sym.length;
    if (n < 2) return { ids: sym, lens: lens0 };
    const merges = this.mergeTable();
    const len = Int32Array.from(lens0);
    const next = new Int32Array(n);
    const prev = new Int32Array(n);
    const alive = new Uint8Array(n).fill(1);
    for (let k = 0; k < n; k++) {
      next[k] = k + 1 < n ? k + 1 : -1;
      prev[k] = k - 1;
    }
    const heap = new MergeHeap();
    for (let k = 0; k + 1 < n; k++) {
      const m = merges.get(sym[k]!, sym[k + 1]!);
      if (m >= 0) heap.push(m, k);
    }
    while (heap.size > 0) {
      const [m, pos] = heap.pop();
      if (alive[pos] === 0 || next[pos] === -1) continue;
      const right = next[pos]!;
      // Stale entry: the pair at pos changed since it was queued.
      if (merges.get(sym[pos]!, sym[right]!) !== m) continue;
      const newId = m % this.pairBase;
      sym[pos] = newId;
      len[pos]! += len[right]!;
      alive[right] = 0;
      next[pos] = next[right]!;
      if (next[pos]! >= 0) prev[next[pos]!] = pos;
      const p = prev[pos]!;
      if (p >= 0) {
        const mp = merges.get(sym[p]!, newId);
        if (mp >= 0) heap.push(mp, p);
      }
      const q = next[pos]!;
      if (q >= 0) {
        const mq = merges.get(newId, sym[q]!);
        if (mq >= 0) heap.push(mq, pos);
      }
    }
    const ids: number[] = [];
    const lens: number[] = [];
    for (let k = 0; k !== -1; k = next[k]!) {
      ids.push(sym[k]!);
      lens.push(len[k]!);
    }
    return { ids, lens };
  }
}

/**
 * token → id over the parsed `model.vocab` object, not copied (so that object must not be
 * mutated afterwards). Only own number-valued properties count: `Object.prototype` has none.
 */
export class TokenVocab {
  constructor(
    private readonly obj: Record<string, number>,
    /** Number of tokens. */
    readonly size: number,
  ) {}

  /** The id of a token, or undefined. */
  get(token: string): number | undefined {
    const v = this.obj[token];
    return typeof v === 'number' ? v : undefined;
  }
}

/** id → token string: an array when ids are dense (the usual case), else a Map. */
export class VocabById {
  private readonly arr: Array<string | undefined> | null;
  private readonly map: Map<number, string> | null;

  constructor(vocab: Record<string, number>, tokens: string[], maxId: number) {
    const dense = maxId < 4 * tokens.length + 1024;
    this.arr = dense ? new Array<string | undefined>(maxId + 1).fill(undefined) : null;
    this.map = dense ? null : new Map();
    for (let k = 0; k < tokens.length; k++) {
      const tok = tokens[k]!;
      if (dense) this.arr![vocab[tok]!] = tok;
      else this.map!.set(vocab[tok]!, tok);
    }
  }

  /** The token of an id, or undefined. */
  get(id: number): string | undefined {
    return this.arr !== null ? (Number.isInteger(id) && id >= 0 ? this.arr[id] : undefined) : this.map!.get(id);
  }

  /** Whether the id has a token. */
  has(id: number): boolean {
    return this.get(id) !== undefined;
  }
}

/**
 * Open-addressing hash table from an id pair to a non-negative value (−1 = absent): typed arrays
 * instead of a Map with non-SMI number keys, which is what makes loading and cold encoding fast.
 */
class PairTable {
  private readonly left: Int32Array;
  private readonly right: Int32Array;
  private readonly value: Float64Array;
  private readonly mask: number;

  constructor(n: number) {
    let cap = 16;
    while (cap < 2 * n) cap *= 2;
    this.mask = cap - 1;
    this.left = new Int32Array(cap).fill(-1);
    this.right = new Int32Array(cap);
    this.value = new Float64Array(cap);
  }

  private slot(a: number, b: number): number {
    // Mix both ids into all bits before masking (the low bits of a·odd depend only on the low bits of a).
    let h = Math.imul(a, 0x9e3779b1) + b;
    h = Math.imul(h ^ (h >>> 15), 0x85ebca77);
    h = (h ^ (h >>> 13)) & this.mask;
    while (this.left[h] !== -1 && (this.left[h] !== a || this.right[h] !== b)) h = (h + 1) & this.mask;
    return h;
  }

  /** Insert or overwrite (a repeated merge keeps its last rank, as Rust's HashMap collect). */
  set(a: number, b: number, v: number): void {
    const h = this.slot(a, b);
    this.left[h] = a;
    this.right[h] = b;
    this.value[h] = v;
  }

  /** The value of (a, b), or −1. */
  get(a: number, b: number): number {
    const h = this.slot(a, b);
    return this.left[h] === -1 ? -1 : this.value[h]!;
  }
}

/** Min-heap of (merge value = rank·base + id, position), ordered by rank then position. */
class MergeHeap {
  private keys: number[] = [];
  private pos: number[] = [];

  get size(): number {
    return this.keys.length;
  }

  // key = rank·base + id and a rank names one merge, so comparing keys compares ranks.
  private less(i: number, j: number): boolean {
    const ki = this.keys[i]!;
    const kj = this.keys[j]!;
    return ki < kj || (ki === kj && this.pos[i]! < this.pos[j]!);
  }

  private swap(i: number, j: number): void {
    const k = this.keys[i]!;
    this.keys[i] = this.keys[j]!;
    this.keys[j] = k;
    const p = this.pos[i]!;
    this.pos[i] = this.pos[j]!;
    this.pos[j] = p;
  }

  push(key: number, p: number): void {
    this.keys.push(key);
    this.pos.push(p);
    let i = this.keys.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(i, parent)) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  pop(): [number, number] {
    const top: [number, number] = [this.keys[0]!, this.pos[0]!];
    const lastK = this.keys.pop()!;
    const lastP = this.pos.pop()!;
    if (this.keys.length > 0) {
      this.keys[0] = lastK;
      this.pos[0] = lastP;
      let i = 0;
      const n = this.keys.length;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < n && this.less(l, m)) m = l;
        if (r < n && this.less(r, m)) m = r;
        if (m === i) break;
        this.swap(i, m);
        i = m;
      }
    }
    return top;
  }
}

/** A cached word: its ids and, once asked for, the unit span of each id ({@link BpeModel.spanWord}). */
export interface CachedWord {
  ids: number[];
  units: Int32Array | null | undefined;
}

/** Per-token [start, end) in UTF-16 units of `word` from Rust's UTF-8 symbol lengths (null on overrun). */
function wordUnits(word: string, lens: number[]): Int32Array | null {
  const unitOfByte: number[] = [];
  for (let i = 0; i < word.length; ) {
    const cp = word.codePointAt(i)!;
    const w = cp > 0xffff ? 2 : 1;
    for (let k = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4; k > 0; k--) unitOfByte.push(i);
    i += w;
  }
  const out = new Int32Array(2 * lens.length);
  let b = 0;
  for (let k = 0; k < lens.length; k++) {
    const e = b + lens[k]!;
    if (e > unitOfByte.length) return null;
    const last = unitOfByte[e - 1]!;
    out[2 * k] = unitOfByte[b]!;
    out[2 * k + 1] = last + (word.charCodeAt(last) >= 0xd800 && word.charCodeAt(last) < 0xdc00 ? 2 : 1);
    b = e;
  }
  return out;
}

/**
 * Word cache keyed by a span of a larger string: open addressing over an FNV-1a hash of the
 * span's UTF-16 units, keys compared unit by unit, so a lookup allocates nothing. Cleared when
 * half full (the cache never changes results).
 */
class SpanCache {
  private static readonly SIZE = 1 << 17;
  // Allocated on first store (a tokenizer that never encodes pays nothing).
  private keys: Array<string | undefined> = [];
  private hashes = new Int32Array(0);
  private values: CachedWord[] = [];
  private count = 0;
  private readonly mask = SpanCache.SIZE - 1;

  private static hash(text: string, start: number, end: number): number {
    let h = 0x811c9dc5 | 0;
    for (let i = start; i < end; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
    return h;
  }

  clear(): void {
    this.keys = [];
    this.hashes = new Int32Array(0);
    this.values = [];
    this.count = 0;
  }

  /** The cached word `text[start, end)`, or undefined. */
  get(text: string, start: number, end: number): CachedWord | undefined {
    if (this.count === 0) return undefined;
    const h = SpanCache.hash(text, start, end);
    const n = end - start;
    for (let i = h & this.mask; ; i = (i + 1) & this.mask) {
      const k = this.keys[i];
      if (k === undefined) return undefined;
      if (this.hashes[i] !== h || k.length !== n) continue;
      let j = 0;
      while (j < n && k.charCodeAt(j) === text.charCodeAt(start + j)) j++;
      if (j === n) return this.values[i];
    }
  }

  /** Remember the encoding of `key` (not already present). */
  store(key: string, w: CachedWord): void {
    if (this.count >= SpanCache.SIZE >> 1) this.clear();
    if (this.count === 0) {
      this.keys = new Array(SpanCache.SIZE);
      this.hashes = new Int32Array(SpanCache.SIZE);
      this.values = new Array(SpanCache.SIZE);
    }
    const h = SpanCache.hash(key, 0, key.length);
    let i = h & this.mask;
    while (this.keys[i] !== undefined) i = (i + 1) & this.mask;
    this.keys[i] = key;
    this.hashes[i] = h;
    this.values[i] = w;
    this.count++;
  }
}
