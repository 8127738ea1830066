/**
 * `dsv3 tokenize --tokenizer FILE [--special] [--json]`: text on stdin → token ids on stdout.
 * `dsv3 detokenize --tokenizer FILE [--skip-special]`: ids on stdin (JSON array or whitespace-
 * separated) → text on stdout. tokenizer_config.json beside FILE is used when present.
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { InputError } from '../../errors.js';
import type { Tokenizer } from '../../tokenizer/tokenizer.js';
import { tokenizerFromFile } from '../../tokenizer/tokenizer_node.js';
import { checkInputFile, jsonInputLimit } from '../resources.js';

/** Where DeepSeek-V3's tokenizer.json comes from (docs/tokenizer.md). */
const TOKENIZER_SOURCE = 'https://huggingface.co/deepseek-ai/DeepSeek-V3/resolve/main/tokenizer.json';

/** Loads a tokenizer.json after checking that it exists and is not larger than a JSON input may be. */
export function openTokenizer(path: string): Tokenizer {
  checkInputFile(path, jsonInputLimit(), 'a tokenizer.json');
  return tokenizerFromFile(path);
}

function readStdin(): string {
  return readFileSync(0, 'utf8');
}

/** Parse ids given as a JSON array or as whitespace/comma-separated integers. */
export function parseIdsText(text: string): number[] {
  const t = text.trim();
  if (t === '') return [];
  let values: unknown[];
  if (t.startsWith('[')) {
    try {
      values = JSON.parse(t) as unknown[];
    } catch (e) {
      throw new InputError(`stdin: not a valid JSON array of ids (${(e as Error).message})`);
    }
    if (!Array.isArray(values)) throw new InputError('stdin: expected a JSON array of ids');
  } else {
    values = t.split(/[\s,]+/).map((s) => (/^\d+$/.test(s) ? Number(s) : s));
  }
  values.forEach((v, k) => {
    if (!Number.isInteger(v) || (v as number) < 0) throw new InputError(`stdin: id at index ${k} = ${JSON.stringify(v)} is not a non-negative integer`);
  });
  return values as number[];
}

/** Register `tokenize` and `detokenize` on the program. */
export function registerTokenizeCommands(program: Command): void {
  program
    .command('tokenize')
    .description('encode stdin text to token ids')
    .requiredOption('--tokenizer <file>', `a Hugging Face tokenizer.json, e.g. DeepSeek-V3's from ${TOKENIZER_SOURCE} (tokenizer_config.json beside it is used if present)`)
    .option('--special', 'add special tokens (BOS when tokenizer_config.json says add_bos_token)', false)
    .option('--json', 'print ids and tokens as JSON', false)
    .addHelpText('after', "\nExamples:\n  $ echo -n 'Hello, world!' | dsv3 tokenize --tokenizer tokenizer.json\n  $ echo -n 'Hi' | dsv3 tokenize --tokenizer tokenizer.json --special --json")
    .action((opts: { tokenizer: string; special: boolean; json: boolean }) => {
      const tok = openTokenizer(opts.tokenizer);
      const enc = tok.encodeWithTokens(readStdin(), { addSpecialTokens: opts.special });
      process.stdout.write(opts.json ? `${JSON.stringify({ ids: enc.ids, tokens: enc.tokens })}\n` : `${enc.ids.join(' ')}\n`);
    });
  program
    .command('detokenize')
    .description('decode token ids on stdin (JSON array or whitespace-separated) to text')
    .requiredOption('--tokenizer <file>', `a Hugging Face tokenizer.json (DeepSeek-V3's: ${TOKENIZER_SOURCE})`)
    .option('--skip-special', 'drop special tokens', false)
    .addHelpText('after', "\nExamples:\n  $ echo '19923 14 2058 3' | dsv3 detokenize --tokenizer tokenizer.json\n  $ echo '[0, 19923]' | dsv3 detokenize --tokenizer tokenizer.json --skip-special")
    .action((opts: { tokenizer: string; skipSpecial: boolean }) => {
      const tok = openTokenizer(opts.tokenizer);
      process.stdout.write(tok.decode(parseIdsText(readStdin()), { skipSpecialTokens: opts.skipSpecial }));
    });
}
