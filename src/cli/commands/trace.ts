/**
 * `dsv3 trace`: runs the library on a model directory and token ids and records named
 * intermediates (docs/trace-names.md) into a safetensors file; with `--grads` it runs the
 * training forward + backward of the main next-token cross-entropy and also records every
 * weight gradient as `grad.<HF weight name>`. Also the library run behind `dsv3 verify`.
 */
import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { AttnImpl } from '../../model/attention.js';
import type { DType } from '../../tensor.js';
import { TraceRecorder } from '../../verify/trace.js';
import { CliUsageError } from '../errors.js';
import type { NumericsProfile } from '../../model/numerics.js';
import { collect, dtypeOption, NUMERICS_HELP, parseAttn, parseNumerics, printJSON, readIdsFile } from '../inputs.js';
import { addGuardOptions, openModel, printWarnings } from '../resources.js';
import { addBackendOptions, kernelsLabel, selectBackend, type BackendFlags } from '../backend.js';
import { addFp8TrainOptions, fp8TrainOptionsFromFlags, type Fp8TrainFlags } from '../fp8_train_flags.js';
import type { Fp8TrainOptions } from '../../ops/fp8_train.js';

/** Options of {@link traceModel}. */
export interface TraceRunOptions {
  dtype: DType;
  attn: AttnImpl;
  /** Run forward + backward of the main CE on ids (rows of T+1: inputs ids[:, :T], targets ids[:, 1:]). */
  grads: boolean;
  filter: string[];
  /** Numerics profile of the forward (default 'exact'); gradients exist in 'exact' and 'fp8-train' (with `grads`). */
  numerics?: NumericsProfile | 'fp8-train';
  /** Knobs of 'fp8-train'. */
  fp8Train?: Fp8TrainOptions;
}

/**
 * Loads `modelDir`, runs it on the ids of `idsPath` and returns the recorder. Forward traces
 * cover every id; with `grads` they cover ids[:, :T] (the last id is only a target) and the
 * objective is the plain next-token cross-entropy (no balance loss, no MTP), as in the golden data.
 */
export function traceModel(modelDir: string, idsPath: string, opts: TraceRunOptions): { recorder: TraceRecorder; warnings: string[]; loss?: number } {
  const ids = readIdsFile(idsPath);
  const numerics = opts.numerics ?? 'exact';
  if (numerics === 'fp8-train' && !opts.grads) throw new CliUsageError('--numerics fp8-train is a training mode: add --grads');
  if (opts.grads && numerics !== 'exact' && numerics !== 'fp8-train') throw new CliUsageError(`--grads runs in the exact and fp8-train modes only; drop --numerics ${numerics}`);
  if (opts.grads && ids[0]!.length < 2) throw new CliUsageError(`--grads needs rows of at least 2 ids (inputs + next-token targets) in ${idsPath}`);
  const [B, T] = [ids.length, opts.grads ? ids[0]!.length - 1 : ids[0]!.length];
  // the recorder keeps a copy of every traced tensor: about what a training forward saves
  const { model, warnings } = openModel({ model: modelDir, dtype: opts.dtype }, () => ({
    positions: { count: T, of: idsPath },
    ids: { rows: ids, of: idsPath },
    work: opts.grads ? { kind: 'grad', batch: B, positions: T, mtp: false } : { kind: 'forward', batch: B, positions: T, attn: opts.attn, save: true },
  }));
  const recorder = new TraceRecorder({ filter: opts.filter });
  if (!opts.grads && numerics !== 'fp8-train') {
    model.forward(ids, { attn: opts.attn, trace: recorder.trace, numerics });
    return { recorder, warnings };
  }
  // fp8-train also records each FP8 GEMM's quantized operands (docs/components/fp8-training.md)
  const train = numerics === 'fp8-train' ? { numerics, ...(opts.fp8Train !== undefined ? { fp8Train: opts.fp8Train } : {}) } : {};
  const r = model.lossAndGrads(ids, { attn: opts.attn, trace: recorder.trace, mtp: false, balanceAlpha: 0, ...train });
  recorder.recordMap(r.grads, 'grad.');
  return { recorder, warnings, loss: r.loss.main };
}

