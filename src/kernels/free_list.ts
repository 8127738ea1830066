import { BackendError } from '../errors.js';

/**
 * A first-fit free-list allocator over the byte range [start, end) of a linear memory, for long-lived (resident)
 * arrays. Blocks are multiples of 16 bytes at 16-byte-aligned addresses (at least 16 bytes, so every block has an
 * address of its own). A request takes the lowest free block that fits (splitting off the rest), else grows `end`;
 * a released block merges with free neighbours, and a free block that reaches `end` gives its bytes back (`end`
 * shrinks), so space above the live blocks is left to whatever lies above (the wasm arena of per-call operands).
 * Addresses only: the owner maps them to memory and grows the memory to `end`.
 */
export class FreeList {
  private top: number;
  /** Free blocks below `top`, sorted by address, never adjacent (merged). */
  private readonly free: { ptr: number; bytes: number }[] = [];
  /** Live blocks: address → bytes. */
  private readonly live = new Map<number, number>();

  constructor(readonly start: number) {
    if (start % 16 !== 0) throw new BackendError(`FreeList: start ${start} is not 16-byte aligned`);
    this.top = start;
  }

  /** One past the highest byte in use (live or free blocks below it). */
  get end(): number {
    return this.top;
  }

  /** Number of live blocks. */
  get liveBlocks(): number {
    return this.live.size;
  }

  /** Bytes in free blocks below `end`. */
  get freeBytes(): number {
    return this.free.reduce((a, b) => a + b.bytes, 0);
  }

  /** Reserves `bytes` (rounded up to a multiple of 16, at least 16); returns the block's address. */
  alloc(bytes: number): number {
    if (!Number.isFinite(bytes) || bytes < 0) throw new BackendError(`FreeList.alloc: bad size ${bytes}`);
    const size = Math.max(16, Math.ceil(bytes / 16) * 16);
    let ptr: number;
    const i = this.free.findIndex((b) => b.bytes >= size);
    if (i >= 0) {
      const b = this.free[i]!;
      ptr = b.ptr;
      if (b.bytes === size) this.free.splice(i, 1);
      else this.free[i] = { ptr: b.ptr + size, bytes: b.bytes - size };
    } else {
      ptr = this.top;
      this.top += size;
    }
    this.live.set(ptr, size);
    return ptr;
  }

  /** Returns the live block at `ptr` to the free list (BackendError if no live block starts there). */
  release(ptr: number): void {
    const size = this.live.get(ptr);
    if (size === undefined) throw new BackendError(`FreeList.release: no live block at address ${ptr} (released twice, or not allocated here)`);
    this.live.delete(ptr);
    // insertion point: the first free block above ptr
    let i = 0;
    while (i < this.free.length && this.free[i]!.ptr < ptr) i++;
    let block = { ptr, bytes: size };
    const next = this.free[i];
    if (next !== undefined && block.ptr + block.bytes === next.ptr) {
      block = { ptr, bytes: size + next.bytes };
      this.free.splice(i, 1);
    }
    const prev = this.free[i - 1];
    if (prev !== undefined && prev.ptr + prev.bytes === block.ptr) {
      block = { ptr: prev.ptr, bytes: prev.bytes + block.bytes };
      this.free.splice(i - 1, 1);
      i--;
    }
    if (block.ptr + block.bytes === this.top) this.top = block.ptr; // the topmost block: give the bytes back
    else this.free.splice(i, 0, block);
  }
}
