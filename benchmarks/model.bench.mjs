// Model benchmarks (compiled library in ../dist): forward tokens/s of the `bench` preset at batch 4 × 128 (logits at
// every position), side by side with the PyTorch restatement of the official model code
// (benchmarks/torch/deepseek_v3_bench.py, same config and ids, 1 thread and our thread count, in this run; no
// constants), and decode tokens/s with the naive vs the absorbed (latent) KV cache at context 512 and 2048. f32,
// wasm kernels. The forward is timed by wall clock (median) and by the process's CPU time (on a shared, loaded
// machine the wall clock also counts waiting for a core), with a per-phase breakdown from `forward({ profile })`.
// Flags: --json, --threads N, --variant simd|relaxed-simd, --no-torch (benchmarks/bench_model.mjs).
// Run: npm run build && node benchmarks/model.bench.mjs [flags]   (or: npm run bench -- model)
import { benchFlags, benchModel, machineInfo, makeLog, median, seededIds, selectBackend } from './bench_model.mjs';
import { torchBaseline, torchLabel } from './torch_baseline.mjs';

/** B rows of T seeded ids. */
function ids(B, T, vocab, seed) {
  const flat = seededIds(B * T, vocab, seed);
  return Array.from({ length: B }, (_, b) => Array.from(flat.subarray(b * T, (b + 1) * T)));
}

/** Median wall and CPU seconds of fn over at least minRuns runs and minSeconds, after 3 warm-up runs. */
function timeIt(fn, minSeconds = 2, minRuns = 8) {
  for (let i = 0; i < 3; i++) fn(); // warm-up (JIT, wasm arena growth)
  const wall = [];
  const cpu = [];
  const start = performance.now();
  while (wall.length < minRuns || (performance.now() - start) / 1000 < minSeconds) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    fn();
    wall.push((performance.now() - t0) / 1000);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1e6);
  }
  return { wall: median(wall), cpu: median(cpu), runs: wall.length };
}

