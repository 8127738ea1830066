/**
 * The demo (`npm run demo`): train the `tiny` preset on the bundled byte-level corpus with MTP and
 * auxiliary-loss-free bias balancing on, then sample from it with MTP speculative decoding and verify
 * the trained model against itself (attention paths, f64 gradients, a trace through verify).
 * Browser-safe: the caller supplies the corpus bytes and does the file output (src/cli/commands/demo.ts).
 */
import { InputError } from '../errors.js';
import { DeepSeekV3, type TokenBatch } from '../model/model.js';
import { getPreset } from '../model/presets.js';
import { initWeights } from '../model/weights.js';
import type { ModelConfig } from '../model/config.js';
import { bytesToTokens, TokenStream } from '../train/data.js';
import { Trainer, type TrainStepReport } from '../train/trainer.js';
import { checkAttentionPaths, checkGradients, checkSpeculativeGreedy, checkTraceRoundTrip, type DemoCheck, type GradientCheck, type SpeculativeCheck, type TraceCheck } from './checks.js';
import { unigramEntropy } from './entropy.js';
import { heldOutLoss } from './evaluate.js';
import { TrainingHistory, type HistoryStep } from './history.js';

/** Settings of a demo run (defaults: {@link DEMO_DEFAULTS}). */
export interface DemoOptions {
  /** Preset trained (byte-level vocab ≥ 256 and an MTP module needed). */
  preset: string;
  /** Optimizer steps. */
  steps: number;
  /** Sequences per step. */
  batch: number;
  /** Positions per sequence. */
  seqLen: number;
  /** Peak learning rate (after a linear warmup, cosine down to peak/10 at the last step). */
  lr: number;
  /** Warmup steps. */
  warmup: number;
  /** Seed of the weights and of the random window order. */
  seed: number;
  /** Router-bias update speed γ (SPEC §5.2). */
  biasGamma: number;
  /** Sequence-wise balance loss α (SPEC §5.3). */
  balanceAlpha: number;
  /** MTP loss weight λ (SPEC §4.2). */
  mtpLambda: number;
  /** Share of the corpus (its tail) held out of training for the held-out loss. */
  heldOutFraction: number;
  /** Prompt of the sample. */
  prompt: string;
  /** Bytes generated for the sample. */
  sampleTokens: number;
}

/**
 * Defaults: ≈ 1 min of training on 2 cores with the wasm backend (800 steps × 8×64 bytes = 410k tokens;
 * measured ~55 s of CPU for the training). lr 3e-3: a 64-wide model trains stably and fast there; 800×8
 * reached the same held-out loss as 500×16 (0.45 nats/byte) with less compute.
 */
export const DEMO_DEFAULTS: Readonly<DemoOptions> = Object.freeze({
  preset: 'tiny',
  steps: 800,
  batch: 8,
  seqLen: 64,
  lr: 3e-3,
  warmup: 20,
  seed: 1,
  biasGamma: 0.001,
  balanceAlpha: 1e-4,
  mtpLambda: 0.3,
  heldOutFraction: 0.1,
  prompt: 'Kira found',
  sampleTokens: 200,
});

/** Callbacks of {@link runDemo}. */
export interface DemoHooks {
  /** After each optimizer step. */
  onStep?: (step: HistoryStep, report: TrainStepReport) => void;
  /** When a phase starts ('train', 'evaluate', 'sample', 'verify'). */
  onPhase?: (phase: string) => void;
}

/** Everything a demo run produced. */
export interface DemoResult {
  options: DemoOptions;
  config: ModelConfig;
  /** The trained model (f32). */
  model: DeepSeekV3;
  corpus: { bytes: number; trainTokens: number; heldOutTokens: number; unigramEntropy: number };
  /** Held-out main CE before and after training (nats/byte). */
  heldOut: { before: number; after: number };
  history: TrainingHistory;
  sample: { prompt: string; text: string; tokens: number[]; acceptanceRate: number | null; drafted: number; accepted: number };
  checks: { attention: DemoCheck; gradients: GradientCheck; trace: TraceCheck; speculative: SpeculativeCheck };
  /** Wall-clock seconds per phase. */
  seconds: { train: number; evaluate: number; sample: number; verify: number; total: number };
}

/** Held-out windows evaluated (64 × T tokens): enough for a stable mean, cheap next to training. */
const HELD_OUT_WINDOWS = 64;

/** Bytes → text, invalid UTF-8 shown as U+FFFD (a byte model may emit a partial sequence). */
export function tokensToText(tokens: readonly number[]): string {
  return new TextDecoder('utf-8', { fatal: false }).decode(Uint8Array.from(tokens.filter((t) => t >= 0 && t < 256)));
}

function windowBatch(tokens: Int32Array, B: number, T: number): TokenBatch {
  if (tokens.length < B * T + 1) throw new InputError(`demo: the held-out part has ${tokens.length} tokens, need ${B * T + 1}`);
  const ids = new Int32Array(B * (T + 1));
  for (let b = 0; b < B; b++) ids.set(tokens.subarray(b * T, b * T + T + 1), b * (T + 1));
  return { ids, B, T };
}

