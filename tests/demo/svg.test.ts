/** SVG charts: tick placement, escaping, structure of line charts and heatmaps. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { escapeXml, heatmapSVG, lineChartSVG, niceTicks } from '../../src/demo/svg.js';
import { InputError } from '../../src/errors.js';

const count = (s: string, sub: string): number => s.split(sub).length - 1;

describe('niceTicks', () => {
  it('gives evenly spaced round values inside the range', () => {
    expect(niceTicks(0, 10)).toEqual([0, 2, 4, 6, 8, 10]);
    expect(niceTicks(0.1, 0.95)).toEqual([0.2, 0.4, 0.6, 0.8]);
    fc.assert(
      // ranges a chart shows: the span is at least 1e-3 of the offset (so f64 resolves the ticks)
      fc.property(fc.double({ min: -1e6, max: 1e6, noNaN: true }), fc.double({ min: 1e-3, max: 1e3, noNaN: true }), (lo, rel) => {
        const hi = lo + rel * Math.max(1, Math.abs(lo));
        const t = niceTicks(lo, hi);
        expect(t.length).toBeGreaterThanOrEqual(2);
        expect(t.length).toBeLessThanOrEqual(11);
        // ticks are rounded to 15 significant digits and the end is inclusive up to 1e-9 of a step
        const slack = Math.max(1e-14 * Math.max(Math.abs(lo), Math.abs(hi)), 1e-9 * (hi - lo));
        for (const v of t) {
          expect(v).toBeGreaterThanOrEqual(lo - slack);
          expect(v).toBeLessThanOrEqual(hi + slack);
        }
        const step = t[1]! - t[0]!;
        const m = step / 10 ** Math.floor(Math.log10(step));
        // tick difference: 1e-15 relative to |lo| ≤ 1e3·step, so ≤ 1e-12 relative to the step
        expect([1, 2, 5, 10].some((x) => Math.abs(m - x) < 1e-9)).toBe(true);
      }),
      { seed: 3, numRuns: 300 },
    );
  });
});

describe('charts', () => {
  it('escape text', () => {
    expect(escapeXml('a<b & "c">')).toBe('a&lt;b &amp; &quot;c&quot;&gt;');
    const svg = lineChartSVG({ title: '<x>', xs: [1, 2], series: [{ label: 'a&b', values: [1, 2], color: 'red' }] });
    expect(svg).not.toContain('<x>');
    expect(svg).toContain('&lt;x&gt;');
    expect(svg).toContain('a&amp;b');
  });

  it('line chart: one path per series, a gap at non-finite values, reference lines dashed', () => {
    const svg = lineChartSVG({
      title: 't',
      xs: [1, 2, 3, 4],
      series: [
        { label: 'a', values: [3, 2, NaN, 1], color: '#111' },
        { label: 'b', values: [1, 1, 1, 1], color: '#222' },
      ],
      refLines: [{ y: 2.5, label: 'ref' }],
    });
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg.endsWith('</svg>')).toBe(true);
    expect(count(svg, '<path')).toBe(2);
    const a = /<path d="([^"]*)" fill="none" stroke="#111"/.exec(svg)![1]!;
    expect(count(a, 'M')).toBe(2); // pen lifted over the NaN
    expect(count(a, 'L')).toBe(1);
    expect(count(svg, 'stroke-dasharray')).toBe(1);
    expect(() => lineChartSVG({ title: 't', xs: [1], series: [{ label: 'a', values: [1, 2], color: 'red' }] })).toThrow(InputError);
  });

  it('heatmap: one cell per value, white at the centre, red at the max, blue at 0', () => {
    const columns = [
      [0, 1, 4],
      [1, 1, 1],
    ];
    const svg = heatmapSVG({ title: 'h', columns, xs: [10, 20], center: 1, max: 4 });
    const cells = [...svg.matchAll(/<rect x="[\d.]+" y="[\d.]+" width="[\d.]+" height="[\d.]+" fill="(rgb\([^)]*\))"/g)].map((m) => m[1]);
    // 6 cells, then the 40-step legend
    expect(cells.length).toBe(6 + 40);
    expect(cells.slice(0, 6)).toEqual(['rgb(49,54,149)', 'rgb(255,255,255)', 'rgb(165,0,38)', 'rgb(255,255,255)', 'rgb(255,255,255)', 'rgb(255,255,255)']);
    expect(() => heatmapSVG({ title: 'h', columns: [[1], [1, 2]], xs: [1, 2] })).toThrow(InputError);
  });
});
