/**
 * The FP8 kernels' public API (src/kernels/fp8.ts) on the default js backend, against definitions written here:
 * bf16 RNE from the two neighbouring bf16 values, e4m3 codes as the nearest table value, the act_quant invariants
 * (|code| ≤ 448, ue8m0 powers of two, the 1e-4 clamp), the dequantisation error bound of 1×128 quantisation,
 * weight_dequant's block indexing, fp8_gemm by integer block sums, and the InputErrors.
 * The wasm twin is the same function bit for bit (fp8_wasm*.test.ts); the H200 data is in fp8_golden.test.ts.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import { E4M3_TABLE, f32Bits as bitsOf, f32FromBits } from '../../src/io/numeric.js';
import { actQuant, bf16Linear, bf16Round, fp8Gemm, jsKernels, roundBF16, weightDequant } from '../../src/kernels/index.js';
import { ACT_QUANT_AMAX_MIN, ACT_QUANT_RCP_448 } from '../../src/kernels/fp8.js';
import * as main from '../../src/index.js';
import { E4M3_POSITIVE, e4m3GridTiles, expectSameBits, f32Bits, fp8GemmDefinition } from './fp8_twins.js';

/**
 * bf16 RNE by definition: of the two bf16 values around v (`lo` toward zero: v's bits with the low 16 cleared;
 * `hi` the next one away from zero, 2^128 standing for the value past the largest, which IEEE rounding treats as
 * an unbounded exponent), the nearer; on a tie the one with an even last mantissa bit. NaN → NaN.
 */
function bf16Definition(v: number): number {
  if (Number.isNaN(v) || !Number.isFinite(v)) return v;
  const u = bitsOf(v);
  const loBits = (u & 0xffff0000) >>> 0;
  const lo = f32FromBits(loBits);
  if (lo === v) return v;
  const hiBits = loBits + 0x10000;
  const hi = (hiBits & 0x7fffffff) === 0x7f800000 ? Math.sign(v) * 2 ** 128 : f32FromBits(hiBits);
  const dLo = Math.abs(v - lo); // exact: v, lo, hi are f32 values within 2^-7 of each other
  const dHi = Math.abs(hi - v);
  const pick = dLo < dHi ? lo : dHi < dLo ? hi : (loBits & 0x10000) === 0 ? lo : hi;
  return Math.abs(pick) === 2 ** 128 ? Math.sign(v) * Infinity : pick;
}

/** The e4m3 value nearest to y (|y| ≤ 448), ties to the even code, by bisection of the sorted table; keeps the sign. */
function nearestE4M3(y: number): number {
  const a = Math.abs(y);
  let hi = 1; // first value > a (or the last)
  let lo = E4M3_POSITIVE.length - 1;
  while (hi < lo) {
    const mid = (hi + lo) >> 1;
    if (E4M3_POSITIVE[mid]! > a) lo = mid;
    else hi = mid + 1;
  }
  const up = hi;
  const down = hi - 1;
  const d = E4M3_POSITIVE[up]! - a - (a - E4M3_POSITIVE[down]!);
  const best = a >= E4M3_POSITIVE[up]! ? up : d < 0 || (d === 0 && up % 2 === 0) ? up : down;
  return y < 0 || Object.is(y, -0) ? -E4M3_POSITIVE[best]! : E4M3_POSITIVE[best]!; // the sign is kept, also on zero
}

describe('roundBF16 and bf16Round: RNE, ties to even, subnormals kept, NaN → NaN', () => {
  it('SPEC §6.2 examples', () => {
    // ties: 1 + 2^-8 → 1 (even), 1 + 3·2^-8 → 1 + 2^-6; a subnormal tie 1.5·2^-133 → 2^-132; the tie between the
    // largest bf16 (0x7F7F) and 2^128 goes to the even side, +inf
    const x = Float32Array.of(1, 1 + 2 ** -8, 1 + 3 * 2 ** -8, -2.5, 2 ** -133 * 1.5, f32FromBits(0x7f7f8000), f32FromBits(0x7f7f7fff), NaN);
    expect([...roundBF16(x)]).toEqual([1, 1, 1 + 2 ** -6, -2.5, 2 ** -132, Infinity, f32FromBits(0x7f7f0000), NaN]);
    expect(Object.is(roundBF16(Float32Array.of(-0))[0], -0)).toBe(true);
  });

  it('equals the definition on arbitrary f32 bit patterns, ties and subnormals (fast-check seed 811, 20000 values)', () => {
    fc.assert(
      fc.property(fc.array(f32Bits, { minLength: 100, maxLength: 100 }), (bits) => {
        const x = new Float32Array(Uint32Array.from(bits).buffer);
        const want = Float32Array.from(x, bf16Definition);
        expectSameBits(roundBF16(x), want, 'roundBF16');
        x.forEach((v, i) => expect(Object.is(bf16Round(v), want[i]) || (Number.isNaN(v) && Number.isNaN(bf16Round(v)))).toBe(true));
        // NaN comes out as torch's canonical 0x7FC0
        roundBF16(x).forEach((v) => Number.isNaN(v) && expect(bitsOf(v)).toBe(0x7fc00000));
      }),
      { seed: 811, numRuns: 200 },
    );
  });

  it('a Float64Array is rounded to f32 first (double rounding, as torch: c10::BFloat16(float)); out may alias', () => {
    // 1 + 2^-8 + 2^-30: nearer to 1 + 2^-7 in f64, but f32 makes it the tie 1 + 2^-8, which goes to even 1
    expect(roundBF16(Float64Array.of(1 + 2 ** -8 + 2 ** -30))[0]).toBe(1);
    const x = Float32Array.of(1.00390625, 3.3);
    expect(roundBF16(x, x)).toBe(x);
    expect([...x]).toEqual([1, 3.296875]);
  });
});

