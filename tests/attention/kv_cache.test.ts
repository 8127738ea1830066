import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import { cacheBytesPerToken, cacheValuesPerTokenPerLayer, createKVCache } from '../../src/model/kv_cache.js';
import { deepseekV3 } from '../../src/model/presets.js';
import { mlaConfig } from './helpers.js';

describe('KV cache sizes (SPEC §6.6, full V3 config)', () => {
  it('576 (latent 512 + k_pe 64) vs 40,960 (128·(192+128)) values per token per layer', () => {
    expect(cacheValuesPerTokenPerLayer(deepseekV3, 'absorb')).toBe(576);
    expect(cacheValuesPerTokenPerLayer(deepseekV3, 'naive')).toBe(40960);
  });

  it('BF16 bytes per token over 61 layers: 70,272 vs 4,997,120; f32 doubles them', () => {
    expect(cacheBytesPerToken(deepseekV3, 'absorb')).toBe(70272);
    expect(cacheBytesPerToken(deepseekV3, 'naive')).toBe(4997120);
    expect(cacheBytesPerToken(deepseekV3, 'absorb', 4)).toBe(2 * 70272);
    // 71.1× (SPEC §6.6)
    expect((cacheBytesPerToken(deepseekV3, 'naive') / cacheBytesPerToken(deepseekV3, 'absorb')).toFixed(1)).toBe('71.1');
  });
});

describe('KV cache objects', () => {
  const config = mlaConfig({ hidden: 8, heads: 3, qLoraRank: 0, kvLoraRank: 5, nope: 2, rope: 4, v: 7 });

  it('allocates exactly batch · maxLen · values-per-token elements', () => {
    const naive = createKVCache(config, 'naive', 2, 10, 'float32');
    expect(naive.bytes).toBe(2 * 10 * 3 * (2 + 4 + 7) * 4);
    const latent = createKVCache(config, 'absorb', 2, 10, 'float64');
    expect(latent.bytes).toBe(2 * 10 * (5 + 4) * 8);
    expect(latent.attn).toBe('absorb');
    expect(naive.attn).toBe('naive');
    expect(naive.length).toBe(0);
  });

  it('reserve/truncate track the filled prefix and reject holes and overflow', () => {
    const c = createKVCache(config, 'absorb', 1, 6, 'float64');
    c.reserve(0, 4, 1);
    expect(c.length).toBe(4);
    c.truncate(2);
    expect(c.length).toBe(2);
    expect(() => c.reserve(3, 1, 1)).toThrow(InputError);
    expect(() => c.reserve(2, 5, 1)).toThrow(/capacity/);
    expect(() => c.reserve(2, 1, 2)).toThrow(/batch/);
    expect(() => c.truncate(3)).toThrow(InputError);
    c.reserve(1, 2, 1); // rewriting from an earlier position drops the rest
    expect(c.length).toBe(3);
    expect(() => createKVCache(config, 'flash' as never, 1, 4, 'float64')).toThrow(InputError);
  });
});
