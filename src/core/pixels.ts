// Pixel types and byte-level facts (raw layouts, bytes per pixel, container magic bytes); no imports, so both the
// sharp adapter (image.ts) and the drawing code (draw.ts) build on it without a cycle.

/** Tightly packed 8-bit RGB pixels, row-major, `data.length === width * height * 3`. */
export interface RgbImage {
  data: Uint8Array;
  width: number;
  height: number;
}

/** Memory layouts of uncompressed frames (the contract's PixelFormat without its prefix). */
export type RawPixelFormat = 'RGB8' | 'BGR8' | 'GRAY8' | 'RGBA8' | 'NV12';
export const rawPixelFormats: readonly RawPixelFormat[] = ['RGB8', 'BGR8', 'GRAY8', 'RGBA8', 'NV12'];

/** An uncompressed camera frame as it arrives on the wire. */
export interface RawFrame {
  data: Uint8Array;
  width: number;
  height: number;
  format: RawPixelFormat;
  /**
   * Bytes per row (of the luma plane for NV12, whose chroma plane uses the same stride).
   * Default: width * bytes per pixel (width for NV12).
   */
  stride?: number;
}

/** Bytes per pixel of each layout; for NV12 the luma plane's (the chroma plane adds half a row per row). */
export const bytesPerPixel: Readonly<Record<RawPixelFormat, number>> = { RGB8: 3, BGR8: 3, GRAY8: 1, RGBA8: 4, NV12: 1 };

/** Bytes a raw frame needs with the given row stride: NV12 carries a half-height chroma plane after the luma plane. */
export function rawFrameBytes(format: RawPixelFormat, stride: number, height: number): number {
  return format === 'NV12' ? stride * height + stride * Math.ceil(height / 2) : stride * height;
}

/** Image containers the server decodes. */
export type ImageContainer = 'jpeg' | 'png' | 'webp';

const pngSignature = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** The container of encoded bytes, from their magic bytes; undefined for anything else (so sharp never sees SVG, TIFF, PDF...). */
export function sniffImageContainer(bytes: Uint8Array): ImageContainer | undefined {
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  if (bytes.length >= 8 && pngSignature.every((b, i) => bytes[i] === b)) return 'png';
  const ascii = (from: number, to: number): string => String.fromCharCode(...bytes.subarray(from, to));
  if (bytes.length >= 12 && ascii(0, 4) === 'RIFF' && ascii(8, 12) === 'WEBP') return 'webp';
  return undefined;
}
