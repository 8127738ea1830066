// Fused causal attention, forward and backward (flash-style): the scores of a block of 4 query rows against a block
// of KB keys live in a small tile, never in a [S, T] matrix; the softmax runs online over the key blocks (running
// max m and sum l per row, the output rescaled by exp(m_old − m_new)); the backward recomputes each tile from
// q, k and the forward's (m, l) instead of reading saved probabilities.
//
// Scores are two-part dot products, score(s, t) = τ·(q1[s]·k1[t] + q2[s]·k2[t]): MLA's [q_nope ; q_pe] against
// [k_nope ; k_pe] (naive) or [q̃ ; q_pe] against [ĉ ; k_pe] (absorbed), without concatenating either side.
// Every operand is a strided 4-D view: element (b, h, i, j) at byte address ptr + 4·(b·sb + h·sh + i·ss + j), so
// head-major and token-major tensors and KV caches are read in place. Key t is visible from query s iff
// t ≤ s + offset.
//
// Work is cut into units that share keys: one (batch row, head) each, or one batch row with all H·S query rows
// when the keys and values are shared by the heads (sh = 0: MLA's absorbed path, MQA). A unit is computed by one
// caller, in a fixed order, so results do not depend on how units are spread over threads.
//
// The operands are described by an i32 record in memory (`desc`, fields below) written by src/kernels/wasm_attention.ts.
import { exp4 } from './vmath';
import { expSum } from './rowops';
import { madd, scratchBase } from './matmul';

const F_B = 0;
const F_H = 1;
const F_S = 2;
const F_T = 3;
const F_D1 = 4;
const F_D2 = 5;
const F_DV = 6;
const F_OFFSET = 7;
const F_TAU = 8; // f32 bits
const F_STATS = 9; // byte address of (m, l) per query row, [B, H, S, 2]
const F_GROUPED = 10; // 1: units are batch rows with all H·S query rows (keys shared by the heads)
const F_CHUNK = 11; // > 0: the forward splits the keys into chunks of this many (flash-decoding), see attentionCombine
const F_PARTIAL = 12; // byte address of the chunks' partial results, [units, chunks, rows, dv + 2]
const F_ROW_SPLIT = 13; // > 0 (forward, keys not split): a work item is this many query rows of a unit (a multiple of 4)
const F_OPS = 14; // operand o: fields F_OPS + 4·o = byte address, then the element strides sb, sh, ss

const Q1 = 0;
const Q2 = 1;
const K1 = 2;
const K2 = 3;
const VV = 4;
const OO = 5;
const DO = 6;
const DQ1 = 7;
const DQ2 = 8;
const DK1 = 9;
const DK2 = 10;
const DV = 11;

/** Keys per block of the online softmax. */
const KB: i32 = 64;
/** Query rows per block (the micro-kernels hold 4 rows). */
const QB: i32 = 4;

// scratch (the instance's matmul scratch): score tile, second tile, a zero row (the inputs of padding rows) and a
// sink row (their outputs)
const TILE_BYTES: usize = <usize>(QB * KB * 4);

/** Widest operand row the scratch holds (zero and sink rows); the JS side checks it. */
export const ATTENTION_MAX_WIDTH: i32 = 15872;

// @ts-ignore: decorator
@inline function field(desc: usize, f: i32): i32 {
  return load<i32>(desc + <usize>f * 4);
}

// Byte address of row i of operand `op` at (b, h).
// @ts-ignore: decorator
@inline function rowAddr(desc: usize, op: i32, b: i32, h: i32, i: i32): usize {
  const o = desc + <usize>(F_OPS + 4 * op) * 4;
  const el = <i64>b * <i64>load<i32>(o, 4) + <i64>h * <i64>load<i32>(o, 8) + <i64>i * <i64>load<i32>(o, 12);
  return <usize>load<i32>(o) + <usize>(el * 4);
}

// Byte stride between consecutive rows of operand `op`.
// @ts-ignore: decorator
@inline function rowStride(desc: usize, op: i32): usize {
  return <usize>load<i32>(desc + <usize>(F_OPS + 4 * op) * 4, 12) * 4;
}

// @ts-ignore: decorator
@inline function hsum(v: v128): f32 {
  return f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1) + f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3);
}

/** Σ_j a[j]·b[j] over n f32 (four lanes, then the tail). */
function dot(a: usize, b: usize, n: i32): f32 {
  let acc = f32x4.splat(0);
  let j = 0;
  for (; j + 4 <= n; j += 4) acc = madd(v128.load(a + <usize>j * 4), v128.load(b + <usize>j * 4), acc);
  let s = hsum(acc);
  for (; j < n; j++) s += load<f32>(a + <usize>j * 4) * load<f32>(b + <usize>j * 4);
  return s;
}

