import { BackendError, InputError, ShapeError } from '../errors.js';
import type { FloatArray } from '../tensor.js';
import type { AdamWParams, Kernels, MatmulLayout } from './kernels.js';
import { WasmArena } from './wasm_arena.js';
import type { Fp8Kernels } from './fp8_js.js';
import { makeWasmFp8, type Fp8Exports } from './wasm_fp8.js';
import { makeWasmAttention, type AttentionExports } from './wasm_attention.js';
import {
  WASM_RELAXED_SIMD_BASE64,
  WASM_RELAXED_SIMD_SHARED_BASE64,
  WASM_SHARED_INITIAL_PAGES,
  WASM_SIMD_BASE64,
  WASM_SIMD_SHARED_BASE64,
} from './wasm_bytes.generated.js';
import type { MatmulPool, RowKernel } from './wasm_threads_node.js';

/** Name a wasm kernel set reports: the plain 128-bit SIMD build or the relaxed-SIMD build. */
export type WasmKernelsName = 'wasm-simd' | 'wasm-relaxed-simd';

/** Which build {@link loadWasmKernels} instantiates. `'auto'` picks relaxed SIMD when the engine validates it. */
export type WasmVariant = 'auto' | 'simd' | 'relaxed-simd';

/** The wasm kernels: the {@link Kernels} interface (f32 only) plus memory introspection. */
export interface WasmKernels extends Kernels {
  readonly name: WasmKernelsName;
  /** Current size of this instance's linear memory in bytes (it grows to the largest call, never per call). */
  memoryBytes(): number;
  /** Threads the matmul runs on (1, or the `threads` option where the engine allows it; see loadWasmKernels). */
  readonly threads: number;
  /** Stops this instance's worker threads, if any (useBackend calls it when it replaces the backend). */
  close(): void;
  /**
   * A copy of `x` that lives in this instance's wasm memory for good (never freed): every kernel call takes it, and
   * any subarray of it, by address, without copies. For weights, gradients and optimizer state. Needs the
   * shared-memory build (SharedArrayBuffer: Node, cross-origin-isolated pages); else BackendError.
   */
  resident(x: Float32Array): Float32Array;
  /**
   * `n` zero-filled f32 that live in this instance's wasm memory until {@link releaseResident} (a free-list
   * allocator: released blocks are reused, adjacent ones merge; 16-byte aligned). Kernel calls take them, and any
   * subarray of them, by address. For KV caches, gradients, optimizer state. Shared-memory build only (BackendError).
   */
  allocResident(n: number): Float32Array;
  /** Gives back an array from {@link allocResident}; it must not be used afterwards. BackendError if it is not one (or was released). */
  releaseResident(x: Float32Array): void;
  /** Whether `x` is a live array from this instance's {@link allocResident}. */
  ownsResident(x: Float32Array): boolean;
  /** x.fill(0), at memset speed where x lives in this instance's memory (V8 fills a view of shared memory ~5× slower). */
  zero(x: Float32Array): void;
  /** Whether {@link resident} is available on this instance. */
  readonly residentSupported: boolean;
  /** The FP8 / bf16 emulation kernels on this instance (src/kernels/wasm_fp8.ts); src/kernels/fp8.ts dispatches here. */
  readonly fp8: Fp8Kernels;
}

/** What this engine can run: 128-bit SIMD, and relaxed SIMD (Node 20 needs `--experimental-wasm-relaxed-simd`). */
export function wasmSupport(): { simd: boolean; relaxedSimd: boolean } {
  if (typeof WebAssembly !== 'object') return { simd: false, relaxedSimd: false };
  return { simd: WebAssembly.validate(simdBytes()), relaxedSimd: WebAssembly.validate(relaxedBytes()) };
}

/**
 * Instantiates the WebAssembly kernels. With `variant: 'auto'` (default) the relaxed-SIMD build
 * runs when `WebAssembly.validate` accepts it, else the SIMD build; the result's `name` says which.
 * Throws a `BackendError` if the engine lacks WebAssembly SIMD, or lacks relaxed SIMD when
 * `'relaxed-simd'` is requested: there is no silent fallback.
 */
