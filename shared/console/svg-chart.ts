/**
 * Small charts for the console's pages, drawn on the server as inline SVG (docs/console.md "Charts"):
 * a sparkline and grouped bars. No chart library and no script — the console has no front-end build,
 * its Content-Security-Policy allows no script on these pages and nothing from elsewhere, and a
 * hospital's old PC renders a few hundred bytes of SVG per chart at once. Every label is escaped;
 * numbers are formatted here, so no value reaches the markup unescaped.
 */

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
const fix = (x: number) => (Math.round(x * 10) / 10).toString();

export interface SparkOptions {
  width?: number;
  height?: number;
  /** Accessible name (title) of the chart. */
  label: string;
  color?: string;
  /** Fixed top of the scale (a share: 1); default the largest value. */
  max?: number;
}

/**
 * A line over the values (null: no data that day, a gap; a lone day between gaps a dot), the last
 * point marked. An all-zero or empty series draws a flat line at the bottom.
 */
export function sparkline(values: Array<number | null>, o: SparkOptions): string {
  const w = o.width ?? 120;
  const h = o.height ?? 24;
  const pad = 2;
  const known = values.filter((v): v is number => v !== null);
  const max = o.max ?? Math.max(1, ...known);
  const x = (i: number) => pad + (values.length <= 1 ? 0 : (i * (w - 2 * pad)) / (values.length - 1));
  const y = (v: number) => h - pad - (Math.min(v, max) / max) * (h - 2 * pad);
  const segments: string[] = [];
  let current: string[] = [];
  values.forEach((v, i) => {
    if (v === null) {
      if (current.length) segments.push(current.join(' '));
      current = [];
    } else current.push(`${fix(x(i))},${fix(y(v))}`);
  });
  if (current.length) segments.push(current.join(' '));
  const color = o.color ?? '#12467a';
  // A day between two gaps has no line to draw: a dot shows it.
  const lines = segments
    .map((pts) => {
      if (pts.includes(' ')) return `<polyline fill="none" stroke="${color}" stroke-width="1.5" points="${pts}"/>`;
      const [cx, cy] = pts.split(',');
      return `<circle cx="${cx}" cy="${cy}" r="1.5" fill="${color}"/>`;
    })
    .join('');
  const lastI = values.length - 1;
  const last = lastI >= 0 && values[lastI] !== null ? `<circle cx="${fix(x(lastI))}" cy="${fix(y(values[lastI]!))}" r="2" fill="${color}"/>` : '';
  return `<svg class="chart" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" role="img" aria-label="${esc(o.label)}"><title>${esc(o.label)}</title>${lines}${last}</svg>`;
}

export interface BarSeries {
  name: string;
  color: string;
  values: number[];
}

export interface BarOptions {
  width?: number;
  height?: number;
  label: string;
  /** One label per position (days), shown for the first, middle and last. */
  labels: string[];
}

/** Grouped bars, one group per position, with a legend and the scale's top value. */
export function bars(series: BarSeries[], o: BarOptions): string {
  const w = o.width ?? 640;
  const h = o.height ?? 140;
  const top = 14;
  const bottom = 16;
  const left = 4;
  const count = Math.max(1, ...series.map((s) => s.values.length));
  const max = Math.max(1, ...series.flatMap((s) => s.values));
  const groupW = (w - left * 2) / count;
  const barW = Math.max(1, (groupW - 2) / Math.max(1, series.length));
  const plotH = h - top - bottom;
  const rects: string[] = [];
  series.forEach((s, si) => {
    s.values.forEach((v, i) => {
      if (v <= 0) return;
      const bh = Math.max(1, (v / max) * plotH);
      rects.push(
        `<rect x="${fix(left + i * groupW + 1 + si * barW)}" y="${fix(top + plotH - bh)}" width="${fix(barW)}" height="${fix(bh)}" fill="${s.color}"><title>${esc(`${o.labels[i] ?? ''} ${s.name} ${v}`)}</title></rect>`,
      );
    });
  });
  const ticks = [0, Math.floor((count - 1) / 2), count - 1]
    .filter((i, k, a) => a.indexOf(i) === k && o.labels[i] !== undefined)
    .map((i) => {
      const anchor = i === 0 ? 'start' : i === count - 1 ? 'end' : 'middle';
      const tx = i === 0 ? left : i === count - 1 ? w - left : left + (i + 0.5) * groupW;
      return `<text x="${fix(tx)}" y="${h - 3}" font-size="10" text-anchor="${anchor}" fill="#6b7785">${esc(o.labels[i]!)}</text>`;
    });
  let lx = left;
  const legend = series.map((s) => {
    const item = `<rect x="${fix(lx)}" y="2" width="8" height="8" fill="${s.color}"/><text x="${fix(lx + 11)}" y="10" font-size="10" fill="#1f2933">${esc(s.name)}</text>`;
    lx += 16 + s.name.length * 11;
    return item;
  });
  const scale = `<text x="${w - left}" y="10" font-size="10" text-anchor="end" fill="#6b7785">最大 ${max}</text>`;
  const axis = `<line x1="${left}" y1="${top + plotH}" x2="${w - left}" y2="${top + plotH}" stroke="#c5ced8" stroke-width="1"/>`;
  return `<svg class="chart" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" role="img" aria-label="${esc(o.label)}"><title>${esc(o.label)}</title>${legend.join('')}${scale}${axis}${rects.join('')}${ticks.join('')}</svg>`;
}
