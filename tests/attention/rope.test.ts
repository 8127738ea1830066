import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { deepseekV3 } from '../../src/model/presets.js';
import { buildRopeTables, ropeBackward, ropeForward, ropeInvFrequencies, softmaxScale, yarnCorrectionRange, yarnMscale, yarnRamp } from '../../src/model/rope.js';
import type { ModelConfig, YarnConfig } from '../../src/model/config.js';
import { InputError } from '../../src/errors.js';
import { randomArray } from '../helpers/random.js';
import { mlaConfig } from './helpers.js';

/** SPEC §3.5: ω' of the full V3 config (f32 values, 8 significant digits), j = 0..23. */
const V3_OMEGA = [
  1.0, 0.7498942, 0.56234133, 0.42169651, 0.31622776, 0.23713739, 0.17782794, 0.13335215, 0.1, 0.074989416, 0.056234129, 0.039006926,
  0.026879361, 0.018378144, 0.012447956, 0.0083345091, 0.0055000004, 0.0035619973, 0.0022493652, 0.0013705135, 7.9056941e-4, 4.1499041e-4,
  1.7782794e-4, 3.3338038e-5,
];

const yarnArb: fc.Arbitrary<YarnConfig> = fc.record({
  factor: fc.double({ min: 1.01, max: 64, noNaN: true }),
  originalMaxPositionEmbeddings: fc.integer({ min: 4, max: 1 << 16 }),
  betaFast: fc.integer({ min: 2, max: 64 }),
  betaSlow: fc.constant(1),
  mscale: fc.constant(1),
  mscaleAllDim: fc.double({ min: 0, max: 2, noNaN: true }),
});

const ropeCfg = (R: number, base: number, yarn: YarnConfig | null): ModelConfig =>
  mlaConfig({ hidden: 4, heads: 1, qLoraRank: 0, kvLoraRank: 2, nope: 1, rope: R, v: 1, ropeTheta: base, yarn });

describe('RoPE frequencies and YaRN', () => {
  it('full V3: ω′ matches the table of SPEC §3.5 (f32, 8 digits), j ≥ 23 is ω/40', () => {
    const w = ropeInvFrequencies(deepseekV3);
    expect(w.length).toBe(32);
    // the table is the official f32 computation (ω, ramp and blend each rounded to f32), printed to
    // 8 digits; ours is f64 rounded once: they may differ by ~1 f32 ulp, so allow 2 ulps (2⁻²² relative)
    for (let j = 0; j < V3_OMEGA.length; j++) expect(Math.abs(Math.fround(w[j]!) - V3_OMEGA[j]!)).toBeLessThanOrEqual(2 ** -22 * V3_OMEGA[j]!);
    for (let j = 23; j < 32; j++) expect(w[j]).toBeCloseTo(Math.pow(10000, -(2 * j) / 64) / 40, 18);
    expect(yarnCorrectionRange(64, 10000, deepseekV3.ropeScaling!)).toEqual({ low: 10, high: 23 });
  });

  it('yarn golden config: low 0, high 3 (README)', () => {
    expect(yarnCorrectionRange(16, 50000, { factor: 8, originalMaxPositionEmbeddings: 128, betaFast: 32, betaSlow: 1, mscale: 1, mscaleAllDim: 1 })).toEqual({ low: 0, high: 3 });
  });

  it('softmax scale: V3 value of SPEC §1.3, no correction without YaRN or for s ≤ 1', () => {
    expect(Math.abs(softmaxScale(deepseekV3) - 0.1352337788608801)).toBeLessThan(1e-16);
    expect(yarnMscale(40, 1)).toBeCloseTo(1.3688879454, 10);
    expect(softmaxScale(ropeCfg(8, 10000, null))).toBe(1 / Math.sqrt(9));
    expect(yarnMscale(1, 1)).toBe(1);
    expect(yarnMscale(0.5, 1)).toBe(1);
  });

  it('ramp edge cases: low == high uses high + 0.001; clamps to [0, 1]; low > high and negative high', () => {
    // low == high == 2: (j − 2)/0.001 clamped → 0 for j ≤ 2, 1 above
    expect(Array.from(yarnRamp(2, 2, 5))).toEqual([0, 0, 0, 1, 1]);
    // (j − 1)/4 → 0, 0, 0.25, 0.5, 0.75, 1, 1
    expect(Array.from(yarnRamp(1, 5, 7))).toEqual([0, 0, 0.25, 0.5, 0.75, 1, 1]);
    // high < low (both beyond the last pair): (j − 6)/(−2) ≥ 1 for j ≤ 4 → all interpolated
    expect(Array.from(yarnRamp(6, 4, 4))).toEqual([1, 1, 1, 1]);
    // high < low = 0 (both correction dims negative): (j − 0)/(−2) ≤ 0 → all extrapolated
    expect(Array.from(yarnRamp(0, -2, 3)).map((v) => v + 0)).toEqual([0, 0, 0]);
  });

  it('blend: pairs j ≤ low keep ω, pairs j ≥ high get ω/s, the rest lie in between', () => {
    fc.assert(
      fc.property(yarnArb, fc.integer({ min: 1, max: 32 }).map((h) => 2 * h), fc.constantFrom(10000, 50000, 1e6), (yarn, R, base) => {
        const plain = ropeInvFrequencies(ropeCfg(R, base, null));
        const w = ropeInvFrequencies(ropeCfg(R, base, yarn));
        const { low, high } = yarnCorrectionRange(R, base, yarn);
        for (let j = 0; j < R / 2; j++) {
          expect(plain[j]).toBe(Math.pow(base, -(2 * j) / R));
          if (j <= low && low < high) expect(w[j]).toBe(plain[j]);
          else if (j >= high && low < high) expect(Math.abs(w[j]! - plain[j]! / yarn.factor)).toBeLessThanOrEqual(1e-16 * plain[j]!);
          else {
            expect(w[j]!).toBeLessThanOrEqual(plain[j]! * (1 + 1e-15));
            expect(w[j]!).toBeGreaterThanOrEqual((plain[j]! / yarn.factor) * (1 - 1e-15));
          }
        }
      }),
      { seed: 301, numRuns: 200 },
    );
  });
});

