/**
 * `dsv3 demo` (`npm run demo`): trains the `tiny` preset on the bundled corpus with MTP and bias
 * balancing, prints loss parts and expert-load balance as it goes, writes an HTML report with the
 * curves and load heatmaps, samples with MTP speculative decoding and verifies itself
 * (src/demo/demo.ts). No flags needed, no downloads; exit code 1 if a self-check fails.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import type { BackendName } from '../../kernels/index.js';
import { countParameters } from '../../model/config.js';
import { checkMemory, estimateMemory } from '../../model/guards.js';
import { getPreset } from '../../model/presets.js';
import { saveModel } from '../../model/weights_node.js';
import { DEMO_DEFAULTS, runDemo, type DemoResult } from '../../demo/demo.js';
import { moeLayerLabel, type HistoryStep } from '../../demo/history.js';
import { demoReportHTML } from '../../demo/report.js';
import { EXIT } from '../errors.js';
import { parseInteger, parseNonNegative, parsePositiveInt, printJSON } from '../inputs.js';
import { createProgress } from '../progress.js';
import { addGuardOptions, checkInputFile, MEMORY_OVERRIDE, memoryBudget } from '../resources.js';
import { bundledCorpusPath, printAboveProgress, stopProgress } from './train.js';
import { addBackendOptions, kernelsLabel, selectBackend } from '../backend.js';

/** Flags of `dsv3 demo`. */
interface DemoFlags {
  steps: number;
  batch: number;
  seq: number;
  lr: number;
  seed: number;
  out: string;
  backend: BackendName;
  /** Threads of the wasm kernels (undefined: the library default; bit-identical results for any count). */
  threads?: number;
  json?: boolean;
}

/** Files a demo run writes into its output directory. */
interface DemoFiles {
  report: string;
  history: string;
  trace: string;
  ids: string;
  model: string;
}

/** Writes the report, the per-step history, the self-check trace and the trained model under `dir`. */
function writeDemoFiles(dir: string, r: DemoResult): DemoFiles {
  mkdirSync(dir, { recursive: true });
  const files: DemoFiles = {
    report: join(dir, 'report.html'),
    history: join(dir, 'history.json'),
    trace: join(dir, 'trace.safetensors'),
    ids: join(dir, 'ids.json'),
    model: join(dir, 'model'),
  };
  writeFileSync(files.report, demoReportHTML(r));
  const layers = r.history.layers.map((n) => moeLayerLabel(n, r.config.numHiddenLayers));
  writeFileSync(files.history, JSON.stringify({ options: r.options, layers, corpus: r.corpus, heldOut: r.heldOut, steps: r.history.steps }) + '\n');
  writeFileSync(files.trace, r.checks.trace.bytes);
  writeFileSync(files.ids, JSON.stringify(r.checks.trace.ids) + '\n');
  saveModel(files.model, r.config, r.model.weights, { dtype: 'F32' });
  return files;
}

