// Training-step benchmark (compiled library in ../dist): the `bench` preset at batch 4 × 128, f32, wasm kernels,
// one thread. One step = forward over all positions → mean next-token CE → backward → AdamW, with MTP and the
// balance loss off: the step PyTorch runs with the official model code (≈ 1,000 tokens/s on these machines,
// OpenBLAS 1 thread; target ≥ 0.5×). Prints tokens/s by wall clock (median and best step) and by the process's CPU
// time (user + system: on a shared, loaded machine it is what the step costs, the wall clock also counts waiting
// for a core), and the per-phase breakdown from `lossAndGrads({ profile })` plus the optimizer.
// Run: npm run build:ts && node benchmarks/train.bench.mjs   (or through benchmarks/run.mjs: npm run bench -- train)
import { AdamW, DeepSeekV3, backendInfo, getPreset, initWeights, useBackend } from '../dist/index.js';

const PYTORCH_TOKENS_PER_SECOND = 1000;

/** A seeded batch of B rows of T+1 ids (inputs ids[:, :T], targets ids[:, 1:]). */
function tokenBatch(B, T, vocab, seed) {
  let x = seed >>> 0;
  const ids = new Int32Array(B * (T + 1));
  for (let i = 0; i < ids.length; i++) ids[i] = (x = (Math.imul(x, 1664525) + 1013904223) >>> 0) % vocab;
  return { ids, B, T };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/**
 * Times `steps` training steps after `warmup` untimed ones. Returns per-step wall and CPU seconds and the mean ms
 * per phase (phases of lossAndGrads, plus 'optimizer').
 */
function timeSteps(model, optimizer, batch, { warmup, steps, lr }) {
  const wall = [];
  const cpu = [];
  const phases = new Map();
  for (let i = 0; i < warmup + steps; i++) {
    const timed = i >= warmup;
    const profile = timed ? (phase, ms) => phases.set(phase, (phases.get(phase) ?? 0) + ms) : undefined;
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const { grads } = model.lossAndGrads(batch, { mtp: false, balanceAlpha: 0, ...(profile ? { profile } : {}) });
    const t1 = performance.now();
    optimizer.step(grads, lr);
    const t2 = performance.now();
    const c = process.cpuUsage(c0);
    if (!timed) continue;
    profile('optimizer', t2 - t1);
    wall.push((t2 - t0) / 1000);
    cpu.push((c.user + c.system) / 1e6);
  }
  for (const [k, v] of phases) phases.set(k, v / steps);
  return { wall, cpu, phases };
}

/** Runs the training-step benchmark; returns the figures (also printed). */
export async function run({ backend = 'wasm', B = 4, T = 128, warmup = 2, steps = 8 } = {}) {
  try {
    await useBackend(backend);
  } catch (e) {
    console.warn(`backend '${backend}' unavailable (${e.message}); using js`);
    await useBackend('js');
  }
  const info = backendInfo();
  const config = getPreset('bench');
  const model = new DeepSeekV3(config, initWeights(config, { seed: 0, dtype: 'float32' }));
  const optimizer = new AdamW(model.weights); // torch.optim.AdamW semantics, DeepSeek-V3 defaults
  const batch = tokenBatch(B, T, config.vocabSize, 1);
  const { wall, cpu, phases } = timeSteps(model, optimizer, batch, { warmup, steps, lr: 1e-4 });

  const tokens = B * T;
  const wallMedian = median(wall);
  const wallBest = Math.min(...wall);
  const cpuMedian = median(cpu);
  const results = {
    backend: info.float32,
    batch: B,
    seq: T,
    steps,
    wallSeconds: { median: wallMedian, best: wallBest },
    cpuSeconds: { median: cpuMedian },
    tokensPerSecond: { wallMedian: tokens / wallMedian, wallBest: tokens / wallBest, cpu: tokens / cpuMedian },
    vsPyTorch: tokens / wallMedian / PYTORCH_TOKENS_PER_SECOND,
    phasesMs: Object.fromEntries(phases),
  };
  const r = results.tokensPerSecond;
  console.log(
    `train step bench preset ${B}×${T} [${info.float32}], ${steps} steps: wall median ${(wallMedian * 1000).toFixed(0)} ms ` +
      `(${r.wallMedian.toFixed(0)} tokens/s, ${((r.wallMedian / PYTORCH_TOKENS_PER_SECOND) * 100).toFixed(0)}% of PyTorch's ≈1,000), ` +
      `best ${(wallBest * 1000).toFixed(0)} ms (${r.wallBest.toFixed(0)} tokens/s), ` +
      `CPU ${(cpuMedian * 1000).toFixed(0)} ms (${r.cpu.toFixed(0)} tokens/s)`,
  );
  const total = [...phases.values()].reduce((a, b) => a + b, 0);
  console.log('  phase (mean per step)        ms      %');
  for (const [phase, ms] of [...phases].sort((a, b) => b[1] - a[1])) {
    console.log(`  ${phase.padEnd(24)} ${ms.toFixed(1).padStart(7)} ${((ms / total) * 100).toFixed(1).padStart(6)}`);
  }
  console.log(`  ${'total'.padEnd(24)} ${total.toFixed(1).padStart(7)}`);
  return results;
}

if (import.meta.url === `file://${process.argv[1]}`) await run();
