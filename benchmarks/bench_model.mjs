// Shared setup of the model and training benchmarks (not itself a benchmark: run.mjs runs *.bench.* files only):
// command-line flags, the kernel backend, the `bench` preset model in f32, seeded token ids, the median, and the
// text/JSON output.
//
// Relaxed SIMD is behind --experimental-wasm-relaxed-simd on Node 20: the flag is set here, before any module is
// compiled, so `--variant auto` (the default) runs the relaxed build where the CPU has it; the output names the build.
import v8 from 'node:v8';
v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
const { DeepSeekV3, backendInfo, getPreset, initWeights, residentWeights, useBackend } = await import('../dist/index.js');

/**
 * Flags common to the model benches: `--json` (one JSON document on stdout, the text goes to stderr),
 * `--backend wasm|js`, `--variant auto|simd|relaxed-simd`, `--threads N` (our kernels; needs a threaded build),
 * `--no-torch` (skip the PyTorch baseline), `--resident` (the shared-memory build on one thread too, so the weights
 * can be resident; with --threads > 1 the memory is shared anyway and the weights are always made resident).
 */
export function benchFlags(argv = process.argv.slice(2)) {
  const value = (name, dflt) => {
    const i = argv.indexOf(name);
    return i >= 0 && i + 1 < argv.length ? argv[i + 1] : dflt;
  };
  return {
    json: argv.includes('--json'),
    torch: !argv.includes('--no-torch'),
    resident: argv.includes('--resident'),
    backend: value('--backend', 'wasm'),
    variant: value('--variant', 'auto'),
    threads: Number(value('--threads', '1')),
    kernels: argv.includes('--kernels'),
  };
}

/** `log(text)` prints to stdout, or to stderr under --json so that stdout holds only the JSON document. */
export function makeLog(json) {
  return (...xs) => (json ? console.error(...xs) : console.log(...xs));
}

/** Activates the backend; a wasm failure is an error (a benchmark must not silently measure js). Returns backendInfo(). */
export async function selectBackend(backend, variant = 'auto', threads = 1, resident = false) {
  const opts = { variant };
  opts.threads = threads; // always explicit: the library's default is min(cores, 4)
  if (resident) opts.resident = true;
  await useBackend(backend, backend === 'wasm' ? opts : {});
  return backendInfo();
}

/**
 * The `bench` preset with seed-0 f32 weights: `{ config, model, residentBytes }`. The weights are moved into the
 * wasm backend's memory first where it is shared (residentWeights; 0 bytes on js or a private memory).
 */
export function benchModel() {
  const config = getPreset('bench');
  const weights = initWeights(config, { seed: 0, dtype: 'float32' });
  const residentBytes = residentWeights(weights);
  return { config, model: new DeepSeekV3(config, weights), residentBytes };
}

/** `n` token ids in [0, vocab) from a 32-bit LCG seeded with `seed` (fixed inputs, no Random needed). */
export function seededIds(n, vocab, seed) {
  let x = seed >>> 0;
  const ids = new Int32Array(n);
  for (let i = 0; i < n; i++) ids[i] = (x = (Math.imul(x, 1664525) + 1013904223) >>> 0) % vocab;
  return ids;
}

/** The median of xs (the upper one for an even count). */
export const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Machine and load: CPU model, logical CPUs, load average at the start (the benches run on shared machines). */
export async function machineInfo() {
  const os = await import('node:os');
  return { cpu: os.cpus()[0]?.model ?? 'unknown', logicalCpus: os.cpus().length, loadavg: os.loadavg().map((x) => Number(x.toFixed(2))), node: process.version };
}
