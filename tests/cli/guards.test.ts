/**
 * Subprocess tests of the `dsv3` guard rails and error lines (issue 12, "Why" 1–8 and 11): each numbered problem
 * of the issue is run as a user would and its exit code and exact stderr are checked. Errors are exactly one line
 * on stderr with exit code 2 and nothing on stdout.
 */
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { totalmem, tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { configToHF } from '../../src/model/config.js';
import { formatBytes } from '../../src/model/guards.js';
import { getPreset } from '../../src/model/presets.js';
import { initWeights } from '../../src/model/weights.js';
import { saveModel } from '../../src/model/weights_node.js';
import { Tokenizer } from '../../src/tokenizer/tokenizer.js';
import { trainBpe } from '../../src/tokenizer/trainer.js';
import { dsv3, ensureBuilt, ROOT, type CliRun } from './helpers.js';

beforeAll(ensureBuilt, 180_000);

const tmp = mkdtempSync(join(tmpdir(), 'dsv3-guards-'));
const at = (name: string): string => join(tmp, name);

// tiny with 64 positions; the same weights with one NaN at [0, 17] of an expert; a config with a string where an integer belongs
const tiny64 = { ...getPreset('tiny'), maxPositionEmbeddings: 64 };
saveModel(at('tiny64'), tiny64, initWeights(tiny64, { seed: 1 }));
const poisoned = initWeights(tiny64, { seed: 1 });
poisoned.get('model.layers.1.mlp.experts.3.up_proj.weight')!.data[17] = NaN;
saveModel(at('nan'), tiny64, poisoned);
mkdirSync(at('badcfg'));
writeFileSync(at('badcfg/config.json'), JSON.stringify({ ...configToHF(tiny64), num_attention_heads: '4' }));
const ids = (name: string, n: number): string => {
  writeFileSync(at(name), JSON.stringify([Array.from({ length: n }, (_, i) => (7 * i) % 200)]));
  return at(name);
};
const IDS8 = ids('ids8.json', 8);
const IDS65 = ids('ids65.json', 65);
const IDS1M = ids('ids1m.json', 1_000_000);

/** An error run: exit 2, nothing on stdout, ONE stderr line; returns it. */
function oneLineError(args: string[]): string {
  const r = dsv3(args);
  expect(r.code, `${args.join(' ')}\n${r.stderr}`).toBe(2);
  expect(r.stdout).toBe('');
  const lines = r.stderr.trimEnd().split('\n');
  expect(lines, r.stderr).toHaveLength(1);
  return lines[0]!;
}

function ok(args: string[]): CliRun {
  const r = dsv3(args);
  expect(r.code, `${args.join(' ')}\n${r.stderr}`).toBe(0);
  return r;
}

describe('1. refuse what cannot run, before allocating', () => {
  it('generate and train --preset deepseek-v3: one line with the estimate and the limit', () => {
    expect(oneLineError(['generate', '--preset', 'deepseek-v3', '--prompt-ids', '1,2,3', '--max-memory', '18G'])).toBe(
      'dsv3 generate: error: deepseek-v3 needs ~2.7 TB for weights alone; limit 18 GB (--max-memory SIZE overrides)',
    );
    expect(oneLineError(['train', '--preset', 'deepseek-v3', '--steps', '1', '--max-memory', '18G'])).toBe(
      'dsv3 train: error: deepseek-v3 needs ~2.7 TB for weights alone; limit 18 GB (--max-memory SIZE overrides)',
    );
  });

  it('the default limit is 75% of the machine memory', () => {
    const limit = formatBytes(Math.floor(0.75 * totalmem()));
    expect(oneLineError(['generate', '--preset', 'deepseek-v3', '--prompt-ids', '1'])).toBe(
      `dsv3 generate: error: deepseek-v3 needs ~2.7 TB for weights alone; limit ${limit} (--max-memory SIZE overrides)`,
    );
  });

  it('forward, grad, trace and demo refuse a budget their model or activations exceed; a bad size is a usage error', () => {
    const m = at('tiny64');
    expect(oneLineError(['forward', '--model', m, '--input', IDS8, '--out', at('o.st'), '--max-memory', '1M'])).toMatch(
      /^dsv3 forward: error: \S+tiny64 needs ~\d+(\.\d)? MB for weights alone; limit 1 MB \(--max-memory SIZE overrides\)$/,
    );
    expect(oneLineError(['grad', '--model', m, '--input', IDS8, '--out', at('o.st'), '--max-memory', '3.7M'])).toMatch(/^dsv3 grad: error: \S+ needs ~\S+ MB \(weights 1\.7 MB, gradients 1\.7 MB, activations \d+ kB, file buffers 1\.9 MB\); limit 3\.7 MB \(--max-memory SIZE overrides\)$/);
    expect(oneLineError(['trace', '--model', m, '--input', IDS8, '--out', at('o.st'), '--max-memory', '1M'])).toMatch(/^dsv3 trace: error: .* limit 1 MB/);
    expect(oneLineError(['demo', '--max-memory', '1M'])).toMatch(/^dsv3 demo: error: the demo \(tiny, 8×64 tokens per step\) needs ~1\.7 MB for weights alone; limit 1 MB/);
    expect(oneLineError(['forward', '--model', m, '--input', IDS8, '--out', at('o.st'), '--max-memory', 'lots'])).toBe(
      "dsv3 forward: error: --max-memory must be a size such as 8G, 512M, 1.5T or 'unlimited', got 'lots'",
    );
  });
});

describe('2. non-finite weights', () => {
  const warning = (dir: string): string =>
    `${dir}: tensor 'model.layers.1.mlp.experts.3.up_proj.weight' holds NaN at [0, 17] (flat index 17); outputs will not be finite`;

  it('one stderr warning naming the tensor and index; --strict makes it an error (exit 2)', () => {
    const r = ok(['forward', '--model', at('nan'), '--input', IDS8, '--out', at('o.st')]);
    expect(r.stderr).toBe(`dsv3 forward: warning: ${warning(at('nan'))}\n`);
    expect(oneLineError(['forward', '--model', at('nan'), '--input', IDS8, '--out', at('o.st'), '--strict'])).toBe(
      `dsv3 forward: error: ${warning(at('nan')).replace('outputs will not be finite', 'non-finite weights make every output NaN/Inf')}`,
    );
    expect(oneLineError(['generate', '--model', at('nan'), '--prompt-ids', '1,2', '--strict'])).toMatch(/^dsv3 generate: error: .*holds NaN at \[0, 17\]/);
    expect(oneLineError(['train', '--model', at('nan'), '--steps', '1', '--batch', '1', '--seq', '8', '--strict'])).toMatch(/^dsv3 train: error: .*holds NaN at \[0, 17\]/);
    expect(ok(['forward', '--model', at('tiny64'), '--input', IDS8, '--out', at('o.st'), '--strict']).stderr).toBe('');
  });
});

describe('3. positions and input sizes', () => {
  it('65 ids with max_position_embeddings 64: an input error naming the length and the limit, unless --allow-long', () => {
    const args = ['forward', '--model', at('tiny64'), '--input', IDS65, '--out', at('o.st')];
    expect(oneLineError(args)).toBe(`dsv3 forward: error: ${IDS65}: 65 positions exceed max_position_embeddings 64 (--allow-long runs past it)`);
    expect(ok([...args, '--allow-long']).stdout).toMatch(/^wrote \d+ tensors for 1×65 tokens/);
    expect(oneLineError(['grad', '--model', at('tiny64'), '--input', ids('ids66.json', 66), '--out', at('o.st')])).toMatch(/: 65 positions exceed max_position_embeddings 64/);
    expect(oneLineError(['generate', '--model', at('tiny64'), '--prompt-ids', JSON.stringify(Array(65).fill(3))])).toBe(
      'dsv3 generate: error: --prompt-ids: 65 positions exceed max_position_embeddings 64 (--allow-long runs past it)',
    );
  });

  it('1,000,000 ids: refused at once (positions), with --allow-long by the memory estimate (12 GB); a file over the JSON limit is refused before parsing', () => {
    const args = ['forward', '--model', at('tiny64'), '--input', IDS1M, '--out', at('o.st')];
    expect(oneLineError(args)).toMatch(/: 1000000 positions exceed max_position_embeddings 64/);
    expect(oneLineError([...args, '--allow-long', '--max-memory', '4G'])).toMatch(/^dsv3 forward: error: \S+ needs ~12 GB \(weights 1\.7 MB, activations 12 GB, file buffers 1\.9 MB\); limit 4 GB /);
    expect(oneLineError([...args, '--max-memory', '1M'])).toBe(`dsv3 forward: error: ${IDS1M}: 3.5 MB is larger than the 63 kB accepted for an ids file`);
  });

  it('generate --max-new-tokens past the limit stops there with one warning line', () => {
    const r = ok(['generate', '--model', at('tiny64'), '--prompt-ids', '1,2,3', '--max-new-tokens', '100']);
    expect(r.stdout.trim().split(' ')).toHaveLength(61);
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(2); // the warning and the usual tokens/s line
    expect(lines[0]).toBe(
      `dsv3 generate: warning: stopped after 61 of 100 tokens: prompt 3 + 61 reach ${at('tiny64')}'s max_position_embeddings 64 (--allow-long runs past it)`,
    );
    expect(ok(['generate', '--model', at('tiny64'), '--prompt-ids', '1,2,3', '--max-new-tokens', '100', '--allow-long', '--json']).stdout).toMatch(/"stopReason": "max_new_tokens"/);
  });
});

describe('4. config values of the wrong JSON type', () => {
  it.each(['info', 'forward'])('%s names the key and the expected type', (cmd) => {
    const args = cmd === 'info' ? ['info', '--model', at('badcfg')] : ['forward', '--model', at('badcfg'), '--input', IDS8, '--out', at('o.st')];
    expect(oneLineError(args)).toBe(`dsv3 ${cmd}: error: config key 'num_attention_heads': expected an integer, got the string "4"`);
  });
});

describe('5. usage errors', () => {
  it("an unknown command is one line with commander's suggestion", () => {
    expect(oneLineError(['verfy'])).toBe("dsv3: error: unknown command 'verfy' (Did you mean verify?) (see --help)");
    expect(oneLineError(['help', 'verfy'])).toBe("dsv3: error: unknown command 'verfy' (see --help)");
  });

  it('an unknown flag is named (before any missing required option), in every command', () => {
    expect(oneLineError(['forward', '--modle', 'x', '--input', 'y', '--out', 'z'])).toBe(
      "dsv3 forward: error: unknown option '--modle' (Did you mean --model?) (see dsv3 forward --help)",
    );
    for (const cmd of ['info', 'grad', 'trace', 'verify', 'diff', 'generate', 'train', 'tokenize', 'detokenize', 'bench', 'demo']) {
      expect(oneLineError([cmd, '--bogus-flag'])).toMatch(new RegExp(`^dsv3 ${cmd}: error: unknown option '--bogus-flag'`));
    }
    expect(oneLineError(['forward', '--input', 'y', '--out', 'z'])).toBe("dsv3 forward: error: required option '--model <dir>' not specified (see dsv3 forward --help)");
  });

  it('dsv3 with no command prints the help on stderr and exits 2; --help prints it on stdout with exit 0', () => {
    const r = dsv3([]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^Usage: dsv3 \[options\] \[command\]/);
    expect(ok(['--help']).stdout).toMatch(/^Usage: dsv3 \[options\] \[command\]/);
  });
});

describe('6. one phrasing for missing files; bad prompt ids are named', () => {
  it('every missing input file: "<path>: no such file"', () => {
    const nope = at('nope.json');
    const cases: string[][] = [
      ['forward', '--model', at('tiny64'), '--input', nope, '--out', at('o.st')],
      ['forward', '--model', at('nodir'), '--input', IDS8, '--out', at('o.st')],
      ['info', '--model', at('nodir')],
      ['tokenize', '--tokenizer', nope],
      ['train', '--steps', '1', '--data', nope],
      ['train', '--steps', '1', '--tokens', nope],
      ['diff', nope, nope],
      ['verify', '--model', at('tiny64'), '--input', IDS8, '--reference', nope],
    ];
    for (const args of cases) {
      const missing = args.includes(at('nodir')) ? join(at('nodir'), 'config.json') : nope;
      expect(oneLineError(args)).toBe(`dsv3 ${args[0]}: error: ${missing}: no such file`);
    }
  });

  it('--prompt-ids names the item that is not a token id', () => {
    expect(oneLineError(['generate', '--preset', 'tiny', '--prompt-ids', 'a,b'])).toBe("dsv3 generate: error: --prompt-ids: item 0 is 'a', not a token id (a non-negative integer)");
    expect(oneLineError(['generate', '--preset', 'tiny', '--prompt-ids', '[1, 2.5]'])).toBe('dsv3 generate: error: --prompt-ids: item 1 is 2.5, not a token id (a non-negative integer)');
  });
});

describe('8. text in, text out', () => {
  it('--prompt on a byte-level preset: the prompt is its UTF-8 bytes, the output the UTF-8 decoding of the new ids', () => {
    const r = ok(['generate', '--preset', 'tiny', '--prompt', 'Grüße, ', '--max-new-tokens', '12', '--json']);
    const j = JSON.parse(r.stdout) as { promptIds: number[]; tokens: number[]; text: string; tokenizer: string };
    expect(j.promptIds).toEqual([...Buffer.from('Grüße, ', 'utf8')]);
    expect(j.tokenizer).toBe('bytes');
    expect(j.tokens).toHaveLength(12);
    expect(j.text).toBe(new TextDecoder().decode(Uint8Array.from(j.tokens)));
    const plain = ok(['generate', '--preset', 'tiny', '--prompt', 'Grüße, ', '--max-new-tokens', '12']);
    expect(plain.stdout).toBe(`${j.text}\n`);
  });

  it('--prompt with --tokenizer FILE encodes and decodes with that tokenizer.json', () => {
    const corpus = readFileSync(join(ROOT, 'data/tiny-corpus.txt'), 'utf8').slice(0, 20_000);
    const json = trainBpe([corpus], { vocabSize: 400, specialTokens: ['<bos>', '<eos>'] });
    const path = at('tokenizer.json');
    writeFileSync(path, JSON.stringify(json));
    const tok = Tokenizer.fromJSON(JSON.stringify(json));
    const prompt = 'the little cat';
    const r = ok(['generate', '--preset', 'small', '--prompt', prompt, '--tokenizer', path, '--max-new-tokens', '10', '--json']);
    const j = JSON.parse(r.stdout) as { promptIds: number[]; tokens: number[]; text: string; tokenizer: string };
    expect(j.tokenizer).toBe(path);
    expect(j.promptIds).toEqual(tok.encode(prompt, { addSpecialTokens: true }));
    expect(j.promptIds.length).toBeLessThan(Buffer.byteLength(prompt)); // merges applied: not bytes
    expect(j.text).toBe(tok.decode(j.tokens, { skipSpecialTokens: true, unknownIds: 'skip' }));
    expect(oneLineError(['generate', '--preset', 'tiny', '--prompt-ids', '1', '--tokenizer', path])).toBe('dsv3 generate: error: --tokenizer applies to --prompt TEXT');
  });

  it("tokenize's help says where DeepSeek-V3's tokenizer.json comes from", () => {
    expect(ok(['tokenize', '--help']).stdout.replace(/\s+/g, ' ')).toContain('https://huggingface.co/deepseek-ai/DeepSeek-V3/resolve/main/tokenizer.json');
  });
});

describe('11. one dtype spelling in every help text', () => {
  it.each(['forward', 'grad', 'trace', 'verify', 'generate', 'train'])('%s --help: --dtype f32 | f64, default f32, no float32/float64', (cmd) => {
    const help = ok([cmd, '--help']).stdout.replace(/\s+/g, ' ');
    expect(help).toMatch(/--dtype <dtype> compute precision: f32 \| f64 \(default: f32\)/);
    expect(help).not.toMatch(/float32|float64/);
  });
});
