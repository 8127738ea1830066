/**
 * The matmul worker pool of the threaded wasm kernels, Node only (`worker_threads`; loaded by src/kernels/wasm.ts
 * on demand). Every worker instantiates the shared-memory build on the one shared `WebAssembly.Memory`, points its
 * matmul scratch at its own region, and waits on a control block (a SharedArrayBuffer): the caller writes a job
 * (operand addresses, shapes, and each participant's range), bumps a generation counter and wakes the workers with
 * Atomics.notify, runs its own range, then blocks in Atomics.wait until every worker has counted itself done.
 *
 * Ranges split the output, never the reduction: whole batch items when there are at least as many as threads, else
 * column ranges of C (multiples of 16). Each element is computed exactly as the one-thread call computes it
 * (assembly/matmul.ts, matmulColumns), so results are bit-identical for any thread count.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { BackendError } from '../errors.js';

/** What the pool calls in the caller's instance: the column-range matmul. */
export interface ColumnMatmul {
  matmulColumns(layout: number, a: number, b: number, c: number, m: number, n: number, k: number, accumulate: number, jBegin: number, jEnd: number): void;
}

/** One (batched) product in wasm memory: byte addresses and byte strides between batch items. */
export interface MatmulJob {
  layout: number;
  a: number;
  b: number;
  c: number;
  batch: number;
  m: number;
  n: number;
  k: number;
  accumulate: number;
  aStride: number;
  bStride: number;
  cStride: number;
}

/**
 * A row-wise kernel call: `fn` is one of ROW_KERNELS, `args` its arguments for all rows; each participant calls it
 * on rows [lo, hi) with every (argument index, bytes per row) of `ptrs` advanced by lo rows and argument `count` set
 * to hi − lo. Rows are independent in these kernels, so the split changes no value.
 */
export interface RowJob {
  fn: RowKernel;
  args: number[];
  rows: number;
  ptrs: readonly (readonly [number, number])[];
  count: number;
  /** Split points are multiples of this (4 for the elementwise kernels: the same elements take the SIMD path). */
  granule: number;
}

/** The row-splittable kernels (exports of assembly/index.ts). */
export const ROW_KERNELS = ['adamw', 'swigluForward', 'swigluBackward', 'crossEntropyForward', 'crossEntropyBackward', 'softmaxBackward'] as const;
export type RowKernel = (typeof ROW_KERNELS)[number];

/**
 * A range job: each participant calls `ex[fn](...args, lo, hi)` on its part [lo, hi) of [0, total); the split points
 * are multiples of `granule` (the last part ends at `total`), parts differ by at most one granule, and a participant
 * whose part is empty makes no call. `fn` is the name of any function export of the module (sent to the workers as
 * its index in the module's export list, which both sides read the same way); at most 32 arguments before lo, hi.
 * The kernel must write disjoint outputs for disjoint ranges: then the split changes no value.
 */
export interface RangeJob {
  fn: string;
  args: readonly number[];
  total: number;
  granule: number;
}

/** A started pool: `threads` participants including the calling thread. */
export interface MatmulPool {
  readonly threads: number;
  /** Runs the job split over all participants; returns when every part is done. */
  matmul(job: MatmulJob): void;
  /** Runs a row-wise kernel split over all participants (small calls on the calling thread alone). */
  rows(job: RowJob): void;
  /**
   * Runs a range job split over all participants (see {@link RangeJob}); returns when every part is done. A job with
   * at most `granule` items runs on the calling thread alone, as `ex[fn](...args, 0, total)`.
   */
  ranges(job: RangeJob): void;
  /** Stops the workers (the pool is unusable afterwards). */
  close(): void;
}

