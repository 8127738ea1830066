/**
 * Per-layer KV caches of Multi-head Latent Attention (SPEC §3.6, §6.6).
 *
 * - `NaiveKVCache` (official `attn_impl = "naive"`): full per-head keys with RoPE applied and
 *   values, H·(n+R+V) values per token per layer (40,960 for V3).
 * - `LatentKVCache` (official `attn_impl = "absorb"`): the RMS-normalised latent ĉ and the
 *   already-rotated shared k_pe, C + R values per token per layer (576 for V3).
 *
 * `mlaForward` writes the S new entries at [startPos, startPos + S) and sets `length` to
 * startPos + S; `truncate(n)` drops entries ≥ n (rejected speculative tokens).
 *
 * f32 cache arrays live in the wasm backend's memory when it is shared (`allocateResident`: the attention matmuls
 * then read them in place instead of copying the whole cache in at every decode step). Whoever creates a cache
 * should `release()` it when done: until then that memory stays reserved (until the backend is replaced).
 */
import { InputError } from '../errors.js';
import { allocateResident, releaseResident } from '../kernels/index.js';
import type { DType, FloatArray } from '../tensor.js';
import type { ModelConfig } from './config.js';
import type { AttnImpl } from './attention.js';

abstract class KVCacheBase {
  /** Batch rows the cache holds. */
  readonly batch: number;
  /** Capacity in tokens. */
  readonly maxLen: number;
  readonly dtype: DType;
  private len = 0;
  private released = false;

  constructor(batch: number, maxLen: number, dtype: DType) {
    if (!Number.isInteger(batch) || batch < 1) throw new InputError(`KV cache: batch must be a positive integer, got ${batch}`);
    if (!Number.isInteger(maxLen) || maxLen < 1) throw new InputError(`KV cache: maxLen must be a positive integer, got ${maxLen}`);
    this.batch = batch;
    this.maxLen = maxLen;
    this.dtype = dtype;
  }

  /** Number of valid tokens (positions [0, length) are filled). */
  get length(): number {
    return this.len;
  }

  /** Bytes allocated by the cache arrays (0 once released). */
  abstract get bytes(): number;

  /** The cache arrays (for release). */
  protected abstract arrays(): FloatArray[];

  /** Whether {@link release} was called. */
  get isReleased(): boolean {
    return this.released;
  }

  /**
   * Gives the cache arrays back (resident wasm memory is reused by later allocations). Idempotent; a released cache
   * throws an InputError when used.
   */
  release(): void {
    if (this.released) return;
    for (const a of this.arrays()) releaseResident(a);
    this.released = true;
  }

  /** Throws unless the cache is still usable. */
  protected live<T>(x: T, what: string): T {
    if (this.released) throw new InputError(`KV cache (${this.constructor.name}): '${what}' used after release()`);
    return x;
  }

  /** Keeps positions [0, n) and forgets the rest (speculative decoding rolls back this way). */
  truncate(n: number): void {
    this.live(0, 'truncate');
    if (!Number.isInteger(n) || n < 0 || n > this.len) throw new InputError(`KV cache truncate(${n}): must be an integer in [0, ${this.len}]`);
    this.len = n;
  }

  /**
   * Checks that S new tokens may be written at startPos (no hole after the filled prefix, no
   * overflow) and marks [0, startPos + S) valid. Called by `mlaForward` before it writes.
   */
  reserve(startPos: number, S: number, batch: number): void {
    this.live(0, 'reserve');
    if (batch !== this.batch) throw new InputError(`KV cache: batch ${batch} does not match the cache's batch ${this.batch}`);
    if (!Number.isInteger(startPos) || startPos < 0 || startPos > this.len) {
      throw new InputError(`KV cache: startPos ${startPos} must be in [0, length = ${this.len}] (positions must be written contiguously)`);
    }
    if (startPos + S > this.maxLen) throw new InputError(`KV cache: writing tokens up to position ${startPos + S - 1} overflows capacity ${this.maxLen}`);
    this.len = startPos + S;
  }
}

/**
 * Naive-path cache: k [B, H, maxLen, n+R] (RoPE applied), v [B, H, maxLen, V]. Head-major (the
 * official cache is [B, maxLen, H, ·]): each (b, h) is one contiguous slab, so the batched score
 * and value matmuls read the cache in place instead of gathering it at every decode step.
 */
