// RGB8 crops -> a float32 input tensor in the manifest's layout, channel order and value normalisation.
import { InvalidInputError } from '../../core/errors.js';
import type { RgbImage } from '../../core/image.js';
import type { InputSpec } from '../manifest.js';

export type NormalizeSpec = Pick<InputSpec, 'layout' | 'colorOrder' | 'scale' | 'mean' | 'std'>;

/** A dense float tensor with its dims, the shape ONNX Runtime and TF.js both take. */
export interface FloatTensor {
  data: Float32Array;
  dims: number[];
}

/** ITU-R BT.601 luma weights, the ones InputSpec's GRAY promises (and human's emotion model uses). */
export const grayWeights = [0.299, 0.587, 0.114] as const;

function perChannel(values: readonly number[], channels: number, what: string): number[] {
  if (values.length === 1) return Array<number>(channels).fill(values[0]!);
  if (values.length !== channels) throw new InvalidInputError(`input ${what} has ${values.length} values; expected 1 or ${channels}`);
  return [...values];
}

/**
 * Normalises one or more equally sized RGB8 images into one batch tensor:
 * value = (pixel * scale - mean[c]) / std[c], channels in the spec's colour order, NHWC [N,H,W,C] or NCHW [N,C,H,W].
 * `out` lets a caller reuse a buffer of the right length (per-frame allocations add up on a busy stream).
 */
export function normalize(images: RgbImage | readonly RgbImage[], spec: NormalizeSpec, out?: Float32Array): FloatTensor {
  const list: readonly RgbImage[] = Array.isArray(images) ? images : [images as RgbImage];
  if (list.length === 0) throw new InvalidInputError('normalize needs at least one image');
  const { width, height } = list[0]!;
  for (const img of list) {
    if (img.width !== width || img.height !== height)
      throw new InvalidInputError(`batch images differ in size: ${width}x${height} and ${img.width}x${img.height}`);
    if (img.data.length !== img.width * img.height * 3)
      throw new InvalidInputError(`RGB image ${img.width}x${img.height} needs ${img.width * img.height * 3} bytes, has ${img.data.length}`);
  }
  const channels = spec.colorOrder === 'GRAY' ? 1 : 3;
  const mean = perChannel(spec.mean, channels, 'mean');
  const std = perChannel(spec.std, channels, 'std');
  if (std.some((s) => !(Math.abs(s) > 0) || !Number.isFinite(s)))
    throw new InvalidInputError(`input std must be finite and non-zero, got [${spec.std.join(', ')}]`);
  if (!Number.isFinite(spec.scale)) throw new InvalidInputError(`input scale must be finite, got ${spec.scale}`);
  const plane = width * height;
  const perImage = plane * channels;
  const length = perImage * list.length;
  if (out && out.length !== length) throw new InvalidInputError(`output buffer has ${out.length} floats; the tensor needs ${length}`);
  const data = out ?? new Float32Array(length);
  // Fold scale, mean and std into one multiply-add per value.
  const mul = std.map((s) => spec.scale / s);
  const add = mean.map((m, c) => -m / std[c]!);
  // Source channel for each output channel.
  const source = spec.colorOrder === 'BGR' ? [2, 1, 0] : [0, 1, 2];
  const nchw = spec.layout === 'NCHW';
  list.forEach((img, n) => {
    const px = img.data;
    const base = n * perImage;
    for (let i = 0; i < plane; i++) {
      const p = i * 3;
      if (channels === 1) {
        const luma = grayWeights[0] * px[p]! + grayWeights[1] * px[p + 1]! + grayWeights[2] * px[p + 2]!;
        data[base + i] = luma * mul[0]! + add[0]!;
        continue;
      }
      for (let c = 0; c < 3; c++) {
        const v = px[p + source[c]!]! * mul[c]! + add[c]!;
        data[nchw ? base + c * plane + i : base + p + c] = v;
      }
    }
  });
  const dims = nchw ? [list.length, channels, height, width] : [list.length, height, width, channels];
  return { data, dims };
}
