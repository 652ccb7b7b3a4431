// 5-point face alignment: a least-squares similarity transform (Umeyama) from the detector's keypoints onto dlib's
// mean-face template, and the warp of the frame into an aligned square crop for an embedding model.
import { InvalidInputError } from '../../core/errors.js';
import type { RgbImage } from '../../core/image.js';
import type { Point } from './geometry.js';

/** x' = a*x - b*y + tx, y' = b*x + a*y + ty: rotation + uniform scale (sqrt(a^2 + b^2)) + translation, no shear or mirror. */
export interface Similarity {
  a: number;
  b: number;
  tx: number;
  ty: number;
}

export function applySimilarity(t: Similarity, p: Point): Point {
  return { x: t.a * p.x - t.b * p.y + t.tx, y: t.b * p.x + t.a * p.y + t.ty };
}

export function invertSimilarity(t: Similarity): Similarity {
  const d = t.a * t.a + t.b * t.b;
  if (!(d > 0)) throw new InvalidInputError('a similarity transform with zero scale has no inverse');
  const a = t.a / d;
  const b = -t.b / d;
  return { a, b, tx: -(a * t.tx - b * t.ty), ty: -(b * t.tx + a * t.ty) };
}

export const similarityScale = (t: Similarity): number => Math.hypot(t.a, t.b);

/**
 * The similarity transform that maps `from` onto `to` with the least sum of squared distances (Umeyama 1991 in 2-D,
 * rotations only: with points as complex numbers, s*R = sum(conj(f_i) * t_i) / sum(|f_i|^2) after centring).
 * Needs at least two distinct points.
 */
export function fitSimilarity(from: readonly Point[], to: readonly Point[]): Similarity {
  if (from.length !== to.length) throw new InvalidInputError(`similarity fit: ${from.length} source points but ${to.length} targets`);
  if (from.length < 2) throw new InvalidInputError('similarity fit needs at least 2 point pairs');
  const all = [...from, ...to];
  if (!all.every((p) => Number.isFinite(p.x) && Number.isFinite(p.y))) throw new InvalidInputError('similarity fit: non-finite point');
  const n = from.length;
  const mean = (ps: readonly Point[]): Point => ({ x: ps.reduce((s, p) => s + p.x, 0) / n, y: ps.reduce((s, p) => s + p.y, 0) / n });
  const mf = mean(from);
  const mt = mean(to);
  let dotSum = 0;
  let crossSum = 0;
  let norm = 0;
  for (let i = 0; i < n; i++) {
    const fx = from[i]!.x - mf.x;
    const fy = from[i]!.y - mf.y;
    const tx = to[i]!.x - mt.x;
    const ty = to[i]!.y - mt.y;
    dotSum += fx * tx + fy * ty;
    crossSum += fx * ty - fy * tx;
    norm += fx * fx + fy * fy;
  }
  if (!(norm > 1e-12)) throw new InvalidInputError('similarity fit: the source points coincide');
  const a = dotSum / norm;
  const b = crossSum / norm;
  return { a, b, tx: mt.x - (a * mf.x - b * mf.y), ty: mt.y - (b * mf.x + a * mf.y) };
}

/**
 * dlib's mean face (interpolation.h, `get_face_chip_details`: average positions of the 68 iBUG points 17-67 in a unit
 * square), reduced to the points BlazeFace gives, in blazefaceKeypointNames order:
 * - rightEye (subject's right, on the image's left): mean of iBUG 36-41;
 * - leftEye: mean of iBUG 42-47;
 * - noseTip: iBUG 30;
 * - mouthCenter: mean of the inner lip iBUG 60-67.
 * The ears (BlazeFace keypoints 4 and 5) are not used: they are unreliable and absent from dlib's template.
 */
export const DLIB_MEAN_FACE_4: readonly Point[] = [
  { x: 0.2254918, y: 0.2159903 },
  { x: 0.7547613, y: 0.2159903 },
  { x: 0.490127, y: 0.515625 },
  { x: 0.4901268, y: 0.7990733 },
];

/** dlib's face-chip padding for its ResNet face descriptor (`get_face_chip_details(shape, 150, 0.25)`). */
export const DLIB_CHIP_PADDING = 0.25;

