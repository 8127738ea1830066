/**
 * `dsv3 verify`: runs the library on a model and token ids (as `dsv3 trace` does), compares every
 * traced tensor with a reference dump of another implementation, reports in execution order and
 * names the first divergent tensor. Exit 0 all pass, 1 mismatch, 2 usage/input error.
 */
import type { Command } from 'commander';
import { readSafetensorsFile } from '../../io/safetensors_node.js';
import { collectionFromSafetensors } from '../../verify/trace.js';
import { addCompareOptions, runComparison, type CompareFlags } from './diff.js';
import { parseAttn } from '../inputs.js';
import { addModelRunOptions, traceModel, type TraceFlags } from './trace.js';

/** Registers `dsv3 verify`. */
export function registerVerifyCommand(program: Command): void {
  const cmd = program
    .command('verify')
    .description('run the library and compare its named intermediates with a reference dump; exit 0 all pass, 1 mismatch, 2 usage/input error');
  addModelRunOptions(cmd).requiredOption('--reference <file>', 'reference dump (.safetensors) under our trace names (see docs/trace-names.md)');
  addCompareOptions(cmd)
    .addHelpText(
      'after',
      '\nExamples:\n  $ dsv3 verify --model ./tiny --input ids.json --reference torch_dump.safetensors\n' +
        "  $ dsv3 verify --model ./v3-small --input ids.json --reference ref.safetensors --official-names --hf-rope --tol '*:attn_probs=1e-2,1e-6' --report report.html\n" +
        'See docs/verify.md for a worked PyTorch example.',
    )
    .action((flags: Omit<TraceFlags, 'filter'> & CompareFlags & { reference: string }) => {
      // Read the reference first: a bad path fails before the (possibly long) model run.
      const reference = collectionFromSafetensors(readSafetensorsFile(flags.reference));
      const { recorder, warnings } = traceModel(flags.model, flags.input, {
        dtype: flags.dtype,
        attn: parseAttn(flags.attn),
        grads: flags.grads === true,
        filter: [],
      });
      for (const w of warnings) process.stderr.write(`dsv3 verify: warning: ${w}\n`);
      process.exitCode = runComparison(recorder.tensors, reference, flags, `dsv3 verify ${flags.model} vs ${flags.reference}`);
    });
}
