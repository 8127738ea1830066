/**
 * The noise-calibrated comparison on synthetic traces (the definitions, independent of any model): per-row RMS
 * ratios against the profile's noise, the bf16 half-ulp floor, the k threshold, near-tie routing and the rows it
 * leaves out; plus the token-row layout and the hints.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Random } from '../../src/random.js';
import { compareCalibrated, halfUlpBF16, CALIBRATED_K } from '../../src/verify/calibrated.js';
import { compareTraces, type ComparableTensor } from '../../src/verify/compare.js';
import { gradsHint, namingHint, offByOneInT } from '../../src/verify/hints.js';
import { rowLayout } from '../../src/verify/rows.js';

const B = 2;
const S = 6;
const d = 32;
const f64 = (shape: number[], data: ArrayLike<number>): ComparableTensor => ({ dtype: 'F64', shape, data: Float64Array.from(data) });
const i32 = (shape: number[], data: number[]): ComparableTensor => ({ dtype: 'I32', shape, data: Int32Array.from(data) });

function gauss(rng: Random, n: number, sigma: number): Float64Array {
  return Float64Array.from({ length: n }, () => sigma * rng.normal());
}

const add = (a: ArrayLike<number>, b: ArrayLike<number>): Float64Array => Float64Array.from(a, (x, i) => x + b[i]!);

describe('halfUlpBF16', () => {
  it('is 2^(⌊log2|x|⌋ − 8): half the spacing of bf16 (8 significant bits) around x (property)', () => {
    fc.assert(
      fc.property(fc.double({ min: 1e-30, max: 1e30, noNaN: true }), (x) => {
        const h = halfUlpBF16(x);
        // x lies in [2^e, 2^(e+1)) where bf16's spacing is 2^(e−7)
        const e = Math.floor(Math.log2(x));
        expect(h).toBe(2 ** (e - 8));
        expect(halfUlpBF16(-x)).toBe(h);
        expect(h / x).toBeGreaterThan(2 ** -9 * 0.999);
        expect(h / x).toBeLessThanOrEqual(2 ** -8);
      }),
      { seed: 1201, numRuns: 300 },
    );
    expect(halfUlpBF16(0)).toBe(0);
    expect(halfUlpBF16(1)).toBe(2 ** -8);
  });
});

describe('compareCalibrated on synthetic float tensors', () => {
  const rng = new Random(7);
  const truthData = gauss(rng, B * S * d, 1);
  const name = 'model.layers.0.self_attn:out';
  const truth = new Map([['model.embed_tokens:out', f64([B, S, d], truthData)], [name, f64([B, S, d], truthData)]]);
  const sigma = 0.02;
  const noise = new Map([['model.embed_tokens:out', f64([B, S, d], truthData)], [name, f64([B, S, d], add(truthData, gauss(rng, B * S * d, sigma)))]]);
  const run = (backend: Float64Array, embed = truthData) =>
    compareCalibrated(truth, noise, new Map([['model.embed_tokens:out', f64([B, S, d], embed)], [name, f64([B, S, d], backend)]]), { numerics: 'official-bf16' });

  it('a backend with noise of the same size passes with a ratio near 1 (property over seeds)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1e6 }), (seed) => {
        const r = run(add(truthData, gauss(new Random(seed), B * S * d, sigma)));
        const c = r.results.find((x) => x.name === name)!;
        expect(c.status).toBe('pass');
        // 12 rows of 32 elements: per-row RMS of N(0, σ²) varies by ~±25 %, the worst of 12 by less than ×2
        expect(c.calibrated!.ratio).toBeLessThan(2);
        expect(c.calibrated!.ratio).toBeGreaterThan(0.5);
      }),
      { seed: 1202, numRuns: 40 },
    );
  });

  it('a backend (k + 1)× noisier fails on the median row; ratio ≈ k + 1', () => {
    const r = run(add(truthData, gauss(new Random(3), B * S * d, (CALIBRATED_K + 1) * sigma)));
    const c = r.results.find((x) => x.name === name)!;
    expect(r.firstDivergent).toBe(name);
    expect(c.calibrated!.ratioMedian).toBeGreaterThan(CALIBRATED_K);
    expect(c.reasons[0]).toMatch(/median row/);
  });

  it('one bad token row fails on the worst row and names it; the median stays near 1', () => {
    const back = add(truthData, gauss(new Random(4), B * S * d, sigma));
    for (let i = 0; i < d; i++) back[(1 * S + 4) * d + i] = back[(1 * S + 4) * d + i]! + 0.5; // token [1, 4]
    const c = run(back).results.find((x) => x.name === name)!;
    expect(c.status).toBe('fail');
    expect(c.calibrated!.ratioMedian).toBeLessThan(2);
    expect(c.calibrated!.ratioWorst).toBeGreaterThan(CALIBRATED_K);
    expect(c.calibrated!.worstRow).toEqual([1, 4]);
  });

  it('a tensor exact in every precision gets the bf16 half-ulp floor: below k half-ulps passes, above fails', () => {
    // embedding rows: truth = noise exactly; floor = half-ulp of each row's RMS
    const hu = (r: number): number => halfUlpBF16(Math.sqrt(truthData.slice(r * d, (r + 1) * d).reduce((s, x) => s + x * x, 0) / d));
    const small = Float64Array.from(truthData, (x, i) => x + 0.5 * hu(Math.floor(i / d)) * (i % 2 ? 1 : -1));
    const big = Float64Array.from(truthData, (x, i) => x + (CALIBRATED_K + 1) * hu(Math.floor(i / d)) * (i % 2 ? 1 : -1));
    const ok = run(truthData, small).results[0]!;
    expect(ok.status).toBe('pass');
    expect(ok.calibrated!.ratioMedian).toBeCloseTo(0.5, 12);
    const bad = run(truthData, big).results[0]!;
    expect(bad.status).toBe('fail');
    expect(bad.calibrated!.ratioMedian).toBeCloseTo(CALIBRATED_K + 1, 12);
  });

  it('inf positions must match: a −∞ moved fails however small the floor', () => {
    const t = Float64Array.from(truthData);
    t[5] = -Infinity;
    const tr = new Map([['model.embed_tokens:out', f64([B, S, d], truthData)], [name, f64([B, S, d], t)]]);
    const ok = compareCalibrated(tr, tr, tr, { numerics: 'official-bf16' });
    expect(ok.allPassed).toBe(true);
    const moved = Float64Array.from(t);
    moved[5] = 0;
    moved[6] = -Infinity;
    const r = compareCalibrated(tr, tr, new Map([...tr, [name, f64([B, S, d], moved)]]), { numerics: 'official-bf16' });
    expect(r.firstDivergent).toBe(name);
    expect(r.results[1]!.reasons[0]).toMatch(/inf\/nan positions differ at 2/);
  });

  it('a reference with leading dims merged is compared after a reshape, with a note; other shapes fail', () => {
    const r = compareCalibrated(truth, noise, new Map([[name, f64([B * S, d], truthData)]]), { numerics: 'official-bf16' });
    expect(r.allPassed).toBe(true);
    expect(r.results.find((x) => x.name === name)!.notes[0]).toMatch(/reference \[12, 32\] compared as \[2, 6, 32\]/);
    const bad = compareCalibrated(truth, noise, new Map([[name, f64([B * S * 2, d / 2], truthData)]]), { numerics: 'official-bf16' });
    expect(bad.results.find((x) => x.name === name)!.reasons[0]).toMatch(/shape \[2, 6, 32\] vs reference \[24, 16\]/);
  });
});

describe('compareCalibrated routing: near-ties and the rows they leave out', () => {
  // one MoE layer (layer 1 of 2): E = 4 experts, no groups, K = 1; token 3 has a near-tie between experts 0 and 1
  const N = B * S;
  const E = 4;
  const router = { shape: { nRoutedExperts: E, nGroup: 1, topkGroup: 1, numExpertsPerTok: 1 }, bias: () => undefined };
  const scores = Array.from({ length: N }, (_, t) => (t === 3 ? [0.6, 0.5999, 0.1, 0.2] : [0.9, 0.1, 0.2, 0.3]));
  const noisy = scores.map((row) => row.map((v) => v + 0.001)); // profile score error 1e-3, below the bf16 half-ulp of 0.9 (1.95e-3), so σ = 1.95e-3
  const chosen = scores.map((row) => [row.indexOf(Math.max(...row))]);
  const emb = Float64Array.from({ length: N * d }, (_, i) => Math.sin(i));
  const later = Float64Array.from({ length: N * d }, (_, i) => Math.cos(i));
  const mk = (sc: number[][], idx: number[][], out: Float64Array, next = out) =>
    new Map<string, ComparableTensor>([
      ['model.embed_tokens:out', f64([B, S, d], emb)],
      ['model.layers.1.mlp.gate:scores', f64([N, E], sc.flat())],
      ['model.layers.1.mlp.gate:indices', i32([N, 1], idx.flat())],
      ['model.layers.1:out', f64([B, S, d], out)],
      ['model.layers.2.self_attn:out', f64([B, S, d], next)],
    ]);
  const truth = mk(scores, chosen, later);
  const noise = mk(noisy, chosen, later);

  /** The backend chose expert `e` at token `t` (sequence 0): its layer output differs there, the next layer's attention from there on. */
  function flipped(t: number, e: number): Map<string, ComparableTensor> {
    const idx = chosen.map((r, i) => (i === t ? [e] : r));
    const out = Float64Array.from(later, (v, i) => (Math.floor(i / d) === t ? v + 1 : v));
    const next = Float64Array.from(later, (v, i) => (Math.floor(i / d) >= t && Math.floor(i / d) < S ? v + 1 : v));
    return mk(scores, idx, out, next);
  }

  it('a flip within the margin is a near-tie: reported with its margin; its row (and in later layers its later positions) left out', () => {
    const r = compareCalibrated(truth, noise, flipped(3, 1), { numerics: 'official-bf16', router });
    expect(r.failed).toBe(0);
    expect(r.allPassed).toBe(true);
    expect(r.nearTies).toHaveLength(1);
    expect(r.nearTies[0]).toMatchObject({ side: 'reference', row: 3, token: [0, 3], exact: [0], other: [1] });
    expect(r.nearTies[0]!.margins.expert).toBeCloseTo(1e-4, 12);
    const same = r.results.find((x) => x.name === 'model.layers.1:out')!;
    expect(same.calibrated!.rowsExcluded).toBe(1); // the token itself (no attention after its router in this layer)
    const next = r.results.find((x) => x.name === 'model.layers.2.self_attn:out')!;
    expect(next.calibrated!.rowsExcluded).toBe(S - 3); // positions 3..5 of sequence 0
    expect(r.notes.join()).toMatch(/1 routing near-tie/);
  });

  it('a flip with a clear margin fails at gate:indices, naming the token and margins', () => {
    const r = compareCalibrated(truth, noise, flipped(5, 3), { numerics: 'official-bf16', router });
    expect(r.firstDivergent).toBe('model.layers.1.mlp.gate:indices');
    expect(r.results.find((x) => x.name === r.firstDivergent)!.reasons[0]).toMatch(/1 of 12 rows select a different expert set beyond the noise: row 5 \[0, 5\]: experts 0 vs 3 beyond 4× the score noise 1\.95e-3 \(margins expert 6\.00e-1/);
  });

  it('without a router the near-tie cannot be judged: the flip fails', () => {
    const r = compareCalibrated(truth, noise, flipped(3, 1), { numerics: 'official-bf16' });
    expect(r.firstDivergent).toBe('model.layers.1.mlp.gate:indices');
  });

  it('fails when near-ties leave nothing to compare', () => {
    const tiny = (x: Map<string, ComparableTensor>) => new Map([...x].map(([n, t]) => [n, n.endsWith(':out') ? { ...t, shape: [1, 1, d], data: (t.data as Float64Array).slice(0, d) } : n.includes('gate') ? { ...t, shape: [1, t.shape[1]!], data: (t.data as Float64Array | Int32Array).slice(0, t.shape[1]!) } : t]));
    const tie = [[0.6, 0.5999, 0.1, 0.2]];
    const t1 = tiny(mk(tie.concat(scores.slice(1)), [[0]].concat(chosen.slice(1)), later));
    const q1 = tiny(mk(tie.map((r) => r.map((v) => v + 0.001)).concat(noisy.slice(1)), [[0]].concat(chosen.slice(1)), later));
    const b1 = tiny(mk(tie.concat(scores.slice(1)), [[1]].concat(chosen.slice(1)), later));
    const r = compareCalibrated(t1, q1, b1, { numerics: 'official-bf16', router, grid: { B: 1, S: 1, L: 3 } });
    expect(r.allPassed).toBe(false);
    expect(r.results.find((x) => x.name === 'model.layers.2.self_attn:out')!.reasons[0]).toMatch(/nothing left to compare/);
  });
});

