/**
 * The FP8 kernels' twins compared bit for bit: an implementation (the wasm builds) against the js twin, the
 * definition (src/kernels/fp8_js.ts), on random inputs that include NaN, ±inf, ±0, subnormals, rounding ties and
 * partial blocks. f32 results are compared as bit patterns, except that any NaN equals any NaN (the payload of a
 * NaN produced in f32 arithmetic is not specified; bf16 outputs are compared strictly: both give 0x7FC00000).
 * Also home of the integer definition of fp8_gemm used by fp8.test.ts.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { jsFp8, type Fp8Kernels } from '../../src/kernels/fp8.js';
import { E4M3_TABLE } from '../../src/io/numeric.js';

const u32 = (x: Float32Array): Uint32Array => new Uint32Array(x.buffer, x.byteOffset, x.length);

/** f32 arrays equal bit for bit, NaN matching any NaN unless `strictNaN`. */
export function expectSameBits(got: Float32Array, ref: Float32Array, what: string, strictNaN = false): void {
  expect(got.length, what).toBe(ref.length);
  const g = u32(got);
  const r = u32(ref);
  for (let i = 0; i < g.length; i++) {
    if (g[i] === r[i]) continue;
    if (!strictNaN && Number.isNaN(got[i]) && Number.isNaN(ref[i])) continue;
    expect.fail(`${what}: element ${i} differs: got 0x${g[i]!.toString(16)} (${got[i]}), ref 0x${r[i]!.toString(16)} (${ref[i]})`);
  }
}

function expectSameBytes(got: Uint8Array, ref: Uint8Array, what: string): void {
  expect(got.length, what).toBe(ref.length);
  for (let i = 0; i < got.length; i++) {
    if (got[i] !== ref[i]) expect.fail(`${what}: byte ${i} differs: got 0x${got[i]!.toString(16)}, ref 0x${ref[i]!.toString(16)}`);
  }
}

/** A value of an E4M3FN code times 2^9: an integer (the subnormal step is 2^-9), exact; NaN codes excluded. */
export function e4m3Times512(c: number): number {
  const e = (c >> 3) & 15;
  const m = c & 7;
  const mag = e === 0 ? m : (8 + m) * 2 ** (e - 1);
  return c & 0x80 ? -mag : mag;
}

/**
 * fp8_gemm by its formula with integer block sums: Σ_t (a·2^9)(b·2^9) is an integer of magnitude
 * < 128·(448·512)² < 2^43 (exact in a double in any order), so dot = sum·2^-18 exactly; then
 * acc = f32(acc + f32(f32(f32(dot)·aS)·bS)) over the k blocks in order.
 */
export function fp8GemmDefinition(
  a: Uint8Array,
  aS: Float32Array,
  b: Uint8Array,
  bS: Float32Array,
  m: number,
  n: number,
  k: number,
): Float32Array {
  const f = Math.fround;
  const nkb = k / 128;
  const c = new Float32Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let acc = 0;
      for (let kb = 0; kb < nkb; kb++) {
        let sum = 0;
        for (let t = kb * 128; t < (kb + 1) * 128; t++) sum += e4m3Times512(a[i * k + t]!) * e4m3Times512(b[j * k + t]!);
        const dot = sum * 2 ** -18;
        acc = f(acc + f(f(f(dot) * aS[i * nkb + kb]!) * bS[Math.floor(j / 128) * nkb + kb]!));
      }
      c[i * n + j] = acc;
    }
  }
  return c;
}

/** Arbitrary f32 bit patterns: everything, rounding ties for bf16 and e4m3, subnormals, near-max, specials. */
export const f32Bits = fc.oneof(
  fc.nat({ max: 0xffffffff }),
  fc.tuple(fc.nat({ max: 0xffff }), fc.constantFrom(0x8000, 0x7fff, 0x8001, 0x0000, 0xffff)).map(([hi, lo]) => ((hi << 16) | lo) >>> 0),
  fc.tuple(fc.nat({ max: 0xfff }), fc.constantFrom(0x80000, 0x7ffff, 0x80001, 0)).map(([hi, lo]) => ((hi << 20) | lo) >>> 0),
  fc.tuple(fc.boolean(), fc.nat({ max: 0x7fffff })).map(([s, man]) => ((s ? 0x80000000 : 0) | man) >>> 0),
  fc.constantFrom(0, 0x80000000, 0x7f800000, 0xff800000, 0x7fc00000, 0x7f800001, 0xffc00000, 0x7f7fffff, 0x7f7f8000, 0xff7fffff),
);

