/**
 * Guard rails of the library (issue 12): the memory estimate (exact parts against what the code allocates, floors
 * for the rest), the budget check and its one-sentence refusal, the position limit of forward / lossAndGrads /
 * generate, the non-finite weight scan, and runtime checks of dtype and option arguments.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InputError, ResourceError, WeightsError } from '../../src/errors.js';
import type { ModelConfig } from '../../src/model/config.js';
import {
  checkMemory,
  defaultMemoryBudget,
  estimateMemory,
  findNonFinite,
  formatBytes,
  type MemoryEstimate,
} from '../../src/model/guards.js';
import { DeepSeekV3 } from '../../src/model/model.js';
import { getPreset } from '../../src/model/presets.js';
import { initWeights, loadModelFromBytes, loadWeights, saveWeights } from '../../src/model/weights.js';
import { configToHF } from '../../src/model/config.js';
import { serializeSafetensors } from '../../src/io/safetensors.js';
import { Tensor, type DType } from '../../src/tensor.js';
import { microConfig, randomIds, randomWeights } from './helpers.js';

const SEED = 20261204;
const bytesOf = (w: Map<string, Tensor>): number => [...w.values()].reduce((s, t) => s + t.data.byteLength, 0);

/** Micro configs that vary every switch the parameter listing depends on. */
const configArb = fc
  .record({
    qLoraRank: fc.constantFrom(0, 12),
    numNextnPredictLayers: fc.integer({ min: 0, max: 2 }),
    firstKDenseReplace: fc.integer({ min: 0, max: 2 }),
    nSharedExperts: fc.integer({ min: 0, max: 2 }),
    topkMethod: fc.constantFrom('noaux_tc' as const, 'greedy' as const),
    vocabSize: fc.integer({ min: 8, max: 64 }),
  })
  .map((o) => microConfig({ ...o, ...(o.topkMethod === 'greedy' ? { nGroup: 1, topkGroup: 1 } : {}) }));

describe('estimateMemory: the exact parts', () => {
  it('weights = the bytes of every tensor of the config (an independent listing), grads = weights, AdamW = 2 × weights (100 configs)', () => {
    fc.assert(
      fc.property(configArb, fc.constantFrom<DType>('float32', 'float64'), (c, dtype) => {
        const held = bytesOf(randomWeights(c, dtype, 1));
        expect(estimateMemory(c, dtype, { kind: 'weights' }).weights).toBe(held);
        expect(bytesOf(initWeights(c, { dtype }))).toBe(held);
        const train = estimateMemory(c, dtype, { kind: 'train', batch: 1, positions: 4 });
        expect(train.grads).toBe(held);
        expect(train.optimizer).toBe(2 * held);
        expect(estimateMemory(c, dtype, { kind: 'train', batch: 1, positions: 4, microBatches: 2 }).grads).toBe(2 * held);
      }),
      { seed: SEED, numRuns: 100 },
    );
  });

  it('full DeepSeek-V3: 684.5e9 stored parameters less the two MTP copies of embedding and head = 682.6e9 parameters, 2.73 TB in f32', () => {
    const e = estimateMemory(getPreset('deepseek-v3'), 'float32', { kind: 'weights' });
    // 671,026,419,200 main + 11,610,068,224 MTP (SPEC §2.3; the README's counts)
    expect(e.weights).toBe((671_026_419_200 + 11_610_068_224) * 4);
    expect(formatBytes(e.weights)).toBe('2.7 TB');
  });

  it('KV caches = the cacheBytes generate reports (main layers, + the MTP block when speculating), 30 cases', () => {
    const c = microConfig();
    const model = new DeepSeekV3(c, randomWeights(c, 'float64', 3));
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 12 }), fc.integer({ min: 0, max: 8 }), fc.constantFrom('naive' as const, 'absorb' as const), fc.boolean(), (n, newTokens, attn, speculative) => {
        const prompt = randomIds(1, n, c.vocabSize, n)[0]!;
        const r = model.generate(prompt, { maxNewTokens: newTokens, attn, ...(speculative ? { speculative: 'mtp' as const } : {}) });
        expect(estimateMemory(c, 'float64', { kind: 'generate', promptLength: n, newTokens, attn, speculative }).caches).toBe(r.cacheBytes);
      }),
      { seed: SEED, numRuns: 30 },
    );
  });
});

