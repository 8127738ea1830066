// Kernel benchmarks: GFLOP/s of matmul for js, wasm-simd, wasm-relaxed-simd and XNNPACK
// (@tensorflow/tfjs-backend-wasm, single thread), all measured in this run with tinybench, each wasm build also as
// a percentage of its own multiply-add peak (a probe measured in this run), then the throughput of the other
// kernels (js vs wasm). `npm run bench -- kernels`; `--json` prints one JSON document (the text goes to stderr).
//
// tfjs columns. tfjs-backend-wasm sends only 'nn' to XNNPACK; 'nt' and 'tn' go to its own scalar batch-matmul
// loop (tfjs-backend-wasm/src/cc/batch_mat_mul_impl.cc), so those rows are in a separate `tfjs-loop` column:
// - `xnnpack` ('nn'): tensors uploaded once, outside the timing. tfjs caches XNNPACK's fully-connected
//   operator per B tensor, so B is transposed and packed once and every timed call reuses it;
//   only the product and the read-back (dataSync) are timed.
// - `xnn-fresh` ('nn'): the same contract as our matmul (Float32Arrays in, Float32Array out): upload
//   A and B, multiply (so XNNPACK packs B), read back, dispose, all timed.
// - `tfjs-loop` ('nt', 'tn'): tf.matMul with transposeA/transposeB, timed as `xnnpack` is: not XNNPACK.
// Our calls always copy A and B into wasm memory, pack both and copy C out.
//
// Relaxed SIMD is behind --experimental-wasm-relaxed-simd on Node 20: the flag is set here at
// run time, before any module is compiled, so one process measures all variants.
import v8 from 'node:v8';
v8.setFlagsFromString('--experimental-wasm-relaxed-simd');

const { Bench } = await import('tinybench');
const { jsKernels } = await import('../dist/kernels/js.js');
const { loadWasmKernels, wasmSupport } = await import('../dist/kernels/wasm.js');
const wasmBytes = await import('../dist/kernels/wasm_bytes.generated.js');
const tf = await import('@tensorflow/tfjs-core');
const tfwasm = await import('@tensorflow/tfjs-backend-wasm');
const { createRequire } = await import('node:module');
const { dirname, join } = await import('node:path');

const quick = process.env.BENCH_QUICK === '1'; // shorter budgets for a smoke run
const asJson = process.argv.includes('--json');
const log = (...xs) => (asJson ? console.error(...xs) : console.log(...xs));
const report = { bench: 'kernels', matmul: [], peak: {}, microKernel: {}, other: [] };
// Latency statistic: 'min' (default) estimates the unloaded speed on a shared, noisy machine;
// BENCH_STAT=p50 reports medians instead.
const stat = process.env.BENCH_STAT === 'p50' ? 'p50' : 'min';

