/**
 * `dsv3 train`: trains a preset (seeded init) or a model directory on a text file (UTF-8 bytes as ids,
 * for byte-level vocabularies) or a JSON token file with the DeepSeek-V3 recipe (main CE + MTP +
 * sequence-wise balance loss, AdamW, router-bias balancing, SPEC §4–5). Progress bar with tokens/s,
 * loss and ETA; checkpoints every N steps; `--resume` continues bit-identically; saves the final model.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { InputError } from '../../errors.js';
import type { BackendInfo, BackendName } from '../../kernels/index.js';
import { addBackendOptions, kernelsLabel, selectBackend } from '../backend.js';
import type { ModelConfig } from '../../model/config.js';
import type { DeepSeekV3 } from '../../model/model.js';
import { LoraAdapter } from '../../model/adapters/lora.js';
import { saveLoraAdapter } from '../../model/adapters/lora_node.js';
import { TransformedModel } from '../../model/adapters/transform.js';
import { withRoutingOverride } from '../../model/topk.js';
import { scanLoadedWeights } from '../../model/guards.js';
import { saveModel } from '../../model/weights_node.js';
import type { DType } from '../../tensor.js';
import { loadCheckpoint, saveCheckpoint } from '../../train/checkpoint.js';
import { bytesToTokens, TokenStream } from '../../train/data.js';
import { Trainer, type TrainStepReport } from '../../train/trainer.js';
import { CliUsageError } from '../errors.js';
import { addFp8TrainOptions, fp8TrainOptionsFromFlags, parseTrainNumericsFlag, TRAIN_NUMERICS_HELP, type Fp8TrainFlags } from '../fp8_train_flags.js';
import type { TrainNumerics } from '../../ops/linear.js';
import { collect, dtypeOption, parseInteger, parseNonNegative, parsePositiveInt, printJSON, readIdsFile } from '../inputs.js';
import { addGuardOptions, checkInputFile, guardFlags, jsonInputLimit, openModel, printWarnings } from '../resources.js';
import { createProgress, type Progress } from '../progress.js';

/** The bundled corpus (data/tiny-corpus.txt of the package), relative to this module in src/ or dist/. */
export function bundledCorpusPath(): string {
  return fileURLToPath(new URL('../../../data/tiny-corpus.txt', import.meta.url));
}


/** Prints a line on stdout without garbling a live progress bar on the same terminal (clears its line first). */
export function printAboveProgress(progress: Progress, line: string): void {
  if (progress.enabled) process.stderr.write('\r\x1b[2K');
  process.stdout.write(`${line}\n`);
}

/**
 * Stops a progress bar below lines printed with {@link printAboveProgress}: cli-progress's stop() returns the
 * cursor to where the bar started (ANSI restore), which would overwrite those lines, so save the current
 * position (ANSI save, ESC 7) first.
 */
export function stopProgress(progress: Progress): void {
  if (progress.enabled) process.stderr.write('\x1b7');
  progress.stop();
}

/** Load balance of a step: max/mean per MoE layer, `1.02/1.10/1.31`. */
function loadBalanceText(report: TrainStepReport): string {
  return report.loads.map((l) => l.stats.maxOverMean.toFixed(2)).join('/');
}

/** Flags of `dsv3 train`. */
interface TrainFlags {
  preset?: string;
  model?: string;
  data?: string;
  tokens?: string;
  steps: number;
  batch: number;
  seq: number;
  microBatches: number;
  lr: number;
  minLr?: number;
  warmup?: number;
  mtp: boolean;
  mtpLambda: number;
  biasGamma: number;
  balanceAlpha: number;
  seed: number;
  order: string;
  dtype: DType;
  backend: BackendName;
  /** Threads of the wasm kernels (undefined: the library default; bit-identical results for any count). */
  threads?: number;
  checkpointDir?: string;
  checkpointEvery?: number;
  resume?: string;
  out?: string;
  logEvery?: number;
  json?: boolean;
  /** LoRA target globs (repeatable), rank and α (docs/components/lora.md). */
  lora?: string[];
  loraRank?: number;
  loraAlpha?: number;
  loraDropout?: number;
  /** Runtime top-k override (docs/components/topk-override.md). */
  topk?: number;
  topkGroup?: number;
  /** Training numerics and the FP8 knobs (docs/components/fp8-training.md); AdamW moment precision. */
  numerics: TrainNumerics;
  adamMoments: string;
}

