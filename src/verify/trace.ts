import { InputError } from '../errors.js';
import type { SafetensorsFile, SafetensorsTensor } from '../io/safetensors.js';
import { fromFloatArray, fromIntArray, serializeSafetensors, tensorToFloat32, tensorToFloat64 } from '../io/safetensors.js';
import type { TraceFn } from '../model/trace.js';
import type { ComparableTensor } from './compare.js';
import { globMatcher } from './glob.js';

/**
 * Recording named intermediates: a {@link TraceRecorder} is passed as the model's `trace` hook,
 * copies every tensor whose name matches its filter, keeps execution order, and writes a
 * safetensors file (F32/F64/I32) whose `__metadata__` holds the order. Names are listed in
 * docs/trace-names.md.
 */

/** `__metadata__.format` of a trace file. */
export const TRACE_FORMAT = 'dsv3-trace';

/** One recorded tensor (a copy: the model may reuse its buffers). */
export interface RecordedTensor extends ComparableTensor {
  dtype: 'F32' | 'F64' | 'I32';
  shape: number[];
  data: Float32Array | Float64Array | Int32Array;
}

/** What a recorder does when a name arrives twice. */
export type DuplicatePolicy = 'error' | 'keep-first' | 'keep-last' | 'suffix';

/** Options of {@link TraceRecorder}. */
export interface TraceRecorderOptions {
  /** Glob(s) selecting names to keep (`model.layers.3.*`); default: everything. */
  filter?: string | readonly string[];
  /**
   * Duplicate names: `error` (default; throws an InputError naming the tensor), `keep-first`,
   * `keep-last` (stays at its first position in the order), or `suffix` (`name#2`, `name#3`, …).
   */
  onDuplicate?: DuplicatePolicy;
}

function dtypeOfData(data: Float32Array | Float64Array | Int32Array): RecordedTensor['dtype'] {
  return data instanceof Float32Array ? 'F32' : data instanceof Float64Array ? 'F64' : 'I32';
}

/** Records traced tensors; pass `recorder.trace` as the `trace` option of a forward/backward call. */
export class TraceRecorder {
  /** The hook: copies `data` when `name` passes the filter. */
  readonly trace: TraceFn;
  private readonly map = new Map<string, RecordedTensor>();
  private readonly counts = new Map<string, number>();
  private readonly keep: (name: string) => boolean;
  private readonly onDuplicate: DuplicatePolicy;

  constructor(opts: TraceRecorderOptions = {}) {
    this.keep = globMatcher(opts.filter);
    this.onDuplicate = opts.onDuplicate ?? 'error';
    this.trace = (name, shape, data) => this.record(name, shape, data);
  }

  /** Records one tensor (what `trace` calls). */
  record(name: string, shape: readonly number[], data: Float32Array | Float64Array | Int32Array): void {
    if (!this.keep(name)) return;
    const n = shape.reduce((a, b) => a * b, 1);
    if (data.length !== n) throw new InputError(`trace '${name}': shape [${shape.join(', ')}] needs ${n} elements, got ${data.length}`);
    const t: RecordedTensor = { dtype: dtypeOfData(data), shape: [...shape], data: data.slice() };
    const count = (this.counts.get(name) ?? 0) + 1;
    this.counts.set(name, count);
    if (count === 1) {
      this.map.set(name, t);
      return;
    }
    switch (this.onDuplicate) {
      case 'error':
        throw new InputError(`trace name '${name}' recorded twice (use onDuplicate to keep several)`);
      case 'keep-first':
        return;
      case 'keep-last':
        this.map.set(name, t);
        return;
      case 'suffix':
        this.map.set(`${name}#${count}`, t);
        return;
    }
  }

  /**
   * Records every tensor of a weights-like map under `prefix + name` (e.g. gradients as
   * `grad.model.layers.3.self_attn.kv_b_proj.weight`), through the filter.
   */
  recordMap(tensors: ReadonlyMap<string, { shape: readonly number[]; data: Float32Array | Float64Array }>, prefix = 'grad.'): void {
    for (const [name, t] of tensors) this.record(`${prefix}${name}`, t.shape, t.data);
  }

  /** Names in execution (recording) order. */
  get names(): string[] {
    return [...this.map.keys()];
  }

  /** Number of recorded tensors. */
  get size(): number {
    return this.map.size;
  }

  /** The recorded tensors in execution order (the Map is the recorder's own; do not mutate). */
  get tensors(): ReadonlyMap<string, RecordedTensor> {
    return this.map;
  }

  /** Safetensors tensors and metadata (`format`, `order` as a JSON array of names). */
  toSafetensors(extraMetadata: Record<string, string> = {}): { tensors: Map<string, SafetensorsTensor>; metadata: Record<string, string> } {
    const tensors = new Map<string, SafetensorsTensor>();
    for (const [name, t] of this.map) {
      tensors.set(name, t.dtype === 'I32' ? fromIntArray(t.data, t.shape, 'I32') : fromFloatArray(t.data, t.shape, t.dtype));
    }
    return { tensors, metadata: { ...extraMetadata, format: TRACE_FORMAT, order: JSON.stringify(this.names) } };
  }

  /** The trace as safetensors bytes. */
  serialize(extraMetadata: Record<string, string> = {}): Uint8Array {
    const { tensors, metadata } = this.toSafetensors(extraMetadata);
    return serializeSafetensors(tensors, metadata);
  }
}

/** The execution order stored in a trace file's `__metadata__.order`, or null when absent/invalid. */
export function traceOrderFromMetadata(metadata: Readonly<Record<string, string>>): string[] | null {
  const raw = metadata.order;
  if (raw === undefined) return null;
  try {
    const v: unknown = JSON.parse(raw);
    return Array.isArray(v) && v.every((x) => typeof x === 'string') ? (v as string[]) : null;
  } catch {
    return null;
  }
}

const INT_DTYPES = new Set(['I64', 'I32', 'I16', 'I8', 'U8', 'BOOL']);

/**
 * A parsed safetensors file as a comparable collection: F64 stays f64, every other float dtype
 * is decoded to f32 (BF16/F16/F8 values exactly), integers to f64 numbers (exact below 2^53).
 * Iteration order is the file's `__metadata__.order` when present, then the remaining tensors
 * in file order.
 */
export function collectionFromSafetensors(file: SafetensorsFile): Map<string, ComparableTensor> {
  const out = new Map<string, ComparableTensor>();
  const names = [...(traceOrderFromMetadata(file.metadata) ?? []).filter((n) => file.tensors.has(n)), ...file.tensors.keys()];
  for (const name of names) {
    if (out.has(name)) continue;
    const t = file.tensors.get(name)!;
    const data = t.dtype === 'F64' || INT_DTYPES.has(t.dtype) ? tensorToFloat64(t, name) : tensorToFloat32(t, name);
    out.set(name, { dtype: t.dtype, shape: [...t.shape], data });
  }
  return out;
}
