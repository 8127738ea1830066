/**
 * `dsv3 info`: a config summary, parameter counts (total / active per token) and the KV cache per
 * token of both attention paths, for a model directory (`config.json`) or a built-in preset.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { configFromHFWithWarnings, countParameters, type ModelConfig } from '../../model/config.js';
import { cacheBytesPerToken, cacheValuesPerTokenPerLayer } from '../../model/kv_cache.js';
import { getPreset, presets } from '../../model/presets.js';
import { CliUsageError } from '../errors.js';
import { printJSON } from '../inputs.js';
import { checkInputFile, CONFIG_FILE_LIMIT } from '../resources.js';

/** The config of `--model DIR` or `--preset NAME` plus warnings (exactly one must be given). */
function resolveConfig(opts: { model?: string; preset?: string }): { config: ModelConfig; source: string; warnings: string[] } {
  if ((opts.model === undefined) === (opts.preset === undefined)) throw new CliUsageError('give exactly one of --model DIR or --preset NAME');
  if (opts.preset !== undefined) return { config: getPreset(opts.preset), source: `preset ${opts.preset}`, warnings: [] };
  const path = join(opts.model!, 'config.json');
  checkInputFile(path, CONFIG_FILE_LIMIT, 'a config.json');
  const text = readFileSync(path, 'utf8');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new CliUsageError(`${path}: not valid JSON (${(e as Error).message})`);
  }
  const { config, warnings } = configFromHFWithWarnings(json);
  return { config, source: path, warnings };
}

/** Everything `info` reports, as printed by `--json`. */
function modelInfo(config: ModelConfig): Record<string, unknown> {
  const p = countParameters(config);
  const cache = (attn: 'naive' | 'absorb') => ({
    valuesPerTokenPerLayer: cacheValuesPerTokenPerLayer(config, attn),
    bf16BytesPerToken: cacheBytesPerToken(config, attn, 2),
    f32BytesPerToken: cacheBytesPerToken(config, attn, 4),
  });
  return { config, parameters: p, kvCache: { naive: cache('naive'), absorb: cache('absorb') } };
}

const fmtInt = (n: number): string => n.toLocaleString('en-US');

function fmtCount(n: number): string {
  if (n >= 1e9) return `${fmtInt(n)} (${(n / 1e9).toFixed(2)} B)`;
  if (n >= 1e6) return `${fmtInt(n)} (${(n / 1e6).toFixed(2)} M)`;
  return fmtInt(n);
}

function fmtBytes(n: number): string {
  if (n >= 2 ** 20) return `${fmtInt(n)} B (${(n / 2 ** 20).toFixed(2)} MiB)`;
  if (n >= 2 ** 10) return `${fmtInt(n)} B (${(n / 2 ** 10).toFixed(1)} KiB)`;
  return `${fmtInt(n)} B`;
}

/** The human-readable summary. */
function formatInfo(config: ModelConfig, source: string): string {
  const c = config;
  const p = countParameters(c);
  const naive = cacheBytesPerToken(c, 'naive', 2);
  const absorb = cacheBytesPerToken(c, 'absorb', 2);
  const y = c.ropeScaling;
  const lines = [
    `model: ${source}`,
    `  layers ${c.numHiddenLayers} (${c.firstKDenseReplace} dense, ${c.numHiddenLayers - c.firstKDenseReplace} MoE), hidden ${c.hiddenSize}, vocab ${c.vocabSize}, MTP depth ${c.numNextnPredictLayers}`,
    `  MLA: ${c.numAttentionHeads} heads, q_lora_rank ${c.qLoraRank === 0 ? 'none (q_proj)' : c.qLoraRank}, kv_lora_rank ${c.kvLoraRank}, nope/rope/v ${c.qkNopeHeadDim}/${c.qkRopeHeadDim}/${c.vHeadDim}`,
    `  RoPE: theta ${c.ropeTheta}, ${y === null ? 'no scaling' : `YaRN factor ${y.factor} from ${y.originalMaxPositionEmbeddings}`}, max positions ${c.maxPositionEmbeddings}`,
    `  MoE: ${c.nRoutedExperts} routed + ${c.nSharedExperts} shared experts, top-${c.numExpertsPerTok}, ${c.nGroup} groups / ${c.topkGroup} used, ${c.scoringFunc}, ${c.topkMethod}${c.normTopkProb ? ', renormalised' : ''}, routed_scaling_factor ${c.routedScalingFactor}`,
    `  dense MLP ${c.intermediateSize}, expert ${c.moeIntermediateSize}`,
    `parameters:`,
    `  total (main model)        ${fmtCount(p.total)}`,
    `  active per token          ${fmtCount(p.activatedPerToken)}`,
    `  active, without embedding ${fmtCount(p.activatedPerTokenExcludingEmbedding)}`,
    `  MTP modules               ${fmtCount(p.mtp)}`,
    `  checkpoint total          ${fmtCount(p.checkpointTotal)}`,
    `KV cache per token (all ${c.numHiddenLayers} layers, BF16):`,
    `  naive  (per-head K and V) ${fmtBytes(naive)}  [${fmtInt(cacheValuesPerTokenPerLayer(c, 'naive'))} values/layer]`,
    `  absorb (latent + k_pe)    ${fmtBytes(absorb)}  [${fmtInt(cacheValuesPerTokenPerLayer(c, 'absorb'))} values/layer]  ${(naive / absorb).toFixed(1)}x smaller`,
  ];
  return lines.join('\n') + '\n';
}

/** Registers `dsv3 info`. */
export function registerInfoCommand(program: Command): void {
  program
    .command('info')
    .description('summarise a model config: sizes, parameter counts (total/active), KV cache per token for both attention paths')
    .option('--model <dir>', 'model directory with config.json')
    .option('--preset <name>', `built-in config (${Object.keys(presets).join(', ')})`)
    .option('--json', 'print JSON')
    .addHelpText('after', '\nExamples:\n  $ dsv3 info --preset deepseek-v3\n  $ dsv3 info --model ./my-model --json')
    .action((opts: { model?: string; preset?: string; json?: boolean }) => {
      const { config, source, warnings } = resolveConfig(opts);
      if (opts.json) {
        printJSON({ source, warnings, ...modelInfo(config) });
        return;
      }
      for (const w of warnings) process.stderr.write(`dsv3 info: warning: ${w}\n`);
      process.stdout.write(formatInfo(config, source));
    });
}
