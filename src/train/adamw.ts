import { InputError, ShapeError } from '../errors.js';
import { allocateResident, bf16Round, kernelsFor, releaseResident, type AdamWParams } from '../kernels/index.js';
import { Tensor } from '../tensor.js';

/**
 * How an AdamW update is computed:
 * - `'kernel'`: `kernelsFor(dtype).adamw` (the fast path; the wasm backend speeds up f32).
 * - `'torch'`: the operation sequence of `torch.optim.AdamW(foreach=False)` on CPU (torch 1.13),
 *   rounding after every tensor op. f32 is bit-identical to torch (checked against
 *   tests/fixtures/torch/adamw_reference.json); f64 agrees to a few ulp, because torch's
 *   vectorised f64 `add_`/`addcmul_` use fused multiply-adds that JS cannot express exactly.
 */
export type AdamWImpl = 'kernel' | 'torch';

/** AdamW options; defaults are DeepSeek-V3's (SPEC §5.5). */
export interface AdamWOptions {
  /** β₁ (default 0.9). */
  beta1?: number;
  /** β₂ (default 0.95). */
  beta2?: number;
  /** ε, added after the bias correction of √v (default 1e-8, the torch default; SPEC §5.5 [UNVERIFIED]). */
  eps?: number;
  /** Decoupled weight decay (default 0.1). */
  weightDecay?: number;
  /** Decay every trainable tensor; default false: only tensors with ≥ 2 dims (not norm weights). */
  decayAll?: boolean;
  /** Which names the optimizer updates; default: all but `*e_score_correction_bias` (SPEC §5.2: not a parameter). */
  trainable?: (name: string) => boolean;
  /** Update arithmetic, see {@link AdamWImpl} (default `'kernel'`). */
  impl?: AdamWImpl;
  /**
   * Precision of the moments m, v: the parameters' (default `'param'`) or `'bfloat16'`, as DeepSeek-V3's FP8
   * training keeps them (tech report §3.3.3). With bf16, each step computes the moment updates in f64, rounds
   * them to bf16 (RNE), and updates the parameter from the rounded moments in f64, stored in its own dtype;
   * `impl` is then not used.
   */
  momentDtype?: 'param' | 'bfloat16';
}

/** The optimizer state needed to resume: step count and the moments m, v per parameter name. */
export interface AdamWState {
  /** Number of updates done so far (torch's `state['step']`). */
  step: number;
  m: Map<string, Tensor>;
  v: Map<string, Tensor>;
}

/** Default trainability: the router bias is updated by the bias rule (SPEC §5.2), never by AdamW. */
export function isTrainableParameterName(name: string): boolean {
  return !name.endsWith('e_score_correction_bias');
}

/**
 * AdamW exactly as `torch.optim.AdamW` (SPEC §5.5) over a map of named parameters (HF names).
 * Moments have the parameters' precision and start at 0; the step count is shared (all
 * parameters are updated at every step).
 */
export class AdamW {
  readonly params: Map<string, Tensor>;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  readonly impl: AdamWImpl;
  /** Precision of the moments (see {@link AdamWOptions.momentDtype}). */
  readonly momentDtype: 'param' | 'bfloat16';
  /** Names updated by this optimizer, in the params' order. */
  readonly names: readonly string[];
  private readonly decayByName: Map<string, boolean>;
  private m = new Map<string, Tensor>();
  private v = new Map<string, Tensor>();
  private stepCount = 0;
  private released = false;

  constructor(params: Map<string, Tensor>, opts: AdamWOptions = {}) {
    this.params = params;
    this.beta1 = opts.beta1 ?? 0.9;
    this.beta2 = opts.beta2 ?? 0.95;
    this.eps = opts.eps ?? 1e-8;
    this.weightDecay = opts.weightDecay ?? 0.1;
    this.impl = opts.impl ?? 'kernel';
    this.momentDtype = opts.momentDtype ?? 'param';
    if (this.momentDtype !== 'param' && this.momentDtype !== 'bfloat16') {
      throw new InputError(`AdamW: momentDtype = ${JSON.stringify(this.momentDtype)}; expected 'param' or 'bfloat16'`);
    }
    const trainable = opts.trainable ?? isTrainableParameterName;
    this.names = [...params.keys()].filter(trainable);
    this.decayByName = new Map(this.names.map((n) => [n, opts.decayAll === true || params.get(n)!.shape.length >= 2]));
    // f32 moments live in the wasm backend's memory where it is shared: the adamw kernel updates them in place
    for (const name of this.names) {
      const p = params.get(name)!;
      this.m.set(name, new Tensor(p.shape, allocateResident(p.dtype, p.size)));
      this.v.set(name, new Tensor(p.shape, allocateResident(p.dtype, p.size)));
    }
  }