/**
 * tile[i, t] (+)= Σ_j r_i[j]·k_t[j] for the 4 rows r0..r3 and keys t < nt (key t at k + t·ks): 4×2 dot products
 * at a time, eight four-lane accumulators, summed across lanes at the end.
 */
function dotTile(r0: usize, r1: usize, r2: usize, r3: usize, k: usize, ks: usize, d: i32, nt: i32, tile: usize, add: bool): void {
  let t = 0;
  for (; t + 2 <= nt; t += 2) {
    const ka = k + <usize>t * ks;
    const kb = ka + ks;
    let x00 = f32x4.splat(0), x01 = f32x4.splat(0), x10 = f32x4.splat(0), x11 = f32x4.splat(0);
    let x20 = f32x4.splat(0), x21 = f32x4.splat(0), x30 = f32x4.splat(0), x31 = f32x4.splat(0);
    let j = 0;
    for (; j + 4 <= d; j += 4) {
      const o = <usize>j * 4;
      const ua = v128.load(ka + o);
      const ub = v128.load(kb + o);
      let q = v128.load(r0 + o);
      x00 = madd(q, ua, x00);
      x01 = madd(q, ub, x01);
      q = v128.load(r1 + o);
      x10 = madd(q, ua, x10);
      x11 = madd(q, ub, x11);
      q = v128.load(r2 + o);
      x20 = madd(q, ua, x20);
      x21 = madd(q, ub, x21);
      q = v128.load(r3 + o);
      x30 = madd(q, ua, x30);
      x31 = madd(q, ub, x31);
    }
    let s00 = hsum(x00), s01 = hsum(x01), s10 = hsum(x10), s11 = hsum(x11);
    let s20 = hsum(x20), s21 = hsum(x21), s30 = hsum(x30), s31 = hsum(x31);
    for (; j < d; j++) {
      const o = <usize>j * 4;
      const ua = load<f32>(ka + o);
      const ub = load<f32>(kb + o);
      const q0 = load<f32>(r0 + o), q1 = load<f32>(r1 + o), q2 = load<f32>(r2 + o), q3 = load<f32>(r3 + o);
      s00 += q0 * ua; s01 += q0 * ub;
      s10 += q1 * ua; s11 += q1 * ub;
      s20 += q2 * ua; s21 += q2 * ub;
      s30 += q3 * ua; s31 += q3 * ub;
    }
    const c = tile + <usize>t * 4;
    const R = <usize>KB * 4;
    if (add) {
      s00 += load<f32>(c); s01 += load<f32>(c, 4);
      s10 += load<f32>(c + R); s11 += load<f32>(c + R, 4);
      s20 += load<f32>(c + 2 * R); s21 += load<f32>(c + 2 * R, 4);
      s30 += load<f32>(c + 3 * R); s31 += load<f32>(c + 3 * R, 4);
    }
    store<f32>(c, s00); store<f32>(c, s01, 4);
    store<f32>(c + R, s10); store<f32>(c + R, s11, 4);
    store<f32>(c + 2 * R, s20); store<f32>(c + 2 * R, s21, 4);
    store<f32>(c + 3 * R, s30); store<f32>(c + 3 * R, s31, 4);
  }
  for (; t < nt; t++) {
    const ka = k + <usize>t * ks;
    const R = <usize>KB * 4;
    const c = tile + <usize>t * 4;
    const s0 = dot(r0, ka, d), s1 = dot(r1, ka, d), s2 = dot(r2, ka, d), s3 = dot(r3, ka, d);
    store<f32>(c, add ? load<f32>(c) + s0 : s0);
    store<f32>(c + R, add ? load<f32>(c + R) + s1 : s1);
    store<f32>(c + 2 * R, add ? load<f32>(c + 2 * R) + s2 : s2);
    store<f32>(c + 3 * R, add ? load<f32>(c + 3 * R) + s3 : s3);
  }
}

/**
 * out_i[j] = α_i·out_i[j] + Σ_{t<nt} w[i, t]·k_t[j] for the 4 rows (k_t at k + t·ks, width d): the P·V of the
 * forward (α the online rescale) and dq += dS·k of the backward (α = 1).
 */
