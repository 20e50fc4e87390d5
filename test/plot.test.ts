import { describe, expect, it } from 'vitest';
import { lineChartSvg } from '../offline/report/plot';

describe('lineChartSvg', () => {
  it('renders an SVG naming every series and the axes', async () => {
    const svg = await lineChartSvg({
      title: 'Decoder training loss',
      xLabel: 'epoch',
      yLabel: 'cross-entropy',
      series: [
        { name: 'train-loss', points: [[1, 4.1], [2, 3.2], [3, 2.9]] },
        { name: 'dev-loss', points: [[1, 4.3], [2, 3.6], [3, 3.4]] },
      ],
    });
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    for (const s of ['train-loss', 'dev-loss', 'Decoder training loss', 'epoch', 'cross-entropy']) expect(svg).toContain(s);
  });
});
