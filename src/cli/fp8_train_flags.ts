/**
 * The FP8-training flags shared by `dsv3 train`, `dsv3 grad` and `dsv3 trace --grads`: `--numerics exact|fp8-train`
 * and the knobs of 'fp8-train' (docs/components/fp8-training.md).
 */
import type { Command } from 'commander';
import { InputError } from '../errors.js';
import { resolveFp8TrainOptions, type Fp8TrainOptions } from '../ops/fp8_train.js';
import type { TrainNumerics } from '../ops/linear.js';
import { CliUsageError } from './errors.js';

/** Parsed flags of {@link addFp8TrainOptions}. */
export interface Fp8TrainFlags {
  fp8ScaleFmt?: string;
  fp8AmaxClamp?: string;
  fp8EhProj?: string;
  fp8Quant?: boolean;
}

/** Help text of `--numerics` on the training commands. */
export const TRAIN_NUMERICS_HELP = "training numerics: exact | fp8-train (every Linear's Fprop, Dgrad and Wgrad in block-scaled FP8, docs/components/fp8-training.md)";

/** `--numerics` of train/grad: exact | fp8-train. */
export function parseTrainNumericsFlag(v: string): TrainNumerics {
  if (v === 'exact' || v === 'fp8-train') return v;
  throw new CliUsageError(`--numerics must be exact or fp8-train, got '${v}'`);
}

/** Adds the knobs of 'fp8-train'. */
export function addFp8TrainOptions(cmd: Command): Command {
  return cmd
    .option('--fp8-scale-fmt <fmt>', 'with --numerics fp8-train: scales amax/448 (none, default) or powers of two (ue8m0)')
    .option('--fp8-amax-clamp <clamp>', 'with --numerics fp8-train: amax clamp act_quant (1e-4, default) | none')
    .option('--fp8-eh-proj <mode>', "with --numerics fp8-train: MTP eh_proj in fp8 (default) or high precision ('high')")
    .option('--fp8-no-quant', 'with --numerics fp8-train: skip the quantization (the run equals --numerics exact)');
}

/** The `fp8Train` options of the flags; a knob without `--numerics fp8-train` is a usage error. */
export function fp8TrainOptionsFromFlags(numerics: string, flags: Fp8TrainFlags): Fp8TrainOptions | undefined {
  const given = flags.fp8ScaleFmt !== undefined || flags.fp8AmaxClamp !== undefined || flags.fp8EhProj !== undefined || flags.fp8Quant === false;
  if (numerics !== 'fp8-train') {
    if (given) throw new CliUsageError('the --fp8-* flags need --numerics fp8-train');
    return undefined;
  }
  const o: Record<string, unknown> = {};
  if (flags.fp8ScaleFmt !== undefined) o.scaleFmt = flags.fp8ScaleFmt;
  if (flags.fp8AmaxClamp !== undefined) o.amaxClamp = flags.fp8AmaxClamp;
  if (flags.fp8EhProj !== undefined) o.ehProj = flags.fp8EhProj;
  if (flags.fp8Quant === false) o.disableQuant = true;
  try {
    resolveFp8TrainOptions(o as Fp8TrainOptions, '--fp8-*'); // bad values fail before any work
  } catch (e) {
    if (e instanceof InputError) throw new CliUsageError(e.message);
    throw e;
  }
  return o as Fp8TrainOptions;
}
