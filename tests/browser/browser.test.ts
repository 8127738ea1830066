/**
 * The main entry runs in a browser page, on wasm, and gives the same logits as Node, bit for bit.
 *
 * esbuild bundles tests/browser/page_entry.ts (which imports only src/index.ts) with
 * `platform: 'browser'`, so a Node built-in reachable from the main entry fails the bundle. A node
 * `http` server on 127.0.0.1 (an ephemeral port, two fixed paths) serves the page; headless Chromium
 * (the system binary, driven by puppeteer-core, nothing downloaded) runs `forwardBits` there, and
 * the same function runs in Node. Both sides execute the same embedded wasm binaries, whose f32
 * arithmetic is deterministic, so equality is exact, not within a tolerance:
 * - the plain-SIMD build: Chromium vs this vitest worker;
 * - the default build (relaxed SIMD where the engine has it, as in current Chromium): Chromium vs
 *   a Node child process started with `--experimental-wasm-relaxed-simd` (Node 20 needs the flag)
 *   running the same module bundled for Node.
 * Without a Chromium binary (CHROMIUM_PATH, or chromium / chromium-browser / google-chrome on the
 * usual paths) the suite is skipped with a message; .ci/run installs Debian's `chromium` first.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../cli/helpers.js';
import { forwardBits, IDS, type ForwardBits } from './forward_page.js';

const CANDIDATES = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'];
const chromium = CANDIDATES.find((p): p is string => p !== undefined && p !== '' && existsSync(p));
const here = join(ROOT, 'tests', 'browser');

if (chromium === undefined) {
  console.warn('tests/browser: SKIPPED — no Chromium binary found (set CHROMIUM_PATH, or `apt-get install chromium`); the browser test did not run');
}

/** Indices where two bit-pattern arrays differ (at most `max` of them), for a readable failure. */
function differences(a: number[], b: number[], max = 5): string[] {
  const out: string[] = [];
  for (let i = 0; i < Math.max(a.length, b.length) && out.length < max; i++) {
    if (a[i] !== b[i]) out.push(`logit ${i}: 0x${(a[i] ?? 0).toString(16)} vs 0x${(b[i] ?? 0).toString(16)}`);
  }
  return out;
}

describe.skipIf(chromium === undefined)('browser: headless Chromium runs the main entry on wasm', () => {
  let server: Server;
  let browser: Browser;
  let page: Page;
  let tmp: string;
  let version = '';

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'dsv3-browser-'));
    const bundle = await build({
      entryPoints: [join(here, 'page_entry.ts')],
      bundle: true,
      format: 'esm',
      platform: 'browser',
      write: false,
      logLevel: 'silent',
    });
    const js = bundle.outputFiles[0]!.contents;
    const html = '<!doctype html><meta charset="utf-8"><title>dsv3</title><script type="module" src="/bundle.js"></script>';
    server = createServer((req, res) => {
      if (req.url === '/bundle.js') res.writeHead(200, { 'content-type': 'text/javascript' }).end(js);
      else if (req.url === '/') res.writeHead(200, { 'content-type': 'text/html' }).end(html);
      else res.writeHead(404).end();
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', resolve);
    });
    const { port } = server.address() as AddressInfo;
    browser = await puppeteer.launch({
      executablePath: chromium!,
      headless: true,
      // --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start
      args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
      timeout: 30_000,
      protocolTimeout: 30_000,
    });
    version = await browser.version();
    page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(`http://127.0.0.1:${port}/`, { timeout: 15_000 });
    await page.waitForFunction('typeof globalThis.forwardBits === "function"', { timeout: 15_000 }).catch((e: unknown) => {
      throw new Error(`the page did not load the bundle: ${errors.join('; ') || String(e)}`);
    });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    server?.closeAllConnections();
    await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  const inPage = (variant: 'simd' | 'auto'): Promise<ForwardBits> =>
    page.evaluate((v) => (globalThis as unknown as { forwardBits: typeof forwardBits }).forwardBits(v), variant);

  it('plain SIMD build: the page logits equal this Node process bit for bit', async () => {
    const web = await inPage('simd');
    const node = await forwardBits('simd');
    console.log(`browser: ${version}, ${web.backend}: ${web.bits.length} logits [${web.shape.join(', ')}], ${differences(web.bits, node.bits).length === 0 ? 'bit-identical to Node' : 'DIFFERENT'}`);
    expect(web.backend).toBe('wasm-simd');
    expect(node.backend).toBe('wasm-simd');
    expect(web.shape).toEqual([IDS.length, IDS[0]!.length, 256]);
    expect(web.bits.length).toBe(IDS.length * IDS[0]!.length * 256);
    // every logit is a finite f32 (exponent field not all ones), so equality is not of NaN patterns
    expect(web.bits.every((u) => ((u >>> 23) & 0xff) !== 0xff)).toBe(true);
    expect(differences(web.bits, node.bits)).toEqual([]);
  }, 60_000);

  it('default build (relaxed SIMD when the engine has it): the page logits equal Node running the same build', async () => {
    const web = await inPage('auto');
    const variant = web.backend === 'wasm-relaxed-simd' ? 'relaxed-simd' : 'simd';
    // The same module, bundled for Node, in a child with relaxed SIMD enabled (Node 20 has it behind a flag).
    const nodeBundle = await build({ entryPoints: [join(here, 'forward_page.ts')], bundle: true, format: 'esm', platform: 'node', write: false, logLevel: 'silent' });
    writeFileSync(join(tmp, 'forward.mjs'), nodeBundle.outputFiles[0]!.contents);
    writeFileSync(join(tmp, 'main.mjs'), `import { forwardBits } from './forward.mjs';\nprocess.stdout.write(JSON.stringify(await forwardBits(${JSON.stringify(variant)})));\n`);
    const out = execFileSync(process.execPath, ['--experimental-wasm-relaxed-simd', join(tmp, 'main.mjs')], { encoding: 'utf8', timeout: 30_000 });
    const node = JSON.parse(out) as ForwardBits;
    console.log(`browser default build: ${web.backend}; Node child: ${node.backend}; ${differences(web.bits, node.bits).length === 0 ? 'bit-identical' : 'DIFFERENT'}`);
    expect(node.backend).toBe(web.backend);
    expect(web.shape).toEqual(node.shape);
    expect(differences(web.bits, node.bits)).toEqual([]);
  }, 60_000);
});