/** Token ids of the training data: `--tokens` JSON (rows concatenated), `--data` text bytes, or the bundled corpus. */
function readTrainingTokens(flags: Pick<TrainFlags, 'data' | 'tokens'>, config: ModelConfig): { tokens: Int32Array; source: string } {
  if (flags.tokens !== undefined) {
    const tokens = Int32Array.from(readIdsFile(flags.tokens).flat());
    const bad = tokens.findIndex((t) => t >= config.vocabSize);
    if (bad >= 0) throw new InputError(`${flags.tokens}: token ${tokens[bad]} at position ${bad} (rows concatenated) is outside the model's vocab [0, ${config.vocabSize})`);
    return { tokens, source: flags.tokens };
  }
  if (config.vocabSize < 256) throw new CliUsageError(`text data becomes byte ids 0–255, but the model's vocab_size is ${config.vocabSize}: give --tokens FILE.json`);
  const path = flags.data ?? bundledCorpusPath();
  return { tokens: bytesToTokens(new Uint8Array(readFileSync(path))), source: path };
}

/** Bytes the training data holds in memory (checked before anything is read): the text and its Int32 ids, or the parsed JSON. */
function trainingDataBytes(flags: Pick<TrainFlags, 'data' | 'tokens'>): number {
  if (flags.data !== undefined && flags.tokens !== undefined) throw new CliUsageError('give at most one of --data FILE and --tokens FILE.json');
  if (flags.tokens !== undefined) return 16 * checkInputFile(flags.tokens, jsonInputLimit(), 'a token file');
  return 5 * checkInputFile(flags.data ?? bundledCorpusPath(), 2 ** 31 - 1, 'a text file');
}

/** Checkpoint file of step `step` in `dir`. */
function checkpointPath(dir: string, step: number): string {
  return join(dir, `step-${String(step).padStart(6, '0')}.safetensors`);
}

/** One step as JSON-friendly numbers. */
function stepRecord(r: TrainStepReport): Record<string, number | number[]> {
  return {
    step: r.step,
    main: r.loss.main,
    mtp: r.loss.mtp,
    balance: r.loss.balance,
    total: r.loss.total,
    lr: r.lr,
    gradNorm: r.gradNorm,
    tokensPerSec: r.tokensPerSec,
    maxOverMean: r.loads.map((l) => l.stats.maxOverMean),
  };
}

