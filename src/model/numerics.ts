/**
 * Numerics profiles: which arithmetic a forward pass runs in.
 *
 * - `exact`: the model's own dtype (f32 or f64) with no extra rounding. The default, and the oracle.
 * - `official-bf16`: emulates the official `inference/model.py` under `torch.set_default_dtype(torch.bfloat16)`
 *   on CUDA with `gemm_impl = "bf16"` (FP8 weights dequantised to bf16, bf16 GEMMs).
 * - `official-fp8`: the same with `gemm_impl = "fp8"`: every FP8-stored Linear quantises its bf16 input per 1×128
 *   tile (scale amax/448) and runs the block-scaled FP8 GEMM.
 * - `official-fp8-ue8m0`: `official-fp8` with power-of-two activation scales (`scale_fmt = "ue8m0"`, V3.1).
 *
 * docs/numerics-profiles.md lists every rounding point with the line of the official code it comes from.
 */
import { InputError } from '../errors.js';
import type { ScaleFmt } from '../kernels/fp8.js';

/** A numerics profile (see the module comment). */
export type NumericsProfile = 'exact' | 'official-bf16' | 'official-fp8' | 'official-fp8-ue8m0';

/** Every profile, in the order the CLI lists them. */
export const NUMERICS_PROFILES: readonly NumericsProfile[] = ['exact', 'official-bf16', 'official-fp8', 'official-fp8-ue8m0'];

/** Activation scale format of an FP8 profile: amax/448 (`none`) or rounded up to a power of two (`ue8m0`). */
export type { ScaleFmt } from '../kernels/fp8.js';

/** Checks a profile name (from the CLI or untyped JS), naming the allowed values on error. */
export function parseNumericsProfile(value: unknown, where = 'numerics'): NumericsProfile {
  if (typeof value === 'string' && (NUMERICS_PROFILES as readonly string[]).includes(value)) return value as NumericsProfile;
  throw new InputError(`${where}: unknown numerics profile ${JSON.stringify(value)}; expected one of ${NUMERICS_PROFILES.join(', ')}`);
}

/** The GEMM path of a profile: none (exact), bf16 GEMMs, or FP8 GEMMs with the given activation scale format. */
export function profileGemm(p: NumericsProfile): { kind: 'exact' } | { kind: 'bf16' } | { kind: 'fp8'; scaleFmt: ScaleFmt } {
  switch (p) {
    case 'exact':
      return { kind: 'exact' };
    case 'official-bf16':
      return { kind: 'bf16' };
    case 'official-fp8':
      return { kind: 'fp8', scaleFmt: 'none' };
    case 'official-fp8-ue8m0':
      return { kind: 'fp8', scaleFmt: 'ue8m0' };
  }
}