function rowsFromKeys(w: usize, nt: i32, k: usize, ks: usize, d: i32, o0: usize, o1: usize, o2: usize, o3: usize, a0: f32, a1: f32, a2: f32, a3: f32): void {
  const R = <usize>KB * 4;
  let j = 0;
  for (; j + 8 <= d; j += 8) {
    const oj = <usize>j * 4;
    let y00 = f32x4.splat(0), y01 = f32x4.splat(0), y10 = f32x4.splat(0), y11 = f32x4.splat(0);
    let y20 = f32x4.splat(0), y21 = f32x4.splat(0), y30 = f32x4.splat(0), y31 = f32x4.splat(0);
    for (let t = 0; t < nt; t++) {
      const kt = k + <usize>t * ks + oj;
      const u0 = v128.load(kt);
      const u1 = v128.load(kt, 16);
      const wt = w + <usize>t * 4;
      let p = v128.load32_splat(wt);
      y00 = madd(p, u0, y00);
      y01 = madd(p, u1, y01);
      p = v128.load32_splat(wt + R);
      y10 = madd(p, u0, y10);
      y11 = madd(p, u1, y11);
      p = v128.load32_splat(wt + 2 * R);
      y20 = madd(p, u0, y20);
      y21 = madd(p, u1, y21);
      p = v128.load32_splat(wt + 3 * R);
      y30 = madd(p, u0, y30);
      y31 = madd(p, u1, y31);
    }
    rescaleAdd(o0 + oj, a0, y00, y01);
    rescaleAdd(o1 + oj, a1, y10, y11);
    rescaleAdd(o2 + oj, a2, y20, y21);
    rescaleAdd(o3 + oj, a3, y30, y31);
  }
  for (; j < d; j++) {
    const oj = <usize>j * 4;
    let y0: f32 = 0, y1: f32 = 0, y2: f32 = 0, y3: f32 = 0;
    for (let t = 0; t < nt; t++) {
      const u = load<f32>(k + <usize>t * ks + oj);
      const wt = w + <usize>t * 4;
      y0 += load<f32>(wt) * u;
      y1 += load<f32>(wt + R) * u;
      y2 += load<f32>(wt + 2 * R) * u;
      y3 += load<f32>(wt + 3 * R) * u;
    }
    store<f32>(o0 + oj, a0 * load<f32>(o0 + oj) + y0);
    store<f32>(o1 + oj, a1 * load<f32>(o1 + oj) + y1);
    store<f32>(o2 + oj, a2 * load<f32>(o2 + oj) + y2);
    store<f32>(o3 + oj, a3 * load<f32>(o3 + oj) + y3);
  }
}

// o[0..8) = α·o + (y0 | y1)
// @ts-ignore: decorator
@inline function rescaleAdd(o: usize, a: f32, y0: v128, y1: v128): void {
  const va = f32x4.splat(a);
  v128.store(o, f32x4.add(f32x4.mul(va, v128.load(o)), y0));
  v128.store(o, f32x4.add(f32x4.mul(va, v128.load(o, 16)), y1), 16);
}

/**
 * out_t[j] += Σ_i w[i, t]·r_i[j] for keys t < nt (out_t at out + t·os, width d): dv += Pᵀ·dO and dk += dSᵀ·q.
 * The 4 rows' values of 8 columns stay in registers while t runs.
 */
function keysFromRows(w: usize, nt: i32, r0: usize, r1: usize, r2: usize, r3: usize, d: i32, out: usize, os: usize): void {
  const R = <usize>KB * 4;
  let j = 0;
  for (; j + 8 <= d; j += 8) {
    const oj = <usize>j * 4;
    const a0 = v128.load(r0 + oj), a1 = v128.load(r0 + oj, 16);
    const b0 = v128.load(r1 + oj), b1 = v128.load(r1 + oj, 16);
    const c0 = v128.load(r2 + oj), c1 = v128.load(r2 + oj, 16);
    const e0 = v128.load(r3 + oj), e1 = v128.load(r3 + oj, 16);
    for (let t = 0; t < nt; t++) {
      const wt = w + <usize>t * 4;
      const o = out + <usize>t * os + oj;
      let y0 = v128.load(o);
      let y1 = v128.load(o, 16);
      let p = v128.load32_splat(wt);
      y0 = madd(p, a0, y0);
      y1 = madd(p, a1, y1);
      p = v128.load32_splat(wt + R);
      y0 = madd(p, b0, y0);
      y1 = madd(p, b1, y1);
      p = v128.load32_splat(wt + 2 * R);
      y0 = madd(p, c0, y0);
      y1 = madd(p, c1, y1);
      p = v128.load32_splat(wt + 3 * R);
      y0 = madd(p, e0, y0);
      y1 = madd(p, e1, y1);
      v128.store(o, y0);
      v128.store(o, y1, 16);
    }
  }
  for (; j < d; j++) {
    const oj = <usize>j * 4;
    const a = load<f32>(r0 + oj), b = load<f32>(r1 + oj), c = load<f32>(r2 + oj), e = load<f32>(r3 + oj);
    for (let t = 0; t < nt; t++) {
      const wt = w + <usize>t * 4;
      const o = out + <usize>t * os + oj;
      let y = load<f32>(o);
      y += load<f32>(wt) * a;
      y += load<f32>(wt + R) * b;
      y += load<f32>(wt + 2 * R) * c;
      y += load<f32>(wt + 3 * R) * e;
      store<f32>(o, y);
    }
  }
}