/** Builds the model, trainer and data of a `dsv3 train` run (exported for tests). */
function buildTrainer(flags: TrainFlags & Fp8TrainFlags): { model: DeepSeekV3; trainer: Trainer; source: string; modelName: string; lora: LoraAdapter | null } {
  if (flags.preset !== undefined && flags.model !== undefined) throw new CliUsageError('give at most one of --preset NAME and --model DIR');
  if (flags.order !== 'random' && flags.order !== 'sequential') throw new CliUsageError(`--order must be random or sequential, got '${flags.order}'`);
  if (flags.checkpointEvery !== undefined && flags.checkpointDir === undefined) throw new CliUsageError('--checkpoint-every needs --checkpoint-dir DIR');
  const preset = flags.model === undefined ? (flags.preset ?? 'tiny') : undefined;
  const dataBytes = trainingDataBytes(flags);
  const { model, warnings } = openModel({ model: flags.model, preset, dtype: flags.dtype, seed: flags.seed }, (config) => {
    if (guardFlags().allowLong !== true && flags.seq + 1 > config.maxPositionEmbeddings) {
      throw new CliUsageError(`--seq ${flags.seq} needs ${flags.seq + 1} positions; the model has ${config.maxPositionEmbeddings} (--allow-long runs past it)`);
    }
    const work = { kind: 'train', batch: flags.batch, positions: flags.seq, microBatches: flags.microBatches, mtp: flags.mtp } as const;
    return { work, dataBytes };
  });
  const modelName = preset !== undefined ? `preset ${preset}` : flags.model!;
  const config = model.config;
  const { tokens, source } = readTrainingTokens(flags, config);
  if (tokens.length < flags.seq + 1) throw new InputError(`${source}: ${tokens.length} tokens, but a training window needs --seq + 1 = ${flags.seq + 1}`);
  printWarnings('train', warnings); // after the last input check, so an error is the only line
  if (flags.mtp && config.numNextnPredictLayers === 0) process.stderr.write('dsv3 train: note: the model has no MTP module; training without MTP\n');
  const data = new TokenStream(tokens, { batchSize: flags.batch, seqLen: flags.seq, order: flags.order as 'random' | 'sequential', seed: flags.seed });
  const warmup = flags.warmup ?? Math.min(100, Math.ceil(flags.steps / 10));
  const route = { topk: flags.topk, topkGroup: flags.topkGroup };
  const fp8Train = fp8TrainOptionsFromFlags(flags.numerics, flags);
  if (flags.adamMoments !== 'param' && flags.adamMoments !== 'bf16') throw new CliUsageError(`--adam-moments must be param or bf16, got '${flags.adamMoments}'`);
  withRoutingOverride(config, route, '--topk'); // a k' that does not fit fails before training starts
  if (flags.lora === undefined && (flags.loraRank !== undefined || flags.loraAlpha !== undefined || flags.loraDropout !== undefined)) throw new CliUsageError('--lora-rank, --lora-alpha and --lora-dropout need --lora GLOB');
  // LoRA: only A and B are trained (and get AdamW state); the base, router biases included, stays frozen
  const lora = flags.lora !== undefined ? LoraAdapter.create(model.weights, { targets: flags.lora, r: flags.loraRank ?? 8, alpha: flags.loraAlpha ?? 8, seed: flags.seed, dropout: flags.loraDropout ?? 0, dropoutSeed: flags.seed }) : null;
  const trainer = new Trainer(lora !== null ? new TransformedModel(config, lora) : model, {
    data,
    microBatches: flags.microBatches,
    // linear warmup, then cosine from lr to min-lr over the remaining steps
    lr: { kind: 'cosine', peak: flags.lr, warmupSteps: warmup, holdSteps: 0, decaySteps: Math.max(1, flags.steps - warmup), min: flags.minLr ?? flags.lr / 10 },
    biasGamma: flags.biasGamma,
    mtpLambda: flags.mtpLambda,
    lossOptions: { mtp: flags.mtp, balanceAlpha: flags.balanceAlpha, ...route, numerics: flags.numerics, ...(fp8Train !== undefined ? { fp8Train } : {}) },
    optimizer: { momentDtype: flags.adamMoments === 'bf16' ? 'bfloat16' : 'param' },
  });
  return { model, trainer, source, modelName, lora };
}