describe('actQuant: the official act_quant', () => {
  const shapes = fc.tuple(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 3 }));
  const input = shapes.chain(([rows, c]) =>
    fc.tuple(
      fc.constant(rows),
      fc.constant(128 * c),
      fc.array(fc.tuple(fc.double({ min: -9, max: 9, noNaN: true }), fc.array(fc.double({ min: -1, max: 1, noNaN: true }), { minLength: 128, maxLength: 128 })), {
        minLength: rows * c,
        maxLength: rows * c,
      }),
    ),
  );

  for (const fmt of ['none', 'ue8m0'] as const) {
    it(`${fmt}: codes finite with |value| ≤ 448, the scale rule, codes nearest to f32(x/s), error ≤ 2^-4|x| + 2^-9 s (fast-check seed 812, 100 runs)`, () => {
      fc.assert(
        fc.property(input, ([rows, cols, tiles]) => {
          const x = new Float32Array(rows * cols);
          tiles.forEach(([logMag, u], t) => u.forEach((v, j) => (x[t * 128 + j] = v * Math.exp(logMag))));
          const { codes, scales } = actQuant(x, rows, cols, { scaleFmt: fmt });
          for (let t = 0; t < scales.length; t++) {
            let amax = 0;
            for (let j = 0; j < 128; j++) amax = Math.max(amax, Math.abs(x[t * 128 + j]!));
            const s0 = Math.fround(Math.max(amax, ACT_QUANT_AMAX_MIN) * ACT_QUANT_RCP_448);
            const s = scales[t]!;
            if (fmt === 'none') expect(s).toBe(s0);
            else {
              expect(bitsOf(s) & 0x7fffff, 'ue8m0 scale is a power of two').toBe(0);
              expect(s >= s0 && s / 2 < s0, 'the smallest power of two ≥ amax·fp32(1/448)').toBe(true);
            }
            const bad: string[] = [];
            for (let j = 0; j < 128; j++) {
              const i = t * 128 + j;
              const q = E4M3_TABLE[codes[i]!]!;
              if (!(Number.isFinite(q) && Math.abs(q) <= 448)) bad.push(`${i}: code value ${q}`);
              const y = Math.fround(x[i]! / s);
              if (!Object.is(q, Math.abs(y) >= 448 ? Math.sign(y) * 448 : nearestE4M3(y))) bad.push(`${i}: ${q} is not the nearest to ${y}`);
              // e4m3 keeps 3 mantissa bits (error ≤ 2^-4 of the value) down to 2^-6, then a 2^-9 grid (error ≤ 2^-10);
              // f32(x/s) and a saturated y (|y| ≤ 448·(1 + 3·2^-24)) add 2^-23|x| and 2^-13 s: bound below.
              if (Math.abs(q * s - x[i]!) > (2 ** -4 + 2 ** -22) * Math.abs(x[i]!) + 2 ** -9 * s) bad.push(`${i}: error of ${q}·${s} vs ${x[i]}`);
            }
            expect(bad).toEqual([]);
          }
        }),
        { seed: 812, numRuns: 100 },
      );
    });
  }

  it('zero tiles and tiles below the clamp: scale max(amax, 1e-4)·fp32(1/448), zero tiles give zero codes', () => {
    const x = new Float32Array(3 * 128);
    x.fill(-0, 0, 64); // tile 0: ±0
    x[128 + 5] = 3e-5; // tile 1: below the clamp
    x[256 + 9] = 1; // tile 2: normal
    const clamp = Math.fround(Math.fround(1e-4) * Math.fround(1 / 448));
    const none = actQuant(x, 1, 384);
    expect([...none.scales]).toEqual([clamp, clamp, Math.fround(Math.fround(1 / 448))]);
    expect(none.codes.subarray(0, 128).every((c) => E4M3_TABLE[c] === 0)).toBe(true);
    expect(E4M3_TABLE[none.codes[128 + 5]!]).toBe(nearestE4M3(Math.fround(3e-5 / clamp)));
    const ue = actQuant(x, 1, 384, { scaleFmt: 'ue8m0' });
    expect([...ue.scales]).toEqual([2 ** -22, 2 ** -22, 2 ** -8]); // 2.23e-7 → 2^-22; 1/448 → 2^-8
    expect(ue.codes.subarray(0, 128).every((c) => E4M3_TABLE[c] === 0)).toBe(true);
  });

  it('the e4m3 grid at scale 1: every code is the nearest table value, ties to even (≈ 130k values, all 252 midpoints)', () => {
    const x = e4m3GridTiles();
    const { codes, scales } = actQuant(x, x.length / 128, 128, { scaleFmt: 'ue8m0' });
    expect(scales.every((s) => s === 1)).toBe(true);
    let ties = 0;
    const bad: number[] = [];
    for (let i = 0; i < x.length; i++) {
      if (!Object.is(E4M3_TABLE[codes[i]!], nearestE4M3(x[i]!))) bad.push(x[i]!);
      const a = Math.abs(x[i]!);
      const c = E4M3_POSITIVE.findIndex((v) => v > a);
      if (c > 0 && E4M3_POSITIVE[c]! - a === a - E4M3_POSITIVE[c - 1]!) ties++;
    }
    expect(bad).toEqual([]);
    expect(ties).toBe(252); // every midpoint between adjacent e4m3 values (126 per sign) is on the grid
  });
});

