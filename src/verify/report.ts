import type { ComparisonResult, TensorComparison } from './compare.js';

/**
 * Renders a {@link ComparisonResult} as JSON (for scripts), Markdown (for issues and terminals)
 * or a self-contained HTML page (no external assets). Tensors appear in execution order; the
 * first divergent tensor is named at the top and marked in the table. A noise-calibrated result
 * shows, per tensor, the backend's error, the noise floor and their ratio instead of the
 * tolerance columns, and lists the routing near-ties.
 */

/** Report formats; `reportFormatFromPath` picks one from a file extension. */
export type ReportFormat = 'json' | 'markdown' | 'html';

/** `.json` → json, `.md`/`.markdown` → markdown, `.html`/`.htm` → html; null otherwise. */
export function reportFormatFromPath(path: string): ReportFormat | null {
  const m = /\.([a-z]+)$/i.exec(path);
  const ext = m?.[1]?.toLowerCase();
  if (ext === 'json') return 'json';
  if (ext === 'md' || ext === 'markdown') return 'markdown';
  if (ext === 'html' || ext === 'htm') return 'html';
  return null;
}

/**
 * JSON text of the comparison. Non-finite numbers (JSON has none) are written as the strings
 * `"Infinity"`, `"-Infinity"`, `"NaN"`.
 */
export function comparisonToJSON(result: ComparisonResult, indent = 2): string {
  return JSON.stringify(
    { format: 'dsv3-verify-report', version: 1, ...result },
    (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v),
    indent,
  );
}

function fmtErr(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  return x === 0 ? '0' : x.toExponential(2);
}

/** Compared numerically: both present, shapes equal or reshape-compatible, both float or both integer. */
function isNumeric(c: TensorComparison): boolean {
  return (c.status === 'pass' || c.status === 'fail') && (c.shapeMatch || c.reshaped) && c.dtypeMatch;
}

function fmtCos(c: TensorComparison): string {
  if (!isNumeric(c)) return '';
  const s = c.cosine.toFixed(8);
  // a cosine that rounds to 1 (round-off can even put it a hair above 1) reads as 1, like an exact 1
  return s === '1.00000000' ? '1' : s;
}

/** The two values with the fewest significant digits (≥ 6) that still tell them apart, trailing zeros dropped. */
function fmtPair(a: number, b: number): [string, string] {
  if (!Number.isFinite(a) || !Number.isFinite(b) || a === b) return [String(a), String(b)];
  for (let p = 6; p < 17; p++) {
    const x = a.toPrecision(p);
    const y = b.toPrecision(p);
    if (x !== y) return [String(Number(x)), String(Number(y))];
  }
  return [String(a), String(b)];
}

function fmtWorst(c: TensorComparison): string {
  if (c.worstIndex === null) return '';
  const [got, ref] = typeof c.worstValue === 'number' && typeof c.worstReference === 'number' ? fmtPair(c.worstValue, c.worstReference) : [String(c.worstValue), String(c.worstReference)];
  return `[${c.worstIndex.join(', ')}] ${got} vs ${ref}`;
}

function fmtShape(c: TensorComparison): string {
  const s = (x: readonly number[] | null): string => (x === null ? '—' : `[${x.join(', ')}]`);
  if (c.reshaped) return `${s(c.shape)} (ref ${s(c.referenceShape)})`;
  if (c.shape !== null && c.referenceShape !== null && !c.shapeMatch) return `${s(c.shape)} vs ${s(c.referenceShape)}`;
  return s(c.shape ?? c.referenceShape);
}

function fmtRatio(x: number): string {
  return Number.isFinite(x) ? x.toFixed(2) : String(x);
}

function statusLabel(c: TensorComparison): string {
  switch (c.status) {
    case 'pass':
      return 'pass';
    case 'fail':
      return 'FAIL';
    case 'missing-in-reference':
      return 'not in reference';
    case 'missing-in-library':
      return 'not produced';
  }
}

interface Row {
  cells: string[];
  comparison: TensorComparison;
}

const HEADERS = ['#', 'tensor', 'status', 'shape', 'max abs err', 'max rel err', 'worst [index] got vs ref', 'within tol', 'cosine', 'inf/nan'];
const CALIBRATED_HEADERS = ['#', 'tensor', 'status', 'shape', 'backend err (median / worst row)', 'noise floor (median / worst row)', 'ratio', 'rows left out', 'worst [index] got vs truth', 'inf/nan'];

