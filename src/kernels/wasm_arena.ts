import { BackendError } from '../errors.js';
import { FreeList } from './free_list.js';

const PAGE = 65536;
const MAX_PAGES = 65536; // wasm32: 4 GiB of linear memory

type Direction = 'in' | 'out' | 'inout';

interface Transfer {
  array: Float32Array | Int32Array;
  ptr: number;
  n: number;
  dir: Direction;
}

/**
 * The wasm kernels' linear memory above the module's static data, managed as an arena that is
 * reset at every kernel call. A call declares its arrays (`input`, `output`, `inout`), which
 * get 16-byte-aligned addresses; `run` grows memory once if the call needs more than it ever
 * needed before, copies the inputs in, runs the kernel and copies the outputs out.
 * TypedArray views over `memory.buffer` are created inside `run` only and never kept, because
 * growing memory detaches them. Memory therefore stays at the high-water mark of the largest
 * call: it never grows on repeated calls of the same sizes.
 *
 * With a shared memory (views never detach) arrays may also live in it for good: `allocResident(n)` takes them from
 * a free-list allocator (src/kernels/free_list.ts) whose blocks lie below the arena, `releaseResident(view)` gives
 * them back, and a call takes any array inside this memory by address, with no copy in or out. The arena starts
 * at the allocator's end, which moves only between calls.
 */
export class WasmArena {
  private top: number;
  private readonly transfers: Transfer[] = [];
  // Every buffer object memory.buffer has returned: an array whose .buffer is one of them lives in this memory.
  private readonly buffers = new WeakSet<ArrayBufferLike>();
  private readonly heap: FreeList;
  // live resident blocks: byte address → length in f32
  private readonly residentLengths = new Map<number, number>();

  constructor(
    private readonly memory: WebAssembly.Memory,
    base: number,
    /** Zeroes bytes of this memory at memset speed (the module's memory.fill); default a JS fill. */
    private readonly zeroBytes: (ptr: number, bytes: number) => void = (ptr, bytes) => new Uint8Array(memory.buffer, ptr, bytes).fill(0),
  ) {
    this.heap = new FreeList(align16(base));
    this.top = this.heap.end;
    if (this.isShared()) this.buffers.add(memory.buffer);
  }

  /** Whether this memory is shared (a SharedArrayBuffer: views over it never detach, so arrays may live in it). */
  isShared(): boolean {
    return typeof SharedArrayBuffer === 'function' && this.memory.buffer instanceof SharedArrayBuffer;
  }

  /**
   * `n` f32 of this memory for long-lived use, zero-filled (like `new Float32Array(n)`), 16-byte aligned: a resident
   * array. Kernel calls take resident arrays (and their subarrays) by address, without copies. Held until
   * {@link releaseResident}. Shared memory only (BackendError otherwise).
   */
  allocResident(n: number): Float32Array {
    if (!this.isShared()) throw new BackendError('wasm kernels: resident arrays need the shared-memory build (SharedArrayBuffer); this instance has a private memory');
    if (!Number.isInteger(n) || n < 0) throw new BackendError(`wasm kernels: allocResident(${n}): the length must be a non-negative integer`);
    const ptr = this.heap.alloc(4 * n);
    try {
      this.ensure(this.heap.end);
    } catch (e) {
      this.heap.release(ptr);
      throw e;
    }
    this.top = this.heap.end;
    this.residentLengths.set(ptr, n);
    // a reused block, or bytes the arena used before; memory.fill, not view.fill: V8 fills a view of shared memory
    // element by element (288 MiB of fresh pages: 1.15 s)
    this.zeroBytes(ptr, 4 * n);
    const view = new Float32Array(this.memory.buffer, ptr, n);
    return view;
  }

  /**
   * Gives a block from {@link allocResident} back (its bytes may be handed out again: the caller must not use
   * `view` afterwards). BackendError if `view` is not a whole live resident block of this memory.
   */
  releaseResident(view: Float32Array): void {
    if (!this.ownsResident(view)) {
      throw new BackendError(`wasm kernels: releaseResident: the array (${view.length} f32) is not a live resident block of this instance (released twice, a subarray, or allocated elsewhere)`);
    }
    this.heap.release(view.byteOffset);
    this.residentLengths.delete(view.byteOffset);
    this.top = this.heap.end;
  }

