/**
 * safetensors read/write on bytes (browser-safe; file access is in safetensors_node.ts).
 *
 * Layout (SPEC §6.1): 8-byte little-endian u64 header length N, N bytes of UTF-8 JSON
 * `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__"?: {str: str}}` padded with
 * spaces, then the data buffer; offsets are relative to byte 8 + N and the tensors must tile the
 * buffer exactly. Tensors are dense, row-major, little-endian.
 */
import { FormatError, ShapeError, UnsupportedError } from '../errors.js';
import { preview } from '../preview.js';
import type { DType, FloatArray } from '../tensor.js';
import { Tensor, allocate, numel } from '../tensor.js';
import { bf16FromNumber, bf16ToNumber, E4M3_TABLE, f16FromNumber, f16ToNumber, e4m3FromNumber } from './numeric.js';

/** The safetensors dtypes this library reads and writes. */
export type SafetensorsDType = 'F64' | 'F32' | 'F16' | 'BF16' | 'F8_E4M3' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

/** Bytes per element of each supported dtype. */
export const SAFETENSORS_DTYPE_SIZE: Readonly<Record<SafetensorsDType, number>> = Object.freeze({
  F64: 8,
  I64: 8,
  F32: 4,
  I32: 4,
  F16: 2,
  BF16: 2,
  I16: 2,
  F8_E4M3: 1,
  I8: 1,
  U8: 1,
  BOOL: 1,
});

/** One tensor as stored: its dtype, shape and raw little-endian bytes. */
export interface SafetensorsTensor {
  dtype: SafetensorsDType;
  shape: number[];
  /** Raw bytes (for a parsed file: a view into the file's bytes, not a copy). */
  bytes: Uint8Array;
}

/** A parsed safetensors file. */
export interface SafetensorsFile {
  /** Tensors in header order (for files from the official writer: descending element size, then name). */
  tensors: Map<string, SafetensorsTensor>;
  /** `__metadata__` (empty when absent). */
  metadata: Record<string, string>;
}

/** Header length limit of the reference implementation (SPEC §6.1). */
export const SAFETENSORS_MAX_HEADER = 100_000_000;

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function isDType(s: unknown): s is SafetensorsDType {
  return typeof s === 'string' && Object.prototype.hasOwnProperty.call(SAFETENSORS_DTYPE_SIZE, s);
}

/**
 * The top-level keys of a JSON object text in order, duplicates included (JSON.parse keeps only
 * the last of duplicated keys, so duplicates must be found on the text). Assumes `text` parsed.
 */
function topLevelKeys(text: string): string[] {
  const keys: string[] = [];
  let depth = 0;
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (ch === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      if (depth === 1 && expectKey) {
        keys.push(JSON.parse(text.slice(i, j + 1)) as string);
        expectKey = false;
      }
      i = j;
    } else if (ch === '{' || ch === '[') {
      depth++;
      if (depth === 1) expectKey = true;
    } else if (ch === '}' || ch === ']') {
      depth--;
    } else if (ch === ',' && depth === 1) {
      expectKey = true;
    }
  }
  return keys;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isNonNegInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/**
 * Parses and strictly validates a safetensors file. Throws FormatError naming `fileName` (and the
 * tensor when one is at fault) for: a header length beyond the file or above 100 MB, bad UTF-8 or
 * JSON, a non-object header, duplicate names, unknown dtypes, bad shapes or offsets, a byte length
 * ≠ numel · element size, and offsets that overlap, leave holes or do not cover the data buffer.
 */