export async function loadWasmKernels(options: { variant?: WasmVariant; threads?: number; resident?: boolean } = {}): Promise<WasmKernels> {
  const variant = options.variant ?? 'auto';
  const threads = options.threads ?? (await defaultThreads());
  if (!Number.isInteger(threads) || threads < 1 || threads > 64) throw new BackendError(`wasm kernels: threads must be an integer in [1, 64], got ${String(threads)}`);
  const support = wasmSupport();
  if (!support.simd) {
    throw new BackendError('this JavaScript engine does not support WebAssembly 128-bit SIMD; use the js backend');
  }
  let relaxed: boolean;
  if (variant === 'relaxed-simd') {
    if (!support.relaxedSimd) {
      throw new BackendError(
        'this JavaScript engine does not support WebAssembly relaxed SIMD (Node 20: run with --experimental-wasm-relaxed-simd)',
      );
    }
    relaxed = true;
  } else if (variant === 'simd') {
    relaxed = false;
  } else if (variant === 'auto') {
    relaxed = support.relaxedSimd;
  } else {
    throw new BackendError(`unknown wasm variant '${String(variant)}': expected 'auto', 'simd' or 'relaxed-simd'`);
  }
  const name = relaxed ? 'wasm-relaxed-simd' : 'wasm-simd';
  // The shared-memory build for threads (Node), when resident arrays are asked for, and by default in Node (no
  // `threads` given) even on one core: the model's scratch scopes then keep every activation in wasm memory (a train
  // step of the bench preset on one thread: 386 ms shared against 440 ms private, docs/kernels.md, Memory). An
  // explicit `threads: 1` keeps the private memory, where each call copies its operands.
  const shared = typeof SharedArrayBuffer === 'function';
  const resident = options.resident ?? (options.threads === undefined && threadsAvailable());
  if (resident && !shared) throw new BackendError('wasm kernels: resident arrays need SharedArrayBuffer (Node, or a cross-origin-isolated page)');
  if (shared && ((threads > 1 && threadsAvailable()) || resident)) return loadShared(relaxed, name, threadsAvailable() ? threads : 1);
  const { instance } = await WebAssembly.instantiate(relaxed ? relaxedBytes() : simdBytes(), {});
  const ex = instance.exports as unknown as WasmExports;
  return makeWasmKernels(ex, name, ex.heapBase(), null);
}

/**
 * The default thread count: min(available cores, 4) where threads run (Node; wasm_threads_node.ts), else 1; also 1
 * when that module is not there (a browser bundle run in Node): `backendInfo().threads` reports it.
 */
async function defaultThreads(): Promise<number> {
  if (!threadsAvailable()) return 1;
  try {
    return (await importPool()).defaultThreadCount();
  } catch {
    return 1;
  }
}

// a computed specifier: bundlers for the browser do not follow it into node:worker_threads
async function importPool(): Promise<typeof import('./wasm_threads_node.js')> {
  const poolModule = './wasm_threads_node.js';
  return (await import(/* @vite-ignore */ poolModule)) as typeof import('./wasm_threads_node.js');
}

// An instance dropped without close() stops its workers when it is collected (they hold only the memory).
const stopUnreachablePools = typeof FinalizationRegistry === 'function' ? new FinalizationRegistry<MatmulPool>((pool) => pool.close()) : null;

/**
 * Whether this engine can run the matmul on worker threads: Node (worker_threads, and the main thread may block in
 * Atomics.wait) with SharedArrayBuffer. Browsers are not supported yet: a page's main thread may not block, so the
 * model (synchronous) would have to run in a worker of a cross-origin-isolated page; there the kernels run on one
 * thread and report `threads: 1` (docs/kernels.md).
 */
function threadsAvailable(): boolean {
  const proc = (globalThis as { process?: { versions?: { node?: string } } }).process;
  return typeof SharedArrayBuffer === 'function' && typeof Atomics === 'object' && typeof proc?.versions?.node === 'string';
}

