// Face crops from decoded frame pixels: the crop rectangle from a face box and the manifest, and bilinear resampling.
import { InvalidInputError } from '../../core/errors.js';
import type { RgbImage } from '../../core/image.js';
import type { InputSpec } from '../manifest.js';
import { regionTransform, type FrameTransform, type Rect } from './geometry.js';

/**
 * What happens where a crop reaches past the frame: 'pad' keeps the crop's geometry and fills the outside with
 * `fill` (what tf.image.cropAndResize does, so what the human models saw); 'clamp' cuts the crop to the frame,
 * which changes its aspect ratio when it is resized to a square.
 */
export type CropBorder = 'pad' | 'clamp';

export interface ResampleOptions {
  /** RGB value for pixels outside the frame. Default black [0, 0, 0]. */
  fill?: readonly [number, number, number];
  /**
   * Average several bilinear taps per output pixel when shrinking by more than 1x, so that a 1920-pixel frame
   * shrunk to 256 does not alias. Off gives plain bilinear (tf.image.resizeBilinear). Default true.
   */
  antialias?: boolean;
}

export interface CropOptions extends ResampleOptions {
  /** Default 'pad'. */
  border?: CropBorder;
}

export interface FaceCrop {
  /** size x size RGB8 pixels, ready for normalize(). */
  image: RgbImage;
  /** The frame region the crop shows (may reach past the frame when border is 'pad'). */
  rect: Rect;
  /** Maps crop pixels back to frame pixels (for landmarks). */
  transform: FrameTransform;
}

function checkRect(r: Rect, what: string): void {
  if (![r.x, r.y, r.width, r.height].every(Number.isFinite) || r.width <= 0 || r.height <= 0) {
    throw new InvalidInputError(
      `${what} must have finite coordinates and a positive size, got x=${r.x} y=${r.y} w=${r.width} h=${r.height}`,
    );
  }
}

function checkImage(img: RgbImage): void {
  if (
    !Number.isInteger(img.width) ||
    !Number.isInteger(img.height) ||
    img.width <= 0 ||
    img.height <= 0 ||
    img.data.length !== img.width * img.height * 3
  ) {
    throw new InvalidInputError(
      `RGB image ${img.width}x${img.height} must have positive integer dimensions and ${img.width * img.height * 3} bytes, has ${img.data.length}`,
    );
  }
}

/**
 * The frame region to crop for a face box: made square on its longer side first when `cropSquare`, then grown by
 * `cropMargin` of its size on each side, around the same centre. With border 'clamp' it is cut to the frame.
 */
export function cropRect(
  face: Rect,
  spec: Pick<InputSpec, 'cropMargin' | 'cropSquare'>,
  frame: { width: number; height: number },
  border: CropBorder = 'pad',
): Rect {
  checkRect(face, 'face box');
  if (!(spec.cropMargin >= 0)) throw new InvalidInputError(`crop margin must be >= 0, got ${spec.cropMargin}`);
  const cx = face.x + face.width / 2;
  const cy = face.y + face.height / 2;
  let w = face.width;
  let h = face.height;
  if (spec.cropSquare) w = h = Math.max(w, h);
  w *= 1 + 2 * spec.cropMargin;
  h *= 1 + 2 * spec.cropMargin;
  const rect = { x: cx - w / 2, y: cy - h / 2, width: w, height: h };
  if (border === 'pad') return rect;
  const x0 = Math.max(0, rect.x);
  const y0 = Math.max(0, rect.y);
  const x1 = Math.min(frame.width, rect.x + rect.width);
  const y1 = Math.min(frame.height, rect.y + rect.height);
  if (x1 <= x0 || y1 <= y0)
    throw new InvalidInputError(
      `face box x=${face.x} y=${face.y} w=${face.width} h=${face.height} lies outside the ${frame.width}x${frame.height} frame`,
    );
  return { x: x0, y: y0, width: x1 - x0, height: y1 - y0 };
}

/** Per-output-pixel weights along one axis: a contiguous run of source indices, and the share that fell inside. */
interface AxisTaps {
  first: Int32Array;
  count: Int32Array;
  /** `maxTaps` weights per output index, from `first`. */
  weights: Float64Array;
  maxTaps: number;
  /** Fraction of the output pixel's samples that lie inside the source (the rest take the fill colour). */
  inside: Float64Array;
}

/**
 * Averages `taps` linear-interpolation samples spread evenly over each output pixel's footprint. Because
 * bilinear weights are a product of two 1-D weights and the taps form a grid, the 2-D average is separable.
 */
