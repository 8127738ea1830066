// Row-wise kernels over f32 matrices [rows, cols] at byte addresses: softmax, RMSNorm and
// log-softmax cross-entropy. Reductions run 4 lanes wide in f32 unless a comment says f64.
// exp is the four-lane exp4 of vmath.ts (≤ 1 ulp); the tails of the loops use the same arithmetic.
import { exp1, exp4 } from './vmath';

// @ts-ignore: decorator
@inline function hsum(v: v128): f32 {
  return f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1) + f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3);
}

function rowMax(x: usize, cols: i32): f32 {
  let vm = f32x4.splat(-Infinity);
  let j = 0;
  for (; j + 4 <= cols; j += 4) vm = f32x4.max(vm, v128.load(x + <usize>j * 4));
  let mx = max(max(f32x4.extract_lane(vm, 0), f32x4.extract_lane(vm, 1)), max(f32x4.extract_lane(vm, 2), f32x4.extract_lane(vm, 3)));
  for (; j < cols; j++) mx = max(mx, load<f32>(x + <usize>j * 4));
  return mx;
}

// Σ_j y[j] of one row accumulated in f64 (two f64x2 lanes pairs, then the tail): exact to far below f32 rounding.
// With `store` = true, y[j] = exp(x[j] − mx) is also written out.
// @ts-ignore: decorator
@inline export function expSum(x: usize, y: usize, cols: i32, mx: f32, write: bool): f64 {
  const vmx = f32x4.splat(mx);
  let s0 = f64x2.splat(0);
  let s1 = f64x2.splat(0);
  let j = 0;
  for (; j + 4 <= cols; j += 4) {
    const e = exp4(f32x4.sub(v128.load(x + <usize>j * 4), vmx));
    if (write) v128.store(y + <usize>j * 4, e);
    s0 = f64x2.add(s0, f64x2.promote_low_f32x4(e));
    s1 = f64x2.add(s1, f64x2.promote_low_f32x4(v128.shuffle<f32>(e, e, 2, 3, 2, 3)));
  }
  let sum = f64x2.extract_lane(s0, 0) + f64x2.extract_lane(s1, 0) + f64x2.extract_lane(s0, 1) + f64x2.extract_lane(s1, 1);
  for (; j < cols; j++) {
    const e = exp1(load<f32>(x + <usize>j * 4) - mx);
    if (write) store<f32>(y + <usize>j * 4, e);
    sum += e;
  }
  return sum;
}

/**
 * y[r,:] = softmax(x[r,:]), max-subtracted; returns -1, or the first row whose entries are
 * all -Infinity (the JS side turns that into an error).
 */
export function softmaxForward(x: usize, y: usize, rows: i32, cols: i32): i32 {
  for (let r = 0; r < rows; r++) {
    const xr = x + <usize>r * cols * 4;
    const yr = y + <usize>r * cols * 4;
    const mx = rowMax(xr, cols);
    if (mx == -Infinity) return r;
    const s = <f32>expSum(xr, yr, cols, mx, true); // f64 sum: the row total is exact to well below f32 rounding
    const vs = f32x4.splat(s);
    let j = 0;
    for (; j + 4 <= cols; j += 4) v128.store(yr + <usize>j * 4, f32x4.div(v128.load(yr + <usize>j * 4), vs));
    for (; j < cols; j++) store<f32>(yr + <usize>j * 4, load<f32>(yr + <usize>j * 4) / s);
  }
  return -1;
}

/** dx[r,j] += y[r,j]·(dy[r,j] − Σ_i dy[r,i]·y[r,i]). */
export function softmaxBackward(y: usize, dy: usize, dx: usize, rows: i32, cols: i32): void {
  for (let r = 0; r < rows; r++) {
    const o = <usize>r * cols * 4;
    let acc = f32x4.splat(0);
    let j = 0;
    for (; j + 4 <= cols; j += 4) acc = f32x4.add(acc, f32x4.mul(v128.load(dy + o + <usize>j * 4), v128.load(y + o + <usize>j * 4)));
    let dot = hsum(acc);
    for (; j < cols; j++) dot += load<f32>(dy + o + <usize>j * 4) * load<f32>(y + o + <usize>j * 4);
    const vdot = f32x4.splat(dot);
    j = 0;
    for (; j + 4 <= cols; j += 4) {
      const q = o + <usize>j * 4;
      v128.store(dx + q, f32x4.add(v128.load(dx + q), f32x4.mul(v128.load(y + q), f32x4.sub(v128.load(dy + q), vdot))));
    }
    for (; j < cols; j++) {
      const q = o + <usize>j * 4;
      store<f32>(dx + q, load<f32>(dx + q) + load<f32>(y + q) * (load<f32>(dy + q) - dot));
    }
  }
}

/** y[r,j] = w[j]·(x[r,j]·rstd[r]), rstd[r] = 1/sqrt(mean_j x[r,j]² + eps), all in f32 (SPEC §3.2). */
export function rmsnormForward(x: usize, w: usize, y: usize, rstd: usize, rows: i32, cols: i32, eps: f32): void {
  for (let r = 0; r < rows; r++) {
    const o = <usize>r * cols * 4;
    let acc = f32x4.splat(0);
    let j = 0;
    for (; j + 4 <= cols; j += 4) {
      const v = v128.load(x + o + <usize>j * 4);
      acc = f32x4.add(acc, f32x4.mul(v, v));
    }
    let ss = hsum(acc);
    for (; j < cols; j++) {
      const v = load<f32>(x + o + <usize>j * 4);
      ss += v * v;
    }
    const s: f32 = 1 / Mathf.sqrt(ss / <f32>cols + eps);
    store<f32>(rstd + <usize>r * 4, s);
    const vs = f32x4.splat(s);
    j = 0;
    for (; j + 4 <= cols; j += 4) {
      const q = o + <usize>j * 4;
      v128.store(y + q, f32x4.mul(v128.load(w + <usize>j * 4), f32x4.mul(v128.load(x + q), vs)));
    }
    for (; j < cols; j++) {
      const q = o + <usize>j * 4;
      store<f32>(y + q, load<f32>(w + <usize>j * 4) * (load<f32>(x + q) * s));
    }
  }
}