function fromBits(bits: number[]): Float32Array {
  return new Float32Array(Uint32Array.from(bits).buffer);
}

/** Activations: tiles with a random magnitude (e^±9, as the golden cases), some with NaN/inf/±0 or all zero. */
const activation = (rows: number, cols: number): fc.Arbitrary<Float32Array> =>
  fc
    .array(
      fc.tuple(
        fc.double({ min: -9, max: 9, noNaN: true }),
        fc.constantFrom('normal', 'normal', 'normal', 'zero', 'tiny', 'special'),
        fc.array(fc.double({ min: -1, max: 1, noNaN: true }), { minLength: 128, maxLength: 128 }),
        fc.array(f32Bits, { minLength: 4, maxLength: 4 }),
      ),
      { minLength: (rows * cols) / 128, maxLength: (rows * cols) / 128 },
    )
    .map((tiles) => {
      const x = new Float32Array(rows * cols);
      tiles.forEach(([logMag, kind, u, specials], t) => {
        const mag = kind === 'tiny' ? 1e-5 : Math.exp(logMag);
        for (let j = 0; j < 128; j++) x[t * 128 + j] = kind === 'zero' ? (j % 2 ? -0 : 0) : u[j]! * mag;
        if (kind === 'special') fromBits(specials).forEach((v, j) => (x[t * 128 + 17 * j] = v));
      });
      return x;
    });

const shape = fc.tuple(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 4 })).map(([r, c]) => [r, 128 * c] as const);

/** The e4m3 grid through actQuant: tiles [±448, 127 test values] get scale 1 (448·fp32(1/448) = 1 in f32, ue8m0). */
export function e4m3GridTiles(): Float32Array {
  const values: number[] = [];
  for (let hi = 0; hi < 0x10000; hi++) {
    for (const lo of [0, 0x7fff, 0x8000, 0x8001]) {
      const v = fromBits([((hi << 16) | lo) >>> 0])[0]!;
      if (!(Math.abs(v) <= 448)) continue; // keeps the tile's amax at 448 (NaN is dropped too)
      values.push(v);
    }
  }
  const tiles = Math.ceil(values.length / 127);
  const x = new Float32Array(tiles * 128);
  for (let t = 0; t < tiles; t++) {
    x[t * 128] = t % 2 ? -448 : 448;
    for (let j = 1; j < 128; j++) x[t * 128 + j] = values[(t * 127 + j - 1) % values.length]!;
  }
  return x;
}