/** Runs `dsv3 train` with parsed flags. */
async function runTrain(flags: TrainFlags & Fp8TrainFlags): Promise<void> {
  // the backend first: the model's f32 weights, moments and gradients are then allocated in its memory (resident)
  const backend: BackendInfo = await selectBackend(flags);
  const { model, trainer, source, modelName, lora } = buildTrainer(flags);
  if (flags.resume !== undefined) {
    checkInputFile(flags.resume, Infinity, 'a checkpoint');
    loadCheckpoint(trainer, new Uint8Array(readFileSync(flags.resume)), flags.resume);
    if (lora !== null) lora.dropoutStep = trainer.step * flags.microBatches; // one mask stream per micro-batch pass
    const warnings: string[] = [];
    scanLoadedWeights(model.weights, guardFlags().strict === true ? 'error' : 'warn', flags.resume, warnings);
    printWarnings('train', warnings);
  }
  const json = flags.json === true;
  const startStep = trainer.step;
  const todo = Math.max(0, flags.steps - startStep);
  const perStep = flags.batch * flags.seq * flags.microBatches;
  const logEvery = flags.logEvery ?? Math.max(1, Math.round(flags.steps / 20));
  const progress = createProgress({ total: todo * perStep, label: 'train', unit: 'tok', ...(json ? { enabled: false } : {}) });
  const say = (line: string): void => {
    if (!json) printAboveProgress(progress, line);
  };
  if (flags.checkpointDir !== undefined) mkdirSync(flags.checkpointDir, { recursive: true });
  say(
    `dsv3 train: ${modelName} (${model.dtype}, ${kernelsLabel(backend, model.dtype)}) on ${source} (${trainer.data.tokens.length} tokens); ` +
      `steps ${startStep + 1}..${flags.steps} of ${flags.batch}×${flags.seq}${flags.microBatches > 1 ? `×${flags.microBatches}` : ''} tokens`,
  );
  if (lora !== null) say(`dsv3 train: LoRA r ${lora.r}, α ${lora.alpha} on ${lora.modules.length} modules (${lora.params.size} trainable tensors); the base weights stay frozen`);
  if (todo === 0) say(`dsv3 train: the run is already at step ${startStep} ≥ --steps ${flags.steps}: nothing to train`);
  const history: Record<string, number | number[]>[] = [];
  const checkpoints: string[] = [];
  const writeCheckpoint = (): void => {
    const path = checkpointPath(flags.checkpointDir!, trainer.step);
    writeFileSync(path, saveCheckpoint(trainer));
    checkpoints.push(path);
  };
  const started = performance.now();
  let window = { main: 0, total: 0, n: 0 };
  let last: TrainStepReport | null = null;
  for (let i = 0; i < todo; i++) {
    const r = trainer.trainStep();
    last = r;
    history.push(stepRecord(r));
    window = { main: window.main + r.loss.main, total: window.total + r.loss.total, n: window.n + 1 };
    progress.tick(r.tokens, `loss ${r.loss.total.toFixed(3)}`);
    if (r.step % logEvery === 0 || i === todo - 1) {
      say(
        `step ${r.step}/${flags.steps} | loss ${(window.total / window.n).toFixed(4)} (main ${(window.main / window.n).toFixed(4)}, last step: mtp ${r.loss.mtp.toFixed(4)} balance ${r.loss.balance.toExponential(2)}) | ` +
          `lr ${r.lr.toExponential(2)} | grad norm ${r.gradNorm.toFixed(3)} | load max/mean ${loadBalanceText(r) || '-'} | ${r.tokensPerSec.toFixed(0)} tok/s`,
      );
      window = { main: 0, total: 0, n: 0 };
    }
    if (flags.checkpointDir !== undefined && flags.checkpointEvery !== undefined && r.step % flags.checkpointEvery === 0) writeCheckpoint();
  }
  stopProgress(progress);
  const seconds = (performance.now() - started) / 1000;
  if (flags.checkpointDir !== undefined && checkpoints.at(-1) !== checkpointPath(flags.checkpointDir, trainer.step)) writeCheckpoint();
  if (flags.out !== undefined && lora !== null) saveLoraAdapter(flags.out, lora, { baseModel: modelName });
  else if (flags.out !== undefined) saveModel(flags.out, model.config, model.weights); // stored in the compute dtype (F32 or F64)
  const tokens = todo * perStep;
  if (json) {
    printJSON({
      model: modelName,
      data: source,
      dtype: model.dtype,
      backend,
      steps: { from: startStep, to: trainer.step },
      tokens,
      seconds,
      tokensPerSec: seconds > 0 ? tokens / seconds : null,
      final: last === null ? null : stepRecord(last),
      history,
      checkpoints,
      out: flags.out ?? null,
      lora: lora === null ? null : { r: lora.r, alpha: lora.alpha, modules: lora.modules },
    });
    return;
  }
  say(`trained ${todo} steps (${tokens} tokens) in ${seconds.toFixed(1)} s, ${(tokens / Math.max(seconds, 1e-9)).toFixed(0)} tokens/s`);
  if (checkpoints.length > 0) say(`checkpoints: ${checkpoints.join(', ')}`);
  if (flags.out !== undefined) say(lora !== null ? `LoRA adapter (PEFT layout): ${join(flags.out, 'adapter_config.json')} + ${join(flags.out, 'adapter_model.safetensors')}` : `model: ${join(flags.out, 'config.json')} + ${join(flags.out, 'model.safetensors')}`);
}