describe('estimateMemory: activations', () => {
  it('a forward estimate is at least the tensors the forward returns (logits, hidden states, final hidden), 40 cases', () => {
    const c = microConfig();
    const model = new DeepSeekV3(c, randomWeights(c, 'float32', 4));
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 40 }), fc.constantFrom('naive' as const, 'absorb' as const), (B, T, attn) => {
        const out = model.forward(randomIds(B, T, c.vocabSize, T), { attn });
        const returned = out.logits.data.byteLength + out.finalHidden.data.byteLength + out.hidden.reduce((s, h) => s + h.data.byteLength, 0);
        expect(estimateMemory(c, 'float32', { kind: 'forward', batch: B, positions: T, attn }).activations).toBeGreaterThanOrEqual(returned);
      }),
      { seed: SEED, numRuns: 40 },
    );
  });

  it('activations grow with the batch and the positions; saving for backward never costs less (200 cases)', () => {
    fc.assert(
      fc.property(configArb, fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 512 }), (c, B, T) => {
        const f = (b: number, t: number, save = false): number => estimateMemory(c, 'float32', { kind: 'forward', batch: b, positions: t, save }).activations;
        expect(f(B + 1, T)).toBeGreaterThan(f(B, T));
        expect(f(B, T + 1)).toBeGreaterThan(f(B, T));
        expect(f(B, T, true)).toBeGreaterThanOrEqual(f(B, T));
        const g = estimateMemory(c, 'float32', { kind: 'grad', batch: B, positions: T });
        expect(g.activations).toBeGreaterThanOrEqual(f(B, T, true));
      }),
      { seed: SEED, numRuns: 200 },
    );
  });

  it('1,000,000 positions of tiny: gigabytes on the blocked inference path (32 query rows scored at a time), terabytes when the scores are kept', () => {
    const blocked = estimateMemory(getPreset('tiny'), 'float32', { kind: 'forward', batch: 1, positions: 1_000_000 }).activations;
    const saved = estimateMemory(getPreset('tiny'), 'float32', { kind: 'forward', batch: 1, positions: 1_000_000, save: true }).activations;
    // logits alone: 1e6 · 256 · 4 B = 1 GB; scores of one layer [B, H, 32, T]: 4 · 32 · 1e6 · 4 B = 512 MB
    expect(blocked).toBeGreaterThan(1e6 * 256 * 4 + 4 * 32 * 1e6 * 4);
    expect(blocked).toBeLessThan(1e11);
    // saved scores B·H·T² per layer: 3 layers · 4 heads · 1e12 · 4 B = 48 TB
    expect(saved).toBeGreaterThan(3 * 4 * 1e12 * 4);
  });
});

describe('checkMemory and formatBytes', () => {
  const estimate = (parts: Partial<MemoryEstimate>): MemoryEstimate => {
    const e = { weights: 0, grads: 0, optimizer: 0, caches: 0, activations: 0, io: 0, ...parts };
    return { ...e, total: e.weights + e.grads + e.optimizer + e.caches + e.activations + e.io };
  };

  it('refuses in one sentence: weights alone when they do not fit, else the parts; never at or under the limit', () => {
    const v3 = estimateMemory(getPreset('deepseek-v3'), 'float32', { kind: 'weights' });
    expect(() => checkMemory(v3, 18e9, 'deepseek-v3', '--max-memory SIZE overrides')).toThrow(
      new ResourceError('deepseek-v3 needs ~2.7 TB for weights alone; limit 18 GB (--max-memory SIZE overrides)'),
    );
    expect(() => checkMemory(estimate({ weights: 1e6, activations: 3.4e9, io: 5e5 }), 2e9, 'tiny')).toThrow(
      'tiny needs ~3.4 GB (weights 1 MB, activations 3.4 GB, file buffers 500 kB); limit 2 GB (the maxBytes option raises it)',
    );
    expect(() => checkMemory(estimate({ weights: 100 }), 100, 'x')).not.toThrow();
    expect(() => checkMemory(v3, Infinity, 'x')).not.toThrow();
  });

  it('formatBytes: two significant digits, decimal units', () => {
    expect([0, 999, 1000, 1499, 64_000, 999_499, 18.5e9, 2.73e12, 1.2e15, Infinity].map(formatBytes)).toEqual([
      '0 B', '999 B', '1 kB', '1.5 kB', '64 kB', '1 MB', '19 GB', '2.7 TB', '1.2 PB', 'unlimited',
    ]);
  });

  it('the default budget in Node is 75% of os.totalmem()', async () => {
    const os = await import('node:os');
    expect(defaultMemoryBudget()).toBe(Math.floor(0.75 * os.totalmem()));
  });
});

