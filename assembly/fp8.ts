// FP8 / bf16 emulation kernels: the official Triton act_quant, weight_dequant and fp8_gemm
// (inference/kernel.py, SPEC §6.5) and bf16 rounding. The definition is the js twin,
// src/kernels/fp8_js.ts; every result here is bit-identical to it (tests/kernels/fp8_wasm.test.ts).

const BLOCK: i32 = 128;

// E4M3FN code → value, as f64 (for the GEMM) and f32 (for dequantisation); both exact.
const TABLE64: usize = memory.data(2048, 16); // 256 × 8 bytes
const TABLE32: usize = memory.data(1024, 16); // 256 × 4 bytes

// 2^p for an integer p in the f64 normal range, exactly.
// @ts-ignore: decorator
@inline function pow2(p: i32): f64 {
  return reinterpret<f64>(<u64>(1023 + p) << 52);
}

// SPEC §6.3: s eeee mmm, bias 7; e = 0 subnormal (m/8·2^-6); 0x7F and 0xFF are NaN.
function e4m3Value(c: i32): f64 {
  const e = (c >> 3) & 15;
  const m = c & 7;
  let v: f64;
  if (e == 15 && m == 7) v = NaN;
  else if (e == 0) v = <f64>m * pow2(-9);
  else v = <f64>(8 + m) * pow2(e - 10);
  return c & 0x80 ? -v : v;
}

for (let c = 0; c < 256; c++) {
  const v = e4m3Value(c);
  store<f64>(TABLE64 + <usize>c * 8, v);
  store<f32>(TABLE32 + <usize>c * 4, <f32>v);
}

// ---------------------------------------------------------------------------------------------
// bf16 rounding

const BF16_NAN: u32 = 0x7fc00000; // torch's bf16 NaN (0x7FC0), sign dropped

// bf16 RNE on f32 bits (SPEC §6.2): (u + 0x7FFF + ((u >> 16) & 1)) & 0xFFFF0000; NaN → BF16_NAN.
// @ts-ignore: decorator
@inline function bf16Bits(u: u32): u32 {
  if ((u & 0x7fffffff) > 0x7f800000) return BF16_NAN;
  return (u + 0x7fff + ((u >> 16) & 1)) & 0xffff0000;
}

// @ts-ignore: decorator
@inline function bf16(x: f32): f32 {
  return reinterpret<f32>(bf16Bits(reinterpret<u32>(x)));
}

/** x[i] = bf16(x[i]) in place, n f32 values. */
export function roundBF16(x: usize, n: i32): void {
  const vLow = i32x4.splat(0x7fff);
  const vOne = i32x4.splat(1);
  const vHigh = i32x4.splat(0xffff0000);
  const vAbs = i32x4.splat(0x7fffffff);
  const vInf = i32x4.splat(0x7f800000);
  const vNaN = i32x4.splat(BF16_NAN);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const p = x + <usize>i * 4;
    const u = v128.load(p);
    const lsb = v128.and(i32x4.shr_u(u, 16), vOne);
    const r = v128.and(i32x4.add(i32x4.add(u, vLow), lsb), vHigh);
    const nan = i32x4.gt_u(v128.and(u, vAbs), vInf);
    v128.store(p, v128.bitselect(vNaN, r, nan));
  }
  for (; i < n; i++) {
    const p = x + <usize>i * 4;
    store<f32>(p, bf16(load<f32>(p)));
  }
}

// ---------------------------------------------------------------------------------------------
// act_quant

const AMAX_MIN: f32 = 1e-4; // tl.maximum(amax, 1e-4), the constant in f32
const RCP_448: f32 = <f32>(1.0 / 448.0); // Triton folds amax / 448. into amax · fp32(1/448)

