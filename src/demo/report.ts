/**
 * The demo report: one self-contained HTML page (inline SVG, inline CSS, no scripts or external
 * assets) with the loss curves (main, MTP, balance), the expert-load balance over steps and a
 * heatmap of expert load per MoE layer, the sample and the self-checks.
 */
import { countParameters } from '../model/config.js';
import type { DemoResult } from './demo.js';
import { moeLayerLabel, windowMeans, type HistoryStep } from './history.js';
import { escapeXml, heatmapSVG, lineChartSVG } from './svg.js';

/** Most points a curve is drawn with (longer runs are averaged over windows of steps). */
const CURVE_POINTS = 200;
/** Most columns of a load heatmap. */
const HEATMAP_COLUMNS = 100;
const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b'];
/** Chart width in px (the page body is 1000 px wide). */
const CHART_WIDTH = 900;

/** Window-averaged curve: x = last step of each window. */
function curve(steps: readonly HistoryStep[], pick: (s: HistoryStep) => number, window: number): { xs: number[]; ys: number[] } {
  const xs: number[] = [];
  for (let i = 0; i < steps.length; i += window) xs.push(steps[Math.min(i + window, steps.length) - 1]!.step);
  return { xs, ys: windowMeans(steps.map(pick), window) };
}

/**
 * Expert load of MoE layer `layer` over steps: per column (a window of steps) each expert's summed load
 * divided by the mean load (1 = its fair share E⁻¹ of the assignments).
 */
export function loadHeatmapColumns(steps: readonly HistoryStep[], layer: number, window: number): { xs: number[]; columns: number[][] } {
  const xs: number[] = [];
  const columns: number[][] = [];
  for (let i = 0; i < steps.length; i += window) {
    const part = steps.slice(i, i + window);
    const E = part[0]!.loads[layer]!.length;
    const sum = new Array<number>(E).fill(0);
    for (const s of part) s.loads[layer]!.forEach((c, e) => (sum[e]! += c));
    const mean = sum.reduce((a, b) => a + b, 0) / E;
    columns.push(sum.map((c) => (mean > 0 ? c / mean : NaN)));
    xs.push(part[part.length - 1]!.step);
  }
  return { xs, columns };
}

function fmt(x: number, digits = 3): string {
  return Number.isFinite(x) ? x.toFixed(digits) : String(x);
}