// The rows of the current block (wasm globals: each instance, hence each thread, has its own; no heap objects,
// the JS side owns all memory above the static data): (b, h, s) of up to 4 query rows, how many exist, the visible
// keys of each (0 for a missing row) and their maximum. Missing rows read a zero row and write a sink row.
let rB: i32 = 0;
let rH0: i32 = 0, rH1: i32 = 0, rH2: i32 = 0, rH3: i32 = 0;
let rS0: i32 = 0, rS1: i32 = 0, rS2: i32 = 0, rS3: i32 = 0;
let rL0: i32 = 0, rL1: i32 = 0, rL2: i32 = 0, rL3: i32 = 0;
let rN: i32 = 0;
let rLmax: i32 = 0;

// @ts-ignore: decorator
@inline function visibleKeys(s: i32, offset: i32, T: i32): i32 {
  return max(0, min(T, s + offset + 1));
}

/** Sets the block to rows [r0, r0+4) of unit u (clipped to the unit's row count). */
function blockRows(desc: usize, u: i32, r0: i32): void {
  const H = field(desc, F_H);
  const S = field(desc, F_S);
  const T = field(desc, F_T);
  const offset = field(desc, F_OFFSET);
  const grouped = field(desc, F_GROUPED) != 0;
  const rows = grouped ? H * S : S;
  rB = grouped ? u : u / H;
  const hu = grouped ? 0 : u % H;
  rN = min(QB, rows - r0);
  let lmax = 0;
  for (let i = 0; i < QB; i++) {
    const ri = r0 + i;
    let h = hu, s = ri, l = 0;
    if (i < rN) {
      if (grouped) {
        h = ri / S;
        s = ri % S;
      }
      l = visibleKeys(s, offset, T);
    } else {
      s = 0;
    }
    if (l > lmax) lmax = l;
    if (i == 0) { rH0 = h; rS0 = s; rL0 = l; }
    else if (i == 1) { rH1 = h; rS1 = s; rL1 = l; }
    else if (i == 2) { rH2 = h; rS2 = s; rL2 = l; }
    else { rH3 = h; rS3 = s; rL3 = l; }
  }
  rLmax = lmax;
}

// Address of row i of the block in operand op, or `pad` for a missing row.
function blockRow(desc: usize, op: i32, i: i32, pad: usize): usize {
  if (i >= rN) return pad;
  if (i == 0) return rowAddr(desc, op, rB, rH0, rS0);
  if (i == 1) return rowAddr(desc, op, rB, rH1, rS1);
  if (i == 2) return rowAddr(desc, op, rB, rH2, rS2);
  return rowAddr(desc, op, rB, rH3, rS3);
}

// @ts-ignore: decorator
@inline function rowLimit(i: i32): i32 {
  return i == 0 ? rL0 : i == 1 ? rL1 : i == 2 ? rL2 : rL3;
}

// Index of the (m, l) pair of row i of the block: (b·H + h)·S + s.
function statIndex(desc: usize, i: i32): usize {
  const H = field(desc, F_H);
  const S = field(desc, F_S);
  const h = i == 0 ? rH0 : i == 1 ? rH1 : i == 2 ? rH2 : rH3;
  const s = i == 0 ? rS0 : i == 1 ? rS1 : i == 2 ? rS2 : rS3;
  return (<usize>(rB * H + h) * <usize>S + <usize>s) * 2;
}

/** Rows per unit: S, or H·S when the keys are shared by the heads. */
function unitRows(desc: usize): i32 {
  return field(desc, F_GROUPED) != 0 ? field(desc, F_H) * field(desc, F_S) : field(desc, F_S);
}

