/**
 * SwiGLU MLP (SPEC §3.7): `MLP(x) = down_proj( silu(gate_proj x) ⊙ up_proj x )`.
 * Used by the dense layers, by every routed expert and by the fused shared expert.
 */
import { ShapeError, WeightsError } from '../errors.js';
import { kernelsFor } from '../kernels/index.js';
import { allocate, dtypeOf, type FloatArray, type Tensor } from '../tensor.js';

/** The three projections of one SwiGLU MLP, HF names. The same record type holds their gradients. */
export interface MLPWeights {
  /** W₁ [I, d]. */
  gate_proj: Tensor;
  /** W₃ [I, d]. */
  up_proj: Tensor;
  /** W₂ [d, I]. */
  down_proj: Tensor;
}

/** What {@link mlpBackward} needs from the forward. */
export interface MLPSaved {
  /** Tokens. */
  N: number;
  /** hidden_size d. */
  d: number;
  /** Intermediate width I. */
  I: number;
  /** x: [N, d] (the input, referenced, not copied: the caller must not overwrite it before the backward). */
  x: FloatArray;
  /** a = x·W₁ᵀ: [N, I]. */
  a: FloatArray;
  /** b = x·W₃ᵀ: [N, I]. */
  b: FloatArray;
  /** h = silu(a) ⊙ b: [N, I]. */
  h: FloatArray;
}

/** Looks up a tensor by its HF name or throws a `WeightsError` naming it. */
function requireWeight(weights: ReadonlyMap<string, Tensor>, name: string): Tensor {
  const t = weights.get(name);
  if (t === undefined) throw new WeightsError(`missing weight '${name}'`);
  return t;
}

/**
 * The MLP weights under `prefix` (e.g. `model.layers.0.mlp`, `model.layers.3.mlp.experts.7`,
 * `model.layers.3.mlp.shared_experts`): `${prefix}.gate_proj.weight` etc.
 */
export function mlpWeightsFrom(weights: ReadonlyMap<string, Tensor>, prefix: string): MLPWeights {
  return {
    gate_proj: requireWeight(weights, `${prefix}.gate_proj.weight`),
    up_proj: requireWeight(weights, `${prefix}.up_proj.weight`),
    down_proj: requireWeight(weights, `${prefix}.down_proj.weight`),
  };
}

/** d and I from the weight shapes, checked against each other. */
function mlpDims(w: MLPWeights): { d: number; I: number } {
  const [I, d] = w.gate_proj.shape as [number, number];
  const ok =
    w.gate_proj.shape.length === 2 &&
    w.up_proj.shape.length === 2 &&
    w.up_proj.shape[0] === I &&
    w.up_proj.shape[1] === d &&
    w.down_proj.shape.length === 2 &&
    w.down_proj.shape[0] === d &&
    w.down_proj.shape[1] === I;
  if (!ok) {
    throw new ShapeError(
      `MLP weights disagree: gate_proj [${w.gate_proj.shape.join(', ')}], up_proj [${w.up_proj.shape.join(', ')}], ` +
        `down_proj [${w.down_proj.shape.join(', ')}] (expected [I, d], [I, d], [d, I])`,
    );
  }
  return { d, I };
}

/**
 * Forward of the SwiGLU MLP on N rows. With `save`, keeps a, b, h and a reference to x for the
 * backward.
 */
export function mlpForward(
  w: MLPWeights,
  x: FloatArray /* [N, d] */,
  N: number,
  save = false,
): { out: FloatArray /* [N, d] */; saved: MLPSaved | null } {
  const { d, I } = mlpDims(w);
  if (x.length !== N * d) throw new ShapeError(`MLP input has ${x.length} elements, expected N·d = ${N}·${d}`);
  const dtype = dtypeOf(x);
  const k = kernelsFor(dtype);
  const a = allocate(dtype, N * I);
  const b = allocate(dtype, N * I);
  const h = allocate(dtype, N * I);
  const out = allocate(dtype, N * d);
  k.matmul('nt', x, w.gate_proj.data, a, N, I, d); // a = x W₁ᵀ
  k.matmul('nt', x, w.up_proj.data, b, N, I, d); // b = x W₃ᵀ
  k.swigluForward(a, b, h, N * I); // h = silu(a) ⊙ b
  k.matmul('nt', h, w.down_proj.data, out, N, d, I); // out = h W₂ᵀ
  return { out, saved: save ? { N, d, I, x, a, b, h } : null };
}

/**
 * Backward of {@link mlpForward}: accumulates into `grads` (zeroed by the caller) and returns
 * dx [N, d] as a fresh array.
 */
export function mlpBackward(w: MLPWeights, grads: MLPWeights, saved: MLPSaved, dout: FloatArray /* [N, d] */): FloatArray {
  const { N, d, I, x, a, b, h } = saved;
  if (dout.length !== N * d) throw new ShapeError(`MLP dout has ${dout.length} elements, expected N·d = ${N}·${d}`);
  const dtype = dtypeOf(x);
  const k = kernelsFor(dtype);
  // out = h W₂ᵀ:  dW₂ += doutᵀ h,  dh = dout W₂
  k.matmul('tn', dout, h, grads.down_proj.data, d, I, N, true);
  const dh = allocate(dtype, N * I);
  k.matmul('nn', dout, w.down_proj.data, dh, N, I, d);
  // h = silu(a) ⊙ b
  const da = allocate(dtype, N * I);
  const db = allocate(dtype, N * I);
  k.swigluBackward(a, b, dh, da, db, N * I);
  // a = x W₁ᵀ, b = x W₃ᵀ
  k.matmul('tn', da, x, grads.gate_proj.data, I, d, N, true);
  k.matmul('tn', db, x, grads.up_proj.data, I, d, N, true);
  const dx = allocate(dtype, N * d);
  k.matmul('nn', da, w.gate_proj.data, dx, N, d, I);
  k.matmul('nn', db, w.up_proj.data, dx, N, d, I, true);
  return dx;
}
