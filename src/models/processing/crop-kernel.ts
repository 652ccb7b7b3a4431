// Crop + resize + normalise in one pass per face: the model's float input written straight from frame pixels, with
// the same sampling as resampleRegion / warpSimilarity followed by normalize() (minus their rounding to bytes).
import { InvalidInputError } from '../../core/errors.js';
import type { RgbImage } from '../../core/image.js';
import type { Similarity } from './align.js';
import type { Rect } from './geometry.js';
import { grayWeights, type FloatTensor, type NormalizeSpec } from './normalize.js';

/**
 * Where one crop samples the source image: an axis-aligned region (box crops; pixel i covers [i, i+1)), or a
 * similarity from crop pixels to source pixels (5-point aligned crops). Both in the source image's pixels.
 */
export type CropSampling = { kind: 'region'; region: Rect } | { kind: 'similarity'; toSource: Similarity };

/** Per output index along one axis: `count` source indices from `first` with their weights, and the inside share. */
interface Taps {
  first: Int32Array;
  count: Int32Array;
  weights: Float32Array;
  stride: number;
  inside: Float32Array;
}

/**
 * resampleRegion's taps (n bilinear samples spread over each output pixel's footprint, averaged) with typed arrays
 * instead of a map per output pixel: sample indices only grow along the axis, so neighbours merge in place.
 */
function regionTaps(start: number, scale: number, outN: number, srcN: number, antialias: boolean): Taps {
  const n = antialias ? Math.max(1, Math.ceil(scale - 1e-9)) : 1;
  const stride = Math.ceil(scale) + 2;
  const first = new Int32Array(outN);
  const count = new Int32Array(outN);
  const weights = new Float32Array(outN * stride);
  const inside = new Float32Array(outN);
  for (let o = 0; o < outN; o++) {
    let lo = -1;
    for (let j = 0; j < n; j++) {
      const u = start + (o + (j + 0.5) / n) * scale - 0.5;
      if (u < -0.5 || u >= srcN - 0.5) continue;
      const uc = Math.min(Math.max(u, 0), srcN - 1);
      const i0 = Math.floor(uc);
      const f = uc - i0;
      if (lo < 0) lo = i0;
      const k = o * stride + (i0 - lo);
      weights[k] = weights[k]! + (1 - f) / n;
      if (f > 0) weights[k + 1] = weights[k + 1]! + f / n;
      count[o] = Math.max(count[o]!, i0 - lo + (f > 0 ? 2 : 1));
      inside[o] = inside[o]! + 1 / n;
    }
    first[o] = Math.max(lo, 0);
  }
  return { first, count, weights, stride, inside };
}

/** Per output channel: source channel, multiplier and offset (normalize's value = pixel * mul + add). */
interface ChannelMath {
  gray: boolean;
  source: number[];
  mul: number[];
  add: number[];
}

function channelMath(spec: NormalizeSpec): ChannelMath {
  const gray = spec.colorOrder === 'GRAY';
  const channels = gray ? 1 : 3;
  const per = (v: readonly number[], what: string): number[] => {
    if (v.length === 1) return Array<number>(channels).fill(v[0]!);
    if (v.length !== channels) throw new InvalidInputError(`input ${what} has ${v.length} values; expected 1 or ${channels}`);
    return [...v];
  };
  const mean = per(spec.mean, 'mean');
  const std = per(spec.std, 'std');
  if (std.some((s) => !(Math.abs(s) > 0) || !Number.isFinite(s)))
    throw new InvalidInputError(`input std must be finite and non-zero, got [${spec.std.join(', ')}]`);
  if (!Number.isFinite(spec.scale)) throw new InvalidInputError(`input scale must be finite, got ${spec.scale}`);
  return {
    gray,
    source: spec.colorOrder === 'BGR' ? [2, 1, 0] : [0, 1, 2],
    mul: std.map((s) => spec.scale / s),
    add: mean.map((m, c) => -m / std[c]!),
  };
}

