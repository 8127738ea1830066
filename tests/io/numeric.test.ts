import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  bf16FromNumber, bf16ToNumber, dequantizeBlockFp8, E4M3_TABLE, e4m3FromNumber, e4m3ToNumber, encodeE4M3,
  f16FromNumber, f16ToNumber, fp8ScaleShape, quantizeBlockFp8,
} from '../../src/io/numeric.js';

/** SPEC §6.3, written out independently of the library. */
function e4m3Spec(c: number): number {
  const s = c & 0x80 ? -1 : 1;
  const e = (c >> 3) & 15;
  const m = c & 7;
  if (e === 15 && m === 7) return NaN;
  return e === 0 ? s * 2 ** -6 * (m / 8) : s * 2 ** (e - 7) * (1 + m / 8);
}

/**
 * Definition of RNE in f64: `grid` holds the non-negative representable values in code order
 * (code = index); `beyond` is the value one step past the largest (where overflow rounds to).
 * Returns the code of the nearest grid value (index grid.length = "beyond"), ties to the even code.
 */
function nearestCode(grid: number[], beyond: number, a: number): number {
  let lo = 0;
  let hi = grid.length - 1;
  if (a >= grid[hi]!) {
    const dl = a - grid[hi]!;
    const dh = beyond - a;
    return dl < dh || (dl === dh && hi % 2 === 0) ? hi : hi + 1;
  }
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (grid[mid]! <= a) lo = mid;
    else hi = mid;
  }
  const dl = a - grid[lo]!;
  const dh = grid[hi]! - a;
  return dl < dh || (dl === dh && lo % 2 === 0) ? lo : hi;
}

const f32 = fc.float({ noNaN: true }).map(Math.fround);

/** Exact ties (midpoints of adjacent grid values, exact in f32) and their neighbours ±1 f32 ulp, either sign. */
function ties(grid: number[]): fc.Arbitrary<number> {
  return fc.tuple(fc.integer({ min: 0, max: grid.length - 2 }), fc.constantFrom(-1, 0, 1), fc.boolean()).map(([i, nudge, neg]) => {
    const mid = Math.fround((grid[i]! + grid[i + 1]!) / 2);
    const b = new Float32Array([mid]);
    const u = new Uint32Array(b.buffer);
    if (mid !== 0) u[0]! += nudge;
    return neg ? -b[0]! : b[0]!;
  });
}

describe('FP8 E4M3FN (SPEC §6.3)', () => {
  it('all 256 codes decode by the SPEC formulas', () => {
    for (let c = 0; c < 256; c++) {
      const want = e4m3Spec(c);
      if (Number.isNaN(want)) expect(Number.isNaN(e4m3ToNumber(c)), `code ${c}`).toBe(true);
      else expect(Object.is(e4m3ToNumber(c), want), `code ${c}: ${e4m3ToNumber(c)} vs ${want}`).toBe(true);
    }
    expect(E4M3_TABLE.filter(Number.isNaN).length).toBe(2); // only 0x7F and 0xFF
  });

  it('the SPEC examples', () => {
    expect([E4M3_TABLE[0x7e], E4M3_TABLE[0x08], E4M3_TABLE[0x01], E4M3_TABLE[0x07], E4M3_TABLE[0x38]]).toEqual([448, 2 ** -6, 2 ** -9, 0.013671875, 1]);
    expect(Object.is(E4M3_TABLE[0x80], -0)).toBe(true);
    const enc = (x: number, saturate = false): number => e4m3FromNumber(x, { saturate });
    expect(enc(0.1)).toBe(0x1d);
    expect(E4M3_TABLE[0x1d]).toBe(0.1015625);
    expect(enc(-3.3)).toBe(0xc5);
    expect(E4M3_TABLE[0xc5]).toBe(-3.25);
    expect(E4M3_TABLE[enc(1.0625)]).toBe(1);
    expect(E4M3_TABLE[enc(1.1875)]).toBe(1.25);
    expect(E4M3_TABLE[enc(17)]).toBe(16);
    expect(enc(464)).toBe(0x7e);
    expect(enc(465)).toBe(0x7f);
    expect(enc(479.99)).toBe(0x7f);
    expect(enc(480)).toBe(0x7f);
    expect(enc(-1e6)).toBe(0xff);
    expect(enc(Infinity)).toBe(0x7f);
    expect(enc(-Infinity)).toBe(0xff);
    expect(enc(2 ** -10)).toBe(0x00);
    expect(enc(1.5 * 2 ** -10)).toBe(0x01);
    expect(enc(NaN)).toBe(0x7f);
    expect(enc(-0)).toBe(0x80);
  });

  it('saturate (the default) clamps finite values and ±inf to ±448; NaN stays NaN', () => {
    for (const x of [448.5, 465, 479, 480, 1e30, Infinity]) {
      expect(e4m3FromNumber(x)).toBe(0x7e);
      expect(e4m3FromNumber(-x)).toBe(0xfe);
    }
    expect(e4m3FromNumber(NaN)).toBe(0x7f);
    expect(Array.from(encodeE4M3([1, 500, -500], { saturate: false }))).toEqual([0x38, 0x7f, 0xff]);
  });

  it('property: encode is RNE to the E4M3 grid (f64 definition), both modes; non-saturating overflow goes to NaN like torch', () => {
    const grid = Array.from({ length: 127 }, (_, c) => e4m3Spec(c)); // codes 0x00..0x7E
    fc.assert(
      fc.property(fc.oneof(f32, fc.double({ min: -500, max: 500, noNaN: true }).map(Math.fround), ties([...grid, 480])), (x) => {
        const a = Math.abs(x);
        const sign = x < 0 || Object.is(x, -0) ? 0x80 : 0;
        // non-saturating: the step past 448 is 480 and lands on the NaN code 0x7F
        const ns = a >= 480 ? 0x7f : nearestCode(grid, 480, a);
        expect(e4m3FromNumber(x, { saturate: false })).toBe(sign | ns);
        const sat = a >= 448 ? 0x7e : nearestCode(grid, 480, a);
        expect(e4m3FromNumber(x)).toBe(sign | sat);
      }),
      { seed: 1234, numRuns: 20000 },
    );
  });

  it('property: decode → encode is the identity on all non-NaN codes', () => {
    for (let c = 0; c < 256; c++) {
      if ((c & 0x7f) === 0x7f) continue;
      expect(e4m3FromNumber(E4M3_TABLE[c]!)).toBe(c);
      expect(e4m3FromNumber(E4M3_TABLE[c]!, { saturate: false })).toBe(c);
    }
  });
});