// Scores of the block against keys [t0, t0+nt) into `tile`: τ·(q1·k1 + q2·k2).
function scoreTile(desc: usize, hk: i32, t0: i32, nt: i32, zero: usize, tile: usize): void {
  const d1 = field(desc, F_D1);
  const d2 = field(desc, F_D2);
  const tau = reinterpret<f32>(field(desc, F_TAU));
  dotTile(blockRow(desc, Q1, 0, zero), blockRow(desc, Q1, 1, zero), blockRow(desc, Q1, 2, zero), blockRow(desc, Q1, 3, zero),
    rowAddr(desc, K1, rB, hk, t0), rowStride(desc, K1), d1, nt, tile, false);
  if (d2 > 0) {
    dotTile(blockRow(desc, Q2, 0, zero), blockRow(desc, Q2, 1, zero), blockRow(desc, Q2, 2, zero), blockRow(desc, Q2, 3, zero),
      rowAddr(desc, K2, rB, hk, t0), rowStride(desc, K2), d2, nt, tile, true);
  }
  const vt = f32x4.splat(tau);
  for (let i = 0; i < QB; i++) {
    const row = tile + <usize>(i * KB) * 4;
    let t = 0;
    for (; t + 4 <= nt; t += 4) v128.store(row + <usize>t * 4, f32x4.mul(v128.load(row + <usize>t * 4), vt));
    for (; t < nt; t++) store<f32>(row + <usize>t * 4, load<f32>(row + <usize>t * 4) * tau);
  }
}

// The running (m, l) of the block's 4 rows after blockSoftmax (globals, per instance like the rows).
let bm0: f32 = 0, bm1: f32 = 0, bm2: f32 = 0, bm3: f32 = 0;
let bl0: f64 = 0, bl1: f64 = 0, bl2: f64 = 0, bl3: f64 = 0;

/**
 * Online softmax of the current block's rows over keys [k0, min(k1, rLmax)): o0..o3 (zeroed here) receive
 * Σ_t exp(score − m)·v[t], rescaled by α = exp(m_old − m_new) whenever a row's max grows; (m, l) are left in
 * bm*, bl* (m = −∞, l = 0 for a row that sees none of these keys).
 */
function blockSoftmax(desc: usize, hk: i32, k0: i32, k1: i32, dv: i32, o0: usize, o1: usize, o2: usize, o3: usize, zero: usize, tile: usize): void {
  memory.fill(o0, 0, <usize>dv * 4);
  memory.fill(o1, 0, <usize>dv * 4);
  memory.fill(o2, 0, <usize>dv * 4);
  memory.fill(o3, 0, <usize>dv * 4);
  let m0: f32 = -Infinity, m1: f32 = -Infinity, m2: f32 = -Infinity, m3: f32 = -Infinity;
  let l0: f64 = 0, l1: f64 = 0, l2: f64 = 0, l3: f64 = 0;
  const end = min(k1, rLmax);
  for (let t0 = k0; t0 < end; t0 += KB) {
    const nt = min(KB, end - t0);
    scoreTile(desc, hk, t0, nt, zero, tile);
    // per row: new max, rescale factor α = exp(m_old − m_new), p = exp(score − m_new) (0 where masked)
    let a0: f32 = 1, a1: f32 = 1, a2: f32 = 1, a3: f32 = 1;
    for (let i = 0; i < QB; i++) {
      const row = tile + <usize>(i * KB) * 4;
      const vis = max(0, min(nt, rowLimit(i) - t0));
      let m: f32 = i == 0 ? m0 : i == 1 ? m1 : i == 2 ? m2 : m3;
      let a: f32 = 1;
      let sum: f64 = 0;
      if (vis > 0) {
        let mx: f32 = -Infinity;
        for (let t = 0; t < vis; t++) mx = max(mx, load<f32>(row + <usize>t * 4));
        const mNew = max(m, mx);
        a = f32x4.extract_lane(exp4(f32x4.splat(m - mNew)), 0);
        m = mNew;
        sum = expSum(row, row, vis, m, true); // p = exp(score − m) in place, Σ p in f64
      }
      for (let t = vis; t < nt; t++) store<f32>(row + <usize>t * 4, 0);
      if (i == 0) { m0 = m; a0 = a; l0 = l0 * <f64>a + sum; }
      else if (i == 1) { m1 = m; a1 = a; l1 = l1 * <f64>a + sum; }
      else if (i == 2) { m2 = m; a2 = a; l2 = l2 * <f64>a + sum; }
      else { m3 = m; a3 = a; l3 = l3 * <f64>a + sum; }
    }
    rowsFromKeys(tile, nt, rowAddr(desc, VV, rB, hk, t0), rowStride(desc, VV), dv, o0, o1, o2, o3, a0, a1, a2, a3);
  }
  bm0 = m0; bm1 = m1; bm2 = m2; bm3 = m3;
  bl0 = l0; bl1 = l1; bl2 = l2; bl3 = l3;
}

/** Key chunks of a split forward (0: not split). */
function chunkCount(desc: usize): i32 {
  const chunk = field(desc, F_CHUNK);
  return chunk > 0 ? (field(desc, F_T) + chunk - 1) / chunk : 0;
}

