/**
 * The matmul worker pool of the threaded wasm kernels, Node only (`worker_threads`; loaded by src/kernels/wasm.ts
 * on demand). Every worker instantiates the shared-memory build on the one shared `WebAssembly.Memory`, points its
 * matmul scratch at its own region, and waits on a control block (a SharedArrayBuffer). The caller writes a job
 * (operand addresses, shapes) cut into chunks, frees one claim flag per chunk, bumps a generation counter and wakes
 * the workers with Atomics.notify. Every participant then claims free chunks (compare-and-swap on the flag) and runs
 * them; the caller starts with its own share and goes on with any chunk still unclaimed, so a worker that wakes late
 * (a busy machine) delays nothing: the caller only waits, in Atomics.wait, for chunks a worker actually took.
 *
 * Chunks split the output, never the reduction: whole batch items when there are at least as many as threads, else
 * column ranges of C (multiples of 16); rows for the row-wise kernels. Each element is computed exactly as the
 * one-thread call computes it (assembly/matmul.ts, matmulColumns), whoever runs the chunk, so results are
 * bit-identical for any thread count.
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
 * A range job: [0, total) is cut into chunks of whole `granule`s (the last ends at `total`; up to 4 × threads
 * chunks, as equal as whole granules allow), and the participants call `ex[fn](...args, lo, hi)` once per chunk
 * [lo, hi) they claim (the caller included; no call for an empty chunk). `fn` is the name of any function export of
 * the module (sent to the workers as its index in the module's export list, which both sides read the same way); at
 * most 32 arguments before lo, hi. The kernel must write disjoint outputs for disjoint ranges: then the split changes
 * no value.
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

// control block (Int32): generation, done count (chunks finished by workers), stop flag, error flag, chunk count,
// then one claim flag per chunk (0 free, 1 taken by a worker, 2 taken by the caller)
const GEN = 0;
const DONE = 1;
const STOP = 2;
const ERROR = 3;
const NCHUNKS = 4;
const TAKEN = 8;
// job block (Float64): the 12 job fields, the split kind (0 batch items, 1 columns, 2 rows, 3 ranges), then [lo, hi)
// per chunk; a row job puts in the fields: kernel index (in functionExports), argument count, count argument,
// pointer pair count, then (from ROW_ARGS) the arguments and the (index, bytes per row) pairs; a range job: the
// export's index and the argument count, then (from ROW_ARGS) the arguments
const FIELDS = 12;
const KIND = FIELDS;
const RANGES = FIELDS + 1;
const MAX_THREADS = 64;
// A job is cut into up to CHUNKS_PER_THREAD × threads chunks that the participants claim one at a time: a worker
// that wakes late (a busy machine) finds its chunks done by the others instead of holding the caller up.
const CHUNKS_PER_THREAD = 4;
const MAX_CHUNKS = CHUNKS_PER_THREAD * MAX_THREADS;
const ROW_ARGS = RANGES + 2 * MAX_CHUNKS;
const ROW_SLOTS = 32;

// Row jobs below this many rows × bytes-per-row run on the calling thread alone.
const MIN_PARALLEL_ROW_BYTES = 2 ** 18;

// Products below this many flop run on the calling thread alone (a decode step's 256 × 512 GEMV is 2¹⁸: split).
const MIN_PARALLEL_FLOP = 2 ** 18;

// How long a worker polls for the next job (and the caller for the workers' chunks) before sleeping in Atomics.wait:
// waking from Atomics.wait takes tens of µs, longer than a decode step's GEMVs, and their jobs come µs apart.
const SPIN_MS = 0.1;

type Exports = Record<string, (...a: number[]) => void>;

/** Where runChunk finds things in the job block (passed in, not closed over: the worker runs the function's text). */
const LAYOUT = { KIND, RANGES, ROW_ARGS };

/**
 * Runs chunk q of the job in `p` on instance `ex` (the caller's or a worker's: the worker source embeds this
 * function's text, so both sides run the same code; it may use only its parameters). `fns`: functionExports(module).
 */
