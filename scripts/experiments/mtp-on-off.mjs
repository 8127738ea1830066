// Issue 4 evidence: MTP on vs off. Two runs of the tiny preset from the same init seed over the same
// batches (same data seed); only the MTP loss (λ = 0.3) differs. Prints the main-token training CE averaged
// over windows of steps (single steps are noisy), the held-out main CE at each window, and after training
// the acceptance rate of greedy speculative decoding with the MTP module on held-out prompts (for the MTP-off
// run too: its MTP module is still at its random init, the baseline a trained module must beat).
// Usage (after `npm run build`):
//   node scripts/experiments/mtp-on-off.mjs [--steps 800] [--batch 8] [--seq 64] [--lr 3e-3] [--seed 1] [--window 100] [--backend wasm]
import { acceptanceOnHeldOut, corpus, experimentArgs, f3, heldOutLoss, selectBackend, trainTiny, windowMeans } from './common.mjs';

const args = experimentArgs();
await selectBackend(args.backend);
const { train, held } = corpus();
console.log(`tiny preset, ${args.steps} steps × ${args.batch}×${args.seq} bytes, lr ${args.lr}, seed ${args.seed} (weights and data order), γ 0.001, α 1e-4`);
const runs = {};
for (const mtp of [true, false]) {
  const heldCurve = [];
  const r = trainTiny(train, args, { mtp, onWindow: (_step, _h, m) => heldCurve.push(heldOutLoss(m, held, { seqLen: args.seq })) });
  runs[mtp ? 'on' : 'off'] = { ...r, heldCurve, main: windowMeans(r.history.steps.map((s) => s.main), args.window) };
  console.log(`MTP ${mtp ? 'on ' : 'off'}: ${r.seconds.toFixed(1)} s`);
}
console.log(`\nmain-token CE (nats/byte), window means of ${args.window} steps; held-out CE at the window's end`);
console.log('  steps    | train on | train off | Δ(on−off) | held on | held off | Δ(on−off)');
runs.on.main.forEach((_, i) => {
  const lo = i * args.window + 1;
  const hi = Math.min((i + 1) * args.window, args.steps);
  const a = runs.on.main[i];
  const b = runs.off.main[i];
  const ha = runs.on.heldCurve[i];
  const hb = runs.off.heldCurve[i];
  const held = ha === undefined ? '        |          |' : ` ${f3(ha).padStart(7)} | ${f3(hb).padStart(8)} | ${(ha - hb >= 0 ? '+' : '') + f3(ha - hb)}`;
  console.log(`${`${lo}-${hi}`.padEnd(10)}| ${f3(a).padStart(8)} | ${f3(b).padStart(9)} | ${((a - b >= 0 ? '+' : '') + f3(a - b)).padStart(9)} |${held}`);
});
for (const k of ['on', 'off']) {
  const acc = acceptanceOnHeldOut(runs[k].model, held);
  console.log(`RESULT MTP ${k.padEnd(3)}: final held-out main CE ${f3(runs[k].heldCurve.at(-1) ?? heldOutLoss(runs[k].model, held, { seqLen: args.seq }))}, speculative-decoding acceptance ${(100 * acc.rate).toFixed(1)} % (${acc.accepted}/${acc.drafted} drafts, 8 held-out prompts × 64 bytes)`);
}
