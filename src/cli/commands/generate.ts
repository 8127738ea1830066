/**
 * `dsv3 generate`: greedy or temperature/top-p decoding with KV caches from a model directory or a preset
 * (seeded random weights), optionally speculative with the MTP module; prints the new token ids.
 */
import type { Command } from 'commander';
import { InputError } from '../../errors.js';
import type { AttnImpl } from '../../model/attention.js';
import { DeepSeekV3 } from '../../model/model.js';
import { getPreset } from '../../model/presets.js';
import { initWeights } from '../../model/weights.js';
import { loadModel } from '../../model/weights_node.js';
import type { DType } from '../../tensor.js';
import { CliUsageError } from '../errors.js';
import type { NumericsProfile } from '../../model/numerics.js';
import { NUMERICS_HELP, parseDType, parseNonNegative, parseNumerics, parsePositiveInt, printJSON } from '../inputs.js';
import { parseAttn } from '../inputs.js';

/** Parses `--prompt-ids`: `1,2,3`, `1 2 3` or a JSON array. */
function parsePromptIds(v: string): number[] {
  const s = v.trim();
  let ids: unknown[];
  if (s.startsWith('[')) {
    try {
      ids = JSON.parse(s) as unknown[];
    } catch {
      throw new InputError(`--prompt-ids: not a valid JSON array: '${v}'`);
    }
  } else {
    ids = s.split(/[\s,]+/).filter((x) => x !== '').map(Number);
  }
  if (!Array.isArray(ids) || ids.length === 0) throw new InputError('--prompt-ids: expected at least one token id');
  ids.forEach((x, i) => {
    if (!Number.isInteger(x) || (x as number) < 0) throw new InputError(`--prompt-ids: position ${i} holds '${String(x)}', not a non-negative integer`);
  });
  return ids as number[];
}

/** Registers `dsv3 generate`. */
export function registerGenerateCommand(program: Command): void {
  program
    .command('generate')
    .description('generate token ids with KV caches (greedy, sampling, or MTP speculative decoding)')
    .option('--model <dir>', 'model directory (config.json + weights)')
    .option('--preset <name>', 'built-in config with seeded random weights (tiny, small, bench)')
    .requiredOption('--prompt-ids <ids>', 'prompt token ids: "1,2,3" or a JSON array')
    .option('--max-new-tokens <n>', 'tokens to generate', parsePositiveInt('--max-new-tokens'), 32)
    .option('--temperature <t>', '0 = greedy', parseNonNegative('--temperature'), 0)
    .option('--top-p <p>', 'nucleus sampling mass in (0, 1]', parseNonNegative('--top-p'), 1)
    .option('--seed <n>', 'sampling seed (and the preset weights seed)', (v) => Number(v), 0)
    .option('--attn <impl>', 'attention path / cache layout: naive | absorb', parseAttn, 'absorb' as AttnImpl)
    .option('--dtype <dtype>', 'compute precision: f32 | f64', parseDType, 'float32' as DType)
    .option('--numerics <profile>', NUMERICS_HELP, parseNumerics, 'exact' as NumericsProfile)
    .option('--speculative <kind>', "speculative decoding: 'mtp' (greedy, or speculative sampling with --temperature > 0)")
    .option('--json', 'print a JSON result on stdout')
    .addHelpText('after', '\nExample:\n  dsv3 generate --preset tiny --prompt-ids 1,2,3 --max-new-tokens 16 --speculative mtp')
    .action(
      (o: {
        model?: string;
        preset?: string;
        promptIds: string;
        maxNewTokens: number;
        temperature: number;
        topP: number;
        seed: number;
        attn: AttnImpl;
        dtype: DType;
        numerics: NumericsProfile;
        speculative?: string;
        json?: boolean;
      }) => {
        if ((o.model === undefined) === (o.preset === undefined)) throw new CliUsageError('give exactly one of --model DIR or --preset NAME');
        if (o.speculative !== undefined && o.speculative !== 'mtp') throw new CliUsageError(`--speculative must be 'mtp', got '${o.speculative}'`);
        if (!Number.isInteger(o.seed)) throw new CliUsageError(`--seed must be an integer, got ${o.seed}`);
        if (!(o.topP > 0 && o.topP <= 1)) throw new CliUsageError(`--top-p must be in (0, 1], got ${o.topP}`);
        const prompt = parsePromptIds(o.promptIds);
        let model: DeepSeekV3;
        if (o.preset !== undefined) {
          const config = getPreset(o.preset);
          model = new DeepSeekV3(config, initWeights(config, { seed: o.seed, dtype: o.dtype }));
        } else {
          const { config, weights, fp8 } = loadModel(o.model!, { dtype: o.dtype });
          model = new DeepSeekV3(config, weights, { fp8 });
        }
        const t0 = performance.now();
        const r = model.generate(prompt, {
          maxNewTokens: o.maxNewTokens,
          temperature: o.temperature,
          topP: o.topP,
          seed: o.seed,
          attn: o.attn,
          numerics: o.numerics,
          ...(o.speculative === 'mtp' ? { speculative: 'mtp' as const } : {}),
        });
        const seconds = (performance.now() - t0) / 1000;
        const result = { ...r, seconds, tokensPerSecond: r.tokens.length / seconds };
        if (o.json === true) printJSON(result);
        else {
          process.stdout.write(`${r.tokens.join(' ')}\n`);
          const spec = r.acceptanceRate !== null ? `, acceptance ${(100 * r.acceptanceRate).toFixed(1)}% (${r.accepted}/${r.drafted})` : '';
          process.stderr.write(`${r.tokens.length} tokens in ${seconds.toFixed(3)} s (${result.tokensPerSecond.toFixed(1)} tokens/s), KV caches ${r.cacheBytes} B${spec}\n`);
        }
      },
    );
}
