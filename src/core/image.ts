// Frame pixels in and out: the one adapter over sharp (decode, PNG encode) plus raw-frame conversion to RGB8.
import sharp from 'sharp';
import { InvalidInputError, errorMessage } from './errors.js';
import { isSrgbProfile } from './icc.js';
import { bytesPerPixel, sniffImageContainer } from './pixels.js';
import type { RawFrame, RgbImage } from './pixels.js';

export type { RawFrame, RawPixelFormat, RgbImage } from './pixels.js';

export interface ImageLimits {
  /** Largest accepted width * height, decoded or raw. Default 50 000 000 (an 8K frame is 33.2 M). */
  maxPixels?: number;
  /**
   * Called with width * height once the header is read and checked, before any pixel memory is allocated; the decode
   * waits for it (a budget of pixels across concurrent frames). Not called for input rejected from its header.
   */
  reservePixels?: (pixels: number) => Promise<void>;
  /**
   * Decode as before issue 12 (the bench's and the tests' reference): random access, and an embedded sRGB profile
   * converted to sRGB. Default false: sequential reads and sRGB-tagged pixels taken as they are (see decodeWithSharp).
   */
  referenceDecode?: boolean;
}

export interface RawFrameOptions extends ImageLimits {
  /** YUV -> RGB matrix for NV12. Default 'bt601' (what most camera SoCs emit even at HD). */
  yuvMatrix?: 'bt601' | 'bt709';
  /** NV12 value range: 'limited' (Y 16..235, video) or 'full' (Y 0..255, JPEG-style). Default 'limited'. */
  yuvRange?: 'limited' | 'full';
}

export const defaultImageLimits = { maxPixels: 50_000_000 };

function checkPixelCount(width: number, height: number, maxPixels: number, what: string): void {
  if (width * height > maxPixels) {
    throw new InvalidInputError(`${what} is ${width}x${height} = ${width * height} pixels, over the limit of ${maxPixels}`);
  }
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * Decodes a JPEG, PNG or WebP into RGB8, applying the EXIF orientation so that coordinates match what a viewer
 * shows. Alpha is dropped, greyscale is expanded. Empty, truncated, corrupt, oversized or other-format input is an
 * InvalidInputError.
 */
export async function decodeImage(bytes: Uint8Array, limits: ImageLimits = {}): Promise<RgbImage> {
  const maxPixels = limits.maxPixels ?? defaultImageLimits.maxPixels;
  if (bytes.byteLength === 0) throw new InvalidInputError('image is empty (0 bytes)');
  if (bytes[0] === 0x50 && (bytes[1] === 0x35 || bytes[1] === 0x36)) return decodeNetpbm(bytes, maxPixels, limits.reservePixels);
  const header = await probeImage(bytes, maxPixels);
  await limits.reservePixels?.(header.width * header.height);
  return decodeWithSharp(bytes, header, maxPixels, limits.referenceDecode ?? false);
}

/** An encoded image's container and its size as a viewer shows it (EXIF orientation applied). */
export interface ImageHeader {
  format: 'jpeg' | 'png' | 'webp';
  width: number;
  height: number;
  /** EXIF orientation (1: none). */
  orientation: number;
  /** The pixels are sRGB as stored: RGB or grey without an ICC profile, or with an sRGB one (icc.ts). */
  srgbAsStored: boolean;
}

/**
 * Reads and checks a JPEG, PNG or WebP header without decoding pixels: unsupported, corrupt, empty and oversized
 * images are an InvalidInputError.
 */
export async function probeImage(bytes: Uint8Array, maxPixels: number = defaultImageLimits.maxPixels): Promise<ImageHeader> {
  if (bytes.byteLength === 0) throw new InvalidInputError('image is empty (0 bytes)');
  const format = sniffImageContainer(bytes);
  if (!format)
    throw new InvalidInputError(
      `unsupported image format (expected JPEG, PNG or WebP; first bytes ${Buffer.from(bytes.subarray(0, 8)).toString('hex')})`,
    );
  let width: number;
  let height: number;
  let orientation: number;
  let srgbAsStored: boolean;
  try {
    // Header first: rejects huge images before any pixel memory is allocated.
    const meta = await sharp(asBuffer(bytes)).metadata();
    width = meta.autoOrient?.width ?? meta.width ?? 0;
    height = meta.autoOrient?.height ?? meta.height ?? 0;
    orientation = meta.orientation ?? 1;
    srgbAsStored = (meta.space === 'srgb' || meta.space === 'b-w') && (meta.icc === undefined || isSrgbProfile(meta.icc));
  } catch (e) {
    throw new InvalidInputError(`corrupt ${format.toUpperCase()} image: ${firstLine(e)}`, { cause: e });
  }
  if (width <= 0 || height <= 0) throw new InvalidInputError(`${format.toUpperCase()} image has no pixels (${width}x${height})`);
  checkPixelCount(width, height, maxPixels, `${format.toUpperCase()} image`);
  return { format, width, height, orientation, srgbAsStored };
}

/**
 * Decodes a JPEG (checked with probeImage) straight to `width` x `height` RGB8: libjpeg's DCT scaling does most of
 * the shrinking while the file is decoded (sharp's shrink-on-load: 1/2, 1/4 or 1/8, then a linear resize for the
 * rest): decoding the demo photos to the detector's 256 px took 0.30x the time of a full decode + resize
 * (`npm run bench -- --sections preprocess`, two runs x3.23 and x3.33 the rate). Pixel (x, y) of the
 * result covers frame pixels [x * W / width, (x + 1) * W / width) of the W-wide frame, up to libjpeg's rounding of
 * partial blocks (under 0.2 % of the frame size).
 */
export async function decodeJpegScaled(
  bytes: Uint8Array,
  header: ImageHeader,
  width: number,
  height: number,
  maxPixels: number,
): Promise<RgbImage> {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0)
    throw new InvalidInputError(`scaled decode size must be positive integers, got ${width}x${height}`);
  return decodeWithSharp(bytes, header, maxPixels, false, { width, height });
}