export function describeFp8Twins(load: () => Promise<Fp8Kernels>, expectedName: string): void {
  describe(`FP8 kernels: ${expectedName} == js, bit for bit`, () => {
    let K: Fp8Kernels;

    it('loads and reports its name', async () => {
      K = await load();
      expect(K.name).toBe(expectedName);
    });

    it('roundBF16 on arbitrary f32 bit patterns, f32 and f64 input, aliased output (fast-check seed 801, 200 runs)', () => {
      fc.assert(
        fc.property(fc.array(f32Bits, { minLength: 1, maxLength: 300 }), (bits) => {
          const x = fromBits(bits);
          const ref = new Float32Array(x.length);
          jsFp8.roundBF16(x, ref);
          const got = new Float32Array(x.length);
          K.roundBF16(x, got);
          expectSameBits(got, ref, 'roundBF16', true);
          const inPlace = x.slice();
          K.roundBF16(inPlace, inPlace);
          expectSameBits(inPlace, ref, 'roundBF16 in place', true);
          const x64 = Float64Array.from(x, (v, i) => v * (1 + (i % 3) * 2 ** -30)); // not f32 values: rounded to f32 first
          const ref64 = new Float32Array(x.length);
          jsFp8.roundBF16(x64, ref64);
          const got64 = new Float32Array(x.length);
          K.roundBF16(x64, got64);
          expectSameBits(got64, ref64, 'roundBF16 f64', true);
        }),
        { seed: 801, numRuns: 200 },
      );
    });

    it('actQuant, both scale formats, NaN/inf/±0/zero and tiny tiles (fast-check seed 802, 150 runs)', () => {
      fc.assert(
        fc.property(
          shape.chain(([r, c]) => fc.tuple(fc.constant(r), fc.constant(c), activation(r, c), fc.constantFrom('none' as const, 'ue8m0' as const))),
          ([rows, cols, x, fmt]) => {
            const n = rows * cols;
            const ref = { codes: new Uint8Array(n), scales: new Float32Array(n / 128) };
            const got = { codes: new Uint8Array(n), scales: new Float32Array(n / 128) };
            jsFp8.actQuant(x, rows, cols, fmt, ref.codes, ref.scales);
            K.actQuant(x, rows, cols, fmt, got.codes, got.scales);
            expectSameBits(got.scales, ref.scales, `actQuant ${fmt} scales`);
            expectSameBytes(got.codes, ref.codes, `actQuant ${fmt} codes`);
          },
        ),
        { seed: 802, numRuns: 150 },
      );
    });

    it('actQuant codes on the e4m3 grid: every bf16 pattern in [-448, 448] and the f32 values ±1, ±½ unit from it', () => {
      const x = e4m3GridTiles();
      const rows = x.length / 128;
      const ref = { codes: new Uint8Array(x.length), scales: new Float32Array(rows) };
      const got = { codes: new Uint8Array(x.length), scales: new Float32Array(rows) };
      jsFp8.actQuant(x, rows, 128, 'ue8m0', ref.codes, ref.scales);
      K.actQuant(x, rows, 128, 'ue8m0', got.codes, got.scales);
      expect(ref.scales.every((s) => s === 1)).toBe(true);
      expectSameBits(got.scales, ref.scales, 'grid scales');
      expectSameBytes(got.codes, ref.codes, 'grid codes');
    });

    it('weightDequant, all 256 codes incl. NaN, partial edge blocks, bf16 and f32 (fast-check seed 803, 60 runs)', () => {
      fc.assert(
        fc.property(
          fc.integer({ min: 1, max: 300 }),
          fc.integer({ min: 1, max: 300 }),
          fc.integer({ min: 0, max: 2 ** 31 }),
          fc.array(f32Bits, { minLength: 9, maxLength: 9 }),
          (rows, cols, seed, scaleBits) => {
            const codes = new Uint8Array(rows * cols);
            for (let i = 0; i < codes.length; i++) codes[i] = (Math.imul(i + 1, 2654435761) ^ seed) >>> 13;
            const sr = Math.ceil(rows / 128);
            const sc = Math.ceil(cols / 128);
            const scales = Float32Array.from({ length: sr * sc }, (_, i) => fromBits([scaleBits[i % 9]!])[0]!);
            for (const bf16 of [true, false]) {
              const ref = new Float32Array(rows * cols);
              const got = new Float32Array(rows * cols);
              jsFp8.weightDequant(codes, scales, rows, cols, bf16, ref);
              K.weightDequant(codes, scales, rows, cols, bf16, got);
              expectSameBits(got, ref, `weightDequant ${rows}×${cols} bf16=${bf16}`, bf16);
            }
          },
        ),
        { seed: 803, numRuns: 60 },
      );
    });

    it('fp8Gemm, bf16 and f32 out, m up to 70 and n up to 140 (edge tiles), NaN codes in some runs (fast-check seed 804, 40 runs)', () => {
      fc.assert(
        fc.property(
          fc.integer({ min: 1, max: 70 }),
          fc.integer({ min: 1, max: 140 }),
          fc.integer({ min: 1, max: 3 }),
          fc.integer({ min: 0, max: 2 ** 31 }),
          fc.boolean(),
          (m, n, kb, seed, withNaN) => {
            const k = 128 * kb;
            const code = (i: number): number => {
              const c = (Math.imul(i + 1, 2654435761) ^ seed) >>> 11;
              return withNaN || (c & 0x7f) !== 0x7f ? c & 0xff : 0x7e;
            };
            const a = Uint8Array.from({ length: m * k }, (_, i) => code(i));
            const b = Uint8Array.from({ length: n * k }, (_, i) => code(i + 7919 * m * k));
            const aS = Float32Array.from({ length: m * kb }, (_, i) => 2 ** ((i % 11) - 8) * (1 + (i % 7) / 9));
            const bS = Float32Array.from({ length: Math.ceil(n / 128) * kb }, (_, i) => 2 ** ((i % 5) - 12) * (1 + (i % 3) / 7));
            for (const bf16 of [true, false]) {
              const ref = new Float32Array(m * n);
              const got = new Float32Array(m * n);
              jsFp8.fp8Gemm(a, aS, b, bS, m, n, k, bf16, ref);
              K.fp8Gemm(a, aS, b, bS, m, n, k, bf16, got);
              expectSameBits(got, ref, `fp8Gemm ${m}×${n}×${k} bf16=${bf16}`, bf16);
            }
          },
        ),
        { seed: 804, numRuns: 40 },
      );
    });

    it('fp8Gemm equals the integer definition (fast-check seed 805, 20 runs)', () => {
      fc.assert(
        fc.property(fc.integer({ min: 1, max: 9 }), fc.integer({ min: 1, max: 140 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 0, max: 2 ** 31 }), (m, n, kb, seed) => {
          const k = 128 * kb;
          const code = (i: number): number => {
            const c = ((Math.imul(i + 1, 2654435761) ^ seed) >>> 11) & 0xff;
            return (c & 0x7f) === 0x7f ? c - 1 : c; // no NaN codes
          };
          const a = Uint8Array.from({ length: m * k }, (_, i) => code(i));
          const b = Uint8Array.from({ length: n * k }, (_, i) => code(i + 104729));
          const aS = Float32Array.from({ length: m * kb }, (_, i) => Math.fround(2 ** ((i % 9) - 6) / 3));
          const bS = Float32Array.from({ length: Math.ceil(n / 128) * kb }, (_, i) => Math.fround(2 ** ((i % 4) - 10) * 1.7));
          const got = new Float32Array(m * n);
          K.fp8Gemm(a, aS, b, bS, m, n, k, false, got);
          expectSameBits(got, fp8GemmDefinition(a, aS, b, bS, m, n, k), `fp8Gemm ${m}×${n}×${k} vs definition`, true);
        }),
        { seed: 805, numRuns: 20 },
      );
    });

    it('codes at odd byte offsets (views into a larger buffer) give the same results', () => {
      const m = 3;
      const n = 5;
      const k = 128;
      const buf = Uint8Array.from({ length: 1 + m * k + n * k + 3 }, (_, i) => (i * 37) % 0x7e);
      const a = buf.subarray(1, 1 + m * k);
      const b = buf.subarray(1 + m * k, 1 + m * k + n * k);
      const aS = Float32Array.of(0.5, 0.25, 2);
      const bS = Float32Array.of(0.125);
      const ref = new Float32Array(m * n);
      const got = new Float32Array(m * n);
      jsFp8.fp8Gemm(a.slice(), aS, b.slice(), bS, m, n, k, false, ref);
      K.fp8Gemm(a, aS, b, bS, m, n, k, false, got);
      expectSameBits(got, ref, 'fp8Gemm misaligned');
      const d = new Float32Array(5 * 77);
      const dRef = new Float32Array(5 * 77);
      const q = buf.subarray(3, 3 + 5 * 77);
      K.weightDequant(q, Float32Array.of(3), 5, 77, true, d);
      jsFp8.weightDequant(q.slice(), Float32Array.of(3), 5, 77, true, dRef);
      expectSameBits(d, dRef, 'weightDequant misaligned', true);
    });
  });
}

/** The positive finite E4M3FN values in increasing order (codes 0x00..0x7E). */
export const E4M3_POSITIVE: readonly number[] = Array.from({ length: 0x7f }, (_, c) => E4M3_TABLE[c]!);
