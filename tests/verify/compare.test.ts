import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compareTensor, compareTraces, parseToleranceRule, toleranceFor, type ComparableTensor } from '../../src/verify/compare.js';
import { InputError } from '../../src/errors.js';

const f64 = (shape: number[], data: number[]): ComparableTensor => ({ dtype: 'F64', shape, data: Float64Array.from(data) });
const shapeArb = fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 3 });
const finite = fc.double({ min: -1e3, max: 1e3, noNaN: true, noDefaultInfinity: true });
const tensorArb = shapeArb.chain((shape) =>
  fc.array(finite, { minLength: shape.reduce((a, b) => a * b, 1), maxLength: shape.reduce((a, b) => a * b, 1) }).map((data) => ({ shape, data })),
);

describe('compareTensor', () => {
  it('identical inputs pass with cosine 1 and zero error (property)', () => {
    fc.assert(
      fc.property(tensorArb, ({ shape, data }) => {
        const c = compareTensor('x', f64(shape, data), f64(shape, data), { rtol: 0, atol: 0, cosDiffTol: 0 });
        expect(c.status).toBe('pass');
        expect(c.maxAbsError).toBe(0);
        expect(c.passFraction).toBe(1);
        expect(c.worstIndex).toBeNull();
        // cosine is 1 up to the rounding of Σab/√(Σa²Σb²) in f64 (a few ulps)
        expect(Math.abs(c.cosine - 1)).toBeLessThan(1e-14);
      }),
      { seed: 601, numRuns: 200 },
    );
  });

  it('a single perturbed element is the worst index, as a multi-index (property)', () => {
    fc.assert(
      fc.property(tensorArb, fc.nat(), fc.double({ min: 1e-3, max: 10, noNaN: true }), ({ shape, data }, pick, delta) => {
        const flat = pick % data.length;
        const got = [...data];
        got[flat] = got[flat]! + delta;
        const c = compareTensor('x', f64(shape, got), f64(shape, data), { rtol: 0, atol: 0 });
        // expected multi-index computed independently of unravelIndex: strides
        const idx: number[] = [];
        let r = flat;
        const strides = shape.map((_, k) => shape.slice(k + 1).reduce((a, b) => a * b, 1));
        for (const s of strides) {
          idx.push(Math.floor(r / s));
          r %= s;
        }
        expect(c.worstIndex).toEqual(idx);
        expect(c.worstReference).toBe(data[flat]);
        expect(c.status).toBe('fail');
        expect(c.failCount).toBe(1);
        expect(c.maxAbsError).toBeCloseTo(Math.abs(got[flat]! - data[flat]!), 12);
      }),
      { seed: 602, numRuns: 200 },
    );
  });

  it('an element passes on abs OR rel error (property against the definition)', () => {
    fc.assert(
      fc.property(finite, finite, fc.double({ min: 0, max: 1, noNaN: true }), fc.double({ min: 0, max: 10, noNaN: true }), (a, b, rtol, atol) => {
        const c = compareTensor('x', f64([1], [a]), f64([1], [b]), { rtol, atol, cosDiffTol: Infinity });
        const err = Math.abs(a - b);
        const expected = err <= atol || err <= rtol * Math.abs(b);
        expect(c.failCount === 0).toBe(expected);
      }),
      { seed: 603, numRuns: 500 },
    );
  });

  it('abs-only and rel-only passes: large ref passes on rel, tiny ref passes on abs', () => {
    // |diff| 1e-2 ≤ rtol·|ref| = 1e-3·100 although |diff| > atol
    expect(compareTensor('x', f64([1], [100.01]), f64([1], [100]), { rtol: 1e-3, atol: 1e-5, cosDiffTol: 1 }).failCount).toBe(0);
    // |diff| 1e-6 ≤ atol although |diff|/|ref| = 1
    expect(compareTensor('x', f64([1], [2e-6]), f64([1], [1e-6]), { rtol: 1e-3, atol: 1e-5, cosDiffTol: 1 }).failCount).toBe(0);
    // neither
    expect(compareTensor('x', f64([1], [1.1]), f64([1], [1]), { rtol: 1e-3, atol: 1e-5, cosDiffTol: 1 }).failCount).toBe(1);
  });

  it('flags an inf/nan position mismatch even when every finite element agrees (property)', () => {
    fc.assert(
      fc.property(tensorArb, fc.nat(), fc.constantFrom(NaN, Infinity, -Infinity), ({ shape, data }, pick, bad) => {
        const flat = pick % data.length;
        const got = [...data];
        got[flat] = bad;
        const c = compareTensor('x', f64(shape, got), f64(shape, data), { rtol: 1, atol: 1e9, cosDiffTol: Infinity });
        expect(c.nonfiniteMatch).toBe(false);
        expect(c.nonfiniteMismatchCount).toBe(1);
        expect(c.status).toBe('fail');
        expect(c.worstReference).toBe(data[flat]);
        // the same non-finite value on both sides is a match
        const same = compareTensor('x', f64(shape, got), f64(shape, got), { rtol: 0, atol: 0 });
        expect(same.nonfiniteMatch).toBe(true);
        expect(same.status).toBe('pass');
      }),
      { seed: 604, numRuns: 200 },
    );
  });

  it('+inf vs −inf is a mismatch', () => {
    const c = compareTensor('x', f64([2], [Infinity, 1]), f64([2], [-Infinity, 1]));
    expect(c.nonfiniteMismatchCount).toBe(1);
    expect(c.firstNonfiniteMismatch).toEqual([0]);
  });

  it('integer tensors are compared exactly, I32 vs I64 agree, and any difference fails', () => {
    const got: ComparableTensor = { dtype: 'I32', shape: [2, 2], data: Int32Array.from([3, 1, 0, 2]) };
    const ref: ComparableTensor = { dtype: 'I64', shape: [2, 2], data: BigInt64Array.from([3n, 1n, 0n, 2n]) };
    const ok = compareTensor('idx', got, ref, { rtol: 1, atol: 10 });
    expect(ok.exact).toBe(true);
    expect(ok.status).toBe('pass');
    const bad = compareTensor('idx', got, { dtype: 'I64', shape: [2, 2], data: BigInt64Array.from([3n, 2n, 0n, 2n]) }, { rtol: 1, atol: 10 });
    expect(bad.status).toBe('fail');
    expect(bad.worstIndex).toEqual([0, 1]);
  });

  it('shape and integer-vs-float disagreements fail with a reason; F32 vs F64 is fine', () => {
    const s = compareTensor('x', f64([2, 3], [1, 2, 3, 4, 5, 6]), f64([3, 2], [1, 2, 3, 4, 5, 6]));
    expect(s.shapeMatch).toBe(false);
    expect(s.reasons[0]).toMatch(/shape \[2, 3\] vs reference \[3, 2\]/);
    const d = compareTensor('x', { dtype: 'I32', shape: [1], data: Int32Array.of(1) }, f64([1], [1]));
    expect(d.dtypeMatch).toBe(false);
    expect(d.status).toBe('fail');
    const w = compareTensor('x', { dtype: 'F32', shape: [1], data: Float32Array.of(0.5) }, f64([1], [0.5]));
    expect(w.status).toBe('pass');
  });

  it('a small uniform relative error can pass elementwise but fail the cosine check', () => {
    // a = b + ε·sign pattern orthogonal-ish: elementwise rel 1e-2 ≤ rtol 2e-2, cosDiff ≈ ½·1e-4 > 1e-6
    const ref = [1, -1, 1, -1];
    const got = [1.01, -0.99, 0.99, -1.01];
    const c = compareTensor('x', f64([4], got), f64([4], ref), { rtol: 2e-2, atol: 0, cosDiffTol: 1e-6 });
    expect(c.failCount).toBe(0);
    expect(c.status).toBe('fail');
    expect(c.reasons.join()).toMatch(/cosine difference/);
  });

  it('max rel error is ∞ where the reference is 0 and the value is not', () => {
    const c = compareTensor('x', f64([2], [1e-7, 1]), f64([2], [0, 1]), { atol: 1e-6 });
    expect(c.maxRelError).toBe(Infinity);
    expect(c.status).toBe('pass');
  });
});

