// A hand-written SVG line chart: one line per series over a shared x axis,
// optional log-scaled y. Enough for "metric vs offered load" plots.
export interface Series {
  name: string;
  points: Array<[number, number]>;
}

const COLORS = [
  '#1f77b4',
  '#ff7f0e',
  '#2ca02c',
  '#d62728',
  '#9467bd',
  '#8c564b',
  '#e377c2',
  '#7f7f7f',
  '#bcbd22',
  '#17becf',
];

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function niceTicks(lo: number, hi: number, n: number): number[] {
  const span = hi - lo || 1;
  const step0 = span / n;
  const mag = Math.pow(10, Math.floor(Math.log10(step0)));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= step0) ?? step0;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9; v += step) out.push(Number(v.toPrecision(10)));
  return out;
}

function fmt(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1000) return `${Math.round(v / 100) / 10}k`;
  if (a >= 10) return String(Math.round(v));
  if (a >= 1) return String(Math.round(v * 10) / 10);
  return String(Number(v.toPrecision(2)));
}

export function lineChart(opts: {
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  logY?: boolean;
}): string {
  const W = 720;
  const H = 420;
  const L = 70;
  const R = 190;
  const T = 40;
  const B = 50;
  const pts = opts.series
    .flatMap((s) => s.points)
    .filter(([, y]) => Number.isFinite(y) && (!opts.logY || y > 0));
  const xs = pts.map(([x]) => x);
  const ys = pts.map(([, y]) => y);
  const xMin = Math.min(0, ...xs);
  const xMax = Math.max(1, ...xs);
  const ty = (y: number) => (opts.logY ? Math.log10(y) : y);
  let yMin = opts.logY ? Math.floor(Math.log10(Math.max(1e-3, Math.min(...ys)))) : 0;
  let yMax = opts.logY ? Math.ceil(Math.log10(Math.max(...ys, 1e-3))) : Math.max(...ys, 1e-9) * 1.05;
  if (yMax <= yMin) yMax = yMin + 1;
  if (!Number.isFinite(yMin)) yMin = 0;
  const px = (x: number) => L + ((x - xMin) / (xMax - xMin)) * (W - L - R);
  const py = (y: number) => T + (1 - (ty(y) - yMin) / (yMax - yMin)) * (H - T - B);
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
  );
  parts.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  parts.push(
    `<text x="${W / 2 - R / 2}" y="22" text-anchor="middle" font-size="14">${esc(opts.title)}</text>`,
  );
  // Axes and grid.
  for (const x of niceTicks(xMin, xMax, 8)) {
    parts.push(`<line x1="${px(x)}" y1="${T}" x2="${px(x)}" y2="${H - B}" stroke="#eee"/>`);
    parts.push(`<text x="${px(x)}" y="${H - B + 16}" text-anchor="middle">${fmt(x)}</text>`);
  }
  const yTicks = opts.logY
    ? Array.from({ length: yMax - yMin + 1 }, (_, i) => Math.pow(10, yMin + i))
    : niceTicks(0, yMax, 6);
  for (const y of yTicks) {
    parts.push(`<line x1="${L}" y1="${py(y)}" x2="${W - R}" y2="${py(y)}" stroke="#eee"/>`);
    parts.push(`<text x="${L - 6}" y="${py(y) + 4}" text-anchor="end">${fmt(y)}</text>`);
  }
  parts.push(`<line x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}" stroke="#333"/>`);
  parts.push(`<line x1="${L}" y1="${T}" x2="${L}" y2="${H - B}" stroke="#333"/>`);
  parts.push(`<text x="${(L + W - R) / 2}" y="${H - 12}" text-anchor="middle">${esc(opts.xLabel)}</text>`);
  parts.push(
    `<text x="16" y="${(T + H - B) / 2}" text-anchor="middle" transform="rotate(-90 16 ${(T + H - B) / 2})">${esc(opts.yLabel)}</text>`,
  );
  opts.series.forEach((s, i) => {
    const c = COLORS[i % COLORS.length];
    const ok = s.points.filter(([, y]) => Number.isFinite(y) && (!opts.logY || y > 0));
    if (ok.length > 0) {
      const d = ok
        .map(([x, y], j) => `${j === 0 ? 'M' : 'L'}${px(x).toFixed(1)},${py(y).toFixed(1)}`)
        .join(' ');
      parts.push(`<path d="${d}" fill="none" stroke="${c}" stroke-width="2"/>`);
      for (const [x, y] of ok)
        parts.push(`<circle cx="${px(x).toFixed(1)}" cy="${py(y).toFixed(1)}" r="3" fill="${c}"/>`);
    }
    const ly = T + 10 + i * 18;
    parts.push(
      `<line x1="${W - R + 12}" y1="${ly}" x2="${W - R + 32}" y2="${ly}" stroke="${c}" stroke-width="2"/>`,
    );
    parts.push(`<text x="${W - R + 38}" y="${ly + 4}">${esc(s.name)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}