/** Registers `dsv3 train`. */
export function registerTrainCommand(program: Command): void {
  const num = (flag: string) => parseNonNegative(flag);
  const int = (flag: string) => parsePositiveInt(flag);
  const cmd = program
    .command('train')
    .description('train a preset or a model directory on a text or token file (main CE + MTP + balance loss, AdamW, router-bias balancing)')
    .option('--preset <name>', 'built-in config with seeded random init: tiny | small | bench (default tiny)')
    .option('--model <dir>', 'start from a model directory (config.json + weights) instead of a preset')
    .option('--data <file>', 'text file; its UTF-8 bytes are the token ids (byte-level vocab; default: the bundled data/tiny-corpus.txt)')
    .option('--tokens <file.json>', 'token ids as JSON ([...] or [[...], ...], rows concatenated, or {"input_ids": ...})')
    .option('--steps <n>', 'total optimizer steps (with --resume: train until this step)', int('--steps'), 200)
    .option('--batch <b>', 'sequences per micro-batch', int('--batch'), 8)
    .option('--seq <t>', 'positions per sequence', int('--seq'), 64)
    .option('--micro-batches <k>', 'micro-batches accumulated per optimizer step', int('--micro-batches'), 1)
    .option('--lr <lr>', 'peak learning rate', num('--lr'), 1e-3)
    .option('--min-lr <lr>', 'learning rate at the last step (cosine decay; default lr/10)', num('--min-lr'))
    .option('--warmup <n>', 'linear warmup steps (default min(100, steps/10))', parseNonNegative('--warmup'))
    .option('--mtp', 'include the MTP loss (default when the model has an MTP module)', true)
    .option('--no-mtp', 'train without the MTP loss')
    .option('--mtp-lambda <λ>', 'MTP loss weight λ', num('--mtp-lambda'), 0.3)
    .option('--bias-gamma <γ>', 'router-bias update speed γ (0 = off)', num('--bias-gamma'), 0.001)
    .option('--balance-alpha <α>', 'sequence-wise balance loss weight α (0 = off)', num('--balance-alpha'), 1e-4)
    .option('--seed <n>', 'seed of the preset init and the random window order', parseInteger('--seed'), 0)
    .option('--order <order>', 'window order: random | sequential', 'random')
    .addOption(dtypeOption())
    .option('--checkpoint-dir <dir>', 'write training checkpoints (weights, AdamW moments, step, data position) here')
    .option('--checkpoint-every <n>', 'checkpoint every n steps (and always at the end)', int('--checkpoint-every'))
    .option('--resume <file>', 'continue from a checkpoint (same model, data and flags): bit-identical to an uninterrupted run')
    .option('--out <dir>', 'save the trained model here (config.json + model.safetensors; with --lora: the adapter in the PEFT layout)')
    .option('--lora <glob>', 'train a LoRA adapter on the Linear modules matching GLOB (HF names without .weight, e.g. "*.self_attn.q_b_proj"; repeatable); the base stays frozen', collect)
    .option('--lora-rank <r>', 'LoRA rank r (default 8)', int('--lora-rank'))
    .option('--lora-alpha <α>', "LoRA α; the update is scaled by α/r (default 8, PEFT's)", num('--lora-alpha'))
    .option('--lora-dropout <p>', 'dropout on the LoRA input during training, masks seeded by --seed (default 0)', num('--lora-dropout'))
    .option('--topk <k>', "route each token to k experts (default: the config's num_experts_per_tok)", int('--topk'))
    .option('--topk-group <g>', "groups kept per token (default: the config's topk_group)", int('--topk-group'))
    .option('--numerics <mode>', TRAIN_NUMERICS_HELP, parseTrainNumericsFlag, 'exact' as TrainNumerics)
    .option('--adam-moments <dtype>', 'AdamW moment precision: param (the weights\' dtype, default) | bf16 (as DeepSeek-V3\'s FP8 training)', 'param')
    .option('--log-every <n>', 'print a line every n steps (default steps/20)', int('--log-every'))
    .option('--json', 'print a JSON summary with the per-step history on stdout (no progress bar)');
  addFp8TrainOptions(addBackendOptions(cmd));
  addGuardOptions(cmd, { weights: true, positions: true })
    .addHelpText(
      'after',
      '\nExamples:\n  $ dsv3 train --preset tiny --steps 400 --lr 3e-3 --out ./tiny-trained\n' +
        '  $ dsv3 train --preset tiny --steps 300 --numerics fp8-train --fp8-scale-fmt ue8m0 --adam-moments bf16 --json\n' +
        '  $ dsv3 train --preset tiny --steps 400 --checkpoint-dir ckpt --checkpoint-every 100\n' +
        '  $ dsv3 train --preset tiny --steps 400 --resume ckpt/step-000200.safetensors --out ./tiny-trained\n' +
        "  $ dsv3 train --model ./tiny-trained --lora '*.self_attn.q_b_proj' --lora '*.self_attn.o_proj' --lora-rank 4 --out ./tiny-lora",
    )
    .action(async (flags: TrainFlags & Fp8TrainFlags) => {
      if (flags.warmup !== undefined && !Number.isInteger(flags.warmup)) throw new CliUsageError(`--warmup must be a non-negative integer, got ${flags.warmup}`);
      await runTrain(flags);
    });
}
