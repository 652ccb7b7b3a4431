// Pure-JS drawing on RGB8 buffers for annotated frames: rectangles, lines, points and small bitmap labels.
import type { RgbImage } from './pixels.js';

export type Color = readonly [number, number, number];

/** Series colours in order (Tableau 10): distinct, and readable on white. Shared by every chart of the project. */
export const SERIES_COLORS: readonly Color[] = [
  [31, 119, 180],
  [255, 127, 14],
  [44, 160, 44],
  [214, 39, 40],
  [148, 103, 189],
  [140, 86, 75],
  [227, 119, 194],
  [127, 127, 127],
  [188, 189, 34],
  [23, 190, 207],
];

function setPixel(img: RgbImage, x: number, y: number, color: Color): void {
  if (x < 0 || y < 0 || x >= img.width || y >= img.height) return;
  const i = (y * img.width + x) * 3;
  img.data[i] = color[0];
  img.data[i + 1] = color[1];
  img.data[i + 2] = color[2];
}

/** Fills the pixel rectangle [x, x+width) x [y, y+height), clipped to the image. */
export function fillRect(img: RgbImage, rect: { x: number; y: number; width: number; height: number }, color: Color): void {
  const x0 = Math.max(0, Math.round(rect.x));
  const y0 = Math.max(0, Math.round(rect.y));
  const x1 = Math.min(img.width, Math.round(rect.x + rect.width));
  const y1 = Math.min(img.height, Math.round(rect.y + rect.height));
  for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) setPixel(img, x, y, color);
}

/** Outlines a rectangle with the border drawn inside it, `thickness` pixels wide. */
export function drawRect(img: RgbImage, rect: { x: number; y: number; width: number; height: number }, color: Color, thickness = 2): void {
  const { x, y, width, height } = rect;
  const t = Math.max(1, Math.min(thickness, width / 2, height / 2));
  fillRect(img, { x, y, width, height: t }, color);
  fillRect(img, { x, y: y + height - t, width, height: t }, color);
  fillRect(img, { x, y, width: t, height }, color);
  fillRect(img, { x: x + width - t, y, width: t, height }, color);
}

/** A filled disc of the given radius (a point marker). */
export function drawPoint(img: RgbImage, cx: number, cy: number, color: Color, radius = 3): void {
  const r = Math.max(0, radius);
  const x0 = Math.floor(cx - r);
  const y0 = Math.floor(cy - r);
  for (let y = y0; y <= Math.ceil(cy + r); y++) {
    for (let x = x0; x <= Math.ceil(cx + r); x++) {
      if ((x - cx) ** 2 + (y - cy) ** 2 <= r * r + 0.25) setPixel(img, x, y, color);
    }
  }
}

/** A line of the given thickness, stamped as discs along its length. */
export function drawLine(img: RgbImage, x0: number, y0: number, x1: number, y1: number, color: Color, thickness = 1): void {
  const steps = Math.max(1, Math.ceil(Math.hypot(x1 - x0, y1 - y0)));
  for (let i = 0; i <= steps; i++) {
    const f = i / steps;
    drawPoint(img, x0 + (x1 - x0) * f, y0 + (y1 - y0) * f, color, thickness / 2);
  }
}

// 3x5 glyphs, one row per entry, bit 2 = left column. Enough for scores, counts and short tags.
const glyphs: Record<string, readonly number[]> = {
  '0': [7, 5, 5, 5, 7],
  '1': [2, 6, 2, 2, 7],
  '2': [7, 1, 7, 4, 7],
  '3': [7, 1, 7, 1, 7],
  '4': [5, 5, 7, 1, 1],
  '5': [7, 4, 7, 1, 7],
  '6': [7, 4, 7, 5, 7],
  '7': [7, 1, 1, 1, 1],
  '8': [7, 5, 7, 5, 7],
  '9': [7, 5, 7, 1, 7],
  '.': [0, 0, 0, 0, 2],
  ',': [0, 0, 0, 2, 4],
  ':': [0, 2, 0, 2, 0],
  '-': [0, 0, 7, 0, 0],
  '+': [0, 2, 7, 2, 0],
  '%': [5, 1, 2, 4, 5],
  '/': [1, 1, 2, 4, 4],
  '#': [5, 7, 5, 7, 5],
  ' ': [0, 0, 0, 0, 0],
  A: [2, 5, 7, 5, 5],
  B: [6, 5, 6, 5, 6],
  C: [7, 4, 4, 4, 7],
  D: [6, 5, 5, 5, 6],
  E: [7, 4, 6, 4, 7],
  F: [7, 4, 6, 4, 4],
  G: [7, 4, 5, 5, 7],
  H: [5, 5, 7, 5, 5],
  I: [7, 2, 2, 2, 7],
  J: [1, 1, 1, 5, 7],
  K: [5, 5, 6, 5, 5],
  L: [4, 4, 4, 4, 7],
  M: [5, 7, 7, 5, 5],
  N: [6, 5, 5, 5, 5],
  O: [7, 5, 5, 5, 7],
  P: [7, 5, 7, 4, 4],
  Q: [7, 5, 5, 7, 1],
  R: [6, 5, 6, 5, 5],
  S: [7, 4, 7, 1, 7],
  T: [7, 2, 2, 2, 2],
  U: [5, 5, 5, 5, 7],
  V: [5, 5, 5, 5, 2],
  W: [5, 5, 7, 7, 5],
  X: [5, 5, 2, 5, 5],
  Y: [5, 5, 2, 2, 2],
  Z: [7, 1, 2, 4, 7],
};

/**
 * Writes a short label with its top-left corner at (x, y) on a filled background, each font pixel `scale`
 * image pixels. Letters are drawn upper-case; characters without a glyph are drawn as '#'.
 */
export function drawText(
  img: RgbImage,
  x: number,
  y: number,
  text: string,
  color: Color,
  scale = 2,
  background: Color | null = [0, 0, 0],
): void {
  const chars = [...text.toUpperCase()];
  const advance = 4 * scale;
  if (background) fillRect(img, { x: x - scale, y: y - scale, width: chars.length * advance + scale, height: 7 * scale }, background);
  chars.forEach((ch, k) => {
    const rows = glyphs[ch] ?? glyphs['#']!;
    rows.forEach((bits, row) => {
      for (let col = 0; col < 3; col++) {
        if (bits & (4 >> col)) fillRect(img, { x: x + k * advance + col * scale, y: y + row * scale, width: scale, height: scale }, color);
      }
    });
  });
}
