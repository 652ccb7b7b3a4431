// PNG charts in pure JS (pngjs raster, built-in 5x7 bitmap font): training curves as line charts and t-SNE scatter plots.
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import pngjs from 'pngjs';
import { SERIES_COLORS } from '../core/draw.js';
import { InvalidInputError } from '../core/errors.js';

const { PNG } = pngjs;

export type Rgb = [r: number, g: number, b: number];

/** Series colours in order (Tableau 10), from core/draw.ts. */
export const PLOT_COLORS = SERIES_COLORS as readonly Rgb[];

const WHITE: Rgb = [255, 255, 255];
const BLACK: Rgb = [0, 0, 0];
const AXIS: Rgb = [60, 60, 60];
const GRID: Rgb = [225, 225, 225];

// ---------------------------------------------------------------- font

/** 5x7 glyphs, one number per row, bit 4 = leftmost pixel (HD44780-style); g j p q y have two more rows below the baseline. */
const GLYPHS: Record<string, number[]> = {
  '0': [0x0e, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0e],
  '1': [0x04, 0x0c, 0x04, 0x04, 0x04, 0x04, 0x0e],
  '2': [0x0e, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1f],
  '3': [0x1f, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0e],
  '4': [0x02, 0x06, 0x0a, 0x12, 0x1f, 0x02, 0x02],
  '5': [0x1f, 0x10, 0x1e, 0x01, 0x01, 0x11, 0x0e],
  '6': [0x06, 0x08, 0x10, 0x1e, 0x11, 0x11, 0x0e],
  '7': [0x1f, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
  '8': [0x0e, 0x11, 0x11, 0x0e, 0x11, 0x11, 0x0e],
  '9': [0x0e, 0x11, 0x11, 0x0f, 0x01, 0x02, 0x0c],
  A: [0x0e, 0x11, 0x11, 0x11, 0x1f, 0x11, 0x11],
  B: [0x1e, 0x11, 0x11, 0x1e, 0x11, 0x11, 0x1e],
  C: [0x0e, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0e],
  D: [0x1c, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1c],
  E: [0x1f, 0x10, 0x10, 0x1e, 0x10, 0x10, 0x1f],
  F: [0x1f, 0x10, 0x10, 0x1e, 0x10, 0x10, 0x10],
  G: [0x0e, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0f],
  H: [0x11, 0x11, 0x11, 0x1f, 0x11, 0x11, 0x11],
  I: [0x0e, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0e],
  J: [0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0c],
  K: [0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11],
  L: [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1f],
  M: [0x11, 0x1b, 0x15, 0x15, 0x11, 0x11, 0x11],
  N: [0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11],
  O: [0x0e, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0e],
  P: [0x1e, 0x11, 0x11, 0x1e, 0x10, 0x10, 0x10],
  Q: [0x0e, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0d],
  R: [0x1e, 0x11, 0x11, 0x1e, 0x14, 0x12, 0x11],
  S: [0x0f, 0x10, 0x10, 0x0e, 0x01, 0x01, 0x1e],
  T: [0x1f, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
  U: [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0e],
  V: [0x11, 0x11, 0x11, 0x11, 0x11, 0x0a, 0x04],
  W: [0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0a],
  X: [0x11, 0x11, 0x0a, 0x04, 0x0a, 0x11, 0x11],
  Y: [0x11, 0x11, 0x11, 0x0a, 0x04, 0x04, 0x04],
  Z: [0x1f, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1f],
  a: [0, 0, 0x0e, 0x01, 0x0f, 0x11, 0x0f],
  b: [0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x1e],
  c: [0, 0, 0x0e, 0x10, 0x10, 0x11, 0x0e],
  d: [0x01, 0x01, 0x0d, 0x13, 0x11, 0x11, 0x0f],
  e: [0, 0, 0x0e, 0x11, 0x1f, 0x10, 0x0e],
  f: [0x06, 0x09, 0x08, 0x1c, 0x08, 0x08, 0x08],
  g: [0, 0, 0x0f, 0x11, 0x11, 0x11, 0x0f, 0x01, 0x0e],
  h: [0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x11],
  i: [0x04, 0, 0x0c, 0x04, 0x04, 0x04, 0x0e],
  j: [0x02, 0, 0x06, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0c],
  k: [0x10, 0x10, 0x12, 0x14, 0x18, 0x14, 0x12],
  l: [0x0c, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0e],
  m: [0, 0, 0x1a, 0x15, 0x15, 0x11, 0x11],
  n: [0, 0, 0x16, 0x19, 0x11, 0x11, 0x11],
  o: [0, 0, 0x0e, 0x11, 0x11, 0x11, 0x0e],
  p: [0, 0, 0x1e, 0x11, 0x11, 0x11, 0x1e, 0x10, 0x10],
  q: [0, 0, 0x0f, 0x11, 0x11, 0x11, 0x0f, 0x01, 0x01],
  r: [0, 0, 0x16, 0x19, 0x10, 0x10, 0x10],
  s: [0, 0, 0x0e, 0x10, 0x0e, 0x01, 0x1e],
  t: [0x08, 0x08, 0x1c, 0x08, 0x08, 0x09, 0x06],
  u: [0, 0, 0x11, 0x11, 0x11, 0x13, 0x0d],
  v: [0, 0, 0x11, 0x11, 0x11, 0x0a, 0x04],
  w: [0, 0, 0x11, 0x11, 0x15, 0x15, 0x0a],
  x: [0, 0, 0x11, 0x0a, 0x04, 0x0a, 0x11],
  y: [0, 0, 0x11, 0x11, 0x11, 0x11, 0x0f, 0x01, 0x0e],
  z: [0, 0, 0x1f, 0x02, 0x04, 0x08, 0x1f],
  ' ': [0, 0, 0, 0, 0, 0, 0],
  '.': [0, 0, 0, 0, 0, 0x0c, 0x0c],
  ',': [0, 0, 0, 0, 0x0c, 0x04, 0x08],
  '-': [0, 0, 0, 0x1f, 0, 0, 0],
  '+': [0, 0x04, 0x04, 0x1f, 0x04, 0x04, 0],
  ':': [0, 0x0c, 0x0c, 0, 0x0c, 0x0c, 0],
  '/': [0, 0x01, 0x02, 0x04, 0x08, 0x10, 0],
  '(': [0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02],
  ')': [0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08],
  '%': [0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03],
  '=': [0, 0, 0x1f, 0, 0x1f, 0, 0],
  _: [0, 0, 0, 0, 0, 0, 0x1f],
  "'": [0x0c, 0x04, 0x08, 0, 0, 0, 0],
  '@': [0x0e, 0x11, 0x01, 0x0d, 0x15, 0x15, 0x0e],
  '#': [0x0a, 0x0a, 0x1f, 0x0a, 0x1f, 0x0a, 0x0a],
  '<': [0x02, 0x04, 0x08, 0x10, 0x08, 0x04, 0x02],
  '>': [0x08, 0x04, 0x02, 0x01, 0x02, 0x04, 0x08],
  '[': [0x0e, 0x08, 0x08, 0x08, 0x08, 0x08, 0x0e],
  ']': [0x0e, 0x02, 0x02, 0x02, 0x02, 0x02, 0x0e],
  '*': [0, 0x04, 0x15, 0x0e, 0x15, 0x04, 0],
  '!': [0x04, 0x04, 0x04, 0x04, 0, 0, 0x04],
  '?': [0x0e, 0x11, 0x01, 0x02, 0x04, 0, 0x04],
  '&': [0x0c, 0x12, 0x14, 0x08, 0x15, 0x12, 0x0d],
  '"': [0x0a, 0x0a, 0x0a, 0, 0, 0, 0],
  '^': [0x04, 0x0a, 0x11, 0, 0, 0, 0],
  '|': [0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
  '~': [0, 0, 0x08, 0x15, 0x02, 0, 0],
};
const GLYPH_W = 5;
const GLYPH_H = 7;

// ---------------------------------------------------------------- raster

/** An RGBA image with the few drawing operations charts need; no anti-aliasing, so colours stay exact. */
export class Raster {
  readonly data: Buffer;
  constructor(
    readonly width: number,
    readonly height: number,
    background: Rgb = WHITE,
  ) {
    if (!(Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0 && width * height <= 64e6)) {
      throw new InvalidInputError(`raster size ${width}x${height} is not valid`);
    }
    this.data = Buffer.alloc(width * height * 4);
    this.fillRect(0, 0, width, height, background);
  }

  setPixel(x: number, y: number, c: Rgb): void {
    x = Math.round(x);
    y = Math.round(y);
    if (x < 0 || y < 0 || x >= this.width || y >= this.height) return;
    const i = (y * this.width + x) * 4;
    this.data[i] = c[0];
    this.data[i + 1] = c[1];
    this.data[i + 2] = c[2];
    this.data[i + 3] = 255;
  }

  fillRect(x: number, y: number, w: number, h: number, c: Rgb): void {
    const x0 = Math.max(0, Math.round(x));
    const y0 = Math.max(0, Math.round(y));
    const x1 = Math.min(this.width, Math.round(x + w));
    const y1 = Math.min(this.height, Math.round(y + h));
    for (let yy = y0; yy < y1; yy++) for (let xx = x0; xx < x1; xx++) this.setPixel(xx, yy, c);
  }

  /** Line of the given thickness (square pen), clipped to `clip` when given. */
  line(x0: number, y0: number, x1: number, y1: number, c: Rgb, thickness = 1, clip?: Rect): void {
    const steps = Math.max(1, Math.ceil(Math.max(Math.abs(x1 - x0), Math.abs(y1 - y0))));
    const half = (thickness - 1) / 2;
    for (let s = 0; s <= steps; s++) {
      const x = x0 + ((x1 - x0) * s) / steps;
      const y = y0 + ((y1 - y0) * s) / steps;
      if (clip && (x < clip.x || y < clip.y || x > clip.x + clip.w || y > clip.y + clip.h)) continue;
      if (thickness <= 1) this.setPixel(x, y, c);
      else this.fillRect(Math.round(x - half), Math.round(y - half), thickness, thickness, c);
    }
  }

  fillCircle(cx: number, cy: number, r: number, c: Rgb): void {
    for (let dy = -Math.ceil(r); dy <= Math.ceil(r); dy++) {
      for (let dx = -Math.ceil(r); dx <= Math.ceil(r); dx++) if (dx * dx + dy * dy <= r * r + r * 0.8) this.setPixel(cx + dx, cy + dy, c);
    }
  }

  /** Text with the 5x7 font at an integer scale; `anchor` picks which point of the text box (x, y) is. */
  text(x: number, y: number, str: string, c: Rgb, scale = 1, anchor: TextAnchor = 'left-top', vertical = false): void {
    const w = textWidth(str, scale);
    const h = GLYPH_H * scale;
    const [ax, ay] = anchorOffset(anchor, vertical ? h : w, vertical ? w : h);
    const ox = Math.round(x - ax);
    const oy = Math.round(y - ay);
    let cursor = 0;
    for (const ch of str) {
      const glyph = GLYPHS[ch] ?? GLYPHS[ch.toUpperCase()] ?? GLYPHS['?']!;
      for (let row = 0; row < glyph.length; row++) {
        for (let col = 0; col < GLYPH_W; col++) {
          if (!((glyph[row]! >> (GLYPH_W - 1 - col)) & 1)) continue;
          // Vertical text reads bottom-to-top (rotated 90 degrees counter-clockwise).
          const px = vertical ? ox + row * scale : ox + cursor + col * scale;
          const py = vertical ? oy + w - (cursor + (col + 1) * scale) : oy + row * scale;
          this.fillRect(px, py, scale, scale, c);
        }
      }
      cursor += (GLYPH_W + 1) * scale;
    }
  }

  toPng(): Buffer {
    const png = new PNG({ width: this.width, height: this.height });
    this.data.copy(png.data);
    return PNG.sync.write(png);
  }
}

export interface Rect {
  x: number;
  y: number;
  w: number;
  h: number;
}

export type TextAnchor = 'left-top' | 'center-top' | 'right-top' | 'left-middle' | 'center-middle' | 'right-middle' | 'center-bottom';

export function textWidth(str: string, scale = 1): number {
  const n = [...str].length;
  return n === 0 ? 0 : (n * (GLYPH_W + 1) - 1) * scale;
}

function anchorOffset(anchor: TextAnchor, w: number, h: number): [number, number] {
  const [hx, vy] = anchor.split('-') as [string, string];
  return [hx === 'left' ? 0 : hx === 'center' ? w / 2 : w, vy === 'top' ? 0 : vy === 'middle' ? h / 2 : h];
}

// ---------------------------------------------------------------- axes

/** About `target` round tick values (1, 2, 5 x 10^k) covering [min, max]. */
export function niceTicks(min: number, max: number, target = 6): { ticks: number[]; step: number; min: number; max: number } {
  if (!(Number.isFinite(min) && Number.isFinite(max))) throw new InvalidInputError(`axis range [${min}, ${max}] is not finite`);
  if (max - min < 1e-12 * Math.max(1, Math.abs(max))) {
    const pad = Math.abs(min) > 0 ? Math.abs(min) * 0.1 : 1;
    min -= pad;
    max += pad;
  }
  const raw = (max - min) / Math.max(1, target);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / mag;
  const step = (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 5 ? 5 : 10) * mag;
  const lo = Math.floor(min / step + 1e-9) * step;
  const hi = Math.ceil(max / step - 1e-9) * step;
  const ticks: number[] = [];
  for (let v = lo; v <= hi + step * 1e-6; v += step) ticks.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  return { ticks, step, min: lo, max: hi };
}

function formatTick(v: number, step: number): string {
  if (Math.abs(v) >= 1e5 || (Math.abs(v) > 0 && Math.abs(v) < 1e-3)) return v.toExponential(1);
  const decimals = Math.max(0, Math.min(6, -Math.floor(Math.log10(step) + 1e-9)));
  return v.toFixed(decimals);
}

interface Frame {
  plot: Rect;
  sx: (x: number) => number;
  sy: (y: number) => number;
}

interface AxesSpec {
  title?: string;
  xLabel?: string;
  yLabel?: string;
  xRange: [number, number];
  yRange: [number, number];
  legend: { name: string; color: Rgb }[];
  xIntegerTicks?: boolean;
}

/** Draws title, grid, axes, tick labels, axis labels and a legend column on the right; returns the data-to-pixel mapping. */
function drawAxes(r: Raster, spec: AxesSpec): Frame {
  const legendW = spec.legend.length ? Math.max(...spec.legend.map((l) => textWidth(l.name, 2))) + 44 : 0;
  const xt = niceTicks(spec.xRange[0], spec.xRange[1], Math.max(3, Math.floor((r.width - legendW) / 90)));
  if (spec.xIntegerTicks && xt.step < 1) {
    xt.ticks = xt.ticks.filter((t) => Number.isInteger(t));
    xt.step = 1;
  }
  const yt = niceTicks(spec.yRange[0], spec.yRange[1], Math.max(3, Math.floor(r.height / 70)));
  const yLabels = yt.ticks.map((t) => formatTick(t, yt.step));
  const left = 24 + (spec.yLabel ? 22 : 0) + Math.max(...yLabels.map((l) => textWidth(l, 2)));
  const top = spec.title ? 48 : 20;
  const bottom = 44 + (spec.xLabel ? 26 : 0);
  const plot: Rect = { x: left, y: top, w: r.width - left - 20 - legendW, h: r.height - top - bottom };
  if (plot.w < 40 || plot.h < 40) throw new InvalidInputError(`chart ${r.width}x${r.height} is too small for its labels`);
  const sx = (x: number): number => plot.x + ((x - xt.min) / (xt.max - xt.min)) * plot.w;
  const sy = (y: number): number => plot.y + plot.h - ((y - yt.min) / (yt.max - yt.min)) * plot.h;

  if (spec.title) r.text(plot.x + plot.w / 2, 14, spec.title, BLACK, 3, 'center-top');
  yt.ticks.forEach((t, i) => {
    const y = sy(t);
    r.line(plot.x, y, plot.x + plot.w, y, GRID);
    r.line(plot.x - 5, y, plot.x, y, AXIS);
    r.text(plot.x - 9, y, yLabels[i]!, AXIS, 2, 'right-middle');
  });
  for (const t of xt.ticks) {
    const x = sx(t);
    r.line(x, plot.y, x, plot.y + plot.h, GRID);
    r.line(x, plot.y + plot.h, x, plot.y + plot.h + 5, AXIS);
    r.text(x, plot.y + plot.h + 10, formatTick(t, xt.step), AXIS, 2, 'center-top');
  }
  r.line(plot.x, plot.y, plot.x, plot.y + plot.h, AXIS, 2);
  r.line(plot.x, plot.y + plot.h, plot.x + plot.w, plot.y + plot.h, AXIS, 2);
  if (spec.xLabel) r.text(plot.x + plot.w / 2, r.height - 10, spec.xLabel, BLACK, 2, 'center-bottom');
  if (spec.yLabel) r.text(8, plot.y + plot.h / 2, spec.yLabel, BLACK, 2, 'left-middle', true);

  spec.legend.forEach((entry, i) => {
    const lx = plot.x + plot.w + 24;
    const ly = plot.y + 6 + i * 26;
    r.fillRect(lx, ly, 14, 14, entry.color);
    r.text(lx + 20, ly + 7, entry.name, BLACK, 2, 'left-middle');
  });
  return { plot, sx, sy };
}

// ---------------------------------------------------------------- charts

export interface LineSeries {
  name: string;
  /** Values per step; NaN / undefined leave a gap. */
  y: readonly (number | undefined)[];
  /** x per value. Default 1, 2, ... (epochs). */
  x?: readonly number[];
  color?: Rgb;
}

export interface LineChartSpec {
  title?: string;
  xLabel?: string;
  yLabel?: string;
  series: readonly LineSeries[];
  /** Pixels. Default 900 x 560. */
  width?: number;
  height?: number;
  /** Draw a dot at each value. Default: when a series has at most 60 values. */
  markers?: boolean;
  /** Fix the y range instead of fitting the data (e.g. [0, 100] for accuracy). */
  yRange?: [number, number];
}

/** Renders a line chart (e.g. loss and metric per epoch, several series with a legend) to PNG bytes. */
export function renderLineChart(spec: LineChartSpec): Buffer {
  if (spec.series.length === 0) throw new InvalidInputError('line chart needs at least one series');
  const r = new Raster(spec.width ?? 900, spec.height ?? 560);
  const series = spec.series.map((s, i) => ({
    name: s.name,
    color: s.color ?? PLOT_COLORS[i % PLOT_COLORS.length]!,
    points: s.y.map((y, k) => [s.x ? s.x[k]! : k + 1, y ?? NaN] as const).filter(([x]) => Number.isFinite(x)),
  }));
  const finite = series.flatMap((s) => s.points.filter(([, y]) => Number.isFinite(y)));
  if (finite.length === 0) throw new InvalidInputError('line chart has no finite values');
  const xs = series.flatMap((s) => s.points.map(([x]) => x));
  const ys = finite.map(([, y]) => y);
  const frame = drawAxes(r, {
    ...(spec.title !== undefined ? { title: spec.title } : {}),
    ...(spec.xLabel !== undefined ? { xLabel: spec.xLabel } : {}),
    ...(spec.yLabel !== undefined ? { yLabel: spec.yLabel } : {}),
    xRange: [Math.min(...xs), Math.max(...xs)],
    yRange: spec.yRange ?? [Math.min(...ys), Math.max(...ys)],
    legend: series.map((s) => ({ name: s.name, color: s.color })),
    xIntegerTicks: spec.series.every((s) => !s.x),
  });
  const clip = frame.plot;
  for (const s of series) {
    const markers = spec.markers ?? s.points.length <= 60;
    let prev: [number, number] | undefined;
    for (const [x, y] of s.points) {
      if (!Number.isFinite(y)) {
        prev = undefined;
        continue;
      }
      const p: [number, number] = [frame.sx(x), frame.sy(y)];
      if (prev) r.line(prev[0], prev[1], p[0], p[1], s.color, 3, clip);
      if (markers && p[1] >= clip.y && p[1] <= clip.y + clip.h) r.fillCircle(p[0], p[1], 4, s.color);
      prev = p;
    }
  }
  return r.toPng();
}

export interface ScatterGroup {
  name: string;
  points: readonly (readonly [number, number])[];
  color?: Rgb;
}

export interface ScatterSpec {
  title?: string;
  xLabel?: string;
  yLabel?: string;
  groups: readonly ScatterGroup[];
  width?: number;
  height?: number;
  /** Default 4 px. */
  pointRadius?: number;
}

/** Renders a scatter plot of labelled point groups (e.g. t-SNE of canonical vs knowledge tokens) to PNG bytes. */
export function renderScatterPlot(spec: ScatterSpec): Buffer {
  const all = spec.groups.flatMap((g) => g.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  if (all.length === 0) throw new InvalidInputError('scatter plot has no finite points');
  const r = new Raster(spec.width ?? 800, spec.height ?? 640);
  const groups = spec.groups.map((g, i) => ({ ...g, color: g.color ?? PLOT_COLORS[i % PLOT_COLORS.length]! }));
  const frame = drawAxes(r, {
    ...(spec.title !== undefined ? { title: spec.title } : {}),
    ...(spec.xLabel !== undefined ? { xLabel: spec.xLabel } : {}),
    ...(spec.yLabel !== undefined ? { yLabel: spec.yLabel } : {}),
    xRange: [Math.min(...all.map((p) => p[0])), Math.max(...all.map((p) => p[0]))],
    yRange: [Math.min(...all.map((p) => p[1])), Math.max(...all.map((p) => p[1]))],
    legend: groups.map((g) => ({ name: `${g.name} (${g.points.length})`, color: g.color })),
  });
  const radius = spec.pointRadius ?? 4;
  for (const g of groups) {
    for (const [x, y] of g.points) if (Number.isFinite(x) && Number.isFinite(y)) r.fillCircle(frame.sx(x), frame.sy(y), radius, g.color);
  }
  return r.toPng();
}

/** Writes PNG bytes, creating the folder. */
export async function writePng(path: string, png: Buffer): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, png);
}
