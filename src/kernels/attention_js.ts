/**
 * Fused causal attention in plain TypeScript: the readable definition of the wasm kernels (assembly/attention.ts)
 * and their test oracle, generic over f32/f64. Each query row is computed on its own, in doubles, and rounded once
 * when stored: scores over the visible keys, their max m and l = Σ exp(score − m), then o = Σ_t exp(score − m)·v / l.
 * The backward recomputes the probabilities from (m, l), as the wasm kernel does. `checkAttention` is the one
 * validation both implementations run.
 */
import { InputError, ShapeError } from '../errors.js';
import type { FloatArray } from '../tensor.js';
import type { AttentionGrads, AttentionInputs, AttentionShape, AttnOperand } from './kernels.js';

/** How a validated call is cut into units: one per (b, h), or one per b when the keys are shared by the heads. */
export interface AttentionPlan {
  /** Keys and values shared by the heads (k1, k2, v all have sh = 0): units are batch rows with H·S query rows. */
  grouped: boolean;
  units: number;
}

/** Data index of element (b, h, i, 0) of a view. */
export function at(x: AttnOperand, b: number, h: number, i: number): number {
  return x.off + b * x.sb + h * x.sh + i * x.ss;
}

function checkView(kernel: string, name: string, x: AttnOperand, B: number, H: number, rows: number, width: number): void {
  for (const k of ['off', 'sb', 'sh', 'ss'] as const) {
    if (!Number.isInteger(x[k]) || x[k] < 0) throw new ShapeError(`${kernel}: '${name}'.${k} must be a non-negative integer, got ${x[k]}`);
  }
  if (width === 0) return;
  const last = at(x, B - 1, H - 1, rows - 1) + width - 1;
  if (last >= x.data.length) {
    throw new ShapeError(`${kernel}: '${name}' reaches index ${last} ([${B}, ${H}, ${rows}, ${width}] at off ${x.off}, strides ${x.sb}/${x.sh}/${x.ss}) but has ${x.data.length} elements`);
  }
}

// Distinct rows for distinct (b, h, i) along every axis that has more than one entry.
function checkDistinct(kernel: string, name: string, x: AttnOperand, B: number, H: number, rows: number, sharedHeads: boolean): void {
  if ((B > 1 && x.sb === 0) || (H > 1 && x.sh === 0 && !sharedHeads) || (rows > 1 && x.ss === 0)) {
    throw new ShapeError(`${kernel}: output '${name}' has a zero stride (sb ${x.sb}, sh ${x.sh}, ss ${x.ss}) along an axis of length > 1: its rows would overlap`);
  }
}

/** Validates one attention call (shapes, bounds, the causal offset, output layouts); returns how it is cut into units. */
export function checkAttention(
  kernel: string,
  shape: AttentionShape,
  x: AttentionInputs,
  o: AttnOperand,
  stats: FloatArray,
  dO?: AttnOperand,
  grads?: AttentionGrads,
): AttentionPlan {
  const { B, H, S, T, d1, d2, dv, tau, offset } = shape;
  for (const [k, v] of Object.entries({ B, H, S, T, dv })) {
    if (!Number.isInteger(v) || v < 1) throw new ShapeError(`${kernel}: ${k} must be a positive integer, got ${v}`);
  }
  for (const [k, v] of Object.entries({ d1, d2 })) {
    if (!Number.isInteger(v) || v < 0) throw new ShapeError(`${kernel}: ${k} must be a non-negative integer, got ${v}`);
  }
  if (d1 + d2 < 1) throw new ShapeError(`${kernel}: the score width d1 + d2 is 0`);
  if (!Number.isFinite(tau)) throw new InputError(`${kernel}: the scale τ must be finite, got ${tau}`);
  if (!Number.isInteger(offset) || offset < 0) {
    throw new InputError(`${kernel}: offset must be a non-negative integer (key t is visible from query s iff t ≤ s + offset; query 0 must see key 0), got ${offset}`);
  }
  checkView(kernel, 'q1', x.q1, B, H, S, d1);
  checkView(kernel, 'q2', x.q2, B, H, S, d2);
  checkView(kernel, 'k1', x.k1, B, H, T, d1);
  checkView(kernel, 'k2', x.k2, B, H, T, d2);
  checkView(kernel, 'v', x.v, B, H, T, dv);
  checkView(kernel, 'o', o, B, H, S, dv);
  if (stats.length < 2 * B * H * S) throw new ShapeError(`${kernel}: 'stats' has ${stats.length} elements, the call needs 2·B·H·S = ${2 * B * H * S}`);
  const grouped = x.k1.sh === 0 && (d2 === 0 || x.k2.sh === 0) && x.v.sh === 0;
  if (dO === undefined) checkDistinct(kernel, 'o', o, B, H, S, false);
  if (dO !== undefined && grads !== undefined) {
    checkView(kernel, 'dO', dO, B, H, S, dv);
    checkView(kernel, 'dq1', grads.q1, B, H, S, d1);
    checkView(kernel, 'dq2', grads.q2, B, H, S, d2);
    checkView(kernel, 'dk1', grads.k1, B, H, T, d1);
    checkView(kernel, 'dk2', grads.k2, B, H, T, d2);
    checkView(kernel, 'dv', grads.v, B, H, T, dv);
    checkDistinct(kernel, 'dq1', grads.q1, B, H, S, false);
    if (d2 > 0) checkDistinct(kernel, 'dq2', grads.q2, B, H, S, false);
    // a key gradient shared by the heads needs units that hold every head (grouped)
    checkDistinct(kernel, 'dk1', grads.k1, B, H, T, grouped);
    if (d2 > 0) checkDistinct(kernel, 'dk2', grads.k2, B, H, T, grouped);
    checkDistinct(kernel, 'dv', grads.v, B, H, T, grouped);
  }
  return { grouped, units: grouped ? B : B * H };
}

