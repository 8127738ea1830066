/**
 * Router-bias update arithmetic (issue 13 item 5): float32 by default, even for a bias held in a Float64Array
 * (a float64 model), as checkpoints (F32) and torch (float32 γ, float32 add) have it; `biasDtype: 'model'` keeps
 * the array's own precision. Checked against a float32 replay written here with Math.fround.
 */
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import { DeepSeekV3 } from '../../src/model/model.js';
import { tiny } from '../../src/model/presets.js';
import { initWeights } from '../../src/model/weights.js';
import { updateRouterBias, type RouterBiasDType } from '../../src/train/bias_update.js';
import { bytesToTokens, TokenStream } from '../../src/train/data.js';
import { Trainer, type TrainStepReport } from '../../src/train/trainer.js';

/** The float32 rule, by definition: b ← f32(b + f32(γ)·sign(mean − load)); centred: minus f32((#up − #down)·f32(γ)/E). */
function replayF32(b: Float32Array, load: readonly number[], gamma: number, centred = false): void {
  const E = b.length;
  const total = load.reduce((a, v) => a + v, 0);
  const g = Math.fround(gamma);
  const s = load.map((l) => Math.sign(total - E * l));
  const mean = centred ? Math.fround((s.reduce((a, v) => a + v, 0) * g) / E) : 0;
  for (let e = 0; e < E; e++) {
    const step = centred ? Math.fround(s[e]! * g - mean) : s[e]! * g;
    b[e] = Math.fround(b[e]! + step);
  }
}

const loadsArb = (E: number) => fc.array(fc.array(fc.nat({ max: 30 }), { minLength: E, maxLength: E }), { minLength: 1, maxLength: 40 });

describe('updateRouterBias arithmetic', () => {
  for (const centred of [false, true]) {
    it(`float32 (default) on a Float64Array equals the float32 replay bit for bit${centred ? ' (centred)' : ''}`, () => {
      fc.assert(
        fc.property(loadsArb(8), fc.constantFrom(0.001, 0.01, 1e-4, 0.3), fc.integer({ min: 0, max: 1000 }), (loads, gamma, seed) => {
          // a float32-valued start (as loaded from an F32 checkpoint)
          const start = Float32Array.from({ length: 8 }, (_, e) => ((seed * 7 + e * 13) % 17) * 0.0173 - 0.1);
          const b64 = Float64Array.from(start);
          const b32 = start.slice();
          for (const load of loads) {
            updateRouterBias(b64, load, gamma, { centred });
            replayF32(b32, load, gamma, centred);
          }
          expect(Array.from(b64)).toEqual(Array.from(b32));
        }),
        { seed: 1301, numRuns: 150 },
      );
    });
  }

  it("a Float32Array bias gets float32 γ (f32(b + f32(γ)), not f32(b + γ)): the two differ on some values", () => {
    // γ = 0.001 is not a float32; b + 0.001 rounds differently from b + f32(0.001) for some b
    let differ = 0;
    for (let i = 0; i < 2000; i++) {
      const b0 = Math.fround((i - 1000) * 3.7e-6); // |b| ≤ 3.7e-3: ulp(b) ≈ 2e-10, comparable to γ − f32(γ) ≈ 4.7e-11
      const b = new Float32Array([b0, b0]);
      updateRouterBias(b, [0, 2], 0.001); // expert 0 underloaded: +γ; expert 1 overloaded: −γ
      expect(b[0]).toBe(Math.fround(b0 + Math.fround(0.001)));
      expect(b[1]).toBe(Math.fround(b0 - Math.fround(0.001)));
      if (b[0] !== Math.fround(b0 + 0.001)) differ++;
    }
    expect(differ).toBeGreaterThan(0);
  });

  it("'model' keeps f64 arithmetic: b + γ·sign exactly as doubles", () => {
    const b = new Float64Array([0.1, 0.2, 0.3]);
    updateRouterBias(b, [5, 0, 1], 0.001, { biasDtype: 'model' });
    expect(Array.from(b)).toEqual([0.1 - 0.001, 0.2 + 0.001, 0.3 + 0.001]);
  });

  it('a bad biasDtype is an InputError naming the option', () => {
    expect(() => updateRouterBias(new Float64Array(2), [1, 1], 0.001, { biasDtype: 'f16' as RouterBiasDType })).toThrow(InputError);
    expect(() => updateRouterBias(new Float64Array(2), [1, 1], 0.001, { biasDtype: 'f16' as RouterBiasDType })).toThrow(/biasDtype/);
  });
});

describe('Trainer on a float64 tiny model: the bias follows the float32 replay of the same loads', () => {
  const corpus = bytesToTokens(readFileSync(new URL('../../data/tiny-corpus.txt', import.meta.url)));
  const run = (biasDtype: RouterBiasDType | undefined): { model: DeepSeekV3; reports: TrainStepReport[] } => {
    const model = new DeepSeekV3(tiny, initWeights(tiny, { seed: 3, dtype: 'float64' }));
    const trainer = new Trainer(model, {
      data: new TokenStream(corpus, { batchSize: 1, seqLen: 8, order: 'random', seed: 5 }),
      lr: { kind: 'cosine', peak: 1e-3, warmupSteps: 1, holdSteps: 0, decaySteps: 10, min: 1e-4 },
      biasGamma: 0.001,
      ...(biasDtype !== undefined ? { biasDtype } : {}),
    });
    return { model, reports: trainer.train(10) };
  };
  /** Replays the reported loads from the zero init in float32; returns the max |diff| and the number of differing values. */
  const compare = (model: DeepSeekV3, reports: TrainStepReport[]): { maxDiff: number; differing: number; values: number } => {
    const replay = new Map<string, Float32Array>();
    for (const r of reports) {
      for (const { biasName, stats } of r.loads) {
        const b = replay.get(biasName) ?? new Float32Array(stats.counts.length);
        replayF32(b, stats.counts, r.biasGamma);
        replay.set(biasName, b);
      }
    }
    let maxDiff = 0;
    let differing = 0;
    let values = 0;
    for (const [name, b32] of replay) {
      const got = model.weights.get(name)!.data;
      for (let e = 0; e < b32.length; e++) {
        values++;
        if (got[e] !== b32[e]) differing++;
        maxDiff = Math.max(maxDiff, Math.abs(got[e]! - b32[e]!));
      }
    }
    return { maxDiff, differing, values };
  };

  it('default (float32): bit-identical to the replay; biasDtype model: off by float32 rounding steps', () => {
    const f32 = run(undefined);
    const c32 = compare(f32.model, f32.reports);
    expect(c32.values).toBe(3 * tiny.nRoutedExperts); // 2 main MoE layers + 1 MTP layer
    expect(c32.differing).toBe(0);
    const f64 = run('model');
    const c64 = compare(f64.model, f64.reports);
    // 10 updates of ±0.001 from 0 (|b| ≤ 0.01 < 2^-6): each f32 add is off by ≤ half an ulp, 2^-31, and f32(γ) from γ
    // by ≤ 2^-34, so ≤ 10·(2^-31 + 2^-34) ≈ 5.2e-9
    expect(c64.differing).toBeGreaterThan(0);
    expect(c64.maxDiff).toBeLessThanOrEqual(10 * (2 ** -31 + 2 ** -34));
  }, 120_000);
});