export function parseSafetensors(bytes: Uint8Array, fileName = '<memory>'): SafetensorsFile {
  const fail = (msg: string, tensor?: string): never => {
    throw new FormatError(fileName, msg, tensor);
  };
  if (bytes.length < 8) fail(`file is ${bytes.length} bytes, shorter than the 8-byte header length`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Number(dv.getBigUint64(0, true));
  if (n > SAFETENSORS_MAX_HEADER) fail(`header length ${n} exceeds the limit of ${SAFETENSORS_MAX_HEADER} bytes`);
  if (8 + n > bytes.length) fail(`header length ${n} goes beyond the end of the file (${bytes.length} bytes)`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n));
  } catch {
    return fail('header is not valid UTF-8');
  }
  if (!text.startsWith('{')) fail(`header does not start with '{'`);
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    return fail(`header is not valid JSON (${(e as Error).message})`);
  }
  if (!isPlainObject(header)) return fail('header is not a JSON object');
  const keys = topLevelKeys(text);
  const seen = new Set<string>();
  for (const k of keys) {
    if (seen.has(k)) fail('duplicate name in header', k);
    seen.add(k);
  }

  const metadata: Record<string, string> = {};
  const raw = header.__metadata__;
  if (raw !== undefined) {
    if (!isPlainObject(raw)) fail(`__metadata__ is not an object of strings`);
    for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
      if (typeof v !== 'string') fail(`__metadata__ value of '${k}' is not a string`);
      metadata[k] = v as string;
    }
  }

  const dataStart = 8 + n;
  const dataLength = bytes.length - dataStart;
  const entries: { name: string; dtype: SafetensorsDType; shape: number[]; begin: number; end: number }[] = [];
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    if (!isPlainObject(info)) fail('header entry is not an object', name);
    const { dtype, shape, data_offsets: offsets } = info as Record<string, unknown>;
    if (!isDType(dtype)) fail(`unknown or unsupported dtype ${preview(dtype)}`, name);
    if (!Array.isArray(shape) || !shape.every(isNonNegInt)) fail(`shape ${preview(shape)} is not an array of non-negative integers`, name);
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isNonNegInt)) {
      fail(`data_offsets ${preview(offsets)} is not [begin, end] of non-negative integers`, name);
    }
    const [begin, end] = offsets as [number, number];
    if (begin > end) fail(`data_offsets [${begin}, ${end}] has begin > end`, name);
    if (end > dataLength) fail(`data_offsets [${begin}, ${end}] out of range: the data buffer has ${dataLength} bytes`, name);
    const sh = shape as number[];
    const expected = sh.reduce((a, d) => a * d, 1) * SAFETENSORS_DTYPE_SIZE[dtype as SafetensorsDType];
    if (end - begin !== expected) {
      fail(`byte length ${end - begin} ≠ numel(${JSON.stringify(sh)}) · ${SAFETENSORS_DTYPE_SIZE[dtype as SafetensorsDType]} = ${expected}`, name);
    }
    entries.push({ name, dtype: dtype as SafetensorsDType, shape: sh, begin, end });
  }

  // The tensors, sorted by offset, must tile [0, dataLength) exactly.
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let pos = 0;
  for (const e of entries) {
    if (e.begin < pos) fail(`data_offsets [${e.begin}, ${e.end}] overlap the previous tensor (ends at ${pos})`, e.name);
    if (e.begin > pos) fail(`hole in the data buffer: bytes [${pos}, ${e.begin}) belong to no tensor`, e.name);
    pos = e.end;
  }
  if (pos !== dataLength) fail(`tensors cover ${pos} bytes but the data buffer has ${dataLength} (trailing bytes)`);

  // Map order = header order (the writer's order; JS objects would put integer-like names first).
  const byName = new Map(entries.map((e) => [e.name, e]));
  const tensors = new Map<string, SafetensorsTensor>();
  for (const k of keys) {
    const e = byName.get(k);
    if (e !== undefined) tensors.set(k, { dtype: e.dtype, shape: e.shape, bytes: bytes.subarray(dataStart + e.begin, dataStart + e.end) });
  }
  return { tensors, metadata };
}

/**
 * Serialises tensors like the official writer: compact JSON header with `__metadata__` first,
 * tensors ordered by descending element size then by name, header padded with spaces to a
 * multiple of 8 (so every tensor is aligned to its element size).
 */