/** Keys visible from query s: t < min(T, s + offset + 1). */
export function visibleKeys(s: number, offset: number, T: number): number {
  return Math.max(0, Math.min(T, s + offset + 1));
}

function dot(a: FloatArray, ia: number, b: FloatArray, ib: number, n: number): number {
  let s = 0;
  for (let j = 0; j < n; j++) s += a[ia + j]! * b[ib + j]!;
  return s;
}

/** The scaled scores of query (b, h, s) against keys t < lim: τ·(q1·k1 + q2·k2), in doubles. */
function scoreRow(shape: AttentionShape, x: AttentionInputs, b: number, h: number, s: number, lim: number): Float64Array {
  const { d1, d2, tau } = shape;
  const a = new Float64Array(lim);
  const i1 = at(x.q1, b, h, s);
  const i2 = at(x.q2, b, h, s);
  for (let t = 0; t < lim; t++) {
    a[t] = tau * (dot(x.q1.data, i1, x.k1.data, at(x.k1, b, h, t), d1) + dot(x.q2.data, i2, x.k2.data, at(x.k2, b, h, t), d2));
  }
  return a;
}

/** See {@link Kernels.attentionForward}. */
export function attentionForward<T extends FloatArray>(shape: AttentionShape, x: AttentionInputs<T>, o: AttnOperand<T>, stats: T): void {
  checkAttention('attentionForward', shape, x, o, stats);
  const { B, H, S, T, dv, offset } = shape;
  const acc = new Float64Array(dv);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      for (let s = 0; s < S; s++) {
        const lim = visibleKeys(s, offset, T);
        const a = scoreRow(shape, x, b, h, s, lim);
        let m = -Infinity;
        for (let t = 0; t < lim; t++) m = Math.max(m, a[t]!);
        let l = 0;
        acc.fill(0);
        for (let t = 0; t < lim; t++) {
          const p = Math.exp(a[t]! - m);
          l += p;
          const iv = at(x.v, b, h, t);
          for (let j = 0; j < dv; j++) acc[j] = acc[j]! + p * x.v.data[iv + j]!;
        }
        const io = at(o, b, h, s);
        for (let j = 0; j < dv; j++) o.data[io + j] = acc[j]! / l;
        const r = (b * H + h) * S + s;
        stats[2 * r] = m;
        stats[2 * r + 1] = l;
      }
    }
  }
}

/** See {@link Kernels.attentionBackward}. */
export function attentionBackward<T extends FloatArray>(
  shape: AttentionShape,
  x: AttentionInputs<T>,
  o: AttnOperand<T>,
  stats: T,
  dO: AttnOperand<T>,
  grads: AttentionGrads<T>,
): void {
  checkAttention('attentionBackward', shape, x, o, stats, dO, grads);
  const { B, H, S, T, d1, d2, dv, tau, offset } = shape;
  const dq1 = new Float64Array(d1);
  const dq2 = new Float64Array(d2);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      for (let s = 0; s < S; s++) {
        const lim = visibleKeys(s, offset, T);
        const a = scoreRow(shape, x, b, h, s, lim);
        const r = (b * H + h) * S + s;
        const m = stats[2 * r]!;
        const l = stats[2 * r + 1]!;
        const ig = at(dO, b, h, s);
        const D = dot(dO.data, ig, o.data, at(o, b, h, s), dv);
        const i1 = at(x.q1, b, h, s);
        const i2 = at(x.q2, b, h, s);
        dq1.fill(0);
        dq2.fill(0);
        for (let t = 0; t < lim; t++) {
          const p = Math.exp(a[t]! - m) / l;
          const iv = at(x.v, b, h, t);
          const dS = tau * p * (dot(dO.data, ig, x.v.data, iv, dv) - D);
          addScaled(grads.v, b, h, t, p, dO.data, ig, dv);
          addScaled(grads.k1, b, h, t, dS, x.q1.data, i1, d1);
          addScaled(grads.k2, b, h, t, dS, x.q2.data, i2, d2);
          const k1 = at(x.k1, b, h, t);
          const k2 = at(x.k2, b, h, t);
          for (let j = 0; j < d1; j++) dq1[j] = dq1[j]! + dS * x.k1.data[k1 + j]!;
          for (let j = 0; j < d2; j++) dq2[j] = dq2[j]! + dS * x.k2.data[k2 + j]!;
        }
        addRow(grads.q1, b, h, s, dq1);
        addRow(grads.q2, b, h, s, dq2);
      }
    }
  }
}

// g[b,h,t,:] += α·src[i..i+n)
function addScaled(g: AttnOperand, b: number, h: number, t: number, alpha: number, src: FloatArray, i: number, n: number): void {
  const ig = at(g, b, h, t);
  for (let j = 0; j < n; j++) g.data[ig + j] = g.data[ig + j]! + alpha * src[i + j]!;
}

// g[b,h,s,:] += acc
function addRow(g: AttnOperand, b: number, h: number, s: number, acc: Float64Array): void {
  const ig = at(g, b, h, s);
  for (let j = 0; j < acc.length; j++) g.data[ig + j] = g.data[ig + j]! + acc[j]!;
}
