// Grouped horizontal bar chart PNG (pure JS raster from src/train/plots.ts) for benchmark results.
import { PLOT_COLORS, Raster, niceTicks, textWidth, writePng } from '../src/train/plots.js';

export interface BarPanel {
  title: string;
  unit: string;
  /** One group per row label; each group has one bar per series. */
  series: string[];
  rows: { label: string; values: number[] }[];
}

const AXIS: [number, number, number] = [60, 60, 60];
const GRID: [number, number, number] = [225, 225, 225];
const BLACK: [number, number, number] = [0, 0, 0];

/** Panels stacked vertically; each is a horizontal grouped bar chart with value labels. */
export async function writeBarChart(path: string, title: string, panels: readonly BarPanel[]): Promise<void> {
  const width = 1100;
  const labelW = Math.max(...panels.flatMap((p) => p.rows.map((r) => textWidth(r.label, 2)))) + 30;
  const barH = 18;
  const panelHeights = panels.map((p) => 92 + p.rows.length * (p.series.length * barH + 16) + 30);
  const height = 50 + panelHeights.reduce((a, b) => a + b, 0);
  const img = new Raster(width, height);
  img.text(width / 2, 14, title, BLACK, 2, 'center-top');
  let top = 50;
  panels.forEach((panel, pi) => {
    const plotX = labelW;
    const plotW = width - labelW - 140;
    const max = Math.max(1e-9, ...panel.rows.flatMap((r) => r.values.filter(Number.isFinite)));
    const ticks = niceTicks(0, max, 6);
    const x = (v: number): number => plotX + (v / ticks.max) * plotW;
    img.text(plotX, top, `${panel.title} (${panel.unit})`, BLACK, 2);
    // Legend, on its own line under the title: it does not run out of the picture with long titles or many series.
    let lx = plotX;
    panel.series.forEach((s, si) => {
      img.fillRect(lx, top + 24, 12, 12, PLOT_COLORS[si % PLOT_COLORS.length]!);
      img.text(lx + 18, top + 24, s, AXIS, 2);
      lx += textWidth(s, 2) + 44;
    });
    const plotTop = top + 56;
    const plotH = panel.rows.length * (panel.series.length * barH + 16);
    for (const t of ticks.ticks) {
      img.line(x(t), plotTop, x(t), plotTop + plotH, GRID);
      img.text(x(t), plotTop + plotH + 6, Number.isInteger(t) ? String(t) : t.toFixed(2), AXIS, 1, 'center-top');
    }
    img.line(plotX, plotTop, plotX, plotTop + plotH, AXIS, 2);
    panel.rows.forEach((row, ri) => {
      const y0 = plotTop + 8 + ri * (panel.series.length * barH + 16);
      img.text(plotX - 10, y0 + (panel.series.length * barH) / 2, row.label, BLACK, 2, 'right-middle');
      row.values.forEach((v, si) => {
        if (!Number.isFinite(v)) return;
        const y = y0 + si * barH;
        img.fillRect(plotX + 1, y, Math.max(1, x(v) - plotX), barH - 3, PLOT_COLORS[si % PLOT_COLORS.length]!);
        img.text(x(v) + 6, y + (barH - 3) / 2, v >= 100 ? v.toFixed(0) : v.toFixed(2), AXIS, 2, 'left-middle');
      });
    });
    top += panelHeights[pi]!;
  });
  await writePng(path, img.toPng());
}
