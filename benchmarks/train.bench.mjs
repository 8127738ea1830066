// Training-step benchmark (compiled library in ../dist): the `bench` preset at batch 4 × 128, f32, wasm kernels.
// One step = forward over all positions → mean next-token CE → backward → AdamW, with MTP and the balance loss off:
// the step that benchmarks/torch/deepseek_v3_bench.py runs in PyTorch (a restatement of the official model code),
// timed in the same run with 1 thread and with as many threads as ours, on the same config and token ids. No
// constants: without torch the ratio is reported as unavailable. Prints tokens/s by wall clock (median and best
// step) and by the process's CPU time (user + system: on a shared, loaded machine the wall clock also counts waiting
// for a core), and the per-phase breakdown from `lossAndGrads({ profile })` plus the optimizer.
// With --kernels it then times every f32 kernel call of 3 more steps by kernel and shape, and the time outside the
// kernels (JS loops, copies, allocation), to show the next optimisation target.
// Flags: --json, --kernels, --threads N, --variant simd|relaxed-simd, --no-torch (benchmarks/bench_model.mjs).
// Run: npm run build && node benchmarks/train.bench.mjs [flags]   (or: npm run bench -- train)
import { AdamW, kernelsFor, residentBuffers } from '../dist/index.js';
import { benchFlags, benchModel, machineInfo, makeLog, median, seededIds, selectBackend } from './bench_model.mjs';
import { torchBaseline, torchLabel } from './torch_baseline.mjs';

/** A seeded batch of B rows of T+1 ids (inputs ids[:, :T], targets ids[:, 1:]). */
function tokenBatch(B, T, vocab, seed) {
  return { ids: seededIds(B * (T + 1), vocab, seed), B, T };
}

/**
 * Times `steps` training steps after `warmup` untimed ones. Returns per-step wall and CPU seconds and the mean ms
 * per phase (phases of lossAndGrads, plus 'optimizer').
 */
