// Single-precision GEMM  C[M,N] (+)= op(A)·op(B)  with 128-bit SIMD.
//
// BLIS-style blocking: the K axis is cut into KC-deep slices and N into NC-wide blocks; each
// slice of B is packed into 8-column panels (kc×8, contiguous) and each MC-row block of A into
// 4-row panels (kc×4), zero-padded at the edges. A 4×8 micro-kernel then holds its 32 outputs
// in 8 v128 registers (V8 spills beyond 4×8: x64 has 16 xmm registers) while it streams four
// A broadcasts and two B vectors per k step. Packing is also where the three layouts are
// handled, so one micro-kernel serves nn, nt and tn. Products with m < 4 skip all of this.

/** Layout codes passed from the JS side. */
export const LAYOUT_NN: i32 = 0; // A [M,K], B [K,N]
export const LAYOUT_NT: i32 = 1; // A [M,K], B [N,K]
export const LAYOUT_TN: i32 = 2; // A [K,M], B [K,N]

const MR: i32 = 4;
const NR: i32 = 8;
// kc×8 B panel = 8 KiB (L1); MC×KC A block = 128 KiB (L2); KC×NC B block = 1 MiB (L2/L3).
const KC: i32 = 256;
const MC: i32 = 128;
const NC: i32 = 1024;

// Static scratch (the data segment; memory.data sizes must be literals): packed A, packed B,
// and one 4×8 tile for edge tiles.
const packedA: usize = memory.data(131072, 16); // MC·KC·4 bytes
const packedB: usize = memory.data(1048576, 16); // KC·NC·4 bytes
const edgeTile: usize = memory.data(128, 16); // MR·NR·4 bytes

// c + a·b: fused (one rounding) where the engine supports relaxed SIMD and picks FMA,
// otherwise a multiply and an add. The relaxed build is compiled with ASC_FEATURE_RELAXED_SIMD.
// @ts-ignore: decorator
@inline function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(c, f32x4.mul(a, b));
}

// Transposes the 4×4 block held in r0..r3 (rows) and stores its columns at dst, dst+16, ….
// @ts-ignore: decorator
@inline function storeTransposed4x4(r0: v128, r1: v128, r2: v128, r3: v128, dst: usize, stride: usize): void {
  const t0 = v128.shuffle<f32>(r0, r1, 0, 4, 1, 5); // a0 b0 a1 b1
  const t1 = v128.shuffle<f32>(r0, r1, 2, 6, 3, 7); // a2 b2 a3 b3
  const t2 = v128.shuffle<f32>(r2, r3, 0, 4, 1, 5); // c0 d0 c1 d1
  const t3 = v128.shuffle<f32>(r2, r3, 2, 6, 3, 7); // c2 d2 c3 d3
  v128.store(dst, v128.shuffle<f32>(t0, t2, 0, 1, 4, 5));
  v128.store(dst + stride, v128.shuffle<f32>(t0, t2, 2, 3, 6, 7));
  v128.store(dst + 2 * stride, v128.shuffle<f32>(t1, t3, 0, 1, 4, 5));
  v128.store(dst + 3 * stride, v128.shuffle<f32>(t1, t3, 2, 3, 6, 7));
}

