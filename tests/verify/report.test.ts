import { describe, expect, it } from 'vitest';
import { compareTraces, type ComparableTensor } from '../../src/verify/compare.js';
import { comparisonToHTML, comparisonToJSON, comparisonToMarkdown, comparisonToText, reportFormatFromPath } from '../../src/verify/report.js';

const f64 = (data: number[]): ComparableTensor => ({ dtype: 'F64', shape: [data.length], data: Float64Array.from(data) });
const lib = new Map([
  ['model.embed_tokens:out', f64([1, 2])],
  ['model.layers.0.self_attn:attn_probs', f64([0.5, 0.5])],
  ['model.layers.0<b>:out', f64([Infinity, 2])],
]);
const ref = new Map([
  ['model.embed_tokens:out', f64([1, 2])],
  ['model.layers.0.self_attn:attn_probs', f64([0.25, 0.75])],
  ['model.layers.0<b>:out', f64([1, 2])],
  ['not.ours', f64([1])],
]);
const result = compareTraces(lib, ref);

describe('reports', () => {
  it('JSON parses back, keeps execution order, writes non-finite numbers as strings', () => {
    const j = JSON.parse(comparisonToJSON(result));
    expect(j.format).toBe('dsv3-verify-report');
    expect(j.firstDivergent).toBe('model.layers.0.self_attn:attn_probs');
    expect(j.results.map((r: { name: string }) => r.name)).toEqual([...lib.keys(), 'not.ours']);
    expect(j.results[2].worstValue).toBe('Infinity');
    expect(j.missingInLibrary).toEqual(['not.ours']);
  });

  it('Markdown names the first divergent tensor, its reasons, and marks its row', () => {
    const md = comparisonToMarkdown(result);
    expect(md).toContain('First divergent tensor: model.layers.0.self_attn:attn_probs');
    expect(md).toMatch(/\| 2 \| model\.layers\.0\.self_attn:attn_probs \| \*\*FAIL \(first\)\*\* \|/);
    expect(md).toContain('inf/nan positions differ at 1 element(s)');
    expect(md).toContain('not produced');
  });

  it('HTML is self-contained (no external assets, no scripts) and escapes names', () => {
    const html = comparisonToHTML(result);
    expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
    expect(html).not.toMatch(/<script|<link|src=|href=|@import|url\(/i);
    expect(html).toContain('model.layers.0&lt;b&gt;:out');
    expect(html).not.toContain('model.layers.0<b>');
    expect(html).toContain('class="fail first"');
  });

  it('text summary lists failures then the verdict; passing runs say so', () => {
    expect(comparisonToText(result)).toMatch(/^FAIL model\.layers\.0\.self_attn:attn_probs: /);
    const ok = compareTraces(new Map([['a', f64([1])]]), new Map([['a', f64([1])]]));
    expect(comparisonToText(ok)).toMatch(/^All 1 compared tensors pass\./);
  });

  it('picks the format from the extension', () => {
    expect(reportFormatFromPath('r.json')).toBe('json');
    expect(reportFormatFromPath('dir/r.MD')).toBe('markdown');
    expect(reportFormatFromPath('r.html')).toBe('html');
    expect(reportFormatFromPath('r.txt')).toBeNull();
  });
});