/**
 * sharp decode to RGB8. Two measured costs are avoided (demo photos, 1920 px, one core): converting an embedded sRGB
 * profile to sRGB (a near-identity transform, within 1 level here, that took longer than the decode: 51 -> 19 ms
 * per photo without it) and libvips' random-access read when nothing needs one (no rotation: 29.5 -> 19.7 ms).
 */
async function decodeWithSharp(
  bytes: Uint8Array,
  header: ImageHeader,
  maxPixels: number,
  reference: boolean,
  size?: { width: number; height: number },
): Promise<RgbImage> {
  const { format } = header;
  let decoded: { data: Buffer; info: { width: number; height: number; channels: number } };
  try {
    const sequentialRead = !reference && header.orientation === 1;
    let pipeline = sharp(asBuffer(bytes), { failOn: 'truncated', limitInputPixels: maxPixels, pages: 1, sequentialRead }).autoOrient();
    if (!reference && header.srgbAsStored) pipeline = pipeline.keepIccProfile();
    if (size) pipeline = pipeline.resize(size.width, size.height, { fit: 'fill', kernel: 'linear', fastShrinkOnLoad: true });
    decoded = await pipeline.removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  } catch (e) {
    const msg = firstLine(e);
    const kind = /premature end|truncated|unexpected end/i.test(msg) ? 'truncated' : 'corrupt';
    throw new InvalidInputError(`${kind} ${format.toUpperCase()} image: ${msg}`, { cause: e });
  }
  const { data, info } = decoded;
  const pixels = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (info.channels === 3) return { data: pixels, width: info.width, height: info.height };
  // toColourspace('srgb') yields 3 channels in practice; expand defensively if a build returns grey.
  return fromRaw({ data: pixels, width: info.width, height: info.height, format: info.channels === 1 ? 'GRAY8' : 'RGBA8' }, { maxPixels });
}

/**
 * Binary PGM (P5) and PPM (P6) with maxval < 256: face datasets (ORL/AT&T) ship them and sharp does not read them.
 * Header: magic, width, height, maxval separated by whitespace, with '#' comments.
 */
async function decodeNetpbm(bytes: Uint8Array, maxPixels: number, reservePixels: ImageLimits['reservePixels']): Promise<RgbImage> {
  const fields: number[] = [];
  let i = 2;
  while (fields.length < 3 && i < bytes.length) {
    const c = bytes[i]!;
    if (c === 0x23) {
      while (i < bytes.length && bytes[i] !== 0x0a) i++;
    } else if (c >= 0x30 && c <= 0x39) {
      let v = 0;
      while (i < bytes.length && bytes[i]! >= 0x30 && bytes[i]! <= 0x39) v = v * 10 + bytes[i++]! - 0x30;
      fields.push(v);
      continue;
    } else if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) {
      throw new InvalidInputError('corrupt PGM/PPM header');
    }
    i++;
  }
  const [width, height, maxval] = fields;
  const kind = bytes[1] === 0x35 ? 'PGM' : 'PPM';
  if (width === undefined || height === undefined || maxval === undefined || width <= 0 || height <= 0)
    throw new InvalidInputError(`corrupt ${kind} header`);
  if (maxval <= 0 || maxval > 255) throw new InvalidInputError(`${kind} with maxval ${maxval} is not supported (8-bit only)`);
  checkPixelCount(width, height, maxPixels, `${kind} image`);
  const channels = kind === 'PGM' ? 1 : 3;
  const start = i; // exactly one whitespace byte after maxval, consumed by the loop above
  const need = width * height * channels;
  if (bytes.length - start < need) throw new InvalidInputError(`truncated ${kind} image: ${bytes.length - start} of ${need} pixel bytes`);
  await reservePixels?.(width * height);
  const px = bytes.subarray(start, start + need);
  const scaled = maxval === 255 ? px : Uint8Array.from(px, (v) => Math.round((v * 255) / maxval));
  return channels === 3
    ? { data: Uint8Array.from(scaled), width, height }
    : fromRaw({ data: scaled, width, height, format: 'GRAY8' }, { maxPixels });
}