/** Writes one output row of RGB sums (0..255 scale, the outside share already black) as normalised values. */
function storeRow(line: Float32Array, oy: number, size: number, out: Float32Array, base: number, nchw: boolean, m: ChannelMath): void {
  if (m.gray) {
    const [wr, wg, wb] = grayWeights;
    const mul = m.mul[0]!;
    const add = m.add[0]!;
    for (let ox = 0, d = base + oy * size, p = 0; ox < size; ox++, d++, p += 3)
      out[d] = (wr * line[p]! + wg * line[p + 1]! + wb * line[p + 2]!) * mul + add;
    return;
  }
  const plane = size * size;
  for (let c = 0; c < 3; c++) {
    const mul = m.mul[c]!;
    const add = m.add[c]!;
    // NHWC: interleaved, step 3; NCHW: one plane per channel, step 1.
    const step = nchw ? 1 : 3;
    let d = nchw ? base + c * plane + oy * size : base + oy * size * 3 + c;
    for (let ox = 0, p = m.source[c]!; ox < size; ox++, d += step, p += 3) out[d] = line[p]! * mul + add;
  }
}

/** Scratch rows of the kernel, kept between calls (it runs synchronously, so one set serves every crop). */
let scratch = new Float32Array(0);
function scratchRows(length: number): Float32Array {
  if (scratch.length < length) scratch = new Float32Array(Math.max(length, scratch.length * 2));
  return scratch;
}

/** An axis-aligned crop: a horizontal pass over the rows it reads, then a vertical pass that normalises as it writes. */
function regionCrop(src: RgbImage, region: Rect, size: number, out: Float32Array, base: number, nchw: boolean, m: ChannelMath): void {
  const { width: W, height: H, data } = src;
  const cols = regionTaps(region.x, region.width / size, size, W, true);
  const rows = regionTaps(region.y, region.height / size, size, H, true);
  let rowLo = H;
  let rowHi = -1;
  for (let o = 0; o < size; o++) {
    if (rows.count[o]! === 0) continue;
    rowLo = Math.min(rowLo, rows.first[o]!);
    rowHi = Math.max(rowHi, rows.first[o]! + rows.count[o]! - 1);
  }
  const rowLen = size * 3;
  const rowsRead = Math.max(0, rowHi - rowLo + 1);
  // One buffer: the horizontal pass's rows, then the output line (every element is written before it is read).
  const buffer = scratchRows((rowsRead + 1) * rowLen);
  const tmp = buffer.subarray(0, rowsRead * rowLen);
  for (let y = rowLo; y <= rowHi; y++) {
    const srcRow = y * W * 3;
    let d = (y - rowLo) * rowLen;
    for (let ox = 0; ox < size; ox++, d += 3) {
      let r = 0;
      let g = 0;
      let b = 0;
      const n = cols.count[ox]!;
      const wb = ox * cols.stride;
      for (let k = 0, p = srcRow + cols.first[ox]! * 3; k < n; k++, p += 3) {
        const w = cols.weights[wb + k]!;
        r += data[p]! * w;
        g += data[p + 1]! * w;
        b += data[p + 2]! * w;
      }
      tmp[d] = r;
      tmp[d + 1] = g;
      tmp[d + 2] = b;
    }
  }
  const line = buffer.subarray(rowsRead * rowLen, (rowsRead + 1) * rowLen);
  for (let oy = 0; oy < size; oy++) {
    const n = rows.count[oy]!;
    const wb = oy * rows.stride;
    const rowBase = (rows.first[oy]! - rowLo) * rowLen;
    line.fill(0);
    for (let k = 0; k < n; k++) {
      const w = rows.weights[wb + k]!;
      const src = rowBase + k * rowLen;
      for (let i = 0; i < rowLen; i++) line[i] = line[i]! + tmp[src + i]! * w;
    }
    storeRow(line, oy, size, out, base, nchw, m);
  }
}

