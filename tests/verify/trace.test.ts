import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import { parseSafetensors } from '../../src/io/safetensors.js';
import { compareTraces } from '../../src/verify/compare.js';
import { collectionFromSafetensors, TraceRecorder, traceOrderFromMetadata, TRACE_FORMAT } from '../../src/verify/trace.js';

describe('TraceRecorder', () => {
  it('copies data, keeps execution order, filters by glob', () => {
    const rec = new TraceRecorder({ filter: 'model.layers.1.*' });
    const buf = Float32Array.of(1, 2);
    rec.trace('model.layers.0:out', [2], buf);
    rec.trace('model.layers.1.self_attn:q_pe', [2], buf);
    buf[0] = 99; // the model reuses its buffer
    rec.trace('model.layers.10:out', [2], buf); // layer 10 does not match layer 1's glob
    rec.trace('model.layers.1.mlp.gate:indices', [1, 2], Int32Array.of(4, 0));
    rec.trace('model.layers.1:out', [2], buf);
    expect(rec.names).toEqual(['model.layers.1.self_attn:q_pe', 'model.layers.1.mlp.gate:indices', 'model.layers.1:out']);
    expect([...rec.tensors.get('model.layers.1.self_attn:q_pe')!.data]).toEqual([1, 2]);
    expect(rec.tensors.get('model.layers.1.mlp.gate:indices')!.dtype).toBe('I32');
  });

  it('duplicate names: error by default, or the chosen policy', () => {
    const t = (rec: TraceRecorder) => {
      rec.trace('a', [1], Float64Array.of(1));
      rec.trace('b', [1], Float64Array.of(0));
      rec.trace('a', [1], Float64Array.of(2));
    };
    expect(() => t(new TraceRecorder())).toThrow(InputError);
    const first = new TraceRecorder({ onDuplicate: 'keep-first' });
    t(first);
    expect(first.tensors.get('a')!.data[0]).toBe(1);
    const last = new TraceRecorder({ onDuplicate: 'keep-last' });
    t(last);
    expect(last.tensors.get('a')!.data[0]).toBe(2);
    expect(last.names).toEqual(['a', 'b']);
    const suf = new TraceRecorder({ onDuplicate: 'suffix' });
    t(suf);
    expect(suf.names).toEqual(['a', 'b', 'a#2']);
  });

  it('rejects a shape that does not fit the data', () => {
    expect(() => new TraceRecorder().trace('x', [3], Float32Array.of(1, 2))).toThrow(/needs 3 elements/);
  });

  it('round-trips through safetensors bytes with order, dtypes and values intact', () => {
    const rec = new TraceRecorder();
    // names chosen so that the file (size, then name) order differs from execution order
    rec.trace('z.first:out', [2, 2], Float64Array.of(1.25, -2, 3e-300, Infinity));
    rec.trace('a.second:indices', [3], Int32Array.of(2, 0, 1));
    rec.trace('m.third:out', [1], Float32Array.of(0.1));
    rec.recordMap(new Map([['model.norm.weight', { shape: [2], data: Float64Array.of(0.5, NaN) }]]));
    const file = parseSafetensors(rec.serialize({ model: 'tiny' }));
    expect(file.metadata.format).toBe(TRACE_FORMAT);
    expect(file.metadata.model).toBe('tiny');
    expect(traceOrderFromMetadata(file.metadata)).toEqual(['z.first:out', 'a.second:indices', 'm.third:out', 'grad.model.norm.weight']);
    expect(file.tensors.get('z.first:out')!.dtype).toBe('F64');
    expect(file.tensors.get('a.second:indices')!.dtype).toBe('I32');
    expect(file.tensors.get('m.third:out')!.dtype).toBe('F32');
    const col = collectionFromSafetensors(file);
    expect([...col.keys()]).toEqual(rec.names);
    const cmp = compareTraces(rec.tensors, col, { tolerance: { rtol: 0, atol: 0 }, cosDiffTol: 0 });
    expect(cmp.allPassed).toBe(true);
    expect(cmp.passed).toBe(4);
    expect(Math.fround(0.1)).toBe((col.get('m.third:out')!.data as Float32Array)[0]);
  });

  it('order metadata that is missing or malformed is ignored', () => {
    expect(traceOrderFromMetadata({})).toBeNull();
    expect(traceOrderFromMetadata({ order: 'not json' })).toBeNull();
    expect(traceOrderFromMetadata({ order: '[1,2]' })).toBeNull();
  });
});
