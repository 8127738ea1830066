// Model benchmarks (compiled library in ../dist): forward tokens/s of the `bench` preset at batch 4 × 128
// (PyTorch CPU 1 thread, official code: ≈ 3,800 tokens/s; target ≥ 0.5×), and decode tokens/s with the naive
// vs the absorbed (latent) KV cache at context 512 and 2048. f32, wasm kernels when available. The forward is
// timed by wall clock (median) and by the process's CPU time (on a shared, loaded machine the wall clock also
// counts waiting for a core), with a per-phase breakdown from `forward({ profile })`.
// Run: npm run build && node benchmarks/model.bench.mjs   (or through benchmarks/run.mjs)
import { benchModel, median, seededIds, selectBackend } from './bench_model.mjs';

/** B rows of T seeded ids. */
function ids(B, T, vocab, seed) {
  const flat = seededIds(B * T, vocab, seed);
  return Array.from({ length: B }, (_, b) => Array.from(flat.subarray(b * T, (b + 1) * T)));
}

/** Median wall and CPU seconds of fn over at least minRuns runs and minSeconds, after 3 warm-up runs. */
function timeIt(fn, minSeconds = 2, minRuns = 3) {
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
export async function run({ backend = 'wasm', decodeSteps = 32, contexts = [512, 2048] } = {}) {
  const info = await selectBackend(backend);
  const { config, model } = benchModel();
  const results = { backend: info.float32, forward: null, decode: [] };

  const B = 4;
  const T = 128;
  const batch = ids(B, T, config.vocabSize, 1);
  const { wall: s, cpu, runs } = timeIt(() => model.forward(batch, { attn: 'naive' }));
  results.forward = { batch: B, seq: T, seconds: s, cpuSeconds: cpu, tokensPerSecond: (B * T) / s, tokensPerCpuSecond: (B * T) / cpu, vsPyTorch: (B * T) / s / 3800 };
  console.log(
    `forward bench preset ${B}×${T} [${info.float32}], ${runs} runs: wall median ${(s * 1000).toFixed(1)} ms, ${((B * T) / s).toFixed(0)} tokens/s ` +
      `(${(((B * T) / s / 3800) * 100).toFixed(0)}% of PyTorch's ≈3,800); CPU ${(cpu * 1000).toFixed(1)} ms, ${((B * T) / cpu).toFixed(0)} tokens/s`,
  );
  // per-phase breakdown, mean over 5 forwards
  const phases = new Map();
  const profile = (phase, ms) => phases.set(phase, (phases.get(phase) ?? 0) + ms / 5);
  for (let i = 0; i < 5; i++) model.forward(batch, { attn: 'naive', profile });
  const total = [...phases.values()].reduce((a, b) => a + b, 0);
  results.forward.phasesMs = Object.fromEntries(phases);
  console.log(`  phases (mean ms, %): ${[...phases].sort((a, b) => b[1] - a[1]).map(([p, ms]) => `${p} ${ms.toFixed(1)} (${((ms / total) * 100).toFixed(0)}%)`).join(', ')}`);

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
    console.log(
      `decode at context ${ctx}: naive ${row.naive.tokensPerSecond.toFixed(1)} tokens/s (cache ${(row.naive.cacheBytes / 2 ** 20).toFixed(1)} MiB), ` +
        `absorb ${row.absorb.tokensPerSecond.toFixed(1)} tokens/s (cache ${(row.absorb.cacheBytes / 2 ** 20).toFixed(1)} MiB): absorb ${speedup.toFixed(2)}×`,
    );
  }
  return results;
}

if (import.meta.url === `file://${process.argv[1]}`) await run();
