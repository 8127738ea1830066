/**
 * Self-contained SVG charts (no scripts, no external assets) for the demo report: line charts of
 * training curves and heatmaps of expert load over steps.
 */
import { InputError } from '../errors.js';

/** Escapes text for XML/HTML content and attribute values. */
export function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** About `count` round tick values (1, 2 or 5 × 10^k apart) covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(Number.isFinite(lo) && Number.isFinite(hi))) throw new InputError(`niceTicks: range [${lo}, ${hi}] is not finite`);
  if (hi <= lo) return [lo];
  const raw = (hi - lo) / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((f) => f * mag).find((s) => s >= raw)!;
  const ticks: number[] = [];
  // k·step for integer k (no accumulated additions), trimmed of representation noise
  for (let k = Math.ceil(lo / step); k * step <= hi + step * 1e-9; k++) ticks.push(Number((k * step).toPrecision(15)));
  return ticks;
}

function fmtTick(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  const r = Number(v.toPrecision(4));
  return a >= 1e4 || a < 1e-3 ? r.toExponential() : String(r);
}

/** One curve of a {@link lineChartSVG}. */
export interface LineSeries {
  label: string;
  /** y per x (non-finite values leave a gap). */
  values: readonly number[];
  /** CSS colour. */
  color: string;
}

/** Options of {@link lineChartSVG}. */
export interface LineChartOptions {
  title: string;
  /** x of each point (shared by all series). */
  xs: readonly number[];
  series: readonly LineSeries[];
  xLabel?: string;
  yLabel?: string;
  /** Horizontal reference lines (e.g. the unigram entropy). */
  refLines?: readonly { y: number; label: string; color?: string }[];
  /** Lower end of the y axis (default: the data's minimum). */
  yMin?: number;
  width?: number;
  height?: number;
}

const M = { left: 62, right: 16, top: 30, bottom: 44 };
/** Legend rows below a line chart's plot: first row's offset from the plot's bottom, row height. */
const LEGEND_TOP = 54;
const LEGEND_ROW = 16;

/** Rows the legend entries (34 px + ~6.2 px per character each) wrap into across `width` px. */
function legendRows(labels: readonly string[], width: number): number {
  let rows = labels.length > 0 ? 1 : 0;
  let x = 0;
  for (const l of labels) {
    const w = 34 + 6.2 * l.length;
    if (x > 0 && x + w > width) {
      rows++;
      x = 0;
    }
    x += w;
  }
  return rows;
}