function headers(result: ComparisonResult): string[] {
  return result.mode === 'calibrated' ? CALIBRATED_HEADERS : HEADERS;
}

function rows(result: ComparisonResult): Row[] {
  if (result.mode === 'calibrated') return calibratedRows(result);
  return result.results.map((c, i) => {
    const numeric = isNumeric(c);
    return {
      comparison: c,
      cells: [
        ...leadingCells(c, i),
        numeric ? fmtErr(c.maxAbsError) : '',
        numeric ? fmtErr(c.maxRelError) : '',
        numeric ? fmtWorst(c) : '',
        numeric ? `${(100 * c.passFraction).toFixed(c.passFraction === 1 ? 0 : 3)}%` : '',
        numeric ? fmtCos(c) : '',
        numeric ? (c.nonfiniteMatch ? 'match' : `${c.nonfiniteMismatchCount} differ`) : '',
      ],
    };
  });
}

/** The cells every report row starts with: position, name (with the reference's name and layout), status, shape. */
function leadingCells(c: ComparisonResult['results'][number], i: number): string[] {
  const name = c.referenceName !== c.name ? `${c.name} (ref: ${c.referenceName})` : c.name;
  return [String(i + 1), name + (c.ropePermuted ? ' [HF RoPE layout]' : ''), statusLabel(c), fmtShape(c)];
}

function calibratedRows(result: ComparisonResult): Row[] {
  return result.results.map((c, i) => {
    const numeric = isNumeric(c);
    const k = c.calibrated;
    const routing = numeric && c.exact ? (c.status === 'pass' ? 'sets match' + (c.notes.some((n) => n.startsWith('near-tie')) ? ' (near-ties)' : '') : 'sets differ') : '';
    return {
      comparison: c,
      cells: [
        ...leadingCells(c, i),
        k !== null ? `${fmtErr(k.backendMedian)} / ${fmtErr(k.backendWorst)}` : routing,
        k !== null ? `${fmtErr(k.floorMedian)} / ${fmtErr(k.floorWorst)}${k.noNoise ? ' (half-ulp only)' : ''}` : '',
        k !== null ? fmtRatio(k.ratio) : '',
        k !== null ? (k.rowsExcluded > 0 ? `${k.rowsExcluded} of ${k.rows}` : '0') : '',
        numeric && !c.exact ? fmtWorst(c) : '',
        numeric && !c.exact ? (c.nonfiniteMatch ? 'match' : `${c.nonfiniteMismatchCount} differ`) : '',
      ],
    };
  });
}

function summaryLines(result: ComparisonResult): string[] {
  const s = result.settings;
  const lines = [
    result.allPassed
      ? `All ${result.passed} compared tensors pass.`
      : result.failed > 0
        ? `${result.failed} of ${result.passed + result.failed} compared tensors FAIL. First divergent tensor: ${result.firstDivergent}.`
        : 'No tensor was compared: the library and the reference have no names in common.',
    result.mode === 'calibrated'
      ? `Noise-calibrated (${s.numerics}): truth = the library in f64; noise = the library under ${s.numerics}; per token row, floor = max(noise RMS, bf16 half-ulp of the truth row RMS); a tensor passes when its error is ≤ k=${s.k} × the floor (median row, worst row and √cosine difference).`
      : `Tolerance: |a−b| ≤ atol=${s.tolerance.atol} OR |a−b| ≤ rtol=${s.tolerance.rtol}·|ref|; cosine difference ≤ ${s.cosDiffTol}; integer tensors exact; inf/nan positions exact.`,
  ];
  if (!s.orderedRouting && result.results.some((r) => /\.gate:indices$/.test(r.name) && (r.status === 'pass' || r.status === 'fail'))) {
    lines.push('Routing (gate:indices, gate:weights) compared per row as expert sets, weights carried along (--ordered-routing for the strict order).');
  }
  for (const r of s.rules) lines.push(`Rule: ${r.pattern} → rtol=${r.rtol}, atol=${r.atol}`);
  if (s.officialNames) lines.push('Reference names mapped from official-code names (SPEC §2.4).');
  if (s.hfRope) lines.push('HF permuted-RoPE layout: library q_pe/k_pe permuted by P before comparing (SPEC §3.4).');
  if (result.missingInLibrary.length > 0) {
    lines.push(`${result.missingInLibrary.length} reference tensor(s) have no library counterpart (check the names): ${result.missingInLibrary.slice(0, 5).join(', ')}${result.missingInLibrary.length > 5 ? ', …' : ''}`);
  }
  if (result.missingInReference.length > 0) lines.push(`${result.missingInReference.length} library tensor(s) are not in the reference (not compared).`);
  for (const n of result.notes) lines.push(`Note: ${n}`);
  for (const h of result.hints) lines.push(`Hint: ${h}`);
  return lines;
}

