/**
 * A 500-case sample of each fuzz target (tests/fuzz/targets.ts) with a fixed seed: malformed
 * safetensors files and shard indexes, config.json, ids.json and tokenizer.json must each be
 * loaded or rejected with a typed error (DeepSeekError), never crash. `npm run fuzz` runs ≥ 10,000
 * cases of each. FUZZ_RUNS / FUZZ_SEED override the count and the seed.
 */
import { describe, expect, it } from 'vitest';
import { formatStats, runTarget, TARGETS } from './targets.js';

const RUNS = Number(process.env.FUZZ_RUNS ?? 500);
const SEED = Number(process.env.FUZZ_SEED ?? 20_251_204);

describe(`fuzz: malformed inputs give typed errors (${RUNS} cases per target, seed ${SEED})`, () => {
  TARGETS.forEach((target, i) => {
    it(`${target}: no crash, no untyped error`, () => {
      const stats = runTarget(target, RUNS, SEED + i);
      console.log(formatStats(stats));
      expect(stats.runs).toBe(RUNS);
      // the generators reach both outcomes: some inputs are rejected (and, except for damaged
      // files only, some are accepted), so the sample exercises more than the first check
      expect(Object.values(stats.rejected).reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
      expect(stats.accepted).toBeGreaterThan(0);
    });
  });
});
