import type { FloatArray } from '../tensor.js';

/**
 * Matrix layouts for `C[M,N] (+)= op(A) · op(B)`:
 * - `'nn'`: A is [M,K], B is [K,N]   (C = A·B)
 * - `'nt'`: A is [M,K], B is [N,K]   (C = A·Bᵀ; a linear layer `y = x Wᵀ`)
 * - `'tn'`: A is [K,M], B is [K,N]   (C = Aᵀ·B; a weight gradient `dW = dyᵀ x`)
 * All row-major and contiguous.
 */
export type MatmulLayout = 'nn' | 'nt' | 'tn';

/** AdamW hyper-parameters for one update (torch.optim.AdamW semantics, SPEC §5.5). */
export interface AdamWParams {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** 1 on the first update. */
  step: number;
}

/**
 * One operand of the attention kernels, a strided view of a [B, H, rows, width] tensor: element (b, h, i, j) is
 * `data[off + b·sb + h·sh + i·ss + j]`. Head-major [B, H, S, w] and token-major [B, S, H, w] tensors and the KV
 * caches are all such views, read in place. `sh = 0` shares the operand by every head (MLA's shared k_pe, the
 * absorbed path's latent keys and values).
 */
export interface AttnOperand<T extends FloatArray = FloatArray> {
  data: T;
  off: number;
  sb: number;
  sh: number;
  ss: number;
}

/**
 * Sizes of one fused attention call: B batch rows, H heads, S queries, T keys; score widths d1 (q1·k1) and d2
 * (q2·k2, may be 0), value width dv; scale τ; key t is visible from query s iff t ≤ s + offset (offset ≥ 0, so every
 * query sees key 0: a cache-free causal call has offset 0, a call over a cache offset = startPos).
 */
export interface AttentionShape {
  B: number;
  H: number;
  S: number;
  T: number;
  d1: number;
  d2: number;
  dv: number;
  tau: number;
  offset: number;
}

/** The inputs of the attention kernels: score(s, t) = τ·(q1[s]·k1[t] + q2[s]·k2[t]), values v. */
export interface AttentionInputs<T extends FloatArray = FloatArray> {
  q1: AttnOperand<T>;
  q2: AttnOperand<T>;
  k1: AttnOperand<T>;
  k2: AttnOperand<T>;
  v: AttnOperand<T>;
}

/** The gradients {@link Kernels.attentionBackward} accumulates into, one per input. */
export interface AttentionGrads<T extends FloatArray = FloatArray> {
  q1: AttnOperand<T>;
  q2: AttnOperand<T>;
  k1: AttnOperand<T>;
  k2: AttnOperand<T>;
  v: AttnOperand<T>;
}

/**
 * The kernel interface. Two implementations share it: `js` (plain TypeScript, the readable
 * definition and the test oracle, generic over f32/f64) and `wasm` (AssemblyScript + SIMD, f32).
 *
 * Conventions (llm.c): every function takes flat row-major arrays and explicit dimensions;
 * `accumulate = true` adds into the output instead of overwriting it; backward kernels
 * always **accumulate** into gradient buffers that the caller zeroed. All arrays passed to
 * one call have the same precision. Output arrays must not alias inputs unless stated.
 */
export interface Kernels {
  /** Which implementation this is: `'js'`, `'wasm-simd'` or `'wasm-relaxed-simd'`. */
  readonly name: string;

  /** C[M,N] (+)= op(A)·op(B), see {@link MatmulLayout}. */
  matmul<T extends FloatArray>(layout: MatmulLayout, a: T, b: T, c: T, m: number, n: number, k: number, accumulate?: boolean): void;

  /**
   * `batch` independent matmuls over contiguous slabs: A_i = a[i·|A|…], B_i, C_i likewise.
   * `bStride = 0` broadcasts one B to every batch item.
   */
  matmulBatched<T extends FloatArray>(
    layout: MatmulLayout,
    a: T,
    b: T,
    c: T,
    batch: number,
    m: number,
    n: number,
    k: number,
    accumulate?: boolean,
    bStride?: number,
  ): void;

  /** y[r,:] = softmax(x[r,:]) over `cols`, max-subtracted. `-Infinity` entries get probability 0. y may alias x. */
  softmaxForward<T extends FloatArray>(x: T, y: T, rows: number, cols: number): void;
  /** dx[r,j] += y[r,j]·(dy[r,j] − Σ_i dy[r,i]·y[r,i]). */
  softmaxBackward<T extends FloatArray>(y: T, dy: T, dx: T, rows: number, cols: number): void;