/** Runs `dsv3 demo`; returns the result (exit code 1 when a self-check failed). */
async function runDemoCommand(flags: DemoFlags): Promise<DemoResult> {
  const json = flags.json === true;
  const corpusPath = bundledCorpusPath();
  const config = getPreset(DEMO_DEFAULTS.preset);
  const corpusBytes = checkInputFile(corpusPath, 2 ** 31 - 1, 'the bundled corpus');
  const work = { kind: 'train', batch: flags.batch, positions: flags.seq, mtp: true } as const;
  checkMemory(estimateMemory(config, 'float32', work, 5 * corpusBytes), memoryBudget(), `the demo (${DEMO_DEFAULTS.preset}, ${flags.batch}×${flags.seq} tokens per step)`, MEMORY_OVERRIDE);
  const backend = await selectBackend(flags);
  const corpus = new Uint8Array(readFileSync(corpusPath));
  const opts = { steps: flags.steps, batch: flags.batch, seqLen: flags.seq, lr: flags.lr, seed: flags.seed };
  const perStep = flags.batch * flags.seq;
  const progress = createProgress({ total: flags.steps * perStep, label: 'train', unit: 'tok', ...(json ? { enabled: false } : {}) });
  const say = (line: string): void => {
    if (!json) printAboveProgress(progress, line);
  };
  const logEvery = Math.max(1, Math.round(flags.steps / 10));
  let window: HistoryStep[] = [];
  let layerLabels: string[] = [];
  const p = countParameters(config);
  say(`dsv3 demo: training the ${DEMO_DEFAULTS.preset} DeepSeek-V3 preset (${p.total.toLocaleString('en-US')} parameters) from scratch on ${corpusPath}`);
  say(`  ${flags.steps} steps × ${flags.batch}×${flags.seq} bytes, MTP on (λ ${DEMO_DEFAULTS.mtpLambda}), bias balancing on (γ ${DEMO_DEFAULTS.biasGamma}), balance loss α ${DEMO_DEFAULTS.balanceAlpha}; f32 ${kernelsLabel(backend, 'float32')}`);
  const result = runDemo(corpus, opts, {
    onStep: (s, report) => {
      if (layerLabels.length === 0) layerLabels = report.loads.map((l) => moeLayerLabel(l.biasName, config.numHiddenLayers).replace(/^layer /, 'L'));
      window.push(s);
      progress.tick(report.tokens, `loss ${s.main.toFixed(3)}`);
      if (s.step % logEvery === 0 || s.step === flags.steps) {
        const mean = (f: (x: HistoryStep) => number): number => window.reduce((a, x) => a + f(x), 0) / window.length;
        const load = layerLabels.map((l, i) => `${l} ${s.maxOverMean[i]!.toFixed(2)}`).join('  ');
        say(
          `step ${String(s.step).padStart(String(flags.steps).length)}/${flags.steps}  main ${mean((x) => x.main).toFixed(3)}  mtp ${mean((x) => x.mtp).toFixed(3)}  ` +
            `balance ${mean((x) => x.balance).toExponential(2)}  | load max/mean: ${load}  | ${s.tokensPerSec.toFixed(0)} tok/s`,
        );
        window = [];
      }
    },
    onPhase: (phase) => {
      if (phase === 'evaluate') stopProgress(progress);
      else if (phase === 'sample') say('sampling with MTP speculative decoding …');
      else if (phase === 'verify') say('verifying the trained model …');
    },
  });
  const outDir = resolve(flags.out);
  const files = writeDemoFiles(outDir, result);
  const checks = Object.values(result.checks);
  const allPassed = checks.every((c) => c.passed);
  if (!allPassed) process.exitCode = EXIT.MISMATCH;
  if (json) {
    printJSON({
      options: result.options,
      backend,
      corpus: result.corpus,
      heldOut: result.heldOut,
      final: result.history.steps.at(-1) ?? null,
      sample: result.sample,
      checks: checks.map(({ name, passed, value, tolerance, detail }) => ({ name, passed, value, tolerance, detail })),
      seconds: result.seconds,
      files,
    });
    return result;
  }
  const s = result.sample;
  const lines = [
    '',
    `held-out loss: ${result.heldOut.before.toFixed(3)} → ${result.heldOut.after.toFixed(3)} nats/byte (corpus unigram entropy ${result.corpus.unigramEntropy.toFixed(3)} nats/byte = ${(result.corpus.unigramEntropy / Math.LN2).toFixed(2)} bits)`,
    '',
    `sample (greedy, MTP speculative decoding, acceptance ${s.acceptanceRate === null ? 'n/a' : `${(100 * s.acceptanceRate).toFixed(1)}%`} = ${s.accepted}/${s.drafted} drafts):`,
    `  ${JSON.stringify(s.prompt + s.text)}`,
    '',
    'self-checks:',
    ...checks.map((c) => `  ${c.passed ? 'pass' : 'FAIL'}  ${c.name}: ${c.detail}`),
    '',
    `What it did: trained ${result.options.steps} steps in ${result.seconds.train.toFixed(1)} s (total ${result.seconds.total.toFixed(1)} s), sampled ${s.tokens.length} bytes, ran ${checks.length} self-checks (${allPassed ? 'all passed' : 'SOME FAILED'}).`,
    'Files:',
    `  ${files.report}   loss curves, expert-load heatmaps, sample, checks (open in a browser)`,
    `  ${files.history}   per-step loss parts, lr, grad norm, expert loads`,
    `  ${files.trace}   the self-check trace (verify another implementation against it: dsv3 verify)`,
    `  ${files.ids}   its ids (dsv3 verify --model ${files.model} --input ${files.ids} --reference ${files.trace} --grads)`,
    `  ${files.model}/   the trained model (config.json + model.safetensors; try dsv3 generate --model)`,
  ];
  for (const l of lines) say(l);
  return result;
}

/** Registers `dsv3 demo`. */
export function registerDemoCommand(program: Command): void {
  const cmd = program
    .command('demo')
    .description('train the tiny preset on the bundled corpus (MTP + bias balancing), write an HTML report, sample, and verify itself')
    .option('--steps <n>', 'optimizer steps', parsePositiveInt('--steps'), DEMO_DEFAULTS.steps)
    .option('--batch <b>', 'sequences per step', parsePositiveInt('--batch'), DEMO_DEFAULTS.batch)
    .option('--seq <t>', 'bytes per sequence', parsePositiveInt('--seq'), DEMO_DEFAULTS.seqLen)
    .option('--lr <lr>', 'peak learning rate', parseNonNegative('--lr'), DEMO_DEFAULTS.lr)
    .option('--seed <n>', 'seed of the init and the data order', parseInteger('--seed'), DEMO_DEFAULTS.seed)
    .option('--out <dir>', 'output directory', 'demo-out')
    .option('--json', 'print a JSON summary on stdout (no progress bar)');
  addGuardOptions(addBackendOptions(cmd))
    .addHelpText('after', '\nExamples:\n  $ npm run demo\n  $ dsv3 demo --steps 50 --out /tmp/demo')
    .action(async (flags: DemoFlags) => {
      await runDemoCommand(flags);
    });
}
