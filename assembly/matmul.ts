// Single-precision GEMM  C[M,N] (+)= op(A)·op(B)  with 128-bit SIMD.
//
// BLIS-style blocking: the K axis is cut into KC-deep slices and N into NC-wide blocks; each
// slice of B is packed into 8-column panels (kc×8, contiguous) and each MC-row block of A into
// 4-row panels (kc×4), zero-padded at the edges. A 4×8 micro-kernel then holds its 32 outputs
// in 8 v128 registers while it streams four A broadcasts and two B vectors per k step. Packing
// is also where the three layouts are handled, so one micro-kernel serves nn, nt and tn.
// Products with m < 4 skip all of this.
//
// Why 4×8 (measured in L1 on a Sapphire-Rapids-class core, V8 11.3, docs/kernels.md): it runs at
// 97% of the CPU's non-FMA port limit (1.5 vector multiply-adds per cycle) and at 96% of its FMA
// limit in the relaxed build. 5×8 and 6×8 spill (V8 allocates 15 xmm registers) and lose 15–40%;
// unrolling k by 2 loses 20%; 2×16 and 3×12 tie in the SIMD build, and 3×12 is ~5% faster in
// the relaxed build in L1 but no faster in the whole matmul (N = 256 pads to 264 columns).
// KC = 384/512 and other MC/NC changed the whole matmul by < 1%.

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

// Scratch: packed A, packed B and one 4×8 tile for edge tiles. By default the static data segment (memory.data
// sizes must be literals); in the threaded build every worker's instance shares the memory, so each points its own
// globals (per instance) at a region the JS side reserved for it, with setMatmulScratch.
const SCRATCH_A: i32 = 131072; // MC·KC·4 bytes
const SCRATCH_B: i32 = 1048576; // KC·NC·4 bytes
const SCRATCH_TILE: i32 = 128; // MR·NR·4 bytes
let packedA: usize = memory.data(131072, 16);
let packedB: usize = memory.data(1048576, 16);
let edgeTile: usize = memory.data(128, 16);

/** Bytes of one matmul scratch region (for setMatmulScratch). */
export const MATMUL_SCRATCH_BYTES: i32 = SCRATCH_A + SCRATCH_B + SCRATCH_TILE;

/**
 * This instance's scratch region (MATMUL_SCRATCH_BYTES long): the fused attention kernels borrow it between matmul
 * calls (a participant runs one kernel at a time), so every thread of the pool has its own.
 */
export function scratchBase(): usize {
  return packedA;
}

/** Points this instance's matmul scratch at `base` (16-byte aligned, MATMUL_SCRATCH_BYTES long). */
export function setMatmulScratch(base: usize): void {
  packedA = base;
  packedB = base + <usize>SCRATCH_A;
  edgeTile = base + <usize>(SCRATCH_A + SCRATCH_B);
}

// c + a·b: fused (one rounding) where the engine supports relaxed SIMD and picks FMA,
// otherwise a multiply and an add. The relaxed build is compiled with ASC_FEATURE_RELAXED_SIMD.
// @ts-ignore: decorator
@inline export function madd(a: v128, b: v128, c: v128): v128 {
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
// product and most tile rows would be padding, so these read A and B in place. They perform
// exactly the tiled path's arithmetic on every element (a sum from 0 over each KC-deep slice in
// order of p, with the same multiply-add, then C = S₀ or C + S₀, C + S₁, …), so a row of C is
// bit-identical whatever M is: a token's result does not depend on its batch.

const SMALL_M: i32 = 4;

// f32 scalar c + a·b rounded as `madd` rounds it (fused in the relaxed build).
// @ts-ignore: decorator
@inline function maddScalar(a: f32, b: f32, c: f32): f32 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.extract_lane(f32x4.relaxed_madd(f32x4.splat(a), f32x4.splat(b), f32x4.splat(c)), 0);
  return c + a * b;
}

// The row path keeps a row's KC-slice partial sums in the packed-B buffer (unused when m < 4),
// in chunks of up to SMALL_W columns; whole rows of B are then streamed in order.
const SMALL_W: i32 = 262144; // packedB bytes / 4

