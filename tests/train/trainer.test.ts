import { describe, expect, it } from 'vitest';
import { loadCheckpoint, saveCheckpoint } from '../../src/train/checkpoint.js';
import { TokenStream } from '../../src/train/data.js';
import { Trainer, type TrainerOptions, type TrainStepReport } from '../../src/train/trainer.js';
import type { DType, Tensor } from '../../src/tensor.js';
import { TOY_BIAS, ToyBigram } from './toy_model.js';

const V = 12;
const E = 4;
// a corpus with structure: token i is followed by (3i + 1) mod V most of the time
const corpus = Int32Array.from({ length: 400 }, (_, i) => (i % 7 === 0 ? i % V : 0));
for (let i = 1; i < corpus.length; i++) if (i % 7 !== 0) corpus[i] = (3 * corpus[i - 1]! + 1) % V;

function makeTrainer(dtype: DType, seed: number, onStep?: (r: TrainStepReport) => void): Trainer {
  const model = new ToyBigram(V, E, dtype, seed);
  const opts: TrainerOptions = {
    data: new TokenStream(corpus, { batchSize: 2, seqLen: 8, order: 'random', seed: 5 }),
    microBatches: 2,
    // phase boundaries inside the 10 steps (32 tokens per step): warmup 3 steps, decay from 96 tokens over 128
    lr: { kind: 'paper', peak: 0.05, warmupSteps: 3, decayStartTokens: 96, decayTokens: 128, min: 0.005, tail: [{ fromTokens: 256, lr: 0.002 }] },
    maxGradNorm: 0.5,
    biasGamma: { initial: 0.01, final: 0, switchTokens: 224 },
    mtpLambda: { initial: 0.3, final: 0.1, switchTokens: 128 },
  };
  if (onStep !== undefined) opts.onStep = onStep;
  return new Trainer(model, opts);
}

const bits = (t: Tensor): number[] => Array.from(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));

describe('Trainer with a toy model', () => {
  it('reports loss, grad norm, lr and loads per step, and the loss falls', () => {
    const reports: TrainStepReport[] = [];
    const tr = makeTrainer('float64', 1, (r) => reports.push(r));
    tr.train(10);
    expect(reports.map((r) => r.step)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(reports[0]!.lr).toBeCloseTo(0.05 / 3, 15);
    expect(reports[2]!.lr).toBe(0.05);
    expect(reports[9]!.lr).toBe(0.002); // 288 tokens ≥ 256 before step 10
    expect(reports[9]!.tokensTotal).toBe(320);
    expect(reports[7]!.biasGamma).toBe(0); // 224 tokens consumed before step 8
    for (const r of reports) {
      expect(r.tokens).toBe(32);
      expect(r.loads).toHaveLength(1);
      expect(r.loads[0]!.stats.total).toBe(32); // top-1 over 2 micro-batches × 2 × 8 tokens
      expect(r.gradNorm).toBeGreaterThan(0);
    }
    expect(reports[9]!.loss.main).toBeLessThan(reports[0]!.loss.main - 0.1);
    // the bias moved (γ = 0.01 for the first 7 steps), in multiples of γ
    const b = Array.from(tr.model.weights.get(TOY_BIAS)!.data);
    expect(b.some((x) => x !== 0)).toBe(true);
  });

  for (const dtype of ['float32', 'float64'] as DType[]) {
    it(`checkpoint resume is bit-identical to an uninterrupted run (${dtype}): 10 steps vs 5 + save + load + 5`, () => {
      const straight = makeTrainer(dtype, 1);
      const straightReports = straight.train(10);

      const first = makeTrainer(dtype, 1);
      first.train(5);
      const bytes = saveCheckpoint(first);
      // a fresh trainer with a different init: everything must come from the checkpoint
      const resumed = makeTrainer(dtype, 77);
      loadCheckpoint(resumed, bytes);
      expect(resumed.step).toBe(5);
      const resumedReports = resumed.train(5);

      expect(resumed.step).toBe(10);
      expect(resumed.tokens).toBe(straight.tokens);
      for (const [name, t] of straight.model.weights) expect(bits(resumed.model.weights.get(name)!), name).toEqual(bits(t));
      const a = straight.optimizer.exportState();
      const b = resumed.optimizer.exportState();
      expect(b.step).toBe(a.step);
      for (const [name, t] of a.m) expect(bits(b.m.get(name)!), `m ${name}`).toEqual(bits(t));
      for (const [name, t] of a.v) expect(bits(b.v.get(name)!), `v ${name}`).toEqual(bits(t));
      expect(resumedReports.map((r) => [r.loss.main, r.gradNorm, r.lr])).toEqual(straightReports.slice(5).map((r) => [r.loss.main, r.gradNorm, r.lr]));
      expect(resumed.data.getState()).toEqual(straight.data.getState());
    });
  }

  it('rejects a checkpoint of another precision or a foreign file, naming the tensor', () => {
    const t32 = makeTrainer('float32', 1);
    t32.train(1);
    const bytes = saveCheckpoint(t32);
    expect(() => loadCheckpoint(makeTrainer('float64', 1), bytes)).toThrow(/embed\.weight|scale\.weight/);
    const other = makeTrainer('float32', 1);
    other.model.weights.set('extra.weight', other.model.weights.get('scale.weight')!.clone());
    expect(() => loadCheckpoint(other, bytes)).toThrow(/extra\.weight/);
  });
});