describe('compareTraces', () => {
  const lib = new Map<string, ComparableTensor>([
    ['model.embed_tokens:out', f64([2], [1, 2])],
    ['model.layers.0.self_attn:out', f64([2], [3, 4])],
    ['model.layers.0.mlp:out', f64([2], [5, 6])],
    ['lm_head:out', f64([2], [7, 8])],
  ]);

  it('reports in execution order and names the first divergent tensor', () => {
    const ref = new Map<string, ComparableTensor>([
      ['lm_head:out', f64([2], [7, 9])],
      ['model.layers.0.mlp:out', f64([2], [5, 7])],
      ['model.embed_tokens:out', f64([2], [1, 2])],
      ['model.layers.0.self_attn:out', f64([2], [3, 4])],
    ]);
    const r = compareTraces(lib, ref);
    expect(r.results.map((x) => x.name)).toEqual([...lib.keys()]);
    expect(r.firstDivergent).toBe('model.layers.0.mlp:out');
    expect(r.failed).toBe(2);
    expect(r.passed).toBe(2);
    expect(r.allPassed).toBe(false);
  });

  it('an explicit order wins; missing names on either side are reported, not failed', () => {
    const ref = new Map<string, ComparableTensor>([
      ['model.layers.0.mlp:out', f64([2], [5, 6])],
      ['model.layers.0.self_attn:out', f64([2], [3, 4])],
      ['extra:out', f64([1], [0])],
    ]);
    const r = compareTraces(lib, ref, { order: ['model.layers.0.mlp:out'] });
    expect(r.results[0]!.name).toBe('model.layers.0.mlp:out');
    expect(r.missingInReference).toEqual(['model.embed_tokens:out', 'lm_head:out']);
    expect(r.missingInLibrary).toEqual(['extra:out']);
    expect(r.allPassed).toBe(true);
    expect(r.firstDivergent).toBeNull();
  });

  it('nothing in common is not a pass', () => {
    const r = compareTraces(lib, new Map([['other', f64([1], [1])]]));
    expect(r.allPassed).toBe(false);
    expect(r.failed).toBe(0);
  });

  it('per-pattern tolerances: first matching rule wins, else the default', () => {
    const rules = [
      { pattern: 'model.layers.*:out', rtol: 0.5, atol: 0 },
      { pattern: 'model.*', rtol: 0, atol: 0 },
    ];
    expect(toleranceFor('model.layers.0.mlp:out', rules, { rtol: 1, atol: 1 })).toEqual({ rtol: 0.5, atol: 0 });
    expect(toleranceFor('model.embed_tokens:out', rules, { rtol: 1, atol: 1 })).toEqual({ rtol: 0, atol: 0 });
    expect(toleranceFor('lm_head:out', rules, { rtol: 1, atol: 1 })).toEqual({ rtol: 1, atol: 1 });
    const ref = new Map([['model.layers.0.mlp:out', f64([2], [5.5, 6.5])]]);
    expect(compareTraces(lib, ref, { rules, cosDiffTol: 1 }).allPassed).toBe(true);
    expect(compareTraces(lib, ref, { rules: rules.slice(1), cosDiffTol: 1 }).allPassed).toBe(false);
  });

  it('maps official-code reference names to HF names', () => {
    const lib2 = new Map<string, ComparableTensor>([['grad.model.layers.0.self_attn.kv_b_proj.weight', f64([1], [1])]]);
    const ref = new Map([['grad.layers.0.attn.wkv_b.weight', f64([1], [1])]]);
    const r = compareTraces(lib2, ref, { officialNames: true });
    expect(r.allPassed).toBe(true);
    expect(r.results[0]!.referenceName).toBe('grad.layers.0.attn.wkv_b.weight');
  });

  it('HF RoPE layout: a de-interleaved reference matches only with hfRope', () => {
    // ours (interleaved pairs) [x0 x1 x2 x3 | ...] ; HF: [x0 x2 x1 x3]
    const ours = new Map([['model.layers.0.self_attn:k_pe', f64([2, 4], [0, 1, 2, 3, 10, 11, 12, 13])]]);
    const hf = new Map([['model.layers.0.self_attn:k_pe', f64([2, 4], [0, 2, 1, 3, 10, 12, 11, 13])]]);
    expect(compareTraces(ours, hf, { hfRope: true }).allPassed).toBe(true);
    expect(compareTraces(ours, hf).allPassed).toBe(false);
    // other tensors are not permuted
    const other = new Map([['model.layers.0:out', f64([4], [0, 1, 2, 3])]]);
    expect(compareTraces(other, new Map([['model.layers.0:out', f64([4], [0, 1, 2, 3])]]), { hfRope: true }).allPassed).toBe(true);
  });
});

describe('parseToleranceRule', () => {
  it('parses glob=rtol,atol and keeps = inside the glob', () => {
    expect(parseToleranceRule('model.layers.*:attn_probs=1e-3,1e-6')).toEqual({ pattern: 'model.layers.*:attn_probs', rtol: 1e-3, atol: 1e-6 });
  });
  it.each(['=1,2', 'x=1', 'x=a,1', 'x=1,', 'x=-1,0', 'nothing'])('rejects %s with an InputError', (s) => {
    expect(() => parseToleranceRule(s)).toThrow(InputError);
  });
});