describe('the API refuses before allocating', () => {
  it('initWeights(deepseek-v3) is a ResourceError naming the estimate and the limit', () => {
    expect(() => initWeights(getPreset('deepseek-v3'), { maxBytes: 18e9 })).toThrow(/^initWeights needs ~2\.7 TB for weights alone; limit 18 GB/);
  });

  it('loadModelFromBytes counts the file bytes it holds', () => {
    const c = microConfig();
    const bytes = serializeSafetensors(saveWeights(c, randomWeights(c, 'float32', 5), { dtype: 'F32' }));
    expect(() => loadModelFromBytes(configToHF(c), [{ name: 'm.safetensors', bytes }], { maxBytes: bytes.byteLength })).toThrow(ResourceError);
    expect(loadModelFromBytes(configToHF(c), [{ name: 'm.safetensors', bytes }], { maxBytes: 3 * bytes.byteLength }).weights.size).toBeGreaterThan(0);
  });

  it('new DeepSeekV3 with maxBytes: forward and lossAndGrads whose activations exceed it are refused', () => {
    const c = microConfig();
    const w = randomWeights(c, 'float32', 6);
    const held = bytesOf(w);
    const model = new DeepSeekV3(c, w, { maxBytes: held + 200_000 });
    expect(model.forward(randomIds(1, 8, c.vocabSize, 1)).logits.shape).toEqual([1, 8, c.vocabSize]);
    expect(() => model.forward(randomIds(4, 200, c.vocabSize, 2))).toThrow(/^forward of 4×200 tokens needs ~\S+ MB \(weights \S+ kB, activations \S+ MB\); limit/);
    expect(() => model.lossAndGrads(randomIds(4, 201, c.vocabSize, 3))).toThrow(ResourceError);
  });

  it('bad options are TypeErrors naming the option', () => {
    const c = microConfig();
    const w = randomWeights(c, 'float32', 7);
    expect(() => new DeepSeekV3(c, w, { maxBytes: -1 })).toThrow(new TypeError('DeepSeekV3: maxBytes must be a positive number of bytes (Infinity = no limit), got -1'));
    expect(() => new DeepSeekV3(c, w, { allowLongContext: 'yes' as unknown as boolean })).toThrow(/allowLongContext must be a boolean, got 'yes'/);
  });
});

describe('positions past max_position_embeddings', () => {
  const c: ModelConfig = microConfig({ maxPositionEmbeddings: 16 });
  const w = randomWeights(c, 'float64', 8);
  const strict = new DeepSeekV3(c, w);
  const long = new DeepSeekV3(c, w, { allowLongContext: true });

  it('forward: an InputError naming the length and the limit, unless allowLongContext', () => {
    expect(() => strict.forward(randomIds(1, 17, c.vocabSize, 1))).toThrow(new InputError('forward: ids [1, 17] from position 0: 17 positions exceed max_position_embeddings 16 (allowLongContext: true runs past it)'));
    expect(() => strict.forward(randomIds(1, 2, c.vocabSize, 1), { startPos: 15, caches: strict.createCaches('naive', 1, 17) })).toThrow(/17 positions exceed max_position_embeddings 16/);
    expect(strict.forward(randomIds(1, 16, c.vocabSize, 1)).T).toBe(16);
    expect(long.forward(randomIds(1, 40, c.vocabSize, 1)).T).toBe(40);
  });

  it('lossAndGrads: rows of T+1 ids use T positions', () => {
    expect(() => strict.lossAndGrads(randomIds(1, 18, c.vocabSize, 2))).toThrow(/lossAndGrads: ids \[1, 18\]: 17 positions exceed max_position_embeddings 16/);
    expect(strict.lossAndGrads(randomIds(1, 17, c.vocabSize, 2)).targets).toBe(16);
    expect(long.lossAndGrads(randomIds(1, 30, c.vocabSize, 2)).targets).toBe(29);
  });

  it('generate stops when prompt + generated ids reach the limit (stopReason), with and without speculation; a longer prompt is an InputError', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 16 }), fc.integer({ min: 1, max: 30 }), fc.boolean(), (n, maxNew, speculative) => {
        const prompt = randomIds(1, n, c.vocabSize, n)[0]!;
        const opts = { maxNewTokens: maxNew, ...(speculative ? { speculative: 'mtp' as const } : {}) };
        const r = strict.generate(prompt, opts);
        const room = 16 - n;
        expect(r.tokens.length).toBe(Math.min(maxNew, room));
        expect(r.stopReason).toBe(maxNew > room ? 'max_position_embeddings' : 'max_new_tokens');
        // the same ids as without the limit, cut at it
        const free = long.generate(prompt, opts);
        expect(free.tokens.length).toBe(maxNew);
        expect(r.tokens).toEqual(free.tokens.slice(0, r.tokens.length));
      }),
      { seed: SEED, numRuns: 25 },
    );
    expect(() => strict.generate(randomIds(1, 17, c.vocabSize, 9)[0]!)).toThrow(/generate: prompt of 17 ids: 17 positions exceed max_position_embeddings 16/);
  });
});

