import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SafetensorsDType, SafetensorsTensor } from '../../src/io/safetensors.js';
import {
  fromFloatArray, fromIntArray, parseSafetensors, serializeSafetensors, tensorToFloat32, tensorToFloat64, tensorToInt32, toFloatTensor,
} from '../../src/io/safetensors.js';
import { readSafetensorsFile, readShardedSafetensors, writeSafetensorsFile } from '../../src/io/safetensors_node.js';
import { FormatError, ShapeError } from '../../src/errors.js';

/** A file from a header object and a data buffer, header padded with spaces to 8 bytes (or not). */
function craft(header: unknown, data: Uint8Array | number = 0, headerText?: string): Uint8Array {
  const json = new TextEncoder().encode(headerText ?? JSON.stringify(header));
  const buf = typeof data === 'number' ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + json.length + buf.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(buf, 8 + json.length);
  return out;
}

function expectFormatError(bytes: Uint8Array, pattern: RegExp, tensor?: string): void {
  let err: unknown;
  try {
    parseSafetensors(bytes, 'bad.safetensors');
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(FormatError);
  const fe = err as FormatError;
  expect(fe.file).toBe('bad.safetensors');
  expect(fe.message).toMatch(/^bad\.safetensors/);
  expect(fe.message).toMatch(pattern);
  expect(fe.tensor).toBe(tensor);
  if (tensor !== undefined) expect(fe.message).toContain(`tensor '${tensor}'`);
}

const t = (dtype: string, shape: number[], begin: number, end: number): unknown => ({ dtype, shape, data_offsets: [begin, end] });

describe('parseSafetensors rejects malformed files, naming file and tensor', () => {
  it('too short / header length beyond the file / above the 100 MB limit', () => {
    expectFormatError(new Uint8Array(5), /shorter than the 8-byte header length/);
    const b = craft({ a: t('F32', [1], 0, 4) }, 4);
    new DataView(b.buffer).setBigUint64(0, BigInt(b.length), true);
    expectFormatError(b, /goes beyond the end of the file/);
    new DataView(b.buffer).setBigUint64(0, 100_000_001n, true);
    expectFormatError(b, /exceeds the limit/);
  });

  it('bad UTF-8, bad JSON, header not an object', () => {
    const b = craft(null, 0, '{"a":1}');
    b[10] = 0xff;
    expectFormatError(b, /not valid UTF-8/);
    expectFormatError(craft(null, 0, '{"a": {"dtype": "F32",'), /not valid JSON/);
    expectFormatError(craft(null, 0, '[1, 2]'), /does not start with '\{'/);
  });

  it('duplicate names', () => {
    const text = `{"w":${JSON.stringify(t('U8', [1], 0, 1))},"w":${JSON.stringify(t('U8', [1], 1, 2))}}`;
    expectFormatError(craft(null, 2, text), /duplicate name/, 'w');
    // a key repeated inside a nested object is not a duplicate tensor name
    const ok = `{"__metadata__":{"x":"1"},"v":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}`;
    expect(parseSafetensors(craft(null, 2, ok)).tensors.size).toBe(1);
  });

  it('unknown dtype, bad shape, bad offsets', () => {
    expectFormatError(craft({ w: t('C64', [1], 0, 8) }, 8), /unknown or unsupported dtype "C64"/, 'w');
    expectFormatError(craft({ w: t('F32', [-1], 0, 4) }, 4), /shape \[-1\] is not an array of non-negative integers/, 'w');
    expectFormatError(craft({ w: t('F32', [1.5], 0, 4) }, 4), /shape/, 'w');
    expectFormatError(craft({ w: { dtype: 'F32', shape: [1], data_offsets: [0] } }, 4), /data_offsets \[0\] is not \[begin, end\]/, 'w');
    expectFormatError(craft({ w: t('F32', [1], 4, 0) }, 4), /begin > end/, 'w');
    expectFormatError(craft({ w: 5 }, 0), /header entry is not an object/, 'w');
  });

  it('offsets out of range, byte length ≠ numel · size, overlap, hole, trailing bytes', () => {
    expectFormatError(craft({ w: t('F32', [2], 0, 8) }, 4), /out of range: the data buffer has 4 bytes/, 'w');
    expectFormatError(craft({ w: t('F32', [2], 0, 4) }, 4), /byte length 4 ≠ numel\(\[2\]\) · 4 = 8/, 'w');
    expectFormatError(craft({ a: t('F32', [2], 0, 8), b: t('F32', [1], 4, 8) }, 8), /overlap/, 'b');
    expectFormatError(craft({ a: t('F32', [1], 0, 4), b: t('F32', [1], 8, 12) }, 12), /hole in the data buffer: bytes \[4, 8\)/, 'b');
    expectFormatError(craft({ a: t('F32', [1], 4, 8) }, 8), /hole/, 'a');
    expectFormatError(craft({ a: t('F32', [1], 0, 4) }, 6), /cover 4 bytes but the data buffer has 6/);
  });

  it('__metadata__ must map strings to strings', () => {
    expectFormatError(craft({ __metadata__: { n: 1 } }), /__metadata__ value of 'n' is not a string/);
    expectFormatError(craft({ __metadata__: ['x'] }), /__metadata__ is not an object/);
  });

  it('accepts an empty file, empty tensors, scalars, unpadded headers and trailing whitespace', () => {
    expect(parseSafetensors(craft({})).tensors.size).toBe(0);
    const f = parseSafetensors(craft(null, 4, '{"e":{"dtype":"F32","shape":[0,3],"data_offsets":[0,0]},"s":{"dtype":"F32","shape":[],"data_offsets":[0,4]}}   \n'));
    expect(f.tensors.get('e')!.shape).toEqual([0, 3]);
    expect(tensorToFloat64(f.tensors.get('e')!).length).toBe(0);
    expect(f.tensors.get('s')!.shape).toEqual([]);
    expect(f.metadata).toEqual({});
  });
});

const ALL: SafetensorsDType[] = ['F64', 'F32', 'F16', 'BF16', 'F8_E4M3', 'I64', 'I32', 'I16', 'I8', 'U8', 'BOOL'];

describe('serialize / parse round trip', () => {
  it('property: every dtype round-trips bit for bit, in any mix, with metadata; header padded with spaces to 8', () => {
    const tensorArb = fc.record({
      dtype: fc.constantFrom(...ALL),
      shape: fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 3 }),
      seed: fc.integer(),
    });
    fc.assert(
      fc.property(fc.dictionary(fc.string({ minLength: 1, maxLength: 6, unit: 'binary' }).filter((s) => s !== '__metadata__'), tensorArb, { maxKeys: 6 }), fc.dictionary(fc.string(), fc.string(), { maxKeys: 3 }), (spec, metadata) => {
        const tensors = new Map<string, SafetensorsTensor>();
        for (const [name, { dtype, shape, seed }] of Object.entries(spec)) {
          const size = { F64: 8, I64: 8, F32: 4, I32: 4, F16: 2, BF16: 2, I16: 2 }[dtype as string] ?? 1;
          const bytes = Uint8Array.from({ length: shape.reduce((a, b) => a * b, 1) * size }, (_, i) => (seed * 31 + i * 17) & (dtype === 'BOOL' ? 1 : 255));
          tensors.set(name, { dtype, shape, bytes });
        }
        const file = serializeSafetensors(tensors, metadata);
        const n = Number(new DataView(file.buffer).getBigUint64(0, true));
        expect(n % 8).toBe(0);
        const parsed = parseSafetensors(file);
        expect(parsed.metadata).toEqual(metadata);
        expect(new Set(parsed.tensors.keys())).toEqual(new Set(tensors.keys()));
        for (const [name, x] of tensors) {
          const y = parsed.tensors.get(name)!;
          expect(y.dtype).toBe(x.dtype);
          expect(y.shape).toEqual(x.shape);
          expect(Buffer.from(y.bytes).equals(Buffer.from(x.bytes))).toBe(true);
        }
        // official order: descending element size, then name; each tensor aligned to its element size
        const order = [...parsed.tensors.entries()];
        const sz = (d: SafetensorsDType): number => ({ F64: 8, I64: 8, F32: 4, I32: 4, F16: 2, BF16: 2, I16: 2 }[d as string] ?? 1);
        for (let i = 1; i < order.length; i++) {
          const [na, a] = order[i - 1]!;
          const [nb, b] = order[i]!;
          expect(sz(a.dtype) > sz(b.dtype) || (sz(a.dtype) === sz(b.dtype) && Buffer.compare(Buffer.from(na), Buffer.from(nb)) < 0)).toBe(true);
        }
        for (const [, y] of order) expect(y.bytes.byteOffset % sz(y.dtype)).toBe(0);
        return true;
      }),
      { seed: 2024, numRuns: 300 },
    );
  });

  it('value encoders and decoders for every dtype', () => {
    const xs = [0, -0, 1, -2.5, 0.1, 448, 65504, 1e-8];
    expect(Array.from(tensorToFloat64(fromFloatArray(xs, [8], 'F64')))).toEqual(xs);
    expect(Array.from(tensorToFloat64(fromFloatArray(xs, [8], 'F32')))).toEqual(xs.map(Math.fround));
    expect(Array.from(tensorToFloat64(fromFloatArray([1, -2.5, 3.140625], [3], 'BF16')))).toEqual([1, -2.5, 3.140625]);
    expect(Array.from(tensorToFloat32(fromFloatArray([1, -2.5, 65504], [3], 'F16')))).toEqual([1, -2.5, 65504]);
    expect(Array.from(tensorToFloat64(fromFloatArray([1, -3.3, 1000], [3], 'F8_E4M3')))).toEqual([1, -3.25, 448]);
    const ints = [0, -1, 127, -128];
    for (const d of ['I64', 'I32', 'I16', 'I8'] as const) expect(Array.from(tensorToInt32(fromIntArray(ints, [2, 2], d)))).toEqual(ints);
    expect(Array.from(tensorToInt32(fromIntArray([0, 255], [2], 'U8')))).toEqual([0, 255]);
    expect(Array.from(tensorToInt32(fromIntArray([0, 1], [2], 'BOOL')))).toEqual([0, 1]);
    expect(() => fromIntArray([256], [1], 'U8')).toThrow(ShapeError);
    expect(() => fromIntArray([2], [1], 'BOOL')).toThrow(ShapeError);
    expect(() => fromIntArray([0.5], [1], 'I32')).toThrow(ShapeError);
    expect(() => fromFloatArray([1, 2], [3], 'F32')).toThrow(ShapeError);
    expect(() => tensorToInt32(fromIntArray([2 ** 31], [1], 'I64'), 'ids')).toThrow(/tensor 'ids'.*does not fit int32/);
    expect(() => tensorToInt32(fromFloatArray([1], [1], 'F32'), 'ids')).toThrow(/tensor 'ids'.*expected an integer dtype/);
    const ft = toFloatTensor(fromFloatArray([1, 2, 3, 4, 5, 6], [2, 3], 'BF16'), 'float64');
    expect(ft.shape).toEqual([2, 3]);
    expect(ft.dtype).toBe('float64');
  });

  it('decodes tensors at unaligned offsets (copies instead of viewing)', () => {
    const file = serializeSafetensors({ w: fromFloatArray([1.5, -2, 3], [3], 'F64') });
    const shifted = new Uint8Array(file.length + 3);
    shifted.set(file, 3);
    const parsed = parseSafetensors(shifted.subarray(3));
    expect(parsed.tensors.get('w')!.bytes.byteOffset % 8).not.toBe(0);
    expect(Array.from(tensorToFloat64(parsed.tensors.get('w')!))).toEqual([1.5, -2, 3]);
  });

  it('serialize rejects inconsistent tensors', () => {
    expect(() => serializeSafetensors({ w: { dtype: 'F32', shape: [2], bytes: new Uint8Array(4) } })).toThrow(/tensor 'w'.*has 4 bytes/);
    expect(() => serializeSafetensors({ w: { dtype: 'X' as SafetensorsDType, shape: [1], bytes: new Uint8Array(4) } })).toThrow(/unsupported dtype/);
  });
});

