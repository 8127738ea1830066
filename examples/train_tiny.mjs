// Training API example: a few optimizer steps of the `tiny` preset on the bundled corpus, with MTP, the
// sequence-wise balance loss and router-bias balancing on. Run it after `npm run build` with
// `node examples/train_tiny.mjs` (tests/examples/examples.test.ts runs it and checks what it prints).
import { readFileSync } from 'node:fs';
import { DeepSeekV3, getPreset, initWeights, Trainer, TokenStream, bytesToTokens, useBackend } from 'deepseek-v3-ref';

const backend = await useBackend('wasm'); // f32 on the WebAssembly SIMD kernels; throws if the engine has no SIMD
const config = getPreset('tiny');
const model = new DeepSeekV3(config, initWeights(config, { seed: 0, dtype: 'float32' }));
const corpus = bytesToTokens(readFileSync(new URL('../data/tiny-corpus.txt', import.meta.url))); // byte-level ids, vocab 256

const trainer = new Trainer(model, {
  data: new TokenStream(corpus, { batchSize: 4, seqLen: 32, order: 'random', seed: 0 }),
  lr: { kind: 'cosine', peak: 3e-3, warmupSteps: 5, holdSteps: 0, decaySteps: 25, min: 3e-4 },
  // V3's bias step γ = 0.001 is tuned for trillions of tokens; in 30 steps it cannot undo the early collapse of the
  // routing onto a few experts, so this short run uses a larger step (γ = 0 would leave the collapse in place).
  biasGamma: 0.01,
  // other defaults: AdamW β = (0.9, 0.95), wd 0.1; clip 1.0; MTP λ 0.3; balance α 1e-4
});
console.log(`f32 kernels: ${backend.float32}`);
for (const r of trainer.train(30)) {
  if (r.step % 10 === 0 || r.step === 1) {
    const layer1 = r.loads[0].stats; // expert load of the first MoE layer over the step (max/mean = E/K = 4: every token picks one expert)
    console.log(
      `step ${r.step} loss ${r.loss.total.toFixed(4)} (main ${r.loss.main.toFixed(4)}, mtp ${r.loss.mtp.toFixed(4)}) ` +
        `lr ${r.lr.toExponential(2)} |g| ${r.gradNorm.toFixed(3)} max/mean load ${layer1.maxOverMean.toFixed(2)}`,
    );
  }
}
const bias = model.weights.get('model.layers.1.mlp.gate.e_score_correction_bias').data;
console.log(`layer 1 router bias after 30 steps: min ${Math.min(...bias).toFixed(3)} max ${Math.max(...bias).toFixed(3)}`);
