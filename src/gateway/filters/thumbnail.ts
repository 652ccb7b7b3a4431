// A small grey thumbnail of any frame (raw NV12/GRAY8/RGB8/BGR8/RGBA8 read directly, encoded frames decoded once),
// for the motion gate: block averages of luma, so sensor noise averages out and a 1080p frame costs a few thousand reads.
import { decodeImage } from '../../core/image.js';
import type { ImageInput } from '../../sdk/results.js';

/** Grey levels 0..255, row-major. */
export interface GreyThumbnail {
  data: Float32Array;
  width: number;
  height: number;
}

interface LumaReader {
  width: number;
  height: number;
  /** Luma 0..255 at pixel (x, y). */
  at(x: number, y: number): number;
}

function lumaOfRaw(image: Exclude<ImageInput, Uint8Array>): LumaReader {
  const { data, widthPx: width, heightPx: height, pixelFormat } = image;
  const bpp = pixelFormat === 'RGBA8' ? 4 : pixelFormat === 'RGB8' || pixelFormat === 'BGR8' ? 3 : 1;
  const stride = image.strideBytes !== undefined && image.strideBytes > 0 ? image.strideBytes : width * bpp;
  if (bpp === 1) return { width, height, at: (x, y) => data[y * stride + x]! };
  // Rec. 601 weights; BGR swaps the outer channels.
  const [wr, wb] = pixelFormat === 'BGR8' ? [0.114, 0.299] : [0.299, 0.114];
  return {
    width,
    height,
    at: (x, y) => {
      const i = y * stride + x * bpp;
      return wr * data[i]! + 0.587 * data[i + 1]! + wb * data[i + 2]!;
    },
  };
}

async function lumaOf(image: ImageInput): Promise<LumaReader> {
  if (!(image instanceof Uint8Array)) return lumaOfRaw(image);
  const rgb = await decodeImage(image);
  return lumaOfRaw({ data: rgb.data, widthPx: rgb.width, heightPx: rgb.height, pixelFormat: 'RGB8' });
}

/** Samples per block side: 3 x 3 reads per thumbnail pixel. */
const samplesPerSide = 3;

/** The thumbnail `width` pixels wide (height by aspect, at least 1), each pixel the mean of a 3x3 grid in its block. */
export async function greyThumbnail(image: ImageInput, width: number): Promise<GreyThumbnail> {
  const luma = await lumaOf(image);
  const w = Math.max(1, Math.min(width, luma.width));
  const h = Math.max(1, Math.round((luma.height * w) / luma.width));
  const out = new Float32Array(w * h);
  const bw = luma.width / w;
  const bh = luma.height / h;
  for (let ty = 0; ty < h; ty++) {
    for (let tx = 0; tx < w; tx++) {
      let sum = 0;
      for (let sy = 0; sy < samplesPerSide; sy++) {
        const y = Math.min(luma.height - 1, Math.floor(ty * bh + ((sy + 0.5) * bh) / samplesPerSide));
        for (let sx = 0; sx < samplesPerSide; sx++) {
          const x = Math.min(luma.width - 1, Math.floor(tx * bw + ((sx + 0.5) * bw) / samplesPerSide));
          sum += luma.at(x, y);
        }
      }
      out[ty * w + tx] = sum / (samplesPerSide * samplesPerSide);
    }
  }
  return { data: out, width: w, height: h };
}

/** Fraction of thumbnail pixels whose grey level changed by more than `pixelThreshold` (0..1); 1 when sizes differ. */
export function changedFraction(a: GreyThumbnail, b: GreyThumbnail, pixelThreshold: number): number {
  if (a.width !== b.width || a.height !== b.height) return 1;
  let changed = 0;
  for (let i = 0; i < a.data.length; i++) if (Math.abs(a.data[i]! - b.data[i]!) > pixelThreshold) changed += 1;
  return changed / a.data.length;
}