// f32 → E4M3FN code, RNE on the 3 mantissa bits, saturating to ±448; NaN → 0x7F | sign.
// The same function as e4m3FromNumber(x, { saturate: true }) in src/io/numeric.ts.
// @ts-ignore: decorator
@inline function e4m3(x: f32): u8 {
  const u = reinterpret<u32>(x);
  const sign = (u >> 24) & 0x80;
  const a = u & 0x7fffffff;
  if (a > 0x7f800000) return <u8>(sign | 0x7f);
  if (a >= 0x43e00000) return <u8>(sign | 0x7e); // |x| ≥ 448 (and inf)
  if (a < 0x3c800000) {
    // |x| < 2^-6: subnormal grid 2^-9, nearest() ties to even; 8 is the smallest normal 0x08
    return <u8>(sign | <u32>nearest<f32>(reinterpret<f32>(a) * 512));
  }
  const q = (a >> 20) & 7; // the 3 kept mantissa bits
  const rem = a & 0xfffff;
  const up: u32 = rem > 0x80000 || (rem == 0x80000 && (q & 1) != 0) ? 1 : 0;
  // (exp + 7) << 3 | q, plus a carry that may move into the next binade
  return <u8>(sign | ((((a >> 23) - 120) << 3) + q + up));
}

/**
 * act_quant over rows·cols/128 contiguous tiles of 128 f32 at x: codes (u8) and one f32 scale
 * per tile. Per tile: amax = max(max|x|, 1e-4) (NaN ignored), s = amax·fp32(1/448), ue8m0:
 * s = 2^ceil(log2 s) from the bits; codes = e4m3(x / s).
 */
export function actQuant(x: usize, codes: usize, scales: usize, rows: i32, cols: i32, ue8m0: i32): void {
  const tiles = (rows * cols) / BLOCK;
  for (let t = 0; t < tiles; t++) {
    const px = x + <usize>t * BLOCK * 4;
    // f32x4.pmax(acc, v) = acc < v ? v : acc keeps acc when v is NaN, as the js twin's comparison
    let vmax = f32x4.splat(0);
    for (let j = 0; j < BLOCK; j += 4) vmax = f32x4.pmax(vmax, f32x4.abs(v128.load(px + <usize>j * 4)));
    let amax = f32x4.extract_lane(vmax, 0);
    for (let l = 1; l < 4; l++) {
      const v = l == 1 ? f32x4.extract_lane(vmax, 1) : l == 2 ? f32x4.extract_lane(vmax, 2) : f32x4.extract_lane(vmax, 3);
      if (v > amax) amax = v;
    }
    if (amax < AMAX_MIN) amax = AMAX_MIN;
    let s: f32 = amax * RCP_448;
    if (ue8m0 && s < Infinity) {
      const u = reinterpret<u32>(s); // normal: s ≥ 1e-4/448
      const e: u32 = (u >> 23) + ((u & 0x7fffff) != 0 ? 1 : 0);
      s = reinterpret<f32>(e << 23);
    }
    store<f32>(scales + <usize>t * 4, s);
    const pc = codes + <usize>t * BLOCK;
    for (let j = 0; j < BLOCK; j++) store<u8>(pc + j, e4m3(load<f32>(px + <usize>j * 4) / s));
  }
}

// ---------------------------------------------------------------------------------------------
// weight_dequant