/** The report page for a demo run. */
export function demoReportHTML(r: DemoResult): string {
  const steps = r.history.steps;
  const o = r.options;
  const c = r.config;
  const window = Math.max(1, Math.ceil(steps.length / CURVE_POINTS));
  const main = curve(steps, (s) => s.main, window);
  // L_MTP = λ·mean_k CE_k: divide by λ to draw the MTP CE on the main loss's scale
  const mtp = curve(steps, (s) => s.mtp / o.mtpLambda, window);
  const bal = curve(steps, (s) => s.balance, window);
  const layers = r.history.layers.map((n) => moeLayerLabel(n, c.numHiddenLayers));
  const lossChart = lineChartSVG({
    title: window > 1 ? `Training loss (mean over windows of ${window} steps)` : 'Training loss per step',
    xs: main.xs,
    series: [
      { label: 'main next-token CE', values: main.ys, color: COLORS[0]! },
      { label: 'MTP CE (L_MTP / λ)', values: mtp.ys, color: COLORS[1]! },
    ],
    refLines: [
      { y: r.corpus.unigramEntropy, label: `corpus unigram entropy ${fmt(r.corpus.unigramEntropy)} nats/byte` },
      { y: r.heldOut.after, label: `held-out CE after training ${fmt(r.heldOut.after)}`, color: '#2ca02c' },
    ],
    yMin: 0,
    xLabel: 'step',
    yLabel: 'nats per byte',
    width: CHART_WIDTH,
  });
  const balanceChart = lineChartSVG({
    title: `Sequence-wise balance loss (α = ${o.balanceAlpha}, summed over ${layers.length} MoE layers)`,
    xs: bal.xs,
    series: [{ label: 'L_Bal', values: bal.ys, color: COLORS[2]! }],
    xLabel: 'step',
    yLabel: 'loss',
    width: CHART_WIDTH,
  });
  const maxMean = layers.map((label, l) => ({ label, ...curve(steps, (s) => s.maxOverMean[l]!, window) }));
  const loadChart = lineChartSVG({
    title: `Expert load balance: max / mean load per MoE layer (γ = ${o.biasGamma})`,
    xs: maxMean[0]?.xs ?? main.xs,
    series: maxMean.map((m, i) => ({ label: m.label, values: m.ys, color: COLORS[i % COLORS.length]! })),
    refLines: [{ y: 1, label: 'balanced' }],
    yMin: 0,
    xLabel: 'step',
    yLabel: 'max / mean',
    width: CHART_WIDTH,
  });
  const hmWindow = Math.max(1, Math.ceil(steps.length / HEATMAP_COLUMNS));
  const maxRatio = c.nRoutedExperts / c.numExpertsPerTok; // an expert chosen by every token
  const heatmaps = layers.map((label, l) => {
    const h = loadHeatmapColumns(steps, l, hmWindow);
    return heatmapSVG({
      title: `Expert load / mean load, ${label} (${hmWindow > 1 ? `${hmWindow} steps` : 'one step'} per column)`,
      columns: h.columns,
      xs: h.xs,
      center: 1,
      max: maxRatio,
      xLabel: 'step',
      rowLabel: 'expert',
      legendLabel: 'load / mean load',
      width: CHART_WIDTH,
    });
  });
  const checks = [r.checks.attention, r.checks.gradients, r.checks.trace, r.checks.speculative];
  const p = countParameters(c);
  const last = steps.slice(-Math.max(1, Math.ceil(steps.length / 10)));
  const lastMain = last.reduce((a, s) => a + s.main, 0) / Math.max(1, last.length);
  const tokens = steps.length > 0 ? o.steps * o.batch * o.seqLen : 0;
  const row = (k: string, v: string): string => `<tr><th>${escapeXml(k)}</th><td>${v}</td></tr>`;
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>deepseek-v3-ref demo report</title>
<style>
body{font-family:sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f4f4f4}.pass{color:#080;font-weight:bold}.fail{color:#b00;font-weight:bold}
pre{background:#f7f7f7;padding:1em;white-space:pre-wrap;border:1px solid #ddd}figure{margin:1em 0}
</style></head><body>
<h1>deepseek-v3-ref demo</h1>
<p>The <code>${escapeXml(o.preset)}</code> DeepSeek-V3 preset (${p.total.toLocaleString('en-US')} main-model parameters, ${c.numHiddenLayers} layers, ${c.nRoutedExperts} routed experts top-${c.numExpertsPerTok}, ${c.numNextnPredictLayers} MTP module) trained from scratch on the bundled byte-level corpus with MTP (λ = ${o.mtpLambda}), auxiliary-loss-free bias balancing (γ = ${o.biasGamma}) and the sequence-wise balance loss (α = ${o.balanceAlpha}).</p>
<h2>Figures</h2>
<table>
${row('training', `${o.steps} steps × ${o.batch}×${o.seqLen} bytes = ${tokens.toLocaleString('en-US')} tokens in ${fmt(r.seconds.train, 1)} s (${fmt(tokens / Math.max(r.seconds.train, 1e-9), 0)} tokens/s); lr ${o.lr} peak, cosine to ${Number((o.lr / 10).toPrecision(6))}`)}
${row('corpus', `${r.corpus.bytes.toLocaleString('en-US')} bytes (${r.corpus.trainTokens.toLocaleString('en-US')} train, ${r.corpus.heldOutTokens.toLocaleString('en-US')} held out)`)}
${row('corpus unigram entropy', `${fmt(r.corpus.unigramEntropy)} nats/byte`)}
${row('held-out CE', `${fmt(r.heldOut.before)} before → <b>${fmt(r.heldOut.after)}</b> after training (nats/byte)`)}
${row('train main CE, last 10% of steps', `${fmt(lastMain)} nats/byte`)}
${row('final max/mean expert load', layers.map((l, i) => `${escapeXml(l)} ${fmt(steps.at(-1)?.maxOverMean[i] ?? NaN, 2)}`).join(', '))}
${row('speculative decoding', r.sample.acceptanceRate === null ? 'n/a' : `acceptance ${fmt(100 * r.sample.acceptanceRate, 1)}% (${r.sample.accepted}/${r.sample.drafted} drafts)`)}
</table>
<h2>Loss curves</h2>
<figure>${lossChart}</figure>
<figure>${balanceChart}</figure>
<h2>Expert load</h2>
<p>Each router's bias <code>e_score_correction_bias</code> moves by ±γ after every step towards equal load (SPEC §5.2). Heatmap cells: an expert's share of the (token, slot) assignments divided by the fair share 1/${c.nRoutedExperts}; white = balanced, red = overloaded (full red: chosen by every token), blue = starved.</p>
<figure>${loadChart}</figure>
${heatmaps.map((h) => `<figure>${h}</figure>`).join('\n')}
<h2>Sample (greedy, MTP speculative decoding)</h2>
<pre><b>${escapeXml(r.sample.prompt)}</b>${escapeXml(r.sample.text)}</pre>
<h2>Self-checks</h2>
<table><tr><th>check</th><th>result</th><th>measured</th></tr>
${checks.map((k) => `<tr><td>${escapeXml(k.name)}</td><td class="${k.passed ? 'pass' : 'fail'}">${k.passed ? 'pass' : 'FAIL'}</td><td>${escapeXml(k.detail)}</td></tr>`).join('\n')}
</table>
<p>Wall time: train ${fmt(r.seconds.train, 1)} s, evaluate ${fmt(r.seconds.evaluate, 1)} s, sample ${fmt(r.seconds.sample, 1)} s, verify ${fmt(r.seconds.verify, 1)} s, total ${fmt(r.seconds.total, 1)} s.</p>
</body></html>
`;
}
