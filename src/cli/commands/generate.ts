/**
 * `dsv3 generate`: greedy or temperature/top-p decoding with KV caches from a model directory or a preset
 * (seeded random weights), optionally speculative with the MTP module. The prompt is token ids (`--prompt-ids`,
 * output ids) or text (`--prompt`, output text): text goes through `--tokenizer FILE` (a Hugging Face
 * tokenizer.json), the model directory's tokenizer.json, or else byte-level UTF-8 (ids 0–255 = bytes, the
 * encoding `dsv3 train --data` and the demo train the presets on).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { InputError } from '../../errors.js';
import type { AttnImpl } from '../../model/attention.js';
import type { ModelConfig } from '../../model/config.js';
import type { NumericsProfile } from '../../model/numerics.js';
import type { DType } from '../../tensor.js';
import { CliUsageError } from '../errors.js';
import { dtypeOption, NUMERICS_HELP, parseAttn, parseInteger, parseNonNegative, parseNumerics, parsePositiveInt, printJSON } from '../inputs.js';
import { addGuardOptions, guardFlags, openModel, printWarnings } from '../resources.js';
import { addBackendOptions, kernelsLabel, selectBackend, type BackendFlags } from '../backend.js';
import { openTokenizer } from './tokenize.js';

/** Parses `--prompt-ids`: `1,2,3`, `1 2 3` or a JSON array; an error names the first item that is not an id. */
function parsePromptIds(v: string): number[] {
  const s = v.trim();
  let items: unknown[];
  if (s.startsWith('[')) {
    try {
      items = JSON.parse(s) as unknown[];
    } catch {
      throw new InputError(`--prompt-ids: not a valid JSON array: '${v}'`);
    }
    if (!Array.isArray(items)) throw new InputError(`--prompt-ids: not a JSON array: '${v}'`);
  } else {
    items = s.split(/[\s,]+/).filter((x) => x !== '');
  }
  if (items.length === 0) throw new InputError('--prompt-ids: expected at least one token id');
  return items.map((x, i) => {
    const id = typeof x === 'string' && /^\d+$/.test(x) ? Number(x) : x;
    if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0) {
      throw new InputError(`--prompt-ids: item ${i} is ${typeof x === 'string' ? `'${x}'` : JSON.stringify(x)}, not a token id (a non-negative integer)`);
    }
    return id;
  });
}

/** Text ↔ ids for `--prompt`: a Hugging Face tokenizer or byte-level UTF-8. */
interface TextCodec {
  name: string;
  encode(text: string): number[];
  decode(ids: readonly number[]): string;
  /** Ids that end generation (the tokenizer's EOS), none for bytes. */
  stop: number[];
}

/** UTF-8 bytes as ids 0–255; an id ≥ 256 is not a byte and decodes to U+FFFD. */
function byteCodec(config: ModelConfig): TextCodec {
  if (config.vocabSize < 256) throw new CliUsageError(`byte-level text needs vocab_size ≥ 256, the model has ${config.vocabSize}: give --tokenizer FILE or --prompt-ids`);
  return {
    name: 'bytes',
    encode: (text) => [...new TextEncoder().encode(text)],
    decode: (ids) => new TextDecoder('utf-8', { fatal: false }).decode(Uint8Array.from(ids, (id) => (id < 256 ? id : 0xff))), // 0xff is never valid UTF-8
    stop: [],
  };
}

/** The codec of `--prompt`: --tokenizer, else DIR/tokenizer.json, else bytes. */
function textCodec(tokenizer: string | undefined, modelDir: string | undefined, config: ModelConfig, warnings: string[]): TextCodec {
  const beside = modelDir !== undefined ? join(modelDir, 'tokenizer.json') : undefined;
  const path = tokenizer ?? (beside !== undefined && existsSync(beside) ? beside : undefined);
  if (path === undefined) {
    if (modelDir !== undefined) warnings.push(`no --tokenizer and no ${beside}: text is byte-level UTF-8 (ids 0–255)`);
    return byteCodec(config);
  }
  const tok = openTokenizer(path);
  return {
    name: path,
    encode: (text) => tok.encode(text, { addSpecialTokens: true }),
    decode: (ids) => tok.decode(ids, { skipSpecialTokens: true, unknownIds: 'skip' }), // a model's vocab may pad past the tokenizer's
    stop: [config.eosTokenId],
  };
}

/** Flags of `dsv3 generate`. */
interface GenerateFlags extends BackendFlags {
  model?: string;
  preset?: string;
  promptIds?: string;
  prompt?: string;
  tokenizer?: string;
  maxNewTokens: number;
  temperature: number;
  topP: number;
  seed: number;
  attn: AttnImpl;
  dtype: DType;
  numerics: NumericsProfile;
  speculative?: string;
  json?: boolean;
  topk?: number;
  topkGroup?: number;
}