/**
 * Forward: o = softmax(τ·(q1·k1ᵀ + q2·k2ᵀ) + causal mask)·v per query row, and (m, l) per row: m the largest visible
 * scaled score, l = Σ_t exp(score − m) (accumulated in f64, stored f32). A query row with no visible key is not
 * allowed (the JS side checks offset ≥ 0). Not split: work items [w0, w1) are units, or ranges of F_ROW_SPLIT rows of
 * them. Split into key chunks
 * (flash-decoding, for few query rows over many keys): item w is chunk w % chunks of unit w / chunks, whose
 * normalised partial output and (m, l) go to the partial buffer; attentionCombine then merges the chunks in order.
 * Either way each item is computed whole by one caller, so the thread count changes no bit.
 */
export function attentionForward(desc: usize, w0: i32, w1: i32): void {
  const dv = field(desc, F_DV);
  const stats = <usize>field(desc, F_STATS);
  const rows = unitRows(desc);
  const grouped = field(desc, F_GROUPED) != 0;
  const H = field(desc, F_H);
  const chunks = chunkCount(desc);
  const chunk = field(desc, F_CHUNK);
  const partial = <usize>field(desc, F_PARTIAL);
  const tile = scratchBase();
  const zero = tile + 2 * TILE_BYTES;
  const sink = zero + <usize>ATTENTION_MAX_WIDTH * 4;
  memory.fill(zero, 0, <usize>ATTENTION_MAX_WIDTH * 4);
  // rows are independent in the forward: an item may be a range of a unit's rows (whole blocks of 4, so each row is
  // computed exactly as in the whole unit)
  const rowSplit = field(desc, F_ROW_SPLIT);
  const perUnit = chunks > 0 ? chunks : rowSplit > 0 ? (rows + rowSplit - 1) / rowSplit : 1;
  for (let w = w0; w < w1; w++) {
    const u = w / perUnit;
    const part = w % perUnit;
    const k0 = chunks > 0 ? part * chunk : 0;
    const k1 = chunks > 0 ? k0 + chunk : field(desc, F_T);
    const r0 = chunks == 0 && rowSplit > 0 ? part * rowSplit : 0;
    const r1 = chunks == 0 && rowSplit > 0 ? min(rows, r0 + rowSplit) : rows;
    const hk = grouped ? 0 : u % H;
    for (let rb = r0; rb < r1; rb += QB) {
      blockRows(desc, u, rb);
      if (chunks > 0) {
        // partial row r of item w: [o (dv) | m | l]
        const pr = partial + <usize>(w * rows + rb) * <usize>(dv + 2) * 4;
        const ps = <usize>(dv + 2) * 4;
        const p0 = pr, p1 = rN > 1 ? pr + ps : sink, p2 = rN > 2 ? pr + 2 * ps : sink, p3 = rN > 3 ? pr + 3 * ps : sink;
        blockSoftmax(desc, hk, k0, k1, dv, p0, p1, p2, p3, zero, tile);
        finishPartial(0, p0, dv, bm0, bl0);
        finishPartial(1, p1, dv, bm1, bl1);
        finishPartial(2, p2, dv, bm2, bl2);
        finishPartial(3, p3, dv, bm3, bl3);
      } else {
        const o0 = blockRow(desc, OO, 0, sink), o1 = blockRow(desc, OO, 1, sink);
        const o2 = blockRow(desc, OO, 2, sink), o3 = blockRow(desc, OO, 3, sink);
        blockSoftmax(desc, hk, k0, k1, dv, o0, o1, o2, o3, zero, tile);
        finishRow(desc, 0, o0, dv, bm0, bl0, stats);
        finishRow(desc, 1, o1, dv, bm1, bl1, stats);
        finishRow(desc, 2, o2, dv, bm2, bl2, stats);
        finishRow(desc, 3, o3, dv, bm3, bl3, stats);
      }
    }
  }
}

// A chunk's row: o ← o / l (0 where the row sees no key of the chunk), then m and l after it.
function finishPartial(i: i32, p: usize, dv: i32, m: f32, l: f64): void {
  if (i >= rN) return;
  const lf = <f32>l;
  if (lf > 0) {
    const vl = f32x4.splat(lf);
    let j = 0;
    for (; j + 4 <= dv; j += 4) v128.store(p + <usize>j * 4, f32x4.div(v128.load(p + <usize>j * 4), vl));
    for (; j < dv; j++) store<f32>(p + <usize>j * 4, load<f32>(p + <usize>j * 4) / lf);
  }
  store<f32>(p + <usize>dv * 4, m);
  store<f32>(p + <usize>dv * 4, lf, 4);
}

/**
 * Merges the key chunks of a split forward for units [u0, u1), chunks in order: m = max_c m_c,
 * l = Σ_c l_c·exp(m_c − m) (f64), o = Σ_c (l_c·exp(m_c − m)/l)·o_c; writes o and (m, l) as the unsplit forward does.
 */
