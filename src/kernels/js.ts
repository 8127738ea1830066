import { InputError } from '../errors.js';
import type { FloatArray } from '../tensor.js';
import { attentionBackward, attentionForward } from './attention_js.js';
import type { AdamWParams, Kernels, MatmulLayout } from './kernels.js';

/**
 * The plain-TypeScript kernels: the readable definition of every kernel and the oracle the
 * wasm kernels are tested against. Generic over f32/f64: sums are accumulated in JavaScript
 * doubles and rounded once when stored, so the f32 result is the correctly rounded value of
 * a double-precision sum (the wasm kernels accumulate in f32 and are compared with a
 * tolerance that grows with the reduction length).
 */

/** C[M,N] (+)= op(A)·op(B); see MatmulLayout. */
function matmul<T extends FloatArray>(
  layout: MatmulLayout,
  a: T,
  b: T,
  c: T,
  m: number,
  n: number,
  k: number,
  accumulate = false,
): void {
  matmulAt(layout, a, 0, b, 0, c, 0, m, n, k, accumulate);
}

function matmulAt(
  layout: MatmulLayout,
  a: FloatArray,
  aOff: number,
  b: FloatArray,
  bOff: number,
  c: FloatArray,
  cOff: number,
  m: number,
  n: number,
  k: number,
  accumulate: boolean,
): void {
  const row = new Float64Array(n);
  for (let i = 0; i < m; i++) {
    row.fill(0);
    if (layout === 'nt') {
      // C[i,j] = Σ_p A[i,p]·B[j,p]
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let p = 0; p < k; p++) s += a[aOff + i * k + p]! * b[bOff + j * k + p]!;
        row[j] = s;
      }
    } else {
      // 'nn': C[i,j] = Σ_p A[i,p]·B[p,j];  'tn': C[i,j] = Σ_p A[p,i]·B[p,j]
      for (let p = 0; p < k; p++) {
        const aip = layout === 'nn' ? a[aOff + i * k + p]! : a[aOff + p * m + i]!;
        const bRow = bOff + p * n;
        for (let j = 0; j < n; j++) row[j]! += aip * b[bRow + j]!;
      }
    }
    const cRow = cOff + i * n;
    for (let j = 0; j < n; j++) c[cRow + j] = accumulate ? c[cRow + j]! + row[j]! : row[j]!;
  }
}

function matmulBatched<T extends FloatArray>(
  layout: MatmulLayout,
  a: T,
  b: T,
  c: T,
  batch: number,
  m: number,
  n: number,
  k: number,
  accumulate = false,
  bStride = k * n,
): void {
  for (let i = 0; i < batch; i++) {
    matmulAt(layout, a, i * m * k, b, i * bStride, c, i * m * n, m, n, k, accumulate);
  }
}

function softmaxForward<T extends FloatArray>(x: T, y: T, rows: number, cols: number): void {
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let max = -Infinity;
    for (let j = 0; j < cols; j++) max = Math.max(max, x[o + j]!);
    if (max === -Infinity) throw new InputError(`softmax row ${r}: every entry is -Infinity`);
    let sum = 0;
    for (let j = 0; j < cols; j++) {
      const e = Math.exp(x[o + j]! - max);
      y[o + j] = e;
      sum += e;
    }
    // normalise from the stored values so a row of y sums to 1 to within rounding
    for (let j = 0; j < cols; j++) y[o + j] = y[o + j]! / sum;
  }
}

function softmaxBackward<T extends FloatArray>(y: T, dy: T, dx: T, rows: number, cols: number): void {
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let dot = 0;
    for (let j = 0; j < cols; j++) dot += dy[o + j]! * y[o + j]!;
    for (let j = 0; j < cols; j++) dx[o + j] = dx[o + j]! + y[o + j]! * (dy[o + j]! - dot);
  }
}

function rmsnormForward<T extends FloatArray>(x: T, w: T, y: T, rstd: T, rows: number, cols: number, eps: number): void {
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let ss = 0;
    for (let j = 0; j < cols; j++) ss += x[o + j]! * x[o + j]!;
    rstd[r] = 1 / Math.sqrt(ss / cols + eps);
    const s = rstd[r]!;
    for (let j = 0; j < cols; j++) y[o + j] = w[j]! * (x[o + j]! * s);
  }
}

function rmsnormBackward<T extends FloatArray>(x: T, w: T, rstd: T, dy: T, dx: T, dw: T, rows: number, cols: number): void {
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    const s = rstd[r]!;
    // y_j = w_j x_j s, s = (mean x² + eps)^(-1/2):  dx_i = s·w_i dy_i − s³/cols · x_i · Σ_j dy_j w_j x_j
    let dot = 0;
    for (let j = 0; j < cols; j++) dot += dy[o + j]! * w[j]! * x[o + j]!;
    const c = (s * s * s * dot) / cols;
    for (let j = 0; j < cols; j++) {
      dx[o + j] = dx[o + j]! + s * w[j]! * dy[o + j]! - c * x[o + j]!;
      dw[j] = dw[j]! + dy[o + j]! * x[o + j]! * s;
    }
  }
}

const sigmoid = (z: number): number => 1 / (1 + Math.exp(-z));

function swigluForward<T extends FloatArray>(a: T, b: T, y: T, n: number): void {
  for (let i = 0; i < n; i++) y[i] = a[i]! * sigmoid(a[i]!) * b[i]!;
}