// control block (Int32): generation, done count, stop flag, error flag
const GEN = 0;
const DONE = 1;
const STOP = 2;
const ERROR = 3;
// job block (Float64): the 12 job fields, the split kind (0 batch items, 1 columns, 2 rows, 3 ranges), then [lo, hi)
// per participant; a row job puts in the fields: kernel index, argument count, count argument, pointer pair count,
// then (from ROW_ARGS) the arguments and the (index, bytes per row) pairs; a range job: the export's index in
// functionExports(module) and the argument count, then (from ROW_ARGS) the arguments
const FIELDS = 12;
const KIND = FIELDS;
const RANGES = FIELDS + 1;
const MAX_THREADS = 64;
const ROW_ARGS = RANGES + 2 * MAX_THREADS;
const ROW_SLOTS = 32;

// Row jobs below this many rows × bytes-per-row run on the calling thread alone.
const MIN_PARALLEL_ROW_BYTES = 2 ** 18;

// Products below this many flop run on the calling thread alone: waking the workers costs tens of µs.
const MIN_PARALLEL_FLOP = 2 ** 21;

// The worker: CommonJS (eval), the same column loop as runRange below.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { module, memory, ctrl, job, scratch, id } = workerData;
const ex = new WebAssembly.Instance(module, { env: { memory, abort() { throw new Error('wasm abort'); } } }).exports;
ex.setMatmulScratch(scratch);
const c = new Int32Array(ctrl);
const p = new Float64Array(job);
const ROW_KERNELS = ${JSON.stringify(['adamw', 'swigluForward', 'swigluBackward', 'crossEntropyForward', 'crossEntropyBackward', 'softmaxBackward'])};
const FNS = WebAssembly.Module.exports(module).filter((d) => d.kind === 'function').map((d) => d.name);
let gen = 0;
parentPort.postMessage('ready');
for (;;) {
  Atomics.wait(c, ${GEN}, gen);
  gen = Atomics.load(c, ${GEN});
  if (Atomics.load(c, ${STOP}) === 1) break;
  try {
    const lo = p[${RANGES} + 2 * id], hi = p[${RANGES} + 2 * id + 1];
    if (p[${KIND}] === 3) {
      const args = Array.from({ length: p[1] }, (_, i) => p[${ROW_ARGS} + i]);
      if (hi > lo) ex[FNS[p[0]]](...args, lo, hi);
    } else if (p[${KIND}] === 2) {
      const nArgs = p[1], countArg = p[2], nPtrs = p[3];
      const args = Array.from({ length: nArgs }, (_, i) => p[${ROW_ARGS} + i]);
      for (let j = 0; j < nPtrs; j++) args[p[${ROW_ARGS} + nArgs + 2 * j]] += lo * p[${ROW_ARGS} + nArgs + 2 * j + 1];
      args[countArg] = hi - lo;
      if (hi > lo) ex[ROW_KERNELS[p[0]]](...args);
    } else if (p[${KIND}] === 0) {
      for (let i = lo; i < hi; i++) ex.matmulColumns(p[0], p[1] + i * p[9], p[2] + i * p[10], p[3] + i * p[11], p[5], p[6], p[7], p[8], 0, p[6]);
    } else {
      for (let i = 0; i < p[4]; i++) ex.matmulColumns(p[0], p[1] + i * p[9], p[2] + i * p[10], p[3] + i * p[11], p[5], p[6], p[7], p[8], lo, hi);
    }
  } catch (e) {
    Atomics.store(c, ${ERROR}, 1);
  }
  Atomics.add(c, ${DONE}, 1);
  Atomics.notify(c, ${DONE});
}
`;

/** Most threads started by default: beyond 4, the model's matmuls at the bench sizes gain little (docs/kernels.md). */
export const DEFAULT_MAX_THREADS = 4;

/** The library's default thread count in Node: min(available cores, {@link DEFAULT_MAX_THREADS}). */
export function defaultThreadCount(): number {
  return Math.max(1, Math.min(availableParallelism(), DEFAULT_MAX_THREADS));
}

/** The module's function exports in export order: a range job names its function by index into this list. */
export function functionExports(module: WebAssembly.Module): string[] {
  return WebAssembly.Module.exports(module)
    .filter((d) => d.kind === 'function')
    .map((d) => d.name);
}

/**
 * Starts `threads − 1` workers on `module` (a shared-memory build) and `memory`; `scratch[w − 1]` is worker w's
 * scratch region (assembly/matmul.ts MATMUL_SCRATCH_BYTES). `main` is the caller's instance.
 */
export async function createMatmulPool(module: WebAssembly.Module, memory: WebAssembly.Memory, main: ColumnMatmul, scratch: number[], threads: number): Promise<MatmulPool> {
  const ctrl = new SharedArrayBuffer(4 * 4);
  const fns = functionExports(module);
  if (threads > MAX_THREADS) throw new BackendError(`wasm kernels: at most ${MAX_THREADS} threads`);
  const jobBuf = new SharedArrayBuffer(8 * (ROW_ARGS + ROW_SLOTS));
  const c = new Int32Array(ctrl);
  const p = new Float64Array(jobBuf);
  const workers: Worker[] = [];
  const ready: Promise<void>[] = [];
  for (let id = 1; id < threads; id++) {
    const w = new Worker(WORKER_SOURCE, { eval: true, workerData: { module, memory, ctrl, job: jobBuf, scratch: scratch[id - 1], id } });
    ready.push(
      new Promise<void>((resolve, reject) => {
        w.once('message', () => resolve());
        w.once('error', (e) => reject(new BackendError(`wasm kernels: worker ${id} failed to start: ${e.message}`)));
      }),
    );
    workers.push(w);
  }
  await Promise.all(ready);
  for (const w of workers) w.unref(); // once started, a pool never keeps the process alive
  let closed = false;

  function runRange(job: MatmulJob, kind: number, lo: number, hi: number): void {
    const { layout, a, b, c: cc, batch, m, n, k, accumulate, aStride, bStride, cStride } = job;
    if (kind === 0) {
      for (let i = lo; i < hi; i++) main.matmulColumns(layout, a + i * aStride, b + i * bStride, cc + i * cStride, m, n, k, accumulate, 0, n);
    } else {
      for (let i = 0; i < batch; i++) main.matmulColumns(layout, a + i * aStride, b + i * bStride, cc + i * cStride, m, n, k, accumulate, lo, hi);
    }
  }

  // wakes the workers on the job in `p`, runs the calling thread's part, waits for the rest
  function dispatch(own: () => void): void {
    Atomics.store(c, DONE, 0);
    Atomics.store(c, ERROR, 0);
    Atomics.add(c, GEN, 1);
    Atomics.notify(c, GEN);
    own();
    for (let d = Atomics.load(c, DONE); d < threads - 1; d = Atomics.load(c, DONE)) Atomics.wait(c, DONE, d);
    if (Atomics.load(c, ERROR) !== 0) throw new BackendError('wasm kernels: a worker failed (wasm trap); the result is invalid');
  }

  function runRows(job: RowJob, lo: number, hi: number): void {
    if (hi <= lo) return;
    const args = job.args.slice();
    for (const [i, stride] of job.ptrs) args[i] = args[i]! + lo * stride;
    args[job.count] = hi - lo;
    (main as unknown as Record<RowKernel, (...a: number[]) => void>)[job.fn](...args);
  }

  return {
    threads,
    rows(job: RowJob): void {
      if (closed) throw new BackendError('wasm kernels: this thread pool was closed (useBackend was called again)');
      const rowBytes = job.ptrs.reduce((a, [, s]) => a + s, 0);
      if (job.rows * rowBytes < MIN_PARALLEL_ROW_BYTES || job.rows < threads * job.granule) {
        runRows(job, 0, job.rows);
        return;
      }
      const chunk = Math.ceil(job.rows / threads / job.granule) * job.granule;
      p[0] = ROW_KERNELS.indexOf(job.fn);
      p[1] = job.args.length;
      p[2] = job.count;
      p[3] = job.ptrs.length;
      job.args.forEach((v, i) => (p[ROW_ARGS + i] = v));
      job.ptrs.forEach(([i, stride], j) => {
        p[ROW_ARGS + job.args.length + 2 * j] = i;
        p[ROW_ARGS + job.args.length + 2 * j + 1] = stride;
      });
      p[KIND] = 2;
      for (let w = 0; w < threads; w++) {
        p[RANGES + 2 * w] = Math.min(job.rows, w * chunk);
        p[RANGES + 2 * w + 1] = Math.min(job.rows, (w + 1) * chunk);
      }
      dispatch(() => runRows(job, 0, Math.min(job.rows, chunk)));
    },
    ranges(job: RangeJob): void {
      if (closed) throw new BackendError('wasm kernels: this thread pool was closed (useBackend was called again)');
      const { fn, args, total, granule } = job;
      const index = fns.indexOf(fn);
      if (index < 0) throw new BackendError(`wasm kernels: ranges: '${fn}' is not a function export of the module`);
      if (args.length > ROW_SLOTS) throw new BackendError(`wasm kernels: ranges: ${args.length} arguments, at most ${ROW_SLOTS}`);
      if (!Number.isInteger(total) || total < 0 || !Number.isInteger(granule) || granule < 1) {
        throw new BackendError(`wasm kernels: ranges: total ${total} and granule ${granule} must be integers, total ≥ 0, granule ≥ 1`);
      }
      const call = (main as unknown as Record<string, (...a: number[]) => void>)[fn]!;
      if (total <= granule) {
        if (total > 0) call(...args, 0, total);
        return;
      }
      // participant w: granules [⌊w·G/threads⌋, ⌊(w+1)·G/threads⌋) of the G = ⌈total/granule⌉
      const units = Math.ceil(total / granule);
      const bound = (w: number): number => Math.min(total, Math.floor((w * units) / threads) * granule);
      p[0] = index;
      p[1] = args.length;
      args.forEach((v, i) => (p[ROW_ARGS + i] = v));
      p[KIND] = 3;
      for (let w = 0; w < threads; w++) {
        p[RANGES + 2 * w] = bound(w);
        p[RANGES + 2 * w + 1] = bound(w + 1);
      }
      const own = bound(1);
      dispatch(() => {
        if (own > 0) call(...args, 0, own);
      });
    },
    matmul(job: MatmulJob): void {
      if (closed) throw new BackendError('wasm kernels: this thread pool was closed (useBackend was called again)');
      const { batch, m, n, k } = job;
      if (2 * batch * m * n * k < MIN_PARALLEL_FLOP) {
        runRange(job, 0, 0, batch);
        return;
      }
      // batch items if there are enough, else columns in multiples of 16 (whole micro-kernel and decode-path tiles)
      const kind = batch >= threads ? 0 : 1;
      const chunk = kind === 0 ? 0 : Math.ceil(n / threads / 16) * 16;
      const f = [job.layout, job.a, job.b, job.c, batch, m, n, k, job.accumulate, job.aStride, job.bStride, job.cStride];
      for (let i = 0; i < FIELDS; i++) p[i] = f[i]!;
      p[KIND] = kind;
      for (let w = 0; w < threads; w++) {
        const lo = kind === 0 ? Math.floor((w * batch) / threads) : Math.min(n, w * chunk);
        const hi = kind === 0 ? Math.floor(((w + 1) * batch) / threads) : Math.min(n, lo + chunk);
        p[RANGES + 2 * w] = lo;
        p[RANGES + 2 * w + 1] = hi;
      }
      dispatch(() => runRange(job, kind, p[RANGES]!, p[RANGES + 1]!));
    },
    close(): void {
      if (closed) return;
      closed = true;
      Atomics.store(c, STOP, 1);
      Atomics.add(c, GEN, 1);
      Atomics.notify(c, GEN);
    },
  };
}