/** One line per near-tie token (calibrated mode). */
function nearTieLines(result: ComparisonResult): string[] {
  const fmt = (x: number): string => (Number.isFinite(x) ? x.toExponential(2) : '∞');
  return result.nearTies.map(
    (n) =>
      `${n.name} row ${n.row} [b ${n.token[0]}, s ${n.token[1]}] (${n.side}): experts ${n.exact.join(',')} → ${n.other.join(',')}; margin expert ${fmt(n.margins.expert)}, group ${fmt(n.margins.group)}; score noise ${fmt(n.noise)}`,
  );
}

/** The first failing tensor's reasons, the lines a user reads first. */
function divergentLines(result: ComparisonResult): string[] {
  const c = result.results.find((r) => r.status === 'fail');
  if (c === undefined) return [];
  return [
    `First divergent tensor \`${c.name}\`:`,
    ...c.reasons.map((r) => `- ${r}`),
    ...(c.worstIndex ? [`- worst element ${fmtWorst(c)}`] : []),
    ...c.notes.map((n) => `- note: ${n}`),
  ];
}

function mdEscape(s: string): string {
  return s.replace(/\|/g, '\\|');
}

/** Markdown text: a summary, the first divergent tensor's reasons, then one table row per tensor. */
export function comparisonToMarkdown(result: ComparisonResult, title = 'dsv3 verify report'): string {
  const out = [`# ${title}`, '', ...summaryLines(result).map((l) => `${l}  `), ''];
  const div = divergentLines(result);
  if (div.length > 0) out.push(...div, '');
  const head = headers(result);
  out.push(`| ${head.join(' | ')} |`, `| ${head.map(() => '---').join(' | ')} |`);
  for (const r of rows(result)) {
    const cells = r.cells.map(mdEscape);
    if (r.comparison.name === result.firstDivergent) cells[2] = `**${cells[2]} (first)**`;
    out.push(`| ${cells.join(' | ')} |`);
  }
  const fails = result.results.filter((r) => r.status === 'fail');
  if (fails.length > 0) {
    out.push('', '## Failures', '');
    for (const c of fails) out.push(`- \`${c.name}\`: ${c.reasons.join('; ')}`);
  }
  const ties = nearTieLines(result);
  if (ties.length > 0) out.push('', '## Routing near-ties', '', ...ties.map((l) => `- ${mdEscape(l)}`));
  const noted = result.results.filter((r) => r.notes.length > 0);
  if (noted.length > 0) {
    out.push('', '## Notes', '');
    for (const c of noted) out.push(`- \`${c.name}\`: ${mdEscape(c.notes.join('; '))}`);
  }
  return out.join('\n') + '\n';
}

