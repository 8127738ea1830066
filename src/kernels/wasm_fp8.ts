/**
 * The wasm twin of the FP8 / bf16 emulation kernels (assembly/fp8.ts), on the same instance and
 * arena as the other wasm kernels (src/kernels/wasm.ts builds it). Bit-identical to the js twin,
 * src/kernels/fp8_js.ts. Arguments are already checked by src/kernels/fp8.ts.
 */
import type { Fp8Kernels, ScaleFmt } from './fp8_js.js';
import type { WasmArena } from './wasm_arena.js';

/** The FP8 functions exported by assembly/index.ts (addresses are byte offsets into memory). */
export interface Fp8Exports {
  roundBF16(x: number, n: number): void;
  actQuant(x: number, codes: number, scales: number, rows: number, cols: number, ue8m0: number): void;
  weightDequant(codes: number, scales: number, y: number, rows: number, cols: number, toBf16: number): void;
  fp8Gemm(a: number, aS: number, b: number, bS: number, c: number, m: number, n: number, k: number, toBf16: number): void;
}

// The arena moves f32/i32 words; bytes travel as the words that hold them (TypedArray.set between
// arrays of one type copies bits, so no byte pattern is changed on the way).

/** The first n bytes of `u8` as ceil(n/4) words: a view when aligned, else a zero-padded copy. */
function bytesAsWords(u8: Uint8Array, n: number): Int32Array {
  const words = Math.ceil(n / 4);
  if (u8.byteOffset % 4 === 0 && u8.byteLength >= 4 * words) return new Int32Array(u8.buffer, u8.byteOffset, words);
  const copy = new Uint8Array(4 * words);
  copy.set(u8.subarray(0, n));
  return new Int32Array(copy.buffer);
}

/** The FP8 kernels over one wasm instance's exports and arena. */
export function makeWasmFp8(ex: Fp8Exports, arena: WasmArena, name: string): Fp8Kernels {
  return {
    name,

    roundBF16(x: Float32Array | Float64Array, out: Float32Array): void {
      const n = x.length;
      if (out !== x) for (let i = 0; i < n; i++) out[i] = x[i]!; // f64 → f32 first, as the js twin
      arena.begin();
      const p = arena.inout(out, n);
      arena.run(() => ex.roundBF16(p, n));
    },

    actQuant(x: Float32Array, rows: number, cols: number, scaleFmt: ScaleFmt, codes: Uint8Array, scales: Float32Array): void {
      const n = rows * cols;
      const codeWords = new Float32Array(n / 4); // n is a multiple of 128
      arena.begin();
      const px = arena.input(x, n);
      const pc = arena.output(codeWords, n / 4);
      const ps = arena.output(scales, n / 128);
      arena.run(() => ex.actQuant(px, pc, ps, rows, cols, scaleFmt === 'ue8m0' ? 1 : 0));
      codes.set(new Uint8Array(codeWords.buffer, 0, n));
    },

    weightDequant(codes: Uint8Array, scales: Float32Array, rows: number, cols: number, bf16: boolean, out: Float32Array): void {
      const n = rows * cols;
      const words = bytesAsWords(codes, n);
      arena.begin();
      const pq = arena.input(words, words.length);
      const ps = arena.input(scales, scales.length);
      const py = arena.output(out, n);
      arena.run(() => ex.weightDequant(pq, ps, py, rows, cols, bf16 ? 1 : 0));
    },

    fp8Gemm(
      aCodes: Uint8Array,
      aScales: Float32Array,
      bCodes: Uint8Array,
      bScales: Float32Array,
      m: number,
      n: number,
      k: number,
      bf16: boolean,
      out: Float32Array,
    ): void {
      const a = bytesAsWords(aCodes, m * k);
      const b = bytesAsWords(bCodes, n * k);
      arena.begin();
      const pa = arena.input(a, a.length);
      const pas = arena.input(aScales, aScales.length);
      const pb = arena.input(b, b.length);
      const pbs = arena.input(bScales, bScales.length);
      const pc = arena.output(out, m * n);
      arena.run(() => ex.fp8Gemm(pa, pas, pb, pbs, pc, m, n, k, bf16 ? 1 : 0));
    },
  };
}
