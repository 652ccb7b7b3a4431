// Shared geometry of pre/post-processing: rectangles and points in frame pixels, and region <-> tensor mappings.

/** An axis-aligned rectangle in pixels; x, y is the top-left corner. May be fractional or reach past the frame. */
export interface Rect {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** A point in pixels; `z` only for 3-D landmark schemes (same units as x, relative depth). */
export interface Point {
  x: number;
  y: number;
  z?: number;
}

/**
 * Maps model-input pixel coordinates back to frame pixels: frameX = inputX * scaleX + offsetX.
 * Every resized region (a detector's letterbox, a face crop) has one.
 */
export interface FrameTransform {
  scaleX: number;
  scaleY: number;
  offsetX: number;
  offsetY: number;
}

/** The transform of a frame region resampled to outWidth x outHeight pixels. */
export function regionTransform(region: Rect, outWidth: number, outHeight: number): FrameTransform {
  return { scaleX: region.width / outWidth, scaleY: region.height / outHeight, offsetX: region.x, offsetY: region.y };
}

export function toFramePoint(t: FrameTransform, x: number, y: number): Point {
  return { x: x * t.scaleX + t.offsetX, y: y * t.scaleY + t.offsetY };
}

export function iou(a: Rect, b: Rect): number {
  const ix = Math.max(0, Math.min(a.x + a.width, b.x + b.width) - Math.max(a.x, b.x));
  const iy = Math.max(0, Math.min(a.y + a.height, b.y + b.height) - Math.max(a.y, b.y));
  const inter = ix * iy;
  const union = a.width * a.height + b.width * b.height - inter;
  return union > 0 ? inter / union : 0;
}
