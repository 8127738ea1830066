// Shared pieces of the training experiments (issue 4 evidence): the bundled corpus split into train and
// held-out parts, a tiny-preset Trainer with the demo's recipe, and the figures the scripts print.
// Needs the built library: `npm run build` (or `npm run build:ts` after the wasm build) first.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { unigramEntropy } from '../../dist/demo/entropy.js';
import { heldOutLoss } from '../../dist/demo/evaluate.js';
import { TrainingHistory, windowMeans } from '../../dist/demo/history.js';
import { useBackend } from '../../dist/kernels/index.js';
import { DeepSeekV3 } from '../../dist/model/model.js';
import { getPreset } from '../../dist/model/presets.js';
import { initWeights } from '../../dist/model/weights.js';
import { bytesToTokens, TokenStream } from '../../dist/train/data.js';
import { Trainer } from '../../dist/train/trainer.js';

export { heldOutLoss, unigramEntropy, windowMeans };

/** Flags every experiment takes; `defaults` overrides the common defaults. */
export function experimentArgs(defaults = {}) {
  const d = { steps: '800', batch: '8', seq: '64', lr: '3e-3', warmup: '20', seed: '1', window: '100', backend: 'wasm', ...defaults };
  const { values } = parseArgs({ options: Object.fromEntries(Object.entries(d).map(([k, v]) => [k, { type: 'string', default: v }])) });
  // numbers, except the backend name and lists
  return Object.fromEntries(Object.entries(values).map(([k, v]) => [k, k === 'backend' || k === 'seeds' ? v : Number(v)]));
}

/** The bundled corpus as byte tokens, split 90 % train / 10 % held out (the demo's split). */
export function corpus() {
  const tokens = bytesToTokens(new Uint8Array(readFileSync(new URL('../../data/tiny-corpus.txt', import.meta.url))));
  const split = Math.floor(tokens.length * 0.9);
  return { tokens, train: tokens.subarray(0, split), held: tokens.subarray(split) };
}

/** H(X_t | X_{t−1}) of the corpus in nats: the loss of the best bigram model fitted to the whole corpus (optimistic). */
export function bigramConditionalEntropy(tokens) {
  const pairs = new Map();
  for (let i = 1; i < tokens.length; i++) {
    const k = tokens[i - 1] * 256 + tokens[i];
    pairs.set(k, (pairs.get(k) ?? 0) + 1);
  }
  const n = tokens.length - 1;
  let joint = 0;
  for (const c of [...pairs.values()].sort((a, b) => a - b)) joint -= (c / n) * Math.log(c / n);
  return joint - unigramEntropy(tokens.subarray(0, n)); // H(X_{t−1}, X_t) − H(X_{t−1})
}

/** Selects the f32 kernels and says which run. */
export async function selectBackend(name) {
  const info = await useBackend(name);
  console.log(`f32 kernels: ${info.float32}`);
  return info;
}

/**
 * Trains the tiny preset from seed `args.seed` on `train` with the demo recipe (cosine lr, bias γ 0.001,
 * balance α 1e-4, λ 0.3) and `mtp` on or off. `onWindow(step, history, model)` runs every `args.window` steps.
 */
export function trainTiny(train, args, { mtp, biasGamma = 0.001, onWindow } = {}) {
  const config = getPreset('tiny');
  const model = new DeepSeekV3(config, initWeights(config, { seed: args.seed }));
  const history = new TrainingHistory();
  const trainer = new Trainer(model, {
    data: new TokenStream(train, { batchSize: args.batch, seqLen: args.seq, order: 'random', seed: args.seed }),
    lr: { kind: 'cosine', peak: args.lr, warmupSteps: args.warmup, holdSteps: 0, decaySteps: Math.max(1, args.steps - args.warmup), min: args.lr / 10 },
    biasGamma,
    mtpLambda: 0.3,
    lossOptions: { mtp, balanceAlpha: 1e-4 },
    onStep: (r) => {
      history.add(r);
      if (r.step % args.window === 0) onWindow?.(r.step, history, model);
    },
  });
  const t0 = performance.now();
  trainer.train(args.steps);
  const seconds = (performance.now() - t0) / 1000;
  return { model, history, seconds };
}

/**
 * Greedy MTP speculative decoding from `count` prompts of `promptLen` bytes cut from `held` (evenly spaced),
 * `newTokens` each: the drafts accepted over all prompts.
 */
export function acceptanceOnHeldOut(model, held, { count = 8, promptLen = 32, newTokens = 64 } = {}) {
  let drafted = 0;
  let accepted = 0;
  const stride = Math.floor((held.length - promptLen) / count);
  for (let i = 0; i < count; i++) {
    const prompt = Array.from(held.subarray(i * stride, i * stride + promptLen));
    const r = model.generate(prompt, { maxNewTokens: newTokens, speculative: 'mtp' });
    drafted += r.drafted;
    accepted += r.accepted;
  }
  return { drafted, accepted, rate: accepted / drafted };
}

/** `x` with 3 decimals. */
export const f3 = (x) => x.toFixed(3);