  /** Gives the moments' wasm memory back (see `allocateResident`); idempotent; the optimizer must not be used afterwards. */
  release(): void {
    if (this.released) return;
    this.released = true;
    for (const t of [...this.m.values(), ...this.v.values()]) releaseResident(t.data);
  }

  /** Number of updates done so far (1 after the first `step`). */
  get stepsTaken(): number {
    return this.stepCount;
  }

  /** Whether weight decay applies to `name`. */
  decays(name: string): boolean {
    return this.decayByName.get(name) ?? false;
  }

  /**
   * One update with learning rate `lr` (the current lr: decay uses it too). Every trainable
   * parameter must have a gradient of the same shape and precision.
   */
  step(grads: Map<string, Tensor>, lr: number): void {
    if (this.released) throw new InputError('AdamW.step: the optimizer was released (release())');
    for (const name of this.names) {
      const g = grads.get(name);
      if (g === undefined) throw new InputError(`AdamW.step: no gradient for trainable parameter '${name}'`);
      const p = this.params.get(name)!;
      if (g.size !== p.size || g.dtype !== p.dtype) {
        throw new ShapeError(
          `AdamW.step: gradient of '${name}' is ${g.dtype}[${g.shape.join(', ')}], parameter is ${p.dtype}[${p.shape.join(', ')}]`,
        );
      }
    }
    this.stepCount++;
    for (const name of this.names) {
      const p = this.params.get(name)!;
      const hp = {
        lr,
        beta1: this.beta1,
        beta2: this.beta2,
        eps: this.eps,
        weightDecay: this.decayByName.get(name)! ? this.weightDecay : 0,
        step: this.stepCount,
      };
      const g = grads.get(name)!.data;
      const m = this.m.get(name)!.data;
      const v = this.v.get(name)!.data;
      if (this.momentDtype === 'bfloat16') adamwBf16MomentsUpdate(p.data, g, m, v, hp);
      else if (this.impl === 'torch') adamwTorchUpdate(p.data, g, m, v, hp);
      else kernelsFor(p.dtype).adamw(p.data, g, m, v, p.size, hp);
    }
  }

  /** Copies of the step count and moments (for checkpoints). */
  exportState(): AdamWState {
    const copy = (src: Map<string, Tensor>): Map<string, Tensor> => new Map([...src].map(([k, t]) => [k, t.clone()]));
    return { step: this.stepCount, m: copy(this.m), v: copy(this.v) };
  }

  /** Restores a state from {@link exportState} (values copied; names, shapes and dtypes must match). */
  importState(state: AdamWState): void {
    for (const [which, src, dst] of [['m', state.m, this.m], ['v', state.v, this.v]] as const) {
      for (const name of this.names) {
        const t = src.get(name);
        const d = dst.get(name)!;
        if (t === undefined) throw new InputError(`AdamW.importState: no '${which}' moment for '${name}'`);
        if (t.size !== d.size || t.dtype !== d.dtype) {
          throw new ShapeError(`AdamW.importState: '${which}' of '${name}' is ${t.dtype}[${t.shape.join(', ')}], expected ${d.dtype}[${d.shape.join(', ')}]`);
        }
        d.data.set(t.data);
      }
    }
    if (!Number.isInteger(state.step) || state.step < 0) throw new InputError(`AdamW.importState: bad step ${state.step}`);
    this.stepCount = state.step;
  }
}

/**
 * AdamW with bf16 moments: m ← bf16(β₁m + (1−β₁)g), v ← bf16(β₂v + (1−β₂)g²) (each computed in f64, rounded once),
 * then p ← p·(1 − lr·wd) − (lr/bc₁)·m / (√v/√bc₂ + ε) in f64 from the rounded moments, stored in p's dtype.
 */