/**
 * Resizes RGB8 pixels natively (libvips, bilinear: lanczos3 upscaled small grey ORL faces so that BlazeFace missed 5
 * of 160, bilinear 1 like the JS resampler): ~10 ms for 1920x1280 -> 256 where the pure-JS resampler
 * takes ~50 ms. Used for whole-frame detector inputs; face crops stay in JS (small, sub-pixel exact regions).
 */
export async function resizeRgb(image: RgbImage, width: number, height: number): Promise<RgbImage> {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0)
    throw new InvalidInputError(`resize target must be positive integers, got ${width}x${height}`);
  const out = await sharp(asBuffer(image.data), { raw: { width: image.width, height: image.height, channels: 3 } })
    .resize(width, height, { fit: 'fill', kernel: 'linear' })
    .raw()
    .toBuffer();
  return { data: new Uint8Array(out.buffer, out.byteOffset, out.byteLength), width, height };
}

function firstLine(e: unknown): string {
  return errorMessage(e).split('\n')[0]!.trim();
}

/** An integer pixel rectangle inside an image. */
export interface PixelRect {
  left: number;
  top: number;
  width: number;
  height: number;
}

/**
 * Cuts `rect` (inside the image, integers) out of RGB8 pixels and resizes it to outWidth x outHeight natively
 * (libvips, linear kernel widened by the shrink factor, so shrinking averages its footprint): faceres's 224 px crops
 * plus normalize at 2.2-2.5x the rate of the JS resampler and 1.3x the one-pass JS kernel (bench section
 * "preprocess"); runs on libuv's thread pool.
 */
export async function cropResizeRgb(image: RgbImage, rect: PixelRect, outWidth: number, outHeight: number): Promise<RgbImage> {
  const { left, top, width, height } = rect;
  if (
    ![left, top, width, height, outWidth, outHeight].every(Number.isInteger) ||
    width <= 0 ||
    height <= 0 ||
    outWidth <= 0 ||
    outHeight <= 0
  )
    throw new InvalidInputError(`crop ${left},${top} ${width}x${height} -> ${outWidth}x${outHeight} must be positive integers`);
  if (left < 0 || top < 0 || left + width > image.width || top + height > image.height)
    throw new InvalidInputError(`crop ${left},${top} ${width}x${height} is not inside the ${image.width}x${image.height} image`);
  const out = await sharp(asBuffer(image.data), { raw: { width: image.width, height: image.height, channels: 3 } })
    .extract(rect)
    .resize(outWidth, outHeight, { fit: 'fill', kernel: 'linear' })
    .raw()
    .toBuffer();
  return { data: new Uint8Array(out.buffer, out.byteOffset, out.byteLength), width: outWidth, height: outHeight };
}

function checkDims(width: number, height: number, maxPixels: number): void {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
    throw new InvalidInputError(`raw frame dimensions must be positive integers, got ${width}x${height}`);
  }
  checkPixelCount(width, height, maxPixels, 'raw frame');
}

/**
 * Converts a raw frame to tightly packed RGB8, validating stride and buffer length first.
 * RGB8 with the default stride is returned without a copy.
 */
