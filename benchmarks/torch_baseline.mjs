// The PyTorch side of the model and training benchmarks (not itself a benchmark: run.mjs runs *.bench.* files only).
// Runs benchmarks/torch/deepseek_v3_bench.py (a torch restatement of the official model code) on the same config,
// batch and token ids, in this run, so the ratio compares two measurements taken minutes apart on one machine,
// never a constant. Python: $TORCH_PYTHON, else the first of `python3`, `/usr/bin/python3` that imports torch.
// When none does, the benches print "PyTorch not available: no ratio".
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const script = join(dirname(fileURLToPath(import.meta.url)), 'torch', 'deepseek_v3_bench.py');

let found;
/** The python executable that imports torch, or null (checked once per process). */
export function torchPython() {
  if (found !== undefined) return found;
  const candidates = process.env.TORCH_PYTHON ? [process.env.TORCH_PYTHON] : ['python3', '/usr/bin/python3'];
  found = null;
  for (const py of candidates) {
    const r = spawnSync(py, ['-c', 'import torch'], { encoding: 'utf8' });
    if (r.status === 0) {
      found = py;
      break;
    }
  }
  return found;
}

/**
 * Times the torch model: `mode` 'train' (forward → CE → backward → AdamW) or 'forward' (no_grad logits), with
 * `threads` intra-op threads (OMP/OpenBLAS threads pinned to the same number). Returns the script's JSON
 * (torch, blas, threads, wallSeconds {median, best, mean}, cpuSeconds, tokensPerSecond) or
 * `{ available: false, reason }`.
 */
export function torchBaseline({ config, mode, B, T, threads = 1, warmup = 2, steps = 8, minSeconds = 0 }) {
  const py = torchPython();
  if (py === null) return { available: false, reason: 'PyTorch not available: no ratio' };
  const args = [script, '--json', '--config', JSON.stringify(config), '--mode', mode, '--batch', String(B), '--seq', String(T)];
  args.push('--threads', String(threads), '--warmup', String(warmup), '--steps', String(steps), '--min-seconds', String(minSeconds));
  const env = { ...process.env, OMP_NUM_THREADS: String(threads), OPENBLAS_NUM_THREADS: String(threads), MKL_NUM_THREADS: String(threads) };
  const r = spawnSync(py, args, { encoding: 'utf8', env, maxBuffer: 1 << 24 });
  if (r.status !== 0) return { available: false, reason: `PyTorch baseline failed (${py}, exit ${r.status}): ${(r.stderr ?? '').trim().split('\n').pop()}` };
  return { available: true, python: py, ...JSON.parse(r.stdout.trim().split('\n').pop()) };
}

/** One line naming the torch build: version, BLAS library, threads. */
export function torchLabel(t) {
  return `torch ${t.torch} (${t.blas}; ${t.threads} thread${t.threads === 1 ? '' : 's'})`;
}
