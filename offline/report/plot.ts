import { parse, View } from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';

export interface LineChartSpec {
  title: string;
  xLabel: string;
  yLabel: string;
  series: { name: string; points: [number, number][] }[];
}

/** A line chart as a standalone SVG string (vega-lite → vega → SVG; headless, no canvas). */
export async function lineChartSvg(spec: LineChartSpec): Promise<string> {
  const values = spec.series.flatMap((s) => s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y)).map(([x, y]) => ({ series: s.name, x, y })));
  const vl: TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: spec.title,
    width: 560,
    height: 320,
    background: 'white',
    data: { values },
    mark: { type: 'line', point: true },
    encoding: {
      x: { field: 'x', type: 'quantitative', title: spec.xLabel, scale: { zero: false } },
      y: { field: 'y', type: 'quantitative', title: spec.yLabel, scale: { zero: false } },
      color: { field: 'series', type: 'nominal', title: null, sort: spec.series.map((s) => s.name) },
    },
  };
  const view = new View(parse(compile(vl).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Per-epoch dev scores (greedy CIDEr-D, BLEU-4, and BLEU-1 when recorded): one chart for every training stage. */
export function devMetricsSvg(history: { epoch: number; dev: { ciderD: number; bleu4: number; bleu1?: number } }[]): Promise<string> {
  const series = [
    { name: 'CIDEr-D', points: history.map((h): [number, number] => [h.epoch, h.dev.ciderD]) },
    { name: 'BLEU-4', points: history.map((h): [number, number] => [h.epoch, h.dev.bleu4]) },
  ];
  if (history.some((h) => h.dev.bleu1 !== undefined)) series.push({ name: 'BLEU-1', points: history.map((h): [number, number] => [h.epoch, h.dev.bleu1 ?? NaN]) });
  return lineChartSvg({ title: 'Dev metrics (greedy)', xLabel: 'epoch', yLabel: 'score', series });
}