/** Checks demo options; InputError naming the option. */
function validate(o: DemoOptions, config: ModelConfig): void {
  const posInt: (keyof DemoOptions)[] = ['steps', 'batch', 'seqLen', 'sampleTokens'];
  for (const k of posInt) if (!Number.isInteger(o[k]) || (o[k] as number) < 1) throw new InputError(`demo: ${k} must be a positive integer, got ${String(o[k])}`);
  if (!(o.lr > 0)) throw new InputError(`demo: lr must be positive, got ${o.lr}`);
  if (!(o.heldOutFraction > 0 && o.heldOutFraction < 1)) throw new InputError(`demo: heldOutFraction must be in (0, 1), got ${o.heldOutFraction}`);
  if (config.vocabSize < 256) throw new InputError(`demo: preset '${o.preset}' has vocab ${config.vocabSize} < 256, too small for byte tokens`);
  if (config.numNextnPredictLayers < 1) throw new InputError(`demo: preset '${o.preset}' has no MTP module (num_nextn_predict_layers = 0)`);
  if (o.seqLen + 1 > config.maxPositionEmbeddings) throw new InputError(`demo: seqLen ${o.seqLen} exceeds the preset's ${config.maxPositionEmbeddings} positions`);
}

/** Runs the demo on `corpus` (UTF-8 bytes or text): train, evaluate, sample, verify. */
export function runDemo(corpus: Uint8Array | string, options: Partial<DemoOptions> = {}, hooks: DemoHooks = {}): DemoResult {
  const o: DemoOptions = { ...DEMO_DEFAULTS, ...options };
  const config = getPreset(o.preset);
  validate(o, config);
  const t0 = performance.now();
  const tokens = bytesToTokens(corpus);
  const split = Math.floor(tokens.length * (1 - o.heldOutFraction));
  const train = tokens.subarray(0, split);
  const held = tokens.subarray(split);
  if (held.length < 2 * o.seqLen + 1) throw new InputError(`demo: the held-out part has ${held.length} tokens, the checks need 2·seqLen + 1 = ${2 * o.seqLen + 1}`);
  const entropy = unigramEntropy(tokens);
  const model = new DeepSeekV3(config, initWeights(config, { seed: o.seed }));

  hooks.onPhase?.('train');
  const history = new TrainingHistory();
  const trainer = new Trainer(model, {
    data: new TokenStream(train, { batchSize: o.batch, seqLen: o.seqLen, order: 'random', seed: o.seed }),
    lr: { kind: 'cosine', peak: o.lr, warmupSteps: Math.min(o.warmup, o.steps), holdSteps: 0, decaySteps: Math.max(1, o.steps - o.warmup), min: o.lr / 10 },
    biasGamma: o.biasGamma,
    mtpLambda: o.mtpLambda,
    lossOptions: { mtp: true, balanceAlpha: o.balanceAlpha },
    onStep: (report) => {
      const recorded = history.add(report);
      hooks.onStep?.(recorded, report);
    },
  });
  const before = heldOutLoss(model, held, { seqLen: o.seqLen, maxWindows: HELD_OUT_WINDOWS });
  const t1 = performance.now();
  trainer.train(o.steps);
  const t2 = performance.now();

  hooks.onPhase?.('evaluate');
  const after = heldOutLoss(model, held, { seqLen: o.seqLen, maxWindows: HELD_OUT_WINDOWS });
  const t3 = performance.now();

  hooks.onPhase?.('sample');
  const prompt = Array.from(bytesToTokens(o.prompt));
  const speculative = checkSpeculativeGreedy(model, prompt, o.sampleTokens);
  const t4 = performance.now();

  hooks.onPhase?.('verify');
  const attention = checkAttentionPaths(model, held.slice(0, 2 * o.seqLen), 2, o.seqLen);
  const small = windowBatch(held, 1, 16);
  const gradients = checkGradients(model, small);
  const trace = checkTraceRoundTrip(model, small);
  const t5 = performance.now();

  return {
    options: o,
    config,
    model,
    corpus: { bytes: tokens.length, trainTokens: train.length, heldOutTokens: held.length, unigramEntropy: entropy },
    heldOut: { before, after },
    history,
    sample: {
      prompt: o.prompt,
      text: tokensToText(speculative.tokens),
      tokens: speculative.tokens,
      acceptanceRate: speculative.acceptanceRate,
      drafted: speculative.drafted,
      accepted: speculative.accepted,
    },
    checks: { attention, gradients, trace, speculative },
    seconds: { train: (t2 - t1) / 1000, evaluate: (t3 - t2 + (t1 - t0)) / 1000, sample: (t4 - t3) / 1000, verify: (t5 - t4) / 1000, total: (t5 - t0) / 1000 },
  };
}
