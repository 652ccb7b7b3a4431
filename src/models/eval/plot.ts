// The evaluation picture: one horizontal bar per model (primary metric) with its 95 % interval as a whisker.
import { SERIES_COLORS, drawLine, drawText, fillRect, type Color } from '../../core/draw.js';
import { encodePng, type RgbImage } from '../../core/image.js';
import { resultName } from './run.js';
import type { EvalResult } from './types.js';

const BAR_COLORS = SERIES_COLORS;
const INK: Color = [20, 20, 20];
const GRID: Color = [220, 220, 220];

const fmt = (v: number): string => (Number.isFinite(v) ? (Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(1)) : '-');

/** PNG bytes: bars of each result's primary metric with 95 % whiskers, value, interval and ms per face as text. */
export async function renderEvalPlot(results: readonly EvalResult[], title: string): Promise<Uint8Array> {
  const rowH = 44;
  const left = 260;
  const right = 330;
  const plotW = 520;
  const top = 70;
  const width = left + plotW + right;
  const height = top + rowH * Math.max(1, results.length) + 50;
  const img: RgbImage = { data: new Uint8Array(width * height * 3).fill(255), width, height };
  const metric = results[0]?.metrics[0];
  const highs = results.flatMap((r) => [r.metrics[0]?.value ?? 0, r.metrics[0]?.ci95?.[1] ?? 0]).filter(Number.isFinite);
  const max = metric?.unit === '%' && Math.max(...highs) <= 100 && Math.max(...highs) > 40 ? 100 : Math.max(1e-9, ...highs) * 1.1;
  const x = (v: number): number => left + (Math.max(0, v) / max) * plotW;
  drawText(img, 16, 16, title, INK, 3, null);
  drawText(img, 16, 44, `${metric?.name.replace(/_/g, ' ') ?? ''} ${metric?.unit ?? ''}, 95% CI whiskers, ms per face`, INK, 2, null);
  for (let k = 0; k <= 4; k++) {
    const gx = left + (k / 4) * plotW;
    drawLine(img, gx, top - 6, gx, top + rowH * results.length, GRID, 1);
    drawText(img, gx - 8, top + rowH * results.length + 10, fmt((k / 4) * max), INK, 2, null);
  }
  results.forEach((r, i) => {
    const m = r.metrics[0]!;
    const y = top + i * rowH;
    const color = BAR_COLORS[i % BAR_COLORS.length]!;
    drawText(img, 16, y + 14, resultName(r).replace(/_/g, ' '), INK, 2, null);
    fillRect(img, { x: left, y: y + 8, width: Math.max(1, x(m.value) - left), height: rowH - 16 }, color);
    if (m.ci95 && m.ci95.every(Number.isFinite)) {
      const [lo, hi] = m.ci95;
      drawLine(img, x(lo), y + rowH / 2, x(hi), y + rowH / 2, INK, 3);
      drawLine(img, x(lo), y + 12, x(lo), y + rowH - 12, INK, 3);
      drawLine(img, x(hi), y + 12, x(hi), y + rowH - 12, INK, 3);
    }
    const ci = m.ci95 ? ` ${fmt(m.ci95[0])}-${fmt(m.ci95[1])}` : '';
    drawText(img, left + plotW + 12, y + 14, `${fmt(m.value)}${ci}  ${fmt(r.msPerFace)} MS`, INK, 2, null);
  });
  return encodePng(img);
}