// Packs rows [i0, i0+mc) × k-slice [p0, p0+kc) of op(A) into 4-row panels:
// packedA[panel][p][r] = op(A)[i0 + 4·panel + r, p0 + p], zero past row m.
function packA(layout: i32, a: usize, m: i32, k: i32, i0: i32, mc: i32, p0: i32, kc: i32): void {
  for (let ip = 0; ip < mc; ip += MR) {
    const rows = min(MR, mc - ip);
    let dst = packedA + <usize>(ip * kc) * 4;
    if (layout == LAYOUT_TN) {
      // op(A)[i,p] = a[p·m + i]: the 4 rows of a panel are contiguous at each p
      let src = a + (<usize>p0 * m + i0 + ip) * 4;
      const step = <usize>m * 4;
      if (rows == MR) {
        for (let p = 0; p < kc; p++, src += step, dst += 16) v128.store(dst, v128.load(src));
      } else {
        for (let p = 0; p < kc; p++, src += step, dst += 16) {
          for (let r = 0; r < MR; r++) store<f32>(dst + r * 4, r < rows ? load<f32>(src + r * 4) : 0);
        }
      }
    } else {
      // op(A)[i,p] = a[i·k + p]: gather 4 rows, transposing 4×4 blocks
      const src = a + (<usize>(i0 + ip) * k + p0) * 4;
      const ld = <usize>k * 4;
      let p = 0;
      if (rows == MR) {
        for (; p + 4 <= kc; p += 4) {
          const s = src + <usize>p * 4;
          storeTransposed4x4(v128.load(s), v128.load(s + ld), v128.load(s + 2 * ld), v128.load(s + 3 * ld), dst + <usize>p * 16, 16);
        }
      }
      for (; p < kc; p++) {
        for (let r = 0; r < MR; r++) {
          store<f32>(dst + <usize>p * 16 + r * 4, r < rows ? load<f32>(src + <usize>r * ld + <usize>p * 4) : 0);
        }
      }
    }
  }
}

// Packs k-slice [p0, p0+kc) × columns [j0, j0+nc) of op(B) into 8-column panels:
// packedB[panel][p][c] = op(B)[p0 + p, j0 + 8·panel + c], zero past column n.
function packB(layout: i32, b: usize, n: i32, k: i32, j0: i32, nc: i32, p0: i32, kc: i32): void {
  for (let jp = 0; jp < nc; jp += NR) {
    const cols = min(NR, nc - jp);
    let dst = packedB + <usize>(jp * kc) * 4;
    if (layout != LAYOUT_NT) {
      // op(B)[p,j] = b[p·n + j]: 8 contiguous columns at each p
      let src = b + (<usize>p0 * n + j0 + jp) * 4;
      const step = <usize>n * 4;
      if (cols == NR) {
        for (let p = 0; p < kc; p++, src += step, dst += 32) {
          v128.store(dst, v128.load(src));
          v128.store(dst, v128.load(src, 16), 16);
        }
      } else {
        for (let p = 0; p < kc; p++, src += step, dst += 32) {
          for (let c = 0; c < NR; c++) store<f32>(dst + c * 4, c < cols ? load<f32>(src + c * 4) : 0);
        }
      }
    } else {
      // op(B)[p,j] = b[j·k + p]: gather 8 rows of b, transposing 4×4 blocks
      const src = b + (<usize>(j0 + jp) * k + p0) * 4;
      const ld = <usize>k * 4;
      let p = 0;
      if (cols == NR) {
        for (; p + 4 <= kc; p += 4) {
          const s = src + <usize>p * 4;
          const d = dst + <usize>p * 32;
          storeTransposed4x4(v128.load(s), v128.load(s + ld), v128.load(s + 2 * ld), v128.load(s + 3 * ld), d, 32);
          const s4 = s + 4 * ld;
          storeTransposed4x4(v128.load(s4), v128.load(s4 + ld), v128.load(s4 + 2 * ld), v128.load(s4 + 3 * ld), d + 16, 32);
        }
      }
      for (; p < kc; p++) {
        for (let c = 0; c < NR; c++) {
          store<f32>(dst + <usize>p * 32 + c * 4, c < cols ? load<f32>(src + <usize>c * ld + <usize>p * 4) : 0);
        }
      }
    }
  }
}