function htmlEscape(s: string): string {
  return s.replace(/[&<>"']/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[ch]!);
}

/** A self-contained HTML page (inline CSS, no scripts or external assets). */
export function comparisonToHTML(result: ComparisonResult, title = 'dsv3 verify report'): string {
  const css = `body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;font:12px ui-monospace,monospace}
th,td{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#f0f0f0;position:sticky;top:0}
td:nth-child(4),td:nth-child(7){white-space:nowrap}
tr.pass td:nth-child(3){color:#176f2c}
tr.fail{background:#fde8e8} tr.fail td:nth-child(3){color:#b00020;font-weight:bold}
tr.first{outline:3px solid #b00020}
tr.missing-in-reference,tr.missing-in-library{color:#888}
.summary{padding:.5em 1em;border-left:4px solid #888;background:#fafafa}
.ok{border-color:#176f2c}.bad{border-color:#b00020;background:#fdf0f0}
.summary p:first-child{font-weight:bold}.bad p:first-child{color:#b00020}`;
  const cls = result.allPassed ? 'ok' : 'bad';
  const body = [
    `<h1>${htmlEscape(title)}</h1>`,
    `<div class="summary ${cls}">${summaryLines(result).map((l) => `<p>${htmlEscape(l)}</p>`).join('')}</div>`,
  ];
  const div = divergentLines(result);
  if (div.length > 0) {
    body.push(`<h2>${htmlEscape(div[0]!.replace(/`/g, '').replace(/:$/, ''))}</h2><ul>${div.slice(1).map((l) => `<li>${htmlEscape(l.slice(2))}</li>`).join('')}</ul>`);
  }
  body.push('<table><thead><tr>' + headers(result).map((h) => `<th>${htmlEscape(h)}</th>`).join('') + '</tr></thead><tbody>');
  for (const r of rows(result)) {
    const first = r.comparison.name === result.firstDivergent ? ' first' : '';
    const why = [...r.comparison.reasons, ...r.comparison.notes];
    const title = why.length > 0 ? ` title="${htmlEscape(why.join('; '))}"` : '';
    body.push(`<tr class="${r.comparison.status}${first}"${title}>${r.cells.map((c) => `<td>${htmlEscape(c)}</td>`).join('')}</tr>`);
  }
  body.push('</tbody></table>');
  const ties = nearTieLines(result);
  if (ties.length > 0) body.push(`<h2>Routing near-ties</h2><ul>${ties.map((l) => `<li>${htmlEscape(l)}</li>`).join('')}</ul>`);
  return `<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>${htmlEscape(title)}</title><style>${css}</style></head>\n<body>\n${body.join('\n')}\n</body></html>\n`;
}

/** Renders in the given format. */
export function renderComparison(result: ComparisonResult, format: ReportFormat, title?: string): string {
  if (format === 'json') return comparisonToJSON(result);
  if (format === 'markdown') return comparisonToMarkdown(result, title);
  return comparisonToHTML(result, title);
}

/**
 * A compact plain-text summary for a terminal: one line per failing tensor, then the verdict. A calibrated result
 * starts with one line per compared tensor: ratio, backend error and noise floor (median row).
 */
export function comparisonToText(result: ComparisonResult, maxLines = 6): string {
  const lines: string[] = [];
  if (result.mode === 'calibrated') {
    const shown = result.results.filter(isNumeric);
    const w = Math.max(...shown.map((c) => c.name.length), 6);
    lines.push(`${'tensor'.padEnd(w)}  ratio   backend  floor    (median row RMS; ratio = max of median, worst row, √cosdiff)`);
    for (const c of shown) {
      const k = c.calibrated;
      const mark = c.status === 'fail' ? ' FAIL' : '';
      const ties = result.nearTies.filter((n) => n.name === c.name).length;
      if (k === null) lines.push(`${c.name.padEnd(w)}  ${c.exact ? (c.status === 'pass' ? 'sets match' : 'sets differ') : c.status}${ties > 0 ? ` (${ties} near-tie(s))` : ''}${mark}`);
      else lines.push(`${c.name.padEnd(w)}  ${fmtRatio(k.ratio).padStart(5)}   ${fmtErr(k.backendMedian).padEnd(8)} ${fmtErr(k.floorMedian).padEnd(8)}${k.rowsExcluded > 0 ? ` (${k.rowsExcluded}/${k.rows} rows left out)` : ''}${mark}`);
    }
    for (const l of nearTieLines(result)) lines.push(`near-tie: ${l}`);
  }
  const fails = result.results.filter((r) => r.status === 'fail');
  for (const c of fails.slice(0, maxLines)) {
    lines.push(`FAIL ${c.name}: ${c.reasons.join('; ')}${c.worstIndex ? `; worst ${fmtWorst(c)}` : ''}`);
  }
  if (fails.length > maxLines) lines.push(`… ${fails.length - maxLines} more failing tensors`);
  lines.push(...summaryLines(result));
  return lines.join('\n') + '\n';
}