function axisTaps(start: number, scale: number, outN: number, srcN: number, taps: number): AxisTaps {
  const maxTaps = Math.ceil(scale) + 2;
  const first = new Int32Array(outN);
  const count = new Int32Array(outN);
  const weights = new Float64Array(outN * maxTaps);
  const inside = new Float64Array(outN);
  for (let o = 0; o < outN; o++) {
    let lo = Infinity;
    const local = new Map<number, number>();
    for (let j = 0; j < taps; j++) {
      // Pixel-centre coordinates: the source spans [-0.5, srcN - 0.5).
      const u = start + (o + (j + 0.5) / taps) * scale - 0.5;
      if (u < -0.5 || u >= srcN - 0.5) continue;
      const uc = Math.min(Math.max(u, 0), srcN - 1);
      const i0 = Math.floor(uc);
      const i1 = Math.min(i0 + 1, srcN - 1);
      const f = uc - i0;
      local.set(i0, (local.get(i0) ?? 0) + (1 - f) / taps);
      if (f > 0) local.set(i1, (local.get(i1) ?? 0) + f / taps);
      lo = Math.min(lo, i0);
      inside[o] += 1 / taps;
    }
    if (local.size === 0) continue;
    first[o] = lo;
    let n = 0;
    for (const [i, w] of local) {
      weights[o * maxTaps + (i - lo)] = w;
      n = Math.max(n, i - lo + 1);
    }
    count[o] = n;
  }
  return { first, count, weights, maxTaps, inside };
}

/**
 * Resamples a frame region (pixel i covers [i, i+1)) to outWidth x outHeight RGB8 with bilinear interpolation.
 * Sample points inside the frame clamp to its edge pixels; points outside take the fill colour.
 */
export function resampleRegion(
  frame: RgbImage,
  region: Rect,
  outWidth: number,
  outHeight: number,
  options: ResampleOptions = {},
): RgbImage {
  checkImage(frame);
  checkRect(region, 'crop region');
  if (!Number.isInteger(outWidth) || !Number.isInteger(outHeight) || outWidth <= 0 || outHeight <= 0) {
    throw new InvalidInputError(`output size must be positive integers, got ${outWidth}x${outHeight}`);
  }
  const fill = options.fill ?? [0, 0, 0];
  const antialias = options.antialias ?? true;
  const { width: W, height: H, data: src } = frame;
  const sx = region.width / outWidth;
  const sy = region.height / outHeight;
  // Taps per output pixel along each axis: one per source pixel covered, so shrinking averages its footprint.
  const cols = axisTaps(region.x, sx, outWidth, W, antialias ? Math.max(1, Math.ceil(sx - 1e-9)) : 1);
  const rows = axisTaps(region.y, sy, outHeight, H, antialias ? Math.max(1, Math.ceil(sy - 1e-9)) : 1);
  // Source rows any output row reads.
  let rowLo = H;
  let rowHi = -1;
  for (let o = 0; o < outHeight; o++) {
    if (rows.count[o]! === 0) continue;
    rowLo = Math.min(rowLo, rows.first[o]!);
    rowHi = Math.max(rowHi, rows.first[o]! + rows.count[o]! - 1);
  }
  // Pass 1: each needed source row filtered horizontally to outWidth (inside samples only).
  const rowCount = Math.max(0, rowHi - rowLo + 1);
  const tmp = new Float64Array(rowCount * outWidth * 3);
  for (let y = rowLo; y <= rowHi; y++) {
    const srcRow = y * W * 3;
    const dstRow = (y - rowLo) * outWidth * 3;
    for (let ox = 0; ox < outWidth; ox++) {
      let r = 0;
      let g = 0;
      let b = 0;
      const n = cols.count[ox]!;
      const wBase = ox * cols.maxTaps;
      let p = srcRow + cols.first[ox]! * 3;
      for (let k = 0; k < n; k++, p += 3) {
        const w = cols.weights[wBase + k]!;
        r += src[p]! * w;
        g += src[p + 1]! * w;
        b += src[p + 2]! * w;
      }
      const d = dstRow + ox * 3;
      tmp[d] = r;
      tmp[d + 1] = g;
      tmp[d + 2] = b;
    }
  }
  // Pass 2: vertical filter, plus the fill colour for the share of samples that fell outside the frame.
  const out = new Uint8Array(outWidth * outHeight * 3);
  for (let oy = 0; oy < outHeight; oy++) {
    const n = rows.count[oy]!;
    const wBase = oy * rows.maxTaps;
    const base = (rows.first[oy]! - rowLo) * outWidth * 3;
    for (let ox = 0; ox < outWidth; ox++) {
      let r = 0;
      let g = 0;
      let b = 0;
      let p = base + ox * 3;
      for (let k = 0; k < n; k++, p += outWidth * 3) {
        const w = rows.weights[wBase + k]!;
        r += tmp[p]! * w;
        g += tmp[p + 1]! * w;
        b += tmp[p + 2]! * w;
      }
      const outside = 1 - cols.inside[ox]! * rows.inside[oy]!;
      const d = (oy * outWidth + ox) * 3;
      out[d] = Math.round(r + outside * fill[0]);
      out[d + 1] = Math.round(g + outside * fill[1]);
      out[d + 2] = Math.round(b + outside * fill[2]);
    }
  }
  return { data: out, width: outWidth, height: outHeight };
}

/** Crops one face for a task model: the manifest's margin and squareness, resized to its input size. */
export function cropFace(
  frame: RgbImage,
  face: Rect,
  spec: Pick<InputSpec, 'size' | 'cropMargin' | 'cropSquare'>,
  options: CropOptions = {},
): FaceCrop {
  checkImage(frame);
  const rect = cropRect(face, spec, frame, options.border ?? 'pad');
  const image = resampleRegion(frame, rect, spec.size, spec.size, options);
  return { image, rect, transform: regionTransform(rect, spec.size, spec.size) };
}
