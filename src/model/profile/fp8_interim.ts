/**
 * INTERIM (replaced by src/kernels/fp8.ts when it lands): scalar definitions of the official act_quant,
 * weight_dequant and fp8_gemm, so the profile code compiles and runs meanwhile.
 */
import { E4M3_TABLE, e4m3FromNumber } from '../../io/numeric.js';
import { bf16 } from './arith.js';

const fr = Math.fround;
const INV448 = fr(1 / 448);

export function actQuant(x: Float32Array, rows: number, cols: number, opts: { scaleFmt?: 'none' | 'ue8m0' } = {}): { codes: Uint8Array; scales: Float32Array } {
  const nb = cols / 128;
  const codes = new Uint8Array(rows * cols);
  const scales = new Float32Array(rows * nb);
  for (let r = 0; r < rows; r++) {
    for (let b = 0; b < nb; b++) {
      const o = r * cols + b * 128;
      let amax = 0;
      for (let j = 0; j < 128; j++) amax = Math.max(amax, Math.abs(x[o + j]!));
      let s = fr(Math.max(amax, fr(1e-4)) * INV448);
      if (opts.scaleFmt === 'ue8m0') s = Math.pow(2, Math.ceil(Math.log2(s)));
      scales[r * nb + b] = s;
      for (let j = 0; j < 128; j++) codes[o + j] = e4m3FromNumber(fr(x[o + j]! / s), { saturate: true });
    }
  }
  return { codes, scales };
}

export function weightDequant(codes: Uint8Array, scales: Float32Array, rows: number, cols: number, opts: { out?: 'bfloat16' | 'float32' } = {}): Float32Array {
  const nb = Math.ceil(cols / 128);
  const y = new Float32Array(rows * cols);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) {
      const v = fr(E4M3_TABLE[codes[i * cols + j]!]! * scales[Math.floor(i / 128) * nb + Math.floor(j / 128)]!);
      y[i * cols + j] = opts.out === 'float32' ? v : bf16(v);
    }
  }
  return y;
}

export function fp8Gemm(aCodes: Uint8Array, aScales: Float32Array, bCodes: Uint8Array, bScales: Float32Array, m: number, n: number, k: number, opts: { out?: 'bfloat16' | 'float32' } = {}): Float32Array {
  const nb = k / 128;
  const c = new Float32Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let acc = 0;
      for (let kb = 0; kb < nb; kb++) {
        let dot = 0;
        for (let t = kb * 128; t < (kb + 1) * 128; t++) dot += E4M3_TABLE[aCodes[i * k + t]!]! * E4M3_TABLE[bCodes[j * k + t]!]!;
        acc = fr(acc + fr(fr(fr(dot) * aScales[i * nb + kb]!) * bScales[Math.floor(j / 128) * nb + kb]!));
      }
      c[i * n + j] = opts.out === 'float32' ? acc : bf16(acc);
    }
  }
  return c;
}