/** y[i,j] = f32(code[i,j])·scale[⌊i/128⌋, ⌊j/128⌋] in f32, then bf16 if `toBf16`; partial edge blocks. */
export function weightDequant(codes: usize, scales: usize, y: usize, rows: i32, cols: i32, toBf16: i32): void {
  const sc = (cols + BLOCK - 1) / BLOCK;
  for (let i = 0; i < rows; i++) {
    const srow = scales + <usize>((i / BLOCK) * sc) * 4;
    const pc = codes + <usize>i * cols;
    const py = y + <usize>i * cols * 4;
    for (let j0 = 0; j0 < cols; j0 += BLOCK) {
      const s = load<f32>(srow + <usize>(j0 / BLOCK) * 4);
      const end = min(j0 + BLOCK, cols);
      for (let j = j0; j < end; j++) {
        const v = load<f32>(TABLE32 + <usize>load<u8>(pc + j) * 4) * s;
        store<f32>(py + <usize>j * 4, toBf16 ? bf16(v) : v);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// fp8_gemm
//
// C[m,n] = Σ_kb f32(f32(f32(dot_kb(m,n))·aS[m,kb])·bS[⌊n/128⌋,kb]), accumulated in f32 in kb order.
// Each block dot product is exact in f64 in any order: the products of e4m3 values are multiples of
// 2^-18 below 2^17.7, so every partial sum of 128 is an integer multiple of 2^-18 below 2^43.
// Blocking: for each 128-wide k block, up to MC rows of A are decoded to f64 (ABUF, L2) and reused
// by every group of 4 rows of B, decoded to BBUF (L1); a 2×4 tile holds 8 f64x2 accumulators.

const MC: i32 = 64;
const ROW: usize = <usize>BLOCK * 8; // bytes of one decoded 128-wide row block
const ABUF: usize = memory.data(65536, 16); // MC × 128 f64
const BBUF: usize = memory.data(4096, 16); // 4 × 128 f64

// @ts-ignore: decorator
@inline function decodeRow(src: usize, dst: usize): void {
  for (let t = 0; t < BLOCK; t++) store<f64>(dst + <usize>t * 8, load<f64>(TABLE64 + <usize>load<u8>(src + t) * 8));
}

// @ts-ignore: decorator
@inline function hsum(v: v128): f64 {
  return f64x2.extract_lane(v, 0) + f64x2.extract_lane(v, 1);
}

// c += f32(f32(f32(dot)·sa)·sb), the Triton `accumulator += tl.dot(a, b) * a_s * b_s`
// @ts-ignore: decorator
@inline function accumulate(c: usize, dot: f64, sa: f32, sb: f32): void {
  store<f32>(c, load<f32>(c) + (<f32>dot * sa) * sb);
}

// 2 rows of A (a, a + ROW) × the 4 rows of BBUF.
// @ts-ignore: decorator
@inline function tile2x4(a: usize, c: usize, n: i32, sa0: f32, sa1: f32, sb: f32): void {
  let s00 = f64x2.splat(0), s01 = f64x2.splat(0), s02 = f64x2.splat(0), s03 = f64x2.splat(0);
  let s10 = f64x2.splat(0), s11 = f64x2.splat(0), s12 = f64x2.splat(0), s13 = f64x2.splat(0);
  for (let t: usize = 0; t < ROW; t += 16) {
    const x0 = v128.load(a + t);
    const x1 = v128.load(a + ROW + t);
    const y0 = v128.load(BBUF + t);
    s00 = f64x2.add(s00, f64x2.mul(x0, y0));
    s10 = f64x2.add(s10, f64x2.mul(x1, y0));
    const y1 = v128.load(BBUF + ROW + t);
    s01 = f64x2.add(s01, f64x2.mul(x0, y1));
    s11 = f64x2.add(s11, f64x2.mul(x1, y1));
    const y2 = v128.load(BBUF + 2 * ROW + t);
    s02 = f64x2.add(s02, f64x2.mul(x0, y2));
    s12 = f64x2.add(s12, f64x2.mul(x1, y2));
    const y3 = v128.load(BBUF + 3 * ROW + t);
    s03 = f64x2.add(s03, f64x2.mul(x0, y3));
    s13 = f64x2.add(s13, f64x2.mul(x1, y3));
  }
  const c1 = c + <usize>n * 4;
  accumulate(c, hsum(s00), sa0, sb);
  accumulate(c + 4, hsum(s01), sa0, sb);
  accumulate(c + 8, hsum(s02), sa0, sb);
  accumulate(c + 12, hsum(s03), sa0, sb);
  accumulate(c1, hsum(s10), sa1, sb);
  accumulate(c1 + 4, hsum(s11), sa1, sb);
  accumulate(c1 + 8, hsum(s12), sa1, sb);
  accumulate(c1 + 12, hsum(s13), sa1, sb);
}

// 1 row of A × the 4 rows of BBUF.
// @ts-ignore: decorator
@inline function tile1x4(a: usize, c: usize, sa: f32, sb: f32): void {
  let s0 = f64x2.splat(0), s1 = f64x2.splat(0), s2 = f64x2.splat(0), s3 = f64x2.splat(0);
  for (let t: usize = 0; t < ROW; t += 16) {
    const x = v128.load(a + t);
    s0 = f64x2.add(s0, f64x2.mul(x, v128.load(BBUF + t)));
    s1 = f64x2.add(s1, f64x2.mul(x, v128.load(BBUF + ROW + t)));
    s2 = f64x2.add(s2, f64x2.mul(x, v128.load(BBUF + 2 * ROW + t)));
    s3 = f64x2.add(s3, f64x2.mul(x, v128.load(BBUF + 3 * ROW + t)));
  }
  accumulate(c, hsum(s0), sa, sb);
  accumulate(c + 4, hsum(s1), sa, sb);
  accumulate(c + 8, hsum(s2), sa, sb);
  accumulate(c + 12, hsum(s3), sa, sb);
}

// 1 row of A × row j of BBUF.
// @ts-ignore: decorator
@inline function tile1x1(a: usize, b: usize, c: usize, sa: f32, sb: f32): void {
  let s = f64x2.splat(0);
  for (let t: usize = 0; t < ROW; t += 16) s = f64x2.add(s, f64x2.mul(v128.load(a + t), v128.load(b + t)));
  accumulate(c, hsum(s), sa, sb);
}

/**
 * C [m,n] = fp8_gemm(A [m,k] codes, aS [m,k/128], B [n,k] codes, bS [ceil(n/128),k/128]) (C = A·Bᵀ),
 * f32, rounded to bf16 when `toBf16`. k % 128 == 0.
 */
export function fp8Gemm(a: usize, aS: usize, b: usize, bS: usize, c: usize, m: i32, n: i32, k: i32, toBf16: i32): void {
  const nkb = k / BLOCK;
  memory.fill(c, 0, <usize>m * n * 4); // tl.zeros: +0 + term = term, also for −0
  for (let kb = 0; kb < nkb; kb++) {
    const ko = <usize>kb * BLOCK;
    for (let m0 = 0; m0 < m; m0 += MC) {
      const mc = min(MC, m - m0);
      for (let i = 0; i < mc; i++) decodeRow(a + <usize>(m0 + i) * k + ko, ABUF + <usize>i * ROW);
      for (let n0 = 0; n0 < n; n0 += 4) {
        const nc = min(4, n - n0);
        for (let j = 0; j < nc; j++) decodeRow(b + <usize>(n0 + j) * k + ko, BBUF + <usize>j * ROW);
        // b_s[⌊n/128⌋, kb]: one value for the group, since n0 % 4 == 0 and 4 divides 128
        const sb = load<f32>(bS + <usize>(((n0 / BLOCK) * nkb + kb) * 4));
        const cRow = c + <usize>(m0 * n + n0) * 4;
        const aSc = aS + <usize>(m0 * nkb + kb) * 4;
        let i = 0;
        if (nc == 4) {
          for (; i + 2 <= mc; i += 2) {
            const sa0 = load<f32>(aSc + <usize>(i * nkb) * 4);
            const sa1 = load<f32>(aSc + <usize>((i + 1) * nkb) * 4);
            tile2x4(ABUF + <usize>i * ROW, cRow + <usize>(i * n) * 4, n, sa0, sa1, sb);
          }
          if (i < mc) tile1x4(ABUF + <usize>i * ROW, cRow + <usize>(i * n) * 4, load<f32>(aSc + <usize>(i * nkb) * 4), sb);
        } else {
          for (; i < mc; i++) {
            const sa = load<f32>(aSc + <usize>(i * nkb) * 4);
            for (let j = 0; j < nc; j++) tile1x1(ABUF + <usize>i * ROW, BBUF + <usize>j * ROW, cRow + <usize>(i * n + j) * 4, sa, sb);
          }
        }
      }
    }
  }
  if (toBf16) roundBF16(c, m * n);
}
