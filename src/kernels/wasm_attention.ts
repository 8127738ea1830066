/**
 * The fused attention kernels of the wasm backend (assembly/attention.ts): operand views are described to the
 * kernel by an i32 record (byte address and element strides of each view), the arrays behind them are placed in
 * wasm memory once each (an array shared by several views, e.g. a KV cache read as k1 and k2, is copied once), and
 * the work units ((b, h) pairs, or batch rows when the keys are shared by the heads) are spread over the pool's
 * threads when there is one. A unit is always computed whole by one thread, so results do not depend on the
 * thread count.
 */
import { ShapeError } from '../errors.js';
import type { FloatArray } from '../tensor.js';
import { checkAttention } from './attention_js.js';
import type { AttentionGrads, AttentionInputs, AttentionShape, AttnOperand } from './kernels.js';
import type { WasmArena } from './wasm_arena.js';

/** The exports of assembly/attention.ts. */
export interface AttentionExports {
  attentionForward(desc: number, u0: number, u1: number): void;
  attentionCombine(desc: number, u0: number, u1: number): void;
  attentionBackward(desc: number, u0: number, u1: number): void;
  ATTENTION_MAX_WIDTH: WebAssembly.Global;
}

/** Runs `fn(desc, lo, hi)` over a split of the units [0, total): on the pool's threads, or on this thread alone. */
export type UnitRunner = (fn: 'attentionForward' | 'attentionCombine' | 'attentionBackward', desc: number, total: number) => void;

// the record's fields (assembly/attention.ts)
const F_TAU = 8;
const F_STATS = 9;
const F_GROUPED = 10;
const F_CHUNK = 11;
const F_PARTIAL = 12;
const F_ROW_SPLIT = 13;
const F_OPS = 14;

/** A forward over units of more query rows than this (and keys not split) runs each range of this many rows as a work item (rows are independent). */
const ROW_SPLIT = 64;

/**
 * Flash-decoding: a forward with at most SPLIT_MAX_ROWS query rows per unit over at least 2·SPLIT_CHUNK keys (decode,
 * short chunks over a long cache) is split into chunks of SPLIT_CHUNK keys, computed as separate work items (so
 * threads share one unit's keys) and merged in chunk order. The split depends on the shape only, never on the thread
 * count.
 */
const SPLIT_CHUNK = 256;
const SPLIT_MAX_ROWS = 64;
const OPERANDS = 12;

type Direction = 'in' | 'out' | 'inout';

/** The arrays of one call with the extent each needs and how the kernel uses it, each placed once. */
class Placement {
  private readonly arrays = new Map<FloatArray, { n: number; dir: Direction }>();
  private readonly ptrs = new Map<FloatArray, number>();

  need(data: FloatArray, n: number, dir: Direction): void {
    const prev = this.arrays.get(data);
    if (prev === undefined) {
      this.arrays.set(data, { n, dir });
      return;
    }
    prev.n = Math.max(prev.n, n);
    if (prev.dir !== dir) prev.dir = 'inout';
  }

  place(arena: WasmArena): void {
    for (const [data, { n, dir }] of this.arrays) {
      if (!(data instanceof Float32Array)) throw new ShapeError(`attention: a ${data.constructor.name} operand; the wasm kernels are f32-only`);
      const ptr = dir === 'in' ? arena.input(data, n) : dir === 'out' ? arena.output(data, n) : arena.inout(data, n);
      this.ptrs.set(data, ptr);
    }
  }

  ptr(data: FloatArray): number {
    return this.ptrs.get(data)!;
  }
}

// one past the last element a view reads or writes
function extent(x: AttnOperand, B: number, H: number, rows: number, width: number): number {
  if (width === 0) return 0;
  return x.off + (B - 1) * x.sb + (H - 1) * x.sh + (rows - 1) * x.ss + width;
}