describe('Node adapter', () => {
  it('write/read a file; sharded index: missing tensor and duplicates are named', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dsv3-st-'));
    try {
      writeSafetensorsFile(join(dir, 'a.safetensors'), { x: fromFloatArray([1, 2], [2], 'F32') }, { format: 'pt' });
      writeSafetensorsFile(join(dir, 'b.safetensors'), { y: fromFloatArray([3], [1], 'F32') });
      const a = readSafetensorsFile(join(dir, 'a.safetensors'));
      expect(a.metadata).toEqual({ format: 'pt' });
      const index = (wm: Record<string, string>): void => writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: wm }));
      index({ x: 'a.safetensors', y: 'b.safetensors' });
      const all = readShardedSafetensors(dir);
      expect([...all.tensors.keys()].sort()).toEqual(['x', 'y']);
      index({ x: 'a.safetensors', y: 'b.safetensors', z: 'b.safetensors' });
      expect(() => readShardedSafetensors(dir)).toThrow(/b\.safetensors \(tensor 'z'\): tensor listed in model\.safetensors\.index\.json is missing/);
      index({ x: 'a.safetensors', w: 'b.safetensors' }); // b holds y, which the index does not list for it
      expect(() => readShardedSafetensors(dir)).toThrow(/b\.safetensors \(tensor 'y'\): tensor not listed for this shard/);
      writeFileSync(join(dir, 'model.safetensors.index.json'), '{');
      expect(() => readShardedSafetensors(dir)).toThrow(FormatError);
      writeFileSync(join(dir, 'bad.safetensors'), new Uint8Array(3));
      expect(() => readSafetensorsFile(join(dir, 'bad.safetensors'))).toThrow(/bad\.safetensors: file is 3 bytes/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
