// Issue 4 evidence: the tiny preset (MTP on, bias balancing on) trained on the bundled corpus brings
// its loss far below the corpus unigram entropy (and below the bigram conditional entropy).
// Prints both entropies, the window-mean training loss, the held-out loss every window, and the final
// expert-load balance. Usage (after `npm run build`):
//   node scripts/experiments/tiny-training.mjs [--steps 800] [--batch 8] [--seq 64] [--lr 3e-3] [--seed 1] [--window 100] [--backend wasm]
import { bigramConditionalEntropy, corpus, experimentArgs, f3, heldOutLoss, selectBackend, trainTiny, unigramEntropy, windowMeans } from './common.mjs';

const args = experimentArgs();
await selectBackend(args.backend);
const { tokens, train, held } = corpus();
const h1 = unigramEntropy(tokens);
const h2 = bigramConditionalEntropy(tokens);
console.log(`corpus: ${tokens.length} bytes (${train.length} train, ${held.length} held out)`);
console.log(`unigram entropy H(X) = ${f3(h1)} nats/byte (${(h1 / Math.LN2).toFixed(2)} bits); bigram conditional entropy H(X_t|X_t-1) = ${f3(h2)} nats/byte`);
console.log(`training tiny: ${args.steps} steps × ${args.batch}×${args.seq} bytes, lr ${args.lr} (warmup ${args.warmup}, cosine to ${Number((args.lr / 10).toPrecision(6))}), MTP on, γ 0.001, α 1e-4, seed ${args.seed}`);
console.log('step | train main CE (window mean) | held-out CE | max/mean load (last step, per MoE layer)');
const evalHeld = (model) => heldOutLoss(model, held, { seqLen: args.seq });
const { model, history, seconds } = trainTiny(train, args, {
  mtp: true,
  onWindow: (step, h, m) => {
    const last = h.steps.slice(-args.window);
    const mean = last.reduce((a, s) => a + s.main, 0) / last.length;
    console.log(`${String(step).padStart(4)} | ${f3(mean).padStart(27)} | ${f3(evalHeld(m)).padStart(11)} | ${h.steps.at(-1).maxOverMean.map((x) => x.toFixed(2)).join(' ')}`);
  },
});
const final = evalHeld(model);
const tokensSeen = args.steps * args.batch * args.seq;
console.log(`trained ${tokensSeen} tokens in ${seconds.toFixed(1)} s (${(tokensSeen / seconds).toFixed(0)} tokens/s)`);
console.log(`RESULT held-out CE ${f3(final)} nats/byte vs unigram entropy ${f3(h1)} (${((100 * final) / h1).toFixed(1)} % of it) and bigram ${f3(h2)}`);
console.log(`RESULT train main CE over the last ${args.window} steps ${f3(windowMeans(history.steps.map((s) => s.main), args.window).at(-1))}`);