/** Flags of `trace` (and the model-run part of `verify`). */
export interface TraceFlags extends BackendFlags {
  model: string;
  input: string;
  grads?: boolean;
  filter: string[];
  dtype: DType;
  attn: string;
  numerics: NumericsProfile;
  json?: boolean;
}

/** Adds the model-run flags shared by `trace` and `verify`; `training` also accepts `--numerics fp8-train` (trace). */
export function addModelRunOptions(cmd: Command, training = false): Command {
  return addBackendOptions(cmd)
    .requiredOption('--model <dir>', 'model directory (config.json + model.safetensors or a sharded checkpoint)')
    .requiredOption('--input <ids.json>', 'token ids: [[...], ...] rows of equal length, [...] one row, or {"input_ids": ...}')
    .option('--grads', 'also run backward of the next-token cross-entropy and record grad.<weight name>')
    .addOption(dtypeOption())
    .option('--attn <impl>', 'attention path: naive | absorb', 'naive')
    .option(
      '--numerics <profile>',
      training ? `${NUMERICS_HELP}; with --grads also fp8-train (FP8 training, docs/components/fp8-training.md)` : NUMERICS_HELP,
      training ? (v: string) => (v === 'fp8-train' ? v : parseNumerics(v)) : parseNumerics,
      'exact' as NumericsProfile,
    );
}

/** Registers `dsv3 trace`. */
export function registerTraceCommand(program: Command): void {
  const cmd = program
    .command('trace')
    .description('run the model and record named intermediates (and with --grads, gradients) into a safetensors file');
  addFp8TrainOptions(addModelRunOptions(cmd, true))
    .option('--filter <glob>', "keep only matching names, repeatable (e.g. 'model.layers.3.*')", collect, [])
    .requiredOption('--out <file>', 'output .safetensors file (execution order in __metadata__.order)')
    .option('--json', 'print a JSON summary (names, shapes) on stdout');
  addGuardOptions(cmd, { weights: true, positions: true })
    .addHelpText(
      'after',
      "\nExamples:\n  $ dsv3 trace --model ./tiny --input ids.json --out trace.safetensors\n  $ dsv3 trace --model ./tiny --input ids.json --grads --filter 'model.layers.1.*' --filter 'grad.*' --out layer1.safetensors",
    )
    .action(async (flags: Omit<TraceFlags, 'numerics'> & { numerics: NumericsProfile | 'fp8-train'; out: string } & Fp8TrainFlags) => {
      const fp8Train = fp8TrainOptionsFromFlags(flags.numerics, flags);
      const kernels = kernelsLabel(await selectBackend(flags), flags.dtype);
      const { recorder, warnings, loss } = traceModel(flags.model, flags.input, {
        dtype: flags.dtype,
        attn: parseAttn(flags.attn),
        grads: flags.grads === true,
        filter: flags.filter,
        numerics: flags.numerics,
        ...(fp8Train !== undefined ? { fp8Train } : {}),
      });
      printWarnings('trace', warnings);
      writeFileSync(flags.out, recorder.serialize({ model: flags.model, dtype: flags.dtype, attn: flags.attn, numerics: flags.numerics }));
      if (flags.json) {
        printJSON({ out: flags.out, loss: loss ?? null, kernels, tensors: [...recorder.tensors].map(([name, t]) => ({ name, dtype: t.dtype, shape: t.shape })) });
      } else {
        process.stdout.write(`wrote ${recorder.size} tensors to ${flags.out}${loss !== undefined ? ` (loss ${loss})` : ''}; ${kernels}\n`);
      }
      if (recorder.size === 0) process.stderr.write(`dsv3 trace: warning: no traced name matched --filter ${flags.filter.join(' ')}\n`);
    });
}