describe('rowLayout', () => {
  it('maps every element to its token (b, s) in [B,S,…], [B·S,…] and [B,H,S,T] layouts, MTP depth k on S − k positions (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 2, max: 5 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 4 }), (b0, s0, h, w) => {
        const grid = { B: b0, S: s0, L: 2 };
        const bs = rowLayout('model.layers.0:out', [b0, s0, w], grid);
        const n = rowLayout('model.layers.1.mlp.gate:weights', [b0 * s0, w], grid);
        const att = rowLayout('model.layers.0.self_attn:attn_probs', [b0, h, s0, s0], grid);
        const mtp = rowLayout('model.layers.2.enorm:out', [b0, s0 - 1, w], grid);
        for (let i = 0; i < b0 * s0 * w; i++) {
          const [b, s] = [Math.floor(i / (s0 * w)), Math.floor(i / w) % s0];
          expect([bs.b[bs.rowOf[i]!], bs.s[bs.rowOf[i]!]]).toEqual([b, s]);
          expect([n.b[n.rowOf[i]!], n.s[n.rowOf[i]!]]).toEqual([b, s]);
        }
        for (let i = 0; i < b0 * h * s0 * s0; i++) {
          const r = att.rowOf[i]!;
          expect([att.b[r], att.s[r]]).toEqual([Math.floor(i / (h * s0 * s0)), Math.floor(i / s0) % s0]);
        }
        expect(mtp.positions).toBe(s0 - 1);
        expect(mtp.rows).toBe(b0 * (s0 - 1));
        expect(rowLayout('x', [7], grid).kind).toBe('whole');
      }),
      { seed: 1203, numRuns: 60 },
    );
  });
});