/** Runs `dsv3 generate`. */
async function runGenerate(o: GenerateFlags): Promise<void> {
  if ((o.promptIds === undefined) === (o.prompt === undefined)) throw new CliUsageError('give exactly one of --prompt-ids IDS or --prompt TEXT');
  if (o.speculative !== undefined && o.speculative !== 'mtp') throw new CliUsageError(`--speculative must be 'mtp', got '${o.speculative}'`);
  if (!(o.topP > 0 && o.topP <= 1)) throw new CliUsageError(`--top-p must be in (0, 1], got ${o.topP}`);
  if (o.tokenizer !== undefined && o.prompt === undefined) throw new CliUsageError('--tokenizer applies to --prompt TEXT');
  const ids = o.promptIds !== undefined ? parsePromptIds(o.promptIds) : null;
  const kernels = kernelsLabel(await selectBackend(o), o.dtype);
  const allowLong = guardFlags().allowLong === true;
  const warnings: string[] = [];
  let codec: TextCodec | null = null;
  let prompt: number[] = ids ?? [];
  const { model, label, warnings: loadWarnings } = openModel({ model: o.model, preset: o.preset, dtype: o.dtype, seed: o.seed }, (config) => {
    if (o.prompt !== undefined) {
      codec = textCodec(o.tokenizer, o.model, config, warnings);
      prompt = codec.encode(o.prompt);
      if (prompt.length === 0) throw new InputError('--prompt: the text encodes to no tokens');
    }
    const room = allowLong ? o.maxNewTokens : Math.max(0, Math.min(o.maxNewTokens, config.maxPositionEmbeddings - prompt.length));
    return {
      positions: { count: prompt.length, of: o.prompt !== undefined ? `--prompt (${prompt.length} tokens)` : '--prompt-ids' },
      ids: { rows: [prompt], of: o.prompt !== undefined ? '--prompt' : '--prompt-ids' },
      work: { kind: 'generate', promptLength: prompt.length, newTokens: room, attn: o.attn, speculative: o.speculative === 'mtp' },
    };
  });
  printWarnings('generate', [...loadWarnings, ...warnings]);
  const text = codec as TextCodec | null;
  const t0 = performance.now();
  const r = model.generate(prompt, {
    maxNewTokens: o.maxNewTokens,
    temperature: o.temperature,
    topP: o.topP,
    seed: o.seed,
    attn: o.attn,
    numerics: o.numerics,
    topk: o.topk,
    topkGroup: o.topkGroup,
    ...(text !== null && text.stop.length > 0 ? { stopTokens: text.stop } : {}),
    ...(o.speculative === 'mtp' ? { speculative: 'mtp' as const } : {}),
  });
  const seconds = (performance.now() - t0) / 1000;
  if (r.stopReason === 'max_position_embeddings') {
    const P = model.config.maxPositionEmbeddings;
    printWarnings('generate', [`stopped after ${r.tokens.length} of ${o.maxNewTokens} tokens: prompt ${prompt.length} + ${r.tokens.length} reach ${label}'s max_position_embeddings ${P} (--allow-long runs past it)`]);
  }
  const output = text !== null ? text.decode(r.tokens) : null;
  const result = { ...r, ...(text !== null ? { prompt: o.prompt, promptIds: prompt, text: output, tokenizer: text.name } : {}), seconds, tokensPerSecond: r.tokens.length / seconds, kernels };
  if (o.json === true) {
    printJSON(result);
    return;
  }
  process.stdout.write(output !== null ? `${output}\n` : `${r.tokens.join(' ')}\n`);
  const spec = r.acceptanceRate !== null ? `, acceptance ${(100 * r.acceptanceRate).toFixed(1)}% (${r.accepted}/${r.drafted})` : '';
  process.stderr.write(`${r.tokens.length} tokens in ${seconds.toFixed(3)} s (${result.tokensPerSecond.toFixed(1)} tokens/s), KV caches ${r.cacheBytes} B${spec}; ${kernels}\n`);
}

/** Registers `dsv3 generate`. */
export function registerGenerateCommand(program: Command): void {
  const cmd = program
    .command('generate')
    .description('generate tokens or text with KV caches (greedy, sampling, or MTP speculative decoding)')
    .option('--model <dir>', 'model directory (config.json + weights)')
    .option('--preset <name>', 'built-in config with seeded random weights (tiny, small, bench)')
    .option('--prompt-ids <ids>', 'prompt token ids: "1,2,3" or a JSON array; prints the new ids')
    .option('--prompt <text>', 'prompt text; prints the generated text (see --tokenizer)')
    .option('--tokenizer <file>', "tokenizer.json for --prompt (default: the model directory's, else byte-level UTF-8; docs/tokenizer.md)")
    .option('--max-new-tokens <n>', 'tokens to generate (stops earlier at max_position_embeddings)', parsePositiveInt('--max-new-tokens'), 32)
    .option('--temperature <t>', '0 = greedy', parseNonNegative('--temperature'), 0)
    .option('--top-p <p>', 'nucleus sampling mass in (0, 1]', parseNonNegative('--top-p'), 1)
    .option('--seed <n>', 'sampling seed (and the preset weights seed)', parseInteger('--seed'), 0)
    .option('--attn <impl>', 'attention path / cache layout: naive | absorb', parseAttn, 'absorb' as AttnImpl)
    .addOption(dtypeOption())
    .option('--numerics <profile>', NUMERICS_HELP, parseNumerics, 'exact' as NumericsProfile)
    .option('--speculative <kind>', "speculative decoding: 'mtp' (greedy, or speculative sampling with --temperature > 0)")
    .option('--topk <k>', "route each token to k experts (default: the config's num_experts_per_tok)", parsePositiveInt('--topk'))
    .option('--topk-group <g>', "groups kept per token (default: the config's topk_group)", parsePositiveInt('--topk-group'))
    .option('--json', 'print a JSON result on stdout');
  addGuardOptions(addBackendOptions(cmd), { weights: true, positions: true })
    .addHelpText(
      'after',
      '\nExamples:\n  $ dsv3 generate --preset tiny --prompt-ids 1,2,3 --max-new-tokens 16 --speculative mtp\n' +
        "  $ dsv3 generate --model demo-out/model --prompt 'The ' --max-new-tokens 64\n" +
        "  $ dsv3 generate --model ./DeepSeek-V3-small --prompt 'Hello' --tokenizer tokenizer.json",
    )
    .action(runGenerate);
}