// The 4×8 micro-kernel: tile (+)= Σ_p packedA-panel[p][0..4]ᵀ · packedB-panel[p][0..8].
// The four A broadcasts are load32_splat (broadcast loads on the load ports): measured 1.2×
// faster here (Sapphire-Rapids-class x64, V8 11.3) than one A load plus four lane shuffles,
// which compete with the float adds for the same ports. `add` = false overwrites the tile of C,
// true adds to it. Edge tiles (rows < 4 or cols < 8) go through `edgeTile`.
function microKernel(ap: usize, bp: usize, kc: i32, c: usize, ldc: usize, add: bool, rows: i32, cols: i32): void {
  let c00 = f32x4.splat(0), c01 = f32x4.splat(0);
  let c10 = f32x4.splat(0), c11 = f32x4.splat(0);
  let c20 = f32x4.splat(0), c21 = f32x4.splat(0);
  let c30 = f32x4.splat(0), c31 = f32x4.splat(0);
  for (let p = 0; p < kc; p++) {
    const b0 = v128.load(bp);
    const b1 = v128.load(bp, 16);
    let s = v128.load32_splat(ap);
    c00 = madd(s, b0, c00);
    c01 = madd(s, b1, c01);
    s = v128.load32_splat(ap, 4);
    c10 = madd(s, b0, c10);
    c11 = madd(s, b1, c11);
    s = v128.load32_splat(ap, 8);
    c20 = madd(s, b0, c20);
    c21 = madd(s, b1, c21);
    s = v128.load32_splat(ap, 12);
    c30 = madd(s, b0, c30);
    c31 = madd(s, b1, c31);
    ap += 16;
    bp += 32;
  }
  if (rows == MR && cols == NR) {
    if (add) {
      v128.store(c, f32x4.add(v128.load(c), c00));
      v128.store(c, f32x4.add(v128.load(c, 16), c01), 16);
      c += ldc;
      v128.store(c, f32x4.add(v128.load(c), c10));
      v128.store(c, f32x4.add(v128.load(c, 16), c11), 16);
      c += ldc;
      v128.store(c, f32x4.add(v128.load(c), c20));
      v128.store(c, f32x4.add(v128.load(c, 16), c21), 16);
      c += ldc;
      v128.store(c, f32x4.add(v128.load(c), c30));
      v128.store(c, f32x4.add(v128.load(c, 16), c31), 16);
    } else {
      v128.store(c, c00);
      v128.store(c, c01, 16);
      c += ldc;
      v128.store(c, c10);
      v128.store(c, c11, 16);
      c += ldc;
      v128.store(c, c20);
      v128.store(c, c21, 16);
      c += ldc;
      v128.store(c, c30);
      v128.store(c, c31, 16);
    }
    return;
  }
  v128.store(edgeTile, c00);
  v128.store(edgeTile, c01, 16);
  v128.store(edgeTile, c10, 32);
  v128.store(edgeTile, c11, 48);
  v128.store(edgeTile, c20, 64);
  v128.store(edgeTile, c21, 80);
  v128.store(edgeTile, c30, 96);
  v128.store(edgeTile, c31, 112);
  for (let r = 0; r < rows; r++) {
    const cr = c + <usize>r * ldc;
    const tr = edgeTile + <usize>r * 32;
    for (let j = 0; j < cols; j++) {
      const v = load<f32>(tr + j * 4);
      store<f32>(cr + j * 4, add ? load<f32>(cr + j * 4) + v : v);
    }
  }
}

// Fewer rows than a micro-kernel tile (decode: one token): packing B would cost as much as the
// product and most tile rows would be padding, so these read A and B in place.
const SMALL_M: i32 = 4;

// 'nt', m < 4: C[i,j] (+)= A[i,:]·B[j,:], dot products over contiguous rows.
function matmulSmallNT(a: usize, b: usize, c: usize, m: i32, n: i32, k: i32, accumulate: bool): void {
  for (let i = 0; i < m; i++) {
    const ai = a + <usize>i * k * 4;
    for (let j = 0; j < n; j++) {
      const bj = b + <usize>j * k * 4;
      let acc0 = f32x4.splat(0);
      let acc1 = f32x4.splat(0);
      let p = 0;
      for (; p + 8 <= k; p += 8) {
        const q = <usize>p * 4;
        acc0 = madd(v128.load(ai + q), v128.load(bj + q), acc0);
        acc1 = madd(v128.load(ai + q, 16), v128.load(bj + q, 16), acc1);
      }
      const acc = f32x4.add(acc0, acc1);
      let s = f32x4.extract_lane(acc, 0) + f32x4.extract_lane(acc, 1) + f32x4.extract_lane(acc, 2) + f32x4.extract_lane(acc, 3);
      for (; p < k; p++) s += load<f32>(ai + <usize>p * 4) * load<f32>(bj + <usize>p * 4);
      const cq = c + (<usize>i * n + j) * 4;
      store<f32>(cq, accumulate ? load<f32>(cq) + s : s);
    }
  }
}