export function attentionCombine(desc: usize, u0: i32, u1: i32): void {
  const dv = field(desc, F_DV);
  const stats = <usize>field(desc, F_STATS);
  const rows = unitRows(desc);
  const chunks = chunkCount(desc);
  const partial = <usize>field(desc, F_PARTIAL);
  const ps = <usize>(dv + 2) * 4;
  const sink = scratchBase() + 2 * TILE_BYTES + <usize>ATTENTION_MAX_WIDTH * 4;
  for (let u = u0; u < u1; u++) {
    for (let rb = 0; rb < rows; rb += QB) {
      blockRows(desc, u, rb);
      for (let i = 0; i < rN; i++) {
        const r = rb + i;
        // partial row of (u, c, r)
        const p0 = partial + <usize>(u * chunks * rows + r) * ps;
        const pc = <usize>rows * ps;
        let m: f32 = -Infinity;
        for (let c = 0; c < chunks; c++) {
          const p = p0 + <usize>c * pc;
          if (load<f32>(p + <usize>dv * 4, 4) > 0) m = max(m, load<f32>(p + <usize>dv * 4));
        }
        let l: f64 = 0;
        for (let c = 0; c < chunks; c++) {
          const p = p0 + <usize>c * pc;
          const lc = load<f32>(p + <usize>dv * 4, 4);
          if (lc > 0) l += <f64>lc * <f64>f32x4.extract_lane(exp4(f32x4.splat(load<f32>(p + <usize>dv * 4) - m)), 0);
        }
        const o = blockRow(desc, OO, i, sink);
        memory.fill(o, 0, <usize>dv * 4);
        for (let c = 0; c < chunks; c++) {
          const p = p0 + <usize>c * pc;
          const lc = load<f32>(p + <usize>dv * 4, 4);
          if (!(lc > 0)) continue;
          const wc = <f32>(<f64>lc * <f64>f32x4.extract_lane(exp4(f32x4.splat(load<f32>(p + <usize>dv * 4) - m)), 0) / l);
          const vw = f32x4.splat(wc);
          let j = 0;
          for (; j + 4 <= dv; j += 4) v128.store(o + <usize>j * 4, madd(vw, v128.load(p + <usize>j * 4), v128.load(o + <usize>j * 4)));
          for (; j < dv; j++) store<f32>(o + <usize>j * 4, load<f32>(o + <usize>j * 4) + wc * load<f32>(p + <usize>j * 4));
        }
        const k = stats + statIndex(desc, i) * 4;
        store<f32>(k, m);
        store<f32>(k, <f32>l, 4);
      }
    }
  }
}


// o ← o / l and the row's (m, l) (a missing row writes nothing).
function finishRow(desc: usize, i: i32, o: usize, dv: i32, m: f32, l: f64, stats: usize): void {
  if (i >= rN) return;
  const lf = <f32>l;
  const vl = f32x4.splat(lf);
  let j = 0;
  for (; j + 4 <= dv; j += 4) v128.store(o + <usize>j * 4, f32x4.div(v128.load(o + <usize>j * 4), vl));
  for (; j < dv; j++) store<f32>(o + <usize>j * 4, load<f32>(o + <usize>j * 4) / lf);
  const k = stats + statIndex(desc, i) * 4;
  store<f32>(k, m);
  store<f32>(k, lf, 4);
}

/**
 * Backward over units [u0, u1), accumulating into dq1, dq2, dk1, dk2, dv (each unit writes only its own rows of
 * them: the JS side checks that key gradients are not shared across units). Per block of 4 query rows and KB keys:
 * p = exp(score − m)/l recomputed, dP = dO·vᵀ, D = dO·o, dS = τ·p·(dP − D); dv += pᵀ·dO, dk += dSᵀ·q, dq += dS·k.
 */