export class NaiveKVCache extends KVCacheBase {
  readonly attn = 'naive' as const;
  private readonly kData: FloatArray;
  private readonly vData: FloatArray;
  readonly heads: number;
  readonly qkHeadDim: number;
  readonly vHeadDim: number;

  constructor(config: ModelConfig, batch: number, maxLen: number, dtype: DType) {
    super(batch, maxLen, dtype);
    this.heads = config.numAttentionHeads;
    this.qkHeadDim = config.qkNopeHeadDim + config.qkRopeHeadDim;
    this.vHeadDim = config.vHeadDim;
    this.kData = allocateResident(dtype, batch * maxLen * this.heads * this.qkHeadDim);
    this.vData = allocateResident(dtype, batch * maxLen * this.heads * this.vHeadDim);
  }

  /** k: [B, H, maxLen, n+R]. */
  get k(): FloatArray {
    return this.live(this.kData, 'k');
  }

  /** v: [B, H, maxLen, V]. */
  get v(): FloatArray {
    return this.live(this.vData, 'v');
  }

  get bytes(): number {
    return this.isReleased ? 0 : this.kData.byteLength + this.vData.byteLength;
  }

  protected arrays(): FloatArray[] {
    return [this.kData, this.vData];
  }
}

/** Absorbed-path cache: ĉ = kv_a_layernorm(latent) [B, maxLen, C] and the rotated k_pe [B, maxLen, R]. */
export class LatentKVCache extends KVCacheBase {
  readonly attn = 'absorb' as const;
  private readonly latentData: FloatArray;
  private readonly kPeData: FloatArray;
  readonly kvLoraRank: number;
  readonly ropeDim: number;

  constructor(config: ModelConfig, batch: number, maxLen: number, dtype: DType) {
    super(batch, maxLen, dtype);
    this.kvLoraRank = config.kvLoraRank;
    this.ropeDim = config.qkRopeHeadDim;
    this.latentData = allocateResident(dtype, batch * maxLen * this.kvLoraRank);
    this.kPeData = allocateResident(dtype, batch * maxLen * this.ropeDim);
  }

  /** latent ĉ (after kv_a_layernorm): [B, maxLen, C]. */
  get latent(): FloatArray {
    return this.live(this.latentData, 'latent');
  }

  /** k_pe after RoPE: [B, maxLen, R]. */
  get kPe(): FloatArray {
    return this.live(this.kPeData, 'kPe');
  }

  get bytes(): number {
    return this.isReleased ? 0 : this.latentData.byteLength + this.kPeData.byteLength;
  }

  protected arrays(): FloatArray[] {
    return [this.latentData, this.kPeData];
  }
}

/** One layer's attention cache; its class matches the attention path that fills it. */
export type MLACache = NaiveKVCache | LatentKVCache;

/** Creates an empty cache of one layer for the given attention path (release it when done: {@link KVCacheBase.release}). */
export function createKVCache(config: ModelConfig, attn: AttnImpl, batch: number, maxLen: number, dtype: DType): MLACache {
  if (attn === 'naive') return new NaiveKVCache(config, batch, maxLen, dtype);
  if (attn === 'absorb') return new LatentKVCache(config, batch, maxLen, dtype);
  throw new InputError(`createKVCache: unknown attention path '${String(attn)}' (expected 'naive' or 'absorb')`);
}

/** Cached values per token in ONE layer: naive H·(n+R+V), absorbed C + R (SPEC §6.6). */
export function cacheValuesPerTokenPerLayer(config: ModelConfig, attn: AttnImpl): number {
  if (attn === 'naive') return config.numAttentionHeads * (config.qkNopeHeadDim + config.qkRopeHeadDim + config.vHeadDim);
  return config.kvLoraRank + config.qkRopeHeadDim;
}

/**
 * Cache bytes per token of one sequence over all main-model layers (MTP layers excluded), with
 * `bytesPerValue` 2 for the official BF16 caches. Full V3: 70,272 B absorbed vs 4,997,120 B naive.
 */
export function cacheBytesPerToken(config: ModelConfig, attn: AttnImpl, bytesPerValue = 2): number {
  return cacheValuesPerTokenPerLayer(config, attn) * config.numHiddenLayers * bytesPerValue;
}