function swigluBackward<T extends FloatArray>(a: T, b: T, dy: T, da: T, db: T, n: number): void {
  for (let i = 0; i < n; i++) {
    const z = a[i]!;
    const sg = sigmoid(z);
    da[i] = da[i]! + dy[i]! * b[i]! * sg * (1 + z * (1 - sg));
    db[i] = db[i]! + dy[i]! * z * sg;
  }
}

function rope<T extends FloatArray>(
  x: T,
  y: T,
  cos: T,
  sin: T,
  pos: Int32Array,
  rows: number,
  dim: number,
  inverse: boolean,
): void {
  const half = dim / 2;
  const sign = inverse ? -1 : 1;
  for (let r = 0; r < rows; r++) {
    const o = r * dim;
    const t = pos[r]! * half;
    for (let i = 0; i < half; i++) {
      const c = cos[t + i]!;
      const s = sign * sin[t + i]!;
      const x0 = x[o + 2 * i]!;
      const x1 = x[o + 2 * i + 1]!;
      y[o + 2 * i] = x0 * c - x1 * s;
      y[o + 2 * i + 1] = x0 * s + x1 * c;
    }
  }
}

/** max and log Σ exp(x − max) of one row, in double precision. */
function logSumExp(x: FloatArray, o: number, cols: number): { max: number; lse: number } {
  let max = -Infinity;
  for (let j = 0; j < cols; j++) max = Math.max(max, x[o + j]!);
  let sum = 0;
  for (let j = 0; j < cols; j++) sum += Math.exp(x[o + j]! - max);
  return { max, lse: Math.log(sum) };
}

function checkTarget(t: number, r: number, vocab: number): void {
  if (!Number.isInteger(t) || t < 0 || t >= vocab) throw new InputError(`cross-entropy row ${r}: target ${t} outside [0, ${vocab})`);
}

function crossEntropyForward<T extends FloatArray>(
  logits: T,
  targets: Int32Array,
  losses: T,
  rows: number,
  vocab: number,
  ignoreIndex: number,
): { sum: number; count: number } {
  let sum = 0;
  let count = 0;
  for (let r = 0; r < rows; r++) {
    const t = targets[r]!;
    if (t === ignoreIndex) {
      losses[r] = 0;
      continue;
    }
    checkTarget(t, r, vocab);
    const o = r * vocab;
    const { max, lse } = logSumExp(logits, o, vocab);
    // −log softmax(x)[t] = log Σ exp(x − max) − (x_t − max)
    const loss = lse - (logits[o + t]! - max);
    losses[r] = loss;
    sum += loss;
    count++;
  }
  return { sum, count };
}

function crossEntropyBackward<T extends FloatArray>(
  logits: T,
  targets: Int32Array,
  dlogits: T,
  rows: number,
  vocab: number,
  ignoreIndex: number,
  scale: number,
): void {
  for (let r = 0; r < rows; r++) {
    const t = targets[r]!;
    if (t === ignoreIndex) continue;
    checkTarget(t, r, vocab);
    const o = r * vocab;
    const { max, lse } = logSumExp(logits, o, vocab);
    // ∂L/∂x_j = softmax_j − [j = t]
    for (let j = 0; j < vocab; j++) {
      const p = Math.exp(logits[o + j]! - max - lse);
      dlogits[o + j] = dlogits[o + j]! + scale * (p - (j === t ? 1 : 0));
    }
  }
}

function adamw<T extends FloatArray>(param: T, grad: T, m: T, v: T, n: number, p: AdamWParams): void {
  const bc1 = 1 - Math.pow(p.beta1, p.step);
  const bc2Sqrt = Math.sqrt(1 - Math.pow(p.beta2, p.step));
  const stepSize = p.lr / bc1;
  for (let i = 0; i < n; i++) {
    const g = grad[i]!;
    // decoupled decay with the current lr: θ ← θ·(1 − lr·wd)
    param[i] = param[i]! * (1 - p.lr * p.weightDecay);
    m[i] = p.beta1 * m[i]! + (1 - p.beta1) * g;
    v[i] = p.beta2 * v[i]! + (1 - p.beta2) * g * g;
    // torch: denom = sqrt(v)/sqrt(1−β₂ᵗ) + eps (eps after the bias correction)
    const denom = Math.sqrt(v[i]!) / bc2Sqrt + p.eps;
    param[i] = param[i]! - (stepSize * m[i]!) / denom;
  }
}

function exp<T extends FloatArray>(x: T, y: T, n: number): void {
  for (let i = 0; i < n; i++) y[i] = Math.exp(x[i]!);
}

function add<T extends FloatArray>(a: T, b: T, out: T, n: number): void {
  for (let i = 0; i < n; i++) out[i] = a[i]! + b[i]!;
}

function scale<T extends FloatArray>(x: T, alpha: number, n: number): void {
  for (let i = 0; i < n; i++) x[i] = x[i]! * alpha;
}

function axpy<T extends FloatArray>(alpha: number, x: T, y: T, n: number): void {
  for (let i = 0; i < n; i++) y[i] = y[i]! + alpha * x[i]!;
}

/** The plain-TypeScript kernels (f32 and f64). */
export const jsKernels: Kernels = {
  name: 'js',
  matmul,
  matmulBatched,
  softmaxForward,
  softmaxBackward,
  rmsnormForward,
  rmsnormBackward,
  swigluForward,
  swigluBackward,
  rope,
  crossEntropyForward,
  crossEntropyBackward,
  attentionForward,
  attentionBackward,
  adamw,
  exp,
  add,
  scale,
  axpy,
};
