/**
 * `dsv3 verify`: runs the library on a model and token ids (as `dsv3 trace` does), compares every
 * traced tensor with a reference dump of another implementation, reports in execution order and
 * names the first divergent tensor. Exit 0 all pass, 1 mismatch, 2 usage/input error.
 *
 * `--numerics exact` (default): fixed tolerances (rtol/atol/cosine). `--numerics official-bf16|official-fp8|
 * official-fp8-ue8m0`: the noise-calibrated mode (src/verify/calibrated.ts): the library runs twice, in f64
 * (the truth) and under the profile (the noise a correct backend at that precision shows), and each tensor
 * passes when the reference's error is within k times the profile's.
 */
import type { Command } from 'commander';
import { readSafetensorsFile } from '../../io/safetensors_node.js';
import { DeepSeekV3 } from '../../model/model.js';
import { loadModel } from '../../model/weights_node.js';
import type { DType } from '../../tensor.js';
import { addGuardOptions, guardFlags, memoryBudget } from '../resources.js';
import { compareCalibrated, CALIBRATED_K } from '../../verify/calibrated.js';
import { holdsMtpNames, libraryTrace } from '../../verify/library_run.js';
import { officialToHfName } from '../../verify/names.js';
import { collectionFromSafetensors } from '../../verify/trace.js';
import { CliUsageError } from '../errors.js';
import { parseAttn, parseNonNegative, readIdsFile } from '../inputs.js';
import { addCompareOptions, checkReportFlag, emitComparison, runComparison, type CompareFlags } from './diff.js';
import { addModelRunOptions, type TraceFlags } from './trace.js';
import { kernelsLabel, selectBackend } from '../backend.js';
import { addFp8TrainOptions, fp8TrainOptionsFromFlags, type Fp8TrainFlags } from '../fp8_train_flags.js';
import type { NumericsProfile } from '../../model/numerics.js';

type VerifyFlags = Omit<TraceFlags, 'filter' | 'numerics'> &
  CompareFlags &
  Fp8TrainFlags & { reference: string; noiseFactor?: number; numerics: NumericsProfile | 'fp8-train' };

/** Registers `dsv3 verify`. */
export function registerVerifyCommand(program: Command): void {
  const cmd = program
    .command('verify')
    .description('run the library and compare its named intermediates with a reference dump; exit 0 all pass, 1 mismatch, 2 usage/input error');
  addFp8TrainOptions(addModelRunOptions(cmd, true))
    .requiredOption('--reference <file>', 'reference dump (.safetensors) under our trace names (see docs/trace-names.md)')
    .option('--noise-factor <k>', `with --numerics official-*: pass when the error is <= k times the profile's noise (default ${CALIBRATED_K})`, parseNonNegative('--noise-factor'));
  addGuardOptions(addCompareOptions(cmd), { weights: true, positions: true })
    .addHelpText(
      'after',
      '\nExamples:\n  $ dsv3 verify --model ./tiny --input ids.json --reference torch_dump.safetensors\n' +
        "  $ dsv3 verify --model ./v3-small --input ids.json --reference ref.safetensors --official-names --hf-rope --tol '*:attn_probs=1e-2,1e-6' --report report.html\n" +
        '  $ dsv3 verify --model ./fp8-model --input ids.json --reference gpu_bf16.safetensors --official-names --numerics official-bf16\n' +
        '  $ dsv3 verify --model demo-out/model --input demo-out/ids.json --reference demo-out/trace.safetensors --grads\n' +
        '\nWith --numerics official-*, the library runs in f64 (the truth) and under the profile (the noise); --dtype and the\n' +
        'tolerance flags are not used. Get the dump script with `dsv3 dump-script > dump.py`. See docs/verify.md.',
    )
    .action(async (flags: VerifyFlags) => {
      checkReportFlag(flags);
      // Read the reference first: a bad path fails before the (possibly long) model run.
      const reference = collectionFromSafetensors(readSafetensorsFile(flags.reference));
      const ids = readIdsFile(flags.input);
      const attn = parseAttn(flags.attn);
      const grads = flags.grads === true;
      const refNames = [...reference.keys()].map((n) => (flags.officialNames ? officialToHfName(n) : n));
      const backend = await selectBackend(flags);
      const title = `dsv3 verify ${flags.model} vs ${flags.reference} (${kernelsLabel(backend, (flags.numerics ?? 'exact') === 'exact' || flags.numerics === 'fp8-train' ? flags.dtype : 'float32')})`;
      const warn = (ws: string[]): void => ws.forEach((w) => process.stderr.write(`dsv3 verify: warning: ${w}\n`));
      const numerics = flags.numerics ?? 'exact';
      // the guard rails of every model command: memory budget, NaN/Inf scan (--strict), positions (--allow-long)
      const open = (dtype: DType, withFp8 = true) => {
        const g = guardFlags();
        const l = loadModel(flags.model, { dtype, nonFinite: g.strict === true ? 'error' : 'warn', maxBytes: memoryBudget() });
        const model = new DeepSeekV3(l.config, l.weights, { maxBytes: memoryBudget(), allowLongContext: g.allowLong === true, ...(withFp8 ? { fp8: l.fp8 } : {}) });
        return { ...l, model };
      };
      const fp8Train = fp8TrainOptionsFromFlags(numerics, flags);
      if (numerics === 'fp8-train') {
        // an FP8 training step (docs/components/fp8-training.md): gradients and quantized operands, fixed tolerances
        if (!grads) throw new CliUsageError('--numerics fp8-train is a training mode: add --grads');
        const { config, warnings, model } = open(flags.dtype, false);
        warn(warnings);
        const mtp = config.numNextnPredictLayers > 0 && holdsMtpNames(refNames, config.numHiddenLayers);
        const train = { numerics, ...(fp8Train !== undefined ? { fp8Train } : {}) };
        const { recorder } = libraryTrace(model, ids, { attn, grads, mtp, train });
        process.exitCode = runComparison(recorder.tensors, reference, flags, title);
        return;
      }
      if (numerics === 'exact') {
        const { config, warnings, model } = open(flags.dtype);
        warn(warnings);
        const mtp = config.numNextnPredictLayers > 0 && holdsMtpNames(refNames, config.numHiddenLayers);
        const { recorder } = libraryTrace(model, ids, { attn, grads, mtp });
        process.exitCode = runComparison(recorder.tensors, reference, flags, title);
        return;
      }
      if (grads) throw new CliUsageError(`--grads runs in the exact profile only; drop --numerics ${numerics} (gradients are compared with fixed tolerances)`);
      const exact = open('float64', false);
      warn(exact.warnings);
      const truth = libraryTrace(exact.model, ids, { attn });
      const low = open('float32');
      const noise = libraryTrace(low.model, ids, { attn, numerics });
      const result = compareCalibrated(truth.recorder.tensors, noise.recorder.tensors, reference, {
        numerics,
        ...(flags.noiseFactor !== undefined ? { k: flags.noiseFactor } : {}),
        officialNames: flags.officialNames === true,
        hfRope: flags.hfRope === true,
        orderedRouting: flags.orderedRouting === true,
        router: { shape: exact.config, bias: (p) => exact.weights.get(`${p}.gate.e_score_correction_bias`)?.data },
      });
      if (holdsMtpNames(refNames, exact.config.numHiddenLayers)) {
        result.notes.push('the reference holds MTP tensors: not compared in the calibrated mode (the profiles emulate the main model only; verify them with --numerics exact).');
      }
      process.exitCode = emitComparison(result, flags, title);
    });
}
