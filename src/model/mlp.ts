/**
 * SwiGLU MLP (SPEC §3.7): `MLP(x) = down_proj( silu(gate_proj x) ⊙ up_proj x )`.
 * Used by the dense layers, by every routed expert and by the fused shared expert.
 */
import { ShapeError } from '../errors.js';
import { kernelsFor } from '../kernels/index.js';
import { linearBackward, linearForward, type LinearGemm, type LinearSite } from '../ops/linear.js';
import { allocate, dtypeOf, type FloatArray, type Tensor } from '../tensor.js';
import { requireTensor } from '../ops/tensors.js';

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
  /** The Linears' GEMM mode and module path, as the forward ran them (null: exact). */
  site: MLPSite | null;
}

/** Where an MLP runs: the GEMM mode of its three Linears and its module path (e.g. `model.layers.3.mlp.experts.7`). */
export interface MLPSite {
  gemm: LinearGemm;
  prefix: string;
}

/** The Linear call site of one projection of an MLP (undefined: exact). */
function projSite(site: MLPSite | null | undefined, proj: 'gate_proj' | 'up_proj' | 'down_proj'): LinearSite | undefined {
  return site ? { gemm: site.gemm, name: `${site.prefix}.${proj}` } : undefined;
}

/**
 * The MLP weights under `prefix` (e.g. `model.layers.0.mlp`, `model.layers.3.mlp.experts.7`,
 * `model.layers.3.mlp.shared_experts`): `${prefix}.gate_proj.weight` etc.
 */
export function mlpWeightsFrom(weights: ReadonlyMap<string, Tensor>, prefix: string): MLPWeights {
  return {
    gate_proj: requireTensor(weights, `${prefix}.gate_proj.weight`),
    up_proj: requireTensor(weights, `${prefix}.up_proj.weight`),
    down_proj: requireTensor(weights, `${prefix}.down_proj.weight`),
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
 * backward. `site` selects the GEMMs of its Linears (default exact).
 */
export function mlpForward(
  w: MLPWeights,
  x: FloatArray /* [N, d] */,
  N: number,
  save = false,
  site?: MLPSite,
): { out: FloatArray /* [N, d] */; saved: MLPSaved | null } {
  const { d, I } = mlpDims(w);
  if (x.length !== N * d) throw new ShapeError(`MLP input has ${x.length} elements, expected N·d = ${N}·${d}`);
  const dtype = dtypeOf(x);
  const k = kernelsFor(dtype);
  const a = linearForward(x, w.gate_proj.data, N, I, d, projSite(site, 'gate_proj')); // a = x W₁ᵀ
  const b = linearForward(x, w.up_proj.data, N, I, d, projSite(site, 'up_proj')); // b = x W₃ᵀ
  const h = allocate(dtype, N * I);
  k.swigluForward(a, b, h, N * I); // h = silu(a) ⊙ b
  const out = linearForward(h, w.down_proj.data, N, d, I, projSite(site, 'down_proj')); // out = h W₂ᵀ
  return { out, saved: save ? { N, d, I, x, a, b, h, site: site ?? null } : null };
}

/**
 * Backward of {@link mlpForward}: accumulates into `grads` (zeroed by the caller) and returns
 * dx [N, d] as a fresh array.
 */
export function mlpBackward(w: MLPWeights, grads: MLPWeights, saved: MLPSaved, dout: FloatArray /* [N, d] */): FloatArray {
  const { N, d, I, x, a, b, h, site } = saved;
  if (dout.length !== N * d) throw new ShapeError(`MLP dout has ${dout.length} elements, expected N·d = ${N}·${d}`);
  const dtype = dtypeOf(x);
  const k = kernelsFor(dtype);
  // out = h W₂ᵀ:  dW₂ += doutᵀ h,  dh = dout W₂
  const dh = linearBackward(h, w.down_proj.data, dout, grads.down_proj.data, N, d, I, undefined, projSite(site, 'down_proj'));
  // h = silu(a) ⊙ b
  const da = allocate(dtype, N * I);
  const db = allocate(dtype, N * I);
  k.swigluBackward(a, b, dh, da, db, N * I);
  // a = x W₁ᵀ, b = x W₃ᵀ:  dW₁ += daᵀ x,  dW₃ += dbᵀ x,  dx = da W₁ + db W₃
  const dx = linearBackward(x, w.gate_proj.data, da, grads.gate_proj.data, N, I, d, undefined, projSite(site, 'gate_proj'));
  linearBackward(x, w.up_proj.data, db, grads.up_proj.data, N, I, d, dx, projSite(site, 'up_proj'));
  return dx;
}
