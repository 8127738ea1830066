/**
 * The default wasm backend starts worker threads in Node (min(cores, 4)); they must never keep a process alive: a
 * script that selects the backend, runs a split matmul and returns exits on its own (the built library, dist/).
 */
import { spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt, ROOT } from '../cli/helpers.js';

beforeAll(ensureBuilt);

describe('wasm threads: workers never keep the process alive', () => {
  it('a script that calls useBackend("wasm") with the default threads and runs a split matmul exits by itself', () => {
    const index = pathToFileURL(join(ROOT, 'dist', 'index.js')).href;
    const script = `
      const { useBackend, kernelsFor } = await import(${JSON.stringify(index)});
      const info = await useBackend('wasm');
      const n = 256, a = new Float32Array(n * n).fill(1), c = new Float32Array(n * n);
      kernelsFor('float32').matmul('nn', a, a, c, n, n, n); // 2^25 flop: split over the pool
      console.log(JSON.stringify({ threads: info.threads, c0: c[0] }));`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
    expect(r.error, String(r.error)).toBeUndefined(); // a timeout (ETIMEDOUT) would mean the workers held the process
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout.trim())).toEqual({ threads: Math.min(availableParallelism(), 4), c0: 256 });
  });
});
