import { percent, svg } from './dom.js';

export interface ChartBin {
  /** What the bin is called on the axis: its edges, or its label. */
  name: string;
  reference: number;
  current: number | null;
}

const WIDTH = 640;
const HEIGHT = 220;
const TOP = 12;
const BOTTOM = 48;
const LEFT = 44;

/**
 * Reference against current on the same bins, as percentages: two bars per bin, each with a
 * <title> giving its number; the whole chart is one image with a name (the table beside it holds
 * the same numbers for those who cannot see it).
 */
export function binChart(name: string, bins: ChartBin[]): SVGElement {
  const top = Math.max(0.01, ...bins.flatMap((b) => [b.reference, b.current ?? 0]));
  const plotHeight = HEIGHT - TOP - BOTTOM;
  const slot = (WIDTH - LEFT) / Math.max(1, bins.length);
  const bar = Math.max(2, slot * 0.36);
  const y = (share: number): number => TOP + plotHeight * (1 - share / top);
  const parts: SVGElement[] = [];
  for (const tick of [0, 0.5, 1]) {
    const at = y(top * tick);
    parts.push(svg('line', { x1: LEFT, x2: WIDTH, y1: at, y2: at, class: 'grid' }));
    parts.push(svg('text', { x: LEFT - 4, y: at + 4, 'text-anchor': 'end', class: 'axis' }, percent(top * tick, 0)));
  }
  bins.forEach((bin, i) => {
    const x = LEFT + i * slot + slot * 0.14;
    const rect = (share: number, offset: number, which: string): SVGElement =>
      svg(
        'rect',
        { x: x + offset, y: y(share), width: bar, height: Math.max(0, TOP + plotHeight - y(share)), class: `bar-${which}` },
        svg('title', {}, `${bin.name}: ${which} ${percent(share)}`),
      );
    parts.push(rect(bin.reference, 0, 'reference'));
    if (bin.current !== null) parts.push(rect(bin.current, bar, 'current'));
    parts.push(svg('text', { x: x + bar, y: HEIGHT - BOTTOM + 16, 'text-anchor': 'middle', class: 'axis' }, bin.name));
  });
  parts.push(svg('rect', { x: LEFT, y: HEIGHT - 18, width: 10, height: 10, class: 'bar-reference' }));
  parts.push(svg('text', { x: LEFT + 14, y: HEIGHT - 9, class: 'axis' }, 'reference'));
  parts.push(svg('rect', { x: LEFT + 100, y: HEIGHT - 18, width: 10, height: 10, class: 'bar-current' }));
  parts.push(svg('text', { x: LEFT + 114, y: HEIGHT - 9, class: 'axis' }, 'current window'));
  return svg(
    'svg',
    {
      viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
      role: 'img',
      'aria-label': `${name}: share of rows per bin, reference against current`,
      class: 'chart',
    },
    ...parts,
  );
}