// XNNPACK through tfjs: the non-threaded SIMD build from the local package, 1 thread
const wasmDir = join(dirname(createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist') + '/';
tfwasm.setWasmPaths(wasmDir);
tfwasm.setThreadsCount(1);
tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
await tf.setBackend('wasm');
await tf.ready();
const xnnSimd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');

const support = wasmSupport();
// one thread, like XNNPACK above (the library's default would be min(cores, 4))
const impls = [jsKernels, await loadWasmKernels({ variant: 'simd', threads: 1 })];
if (support.relaxedSimd) impls.push(await loadWasmKernels({ variant: 'relaxed-simd', threads: 1 }));
const { cpus } = await import('node:os');
const { loadavg } = await import('node:os');
report.machine = { cpu: cpus()[0]?.model ?? 'unknown', logicalCpus: cpus().length, loadavg: loadavg(), node: process.version };
log(
  `load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}; ` +
  `${cpus()[0]?.model ?? 'unknown CPU'} (${cpus().length} logical CPUs); node ${process.version}; wasm: ${impls.slice(1).map((k) => k.name).join(', ')}${support.relaxedSimd ? '' : ' (relaxed SIMD unavailable)'}; ` +
    `XNNPACK: tfjs-backend-wasm ${tfwasm.version_wasm}, SIMD ${xnnSimd}, threads ${tfwasm.getThreadsCount()}`,
);

function randomF32(n, seed) {
  const a = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = s / 2 ** 31 - 1;
  }
  return a;
}

/** Seconds per call of fn (latency `stat`), with a time budget scaled to the call's cost. */
async function timeIt(name, fn, estSeconds) {
  const budgetMs = quick ? 150 : 600;
  const bench = new Bench({
    time: budgetMs,
    iterations: estSeconds > 0.5 ? 2 : 5,
    warmupTime: quick ? 20 : 100,
    warmupIterations: estSeconds > 0.5 ? 1 : 5,
  });
  bench.add(name, fn);
  await bench.run();
  const r = bench.tasks[0].result;
  if (r.state !== 'completed') throw new Error(`${name}: ${r.state} ${r.error ?? ''}`);
  return r.latency[stat] / 1e3;
}

const pad = (s, n) => String(s).padStart(n);
const shapes = [
  [64, 64, 64],
  [128, 128, 128],
  [256, 256, 256],
  [512, 512, 512],
  [1024, 1024, 1024],
  [512, 1024, 256], // M=512, K=256, N=1024  (m, n, k)
  [512, 256, 1024], // M=512, K=1024, N=256
];
const layouts = ['nn', 'nt', 'tn'];

// Peak probe: each build's multiply-add (mul + add, or relaxed_madd) on 12 independent register chains, no memory
// traffic: what this CPU issues through V8's code. GEMM rates are reported as a percentage of it.
const probeModules = [['wasm-simd', wasmBytes.WASM_SIMD_BASE64]];
if (support.relaxedSimd) probeModules.push(['wasm-relaxed-simd', wasmBytes.WASM_RELAXED_SIMD_BASE64]);
const probeExports = {};
for (const [name, b64] of probeModules) {
  probeExports[name] = (await WebAssembly.instantiate(Buffer.from(b64, 'base64'), { env: { abort() {} } })).instance.exports;
}
async function peakProbe() {
  const out = {};
  for (const [name, ex] of Object.entries(probeExports)) {
    const reps = 20000;
    const flop = ex.PEAK_PROBE_FLOP.value * reps;
    out[name] = flop / (await timeIt(`${name} peak`, () => ex.simdPeakProbe(reps, 0.999, 0.001), 4e-5)) / 1e9;
  }
  return out;
}
const peakBefore = await peakProbe();
log(`\nmultiply-add peak probe (GFLOP/s, 12 register chains): ${Object.entries(peakBefore).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ')}`);

const names = [...impls.map((k) => k.name), 'xnnpack', 'xnn-fresh', 'tfjs-loop'];
const pctNames = impls.slice(1).map((k) => k.name);
log(`\nmatmul GFLOP/s from the ${stat} latency of each tinybench task; % of the build's peak probe; ratios measured in this run`);
log(
  ['shape (MxKxN)', 'layout', ...names.map((n) => pad(n, 17)), ...pctNames.map((n) => pad(`${n.replace('wasm-', '')} %pk`, 13)), pad('simd/xnn', 9), support.relaxedSimd ? pad('relax/xnn', 9) : '', pad('simd/js', 8)].join(' '),
);
for (const [m, n, k] of shapes) {
  const flops = 2 * m * n * k;
  for (const layout of layouts) {
    const a = randomF32(m * k, 1);
    const b = randomF32(k * n, 2);
    const c = new Float32Array(m * n);
    const g = {};
    for (const K of impls) {
      const est = flops / (K.name === 'js' ? 5e8 : 2e10);
      g[K.name] = flops / (await timeIt(`${K.name} ${layout}`, () => K.matmul(layout, a, b, c, m, n, k), est)) / 1e9;
    }
    // tfjs shapes: A is [M,K] ('nn','nt') or [K,M] ('tn'); B is [K,N] or [N,K] ('nt')
    const ta = tf.tensor2d(a, layout === 'tn' ? [k, m] : [m, k]);
    const tb = tf.tensor2d(b, layout === 'nt' ? [n, k] : [k, n]);
    const tfjsRate =
      flops /
      (await timeIt('tfjs', () => {
        const t = tf.matMul(ta, tb, layout === 'tn', layout === 'nt');
        t.dataSync();
        t.dispose();
      }, flops / 1e10)) /
      1e9;
    ta.dispose();
    tb.dispose();
    g.xnnpack = layout === 'nn' ? tfjsRate : NaN;
    g['tfjs-loop'] = layout === 'nn' ? NaN : tfjsRate;
    g['xnn-fresh'] =
      layout !== 'nn'
        ? NaN
        : flops /
          (await timeIt('xnnpack fresh', () => {
            const fa = tf.tensor2d(a, [m, k]);
            const fb = tf.tensor2d(b, [k, n]);
            const t = tf.matMul(fa, fb);
            t.dataSync();
            t.dispose();
            fa.dispose();
            fb.dispose();
          }, flops / 1e10)) /
          1e9;
    const pct = Object.fromEntries(pctNames.map((nm) => [nm, (100 * g[nm]) / peakBefore[nm]]));
    const row = { m, n, k, layout, gflops: g, pctOfPeak: pct };
    report.matmul.push(row);
    log(
      [
        pad(`${m}x${k}x${n}`, 13),
        pad(layout, 6),
        ...names.map((nm) => pad(Number.isNaN(g[nm]) ? '-' : g[nm].toFixed(2), 17)),
        ...pctNames.map((nm) => pad(pct[nm].toFixed(0) + '%', 13)),
        pad(layout === 'nn' ? (g['wasm-simd'] / g.xnnpack).toFixed(2) + 'x' : '-', 9),
        support.relaxedSimd ? pad(layout === 'nn' ? (g['wasm-relaxed-simd'] / g.xnnpack).toFixed(2) + 'x' : '-', 9) : '',
        pad((g['wasm-simd'] / g.js).toFixed(1) + 'x', 8),
      ].join(' '),
    );
  }
}
const peakAfter = await peakProbe();
report.peak = { before: peakBefore, after: peakAfter };
log(`multiply-add peak probe again after the table: ${Object.entries(peakAfter).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ')}`);
// The issue's bars: 512³ and the two transformer shapes, every layout, against the peak measured before the table
const barRows = report.matmul.filter((r) => (r.m === 512 && r.n === 512 && r.k === 512) || (r.m === 512 && r.n !== r.k));
for (const [nm, target] of [['wasm-simd', 90], ['wasm-relaxed-simd', 85]]) {
  if (!pctNames.includes(nm)) continue;
  const worst = Math.min(...barRows.map((r) => r.pctOfPeak[nm]));
  report[`bar_${nm}`] = { minPctOfPeak: worst, target, pass: worst >= target };
  log(`bar: ${nm} GEMM ≥ ${target}% of its peak at 512³ and the transformer shapes: min ${worst.toFixed(0)}% ${worst >= target ? 'PASS' : 'FAIL'}`);
}
const nnRows = report.matmul.filter((r) => r.layout === 'nn' && r.m >= 256);
log(
  `nn vs XNNPACK (prepacked B) min: wasm-simd ${Math.min(...nnRows.map((r) => r.gflops['wasm-simd'] / r.gflops.xnnpack)).toFixed(2)}x` +
    (support.relaxedSimd ? `, wasm-relaxed-simd ${Math.min(...nnRows.map((r) => r.gflops['wasm-relaxed-simd'] / r.gflops.xnnpack)).toFixed(2)}x` : '') +
    `; same contract (xnn-fresh) min: wasm-simd ${Math.min(...nnRows.map((r) => r.gflops['wasm-simd'] / r.gflops['xnn-fresh'])).toFixed(2)}x` +
    (support.relaxedSimd ? `, wasm-relaxed-simd ${Math.min(...nnRows.map((r) => r.gflops['wasm-relaxed-simd'] / r.gflops['xnn-fresh'])).toFixed(2)}x` : ''),
);

// Ceiling probe: the matmul's micro-kernel alone, on one panel pair resident in L1 (exported by
// the wasm module for this purpose). The blocked matmul cannot beat this rate.
log(`\nmicro-kernel alone, operands in L1 (GFLOP/s from the ${stat} latency; % of the peak probe): the ceiling of the blocked matmul`);
for (const [name, ex] of Object.entries(probeExports)) {
  const reps = 1000;
  const flop = ex.MICRO_KERNEL_PROBE_FLOP.value * reps;
  const rate = flop / (await timeIt(`${name} probe`, () => ex.matmulMicroKernelProbe(reps), 4e-4)) / 1e9;
  report.microKernel[name] = rate;
  log(`${pad(name, 17)} ${pad(rate.toFixed(2), 8)} ${pad(((100 * rate) / peakBefore[name]).toFixed(0) + '%', 5)}`);
}

// Threads: the 512³ GEMM on the shared-memory build with 1, 2 and min(cores, 4) threads, operands resident (no
// copies), every layout; the issue's bar is threads = 2 ≥ 1.7× threads = 1.
{
  const { availableParallelism } = await import('node:os');
  const counts = [...new Set([1, 2, Math.min(availableParallelism(), 4)])];
  const variant = support.relaxedSimd ? 'relaxed-simd' : 'simd';
  const n = 512;
  const pools = [];
  for (const threads of counts) pools.push(await loadWasmKernels({ variant, threads, resident: true }));
  log(`\nthreads (wasm-${variant}, shared memory, operands resident): 512³ GEMM GFLOP/s from the ${stat} latency, and × one thread`);
  report.threads = [];
  let worst2 = Infinity;
  for (const layout of layouts) {
    const rates = [];
    for (const K of pools) {
      const a = K.resident(randomF32(n * n, 11));
      const b = K.resident(randomF32(n * n, 12));
      const c = K.resident(new Float32Array(n * n));
      rates.push((2 * n ** 3) / (await timeIt(`${layout} ${K.threads} threads`, () => K.matmul(layout, a, b, c, n, n, n), 6e-3)) / 1e9);
    }
    const row = Object.fromEntries(pools.map((K, i) => [K.threads, rates[i]]));
    report.threads.push({ layout, gflopsByThreads: row });
    const i2 = pools.findIndex((K) => K.threads === 2);
    if (i2 >= 0) worst2 = Math.min(worst2, rates[i2] / rates[0]);
    log(`${layout}: ${pools.map((K, i) => `${K.threads} thread${K.threads === 1 ? '' : 's'} ${rates[i].toFixed(1)} (${(rates[i] / rates[0]).toFixed(2)}×)`).join(', ')}`);
  }
  if (Number.isFinite(worst2)) {
    report.bar_threads2 = { minSpeedup: worst2, target: 1.7, pass: worst2 >= 1.7 };
    log(`bar: threads = 2 ≥ 1.7× threads = 1 on the 512³ GEMM: min ${worst2.toFixed(2)}× ${worst2 >= 1.7 ? 'PASS' : 'FAIL'}`);
  }

  // Fused causal attention (bench preset training shape: B 4, H 8, S = T = 128, d1 = n 32, d2 = R 32, dv = V 32)
  // against the unfused kernels it replaces (batched Q·Kᵀ, the RoPE part, τ and mask, softmax, P·V), 1 thread, and
  // the fused kernel on every thread count.
  const B = 4, H = 8, S = 128, d1 = 32, d2 = 32, dv = 32;
  const K1 = pools[0];
  const res = (len, seed) => K1.resident(randomF32(len, seed));
  const q1 = res(B * H * S * d1, 21), q2 = res(B * H * S * d2, 22), k1 = res(B * H * S * d1, 23), k2 = res(B * S * d2, 24), v = res(B * H * S * dv, 25);
  const hm = (data, w) => ({ data, off: 0, sb: H * S * w, sh: S * w, ss: w });
  const shape = { B, H, S, T: S, d1, d2, dv, tau: 0.125, offset: 0 };
  const x = { q1: hm(q1, d1), q2: hm(q2, d2), k1: hm(k1, d1), k2: { data: k2, off: 0, sb: S * d2, sh: 0, ss: d2 }, v: hm(v, dv) };
  const scores = K1.resident(new Float32Array(B * H * S * S));
  const out = K1.resident(new Float32Array(B * H * S * dv));
  const unfused = () => {
    K1.matmulBatched('nt', q1, k1, scores, B * H, S, S, d1);
    for (let b = 0; b < B; b++) K1.matmul('nt', q2.subarray(b * H * S * d2, (b + 1) * H * S * d2), k2.subarray(b * S * d2, (b + 1) * S * d2), scores.subarray(b * H * S * S, (b + 1) * H * S * S), H * S, S, d2, true);
    for (let r = 0; r < B * H * S; r++) {
      const s = r % S;
      const row = scores.subarray(r * S, (r + 1) * S);
      for (let t = 0; t <= s; t++) row[t] *= 0.125;
      row.fill(-Infinity, s + 1);
    }
    K1.softmaxForward(scores, scores, B * H * S, S);
    K1.matmulBatched('nn', scores, v, out, B * H, S, dv, S);
  };
  const tUnfused = await timeIt('unfused attention', unfused, 3e-3);
  const fusedMs = [];
  for (const K of pools) {
    const o = { data: K.resident(new Float32Array(B * H * S * dv)), off: 0, sb: H * S * dv, sh: S * dv, ss: dv };
    const st = K.resident(new Float32Array(2 * B * H * S));
    const xK = Object.fromEntries(Object.entries(x).map(([k, vw]) => [k, { ...vw, data: K.resident(vw.data) }]));
    fusedMs.push(await timeIt(`fused attention ${K.threads}`, () => K.attentionForward(shape, xK, o, st), 1e-3));
  }
  report.attention = { unfusedMs: tUnfused * 1e3, fusedMsByThreads: Object.fromEntries(pools.map((K, i) => [K.threads, fusedMs[i] * 1e3])) };
  log(
    `causal attention forward B4 H8 S=T=128 (32+32 | 32): unfused kernels ${(tUnfused * 1e3).toFixed(2)} ms (1 thread); fused ` +
      pools.map((K, i) => `${(fusedMs[i] * 1e3).toFixed(2)} ms (${K.threads} thread${K.threads === 1 ? '' : 's'}, ${(tUnfused / fusedMs[i]).toFixed(2)}×)`).join(', '),
  );
  for (const K of pools) K.close();
}

// Other kernels: elements (or rows×cols) per second, js vs wasm, same inputs.
log(`\nother kernels (M elements/s from the ${stat} latency); rows × cols = 64 × 4096, n = 262144`);
const rows = 64;
const cols = 4096;
const N = rows * cols;
const x = randomF32(N, 3);
const y = randomF32(N, 4);
const z = new Float32Array(N);
const w = randomF32(cols, 5).map((v) => v + 1.5);
const rstd = new Float32Array(rows);
const targets = Int32Array.from({ length: rows }, (_, r) => (r * 7) % cols);
const cosT = randomF32(256 * 32, 6);
const sinT = randomF32(256 * 32, 7);
const pos = Int32Array.from({ length: N / 64 }, (_, r) => r % 256);
const hp = { lr: 1e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, step: 3 };
const mState = new Float32Array(N);
const vState = new Float32Array(N);
const kernels = {
  softmaxForward: (K) => K.softmaxForward(x, z, rows, cols),
  softmaxBackward: (K) => K.softmaxBackward(x, y, z, rows, cols),
  rmsnormForward: (K) => K.rmsnormForward(x, w, z, rstd, rows, cols, 1e-6),
  rmsnormBackward: (K) => K.rmsnormBackward(x, w, rstd, y, z, w.slice(), rows, cols),
  swigluForward: (K) => K.swigluForward(x, y, z, N),
  swigluBackward: (K) => K.swigluBackward(x, y, x, z, z, N),
  rope: (K) => K.rope(x, z, cosT, sinT, pos, N / 64, 64, false),
  crossEntropyForward: (K) => K.crossEntropyForward(x, targets, rstd, rows, cols, -1),
  crossEntropyBackward: (K) => K.crossEntropyBackward(x, targets, z, rows, cols, -1, 1),
  adamw: (K) => K.adamw(z, y, mState, vState, N, hp),
  exp: (K) => K.exp(x, z, N),
  add: (K) => K.add(x, y, z, N),
  scale: (K) => K.scale(z, 0.999, N),
  axpy: (K) => K.axpy(0.5, x, z, N),
};
const kimpls = impls.slice(0, 2);
log([pad('kernel', 21), ...kimpls.map((K) => pad(K.name, 12)), pad('wasm/js', 8)].join(' '));
for (const [name, run] of Object.entries(kernels)) {
  const rate = [];
  for (const K of kimpls) rate.push(N / (await timeIt(`${K.name} ${name}`, () => run(K), 1e-3)) / 1e6);
  report.other.push({ kernel: name, mElementsPerSecond: Object.fromEntries(kimpls.map((K, i) => [K.name, rate[i]])) });
  log([pad(name, 21), ...rate.map((r) => pad(r.toFixed(1), 12)), pad((rate[1] / rate[0]).toFixed(2) + 'x', 8)].join(' '));
}
if (asJson) console.log(JSON.stringify(report, null, 2));
