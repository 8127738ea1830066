import { describe, expect, it } from 'vitest';
import { TokenStream, bytesToTokens } from '../../src/train/data.js';

describe('TokenStream', () => {
  const tokens = Int32Array.from({ length: 23 }, (_, i) => i);

  it('sequential: windows of T+1 with stride T, wrapping to 0 (epoch + 1)', () => {
    const s = new TokenStream(tokens, { batchSize: 2, seqLen: 4 });
    expect([...s.next().ids]).toEqual([0, 1, 2, 3, 4, 4, 5, 6, 7, 8]);
    expect([...s.next().ids]).toEqual([8, 9, 10, 11, 12, 12, 13, 14, 15, 16]);
    // next window would be 16..20, then 20..24 does not fit (23 tokens) ⇒ wrap
    expect([...s.next().ids]).toEqual([16, 17, 18, 19, 20, 0, 1, 2, 3, 4]);
    expect(s.getState()).toEqual({ offset: 4, epoch: 1, rng: null });
  });

  for (const order of ['sequential', 'random'] as const) {
    it(`${order}: resumes exactly from getState()`, () => {
      const a = new TokenStream(tokens, { batchSize: 3, seqLen: 5, order, seed: 9 });
      for (let i = 0; i < 4; i++) a.next();
      const state = a.getState();
      const after = [a.next(), a.next()].map((b) => [...b.ids]);
      const b = new TokenStream(tokens, { batchSize: 3, seqLen: 5, order, seed: 123 });
      b.setState(JSON.parse(JSON.stringify(state)));
      expect([b.next(), b.next()].map((x) => [...x.ids])).toEqual(after);
    });
  }

  it('random windows are contiguous slices inside the corpus', () => {
    const s = new TokenStream(tokens, { batchSize: 50, seqLen: 6, order: 'random', seed: 1 });
    const { ids } = s.next();
    const starts = new Set<number>();
    for (let b = 0; b < 50; b++) {
      const row = ids.subarray(b * 7, b * 7 + 7);
      for (let t = 1; t < 7; t++) expect(row[t]).toBe(row[0]! + t);
      starts.add(row[0]!);
    }
    expect(Math.max(...starts)).toBeLessThanOrEqual(23 - 7);
    expect(starts.size).toBeGreaterThan(5);
  });

  it('rejects bad sizes and foreign states with messages', () => {
    expect(() => new TokenStream(tokens, { batchSize: 1, seqLen: 23 })).toThrow(/23 tokens/);
    expect(() => new TokenStream(tokens, { batchSize: 0, seqLen: 2 })).toThrow(/batchSize/);
    const s = new TokenStream(tokens, { batchSize: 1, seqLen: 2 });
    expect(() => s.setState({ offset: 0, epoch: 0, rng: [1, 2, 3, 4] })).toThrow(/sequential/);
  });

  it('bytesToTokens gives UTF-8 bytes', () => {
    expect([...bytesToTokens('aé')]).toEqual([97, 0xc3, 0xa9]);
  });
});
