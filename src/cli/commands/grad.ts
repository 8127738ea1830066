/**
 * `dsv3 grad`: the mean next-token cross-entropy of a batch (positions 0..T−2, targets ids[:, 1:]; no MTP, no
 * balance loss) and its gradient for every parameter, written to a safetensors file as `loss` and `grad.<hf name>`.
 */
import type { Command } from 'commander';
import { fromFloatArray, type SafetensorsTensor } from '../../io/safetensors.js';
import { writeSafetensorsFile } from '../../io/safetensors_node.js';
import type { DeepSeekV3 } from '../../model/model.js';
import { InputError } from '../../errors.js';
import type { DType } from '../../tensor.js';
import { dtypeOption, printJSON, readIdsFile } from '../inputs.js';
import { addFp8TrainOptions, fp8TrainOptionsFromFlags, parseTrainNumericsFlag, TRAIN_NUMERICS_HELP, type Fp8TrainFlags } from '../fp8_train_flags.js';
import type { Fp8TrainOptions } from '../../ops/fp8_train.js';
import type { TrainNumerics } from '../../ops/linear.js';
import { addGuardOptions, openModel, printWarnings } from '../resources.js';
import { addBackendOptions, kernelsLabel, selectBackend, type BackendFlags } from '../backend.js';

/** The tensors `dsv3 grad` writes: `loss` (scalar) and `grad.<name>` per weight (router bias: zeros). */
function gradOutputs(model: DeepSeekV3, ids: number[][], train: { numerics: TrainNumerics; fp8Train?: Fp8TrainOptions } = { numerics: 'exact' }): { loss: number; tensors: Map<string, SafetensorsTensor> } {
  const r = model.lossAndGrads(ids, { mtp: false, balanceAlpha: 0, ...train });
  const st = model.dtype === 'float64' ? 'F64' : 'F32';
  const tensors = new Map<string, SafetensorsTensor>();
  tensors.set('loss', fromFloatArray([r.loss.main], [], st));
  for (const [name, g] of r.grads) tensors.set(`grad.${name}`, fromFloatArray(g.data, g.shape, st));
  return { loss: r.loss.main, tensors };
}

/** Registers `dsv3 grad`. */
export function registerGradCommand(program: Command): void {
  const cmd = program
    .command('grad')
    .description('mean next-token cross-entropy of a batch and the gradient of every weight (safetensors)')
    .requiredOption('--model <dir>', 'model directory (config.json + weights)')
    .requiredOption('--input <ids.json>', 'JSON array of equal-length arrays of token ids; targets are ids[:, 1:]')
    .addOption(dtypeOption())
    .requiredOption('--out <file>', 'output safetensors file (loss, grad.<hf name>)')
    .option('--json', 'print a JSON summary on stdout')
    .option('--numerics <mode>', TRAIN_NUMERICS_HELP, parseTrainNumericsFlag, 'exact' as TrainNumerics);
  addFp8TrainOptions(addBackendOptions(cmd));
  addGuardOptions(cmd, { weights: true, positions: true })
    .addHelpText('after', '\nExample:\n  dsv3 grad --model ./tiny --input ids.json --dtype f64 --out grads.safetensors')
    .action(async (o: { model: string; input: string; dtype: DType; out: string; json?: boolean; numerics: TrainNumerics } & Fp8TrainFlags & BackendFlags) => {
      const fp8Train = fp8TrainOptionsFromFlags(o.numerics, o);
      const ids = readIdsFile(o.input);
      const kernels = kernelsLabel(await selectBackend(o), o.dtype);
      if (ids[0]!.length < 2) throw new InputError(`${o.input}: each row needs at least 2 token ids (inputs ids[:, :-1], targets ids[:, 1:])`);
      const [B, T] = [ids.length, ids[0]!.length - 1]; // inputs ids[:, :-1]
      const { model, warnings } = openModel({ model: o.model, dtype: o.dtype }, () => ({
        positions: { count: T, of: o.input },
        ids: { rows: ids, of: o.input },
        work: { kind: 'grad', batch: B, positions: T, mtp: false },
      }));
      printWarnings('grad', warnings);
      const { loss, tensors } = gradOutputs(model, ids, { numerics: o.numerics, ...(fp8Train !== undefined ? { fp8Train } : {}) });
      writeSafetensorsFile(o.out, tensors, { command: 'grad', dtype: o.dtype, numerics: o.numerics });
      if (o.json === true) printJSON({ out: o.out, loss, tensors: tensors.size, kernels });
      else process.stdout.write(`loss ${loss}\nwrote loss and ${tensors.size - 1} gradients to ${o.out} (${kernels})\n`);
    });
}
