// PNG charts decoded back (size, series colours present) and exact t-SNE separating two Gaussian clusters.
import pngjs from 'pngjs';
import { describe, expect, it } from 'vitest';
import { gaussian, mulberry32 } from '../src/train/datasets/random.js';
import { niceTicks, PLOT_COLORS, Raster, renderLineChart, renderScatterPlot, type Rgb } from '../src/train/plots.js';
import { nearestNeighbourPurity, tsne } from '../src/train/tsne.js';

const { PNG } = pngjs;

function countColour(png: { data: Buffer }, [r, g, b]: Rgb): number {
  let n = 0;
  for (let i = 0; i < png.data.length; i += 4) if (png.data[i] === r && png.data[i + 1] === g && png.data[i + 2] === b) n++;
  return n;
}

describe('line chart', () => {
  it('renders a PNG of the requested size with each series colour, axes text and a legend', () => {
    const bytes = renderLineChart({
      title: 'loss per epoch',
      xLabel: 'epoch',
      yLabel: 'loss',
      width: 640,
      height: 400,
      series: [
        { name: 'train', y: [2, 1.5, 1.1, 0.9, 0.8] },
        { name: 'val', y: [2.1, 1.7, 1.4, Number.NaN, 1.3] },
        { name: 'custom', y: [1, 1, 1, 1, 1], color: [1, 2, 3] },
      ],
    });
    expect(bytes.subarray(1, 4).toString('latin1')).toBe('PNG');
    const png = PNG.sync.read(bytes);
    expect([png.width, png.height]).toEqual([640, 400]);
    expect(countColour(png, PLOT_COLORS[0]!)).toBeGreaterThan(200);
    expect(countColour(png, PLOT_COLORS[1]!)).toBeGreaterThan(200);
    expect(countColour(png, [1, 2, 3])).toBeGreaterThan(200);
    expect(countColour(png, PLOT_COLORS[2]!)).toBe(0); // third series took its own colour
    expect(countColour(png, [0, 0, 0])).toBeGreaterThan(100); // title, labels and legend text
  });

  it('rejects a chart without data', () => {
    expect(() => renderLineChart({ series: [] })).toThrow(/at least one series/);
    expect(() => renderLineChart({ series: [{ name: 'a', y: [Number.NaN] }] })).toThrow(/no finite/);
  });
});

describe('scatter plot', () => {
  it('draws each group in its colour', () => {
    const png = PNG.sync.read(
      renderScatterPlot({
        title: 't-SNE',
        width: 500,
        height: 400,
        groups: [
          {
            name: 'canonical',
            points: [
              [0, 0],
              [1, 1],
              [0.5, 0.2],
            ],
          },
          {
            name: 'knowledge',
            points: [
              [5, 5],
              [6, 5.5],
            ],
          },
        ],
      }),
    );
    expect([png.width, png.height]).toEqual([500, 400]);
    expect(countColour(png, PLOT_COLORS[0]!)).toBeGreaterThan(3 * 30);
    expect(countColour(png, PLOT_COLORS[1]!)).toBeGreaterThan(2 * 30);
  });
});

describe('raster and ticks', () => {
  it('round ticks cover the range', () => {
    expect(niceTicks(0.13, 2.9, 6).ticks).toEqual([0, 0.5, 1, 1.5, 2, 2.5, 3]);
    expect(niceTicks(5, 5).ticks.length).toBeGreaterThan(1);
  });

  it('text draws glyph pixels; unknown characters fall back to "?"', () => {
    const r = new Raster(40, 12);
    r.text(1, 1, 'A1\u2603', [0, 0, 0]);
    expect(countColour({ data: r.data }, [0, 0, 0])).toBeGreaterThan(20);
  });
});

describe('t-SNE', () => {
  const g = gaussian(mulberry32(11));
  const points: number[][] = [];
  const labels: number[] = [];
  for (let i = 0; i < 160; i++) {
    const c = i % 2;
    points.push(Array.from({ length: 10 }, () => g() + (c ? 6 : 0)));
    labels.push(c);
  }

  it('separates two well-separated Gaussian clusters and is reproducible for a seed', () => {
    const a = tsne(points, { seed: 3, iterations: 400 });
    expect(a.embedding).toHaveLength(160);
    expect(a.embedding[0]).toHaveLength(2);
    expect(Number.isFinite(a.kl)).toBe(true);
    expect(nearestNeighbourPurity(a.embedding, labels)).toBeGreaterThan(0.9);
    const b = tsne(points, { seed: 3, iterations: 400 });
    expect(b.embedding).toEqual(a.embedding);
  });

  it('lowers the perplexity for small inputs and rejects too few points', () => {
    expect(tsne(points.slice(0, 10), { iterations: 50 }).perplexity).toBe(3);
    expect(() => tsne(points.slice(0, 3))).toThrow(/at least 4/);
  });
});