/** The wasm attentionForward / attentionBackward over `arena`, split by `runUnits`. */
export function makeWasmAttention(ex: AttentionExports, arena: WasmArena, runUnits: UnitRunner) {
  const maxWidth = ex.ATTENTION_MAX_WIDTH.value as number;
  const f32 = new Float32Array(1);
  const i32 = new Int32Array(f32.buffer);

  let partial = new Float32Array(0);

  function describe(
    kernel: string,
    shape: AttentionShape,
    grouped: boolean,
    views: (AttnOperand | null)[],
    rows: number[],
    widths: number[],
    dirs: Direction[],
    stats: FloatArray,
    statsDir: Direction,
    split: { chunk: number; floats: number } | null,
    rowSplit: number,
  ) {
    const { B, H, S, d1, d2, dv } = shape;
    if (Math.max(d1, d2, dv) > maxWidth) throw new ShapeError(`${kernel}: row width ${Math.max(d1, d2, dv)} exceeds the wasm kernel's ${maxWidth}`);
    const placement = new Placement();
    views.forEach((x, o) => {
      if (x !== null && widths[o]! > 0) placement.need(x.data, extent(x, B, H, rows[o]!, widths[o]!), dirs[o]!);
    });
    placement.need(stats, 2 * B * H * S, statsDir);
    arena.begin();
    placement.place(arena);
    // the chunks' partial results: scratch in wasm memory (declared as an output of a reused array)
    let partialPtr = 0;
    if (split !== null) {
      if (partial.length < split.floats) partial = new Float32Array(split.floats);
      partialPtr = arena.output(partial, split.floats);
    }
    const desc = new Int32Array(F_OPS + 4 * OPERANDS);
    desc.set([B, H, S, shape.T, d1, d2, dv, shape.offset]);
    f32[0] = shape.tau;
    desc[F_TAU] = i32[0]!;
    desc[F_STATS] = placement.ptr(stats);
    desc[F_GROUPED] = grouped ? 1 : 0;
    desc[F_CHUNK] = split?.chunk ?? 0;
    desc[F_PARTIAL] = partialPtr;
    desc[F_ROW_SPLIT] = rowSplit;
    views.forEach((x, o) => {
      if (x === null || widths[o] === 0) return;
      desc.set([placement.ptr(x.data) + 4 * x.off, x.sb, x.sh, x.ss], F_OPS + 4 * o);
    });
    return arena.input(desc, desc.length);
  }

  return {
    attentionForward<T extends FloatArray>(shape: AttentionShape, x: AttentionInputs<T>, o: AttnOperand<T>, stats: T): void {
      const K = 'attentionForward';
      const plan = checkAttention(K, shape, x, o, stats);
      const { S, T, d1, d2, dv } = shape;
      const rowsPerUnit = plan.grouped ? shape.H * S : S;
      const chunks = rowsPerUnit <= SPLIT_MAX_ROWS && T >= 2 * SPLIT_CHUNK ? Math.ceil(T / SPLIT_CHUNK) : 0;
      const split = chunks > 0 ? { chunk: SPLIT_CHUNK, floats: plan.units * chunks * rowsPerUnit * (dv + 2) } : null;
      const rowItems = chunks === 0 && rowsPerUnit > ROW_SPLIT ? Math.ceil(rowsPerUnit / ROW_SPLIT) : 1;
      const pdesc = describe(K, shape, plan.grouped, [x.q1, x.q2, x.k1, x.k2, x.v, o], [S, S, T, T, T, S], [d1, d2, d1, d2, dv, dv], ['in', 'in', 'in', 'in', 'in', 'out'], stats, 'out', split, rowItems > 1 ? ROW_SPLIT : 0);
      arena.run(() => {
        if (chunks === 0) return runUnits(K, pdesc, plan.units * rowItems);
        runUnits(K, pdesc, plan.units * chunks);
        runUnits('attentionCombine', pdesc, plan.units);
      });
    },

    attentionBackward<T extends FloatArray>(shape: AttentionShape, x: AttentionInputs<T>, o: AttnOperand<T>, stats: T, dO: AttnOperand<T>, g: AttentionGrads<T>): void {
      const K = 'attentionBackward';
      const plan = checkAttention(K, shape, x, o, stats, dO, g);
      const { S, T, d1, d2, dv } = shape;
      const views = [x.q1, x.q2, x.k1, x.k2, x.v, o, dO, g.q1, g.q2, g.k1, g.k2, g.v];
      const rows = [S, S, T, T, T, S, S, S, S, T, T, T];
      const widths = [d1, d2, d1, d2, dv, dv, dv, d1, d2, d1, d2, dv];
      const dirs: Direction[] = ['in', 'in', 'in', 'in', 'in', 'in', 'in', 'inout', 'inout', 'inout', 'inout', 'inout'];
      const pdesc = describe(K, shape, plan.grouped, views, rows, widths, dirs, stats, 'in', null, 0);
      arena.run(() => runUnits(K, pdesc, plan.units));
    },
  };
}