/**
 * Backward of y = w⊙x·s, s = (mean x² + eps)^(-1/2):
 * dx_i += s·w_i·dy_i − s³/cols · x_i · Σ_j dy_j w_j x_j;  dw_i += dy_i·x_i·s.
 */
export function rmsnormBackward(x: usize, w: usize, rstd: usize, dy: usize, dx: usize, dw: usize, rows: i32, cols: i32): void {
  for (let r = 0; r < rows; r++) {
    const o = <usize>r * cols * 4;
    const s = load<f32>(rstd + <usize>r * 4);
    let acc = f32x4.splat(0);
    let j = 0;
    for (; j + 4 <= cols; j += 4) {
      const q = o + <usize>j * 4;
      acc = f32x4.add(acc, f32x4.mul(f32x4.mul(v128.load(dy + q), v128.load(w + <usize>j * 4)), v128.load(x + q)));
    }
    let dot = hsum(acc);
    for (; j < cols; j++) {
      const q = o + <usize>j * 4;
      dot += load<f32>(dy + q) * load<f32>(w + <usize>j * 4) * load<f32>(x + q);
    }
    const c: f32 = (s * s * s * dot) / <f32>cols;
    const vs = f32x4.splat(s);
    const vc = f32x4.splat(c);
    j = 0;
    for (; j + 4 <= cols; j += 4) {
      const q = o + <usize>j * 4;
      const wq = w + <usize>j * 4;
      const dwq = dw + <usize>j * 4;
      const xv = v128.load(x + q);
      const dyv = v128.load(dy + q);
      v128.store(dx + q, f32x4.sub(f32x4.add(v128.load(dx + q), f32x4.mul(f32x4.mul(vs, v128.load(wq)), dyv)), f32x4.mul(vc, xv)));
      v128.store(dwq, f32x4.add(v128.load(dwq), f32x4.mul(f32x4.mul(dyv, xv), vs)));
    }
    for (; j < cols; j++) {
      const q = o + <usize>j * 4;
      const wq = w + <usize>j * 4;
      const dwq = dw + <usize>j * 4;
      const xv = load<f32>(x + q);
      const dyv = load<f32>(dy + q);
      store<f32>(dx + q, load<f32>(dx + q) + s * load<f32>(wq) * dyv - c * xv);
      store<f32>(dwq, load<f32>(dwq) + dyv * xv * s);
    }
  }
}

// log Σ_j exp(x_j − max) of one row, given its max; the sum is accumulated in f64.
function rowLogSumExp(x: usize, cols: i32, mx: f32): f32 {
  return <f32>Math.log(expSum(x, 0, cols, mx, false));
}

/**
 * losses[r] = −log softmax(logits[r,:])[t_r] = lse − (x_t − max), 0 for rows whose target is
 * `ignoreIndex`. Targets were range-checked on the JS side.
 */
export function crossEntropyForward(logits: usize, targets: usize, losses: usize, rows: i32, vocab: i32, ignoreIndex: i32): void {
  for (let r = 0; r < rows; r++) {
    const t = load<i32>(targets + <usize>r * 4);
    if (t == ignoreIndex) {
      store<f32>(losses + <usize>r * 4, 0);
      continue;
    }
    const xr = logits + <usize>r * vocab * 4;
    const mx = rowMax(xr, vocab);
    const lse = rowLogSumExp(xr, vocab, mx);
    store<f32>(losses + <usize>r * 4, lse - (load<f32>(xr + <usize>t * 4) - mx));
  }
}

/** dlogits[r,j] += scale·(softmax(logits[r,:])_j − [j = t_r]) for non-ignored rows. */
export function crossEntropyBackward(logits: usize, targets: usize, dlogits: usize, rows: i32, vocab: i32, ignoreIndex: i32, scale: f32): void {
  const vscale = f32x4.splat(scale);
  for (let r = 0; r < rows; r++) {
    const t = load<i32>(targets + <usize>r * 4);
    if (t == ignoreIndex) continue;
    const o = <usize>r * vocab * 4;
    const mx = rowMax(logits + o, vocab);
    const shift = mx + rowLogSumExp(logits + o, vocab, mx);
    const vshift = f32x4.splat(shift);
    // every column gets scale·p; the target's element is then redone as d₀ + scale·(p − 1)
    const qt = o + <usize>t * 4;
    const dTarget = load<f32>(dlogits + qt);
    let j = 0;
    for (; j + 4 <= vocab; j += 4) {
      const q = o + <usize>j * 4;
      const p = exp4(f32x4.sub(v128.load(logits + q), vshift));
      v128.store(dlogits + q, f32x4.add(v128.load(dlogits + q), f32x4.mul(vscale, p)));
    }
    for (; j < vocab; j++) {
      const q = o + <usize>j * 4;
      store<f32>(dlogits + q, load<f32>(dlogits + q) + scale * exp1(load<f32>(logits + q) - shift));
    }
    store<f32>(dlogits + qt, dTarget + scale * (exp1(load<f32>(logits + qt) - shift) - 1));
  }
}