  /** Whether `array` was handed out by {@link allocResident} of this arena and not released yet. */
  ownsResident(array: Float32Array): boolean {
    return this.inMemory(array) && this.residentLengths.get(array.byteOffset) === array.length;
  }

  /** Resident blocks live now and the bytes of freed blocks below the top one (reused first). */
  residentStats(): { liveBlocks: number; freeBytes: number; endByte: number } {
    return { liveBlocks: this.heap.liveBlocks, freeBytes: this.heap.freeBytes, endByte: this.heap.end };
  }

  /** Whether `array` lives in this memory (a resident array or a view of one): passed by address. */
  /** Whether `array` lives in this memory (any view of it, e.g. a subarray of a resident array). */
  holds(array: Float32Array | Int32Array): boolean {
    return this.inMemory(array);
  }

  private inMemory(array: Float32Array | Int32Array): boolean {
    return this.buffers.has(array.buffer);
  }

  /** Current size of the linear memory in bytes. */
  byteLength(): number {
    return this.memory.buffer.byteLength;
  }

  /** Starts a new call: forgets every address handed out before. */
  begin(): this {
    this.top = this.heap.end;
    this.transfers.length = 0;
    return this;
  }

  /** Reserves n elements for an array the kernel reads; returns its byte address. */
  input(array: Float32Array | Int32Array, n: number): number {
    return this.declare(array, n, 'in');
  }

  /** Reserves n elements for an array the kernel only writes. */
  output(array: Float32Array, n: number): number {
    return this.declare(array, n, 'out');
  }

  /** Reserves n elements for an array the kernel reads and writes (accumulators, in-place updates). */
  inout(array: Float32Array, n: number): number {
    return this.declare(array, n, 'inout');
  }

  /** Grows memory if needed, copies inputs in, runs `kernel`, copies outputs out; returns its result. */
  run<R>(kernel: () => R): R {
    this.ensure(this.top);
    if (this.transfers.length === 0) return kernel(); // every operand resident: no copies
    let f32 = new Float32Array(this.memory.buffer);
    let i32 = new Int32Array(this.memory.buffer);
    for (const t of this.transfers) {
      if (t.dir === 'out') continue;
      const heap = t.array instanceof Int32Array ? i32 : f32;
      heap.set(t.array.length === t.n ? t.array : t.array.subarray(0, t.n), t.ptr >>> 2);
    }
    const result = kernel();
    // fresh views: never reuse a view across a call into wasm
    f32 = new Float32Array(this.memory.buffer);
    for (const t of this.transfers) {
      if (t.dir === 'in') continue;
      t.array.set(f32.subarray(t.ptr >>> 2, (t.ptr >>> 2) + t.n));
    }
    this.transfers.length = 0;
    return result;
  }

  private declare(array: Float32Array | Int32Array, n: number, dir: Direction): number {
    if (this.inMemory(array)) return array.byteOffset; // resident: the kernel reads and writes it in place
    const ptr = this.top;
    this.top = align16(ptr + 4 * n);
    this.transfers.push({ array, ptr, n, dir });
    return ptr;
  }

  private ensure(bytes: number): void {
    const have = this.memory.buffer.byteLength;
    if (bytes <= have) return;
    const pages = Math.ceil((bytes - have) / PAGE);
    if (have / PAGE + pages > MAX_PAGES) {
      throw new BackendError(
        `wasm kernels: a call needs ${(bytes / 2 ** 30).toFixed(2)} GiB of linear memory, more than the 4 GiB a wasm32 module can address; split the call`,
      );
    }
    this.memory.grow(pages);
    if (this.isShared()) this.buffers.add(this.memory.buffer); // a grown SharedArrayBuffer: old views stay valid
  }
}

// plain arithmetic, not `& ~15`: addresses can pass 2³¹
function align16(x: number): number {
  return Math.ceil(x / 16) * 16;
}
