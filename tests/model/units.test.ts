/**
 * Unit and property tests of the model's own small pieces: token-batch validation, embedding, the
 * cross-entropy wiring, greedy choice and temperature/top-p sampling.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import { embeddingBackward, embeddingForward, flattenTokenBatch, validateTokenIds } from '../../src/model/embedding.js';
import { greedyToken, sampleToken } from '../../src/model/generate.js';
import { crossEntropyLoss, crossEntropyLossBackward, IGNORE_INDEX } from '../../src/model/loss.js';
import { Random } from '../../src/random.js';

describe('token batches', () => {
  it('names the batch row and position of an out-of-range id', () => {
    expect(() => validateTokenIds(Int32Array.from([1, 2, 3, 9]), 2, 2, 9)).toThrow(/batch row 1, position 1/);
    expect(() => validateTokenIds(Int32Array.from([1, -1, 3, 4]), 2, 2, 9)).toThrow(InputError);
    expect(() => validateTokenIds(Int32Array.from([0, 8, 3, 4]), 2, 2, 9)).not.toThrow();
  });
  it('rejects ragged, empty and non-integer batches with an InputError naming the row', () => {
    expect(() => flattenTokenBatch([[1, 2], [3]])).toThrow(/row 1 has 1 ids but row 0 has 2/);
    expect(() => flattenTokenBatch([])).toThrow(InputError);
    expect(() => flattenTokenBatch([[1, 2.5]])).toThrow(/batch row 0, position 1/);
    expect(flattenTokenBatch([[1, 2], [3, 4]])).toEqual({ ids: Int32Array.from([1, 2, 3, 4]), B: 2, T: 2 });
  });
});

describe('embedding', () => {
  it('is a row lookup and its backward scatters (repeated ids add up)', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 1, maxLength: 8 }), (idList) => {
        const d = 3;
        const table = Float64Array.from({ length: 5 * d }, (_, i) => i * 0.5 - 2);
        const ids = Int32Array.from(idList);
        const out = embeddingForward(table, ids, ids.length, d);
        for (let n = 0; n < ids.length; n++) for (let j = 0; j < d; j++) expect(out[n * d + j]).toBe(table[ids[n]! * d + j]);
        const dout = Float64Array.from({ length: ids.length * d }, (_, i) => i + 1);
        const dtable = new Float64Array(5 * d);
        embeddingBackward(dtable, ids, dout, ids.length, d);
        for (let v = 0; v < 5; v++) {
          for (let j = 0; j < d; j++) {
            let want = 0;
            for (let n = 0; n < ids.length; n++) if (ids[n] === v) want += dout[n * d + j]!;
            expect(dtable[v * d + j]).toBe(want);
          }
        }
      }),
      { seed: 7, numRuns: 50 },
    );
  });
});

describe('cross-entropy', () => {
  it('equals the mean of −log softmax over non-ignored rows, and its gradient is (softmax − onehot)/N', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 2, max: 6 }),
        fc.integer({ min: 0, max: 1000 }),
        (rows, V, seed) => {
          const rng = new Random(seed);
          const logits = Float64Array.from({ length: rows * V }, () => 3 * rng.normal());
          const targets = Int32Array.from({ length: rows }, (_, r) => (r % 3 === 2 ? IGNORE_INDEX : rng.int(V)));
          let sum = 0;
          let count = 0;
          for (let r = 0; r < rows; r++) {
            if (targets[r] === IGNORE_INDEX) continue;
            let z = 0;
            for (let v = 0; v < V; v++) z += Math.exp(logits[r * V + v]!);
            sum += Math.log(z) - logits[r * V + targets[r]!]!;
            count++;
          }
          const res = crossEntropyLoss(logits, targets, rows, V);
          expect(res.count).toBe(count);
          expect(Math.abs(res.loss - (count > 0 ? sum / count : 0))).toBeLessThan(1e-12);
          // central differences of the mean loss (f64; h = 1e-6, error O(h²))
          const dl = new Float64Array(rows * V);
          crossEntropyLossBackward(logits, targets, dl, rows, V, res.denominator);
          for (let i = 0; i < rows * V; i++) {
            const x = logits[i]!;
            logits[i] = x + 1e-6;
            const up = crossEntropyLoss(logits, targets, rows, V).loss;
            logits[i] = x - 1e-6;
            const dn = crossEntropyLoss(logits, targets, rows, V).loss;
            logits[i] = x;
            expect(Math.abs(dl[i]! - (up - dn) / 2e-6)).toBeLessThan(1e-8);
          }
        },
      ),
      { seed: 11, numRuns: 30 },
    );
  });
  it('rejects a target outside the vocabulary, naming the row', () => {
    expect(() => crossEntropyLoss(new Float64Array(6), Int32Array.from([1, 3]), 2, 3)).toThrow(/target 3 at row 1/);
  });
});

describe('sampling', () => {
  it('greedy picks the first maximum', () => {
    expect(greedyToken([1, 3, 3, 2])).toBe(1);
    expect(greedyToken([0, 5, 1, 7, 7], 2, 3)).toBe(1);
  });
  it('temperature 0 is greedy; a tiny top-p keeps only the most likely token', () => {
    fc.assert(
      fc.property(fc.array(fc.double({ min: -5, max: 5, noNaN: true }), { minLength: 1, maxLength: 20 }), fc.integer(), (logits, seed) => {
        const rng = new Random(seed);
        expect(sampleToken(logits, 0, 1, rng)).toBe(greedyToken(logits));
        expect(sampleToken(logits, 1, 1e-12, rng)).toBe(greedyToken(logits));
      }),
      { seed: 3, numRuns: 100 },
    );
  });
  it('samples from softmax(logits/T) restricted to the nucleus (frequencies, seeded)', () => {
    const logits = [Math.log(0.5), Math.log(0.3), Math.log(0.15), Math.log(0.05)];
    const rng = new Random(42);
    const counts = [0, 0, 0, 0];
    const n = 20000;
    for (let i = 0; i < n; i++) counts[sampleToken(logits, 1, 1, rng)]!++;
    // binomial std ≤ sqrt(0.25/n) = 0.0035: 5 sigma
    [0.5, 0.3, 0.15, 0.05].forEach((p, i) => expect(Math.abs(counts[i]! / n - p)).toBeLessThan(0.018));
    // top-p 0.7: nucleus {0, 1} (0.5 < 0.7 ≤ 0.8), renormalised to 5/8, 3/8
    const c2 = [0, 0, 0, 0];
    for (let i = 0; i < n; i++) c2[sampleToken(logits, 1, 0.7, rng)]!++;
    expect(c2[2]! + c2[3]!).toBe(0);
    expect(Math.abs(c2[0]! / n - 0.625)).toBeLessThan(0.018);
    // the same seed gives the same draws
    const a = new Random(5);
    const b = new Random(5);
    for (let i = 0; i < 50; i++) expect(sampleToken(logits, 0.8, 0.9, a)).toBe(sampleToken(logits, 0.8, 0.9, b));
  });
});
