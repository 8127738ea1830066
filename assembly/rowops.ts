// Row-wise kernels over f32 matrices [rows, cols] at byte addresses: softmax, RMSNorm and
// log-softmax cross-entropy. Reductions run 4 lanes wide in f32 unless a comment says f64.

// @ts-ignore: decorator
@inline function hsum(v: v128): f32 {
  return f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1) + f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3);
}

function rowMax(x: usize, cols: i32): f32 {
  let mx: f32 = -Infinity;
  for (let j = 0; j < cols; j++) mx = max(mx, load<f32>(x + <usize>j * 4));
  return mx;
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
    let sum: f64 = 0; // f64 sum: the row total is exact to well below f32 rounding
    for (let j = 0; j < cols; j++) {
      const e = Mathf.exp(load<f32>(xr + <usize>j * 4) - mx);
      store<f32>(yr + <usize>j * 4, e);
      sum += e;
    }
    const s = <f32>sum;
    for (let j = 0; j < cols; j++) store<f32>(yr + <usize>j * 4, load<f32>(yr + <usize>j * 4) / s);
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
  let sum: f64 = 0;
  for (let j = 0; j < cols; j++) sum += Mathf.exp(load<f32>(x + <usize>j * 4) - mx);
  return <f32>Math.log(sum);
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
  for (let r = 0; r < rows; r++) {
    const t = load<i32>(targets + <usize>r * 4);
    if (t == ignoreIndex) continue;
    const o = <usize>r * vocab * 4;
    const mx = rowMax(logits + o, vocab);
    const shift = mx + rowLogSumExp(logits + o, vocab, mx);
    for (let j = 0; j < vocab; j++) {
      const q = o + <usize>j * 4;
      const p = Mathf.exp(load<f32>(logits + q) - shift);
      store<f32>(dlogits + q, load<f32>(dlogits + q) + scale * (j == t ? p - 1 : p));
    }
  }
}
