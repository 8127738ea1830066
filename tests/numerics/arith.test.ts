/**
 * The profiles' bf16 arithmetic (src/model/profile/arith.ts) against definitions written here: bf16 rounding by
 * bit manipulation (SPEC §6.2: (u + 0x7FFF + lsb) >> 16), including ties, subnormals, overflow and NaN; RMSNorm
 * as f32 (x·r)·w with one rounding; the f32 softmax. fast-check with fixed seeds.
 */
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { bf16, rmsnormBF16, softmaxF32 } from '../../src/model/profile/arith.js';

const SEED = 20261204;
const buf = new Float32Array(1);
const bits = new Uint32Array(buf.buffer);
const fromBits = (u: number): number => ((bits[0] = u >>> 0), buf[0]!);
/** The definition: RNE on the upper 16 bits of the binary32 pattern; NaN stays NaN. */
function bf16Def(x: number): number {
  buf[0] = x;
  const u = bits[0]!;
  if (Number.isNaN(buf[0]!)) return NaN;
  return fromBits(Math.floor((u + 0x7fff + ((u >>> 16) & 1)) / 65536) * 65536);
}

describe('bf16 rounding', () => {
  test('equals the bit definition on every kind of f32 bit pattern (fast-check, 20,000 runs)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), (u) => {
        const x = fromBits(u);
        expect(Object.is(bf16(x), bf16Def(x)) || (Number.isNaN(bf16(x)) && Number.isNaN(bf16Def(x)))).toBe(true);
      }),
      { seed: SEED, numRuns: 20_000 },
    );
  });

  test('ties go to even, subnormals stay, overflow goes to infinity', () => {
    expect(bf16(1 + 2 ** -8)).toBe(1); // tie, kept even
    expect(bf16(1 + 3 * 2 ** -8)).toBe(1 + 2 ** -6); // tie, rounded up to even
    expect(bf16(-2.5)).toBe(-2.5);
    expect(bf16(2 ** -133)).toBe(2 ** -133); // the smallest bf16 subnormal
    expect(bf16(3 * 2 ** -135)).toBe(2 ** -133); // 0.75 of the smallest subnormal rounds up to it
    expect(bf16(2 ** -134)).toBe(0); // exactly half of it: a tie, kept even (0)
    expect(bf16(2 ** -135)).toBe(0); // below half the smallest subnormal
    expect(bf16(3.4e38)).toBe(Infinity);
    expect(Number.isNaN(bf16(NaN))).toBe(true);
  });
});

test('RMSNorm in bf16: f32 r, f32 (x·r)·w, one rounding (fast-check, 200 runs)', () => {
  fc.assert(
    fc.property(fc.array(fc.float({ min: -8, max: 8, noNaN: true }), { minLength: 1, maxLength: 40 }), fc.float({ min: Math.fround(0.25), max: 4, noNaN: true }), (xs, wv) => {
      const x = Float32Array.from(xs, bf16);
      const w = new Float32Array(x.length).fill(bf16(wv));
      const y = rmsnormBF16(x, w, 1, x.length, 1e-6);
      let ss = 0;
      for (const v of x) ss += v * v;
      const r = Math.fround(1 / Math.sqrt(Math.fround(Math.fround(ss / x.length) + Math.fround(1e-6))));
      for (let j = 0; j < x.length; j++) expect(y[j]).toBe(bf16Def(Math.fround(Math.fround(x[j]! * r) * w[j]!)));
    }),
    { seed: SEED, numRuns: 200 },
  );
});

test('softmax in f32: rows sum to 1 within f32 rounding, −∞ gets 0 (fast-check, 200 runs)', () => {
  fc.assert(
    fc.property(fc.array(fc.float({ min: -30, max: 30, noNaN: true }), { minLength: 2, maxLength: 50 }), (xs) => {
      const x = Float32Array.from([...xs, -Infinity], Math.fround);
      const p = softmaxF32(x, 1, x.length);
      expect(p[x.length - 1]).toBe(0);
      const sum = p.reduce((a, b) => a + b, 0);
      expect(Math.abs(sum - 1)).toBeLessThanOrEqual(x.length * 2 ** -23);
    }),
    { seed: SEED, numRuns: 200 },
  );
});