export function fromRaw(frame: RawFrame, options: RawFrameOptions = {}): RgbImage {
  const { width, height, format, data } = frame;
  const maxPixels = options.maxPixels ?? defaultImageLimits.maxPixels;
  if (!(data instanceof Uint8Array)) throw new InvalidInputError('raw frame data must be a byte array');
  checkDims(width, height, maxPixels);
  if (format === 'NV12') return nv12ToRgb(frame, options);
  const bpp = bytesPerPixel[format];
  if (bpp === undefined)
    throw new InvalidInputError(`unsupported raw pixel format "${String(format)}" (expected RGB8, BGR8, GRAY8, RGBA8 or NV12)`);
  const rowBytes = width * bpp;
  const stride = frame.stride ?? rowBytes;
  if (!Number.isInteger(stride) || stride < rowBytes) {
    throw new InvalidInputError(`${format} stride ${stride} is less than width * ${bpp} = ${rowBytes} bytes`);
  }
  const expected = stride * height;
  if (data.byteLength !== expected) {
    throw new InvalidInputError(`${format} frame ${width}x${height} with stride ${stride} needs ${expected} bytes, got ${data.byteLength}`);
  }
  if (format === 'RGB8' && stride === rowBytes) return { data, width, height };
  const out = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    let s = y * stride;
    let d = y * width * 3;
    if (format === 'RGB8') {
      out.set(data.subarray(s, s + rowBytes), d);
      continue;
    }
    for (let x = 0; x < width; x++, d += 3, s += bpp) {
      if (format === 'GRAY8') {
        const v = data[s]!;
        out[d] = v;
        out[d + 1] = v;
        out[d + 2] = v;
      } else if (format === 'BGR8') {
        out[d] = data[s + 2]!;
        out[d + 1] = data[s + 1]!;
        out[d + 2] = data[s]!;
      } else {
        out[d] = data[s]!;
        out[d + 1] = data[s + 1]!;
        out[d + 2] = data[s + 2]!;
      }
    }
  }
  return { data: out, width, height };
}

const clampByte = (v: number): number => (v < 0 ? 0 : v > 255 ? 255 : Math.round(v));

/** NV12: a full-resolution Y plane, then one interleaved U,V plane at half resolution in both directions. */
function nv12ToRgb(frame: RawFrame, options: RawFrameOptions): RgbImage {
  const { width, height, data } = frame;
  if (width % 2 !== 0 || height % 2 !== 0) throw new InvalidInputError(`NV12 frame dimensions must be even, got ${width}x${height}`);
  const stride = frame.stride ?? width;
  if (!Number.isInteger(stride) || stride < width) throw new InvalidInputError(`NV12 stride ${stride} is less than the width ${width}`);
  const expected = stride * height + stride * (height / 2);
  if (data.byteLength !== expected) {
    throw new InvalidInputError(
      `NV12 frame ${width}x${height} with stride ${stride} needs ${expected} bytes (luma ${stride * height} + chroma ${stride * (height / 2)}), got ${data.byteLength}`,
    );
  }
  const full = (options.yuvRange ?? 'limited') === 'full';
  // Kr/Kb of the chosen matrix give the four chroma coefficients; limited range rescales Y 16..235 and C 16..240.
  const [kr, kb] = (options.yuvMatrix ?? 'bt601') === 'bt709' ? [0.2126, 0.0722] : [0.299, 0.114];
  const kg = 1 - kr - kb;
  const yGain = full ? 1 : 255 / 219;
  const cGain = full ? 1 : 255 / 224;
  const rv = 2 * (1 - kr) * cGain;
  const bu = 2 * (1 - kb) * cGain;
  const gu = ((2 * kb * (1 - kb)) / kg) * cGain;
  const gv = ((2 * kr * (1 - kr)) / kg) * cGain;
  const yOffset = full ? 0 : 16;
  const chroma = stride * height;
  const out = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    const yRow = y * stride;
    const cRow = chroma + (y >> 1) * stride;
    let d = y * width * 3;
    for (let x = 0; x < width; x++, d += 3) {
      const lum = (data[yRow + x]! - yOffset) * yGain;
      const c = cRow + (x & ~1);
      const u = data[c]! - 128;
      const v = data[c + 1]! - 128;
      out[d] = clampByte(lum + rv * v);
      out[d + 1] = clampByte(lum - gu * u - gv * v);
      out[d + 2] = clampByte(lum + bu * u);
    }
  }
  return { data: out, width, height };
}

/** Encodes RGB8 pixels as JPEG at `quality` 1..100 (face snapshots of the gateway). */
export async function encodeJpeg(image: RgbImage, quality = 85): Promise<Uint8Array> {
  const { data, width, height } = image;
  if (data.byteLength !== width * height * 3)
    throw new InvalidInputError(`RGB image ${width}x${height} needs ${width * height * 3} bytes, got ${data.byteLength}`);
  const jpeg = await sharp(asBuffer(data), { raw: { width, height, channels: 3 } })
    .jpeg({ quality })
    .toBuffer();
  return new Uint8Array(jpeg.buffer, jpeg.byteOffset, jpeg.byteLength);
}

/** Encodes RGB8 pixels as PNG (annotated frames, debugging). */
export async function encodePng(image: RgbImage): Promise<Uint8Array> {
  const { data, width, height } = image;
  if (data.byteLength !== width * height * 3)
    throw new InvalidInputError(`RGB image ${width}x${height} needs ${width * height * 3} bytes, got ${data.byteLength}`);
  const png = await sharp(asBuffer(data), { raw: { width, height, channels: 3 } })
    .png()
    .toBuffer();
  return new Uint8Array(png.buffer, png.byteOffset, png.byteLength);
}