function adamwBf16MomentsUpdate(p: Float32Array | Float64Array, g: Float32Array | Float64Array, m: Float32Array | Float64Array, v: Float32Array | Float64Array, h: AdamWParams): void {
  const bc1 = 1 - h.beta1 ** h.step;
  const bc2Sqrt = Math.sqrt(1 - h.beta2 ** h.step);
  const decay = 1 - h.lr * h.weightDecay;
  for (let i = 0; i < p.length; i++) {
    const gi = g[i]!;
    const mi = bf16Round(h.beta1 * m[i]! + (1 - h.beta1) * gi);
    const vi = bf16Round(h.beta2 * v[i]! + (1 - h.beta2) * gi * gi);
    m[i] = mi;
    v[i] = vi;
    p[i] = p[i]! * decay - ((h.lr / bc1) * mi) / (Math.sqrt(vi) / bc2Sqrt + h.eps);
  }
}

/**
 * torch 1.13 `_single_tensor_adamw` on CPU, one rounding per tensor op:
 * `p.mul_(1−lr·wd)`; `m.mul_(β₁).add_(g, alpha=1−β₁)`; `v.mul_(β₂).addcmul_(g, g, value=1−β₂)`;
 * `denom = (v.sqrt() / √bc₂).add_(eps)`; `p.addcdiv_(m, denom, value=−lr/bc₁)`.
 * Python scalars are doubles, cast to the tensor dtype inside each op; the vectorised `add`
 * with alpha and `addcmul` are fused multiply-adds.
 */
function adamwTorchUpdate(p: Float32Array | Float64Array, g: Float32Array | Float64Array, m: Float32Array | Float64Array, v: Float32Array | Float64Array, h: AdamWParams): void {
  const f32 = p instanceof Float32Array;
  const r = f32 ? Math.fround : (x: number): number => x;
  const fma = f32 ? fmaF32 : (a: number, b: number, c: number): number => a * b + c;
  const bc1 = 1 - h.beta1 ** h.step;
  const bc2Sqrt = Math.sqrt(1 - h.beta2 ** h.step);
  const decay = r(1 - h.lr * h.weightDecay);
  const b1 = r(h.beta1);
  const a1 = r(1 - h.beta1);
  const b2 = r(h.beta2);
  const a2 = r(1 - h.beta2);
  const bc2 = r(bc2Sqrt);
  const eps = r(h.eps);
  const negStep = r(-h.lr / bc1);
  for (let i = 0; i < p.length; i++) {
    const gi = g[i]!;
    p[i] = p[i]! * decay;
    m[i] = fma(gi, a1, r(m[i]! * b1));
    // addcmul: self + (value·t1)·t2, fused
    v[i] = fma(r(a2 * gi), gi, r(v[i]! * b2));
    const denom = r(r(Math.sqrt(v[i]!)) / bc2) + eps;
    // addcdiv: self + (value·t1)/t2
    p[i] = p[i]! + r(r(negStep * m[i]!) / r(denom));
  }
}

const F32_BITS = new Float32Array(1);
const U32_BITS = new Uint32Array(F32_BITS.buffer);

/** The float32 next to `x` (finite, nonzero) in the direction of `toward`. */
function nextF32(x: number, toward: number): number {
  F32_BITS[0] = x;
  // for |x| growing the bit pattern grows, for either sign
  U32_BITS[0] = U32_BITS[0]! + ((toward > x) === (x > 0) ? 1 : -1);
  return F32_BITS[0]!;
}

/**
 * Correctly rounded float32 fused multiply-add of float32 inputs: a·b is exact in double, so
 * only the double rounding of a·b + c can go wrong, and only when the double sum sits exactly
 * halfway between two floats; then the TwoSum error decides the side.
 */
export function fmaF32(a: number, b: number, c: number): number {
  const prod = a * b;
  const s = prod + c;
  const rs = Math.fround(s);
  if (rs === s || !Number.isFinite(s) || rs === 0) return rs;
  const bb = s - prod;
  const err = prod - (s - bb) + (c - bb);
  if (err === 0) return rs;
  const other = nextF32(rs, s);
  if (rs + other !== 2 * s) return rs;
  return err > 0 === other > rs ? other : rs;
}
