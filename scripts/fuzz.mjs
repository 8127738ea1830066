// `npm run fuzz [-- --runs N --seed S --target NAME]`: the long fuzz run (not part of npm test or CI). Runs
// tests/fuzz/fuzz.test.ts with FUZZ_RUNS cases per target (default 10,000) over the safetensors
// parser, the shard index, config.json, ids.json and tokenizer.json loaders; each target prints
// its counts (cases, accepted, rejected by error class, slowest case). A crash or an untyped
// error fails with fast-check's shrunk counterexample and the seed that replays it.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const arg = (name, dflt) => {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : dflt;
};
const runs = arg('--runs', '10000');
const seed = arg('--seed', String(Date.now() % 2 ** 31));
const target = arg('--target', ''); // one of safetensors, shard-index, config, ids, tokenizer (default: all)
if (!/^\d+$/.test(runs) || !/^\d+$/.test(seed)) {
  console.error('usage: npm run fuzz [-- --runs N --seed S --target NAME]');
  process.exit(2);
}
console.log(`fuzz: ${runs} cases per target, seed ${seed} (replay with --seed ${seed})`);
const vitest = join(dirname(createRequire(import.meta.url).resolve('vitest/package.json')), 'vitest.mjs');
const filter = target === '' ? [] : ['-t', `${target}:`];
const r = spawnSync(process.execPath, [vitest, 'run', 'tests/fuzz/fuzz.test.ts', '--testTimeout=1800000', ...filter], {
  cwd: root,
  stdio: 'inherit',
  env: { ...process.env, FUZZ_RUNS: runs, FUZZ_SEED: seed },
});
process.exit(r.status ?? 1);