function timeSteps(model, optimizer, batch, { warmup, steps, lr, grads: buffers }) {
  const wall = [];
  const cpu = [];
  const phases = new Map();
  for (let i = 0; i < warmup + steps; i++) {
    const timed = i >= warmup;
    const profile = timed ? (phase, ms) => phases.set(phase, (phases.get(phase) ?? 0) + ms) : undefined;
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const { grads } = model.lossAndGrads(batch, { mtp: false, balanceAlpha: 0, grads: buffers, ...(profile ? { profile } : {}) });
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

/**
 * Wraps every method of the f32 kernel set to sum its time by kernel, layout and shape while `on()`; returns the
 * stats and the switch. Benchmark-only instrumentation (it reassigns the kernel object's methods).
 */
function instrumentKernels() {
  const kern = kernelsFor('float32');
  const stats = new Map();
  let active = false;
  for (const name of Object.keys(kern)) {
    const f = kern[name];
    if (typeof f !== 'function' || name === 'memoryBytes') continue;
    kern[name] = function (...args) {
      if (!active) return f.apply(this, args);
      const t0 = performance.now();
      const r = f.apply(this, args);
      const ms = performance.now() - t0;
      let key = name;
      if (name === 'matmul') key += ` ${args[0]} ${args[4]}×${args[5]}×${args[6]}${args[7] ? ' +=' : ''}`;
      if (name === 'matmulBatched') key += ` ${args[0]} ${args[4]}·(${args[5]}×${args[6]}×${args[7]})`;
      const st = stats.get(key) ?? { calls: 0, ms: 0 };
      st.calls++;
      st.ms += ms;
      stats.set(key, st);
      return r;
    };
  }
  return { stats, on: (v) => (active = v) };
}

/** Times `steps` steps with every kernel call timed; prints time by kernel and the largest call kinds. */
function kernelBreakdown(log, model, optimizer, batch, steps, top = 15) {
  const { stats, on } = instrumentKernels();
  on(true);
  const t0 = performance.now();
  for (let i = 0; i < steps; i++) optimizer.step(model.lossAndGrads(batch, { mtp: false, balanceAlpha: 0 }).grads, 1e-4);
  const total = (performance.now() - t0) / steps;
  on(false);
  const byKernel = new Map();
  let inKernels = 0;
  for (const [key, st] of stats) {
    const k = key.split(' ')[0];
    byKernel.set(k, (byKernel.get(k) ?? 0) + st.ms / steps);
    inKernels += st.ms / steps;
  }
  const pct = (ms) => `${ms.toFixed(1)} ms (${((ms / total) * 100).toFixed(0)}%)`;
  log(`  kernels (wall, mean of ${steps} instrumented steps of ${total.toFixed(0)} ms): outside kernels ${pct(total - inKernels)}`);
  log(`  ${[...byKernel].sort((a, b) => b[1] - a[1]).map(([k, ms]) => `${k} ${pct(ms)}`).join(', ')}`);
  for (const [key, st] of [...stats].sort((a, b) => b[1].ms - a[1].ms).slice(0, top)) {
    log(`  ${(st.ms / steps).toFixed(1).padStart(7)} ms ${String(st.calls / steps).padStart(5)} calls  ${key}`);
  }
  return { totalMs: total, outsideKernelsMs: total - inKernels, byKernelMs: Object.fromEntries(byKernel) };
}

/** Runs the training-step benchmark and the PyTorch baseline; returns the figures (also printed). */
export async function run({ backend = 'wasm', variant = 'auto', threads = 1, B = 4, T = 128, warmup = 2, steps = 8, kernels = false, torch = true, resident = false, log = console.log } = {}) {
  const machine = await machineInfo();
  const info = await selectBackend(backend, variant, threads, resident);
  const { config, model, residentBytes } = benchModel();
  const optimizer = new AdamW(model.weights); // torch.optim.AdamW semantics, DeepSeek-V3 defaults
  // gradient buffers reused every step, as the Trainer does (resident in wasm memory when it is shared)
  const grads = residentBuffers(model.weights);
  const batch = tokenBatch(B, T, config.vocabSize, 1);
  const tokens = B * T;
  log(`${machine.cpu} (${machine.logicalCpus} logical CPUs), load average ${machine.loadavg.join(' ')}; node ${machine.node}`);
  log(`weights resident in wasm memory: ${(residentBytes / 2 ** 20).toFixed(1)} MiB (shared memory: --threads > 1 or --resident)`);

  // PyTorch first with 1 thread, then ours, then PyTorch with our thread count (when it differs): one run
  const torchRuns = [];
  if (torch) torchRuns.push(torchBaseline({ config, mode: 'train', B, T, threads: 1, warmup, steps }));
  const { wall, cpu, phases } = timeSteps(model, optimizer, batch, { warmup, steps, lr: 1e-4, grads });
  if (torch && threads !== 1) torchRuns.push(torchBaseline({ config, mode: 'train', B, T, threads, warmup, steps }));

  const wallMedian = median(wall);
  const wallBest = Math.min(...wall);
  const cpuMedian = median(cpu);
  const results = {
    bench: 'train',
    machine,
    backend: info.float32,
    threads,
    residentBytes,
    batch: B,
    seq: T,
    steps,
    wallSeconds: { median: wallMedian, best: wallBest },
    cpuSeconds: { median: cpuMedian },
    tokensPerSecond: { wallMedian: tokens / wallMedian, wallBest: tokens / wallBest, cpu: tokens / cpuMedian },
    phasesMs: Object.fromEntries(phases),
    torch: torchRuns,
  };
  const r = results.tokensPerSecond;
  log(
    `train step bench preset ${B}×${T} [${info.float32}, ${threads} thread${threads === 1 ? '' : 's'}], ${steps} steps: wall median ${(wallMedian * 1000).toFixed(0)} ms ` +
      `(${r.wallMedian.toFixed(0)} tokens/s), best ${(wallBest * 1000).toFixed(0)} ms (${r.wallBest.toFixed(0)} tokens/s), ` +
      `CPU ${(cpuMedian * 1000).toFixed(0)} ms (${r.cpu.toFixed(0)} tokens/s)`,
  );
  if (!torch) log('  PyTorch baseline skipped (--no-torch): no ratio');
  for (const t of torchRuns) {
    if (!t.available) {
      log(`  ${t.reason}`);
      continue;
    }
    t.ratio = t.wallSeconds.median / wallMedian; // ours/torch in tokens/s
    // by CPU time (all threads of each process): on a loaded machine, what each step costs rather than when it ends
    t.cpuRatio = t.cpuSeconds.median / cpuMedian;
    log(
      `  ${torchLabel(t)}: wall median ${(t.wallSeconds.median * 1000).toFixed(0)} ms (${t.tokensPerSecond.toFixed(0)} tokens/s), ` +
        `CPU ${(t.cpuSeconds.median * 1000).toFixed(0)} ms; ours / torch = ${t.ratio.toFixed(2)}× by wall clock, ${t.cpuRatio.toFixed(2)}× by CPU time`,
    );
  }
  const total = [...phases.values()].reduce((a, b) => a + b, 0);
  log('  phase (mean per step)        ms      %');
  for (const [phase, ms] of [...phases].sort((a, b) => b[1] - a[1])) {
    log(`  ${phase.padEnd(24)} ${ms.toFixed(1).padStart(7)} ${((ms / total) * 100).toFixed(1).padStart(6)}`);
  }
  log(`  ${'total'.padEnd(24)} ${total.toFixed(1).padStart(7)}`);
  if (kernels) results.kernels = kernelBreakdown(log, model, optimizer, batch, 3);
  return results;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const flags = benchFlags();
  const results = await run({ ...flags, log: makeLog(flags.json) });
  if (flags.json) console.log(JSON.stringify(results, null, 2));
}
