/** The KV caches as MLA uses them: the checks of a cache against the call, and the writes of the new tokens. */
import { InputError } from '../../errors.js';
import type { DType, FloatArray } from '../../tensor.js';
import type { ModelConfig } from '../config.js';
import type { LatentKVCache, MLACache, NaiveKVCache } from '../kv_cache.js';
import { copyBlocks, headMajor, tokenMajor } from './layout.js';
import type { AttnImpl } from './mla.js';
import type { Dims } from './weights.js';

/** Checks that `cache` serves this call: its path, precision, batch and dimensions. */
export function checkCache(config: ModelConfig, cache: MLACache, attn: AttnImpl, B: number, dtype: DType): void {
  if (cache.attn !== attn) throw new InputError(`mlaForward: a '${cache.attn}' cache cannot serve the '${attn}' attention path`);
  if (cache.dtype !== dtype) throw new InputError(`mlaForward: the cache is ${cache.dtype}, the activations are ${dtype}`);
  if (cache.batch !== B) throw new InputError(`mlaForward: batch ${B} does not match the cache's batch ${cache.batch}`);
  const ok =
    cache.attn === 'naive'
      ? cache.heads === config.numAttentionHeads && cache.qkHeadDim === config.qkNopeHeadDim + config.qkRopeHeadDim && cache.vHeadDim === config.vHeadDim
      : cache.kvLoraRank === config.kvLoraRank && cache.ropeDim === config.qkRopeHeadDim;
  if (!ok) throw new InputError(`mlaForward: the ${cache.attn} cache was created for other attention dimensions than this config's`);
}

/**
 * Writes the S new tokens at [startPos, startPos + S) of the naive cache: k = [k_nope ; k_pe] (k_pe broadcast to every
 * head) and v, head-major [B, H, maxLen, ·].
 */
export function writeNaiveCache(dm: Dims, cache: NaiveKVCache, B: number, S: number, startPos: number, kNope: FloatArray, kPe: FloatArray, Vh: FloatArray): void {
  const { H, n, R, V, qk } = dm;
  const Tc = cache.maxLen;
  copyBlocks(headMajor(kNope, 0, n, H, S), headMajor(cache.k, startPos * qk, qk, H, Tc), B, H, S, n);
  copyBlocks(tokenMajor(kPe, 0, R, 0, S), headMajor(cache.k, startPos * qk + n, qk, H, Tc), B, H, S, R);
  copyBlocks(headMajor(Vh, 0, V, H, S), headMajor(cache.v, startPos * V, V, H, Tc), B, H, S, V);
}

/** Writes ĉ (normalised) and the rotated k_pe of the S new tokens at [startPos, startPos + S) of the latent cache. */
export function writeLatentCache(dm: Dims, cache: LatentKVCache, B: number, S: number, startPos: number, cHat: FloatArray, kPe: FloatArray): void {
  const { R, C } = dm;
  const Tcap = cache.maxLen;
  copyBlocks(tokenMajor(cHat, 0, C, 0, S), tokenMajor(cache.latent, startPos * C, C, 0, Tcap), B, 1, S, C);
  copyBlocks(tokenMajor(kPe, 0, R, 0, S), tokenMajor(cache.kPe, startPos * R, R, 0, Tcap), B, 1, S, R);
}