describe('BF16 (SPEC §6.2)', () => {
  it('the SPEC examples and NaN', () => {
    expect(bf16FromNumber(1)).toBe(0x3f80);
    expect(bf16FromNumber(1 + 2 ** -8)).toBe(0x3f80);
    expect(bf16FromNumber(1 + 3 * 2 ** -8)).toBe(0x3f82);
    expect(bf16FromNumber(-2.5)).toBe(0xc020);
    expect(bf16FromNumber(NaN)).toBe(0x7fc0);
    expect(bf16FromNumber(-NaN)).toBe(0x7fc0);
    expect(bf16FromNumber(3.4e38)).toBe(0x7f80); // beyond the largest finite BF16 (3.3895e38) + half ulp → inf
    expect(bf16ToNumber(0x3f80)).toBe(1);
  });

  const grid = Array.from({ length: 0x7f80 }, (_, c) => bf16ToNumber(c)); // 0x0000..0x7F7F, 0x7F80 = inf
  it('property: f32 → BF16 is RNE (f64 definition), overflow → inf', () => {
    fc.assert(
      fc.property(fc.oneof(f32, ties(grid)), (x) => {
        const a = Math.abs(x);
        const code = a === Infinity ? 0x7f80 : nearestCode(grid, 2 ** 128, a);
        expect(bf16FromNumber(x)).toBe((x < 0 || Object.is(x, -0) ? 0x8000 : 0) | code);
      }),
      { seed: 99, numRuns: 20000 },
    );
  });

  it('every non-NaN BF16 code round-trips', () => {
    for (let c = 0; c < 65536; c++) {
      if ((c & 0x7fff) > 0x7f80) continue;
      if (bf16FromNumber(bf16ToNumber(c)) !== c) throw new Error(`code ${c.toString(16)}`);
    }
  });
});

describe('F16', () => {
  it('boundaries: max, overflow, subnormals, NaN', () => {
    expect(f16FromNumber(65504)).toBe(0x7bff);
    expect(f16FromNumber(65519)).toBe(0x7bff);
    expect(f16FromNumber(65520)).toBe(0x7c00);
    expect(f16FromNumber(-Infinity)).toBe(0xfc00);
    expect(f16FromNumber(2 ** -24)).toBe(0x0001);
    expect(f16FromNumber(2 ** -25)).toBe(0x0000); // tie, kept even
    expect(f16FromNumber(1.5 * 2 ** -25)).toBe(0x0001);
    expect(f16FromNumber(3 * 2 ** -25)).toBe(0x0002); // tie between 1 and 2 → even
    expect(f16FromNumber(NaN)).toBe(0x7e00);
    expect(f16ToNumber(0x3c00)).toBe(1);
    expect(f16ToNumber(0x0400)).toBe(2 ** -14);
  });

  const grid = Array.from({ length: 0x7c00 }, (_, c) => f16ToNumber(c));
  it('property: f32 → F16 is RNE (f64 definition), overflow → inf', () => {
    fc.assert(
      fc.property(fc.oneof(f32, fc.double({ min: -70000, max: 70000, noNaN: true }).map(Math.fround), fc.double({ min: -1e-4, max: 1e-4, noNaN: true }).map(Math.fround), ties([...grid, 65536])), (x) => {
        const a = Math.abs(x);
        const code = a === Infinity ? 0x7c00 : nearestCode(grid, 65536, a);
        expect(f16FromNumber(x)).toBe((x < 0 || Object.is(x, -0) ? 0x8000 : 0) | code);
      }),
      { seed: 7, numRuns: 20000 },
    );
  });

  it('every non-NaN F16 code round-trips', () => {
    for (let c = 0; c < 65536; c++) {
      if ((c & 0x7fff) > 0x7c00) continue;
      if (f16FromNumber(f16ToNumber(c)) !== c) throw new Error(`code ${c.toString(16)}`);
    }
  });
});