/** warpSimilarity's sampling (k x k bilinear taps per output pixel, k = ceil(scale) up to 4, black outside). */
function similarityCrop(src: RgbImage, t: Similarity, size: number, out: Float32Array, base: number, nchw: boolean, m: ChannelMath): void {
  const { width: W, height: H, data } = src;
  const k = Math.min(4, Math.max(1, Math.ceil(Math.hypot(t.a, t.b) - 1e-9)));
  const inv = 1 / (k * k);
  const line = new Float32Array(size * 3);
  for (let oy = 0; oy < size; oy++) {
    for (let ox = 0; ox < size; ox++) {
      let r = 0;
      let g = 0;
      let b = 0;
      for (let j = 0; j < k; j++) {
        const cy = oy + (j + 0.5) / k;
        for (let i = 0; i < k; i++) {
          const cx = ox + (i + 0.5) / k;
          const u = t.a * cx - t.b * cy + t.tx - 0.5;
          const v = t.b * cx + t.a * cy + t.ty - 0.5;
          if (u < -0.5 || v < -0.5 || u >= W - 0.5 || v >= H - 0.5) continue;
          const uc = u < 0 ? 0 : u > W - 1 ? W - 1 : u;
          const vc = v < 0 ? 0 : v > H - 1 ? H - 1 : v;
          const x0 = Math.floor(uc);
          const y0 = Math.floor(vc);
          const dx = x0 + 1 < W ? 3 : 0;
          const dy = y0 + 1 < H ? W * 3 : 0;
          const fx = uc - x0;
          const fy = vc - y0;
          const w00 = (1 - fx) * (1 - fy);
          const w01 = fx * (1 - fy);
          const w10 = (1 - fx) * fy;
          const w11 = fx * fy;
          const p = (y0 * W + x0) * 3;
          r += data[p]! * w00 + data[p + dx]! * w01 + data[p + dy]! * w10 + data[p + dy + dx]! * w11;
          g += data[p + 1]! * w00 + data[p + dx + 1]! * w01 + data[p + dy + 1]! * w10 + data[p + dy + dx + 1]! * w11;
          b += data[p + 2]! * w00 + data[p + dx + 2]! * w01 + data[p + dy + 2]! * w10 + data[p + dy + dx + 2]! * w11;
        }
      }
      line[ox * 3] = r * inv;
      line[ox * 3 + 1] = g * inv;
      line[ox * 3 + 2] = b * inv;
    }
    storeRow(line, oy, size, out, base, nchw, m);
  }
}

/**
 * One batch tensor of `size` x `size` crops of `source`, normalised by `spec` (layout, colour order, scale, mean,
 * std), in one pass per crop. Equal to normalize(resampleRegion / warpSimilarity crops) up to their rounding of
 * each pixel to a byte (at most half a grey level before normalisation).
 */
export function cropsToTensor(source: RgbImage, crops: readonly CropSampling[], size: number, spec: NormalizeSpec): FloatTensor {
  const { width, height, data } = source;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0 || data.length !== width * height * 3)
    throw new InvalidInputError(`RGB image ${width}x${height} must have positive integer dimensions and ${width * height * 3} bytes`);
  if (!Number.isInteger(size) || size <= 0) throw new InvalidInputError(`crop size must be a positive integer, got ${size}`);
  if (crops.length === 0) throw new InvalidInputError('cropsToTensor needs at least one crop');
  const m = channelMath(spec);
  const channels = m.gray ? 1 : 3;
  const perCrop = size * size * channels;
  const out = new Float32Array(perCrop * crops.length);
  const nchw = spec.layout === 'NCHW';
  crops.forEach((crop, n) => {
    if (crop.kind === 'region') {
      const r = crop.region;
      if (![r.x, r.y, r.width, r.height].every(Number.isFinite) || r.width <= 0 || r.height <= 0)
        throw new InvalidInputError(`crop region must be finite with a positive size, got x=${r.x} y=${r.y} w=${r.width} h=${r.height}`);
      regionCrop(source, r, size, out, n * perCrop, nchw, m);
    } else {
      const t = crop.toSource;
      if (![t.a, t.b, t.tx, t.ty].every(Number.isFinite) || !(Math.hypot(t.a, t.b) > 0))
        throw new InvalidInputError('crop similarity must be finite with a non-zero scale');
      similarityCrop(source, t, size, out, n * perCrop, nchw, m);
    }
  });
  return { data: out, dims: nchw ? [crops.length, channels, size, size] : [crops.length, size, size, channels] };
}