// The shared-memory build on a fresh shared memory: the calling thread's instance plus, for threads > 1, a worker
// pool; each worker's matmul scratch (packed panels) is reserved right after the static data, the arena above them.
async function loadShared(relaxed: boolean, name: WasmKernelsName, threads: number): Promise<WasmKernels> {
  const module = await WebAssembly.compile(relaxed ? relaxedSharedBytes() : simdSharedBytes());
  const memory = new WebAssembly.Memory({ initial: WASM_SHARED_INITIAL_PAGES, maximum: 65536, shared: true });
  const instance = await WebAssembly.instantiate(module, { env: { memory } });
  const ex = instance.exports as unknown as WasmExports;
  const scratchBytes = align16(ex.MATMUL_SCRATCH_BYTES.value as number);
  const scratch = Array.from({ length: threads - 1 }, (_, i) => align16(ex.heapBase()) + i * scratchBytes);
  const base = align16(ex.heapBase()) + (threads - 1) * scratchBytes;
  if (base > memory.buffer.byteLength) memory.grow(Math.ceil((base - memory.buffer.byteLength) / 65536));
  if (threads === 1) return makeWasmKernels(ex, name, base, null);
  const { createMatmulPool } = await importPool();
  const pool = await createMatmulPool(module, memory, ex, scratch, threads);
  const kernels = makeWasmKernels(ex, name, base, pool);
  stopUnreachablePools?.register(kernels, pool);
  return kernels;
}

function align16(x: number): number {
  return Math.ceil(x / 16) * 16;
}

let simdCache: Uint8Array<ArrayBuffer> | undefined;
let relaxedCache: Uint8Array<ArrayBuffer> | undefined;
const simdBytes = (): Uint8Array<ArrayBuffer> => (simdCache ??= decodeBase64(WASM_SIMD_BASE64));
const relaxedBytes = (): Uint8Array<ArrayBuffer> => (relaxedCache ??= decodeBase64(WASM_RELAXED_SIMD_BASE64));
const simdSharedBytes = (): Uint8Array<ArrayBuffer> => decodeBase64(WASM_SIMD_SHARED_BASE64);
const relaxedSharedBytes = (): Uint8Array<ArrayBuffer> => decodeBase64(WASM_RELAXED_SIMD_SHARED_BASE64);