describe('block FP8 (SPEC §6.4)', () => {
  it('dequantize multiplies by the block scale, with partial edge blocks', () => {
    // [3, 5] with block 2 → scale [2, 3]
    const q = Uint8Array.from({ length: 15 }, (_, i) => 0x38 + i); // codes 1.0, 1.125, ...
    const s = Float32Array.from([1, 2, 4, 8, 16, 32]);
    const w = dequantizeBlockFp8(q, s, 3, 5, 2, 'float64');
    for (let i = 0; i < 3; i++) for (let j = 0; j < 5; j++) expect(w[i * 5 + j]).toBe(e4m3Spec(0x38 + i * 5 + j) * s[Math.floor(i / 2) * 3 + Math.floor(j / 2)]!);
    expect(() => dequantizeBlockFp8(q, new Float32Array(5), 3, 5, 2)).toThrow(/scale has 5 elements, expected 2×3/);
    expect(fp8ScaleShape(576, 7168)).toEqual([5, 56]);
    expect(fp8ScaleShape(24576, 1536)).toEqual([192, 12]);
  });

  it('float32 dequantisation rounds the product to f32 (the official kernel), float64 keeps it exact', () => {
    const s = Float32Array.from([Math.fround(1 / 3)]);
    const q = Uint8Array.from([0x39]); // 1.125
    expect(dequantizeBlockFp8(q, s, 1, 1, 128, 'float64')[0]).toBe(1.125 * s[0]!);
    expect(dequantizeBlockFp8(q, s, 1, 1, 128, 'float32')[0]).toBe(Math.fround(1.125 * s[0]!));
  });

  it('property: quantize → dequantize error ≤ half an E4M3 step per block; the block amax survives; zero blocks stay zero', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 9 }), fc.integer({ min: 1, max: 9 }), fc.integer({ min: 1, max: 4 }), fc.integer({ min: 0, max: 2 ** 31 }), (rows, cols, block, seed) => {
        let st = seed;
        const rnd = (): number => ((st = (Math.imul(st, 1103515245) + 12345) >>> 0) / 2 ** 32) * 2 - 1;
        const w = Float64Array.from({ length: rows * cols }, () => (rnd() < -0.8 ? 0 : rnd() * 10 ** (3 * rnd())));
        const { q, scaleInv } = quantizeBlockFp8(w, rows, cols, block);
        expect(scaleInv.length).toBe(Math.ceil(rows / block) * Math.ceil(cols / block));
        const d = dequantizeBlockFp8(q, scaleInv, rows, cols, block, 'float64');
        const sc = Math.ceil(cols / block);
        for (let i = 0; i < rows; i++) {
          for (let j = 0; j < cols; j++) {
            const s = scaleInv[Math.floor(i / block) * sc + Math.floor(j / block)]!;
            const x = w[i * cols + j]!;
            // 3 mantissa bits: half-ulp ≤ 2^-4 relative for normals, 2^-10·s on the subnormal grid; + f32 rounding of x/s
            expect(Math.abs(d[i * cols + j]! - x)).toBeLessThanOrEqual(Math.abs(x) * (2 ** -4 + 2 ** -22) + 2 ** -10 * s);
            if (x === 0) expect(d[i * cols + j]).toBe(0);
          }
        }
        return true;
      }),
      { seed: 31337, numRuns: 300 },
    );
    const z = quantizeBlockFp8(new Float64Array(6), 2, 3, 2);
    expect(Array.from(z.scaleInv)).toEqual([1, 1]);
    expect(Array.from(z.q)).toEqual([0, 0, 0, 0, 0, 0]);
    const one = quantizeBlockFp8(Float64Array.from([-7, 1]), 1, 2);
    expect(one.q[0]).toBe(0xfe); // amax → −448 exactly
    expect(one.scaleInv[0]).toBe(Math.fround(7 / 448));
  });
});