/** Runs the model benchmarks; returns the figures (also printed). */
export async function run({ backend = 'wasm', variant = 'auto', threads = 1, decodeSteps = 32, contexts = [512, 2048], torch = true, resident = false, log = console.log } = {}) {
  const machine = await machineInfo();
  const info = await selectBackend(backend, variant, threads, resident);
  const { config, model, residentBytes } = benchModel();
  const results = { bench: 'model', machine, backend: info.float32, threads, residentBytes, forward: null, decode: [] };
  log(`${machine.cpu} (${machine.logicalCpus} logical CPUs), load average ${machine.loadavg.join(' ')}; node ${machine.node}`);
  log(`weights resident in wasm memory: ${(residentBytes / 2 ** 20).toFixed(1)} MiB (shared memory: --threads > 1 or --resident)`);

  const B = 4;
  const T = 128;
  // the torch side uses the same LCG: rows of T+1 ids from seed 1, inputs ids[:, :T]
  const flat = seededIds(B * (T + 1), config.vocabSize, 1);
  const batch = Array.from({ length: B }, (_, b) => Array.from(flat.subarray(b * (T + 1), b * (T + 1) + T)));
  const torchRuns = [];
  if (torch) torchRuns.push(torchBaseline({ config, mode: 'forward', B, T, threads: 1, warmup: 3, steps: 8, minSeconds: 2 }));
  const { wall: s, cpu, runs } = timeIt(() => model.forward(batch, { attn: 'naive' }));
  if (torch && threads !== 1) torchRuns.push(torchBaseline({ config, mode: 'forward', B, T, threads, warmup: 3, steps: 8, minSeconds: 2 }));
  results.forward = { batch: B, seq: T, runs, seconds: s, cpuSeconds: cpu, tokensPerSecond: (B * T) / s, tokensPerCpuSecond: (B * T) / cpu, torch: torchRuns };
  log(
    `forward bench preset ${B}×${T} [${info.float32}, ${threads} thread${threads === 1 ? '' : 's'}], ${runs} runs: wall median ${(s * 1000).toFixed(1)} ms, ` +
      `${((B * T) / s).toFixed(0)} tokens/s; CPU ${(cpu * 1000).toFixed(1)} ms, ${((B * T) / cpu).toFixed(0)} tokens/s`,
  );
  if (!torch) log('  PyTorch baseline skipped (--no-torch): no ratio');
  for (const t of torchRuns) {
    if (!t.available) {
      log(`  ${t.reason}`);
      continue;
    }
    t.ratio = t.wallSeconds.median / s;
    t.cpuRatio = t.cpuSeconds.median / cpu; // by CPU time of all threads: the cost on a loaded machine
    log(
      `  ${torchLabel(t)}: wall median ${(t.wallSeconds.median * 1000).toFixed(1)} ms (${t.tokensPerSecond.toFixed(0)} tokens/s), CPU ${(t.cpuSeconds.median * 1000).toFixed(1)} ms; ` +
        `ours / torch = ${t.ratio.toFixed(2)}× by wall clock, ${t.cpuRatio.toFixed(2)}× by CPU time`,
    );
  }
  // per-phase breakdown, mean over 5 forwards
  const phases = new Map();
  const profile = (phase, ms) => phases.set(phase, (phases.get(phase) ?? 0) + ms / 5);
  for (let i = 0; i < 5; i++) model.forward(batch, { attn: 'naive', profile });
  const total = [...phases.values()].reduce((a, b) => a + b, 0);
  results.forward.phasesMs = Object.fromEntries(phases);
  log(`  phases (mean ms, %): ${[...phases].sort((a, b) => b[1] - a[1]).map(([p, ms]) => `${p} ${ms.toFixed(1)} (${((ms / total) * 100).toFixed(0)}%)`).join(', ')}`);

  // warm-up of the decode path (JIT) so the first measured context is not penalised
  for (const attn of ['naive', 'absorb']) {
    const caches = model.createCaches(attn, 1, 80);
    model.forward(ids(1, 64, config.vocabSize, 3), { attn, caches, startPos: 0, logits: 'last' });
    for (let i = 0; i < 12; i++) model.forward([[i]], { attn, caches, startPos: 64 + i, logits: 'last' });
  }
  for (const ctx of contexts) {
    const prompt = ids(1, ctx, config.vocabSize, 2)[0];
    const row = {};
    for (const attn of ['naive', 'absorb']) {
      const caches = model.createCaches(attn, 1, ctx + decodeSteps + 1);
      model.forward([prompt], { attn, caches, startPos: 0, logits: 'last' });
      const t0 = performance.now();
      for (let i = 0; i < decodeSteps; i++) model.forward([[prompt[i]]], { attn, caches, startPos: ctx + i, logits: 'last' });
      const sec = (performance.now() - t0) / 1000;
      const bytes = caches.reduce((a, c) => a + c.bytes, 0);
      row[attn] = { tokensPerSecond: decodeSteps / sec, cacheBytes: bytes };
    }
    const speedup = row.absorb.tokensPerSecond / row.naive.tokensPerSecond;
    results.decode.push({ context: ctx, ...row, absorbSpeedup: speedup });
    log(
      `decode at context ${ctx}: naive ${row.naive.tokensPerSecond.toFixed(1)} tokens/s (cache ${(row.naive.cacheBytes / 2 ** 20).toFixed(1)} MiB), ` +
        `absorb ${row.absorb.tokensPerSecond.toFixed(1)} tokens/s (cache ${(row.absorb.cacheBytes / 2 ** 20).toFixed(1)} MiB): absorb ${speedup.toFixed(2)}×`,
    );
  }
  return results;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const flags = benchFlags();
  const results = await run({ ...flags, log: makeLog(flags.json) });
  if (flags.json) console.log(JSON.stringify(results, null, 2));
}