describe('RoPE rotation (interleaved pairs)', () => {
  const config = ropeCfg(8, 10000, { factor: 4, originalMaxPositionEmbeddings: 32, betaFast: 32, betaSlow: 1, mscale: 1, mscaleAllDim: 1 });
  const tables = buildRopeTables(config, 64, 'float64');
  const omega = ropeInvFrequencies(config);

  it('rotates the adjacent pair (x₂ᵢ, x₂ᵢ₊₁) by p·ωᵢ', () => {
    const x = new Float64Array([1, 0, 0, 1, 2, 3, 0, 0]);
    const y = ropeForward(tables, x, Int32Array.of(5), 1, 8);
    const c = (i: number) => Math.cos(5 * omega[i]!);
    const s = (i: number) => Math.sin(5 * omega[i]!);
    const want = [c(0), s(0), -s(1), c(1), 2 * c(2) - 3 * s(2), 2 * s(2) + 3 * c(2), 0, 0];
    for (let j = 0; j < 8; j++) expect(y[j]).toBeCloseTo(want[j]!, 14);
  });

  it('preserves each pair norm, is relative, and the inverse undoes it (f64)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 40 }), fc.integer({ min: 0, max: 40 }), fc.integer({ min: 0, max: 20 }), fc.nat(1000), (p, q, delta, seed) => {
        const a = randomArray(8, seed, 'float64');
        const b = randomArray(8, seed + 1, 'float64');
        const ra = ropeForward(tables, a, Int32Array.of(p), 1, 8);
        for (let i = 0; i < 4; i++) {
          expect(Math.hypot(ra[2 * i]!, ra[2 * i + 1]!)).toBeCloseTo(Math.hypot(a[2 * i]!, a[2 * i + 1]!), 12);
        }
        // ⟨R(p)a, R(q)b⟩ depends on p − q only
        const dotAt = (pa: number, pb: number) => {
          const x = ropeForward(tables, a, Int32Array.of(pa), 1, 8);
          const y = ropeForward(tables, b, Int32Array.of(pb), 1, 8);
          let s = 0;
          for (let j = 0; j < 8; j++) s += x[j]! * y[j]!;
          return s;
        };
        expect(dotAt(p + delta, q + delta)).toBeCloseTo(dotAt(p, q), 12);
        // inverse (the kernel's inverse = rotation by −θ) restores the input
        const back = new Float64Array(8);
        // ropeBackward accumulates R(−θ)·dy into a zero dx: the inverse rotation
        ropeBackward(tables, ra, Int32Array.of(p), 1, 8, back);
        for (let j = 0; j < 8; j++) expect(back[j]).toBeCloseTo(a[j]!, 13);
      }),
      { seed: 302, numRuns: 100 },
    );
  });

  it('f32 tables are the f64 tables rounded; positions outside the tables are an error', () => {
    const t32 = buildRopeTables(config, 64, 'float32');
    for (let i = 0; i < t32.cos.length; i++) {
      expect(t32.cos[i]).toBe(Math.fround(tables.cos[i]!));
      expect(t32.sin[i]).toBe(Math.fround(tables.sin[i]!));
    }
    expect(() => ropeForward(tables, new Float64Array(8), Int32Array.of(64), 1, 8)).toThrow(InputError);
  });
});