describe('weightDequant: the official weight_dequant', () => {
  it('uses the scale of block (⌊i/128⌋, ⌊j/128⌋), partial edge blocks included', () => {
    const rows = 300;
    const cols = 130;
    const codes = new Uint8Array(rows * cols).fill(0x38); // 1.0
    const scales = Float32Array.from({ length: 3 * 2 }, (_, b) => 2 ** b);
    const y = weightDequant(codes, scales, rows, cols, { out: 'float32' });
    for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) expect(y[i * cols + j]).toBe(2 ** (Math.floor(i / 128) * 2 + Math.floor(j / 128)));
  });

  it('f32: code·scale rounded once to f32; bf16: that f32 rounded once to bf16 (fast-check seed 813, 50 runs)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 200, maxLength: 200 }), fc.float({ min: Math.fround(1e-6), max: Math.fround(1e3), noNaN: true }), (codes, s) => {
        const scales = Float32Array.of(s, s * 3);
        const y32 = weightDequant(codes, scales, 1, 200, { out: 'float32' });
        const y16 = weightDequant(codes, scales, 1, 200);
        for (let j = 0; j < 200; j++) {
          const exact = E4M3_TABLE[codes[j]!]! * scales[j < 128 ? 0 : 1]!; // 4 × 24 significand bits: exact in f64
          expect(Object.is(y32[j], Math.fround(exact)) || Number.isNaN(exact)).toBe(true);
          expect(Object.is(y16[j], bf16Definition(Math.fround(exact))) || Number.isNaN(exact)).toBe(true);
        }
      }),
      { seed: 813, numRuns: 50 },
    );
  });
});

describe('fp8Gemm: the official fp8_gemm', () => {
  it('equals the integer definition, f32 and bf16 out (fast-check seed 814, 25 runs)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 260 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 0, max: 2 ** 31 }), (m, n, kb, seed) => {
        const k = 128 * kb;
        const code = (i: number): number => {
          const c = ((Math.imul(i + 1, 2246822519) ^ seed) >>> 9) & 0xff;
          return (c & 0x7f) === 0x7f ? c ^ 1 : c;
        };
        const a = Uint8Array.from({ length: m * k }, (_, i) => code(i));
        const b = Uint8Array.from({ length: n * k }, (_, i) => code(i + 65537));
        const aS = Float32Array.from({ length: m * kb }, (_, i) => Math.fround(Math.exp(((i * 7) % 13) - 9)));
        const bS = Float32Array.from({ length: Math.ceil(n / 128) * kb }, (_, i) => Math.fround(Math.exp(((i * 5) % 11) - 12)));
        const want = fp8GemmDefinition(a, aS, b, bS, m, n, k);
        expectSameBits(fp8Gemm(a, aS, b, bS, m, n, k, { out: 'float32' }), want, 'fp8Gemm f32');
        expectSameBits(fp8Gemm(a, aS, b, bS, m, n, k), Float32Array.from(want, bf16Definition), 'fp8Gemm bf16');
      }),
      { seed: 814, numRuns: 25 },
    );
  });

  it('sums each block exactly: an f32 running sum would lose the small products next to a large one', () => {
    // products: 448·448 = 200704 once, 2^-9·2^-3 = 2^-12 127 times. Exact: 200704 + 127·2^-12, which rounds to
    // 200704 + 2^-5 in f32 (ulp 2^-6); an f32 running sum drops every 2^-12 (below half an ulp) and stays at 200704.
    const k = 128;
    const a = new Uint8Array(k).fill(0x01); // 2^-9
    const b = new Uint8Array(k).fill(0x20); // 2^-3
    a[1] = 0x7e; // 448
    b[1] = 0x7e;
    const c = fp8Gemm(a, Float32Array.of(1), b, Float32Array.of(1), 1, 1, k, { out: 'float32' });
    expect(c[0]).toBe(200704 + 2 ** -5);
    let f32sum = 0;
    for (let t = 0; t < k; t++) f32sum = Math.fround(f32sum + E4M3_TABLE[a[t]!]! * E4M3_TABLE[b[t]!]!);
    expect(f32sum).toBe(200704);
  });
});