// `atob` exists in browsers and in Node ≥ 16, so no Buffer (keeps the module browser-safe).
function decodeBase64(s: string): Uint8Array<ArrayBuffer> {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** The functions exported by assembly/index.ts (addresses are byte offsets into `memory`). */
interface WasmExports {
  memory: WebAssembly.Memory;
  heapBase(): number;
  relaxedSimd(): number;
  zeroBytes(ptr: number, bytes: number): void;
  LAYOUT_NN: WebAssembly.Global;
  LAYOUT_NT: WebAssembly.Global;
  LAYOUT_TN: WebAssembly.Global;
  matmul(layout: number, a: number, b: number, c: number, m: number, n: number, k: number, accumulate: number): void;
  matmulColumns(layout: number, a: number, b: number, c: number, m: number, n: number, k: number, accumulate: number, jBegin: number, jEnd: number): void;
  MATMUL_SCRATCH_BYTES: WebAssembly.Global;
  softmaxForward(x: number, y: number, rows: number, cols: number): number;
  softmaxBackward(y: number, dy: number, dx: number, rows: number, cols: number): void;
  rmsnormForward(x: number, w: number, y: number, rstd: number, rows: number, cols: number, eps: number): void;
  rmsnormBackward(x: number, w: number, rstd: number, dy: number, dx: number, dw: number, rows: number, cols: number): void;
  swigluForward(a: number, b: number, y: number, n: number): void;
  swigluBackward(a: number, b: number, dy: number, da: number, db: number, n: number): void;
  rope(x: number, y: number, cos: number, sin: number, pos: number, rows: number, dim: number, inverse: number): void;
  crossEntropyForward(logits: number, targets: number, losses: number, rows: number, vocab: number, ignoreIndex: number): void;
  crossEntropyBackward(logits: number, targets: number, dlogits: number, rows: number, vocab: number, ignoreIndex: number, scale: number): void;
  adamw(param: number, grad: number, m: number, v: number, n: number, decay: number, w: number, beta2: number, oneMinusBeta2: number, stepSize: number, bc2Sqrt: number, eps: number): void;
  expKernel(x: number, y: number, n: number): void;
  add(a: number, b: number, out: number, n: number): void;
  scale(x: number, alpha: number, n: number): void;
  axpy(alpha: number, x: number, y: number, n: number): void;
  attentionForward(desc: number, u0: number, u1: number): void;
  attentionCombine(desc: number, u0: number, u1: number): void;
  attentionBackward(desc: number, u0: number, u1: number): void;
  ATTENTION_MAX_WIDTH: WebAssembly.Global;
}

// The wasm build is f32-only: an f64 array is a caller error, never silently run in js.
function f32(x: FloatArray, name: string, kernel: string): Float32Array {
  if (!(x instanceof Float32Array)) {
    throw new BackendError(`${kernel}: '${name}' is a ${x.constructor.name}; the wasm kernels are f32-only (f64 runs on kernelsFor('float64'))`);
  }
  return x;
}

function need(x: ArrayLike<number>, n: number, name: string, kernel: string): void {
  if (x.length < n) throw new ShapeError(`${kernel}: '${name}' has ${x.length} elements, the call needs ${n}`);
}

function checkTargets(targets: Int32Array, rows: number, vocab: number, ignoreIndex: number, kernel: string): void {
  need(targets, rows, 'targets', kernel);
  for (let r = 0; r < rows; r++) {
    const t = targets[r]!;
    if (t !== ignoreIndex && (t < 0 || t >= vocab)) throw new InputError(`${kernel} row ${r}: target ${t} outside [0, ${vocab})`);
  }
}

/**
 * One kernel call's operands: each is checked (f32, long enough) and given its place in wasm
 * memory in one step; `run` copies the inputs in, runs the kernel and copies the outputs out.
 */
class KernelCall {
  constructor(
    private readonly arena: WasmArena,
    private readonly kernel: string,
  ) {
    arena.begin();
  }

  /** An f32 array the kernel reads. */
  input(x: FloatArray, name: string, n: number): number {
    return this.arena.input(this.checked(x, name, n), n);
  }

  /** An i32 array the kernel reads (targets, positions). */
  ints(x: Int32Array, name: string, n: number): number {
    need(x, n, name, this.kernel);
    return this.arena.input(x, n);
  }

  /** An f32 array the kernel only writes. */
  output(x: FloatArray, name: string, n: number): number {
    return this.arena.output(this.checked(x, name, n), n);
  }

  /** An f32 array the kernel reads and writes (accumulators, in-place updates). */
  inout(x: FloatArray, name: string, n: number): number {
    return this.arena.inout(this.checked(x, name, n), n);
  }

  run<R>(kernel: () => R): R {
    return this.arena.run(kernel);
  }

  private checked(x: FloatArray, name: string, n: number): Float32Array {
    const a = f32(x, name, this.kernel);
    need(a, n, name, this.kernel);
    return a;
  }
}

function makeWasmKernels(ex: WasmExports, name: WasmKernelsName, base: number, pool: MatmulPool | null): WasmKernels {
  if ((ex.relaxedSimd() === 1) !== (name === 'wasm-relaxed-simd')) {
    throw new BackendError(`the embedded ${name} binary reports relaxedSimd() = ${ex.relaxedSimd()}; rebuild with npm run build:wasm`);
  }
  const arena = new WasmArena(ex.memory, base, (ptr, bytes) => ex.zeroBytes(ptr, bytes));
  const layoutCode: Record<MatmulLayout, number> = { nn: ex.LAYOUT_NN.value, nt: ex.LAYOUT_NT.value, tn: ex.LAYOUT_TN.value };
  const call = (kernel: string): KernelCall => new KernelCall(arena, kernel);
  // A row-wise kernel: split over the pool's threads when there is one (rows are independent: same values), else
  // called directly. `ptrs`: (argument index, bytes per row) of the row-indexed operands; `count`: the rows argument.
  const rowKernel = (fn: RowKernel, args: number[], count: number, nRows: number, ptrs: [number, number][], granule: number): void => {
    if (pool) pool.rows({ fn, args, rows: nRows, ptrs, count, granule });
    else (ex as unknown as Record<RowKernel, (...a: number[]) => void>)[fn](...args);
  };

  function matmulBatched<T extends FloatArray>(
    layout: MatmulLayout,
    a: T,
    b: T,
    c: T,
    batch: number,
    m: number,
    n: number,
    k: number,
    accumulate = false,
    bStride = k * n,
  ): void {
    const K = 'matmul';
    const code = Object.hasOwn(layoutCode, layout) ? layoutCode[layout] : undefined;
    if (code === undefined) throw new InputError(`${K}: unknown layout '${String(layout)}': expected 'nn', 'nt' or 'tn'`);
    f32(a, 'a', K);
    f32(b, 'b', K);
    f32(c, 'c', K);
    if (batch <= 0 || m <= 0 || n <= 0) return;
    const cl = call(K);
    const pa = cl.input(a, 'a', batch * m * k);
    const pb = cl.input(b, 'b', (batch - 1) * bStride + k * n);
    const pc = accumulate ? cl.inout(c, 'c', batch * m * n) : cl.output(c, 'c', batch * m * n);
    cl.run(() => {
      if (pool) {
        pool.matmul({ layout: code, a: pa, b: pb, c: pc, batch, m, n, k, accumulate: accumulate ? 1 : 0, aStride: 4 * m * k, bStride: 4 * bStride, cStride: 4 * m * n });
        return;
      }
      for (let i = 0; i < batch; i++) {
        ex.matmul(code, pa + 4 * i * m * k, pb + 4 * i * bStride, pc + 4 * i * m * n, m, n, k, accumulate ? 1 : 0);
      }
    });
  }

  return {
    name,
    memoryBytes: () => arena.byteLength(),
    threads: pool ? pool.threads : 1,
    close: () => pool?.close(),
    residentSupported: arena.isShared(),
    resident(x: Float32Array): Float32Array {
      const r = arena.allocResident(f32(x, 'x', 'resident').length);
      r.set(x);
      return r;
    },
    allocResident: (n: number) => arena.allocResident(n),
    releaseResident: (x: Float32Array) => arena.releaseResident(f32(x, 'x', 'releaseResident')),
    ownsResident: (x: Float32Array) => x instanceof Float32Array && arena.ownsResident(x),
    zero(x: Float32Array): void {
      if (arena.holds(x)) ex.zeroBytes(x.byteOffset, x.byteLength);
      else x.fill(0);
    },
    fp8: makeWasmFp8(ex as unknown as Fp8Exports, arena, name),
    // fused attention: whole units ((b, h) or b) per thread
    ...makeWasmAttention(ex as AttentionExports, arena, (fn, desc, total) => {
      if (pool && total > 1) pool.ranges({ fn, args: [desc], total, granule: 1 });
      else ex[fn](desc, 0, total);
    }),

    matmul<T extends FloatArray>(layout: MatmulLayout, a: T, b: T, c: T, m: number, n: number, k: number, accumulate = false): void {
      matmulBatched(layout, a, b, c, 1, m, n, k, accumulate, 0);
    },

    matmulBatched,

    softmaxForward<T extends FloatArray>(x: T, y: T, rows: number, cols: number): void {
      const cl = call('softmaxForward');
      const px = cl.input(x, 'x', rows * cols);
      const py = cl.output(y, 'y', rows * cols);
      const bad = cl.run(() => ex.softmaxForward(px, py, rows, cols));
      if (bad >= 0) throw new InputError(`softmaxForward row ${bad}: every entry is -Infinity`);
    },

    softmaxBackward<T extends FloatArray>(y: T, dy: T, dx: T, rows: number, cols: number): void {
      const n = rows * cols;
      const cl = call('softmaxBackward');
      const py = cl.input(y, 'y', n);
      const pdy = cl.input(dy, 'dy', n);
      const pdx = cl.inout(dx, 'dx', n);
      cl.run(() => rowKernel('softmaxBackward', [py, pdy, pdx, rows, cols], 3, rows, [[0, 4 * cols], [1, 4 * cols], [2, 4 * cols]], 1));
    },

    rmsnormForward<T extends FloatArray>(x: T, w: T, y: T, rstd: T, rows: number, cols: number, eps: number): void {
      const cl = call('rmsnormForward');
      const px = cl.input(x, 'x', rows * cols);
      const pw = cl.input(w, 'w', cols);
      const py = cl.output(y, 'y', rows * cols);
      const pr = cl.output(rstd, 'rstd', rows);
      cl.run(() => ex.rmsnormForward(px, pw, py, pr, rows, cols, eps));
    },

    rmsnormBackward<T extends FloatArray>(x: T, w: T, rstd: T, dy: T, dx: T, dw: T, rows: number, cols: number): void {
      const n = rows * cols;
      const cl = call('rmsnormBackward');
      const px = cl.input(x, 'x', n);
      const pw = cl.input(w, 'w', cols);
      const pr = cl.input(rstd, 'rstd', rows);
      const pdy = cl.input(dy, 'dy', n);
      const pdx = cl.inout(dx, 'dx', n);
      const pdw = cl.inout(dw, 'dw', cols);
      cl.run(() => ex.rmsnormBackward(px, pw, pr, pdy, pdx, pdw, rows, cols));
    },

    swigluForward<T extends FloatArray>(a: T, b: T, y: T, n: number): void {
      const cl = call('swigluForward');
      const pa = cl.input(a, 'a', n);
      const pb = cl.input(b, 'b', n);
      const py = cl.output(y, 'y', n);
      cl.run(() => rowKernel('swigluForward', [pa, pb, py, n], 3, n, [[0, 4], [1, 4], [2, 4]], 4));
    },

    swigluBackward<T extends FloatArray>(a: T, b: T, dy: T, da: T, db: T, n: number): void {
      const cl = call('swigluBackward');
      const pa = cl.input(a, 'a', n);
      const pb = cl.input(b, 'b', n);
      const pdy = cl.input(dy, 'dy', n);
      const pda = cl.inout(da, 'da', n);
      const pdb = cl.inout(db, 'db', n);
      cl.run(() => rowKernel('swigluBackward', [pa, pb, pdy, pda, pdb, n], 5, n, [[0, 4], [1, 4], [2, 4], [3, 4], [4, 4]], 4));
    },

    rope<T extends FloatArray>(x: T, y: T, cos: T, sin: T, pos: Int32Array, rows: number, dim: number, inverse: boolean): void {
      const K = 'rope';
      if (dim % 2 !== 0) throw new ShapeError(`${K}: row width ${dim} is odd; RoPE rotates pairs`);
      need(pos, rows, 'pos', K);
      let minPos = Infinity;
      let maxPos = -1;
      for (let r = 0; r < rows; r++) {
        if (pos[r]! < 0) throw new InputError(`${K} row ${r}: negative position ${pos[r]}`);
        minPos = Math.min(minPos, pos[r]!);
        maxPos = Math.max(maxPos, pos[r]!);
      }
      // only the table rows [lo, maxPos] are passed (a decode step copies one row, not the whole table), with the
      // positions rebased to lo: the kernel reads the same values
      const half = dim / 2;
      const lo = rows > 0 ? minPos : 0;
      need(cos, (maxPos + 1) * half, 'cos', K);
      need(sin, (maxPos + 1) * half, 'sin', K);
      const rel = lo === 0 ? pos : Int32Array.from(pos.subarray(0, rows), (p) => p - lo);
      const tableLen = (maxPos + 1 - lo) * half;
      const cl = call(K);
      const px = cl.input(x, 'x', rows * dim);
      const pcos = cl.input(cos.subarray(lo * half), 'cos', tableLen);
      const psin = cl.input(sin.subarray(lo * half), 'sin', tableLen);
      const ppos = cl.ints(rel, 'pos', rows);
      const py = cl.output(y, 'y', rows * dim);
      cl.run(() => ex.rope(px, py, pcos, psin, ppos, rows, dim, inverse ? 1 : 0));
    },

    crossEntropyForward<T extends FloatArray>(
      logits: T,
      targets: Int32Array,
      losses: T,
      rows: number,
      vocab: number,
      ignoreIndex: number,
    ): { sum: number; count: number } {
      const K = 'crossEntropyForward';
      checkTargets(targets, rows, vocab, ignoreIndex, K);
      const cl = call(K);
      const pl = cl.input(logits, 'logits', rows * vocab);
      const pt = cl.ints(targets, 'targets', rows);
      const po = cl.output(losses, 'losses', rows);
      cl.run(() => rowKernel('crossEntropyForward', [pl, pt, po, rows, vocab, ignoreIndex], 3, rows, [[0, 4 * vocab], [1, 4], [2, 4]], 1));
      let sum = 0;
      let count = 0;
      for (let r = 0; r < rows; r++) {
        if (targets[r] === ignoreIndex) continue;
        sum += losses[r]!; // summed in double, like the js kernel
        count++;
      }
      return { sum, count };
    },

    crossEntropyBackward<T extends FloatArray>(
      logits: T,
      targets: Int32Array,
      dlogits: T,
      rows: number,
      vocab: number,
      ignoreIndex: number,
      scale: number,
    ): void {
      const K = 'crossEntropyBackward';
      checkTargets(targets, rows, vocab, ignoreIndex, K);
      const cl = call(K);
      const pl = cl.input(logits, 'logits', rows * vocab);
      const pt = cl.ints(targets, 'targets', rows);
      const pd = cl.inout(dlogits, 'dlogits', rows * vocab);
      cl.run(() => rowKernel('crossEntropyBackward', [pl, pt, pd, rows, vocab, ignoreIndex, scale], 3, rows, [[0, 4 * vocab], [1, 4], [2, 4 * vocab]], 1));
    },

    adamw<T extends FloatArray>(param: T, grad: T, m: T, v: T, n: number, p: AdamWParams): void {
      const cl = call('adamw');
      const pp = cl.inout(param, 'param', n);
      const pg = cl.input(grad, 'grad', n);
      const pm = cl.inout(m, 'm', n);
      const pv = cl.inout(v, 'v', n);
      // scalars in double, as torch computes them in Python before the f32 tensor ops
      const decay = 1 - p.lr * p.weightDecay;
      const stepSize = p.lr / (1 - Math.pow(p.beta1, p.step));
      const bc2Sqrt = Math.sqrt(1 - Math.pow(p.beta2, p.step));
      const args = [pp, pg, pm, pv, n, decay, 1 - p.beta1, p.beta2, 1 - p.beta2, stepSize, bc2Sqrt, p.eps];
      cl.run(() => rowKernel('adamw', args, 4, n, [[0, 4], [1, 4], [2, 4], [3, 4]], 4));
    },

    exp<T extends FloatArray>(x: T, y: T, n: number): void {
      const cl = call('exp');
      const px = cl.input(x, 'x', n);
      const py = cl.output(y, 'y', n);
      cl.run(() => ex.expKernel(px, py, n));
    },

    add<T extends FloatArray>(a: T, b: T, out: T, n: number): void {
      const cl = call('add');
      const pa = cl.input(a, 'a', n);
      const pb = cl.input(b, 'b', n);
      const po = cl.output(out, 'out', n);
      cl.run(() => ex.add(pa, pb, po, n));
    },

    scale<T extends FloatArray>(x: T, alpha: number, n: number): void {
      const cl = call('scale');
      const px = cl.inout(x, 'x', n);
      cl.run(() => ex.scale(px, alpha, n));
    },

    axpy<T extends FloatArray>(alpha: number, x: T, y: T, n: number): void {
      const cl = call('axpy');
      const px = cl.input(x, 'x', n);
      const py = cl.inout(y, 'y', n);
      cl.run(() => ex.axpy(alpha, px, py, n));
    },
  };
}