/** The template in crop pixels of a `size` x `size` chip with `padding` (dlib: p' = (padding + p) / (1 + 2 padding) * size). */
export function alignmentTemplate(size: number, padding = DLIB_CHIP_PADDING): Point[] {
  return DLIB_MEAN_FACE_4.map((p) => ({
    x: ((padding + p.x) / (1 + 2 * padding)) * size,
    y: ((padding + p.y) / (1 + 2 * padding)) * size,
  }));
}

export interface AlignedCrop {
  /** size x size RGB8, the face warped onto the template. */
  image: RgbImage;
  /** Crop pixel -> frame pixel (continuous coordinates, pixel i covers [i, i+1)). */
  toFrame: Similarity;
}

/**
 * Samples `frame` through `toFrame` (crop pixel -> frame pixel) into a size x size crop, bilinear; pixels outside the
 * frame are black. When the crop shrinks the face (more than one frame pixel per crop pixel) each output pixel
 * averages a k x k grid of bilinear taps over its footprint (k = ceil(scale), at most 4), so large faces do not alias.
 */
export function warpSimilarity(frame: RgbImage, toFrame: Similarity, size: number): RgbImage {
  if (!Number.isInteger(size) || size <= 0) throw new InvalidInputError(`aligned crop size must be a positive integer, got ${size}`);
  const { width: W, height: H, data: src } = frame;
  if (src.length !== W * H * 3) throw new InvalidInputError(`RGB image ${W}x${H} needs ${W * H * 3} bytes, has ${src.length}`);
  const k = Math.min(4, Math.max(1, Math.ceil(similarityScale(toFrame) - 1e-9)));
  const out = new Uint8Array(size * size * 3);
  const acc = [0, 0, 0];
  const { a, b, tx, ty } = toFrame;
  for (let oy = 0; oy < size; oy++) {
    for (let ox = 0; ox < size; ox++) {
      acc[0] = acc[1] = acc[2] = 0;
      for (let j = 0; j < k; j++) {
        const cy = oy + (j + 0.5) / k;
        for (let i = 0; i < k; i++) {
          const cx = ox + (i + 0.5) / k;
          // Frame coordinates of the tap, shifted to pixel centres at integers.
          const u = a * cx - b * cy + tx - 0.5;
          const v = b * cx + a * cy + ty - 0.5;
          if (u < -0.5 || v < -0.5 || u >= W - 0.5 || v >= H - 0.5) continue; // outside: black
          const uc = Math.min(Math.max(u, 0), W - 1);
          const vc = Math.min(Math.max(v, 0), H - 1);
          const x0 = Math.floor(uc);
          const y0 = Math.floor(vc);
          const x1 = Math.min(x0 + 1, W - 1);
          const y1 = Math.min(y0 + 1, H - 1);
          const fx = uc - x0;
          const fy = vc - y0;
          const p00 = (y0 * W + x0) * 3;
          const p01 = (y0 * W + x1) * 3;
          const p10 = (y1 * W + x0) * 3;
          const p11 = (y1 * W + x1) * 3;
          for (let c = 0; c < 3; c++) {
            const top = src[p00 + c]! * (1 - fx) + src[p01 + c]! * fx;
            const bottom = src[p10 + c]! * (1 - fx) + src[p11 + c]! * fx;
            acc[c]! += top * (1 - fy) + bottom * fy;
          }
        }
      }
      const d = (oy * size + ox) * 3;
      const taps = k * k;
      out[d] = Math.round(acc[0]! / taps);
      out[d + 1] = Math.round(acc[1]! / taps);
      out[d + 2] = Math.round(acc[2]! / taps);
    }
  }
  return { data: out, width: size, height: size };
}

/**
 * The aligned crop of one face from its detector keypoints (BlazeFace order: rightEye, leftEye, noseTip, mouthCenter,
 * ears ignored): the least-squares similarity from dlib's template (`alignmentTemplate(size, padding)`) to the
 * keypoints, then the warp.
 */
export function alignFace(frame: RgbImage, keypoints: readonly Point[], size: number, padding = DLIB_CHIP_PADDING): AlignedCrop {
  if (keypoints.length < 4)
    throw new InvalidInputError(`5-point alignment needs the eye, nose and mouth keypoints, got ${keypoints.length} points`);
  const toFrame = fitSimilarity(alignmentTemplate(size, padding), keypoints.slice(0, 4));
  return { image: warpSimilarity(frame, toFrame, size), toFrame };
}