function runChunk(ex: Exports, p: Float64Array, q: number, fns: string[], { KIND, RANGES, ROW_ARGS }: typeof LAYOUT): void {
  const lo = p[RANGES + 2 * q]!;
  const hi = p[RANGES + 2 * q + 1]!;
  if (hi <= lo) return;
  const kind = p[KIND]!;
  if (kind === 0) {
    for (let i = lo; i < hi; i++) ex.matmulColumns!(p[0]!, p[1]! + i * p[9]!, p[2]! + i * p[10]!, p[3]! + i * p[11]!, p[5]!, p[6]!, p[7]!, p[8]!, 0, p[6]!);
  } else if (kind === 1) {
    for (let i = 0; i < p[4]!; i++) ex.matmulColumns!(p[0]!, p[1]! + i * p[9]!, p[2]! + i * p[10]!, p[3]! + i * p[11]!, p[5]!, p[6]!, p[7]!, p[8]!, lo, hi);
  } else {
    const nArgs = p[1]!;
    const args: number[] = [];
    for (let i = 0; i < nArgs; i++) args.push(p[ROW_ARGS + i]!);
    if (kind === 2) {
      // rows [lo, hi): row-indexed operands advanced by lo rows, the count argument set to hi − lo
      for (let j = 0; j < p[3]!; j++) {
        const at = p[ROW_ARGS + nArgs + 2 * j]!;
        args[at] = args[at]! + lo * p[ROW_ARGS + nArgs + 2 * j + 1]!;
      }
      args[p[2]!] = hi - lo;
    } else {
      args.push(lo, hi);
    }
    ex[fns[p[0]!]!]!(...args);
  }
}