// 'nn' and 'tn', m < 4: C[i,:] (+)= Σ_p op(A)[i,p]·B[p,:], row updates over contiguous rows of B.
function matmulSmallRows(layout: i32, a: usize, b: usize, c: usize, m: i32, n: i32, k: i32, accumulate: bool): void {
  for (let i = 0; i < m; i++) {
    const ci = c + <usize>i * n * 4;
    if (!accumulate) memory.fill(ci, 0, <usize>n * 4);
    for (let p = 0; p < k; p++) {
      const aip = load<f32>(a + (layout == LAYOUT_TN ? <usize>p * m + i : <usize>i * k + p) * 4);
      const va = f32x4.splat(aip);
      const bp = b + <usize>p * n * 4;
      let j = 0;
      for (; j + 4 <= n; j += 4) {
        const q = <usize>j * 4;
        v128.store(ci + q, madd(va, v128.load(bp + q), v128.load(ci + q)));
      }
      for (; j < n; j++) {
        const q = <usize>j * 4;
        store<f32>(ci + q, load<f32>(ci + q) + aip * load<f32>(bp + q));
      }
    }
  }
}

/**
 * Benchmark probe (not used by the library): runs the micro-kernel `reps` times on one KC-deep
 * panel pair that stays in L1, storing a full tile each time, as the blocked loop does. Its rate,
 * 2·MR·NR·KC·reps flop, is the ceiling the whole matmul can approach on this engine and CPU.
 */
export function matmulMicroKernelProbe(reps: i32): void {
  for (let r = 0; r < reps; r++) microKernel(packedA, packedB, KC, edgeTile, <usize>NR * 4, false, MR, NR);
}

/** Flop per `matmulMicroKernelProbe` repetition: 2·MR·NR·KC. */
export const MICRO_KERNEL_PROBE_FLOP: i32 = 2 * MR * NR * KC;

/**
 * C[M,N] (+)= op(A)·op(B) on row-major f32 matrices at byte addresses a, b, c (see LAYOUT_*).
 * `accumulate` = 0 overwrites C, 1 adds to it.
 */
export function matmul(layout: i32, a: usize, b: usize, c: usize, m: i32, n: i32, k: i32, accumulate: i32): void {
  if (m <= 0 || n <= 0) return;
  if (k <= 0) {
    if (!accumulate) memory.fill(c, 0, <usize>m * n * 4);
    return;
  }
  if (m < SMALL_M) {
    if (layout == LAYOUT_NT) matmulSmallNT(a, b, c, m, n, k, accumulate != 0);
    else matmulSmallRows(layout, a, b, c, m, n, k, accumulate != 0);
    return;
  }
  const ldc = <usize>n * 4;
  for (let jc = 0; jc < n; jc += NC) {
    const nc = min(NC, n - jc);
    for (let pc = 0; pc < k; pc += KC) {
      const kc = min(KC, k - pc);
      packB(layout, b, n, k, jc, nc, pc, kc);
      // the first K slice overwrites C unless the caller asked to accumulate
      const add = accumulate != 0 || pc > 0;
      for (let ic = 0; ic < m; ic += MC) {
        const mc = min(MC, m - ic);
        packA(layout, a, m, k, ic, mc, pc, kc);
        for (let jr = 0; jr < nc; jr += NR) {
          const bp = packedB + <usize>(jr * kc) * 4;
          const cols = min(NR, nc - jr);
          for (let ir = 0; ir < mc; ir += MR) {
            const ap = packedA + <usize>(ir * kc) * 4;
            const cp = c + (<usize>(ic + ir) * n + jc + jr) * 4;
            microKernel(ap, bp, kc, cp, ldc, add, min(MR, mc - ir), cols);
          }
        }
      }
    }
  }
}