describe('non-finite weights', () => {
  const c = microConfig();
  const specials = [NaN, Infinity, -Infinity];

  it('findNonFinite returns the first NaN/±Inf in map then row-major order, with its position; null when all finite (100 cases)', () => {
    const base = randomWeights(c, 'float32', 10);
    const names = [...base.keys()];
    const poke = fc.record({ tensor: fc.nat(names.length - 1), at: fc.nat(), value: fc.constantFrom(...specials) });
    fc.assert(
      fc.property(fc.array(poke, { maxLength: 4 }), fc.constantFrom<DType>('float32', 'float64'), (pokes, dtype) => {
        const w = new Map([...base].map(([n, t]) => [n, Tensor.from(t.shape, t.data, dtype)]));
        // finite extremes are not flagged
        w.get(names[0]!)!.data[0] = dtype === 'float32' ? 3.4028234663852886e38 : Number.MAX_VALUE;
        w.get(names[0]!)!.data[1] = -0;
        let want: { tensor: number; index: number; value: number } | null = null;
        for (const p of pokes) {
          const t = w.get(names[p.tensor]!)!;
          const index = p.at % t.size;
          t.data[index] = p.value;
          if (want === null || p.tensor < want.tensor || (p.tensor === want.tensor && index < want.index)) want = { tensor: p.tensor, index, value: p.value };
        }
        const got = findNonFinite(w);
        if (want === null) {
          expect(got).toBeNull();
          return;
        }
        expect(got).not.toBeNull();
        expect(got!.name).toBe(names[want.tensor]);
        expect(got!.index).toBe(want.index);
        expect(Object.is(got!.value, w.get(got!.name)!.data[got!.index])).toBe(true);
        expect(Number.isFinite(got!.value)).toBe(false);
        const shape = w.get(got!.name)!.shape;
        const flat = got!.position.reduce((acc, p, k) => acc * shape[k]! + p, 0);
        expect(flat).toBe(got!.index);
      }),
      { seed: SEED, numRuns: 100 },
    );
  });

  it('loading scans once: a warning naming tensor and index (default), a WeightsError with nonFinite: error, nothing with ignore', () => {
    const w = randomWeights(c, 'float32', 11);
    w.get('model.layers.1.mlp.experts.3.up_proj.weight')!.data[17] = NaN; // [8, 16]: row 1, column 1
    const files = saveWeights(c, w, { dtype: 'F32' });
    const warned = loadWeights(files, c, { source: 'm.safetensors' });
    expect(warned.warnings).toEqual(["m.safetensors: tensor 'model.layers.1.mlp.experts.3.up_proj.weight' holds NaN at [1, 1] (flat index 17); outputs will not be finite"]);
    expect(() => loadWeights(files, c, { source: 'm.safetensors', nonFinite: 'error' })).toThrow(WeightsError);
    expect(() => loadWeights(files, c, { nonFinite: 'error' })).toThrow(/tensor 'model\.layers\.1\.mlp\.experts\.3\.up_proj\.weight' holds NaN at \[1, 1\]/);
    expect(loadWeights(files, c, { nonFinite: 'ignore' }).warnings).toEqual([]);
    expect(loadWeights(saveWeights(c, randomWeights(c, 'float32', 12), { dtype: 'F32' }), c).warnings).toEqual([]);
  });
});

describe('runtime checks of dtype arguments', () => {
  const c = microConfig();
  const files = saveWeights(c, randomWeights(c, 'float32', 13), { dtype: 'F32' });

  it.each([['f32'], ['bogus'], ['F32'], [null], [32]])('initWeights / loadWeights / loadModelFromBytes reject dtype %s with a TypeError naming the allowed values', (bad) => {
    const dtype = bad as unknown as DType;
    for (const f of [
      () => initWeights(c, { dtype }),
      () => loadWeights(files, c, { dtype }),
      () => loadModelFromBytes(configToHF(c), [{ name: 'm', bytes: serializeSafetensors(files) }], { dtype }),
    ]) {
      expect(f).toThrow(TypeError);
      expect(f).toThrow(/dtype must be 'float32' or 'float64', got /);
    }
  });

  it("'f32' is pointed at the CLI spelling; the defaults are float32", () => {
    expect(() => initWeights(c, { dtype: 'f32' as DType })).toThrow("initWeights: dtype must be 'float32' or 'float64', got 'f32' ('f32' is the CLI's --dtype spelling)");
    expect(initWeights(c).get('lm_head.weight')!.dtype).toBe('float32');
    expect(loadWeights(files, c).weights.get('lm_head.weight')!.dtype).toBe('float32');
  });

  it('saveWeights takes safetensors storage names and says so', () => {
    const w = randomWeights(c, 'float32', 14);
    expect(() => saveWeights(c, w, { dtype: 'float32' as 'F32' })).toThrow(
      new TypeError("saveWeights: dtype is the storage format, one of 'F32', 'F64', 'BF16', 'F16' (safetensors names), got 'float32'"),
    );
    expect(() => saveWeights(c, w, { dtype: 'F32', fp8: 'yes' as unknown as boolean })).toThrow(/fp8 must be a boolean/);
  });
});