  /**
   * y[r,j] = w[j]·x[r,j]·rstd[r] with rstd[r] = 1/sqrt(mean_j x[r,j]² + eps) (SPEC §3.2).
   * Stores `rstd` (length rows) for the backward.
   */
  rmsnormForward<T extends FloatArray>(x: T, w: T, y: T, rstd: T, rows: number, cols: number, eps: number): void;
  /** Accumulates dx and dw of y = w⊙x·rstd, given the forward's rstd. */
  rmsnormBackward<T extends FloatArray>(x: T, w: T, rstd: T, dy: T, dx: T, dw: T, rows: number, cols: number): void;

  /** y[i] = silu(a[i])·b[i], silu(z) = z·σ(z) (SPEC §3.7). */
  swigluForward<T extends FloatArray>(a: T, b: T, y: T, n: number): void;
  /** da[i] += dy[i]·b[i]·silu'(a[i]); db[i] += dy[i]·silu(a[i]); silu'(z) = σ(z)(1 + z(1−σ(z))). */
  swigluBackward<T extends FloatArray>(a: T, b: T, dy: T, da: T, db: T, n: number): void;

  /**
   * Interleaved-pair RoPE (SPEC §3.4) on rows of width `dim` (even): row r is at position
   * pos[r]; pair i = (x[2i], x[2i+1]) is rotated by θ = angle with cos/sin read from the tables
   * `cos[pos·dim/2 + i]`, `sin[…]`. `inverse = true` rotates by −θ: that is the backward
   * (dx = RoPE⁻¹(dy)), written into y (overwrite). y may alias x.
   */
  rope<T extends FloatArray>(x: T, y: T, cos: T, sin: T, pos: Int32Array, rows: number, dim: number, inverse: boolean): void;

  /**
   * Row-wise cross-entropy −log softmax(logits[r,:])[target[r]], computed with
   * max-subtraction. Rows whose target equals `ignoreIndex` contribute nothing. Writes each
   * row's loss into `losses` (0 for ignored rows) and returns the sum over non-ignored rows
   * and their count.
   */
  crossEntropyForward<T extends FloatArray>(
    logits: T,
    targets: Int32Array,
    losses: T,
    rows: number,
    vocab: number,
    ignoreIndex: number,
  ): { sum: number; count: number };
  /** dlogits[r,:] += scale·(softmax(logits[r,:]) − onehot(target[r])) for non-ignored rows. */
  crossEntropyBackward<T extends FloatArray>(
    logits: T,
    targets: Int32Array,
    dlogits: T,
    rows: number,
    vocab: number,
    ignoreIndex: number,
    scale: number,
  ): void;

  /**
   * Fused causal attention (forward): o[b,h,s,:] = Σ_t softmax_t(A[s, ·])·v[b,h,t,:] with scores
   * A[s, t] = τ·(q1[s]·k1[t] + q2[s]·k2[t]) over the visible keys t ≤ s + offset (t < T). Never builds the [S, T]
   * matrix. Writes `stats[2r] = m` (the row's largest visible score) and `stats[2r+1] = l = Σ_t exp(A[s,t] − m)` for
   * row r = (b·H + h)·S + s, which {@link attentionBackward} needs. `o` must not overlap the inputs.
   */
  attentionForward<T extends FloatArray>(shape: AttentionShape, x: AttentionInputs<T>, o: AttnOperand<T>, stats: T): void;

  /**
   * Backward of {@link attentionForward} given its `o` and `stats` and the output gradient `dO`: ACCUMULATES
   * dq1, dq2, dk1, dk2, dv (recomputing the probabilities p = exp(A − m)/l; dS = τ·p·(dP − D), dP = dO·vᵀ,
   * D = Σ_j dO·o). A key gradient may be shared by the heads (sh = 0) only where its keys are shared by the heads
   * too (all of k1, k2, v have sh = 0); else gradients must not overlap across (b, h).
   */
  attentionBackward<T extends FloatArray>(shape: AttentionShape, x: AttentionInputs<T>, o: AttnOperand<T>, stats: T, dO: AttnOperand<T>, grads: AttentionGrads<T>): void;

  /** One AdamW update of n parameters in place (param, m, v), SPEC §5.5. */
  adamw<T extends FloatArray>(param: T, grad: T, m: T, v: T, n: number, p: AdamWParams): void;

  /**
   * y[i] = exp(x[i]). y may alias x. js: Math.exp (correctly rounded to f32 up to double rounding); wasm: the
   * four-lane exp of the softmax, cross-entropy and SwiGLU kernels, within 1 ulp of the exact value (docs/kernels.md).
   */
  exp<T extends FloatArray>(x: T, y: T, n: number): void;

  /** out[i] = a[i] + b[i]. out may alias a or b. */
  add<T extends FloatArray>(a: T, b: T, out: T, n: number): void;
  /** x[i] *= alpha. */
  scale<T extends FloatArray>(x: T, alpha: number, n: number): void;
  /** y[i] += alpha·x[i]. */
  axpy<T extends FloatArray>(alpha: number, x: T, y: T, n: number): void;
}
