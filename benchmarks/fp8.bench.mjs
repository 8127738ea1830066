// FP8 kernel benchmarks (src/kernels/fp8.ts): the js twin against the wasm twin, measured in this run with
// tinybench, as ratios. The main figure is fp8Gemm at (m, n, k) = (64, 1024, 1024), bf16 output, with the f32
// wasm matmul of the same shape beside it as a reference for what an exact-block-sum FP8 GEMM costs.
// Also m = 1 (one decoded token), actQuant, weightDequant and roundBF16. `npm run bench -- fp8` (after a build);
// `node benchmarks/fp8.bench.mjs --json` prints the results as JSON.
const { Bench } = await import('tinybench');
const { jsFp8 } = await import('../dist/kernels/fp8.js');
const { loadWasmKernels } = await import('../dist/kernels/wasm.js');
const { cpus, loadavg } = await import('node:os');

const json = process.argv.includes('--json');
const quick = process.env.BENCH_QUICK === '1';
const wasm = await loadWasmKernels({ variant: 'simd' });

// deterministic inputs: codes without NaN, scales of varied magnitude
function codes(n, seed) {
  const c = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const v = (Math.imul(i + 1, 2654435761) ^ seed) >>> 11;
    c[i] = (v & 0x7f) === 0x7f ? v & 0xfe : v & 0xff;
  }
  return c;
}
const scales = (n, seed) => Float32Array.from({ length: n }, (_, i) => 2 ** (((i * 7 + seed) % 13) - 9));
const f32 = (n, seed) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37 + seed) * 3);

const cases = [];
for (const [m, n, k] of [
  [64, 1024, 1024],
  [1, 1024, 1024],
]) {
  const a = codes(m * k, 1);
  const as = scales(m * (k / 128), 2);
  const b = codes(n * k, 3);
  const bs = scales(Math.ceil(n / 128) * (k / 128), 4);
  const c = new Float32Array(m * n);
  const x = f32(m * k, 5);
  const w = f32(n * k, 6);
  cases.push({
    name: `fp8Gemm ${m}×${n}×${k}`,
    flop: 2 * m * n * k,
    js: () => jsFp8.fp8Gemm(a, as, b, bs, m, n, k, true, c),
    wasm: () => wasm.fp8.fp8Gemm(a, as, b, bs, m, n, k, true, c),
    ref: { name: 'wasm f32 matmul nt, same shape', run: () => wasm.matmul('nt', x, w, c, m, n, k) },
  });
}
{
  const rows = 64;
  const cols = 1024;
  const x = f32(rows * cols, 7);
  const q = new Uint8Array(rows * cols);
  const s = new Float32Array((rows * cols) / 128);
  cases.push({ name: `actQuant ${rows}×${cols}`, js: () => jsFp8.actQuant(x, rows, cols, 'none', q, s), wasm: () => wasm.fp8.actQuant(x, rows, cols, 'none', q, s) });
}
{
  const rows = 1024;
  const cols = 1024;
  const q = codes(rows * cols, 8);
  const s = scales(64, 9);
  const y = new Float32Array(rows * cols);
  cases.push({ name: `weightDequant ${rows}×${cols} → bf16`, js: () => jsFp8.weightDequant(q, s, rows, cols, true, y), wasm: () => wasm.fp8.weightDequant(q, s, rows, cols, true, y) });
}
{
  const n = 1 << 20;
  const x = f32(n, 10);
  const y = new Float32Array(n);
  cases.push({ name: `roundBF16 ${n}`, js: () => jsFp8.roundBF16(x, y), wasm: () => wasm.fp8.roundBF16(x, y) });
}

const results = [];
for (const c of cases) {
  const bench = new Bench({ time: quick ? 100 : 1000, iterations: 3, warmup: true });
  bench.add('js', c.js).add('wasm', c.wasm);
  if (c.ref) bench.add(c.ref.name, c.ref.run);
  await bench.run();
  const ms = Object.fromEntries(bench.tasks.map((t) => [t.name, t.result.latency.p50]));
  const r = { kernel: c.name, jsMs: ms.js, wasmMs: ms.wasm, jsOverWasm: ms.js / ms.wasm };
  if (c.flop) r.wasmGflops = c.flop / (ms.wasm * 1e6);
  if (c.ref) {
    r.reference = c.ref.name;
    r.referenceMs = ms[c.ref.name];
    r.wasmOverReference = ms.wasm / ms[c.ref.name];
  }
  results.push(r);
}

const env = { cpu: cpus()[0]?.model ?? 'unknown CPU', logicalCpus: cpus().length, node: process.version, loadavg1: loadavg()[0] };
if (json) {
  console.log(JSON.stringify({ env, results }, null, 2));
} else {
  console.log(`${env.cpu} (${env.logicalCpus} logical CPUs); node ${env.node}; load average ${env.loadavg1.toFixed(2)}; medians`);
  for (const r of results) {
    let line = `${r.kernel.padEnd(32)} js ${r.jsMs.toFixed(3).padStart(9)} ms   wasm ${r.wasmMs.toFixed(3).padStart(8)} ms   js/wasm ${r.jsOverWasm.toFixed(1).padStart(5)}×`;
    if (r.wasmGflops !== undefined) line += `   wasm ${r.wasmGflops.toFixed(2)} GFLOP/s`;
    if (r.reference) line += `   (${r.reference}: ${r.referenceMs.toFixed(3)} ms, fp8/f32 ${r.wasmOverReference.toFixed(2)}×)`;
    console.log(line);
  }
}