export function attentionBackward(desc: usize, u0: i32, u1: i32): void {
  const d1 = field(desc, F_D1);
  const d2 = field(desc, F_D2);
  const dv = field(desc, F_DV);
  const tau = reinterpret<f32>(field(desc, F_TAU));
  const stats = <usize>field(desc, F_STATS);
  const rows = unitRows(desc);
  const grouped = field(desc, F_GROUPED) != 0;
  const H = field(desc, F_H);
  const tile = scratchBase();
  const dtile = tile + TILE_BYTES;
  const zero = tile + 2 * TILE_BYTES;
  const sink = zero + <usize>ATTENTION_MAX_WIDTH * 4;
  memory.fill(zero, 0, <usize>ATTENTION_MAX_WIDTH * 4);
  for (let u = u0; u < u1; u++) {
    const hk = grouped ? 0 : u % H;
    for (let rb = 0; rb < rows; rb += QB) {
      blockRows(desc, u, rb);
      const g0 = blockRow(desc, DO, 0, zero), g1 = blockRow(desc, DO, 1, zero);
      const g2 = blockRow(desc, DO, 2, zero), g3 = blockRow(desc, DO, 3, zero);
      // D_i = dO_i·o_i
      const D0 = dot(g0, blockRow(desc, OO, 0, zero), dv), D1 = dot(g1, blockRow(desc, OO, 1, zero), dv);
      const D2 = dot(g2, blockRow(desc, OO, 2, zero), dv), D3 = dot(g3, blockRow(desc, OO, 3, zero), dv);
      for (let t0 = 0; t0 < rLmax; t0 += KB) {
        const nt = min(KB, rLmax - t0);
        scoreTile(desc, hk, t0, nt, zero, tile);
        // dP = dO·vᵀ
        dotTile(g0, g1, g2, g3, rowAddr(desc, VV, rB, hk, t0), rowStride(desc, VV), dv, nt, dtile, false);
        for (let i = 0; i < QB; i++) {
          const row = tile + <usize>(i * KB) * 4;
          const drow = dtile + <usize>(i * KB) * 4;
          const vis = max(0, min(nt, rowLimit(i) - t0));
          if (vis > 0) {
            const k = stats + statIndex(desc, i) * 4;
            const m = load<f32>(k);
            const l = load<f32>(k, 4);
            const D = i == 0 ? D0 : i == 1 ? D1 : i == 2 ? D2 : D3;
            gradRow(row, drow, vis, m, l, D, tau);
          }
          for (let t = vis; t < nt; t++) {
            store<f32>(row + <usize>t * 4, 0);
            store<f32>(drow + <usize>t * 4, 0);
          }
        }
        // dv_t += Σ_i p[i,t]·dO_i;  dk_t += Σ_i dS[i,t]·q_i;  dq_i += Σ_t dS[i,t]·k_t
        keysFromRows(tile, nt, g0, g1, g2, g3, dv, rowAddr(desc, DV, rB, hk, t0), rowStride(desc, DV));
        keysFromRows(dtile, nt, blockRow(desc, Q1, 0, zero), blockRow(desc, Q1, 1, zero), blockRow(desc, Q1, 2, zero), blockRow(desc, Q1, 3, zero),
          d1, rowAddr(desc, DK1, rB, hk, t0), rowStride(desc, DK1));
        rowsFromKeys(dtile, nt, rowAddr(desc, K1, rB, hk, t0), rowStride(desc, K1), d1,
          blockRow(desc, DQ1, 0, sink), blockRow(desc, DQ1, 1, sink), blockRow(desc, DQ1, 2, sink), blockRow(desc, DQ1, 3, sink), 1, 1, 1, 1);
        if (d2 > 0) {
          keysFromRows(dtile, nt, blockRow(desc, Q2, 0, zero), blockRow(desc, Q2, 1, zero), blockRow(desc, Q2, 2, zero), blockRow(desc, Q2, 3, zero),
            d2, rowAddr(desc, DK2, rB, hk, t0), rowStride(desc, DK2));
          rowsFromKeys(dtile, nt, rowAddr(desc, K2, rB, hk, t0), rowStride(desc, K2), d2,
            blockRow(desc, DQ2, 0, sink), blockRow(desc, DQ2, 1, sink), blockRow(desc, DQ2, 2, sink), blockRow(desc, DQ2, 3, sink), 1, 1, 1, 1);
        }
      }
    }
  }
}

// One row of the backward tile: p = exp(score − m)/l into `row`, dS = τ·p·(dP − D) into `drow`, for t < n.
function gradRow(row: usize, drow: usize, n: i32, m: f32, l: f32, D: f32, tau: f32): void {
  const vm = f32x4.splat(m), vl = f32x4.splat(l), vD = f32x4.splat(D), vt = f32x4.splat(tau);
  let t = 0;
  for (; t + 4 <= n; t += 4) {
    const o = <usize>t * 4;
    const p = f32x4.div(exp4(f32x4.sub(v128.load(row + o), vm)), vl);
    v128.store(row + o, p);
    v128.store(drow + o, f32x4.mul(f32x4.mul(p, f32x4.sub(v128.load(drow + o), vD)), vt));
  }
  for (; t < n; t++) {
    const o = <usize>t * 4;
    const p = f32x4.extract_lane(exp4(f32x4.splat(load<f32>(row + o) - m)), 0) / l;
    store<f32>(row + o, p);
    store<f32>(drow + o, p * (load<f32>(drow + o) - D) * tau);
  }
}