// 'nn' and 'tn', m < 4: C[i,:] (+)= Σ_p op(A)[i,p]·B[p,:], row updates over contiguous rows of B.
function matmulSmallRows(layout: i32, a: usize, b: usize, c: usize, m: i32, n: i32, k: i32, accumulate: bool, jBegin: i32, jEnd: i32): void {
  for (let i = 0; i < m; i++) {
    for (let j0 = jBegin; j0 < jEnd; j0 += SMALL_W) {
      const w = min(SMALL_W, jEnd - j0);
      const ci = c + (<usize>i * n + j0) * 4;
      for (let pc = 0; pc < k; pc += KC) {
        const kc = min(KC, k - pc);
        memory.fill(packedB, 0, <usize>w * 4);
        for (let p = pc; p < pc + kc; p++) {
          const aip = load<f32>(a + (layout == LAYOUT_TN ? <usize>p * m + i : <usize>i * k + p) * 4);
          const va = f32x4.splat(aip);
          const bp = b + (<usize>p * n + j0) * 4;
          let j = 0;
          for (; j + 4 <= w; j += 4) {
            const q = <usize>j * 4;
            v128.store(packedB + q, madd(va, v128.load(bp + q), v128.load(packedB + q)));
          }
          for (; j < w; j++) {
            const q = <usize>j * 4;
            store<f32>(packedB + q, maddScalar(aip, load<f32>(bp + q), load<f32>(packedB + q)));
          }
        }
        // the first K slice overwrites C unless the caller asked to accumulate
        const add = accumulate || pc > 0;
        let j = 0;
        for (; j + 4 <= w; j += 4) {
          const q = <usize>j * 4;
          const sv = v128.load(packedB + q);
          v128.store(ci + q, add ? f32x4.add(v128.load(ci + q), sv) : sv);
        }
        for (; j < w; j++) {
          const q = <usize>j * 4;
          const sv = load<f32>(packedB + q);
          store<f32>(ci + q, add ? load<f32>(ci + q) + sv : sv);
        }
      }
    }
  }
}

// acc + Σ_{p<4} s_p·column p of the 4×4 block of B whose rows start at x0..x3 + q: the block is
// transposed in registers, then the four products are added in order of p.
// @ts-ignore: decorator
@inline function madd4x4T(x0: usize, x1: usize, x2: usize, x3: usize, q: usize, s0: v128, s1: v128, s2: v128, s3: v128, acc: v128): v128 {
  const y0 = v128.load(x0 + q);
  const y1 = v128.load(x1 + q);
  const y2 = v128.load(x2 + q);
  const y3 = v128.load(x3 + q);
  const t0 = v128.shuffle<f32>(y0, y1, 0, 4, 1, 5);
  const t1 = v128.shuffle<f32>(y0, y1, 2, 6, 3, 7);
  const t2 = v128.shuffle<f32>(y2, y3, 0, 4, 1, 5);
  const t3 = v128.shuffle<f32>(y2, y3, 2, 6, 3, 7);
  acc = madd(s0, v128.shuffle<f32>(t0, t2, 0, 1, 4, 5), acc);
  acc = madd(s1, v128.shuffle<f32>(t0, t2, 2, 3, 6, 7), acc);
  acc = madd(s2, v128.shuffle<f32>(t1, t3, 0, 1, 4, 5), acc);
  return madd(s3, v128.shuffle<f32>(t1, t3, 2, 3, 6, 7), acc);
}

// acc + s·(x0[q], x1[q], x2[q], x3[q]): one step of p for four rows of B.
// @ts-ignore: decorator
@inline function madd4Rows(x0: usize, x1: usize, x2: usize, x3: usize, q: usize, s: v128, acc: v128): v128 {
  let col = f32x4.splat(load<f32>(x0 + q));
  col = f32x4.replace_lane(col, 1, load<f32>(x1 + q));
  col = f32x4.replace_lane(col, 2, load<f32>(x2 + q));
  col = f32x4.replace_lane(col, 3, load<f32>(x3 + q));
  return madd(s, col, acc);
}