// The worker: CommonJS (eval): wakes on a new generation and claims free chunks (from its own share on) until none
// is left; counts each finished chunk in DONE.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { module, memory, ctrl, job, scratch, id, threads } = workerData;
const ex = new WebAssembly.Instance(module, { env: { memory, abort() { throw new Error('wasm abort'); } } }).exports;
ex.setMatmulScratch(scratch);
const c = new Int32Array(ctrl);
const p = new Float64Array(job);
const fns = WebAssembly.Module.exports(module).filter((d) => d.kind === 'function').map((d) => d.name);
const LAYOUT = ${JSON.stringify(LAYOUT)};
${runChunk.toString()}
let gen = 0;
parentPort.postMessage('ready');
for (;;) {
  // poll a while before sleeping: the next job of a decode step or a layer comes within microseconds
  const until = performance.now() + ${SPIN_MS};
  for (let i = 1; Atomics.load(c, ${GEN}) === gen; i++) {
    if ((i & 255) === 0 && performance.now() > until) {
      Atomics.wait(c, ${GEN}, gen);
      break;
    }
  }
  gen = Atomics.load(c, ${GEN});
  if (Atomics.load(c, ${STOP}) === 1) break;
  const n = Atomics.load(c, ${NCHUNKS});
  const first = Math.floor((id * n) / threads);
  for (let j = 0; j < n; j++) {
    const q = (first + j) % n;
    if (Atomics.compareExchange(c, ${TAKEN} + q, 0, 1) !== 0) continue;
    try {
      runChunk(ex, p, q, fns, LAYOUT);
    } catch (e) {
      Atomics.store(c, ${ERROR}, 1);
    }
    Atomics.add(c, ${DONE}, 1);
    Atomics.notify(c, ${DONE});
  }
}
`;

/** Most threads started by default: beyond 4, the model's matmuls at the bench sizes gain little (docs/kernels.md). */
export const DEFAULT_MAX_THREADS = 4;

/** The library's default thread count in Node: min(available cores, {@link DEFAULT_MAX_THREADS}). */
export function defaultThreadCount(): number {
  return Math.max(1, Math.min(availableParallelism(), DEFAULT_MAX_THREADS));
}

// The process's flags without --input-type: workers inherit execArgv, and `node --input-type=module -e ...` would make
// the eval'd (CommonJS) worker source an ES module.
function workerExecArgv(): string[] {
  const out: string[] = [];
  for (let i = 0; i < process.execArgv.length; i++) {
    const a = process.execArgv[i]!;
    if (a === '--input-type') i++;
    else if (!a.startsWith('--input-type=')) out.push(a);
  }
  return out;
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
  if (threads > MAX_THREADS) throw new BackendError(`wasm kernels: at most ${MAX_THREADS} threads`);
  const fns = functionExports(module);
  const ctrl = new SharedArrayBuffer(4 * (TAKEN + MAX_CHUNKS));
  const jobBuf = new SharedArrayBuffer(8 * (ROW_ARGS + ROW_SLOTS));
  const c = new Int32Array(ctrl);
  const p = new Float64Array(jobBuf);
  c.fill(1, TAKEN); // every flag taken: nothing to claim before the first job
  const ex = main as unknown as Exports;
  const workers: Worker[] = [];
  const ready: Promise<void>[] = [];
  for (let id = 1; id < threads; id++) {
    const w = new Worker(WORKER_SOURCE, { eval: true, execArgv: workerExecArgv(), workerData: { module, memory, ctrl, job: jobBuf, scratch: scratch[id - 1], id, threads } });
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

  // Cuts [0, total) into chunks of whole `granule`s (the last one ends at total): up to CHUNKS_PER_THREAD × threads,
  // as equal as whole granules allow; returns the chunk count.
  function plan(total: number, granule: number): number {
    const units = Math.ceil(total / granule);
    const n = Math.min(units, CHUNKS_PER_THREAD * threads);
    for (let q = 0; q <= n; q++) {
      const bound = Math.min(total, Math.floor((q * units) / n) * granule);
      if (q < n) p[RANGES + 2 * q] = bound;
      if (q > 0) p[RANGES + 2 * q - 1] = bound;
    }
    return n;
  }

  // Runs the n chunks of the job in `p`: wakes the workers, claims chunks itself in order (its own share first, then
  // any a worker has not claimed yet), then waits only for the chunks workers took.
  function dispatch(n: number): void {
    Atomics.store(c, DONE, 0);
    Atomics.store(c, ERROR, 0);
    Atomics.store(c, NCHUNKS, n);
    for (let q = 0; q < n; q++) Atomics.store(c, TAKEN + q, 0); // after the job fields: a claim sees them
    Atomics.add(c, GEN, 1);
    Atomics.notify(c, GEN);
    let mine = 0;
    let error: unknown = null;
    for (let q = 0; q < n; q++) {
      if (Atomics.compareExchange(c, TAKEN + q, 0, 2) !== 0) continue;
      mine++;
      try {
        runChunk(ex, p, q, fns, LAYOUT);
      } catch (e) {
        error ??= e;
      }
    }
    const until = performance.now() + SPIN_MS;
    for (let i = 1, d = Atomics.load(c, DONE); d < n - mine; i++, d = Atomics.load(c, DONE)) {
      if ((i & 255) === 0 && performance.now() > until) Atomics.wait(c, DONE, d);
    }
    if (error !== null) throw error;
    if (Atomics.load(c, ERROR) !== 0) throw new BackendError('wasm kernels: a worker failed (wasm trap); the result is invalid');
  }

  function runRows(job: RowJob, lo: number, hi: number): void {
    if (hi <= lo) return;
    const args = job.args.slice();
    for (const [i, stride] of job.ptrs) args[i] = args[i]! + lo * stride;
    args[job.count] = hi - lo;
    ex[job.fn]!(...args);
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
      p[0] = fns.indexOf(job.fn);
      p[1] = job.args.length;
      p[2] = job.count;
      p[3] = job.ptrs.length;
      job.args.forEach((v, i) => (p[ROW_ARGS + i] = v));
      job.ptrs.forEach(([i, stride], j) => {
        p[ROW_ARGS + job.args.length + 2 * j] = i;
        p[ROW_ARGS + job.args.length + 2 * j + 1] = stride;
      });
      p[KIND] = 2;
      dispatch(plan(job.rows, job.granule));
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
      p[0] = index;
      p[1] = args.length;
      args.forEach((v, i) => (p[ROW_ARGS + i] = v));
      p[KIND] = 3;
      dispatch(plan(total, granule));
    },
    matmul(job: MatmulJob): void {
      if (closed) throw new BackendError('wasm kernels: this thread pool was closed (useBackend was called again)');
      const { batch, m, n, k } = job;
      if (2 * batch * m * n * k < MIN_PARALLEL_FLOP) {
        for (let i = 0; i < batch; i++) main.matmulColumns(job.layout, job.a + i * job.aStride, job.b + i * job.bStride, job.c + i * job.cStride, m, n, k, job.accumulate, 0, n);
        return;
      }
      const f = [job.layout, job.a, job.b, job.c, batch, m, n, k, job.accumulate, job.aStride, job.bStride, job.cStride];
      for (let i = 0; i < FIELDS; i++) p[i] = f[i]!;
      // batch items if there are enough, else columns in multiples of 16 (whole micro-kernel and decode-path tiles)
      const kind = batch >= threads ? 0 : 1;
      p[KIND] = kind;
      dispatch(kind === 0 ? plan(batch, 1) : plan(n, 16));
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