/** A line chart as an `<svg>` element string. */
export function lineChartSVG(o: LineChartOptions): string {
  const W = o.width ?? 640;
  const pw = W - M.left - M.right;
  const ph = (o.height ?? 280) - M.top - M.bottom;
  const rows = legendRows(o.series.map((s) => s.label), pw);
  const H = M.top + ph + M.bottom + (rows > 0 ? LEGEND_ROW * rows + 4 : 0);
  if (o.xs.length === 0) throw new InputError(`lineChartSVG '${o.title}': no points`);
  for (const s of o.series) {
    if (s.values.length !== o.xs.length) throw new InputError(`lineChartSVG '${o.title}': series '${s.label}' has ${s.values.length} values for ${o.xs.length} x positions`);
  }
  const ys = [...o.series.flatMap((s) => s.values), ...(o.refLines ?? []).map((r) => r.y)].filter(Number.isFinite);
  let yLo = o.yMin ?? Math.min(...ys);
  let yHi = Math.max(...ys);
  if (!(yHi > yLo)) {
    yLo -= 0.5;
    yHi += 0.5;
  }
  yHi += 0.05 * (yHi - yLo); // headroom: a curve at the maximum stays visible below the frame
  const xLo = o.xs[0]!;
  const xHi = o.xs[o.xs.length - 1]! > xLo ? o.xs[o.xs.length - 1]! : xLo + 1;
  const X = (x: number): number => M.left + ((x - xLo) / (xHi - xLo)) * pw;
  const Y = (y: number): number => M.top + (1 - (y - yLo) / (yHi - yLo)) * ph;
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`);
  parts.push(`<title>${escapeXml(o.title)}</title>`);
  parts.push(`<text x="${W / 2}" y="16" text-anchor="middle" font-size="13" font-weight="bold">${escapeXml(o.title)}</text>`);
  parts.push(`<rect x="${M.left}" y="${M.top}" width="${pw}" height="${ph}" fill="none" stroke="#999"/>`);
  for (const t of niceTicks(yLo, yHi)) {
    const y = Y(t).toFixed(1);
    parts.push(`<line x1="${M.left}" x2="${M.left + pw}" y1="${y}" y2="${y}" stroke="#eee"/>`);
    parts.push(`<text x="${M.left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${fmtTick(t)}</text>`);
  }
  for (const t of niceTicks(xLo, xHi, 6)) {
    const x = X(t).toFixed(1);
    parts.push(`<line x1="${x}" x2="${x}" y1="${M.top + ph}" y2="${M.top + ph + 4}" stroke="#999"/>`);
    parts.push(`<text x="${x}" y="${M.top + ph + 16}" text-anchor="middle">${fmtTick(t)}</text>`);
  }
  if (o.xLabel) parts.push(`<text x="${M.left + pw / 2}" y="${M.top + ph + M.bottom - 8}" text-anchor="middle">${escapeXml(o.xLabel)}</text>`);
  if (o.yLabel) parts.push(`<text transform="translate(14 ${M.top + ph / 2}) rotate(-90)" text-anchor="middle">${escapeXml(o.yLabel)}</text>`);
  const pts = o.series.flatMap((s) => s.values.flatMap((v, i) => (Number.isFinite(v) ? [[X(o.xs[i]!), Y(Math.max(v, yLo))] as const] : [])));
  for (const r of o.refLines ?? []) {
    const y = Y(r.y);
    const c = r.color ?? '#888';
    parts.push(`<line x1="${M.left}" x2="${M.left + pw}" y1="${y.toFixed(1)}" y2="${y.toFixed(1)}" stroke="${c}" stroke-dasharray="5 4"/>`);
    // the label goes in the corner (left/right, above/below the line) that covers the fewest curve points
    const w = 6.2 * r.label.length + 8;
    let best = { n: Infinity, x: 0, y: 0, anchor: 'end' };
    for (const [side, anchor] of [[1, 'end'], [0, 'start']] as const) {
      for (const dy of [-4, 13]) {
        const x0 = side ? M.left + pw - 4 - w : M.left + 4;
        const ty = y + dy;
        if (ty < M.top + 10 || ty > M.top + ph - 2) continue;
        const n = pts.filter(([px, py]) => px >= x0 && px <= x0 + w && py >= ty - 12 && py <= ty + 3).length;
        if (n < best.n) best = { n, x: side ? M.left + pw - 4 : M.left + 4, y: ty, anchor };
      }
    }
    if (best.n === Infinity) best = { n: 0, x: M.left + pw - 4, y: y - 4, anchor: 'end' };
    // a white halo keeps the label readable where a curve still crosses it
    parts.push(`<text x="${best.x}" y="${best.y.toFixed(1)}" text-anchor="${best.anchor}" fill="${c}" stroke="#fff" stroke-width="3" stroke-linejoin="round" paint-order="stroke">${escapeXml(r.label)}</text>`);
  }
  for (const s of o.series) {
    // a path that lifts the pen over non-finite values
    let d = '';
    let pen = false;
    s.values.forEach((v, i) => {
      if (!Number.isFinite(v)) {
        pen = false;
        return;
      }
      d += `${pen ? 'L' : 'M'}${X(o.xs[i]!).toFixed(1)} ${Y(Math.max(v, yLo)).toFixed(1)}`;
      pen = true;
    });
    parts.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="1.5"/>`);
  }
  // legend below the x-axis label (outside the plot, so it never hides a curve), wrapped into rows
  let lx = M.left;
  let ly = M.top + ph + LEGEND_TOP;
  for (const s of o.series) {
    const w = 34 + 6.2 * s.label.length;
    if (lx > M.left && lx + w > M.left + pw) {
      lx = M.left;
      ly += LEGEND_ROW;
    }
    parts.push(`<line x1="${lx.toFixed(0)}" x2="${(lx + 18).toFixed(0)}" y1="${ly}" y2="${ly}" stroke="${s.color}" stroke-width="2"/>`);
    parts.push(`<text x="${(lx + 24).toFixed(0)}" y="${ly}" dominant-baseline="middle">${escapeXml(s.label)}</text>`);
    lx += w;
  }
  parts.push('</svg>');
  return parts.join('');
}

/** Options of {@link heatmapSVG}. */
export interface HeatmapOptions {
  title: string;
  /** `columns[c][r]`: the value of row r in column c (all columns the same length). */
  columns: readonly (readonly number[])[];
  /** x value of each column (e.g. the last step of its bin). */
  xs: readonly number[];
  /** Value drawn white (default 1: an expert at the mean load). */
  center?: number;
  /** Value drawn full red (larger values clamp; default: the data's maximum). */
  max?: number;
  xLabel?: string;
  rowLabel?: string;
  /** What the colour bar measures (written beside it, e.g. 'load / mean'). */
  legendLabel?: string;
  width?: number;
  height?: number;
}

/** Diverging colour: 0 → blue, `center` → white, ≥ `max` → red. */
function divergingColor(v: number, center: number, max: number): string {
  const lerp = (a: readonly number[], b: readonly number[], t: number): string =>
    `rgb(${a.map((x, i) => Math.round(x + (b[i]! - x) * Math.min(1, Math.max(0, t)))).join(',')})`;
  const white = [255, 255, 255];
  return v <= center ? lerp([49, 54, 149], white, v / center) : lerp(white, [165, 0, 38], (v - center) / (max - center));
}

/** A heatmap (rows × columns of cells) with a colour legend, as an `<svg>` element string. */
export function heatmapSVG(o: HeatmapOptions): string {
  const cols = o.columns.length;
  if (cols === 0) throw new InputError(`heatmapSVG '${o.title}': no columns`);
  const rows = o.columns[0]!.length;
  if (o.columns.some((c) => c.length !== rows)) throw new InputError(`heatmapSVG '${o.title}': columns differ in length`);
  if (o.xs.length !== cols) throw new InputError(`heatmapSVG '${o.title}': ${o.xs.length} x values for ${cols} columns`);
  const center = o.center ?? 1;
  const max = Math.max(o.max ?? Math.max(...o.columns.flat().filter(Number.isFinite)), center * 1.0001);
  const W = o.width ?? 640;
  const H = o.height ?? Math.max(160, rows * 12 + 90);
  const m = { left: 62, right: o.legendLabel ? 86 : 70, top: 30, bottom: 44 };
  const pw = W - m.left - m.right;
  const ph = H - m.top - m.bottom;
  const cw = pw / cols;
  const rh = ph / rows;
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11" shape-rendering="crispEdges">`);
  parts.push(`<title>${escapeXml(o.title)}</title>`);
  parts.push(`<text x="${W / 2}" y="16" text-anchor="middle" font-size="13" font-weight="bold" shape-rendering="auto">${escapeXml(o.title)}</text>`);
  o.columns.forEach((col, c) => {
    col.forEach((v, r) => {
      const fill = Number.isFinite(v) ? divergingColor(v, center, max) : '#ccc';
      parts.push(`<rect x="${(m.left + c * cw).toFixed(2)}" y="${(m.top + r * rh).toFixed(2)}" width="${(cw + 0.05).toFixed(2)}" height="${(rh + 0.05).toFixed(2)}" fill="${fill}"/>`);
    });
  });
  parts.push(`<rect x="${m.left}" y="${m.top}" width="${pw}" height="${ph}" fill="none" stroke="#999"/>`);
  const rowStep = Math.max(1, Math.ceil(rows / 16));
  for (let r = 0; r < rows; r += rowStep) {
    parts.push(`<text x="${m.left - 6}" y="${(m.top + (r + 0.5) * rh).toFixed(1)}" text-anchor="end" dominant-baseline="middle">${r}</text>`);
  }
  const xLo = o.xs[0]!;
  const xHi = o.xs[cols - 1]!;
  for (const t of niceTicks(xLo, xHi, 6)) {
    const x = cols === 1 ? m.left + pw / 2 : m.left + cw / 2 + ((t - xLo) / (xHi - xLo)) * (pw - cw);
    parts.push(`<text x="${x.toFixed(1)}" y="${m.top + ph + 16}" text-anchor="middle">${fmtTick(t)}</text>`);
  }
  if (o.xLabel) parts.push(`<text x="${m.left + pw / 2}" y="${H - 8}" text-anchor="middle">${escapeXml(o.xLabel)}</text>`);
  if (o.rowLabel) parts.push(`<text transform="translate(14 ${m.top + ph / 2}) rotate(-90)" text-anchor="middle">${escapeXml(o.rowLabel)}</text>`);
  // legend: a vertical bar from max (top) through center to 0 (bottom)
  const lx = W - m.right + 16;
  const steps = 40;
  for (let i = 0; i < steps; i++) {
    const v = max * (1 - (i + 0.5) / steps);
    parts.push(`<rect x="${lx}" y="${(m.top + (i * ph) / steps).toFixed(2)}" width="12" height="${(ph / steps + 0.05).toFixed(2)}" fill="${divergingColor(v, center, max)}"/>`);
  }
  const legend = (v: number, label: string): void => {
    parts.push(`<text x="${lx + 16}" y="${(m.top + (1 - v / max) * ph).toFixed(1)}" dominant-baseline="middle">${escapeXml(label)}</text>`);
  };
  legend(max, fmtTick(max));
  legend(center, fmtTick(center));
  legend(0, '0');
  if (o.legendLabel) parts.push(`<text transform="translate(${W - 10} ${m.top + ph / 2}) rotate(90)" text-anchor="middle" shape-rendering="auto">${escapeXml(o.legendLabel)}</text>`);
  parts.push('</svg>');
  return parts.join('');
}