// 'nt', m < 4: C[i,j] (+)= A[i,:]·B[j,:] over rows of B, sixteen columns j at a time: 4×4 blocks
// of B (four rows, four p) are transposed in registers so that each lane accumulates its own
// column in order of p; four independent accumulators hide the multiply-add latency.
function matmulSmallNT(a: usize, b: usize, c: usize, m: i32, n: i32, k: i32, accumulate: bool, jBegin: i32, jEnd: i32): void {
  const ld = <usize>k * 4;
  for (let i = 0; i < m; i++) {
    const ai = a + <usize>i * k * 4;
    const ci = c + <usize>i * n * 4;
    for (let j = jBegin; j < jEnd; j += 16) {
      const cols = min(16, jEnd - j);
      // rows of B past n are read as row j (valid memory; their lanes are never stored)
      const r0 = b + <usize>j * ld;
      const r1 = cols > 1 ? r0 + ld : r0;
      const r2 = cols > 2 ? r0 + 2 * ld : r0;
      const r3 = cols > 3 ? r0 + 3 * ld : r0;
      const r4 = cols > 4 ? r0 + 4 * ld : r0;
      const r5 = cols > 5 ? r0 + 5 * ld : r0;
      const r6 = cols > 6 ? r0 + 6 * ld : r0;
      const r7 = cols > 7 ? r0 + 7 * ld : r0;
      const r8 = cols > 8 ? r0 + 8 * ld : r0;
      const r9 = cols > 9 ? r0 + 9 * ld : r0;
      const r10 = cols > 10 ? r0 + 10 * ld : r0;
      const r11 = cols > 11 ? r0 + 11 * ld : r0;
      const r12 = cols > 12 ? r0 + 12 * ld : r0;
      const r13 = cols > 13 ? r0 + 13 * ld : r0;
      const r14 = cols > 14 ? r0 + 14 * ld : r0;
      const r15 = cols > 15 ? r0 + 15 * ld : r0;
      for (let pc = 0; pc < k; pc += KC) {
        const kend = pc + min(KC, k - pc);
        let acc0 = f32x4.splat(0);
        let acc1 = f32x4.splat(0);
        let acc2 = f32x4.splat(0);
        let acc3 = f32x4.splat(0);
        let p = pc;
        for (; p + 4 <= kend; p += 4) {
          const q = <usize>p * 4;
          const s0 = v128.load32_splat(ai + q);
          const s1 = v128.load32_splat(ai + q, 4);
          const s2 = v128.load32_splat(ai + q, 8);
          const s3 = v128.load32_splat(ai + q, 12);
          acc0 = madd4x4T(r0, r1, r2, r3, q, s0, s1, s2, s3, acc0);
          acc1 = madd4x4T(r4, r5, r6, r7, q, s0, s1, s2, s3, acc1);
          acc2 = madd4x4T(r8, r9, r10, r11, q, s0, s1, s2, s3, acc2);
          acc3 = madd4x4T(r12, r13, r14, r15, q, s0, s1, s2, s3, acc3);
        }
        for (; p < kend; p++) {
          const q = <usize>p * 4;
          const s = v128.load32_splat(ai + q);
          acc0 = madd4Rows(r0, r1, r2, r3, q, s, acc0);
          acc1 = madd4Rows(r4, r5, r6, r7, q, s, acc1);
          acc2 = madd4Rows(r8, r9, r10, r11, q, s, acc2);
          acc3 = madd4Rows(r12, r13, r14, r15, q, s, acc3);
        }
        // the first K slice overwrites C unless the caller asked to accumulate
        const add = accumulate || pc > 0;
        const cq = ci + <usize>j * 4;
        if (cols == 16) {
          v128.store(cq, add ? f32x4.add(v128.load(cq), acc0) : acc0);
          v128.store(cq, add ? f32x4.add(v128.load(cq, 16), acc1) : acc1, 16);
          v128.store(cq, add ? f32x4.add(v128.load(cq, 32), acc2) : acc2, 32);
          v128.store(cq, add ? f32x4.add(v128.load(cq, 48), acc3) : acc3, 48);
        } else {
          v128.store(edgeTile, acc0);
          v128.store(edgeTile, acc1, 16);
          v128.store(edgeTile, acc2, 32);
          v128.store(edgeTile, acc3, 48);
          for (let t = 0; t < cols; t++) {
            const v = load<f32>(edgeTile + <usize>t * 4);
            store<f32>(cq + <usize>t * 4, add ? load<f32>(cq + <usize>t * 4) + v : v);
          }
        }
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
 * Benchmark probe (not used by the library): the engine's peak rate of this build's multiply-add, `madd` (f32x4
 * mul + add, or relaxed_madd), on 12 independent accumulator chains (enough to cover the latency on x64), `reps`
 * times. No memory traffic: it measures what the CPU can issue through V8's code, the peak the GEMM is compared to.
 * Returns a lane sum so the work is not dead code. Flop per rep: PEAK_PROBE_FLOP.
 */
export function simdPeakProbe(reps: i32, m: f32, c: f32): f32 {
  const vm = f32x4.splat(m);
  const vc = f32x4.splat(c);
  let a0 = f32x4.splat(0.0), a1 = f32x4.splat(0.1), a2 = f32x4.splat(0.2), a3 = f32x4.splat(0.3);
  let a4 = f32x4.splat(0.4), a5 = f32x4.splat(0.5), a6 = f32x4.splat(0.6), a7 = f32x4.splat(0.7);
  let a8 = f32x4.splat(0.8), a9 = f32x4.splat(0.9), a10 = f32x4.splat(1.0), a11 = f32x4.splat(1.1);
  for (let r = 0; r < reps; r++) {
    a0 = madd(a0, vm, vc); a1 = madd(a1, vm, vc); a2 = madd(a2, vm, vc); a3 = madd(a3, vm, vc);
    a4 = madd(a4, vm, vc); a5 = madd(a5, vm, vc); a6 = madd(a6, vm, vc); a7 = madd(a7, vm, vc);
    a8 = madd(a8, vm, vc); a9 = madd(a9, vm, vc); a10 = madd(a10, vm, vc); a11 = madd(a11, vm, vc);
  }
  const s = f32x4.add(f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3)), f32x4.add(f32x4.add(a4, a5), f32x4.add(a6, a7)));
  const t = f32x4.add(f32x4.add(a8, a9), f32x4.add(a10, a11));
  return f32x4.extract_lane(f32x4.add(s, t), 0);
}

/** Flop per `simdPeakProbe` repetition: 12 chains × 4 lanes × 2. */
export const PEAK_PROBE_FLOP: i32 = 96;

/**
 * C[M,N] (+)= op(A)·op(B) on row-major f32 matrices at byte addresses a, b, c (see LAYOUT_*).
 * `accumulate` = 0 overwrites C, 1 adds to it.
 */
export function matmul(layout: i32, a: usize, b: usize, c: usize, m: i32, n: i32, k: i32, accumulate: i32): void {
  matmulColumns(layout, a, b, c, m, n, k, accumulate, 0, n);
}

/**
 * Columns [jBegin, jEnd) of `matmul` (the rest of C is not touched): how the threaded build splits one product.
 * Every element is computed exactly as by the whole call (the same K slices, the same order of p, the same
 * multiply-add), so the result is bit-identical however the columns are split.
 */
export function matmulColumns(layout: i32, a: usize, b: usize, c: usize, m: i32, n: i32, k: i32, accumulate: i32, jBegin: i32, jEnd: i32): void {
  if (m <= 0 || jEnd <= jBegin) return;
  const ldc = <usize>n * 4;
  if (k <= 0) {
    if (!accumulate) for (let i = 0; i < m; i++) memory.fill(c + <usize>i * ldc + <usize>jBegin * 4, 0, <usize>(jEnd - jBegin) * 4);
    return;
  }
  if (m < SMALL_M) {
    if (layout == LAYOUT_NT) matmulSmallNT(a, b, c, m, n, k, accumulate != 0, jBegin, jEnd);
    else matmulSmallRows(layout, a, b, c, m, n, k, accumulate != 0, jBegin, jEnd);
    return;
  }
  for (let jc = jBegin; jc < jEnd; jc += NC) {
    const nc = min(NC, jEnd - jc);
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