export function serializeSafetensors(
  tensors: Map<string, SafetensorsTensor> | Record<string, SafetensorsTensor>,
  metadata?: Record<string, string>,
): Uint8Array {
  const list = [...(tensors instanceof Map ? tensors.entries() : Object.entries(tensors))];
  for (const [name, t] of list) {
    if (name === '__metadata__') throw new FormatError('<output>', `'__metadata__' is reserved`, name);
    if (!isDType(t.dtype)) throw new FormatError('<output>', `unsupported dtype ${JSON.stringify(t.dtype)}`, name);
    const expected = numel(t.shape) * SAFETENSORS_DTYPE_SIZE[t.dtype];
    if (t.bytes.length !== expected) {
      throw new FormatError('<output>', `has ${t.bytes.length} bytes, shape [${t.shape.join(', ')}] ${t.dtype} needs ${expected}`, name);
    }
  }
  // Names compare as UTF-8 bytes (Rust string order), which differs from UTF-16 order beyond the BMP.
  const utf8 = new Map(list.map(([name]) => [name, new TextEncoder().encode(name)]));
  const byBytes = (x: Uint8Array, y: Uint8Array): number => {
    for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
    return x.length - y.length;
  };
  list.sort(([na, a], [nb, b]) => SAFETENSORS_DTYPE_SIZE[b.dtype] - SAFETENSORS_DTYPE_SIZE[a.dtype] || byBytes(utf8.get(na)!, utf8.get(nb)!));
  // Built by hand: a JS object would move integer-like names ahead of `__metadata__`.
  const parts: string[] = metadata !== undefined ? [`"__metadata__":${JSON.stringify(metadata)}`] : [];
  let offset = 0;
  for (const [name, t] of list) {
    const info = { dtype: t.dtype, shape: [...t.shape], data_offsets: [offset, offset + t.bytes.length] };
    parts.push(`${JSON.stringify(name)}:${JSON.stringify(info)}`);
    offset += t.bytes.length;
  }
  const json = new TextEncoder().encode(`{${parts.join(',')}}`);
  const pad = (8 - (json.length % 8)) % 8;
  const out = new Uint8Array(8 + json.length + pad + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length + pad), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + json.length + pad);
  let pos = 8 + json.length + pad;
  for (const [, t] of list) {
    out.set(t.bytes, pos);
    pos += t.bytes.length;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Decoding to numbers.

function requireLittleEndianHost(): void {
  if (!LITTLE_ENDIAN) throw new UnsupportedError('safetensors typed-array decoding needs a little-endian host');
}

/** The bytes as a typed array: a view when aligned (the official writer aligns), else an aligned copy (SPEC §6.1). */
function view<T>(bytes: Uint8Array, elementSize: number, make: (buf: ArrayBufferLike, byteOffset: number, length: number) => T): T {
  requireLittleEndianHost();
  const n = bytes.length / elementSize;
  if (bytes.byteOffset % elementSize === 0) return make(bytes.buffer, bytes.byteOffset, n);
  return make(bytes.slice().buffer, 0, n);
}

/** Decodes any supported dtype into `out` (length numel); integers and booleans become numbers. */
function decodeInto(t: SafetensorsTensor, out: { length: number; [i: number]: number }, name: string): void {
  const n = numel(t.shape);
  if (out.length !== n || t.bytes.length !== n * SAFETENSORS_DTYPE_SIZE[t.dtype]) {
    throw new FormatError('<tensor>', `byte length ${t.bytes.length} does not match shape [${t.shape.join(', ')}] ${t.dtype}`, name);
  }
  const b = t.bytes;
  switch (t.dtype) {
    case 'F64': {
      const v = view(b, 8, (buf, o, len) => new Float64Array(buf, o, len));
      for (let i = 0; i < n; i++) out[i] = v[i]!;
      return;
    }
    case 'F32': {
      const v = view(b, 4, (buf, o, len) => new Float32Array(buf, o, len));
      for (let i = 0; i < n; i++) out[i] = v[i]!;
      return;
    }
    case 'BF16':
    case 'F16': {
      const v = view(b, 2, (buf, o, len) => new Uint16Array(buf, o, len));
      const dec = t.dtype === 'BF16' ? bf16ToNumber : f16ToNumber;
      for (let i = 0; i < n; i++) out[i] = dec(v[i]!);
      return;
    }
    case 'F8_E4M3':
      for (let i = 0; i < n; i++) out[i] = E4M3_TABLE[b[i]!]!;
      return;
    case 'I64': {
      const v = view(b, 8, (buf, o, len) => new BigInt64Array(buf, o, len));
      for (let i = 0; i < n; i++) out[i] = Number(v[i]!);
      return;
    }
    case 'I32': {
      const v = view(b, 4, (buf, o, len) => new Int32Array(buf, o, len));
      for (let i = 0; i < n; i++) out[i] = v[i]!;
      return;
    }
    case 'I16': {
      const v = view(b, 2, (buf, o, len) => new Int16Array(buf, o, len));
      for (let i = 0; i < n; i++) out[i] = v[i]!;
      return;
    }
    case 'I8': {
      const v = new Int8Array(b.buffer, b.byteOffset, n);
      for (let i = 0; i < n; i++) out[i] = v[i]!;
      return;
    }
    case 'U8':
    case 'BOOL':
      for (let i = 0; i < n; i++) out[i] = b[i]!;
      return;
  }
}

/** All elements as f64 (exact for every dtype except I64 beyond ±2^53). */
export function tensorToFloat64(t: SafetensorsTensor, name = '<tensor>'): Float64Array {
  const out = new Float64Array(numel(t.shape));
  decodeInto(t, out, name);
  return out;
}

/** All elements as f32 (exact for F32/BF16/F16/F8_E4M3; F64 and large integers are rounded). */
export function tensorToFloat32(t: SafetensorsTensor, name = '<tensor>'): Float32Array {
  const out = new Float32Array(numel(t.shape));
  decodeInto(t, out, name);
  return out;
}

/** Integer tensor (I64/I32/I16/I8/U8/BOOL) as int32; I64 values outside int32 throw FormatError. */
export function tensorToInt32(t: SafetensorsTensor, name = '<tensor>'): Int32Array {
  if (!['I64', 'I32', 'I16', 'I8', 'U8', 'BOOL'].includes(t.dtype)) {
    throw new FormatError('<tensor>', `expected an integer dtype, got ${t.dtype}`, name);
  }
  const f = tensorToFloat64(t, name);
  const out = new Int32Array(f.length);
  for (let i = 0; i < f.length; i++) {
    if (f[i]! < -2147483648 || f[i]! > 2147483647) throw new FormatError('<tensor>', `value ${f[i]} at flat index ${i} does not fit int32`, name);
    out[i] = f[i]!;
  }
  return out;
}

/** A float tensor of the library's precision from any float (or integer) safetensors tensor. */
export function toFloatTensor(t: SafetensorsTensor, dtype: DType, name = '<tensor>'): Tensor {
  const data: FloatArray = allocate(dtype, numel(t.shape));
  decodeInto(t, data, name);
  return new Tensor(t.shape, data);
}

// ---------------------------------------------------------------------------------------------
// Encoding from numbers.

/** Float dtypes the encoder writes. F8_E4M3 saturates at ±448 (use quantizeBlockFp8 for scaled weights). */
export type SafetensorsFloatDType = 'F64' | 'F32' | 'BF16' | 'F16' | 'F8_E4M3';

/** Encodes numbers as a float safetensors tensor (RNE for the narrow formats). */
export function fromFloatArray(data: ArrayLike<number>, shape: readonly number[], dtype: SafetensorsFloatDType): SafetensorsTensor {
  const n = numel(shape);
  if (data.length !== n) throw new ShapeError(`fromFloatArray: shape [${shape.join(', ')}] needs ${n} elements, got ${data.length}`);
  requireLittleEndianHost();
  let bytes: Uint8Array;
  switch (dtype) {
    case 'F64':
      bytes = new Uint8Array(Float64Array.from(data).buffer);
      break;
    case 'F32':
      bytes = new Uint8Array(Float32Array.from(data).buffer);
      break;
    case 'BF16':
    case 'F16': {
      const enc = dtype === 'BF16' ? bf16FromNumber : f16FromNumber;
      const v = new Uint16Array(n);
      for (let i = 0; i < n; i++) v[i] = enc(data[i]!);
      bytes = new Uint8Array(v.buffer);
      break;
    }
    case 'F8_E4M3':
      bytes = new Uint8Array(n);
      for (let i = 0; i < n; i++) bytes[i] = e4m3FromNumber(data[i]!);
      break;
  }
  return { dtype, shape: [...shape], bytes };
}

/** Integer dtypes the encoder writes. */
export type SafetensorsIntDType = 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

const INT_RANGE: Record<SafetensorsIntDType, [number, number]> = {
  I64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  I32: [-2147483648, 2147483647],
  I16: [-32768, 32767],
  I8: [-128, 127],
  U8: [0, 255],
  BOOL: [0, 1],
};

/** Encodes integers (checked: each must be an integer in the dtype's range) as an integer tensor. */
export function fromIntArray(data: ArrayLike<number>, shape: readonly number[], dtype: SafetensorsIntDType): SafetensorsTensor {
  const n = numel(shape);
  if (data.length !== n) throw new ShapeError(`fromIntArray: shape [${shape.join(', ')}] needs ${n} elements, got ${data.length}`);
  const [lo, hi] = INT_RANGE[dtype];
  for (let i = 0; i < n; i++) {
    const v = data[i]!;
    if (!Number.isInteger(v) || v < lo || v > hi) throw new ShapeError(`fromIntArray: value ${v} at flat index ${i} is not a valid ${dtype}`);
  }
  requireLittleEndianHost();
  let bytes: Uint8Array;
  switch (dtype) {
    case 'I64': {
      const v = new BigInt64Array(n);
      for (let i = 0; i < n; i++) v[i] = BigInt(data[i]!);
      bytes = new Uint8Array(v.buffer);
      break;
    }
    case 'I32':
      bytes = new Uint8Array(Int32Array.from(data).buffer);
      break;
    case 'I16':
      bytes = new Uint8Array(Int16Array.from(data).buffer);
      break;
    case 'I8':
      bytes = new Uint8Array(Int8Array.from(data).buffer);
      break;
    case 'U8':
    case 'BOOL':
      bytes = Uint8Array.from(data);
      break;
  }
  return { dtype, shape: [...shape], bytes };
}

/** Alias of fromIntArray for int32 data (I32 unless another integer dtype is asked for). */
export function fromInt32Array(data: ArrayLike<number>, shape: readonly number[], dtype: SafetensorsIntDType = 'I32'): SafetensorsTensor {
  return fromIntArray(data, shape, dtype);
}
