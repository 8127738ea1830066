/** TrainingHistory, windowMeans and layer labels. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { moeLayerLabel, TrainingHistory, windowMeans } from '../../src/demo/history.js';
import { InputError } from '../../src/errors.js';
import { loadStats } from '../../src/train/bias_update.js';
import type { TrainStepReport } from '../../src/train/trainer.js';

function report(step: number, loads: Record<string, number[]>): TrainStepReport {
  return {
    step,
    loss: { main: step, mtp: 0.3 * step, balance: 1e-4, total: 1.3 * step + 1e-4 },
    gradNorm: 1,
    lr: 1e-3,
    biasGamma: 0.001,
    tokens: 10,
    tokensTotal: 10 * step,
    tokensPerSec: 100,
    loads: Object.entries(loads).map(([biasName, l]) => ({ biasName, stats: loadStats(l) })),
  };
}

describe('windowMeans', () => {
  it('is the mean of each consecutive window (the last may be shorter)', () => {
    expect(windowMeans([1, 2, 3, 4, 5], 2)).toEqual([1.5, 3.5, 5]);
    expect(() => windowMeans([1], 0)).toThrow(InputError);
    fc.assert(
      fc.property(fc.array(fc.integer({ min: -1000, max: 1000 }), { minLength: 1, maxLength: 60 }), fc.integer({ min: 1, max: 9 }), (xs, w) => {
        const m = windowMeans(xs, w);
        expect(m.length).toBe(Math.ceil(xs.length / w));
        // integers: window sums are exact, one division rounds
        m.forEach((v, i) => {
          const part = xs.slice(i * w, i * w + w);
          expect(v).toBe(part.reduce((a, b) => a + b, 0) / part.length);
        });
      }),
      { seed: 5, numRuns: 100 },
    );
  });
});

describe('TrainingHistory', () => {
  it('keeps loss parts and per-layer loads in the first step’s layer order', () => {
    const h = new TrainingHistory();
    const a = 'model.layers.1.mlp.gate.e_score_correction_bias';
    const b = 'model.layers.3.mlp.gate.e_score_correction_bias';
    h.add(report(1, { [a]: [4, 0, 0, 0], [b]: [1, 1, 1, 1] }));
    h.add(report(2, { [b]: [2, 2, 0, 0], [a]: [1, 1, 1, 1] }));
    expect(h.layers).toEqual([a, b]);
    expect(h.steps[1]!.loads).toEqual([
      [1, 1, 1, 1],
      [2, 2, 0, 0],
    ]);
    expect(h.steps[0]!.maxOverMean).toEqual([4, 1]);
    expect(h.steps[1]!.main).toBe(2);
    expect(() => h.add(report(3, { [a]: [1, 1, 1, 1] }))).toThrow(InputError);
  });

  it('labels MoE layers, MTP layers counted after the main ones', () => {
    expect(moeLayerLabel('model.layers.2.mlp.gate.e_score_correction_bias', 3)).toBe('layer 2');
    expect(moeLayerLabel('model.layers.3.mlp.gate.e_score_correction_bias', 3)).toBe('layer 3 (MTP 1)');
    expect(moeLayerLabel('something.else', 3)).toBe('something.else');
  });
});