describe('hints', () => {
  it('off by one in T: S → S − 1 and B·S → B·(S − 1), nothing else', () => {
    const g = { B: 2, S: 5, L: 4 };
    expect(offByOneInT([2, 5, 8], [2, 4, 8], g)).toBe(true);
    expect(offByOneInT([2, 3, 5, 5], [2, 3, 4, 4], g)).toBe(true);
    expect(offByOneInT([10, 3], [8, 3], g)).toBe(true);
    expect(offByOneInT([2, 5, 8], [2, 5, 8], g)).toBe(false);
    expect(offByOneInT([2, 5, 8], [2, 3, 8], g)).toBe(false);
  });

  it('a --grads dump verified without --grads: every shape one short in T → "add --grads"', () => {
    const lib = new Map([
      ['model.embed_tokens:out', f64([1, 3, 2], [1, 2, 3, 4, 5, 6])],
      ['lm_head:out', f64([1, 3, 1], [1, 2, 3])],
    ]);
    const ref = new Map([
      ['model.embed_tokens:out', f64([1, 2, 2], [1, 2, 3, 4])],
      ['lm_head:out', f64([1, 2, 1], [1, 2])],
      ['grad.lm_head.weight', f64([1], [0])],
    ]);
    const r = compareTraces(lib, ref);
    expect(r.hints).toHaveLength(1);
    expect(r.hints[0]).toMatch(/the reference has gradients .* add --grads\.$/);
    expect(gradsHint(r.results, [...ref.keys()], true, null)).toBeNull();
  });

  it('most names unmatched: names the naming the reference uses', () => {
    const official = ['embed:out', 'layers.0.attn:q', 'layers.0.ffn:out', 'norm:out', 'head:out'];
    expect(namingHint(official, 5, false)).toMatch(/official-code names .*add --official-names/);
    expect(namingHint(['model.embed_tokens:out', 'lm_head:out'], 2, true)).toMatch(/Hugging Face names .*drop --official-names/);
    expect(namingHint(['foo', 'bar'], 2, false)).toMatch(/match neither naming/);
    expect(namingHint(official, 2, false)).toBeNull();
    const r = compareTraces(new Map([['model.embed_tokens:out', f64([1], [1])]]), new Map(official.map((n) => [n, f64([1], [1])])));
    expect(r.hints[0]).toMatch(/add --official-names/);
  });
});
