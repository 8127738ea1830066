// Issue 4 evidence: MTP on vs off. For each seed, two runs of the tiny preset from the same init over the
// same batches (the seed fixes both); only the MTP loss (λ = 0.3) differs. Prints the main-token training CE
// averaged over windows of steps (single steps are noisy), the held-out main CE at each window's end, the
// on − off differences averaged over seeds (the seed-to-seed spread is the noise to beat), and after training
// the acceptance rate of greedy speculative decoding with the MTP module on held-out prompts (for the MTP-off
// runs too: their MTP module is still at its random init, the baseline a trained module must beat).
// Usage (after `npm run build`; ~2 min of CPU per seed):
//   node scripts/experiments/mtp-on-off.mjs [--seeds 1,2] [--steps 800] [--batch 8] [--seq 64] [--lr 3e-3] [--window 100] [--backend wasm]
import { acceptanceOnHeldOut, corpus, experimentArgs, f3, heldOutLoss, selectBackend, trainTiny, windowMeans } from './common.mjs';

const args = experimentArgs({ seeds: '1,2' });
const seeds = args.seeds.split(',').map(Number);
await selectBackend(args.backend);
const { train, held } = corpus();
const signed = (x) => (x >= 0 ? '+' : '') + f3(x);
console.log(`tiny preset, ${args.steps} steps × ${args.batch}×${args.seq} bytes, lr ${args.lr}, γ 0.001, α 1e-4, seeds ${seeds.join(', ')}`);
const deltas = []; // per seed: { train: [...], held: [...] } on − off per window
for (const seed of seeds) {
  const runs = {};
  for (const mtp of [true, false]) {
    const heldCurve = [];
    const r = trainTiny(train, { ...args, seed }, { mtp, onWindow: (_step, _h, m) => heldCurve.push(heldOutLoss(m, held, { seqLen: args.seq })) });
    runs[mtp ? 'on' : 'off'] = { ...r, heldCurve, main: windowMeans(r.history.steps.map((s) => s.main), args.window) };
  }
  console.log(`\nseed ${seed} (MTP on ${runs.on.seconds.toFixed(1)} s, off ${runs.off.seconds.toFixed(1)} s): main-token CE (nats/byte), window means of ${args.window} steps; held-out CE at the window's end`);
  console.log('  steps    | train on | train off | Δ(on−off) | held on | held off | Δ(on−off)');
  const d = { train: [], held: [] };
  runs.on.main.forEach((a, i) => {
    const b = runs.off.main[i];
    const [ha, hb] = [runs.on.heldCurve[i], runs.off.heldCurve[i]];
    d.train.push(a - b);
    if (ha !== undefined) d.held.push(ha - hb);
    const heldCols = ha === undefined ? '         |          |' : ` ${f3(ha).padStart(7)} | ${f3(hb).padStart(8)} | ${signed(ha - hb)}`;
    const range = `${i * args.window + 1}-${Math.min((i + 1) * args.window, args.steps)}`;
    console.log(`${range.padEnd(10)}| ${f3(a).padStart(8)} | ${f3(b).padStart(9)} | ${signed(a - b).padStart(9)} |${heldCols}`);
  });
  deltas.push(d);
  for (const k of ['on', 'off']) {
    const acc = acceptanceOnHeldOut(runs[k].model, held);
    const final = runs[k].heldCurve.at(-1) ?? heldOutLoss(runs[k].model, held, { seqLen: args.seq });
    console.log(`RESULT seed ${seed} MTP ${k.padEnd(3)}: final held-out main CE ${f3(final)}, speculative-decoding acceptance ${(100 * acc.rate).toFixed(1)} % (${acc.accepted}/${acc.drafted} drafts, 8 held-out prompts × 64 bytes)`);
  }
}
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
const windows = deltas[0].train.length;
const meanTrain = Array.from({ length: windows }, (_, i) => mean(deltas.map((d) => d.train[i])));
const meanHeld = Array.from({ length: deltas[0].held.length }, (_, i) => mean(deltas.map((d) => d.held[i])));
console.log(`\nRESULT Δ main CE (MTP on − off) averaged over seeds, per window: train ${meanTrain.map(signed).join(' ')}`);
console.log(`RESULT                                                 held-out ${meanHeld.map(signed).join(' ')}`);
console.log(`RESULT last window: train Δ per seed ${deltas.map((d) => signed(d.train.at(-1))).join(', ')}; held-out Δ per seed ${deltas.map((d) => signed(d.held.at(-1) ?? NaN)).join(', ')}`);
