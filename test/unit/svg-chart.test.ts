// The console's inline SVG charts (shared/console/svg-chart.ts; docs/console.md "Charts"): what
// they draw for values, gaps and an empty series, and that no label reaches the markup unescaped.
import { describe, expect, it } from 'vitest';
import { bars, sparkline } from '../../shared/console/svg-chart.js';

describe('sparkline', () => {
  it('draws one line per run of known values, gaps for null, a lone day as a dot, the last point marked, scaled to the largest', () => {
    const svg = sparkline([0, 2, null, 4], { label: '接收', width: 32, height: 12 });
    expect(svg).toMatch(/^<svg class="chart" width="32" height="12" viewBox="0 0 32 12" role="img" aria-label="接收"><title>接收<\/title>/);
    expect(svg.match(/<polyline/g)).toHaveLength(1);
    // x from 2 to 30 over 4 points; y from 10 (0) to 2 (the largest, 4).
    expect(svg).toContain('points="2,10 11.3,6"');
    // The 4 after the gap has no neighbour: a dot, and the last point's mark.
    expect(svg).toContain('<circle cx="30" cy="2" r="1.5"');
    expect(svg).toContain('<circle cx="30" cy="2" r="2"');
  });

  it('a series without data is a flat line or nothing, never a made-up value; a share is scaled to 1', () => {
    expect(sparkline([0, 0], { label: 'x', width: 10, height: 10 })).toContain('points="2,8 8,8"');
    expect(sparkline([null, null], { label: 'x' })).not.toMatch(/<polyline|<circle/);
    expect(sparkline([0.5], { label: 'x', width: 10, height: 10, max: 1 })).toContain('<circle cx="2" cy="5" r="1.5"');
  });

  it('escapes its label', () => {
    const svg = sparkline([1], { label: '<script>"&\'' });
    expect(svg).not.toContain('<script>');
    expect(svg).toContain('aria-label="&lt;script&gt;&quot;&amp;&#39;"');
  });
});

describe('bars', () => {
  it('draws a bar per positive value with its day, series and value as its title, and the scale', () => {
    const svg = bars(
      [
        { name: '接收', color: '#123456', values: [0, 3, 6] },
        { name: '拒收', color: '#654321', values: [1, 0, 0] },
      ],
      { label: '趋势', labels: ['11-01', '11-02', '11-03'], width: 100, height: 50 },
    );
    expect(svg.match(/<rect [^>]*><title>/g)).toHaveLength(3);
    expect(svg).toContain('<title>11-02 接收 3</title>');
    expect(svg).toContain('<title>11-03 接收 6</title>');
    expect(svg).toContain('<title>11-01 拒收 1</title>');
    expect(svg).toContain('最大 6');
    expect(svg).toContain('>11-01</text>');
    expect(svg).toContain('>11-03</text>');
  });

  it('escapes series names and labels', () => {
    const svg = bars([{ name: '<b>', color: '#000', values: [1] }], { label: 'x', labels: ['<i>'] });
    expect(svg).not.toMatch(/<b>|<i>/);
    expect(svg).toContain('&lt;b&gt;');
  });
});
