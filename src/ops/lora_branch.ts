/**
 * The LoRA dropout branch of a Linear call site (docs/components/lora.md). The LoRA weight transform already runs
 * y = x·W_effᵀ, W_eff = W + s·B·A; dropout on the LoRA input (PEFT's lora_dropout) replaces x by x̃ = x ⊙ m/(1−p)
 * in the low-rank path only, so the site adds the difference:
 *
 *   u = x̃ − x = x ⊙ g,  g = m/(1−p) − 1,  m ~ Bernoulli(1 − p) per element (seeded, drawn in call order)
 *   forward:   y  += s·(u·Aᵀ)·Bᵀ
 *   backward:  dB += s·dyᵀ·(u·Aᵀ);  dA += s·Bᵀ·dyᵀ·u;  dx += (s·dy·B·A) ⊙ g
 *
 * With the transform's terms (from dW_eff = dyᵀ·x) that is dA = s·Bᵀ·dyᵀ·x̃ and dB = s·dyᵀ·x̃·Aᵀ, the gradient of
 * y = x·Wᵀ + s·x̃·Aᵀ·Bᵀ (equal in exact arithmetic; each product is rounded to the model's precision).
 */
import { InputError } from '../errors.js';
import { kernelsFor } from '../kernels/index.js';
import { allocate, dtypeOf, type FloatArray } from '../tensor.js';

/** One module's factors and its gradient accumulators for one training pass. */
export interface LoraBranch {
  /** A [r, in], B [out, r]. */
  A: FloatArray;
  B: FloatArray;
  r: number;
  /** s = α/r. */
  scale: number;
  /** Accumulators (zeroed by the caller): dA [r, in], dB [out, r]. */
  dA: FloatArray;
  dB: FloatArray;
}

/** The Linear-site mode of a LoRA adapter with dropout, for one training pass. */
export interface LoraDropoutGemm {
  kind: 'lora-dropout';
  /** Dropout probability p ∈ (0, 1). */
  p: number;
  /** Uniform draws in [0, 1) for the masks, in call order. */
  uniform: () => number;
  /** By HF module path. */
  branches: ReadonlyMap<string, LoraBranch>;
  /** g = m/(1−p) − 1 per element of each (site, input) the forward saw, for the backward. */
  factors: Map<string, WeakMap<FloatArray, FloatArray>>;
}

/** Forward part of the branch at site `name` (none if the module has no branch): y [rows, out] += s·(u·Aᵀ)·Bᵀ. */
export function loraBranchForward(gemm: LoraDropoutGemm, name: string, x: FloatArray, y: FloatArray, rows: number, outDim: number, inDim: number): void {
  const br = gemm.branches.get(name);
  if (br === undefined) return;
  const dtype = dtypeOf(x);
  const keep = 1 / (1 - gemm.p);
  const g = allocate(dtype, rows * inDim);
  const u = allocate(dtype, rows * inDim);
  for (let i = 0; i < g.length; i++) {
    g[i] = (gemm.uniform() < gemm.p ? 0 : keep) - 1; // m/(1−p) − 1: −1 where dropped
    u[i] = x[i]! * g[i]!;
  }
  let perSite = gemm.factors.get(name);
  if (perSite === undefined) gemm.factors.set(name, (perSite = new WeakMap()));
  perSite.set(x, g);
  const k = kernelsFor(dtype);
  const v = allocate(dtype, rows * br.r);
  k.matmul('nt', u, br.A, v, rows, br.r, inDim); // v = u·Aᵀ
  const t = allocate(dtype, rows * outDim);
  k.matmul('nt', v, br.B, t, rows, outDim, br.r); // t = v·Bᵀ
  for (let i = 0; i < t.length; i++) y[i] = y[i]! + br.scale * t[i]!;
}

/** Backward part of the branch at site `name`: accumulates dA, dB into the branch and dx [rows, in]. */
export function loraBranchBackward(gemm: LoraDropoutGemm, name: string, x: FloatArray, dy: FloatArray, dx: FloatArray, rows: number, outDim: number, inDim: number): void {
  const br = gemm.branches.get(name);
  if (br === undefined) return;
  const g = gemm.factors.get(name)?.get(x);
  if (g === undefined) throw new InputError(`LoRA dropout: no forward mask for '${name}' (the backward must see the forward's input array)`);
  const dtype = dtypeOf(x);
  const k = kernelsFor(dtype);
  const u = allocate(dtype, rows * inDim);
  for (let i = 0; i < u.length; i++) u[i] = x[i]! * g[i]!;
  const v = allocate(dtype, rows * br.r);
  k.matmul('nt', u, br.A, v, rows, br.r, inDim); // v = u·Aᵀ
  // dB += s·dyᵀ·v
  const tB = allocate(dtype, outDim * br.r);
  k.matmul('tn', dy, v, tB, outDim, br.r, rows);
  for (let i = 0; i < tB.length; i++) br.dB[i] = br.dB[i]! + br.scale * tB[i]!;
  // dv = s·dy·B;  dA += dvᵀ·u;  dx += (dv·A) ⊙ g
  const dv = allocate(dtype, rows * br.r);
  k.matmul('nn', dy, br.B, dv, rows, br.r, outDim);
  for (let i = 0; i < dv.length; i++) dv[i] = br.scale * dv[i]!;
  k.matmul('tn', dv, u, br.dA, br.r, inDim, rows, true);
  const du = allocate(dtype, rows * inDim);
  k.matmul('nn', dv, br.A, du, rows, inDim, br.r);
  for (let i = 0; i < du.length; i++) dx[i] = dx[i]! + du[i]! * g[i]!;
}