describe('bf16Linear', () => {
  it('is the f32 backend matmul x·Wᵀ rounded once to bf16', () => {
    const x = Float32Array.from({ length: 3 * 5 }, (_, i) => Math.sin(i));
    const W = Float32Array.from({ length: 4 * 5 }, (_, i) => Math.cos(i));
    const y = new Float32Array(12);
    jsKernels.matmul('nt', x, W, y, 3, 4, 5);
    expectSameBits(bf16Linear(x, W, 3, 4, 5), Float32Array.from(y, bf16Definition), 'bf16Linear');
  });
});

describe('exports', () => {
  it('the main (browser-safe) entry exports the FP8 kernels', () => {
    for (const f of [main.actQuant, main.weightDequant, main.fp8Gemm, main.roundBF16, main.bf16Round, main.bf16Linear]) expect(typeof f).toBe('function');
    expect(main.jsFp8.name).toBe('js');
  });
});

describe('argument errors name the argument and the numbers', () => {
  const bad = (f: () => unknown, re: RegExp): void => {
    expect(f).toThrow(InputError);
    expect(f).toThrow(re);
  };
  it('actQuant', () => {
    bad(() => actQuant(new Float32Array(200), 2, 100), /actQuant: cols = 100 is not a multiple of 128/);
    bad(() => actQuant(new Float32Array(255), 2, 128), /actQuant: 'x' has 255 elements; expected rows·cols = 2·128 = 256/);
    bad(() => actQuant(new Float64Array(128) as unknown as Float32Array, 1, 128), /actQuant: 'x' is a Float64Array; expected a Float32Array/);
    bad(() => actQuant(new Float32Array(128), 1, 128, { scaleFmt: 'e8m0' as 'none' }), /scaleFmt = "e8m0"/);
    bad(() => actQuant(new Float32Array(128), 1.5, 128), /rows = 1.5 is not a non-negative integer/);
  });
  it('weightDequant', () => {
    bad(() => weightDequant(new Uint8Array(10), new Float32Array(1), 3, 4), /weightDequant: 'codes' has 10 elements; expected rows·cols = 3·4 = 12/);
    bad(() => weightDequant(new Uint8Array(300 * 2), new Float32Array(2), 300, 2), /'scales' has 2 elements; expected ceil\(rows\/128\)·ceil\(cols\/128\) = 3·1 = 3/);
    bad(() => weightDequant(new Uint8Array(1), new Float32Array(1), 1, 1, { out: 'float16' as 'float32' }), /out = "float16"; expected 'bfloat16' or 'float32'/);
  });
  it('fp8Gemm', () => {
    const a = new Uint8Array(2 * 256);
    const b = new Uint8Array(3 * 256);
    bad(() => fp8Gemm(new Uint8Array(200), new Float32Array(2), new Uint8Array(300), new Float32Array(1), 2, 3, 100), /fp8Gemm: k = 100 is not a multiple of 128/);
    bad(() => fp8Gemm(a, new Float32Array(3), b, new Float32Array(2), 2, 3, 256), /'aScales' has 3 elements; expected m·\(k\/128\) = 2·2 = 4/);
    bad(() => fp8Gemm(a, new Float32Array(4), b.subarray(1), new Float32Array(2), 2, 3, 256), /'bCodes' has 767 elements; expected n·k = 3·256 = 768/);
    bad(() => fp8Gemm(a, new Float32Array(4), b, new Float32Array(4), 2, 3, 256), /'bScales' has 4 elements; expected ceil\(n\/128\)·\(k\/128\) = 1·2 = 2/);
    bad(() => fp8Gemm(a, new Float32Array(4), Array.from(b) as unknown as Uint8Array, new Float32Array(2), 2, 3, 256), /'bCodes' is a Array; expected a Uint8Array/);
  });
  it('roundBF16', () => {
    bad(() => roundBF16(new Float32Array(3), new Float32Array(2)), /roundBF16: 'out' has 2 elements; expected x's length = 3/);
  });
});
