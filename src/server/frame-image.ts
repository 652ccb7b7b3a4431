// A wire Image (encoded or raw) decoded once into RGB8 pixels; every malformed frame is an InvalidInputError.
import { InvalidInputError } from '../core/errors.js';
import { decodeImage, decodeJpegScaled, fromRaw, probeImage } from '../core/image.js';
import { bytesPerPixel, rawFrameBytes, sniffImageContainer, type RgbImage } from '../core/pixels.js';
import { imageContainers, pixelFormats } from '../contract/wire-names.js';
import { ImageFormat, PixelFormat, type Image } from '../gen/kt/v1/common.js';

/**
 * Decodes the frame's image: JPEG/PNG/WebP through sharp, raw layouts with stride and length checks. `reservePixels`
 * (a share of the server's pixel budget) is awaited once the size is known and checked, before pixels are allocated.
 */
export async function decodeFrameImage(
  image: Image | undefined,
  maxPixels: number,
  reservePixels?: (pixels: number) => Promise<void>,
  referenceDecode = false,
): Promise<RgbImage> {
  const source = image?.source;
  if (source === undefined) throw new InvalidInputError('frame has no image: set image.encoded or image.raw');
  if (source.$case === 'encoded') {
    const { data, format } = source.value;
    if (format === ImageFormat.UNRECOGNIZED) throw new InvalidInputError('image.encoded.format is not a known ImageFormat');
    const declared = imageContainers.fromWire(format);
    if (declared !== undefined && data.length > 0 && sniffImageContainer(data) !== declared) {
      throw new InvalidInputError(
        `image.encoded.format says ${format.replace('IMAGE_FORMAT_', '')} but the bytes are not one (first bytes ${Buffer.from(data.subarray(0, 8)).toString('hex')})`,
      );
    }
    return decodeImage(data, { maxPixels, referenceDecode, ...(reservePixels ? { reservePixels } : {}) });
  }
  const raw = source.value;
  const format = pixelFormats.fromWire(raw.pixelFormat);
  if (format === undefined) {
    throw new InvalidInputError(
      `image.raw.pixel_format ${raw.pixelFormat === PixelFormat.PIXEL_FORMAT_UNSPECIFIED ? 'is unspecified' : 'is not a known PixelFormat'}: set RGB8, BGR8, GRAY8, RGBA8 or NV12`,
    );
  }
  const { widthPx: width, heightPx: height, strideBytes } = raw;
  let data: Uint8Array = raw.data;
  // The contract allows trailing bytes after the last row (some capture APIs pad buffers); fromRaw wants the exact size.
  if (width > 0 && height > 0 && width * height <= maxPixels) {
    const stride = strideBytes || width * bytesPerPixel[format];
    const needed = rawFrameBytes(format, stride, height);
    if (data.length > needed) data = data.subarray(0, needed);
    await reservePixels?.(width * height);
  }
  return fromRaw({ data, width, height, format, ...(strideBytes ? { stride: strideBytes } : {}) }, { maxPixels });
}

/**
 * A frame's pixels, decoded when first asked for and at the scale asked for. A JPEG is decoded with shrink-on-load
 * (a cheap reduced decode for the detector, the full frame only when a crop needs it); other images are decoded
 * whole at once. Every scale shares the frame's coordinates: pixel x of a `w`-wide image covers frame pixels
 * [x * width / w, (x + 1) * width / w).
 */
export interface FramePixels {
  /** Frame size (EXIF orientation applied): the coordinates of every box and point. */
  readonly width: number;
  readonly height: number;
  /**
   * The frame decoded at `width` x `height` (integers, at most the frame size) or larger: a cached decode that is big
   * enough, a new reduced decode, or the full frame when a reduced one would not save much.
   */
  atLeast(width: number, height: number): Promise<RgbImage>;
  /** The whole frame at full resolution. */
  full(): Promise<RgbImage>;
}

/**
 * A reduced decode is only worth it when libjpeg's DCT scaling does most of the shrink. sharp takes 1/2, 1/4 or 1/8
 * from the DCT only when the shrink exceeds the next integer (a shrink of 4.x decodes at 1/2 and resizes the rest),
 * and a large linear rest costs as much as the decode saved (bench section "preprocess" on the demo photos: shrunk
 * by 3, x0.96 the rate of a full decode; by 5, x2.1; to the detector's 256 px, x3.3). Smaller shrinks decode fully.
 */
export const MIN_SCALED_DECODE_SHRINK = 5;

/** The pixels already decoded (PNG, WebP, raw frames, and JPEG when shrink-on-load is off). */
export function decodedFramePixels(image: RgbImage): FramePixels {
  return { width: image.width, height: image.height, atLeast: () => Promise.resolve(image), full: () => Promise.resolve(image) };
}

/**
 * Opens a wire image for analysis: a JPEG's header is read and checked now and its pixels decoded on demand (each
 * decode reserves its own width x height of the pixel budget); anything else is decoded now (decodeFrameImage).
 */
export async function openFrameImage(
  image: Image | undefined,
  maxPixels: number,
  reservePixels?: (pixels: number) => Promise<void>,
): Promise<FramePixels> {
  const source = image?.source;
  const encoded = source?.$case === 'encoded' && source.value.format !== ImageFormat.UNRECOGNIZED ? source.value : undefined;
  const declared = encoded ? imageContainers.fromWire(encoded.format) : undefined;
  // Everything but a JPEG that says it is one (or says nothing) takes the checks and the decode of decodeFrameImage.
  if (!encoded || sniffImageContainer(encoded.data) !== 'jpeg' || (declared !== undefined && declared !== 'jpeg'))
    return decodedFramePixels(await decodeFrameImage(image, maxPixels, reservePixels));
  const jpeg = encoded.data;
  const header = await probeImage(jpeg, maxPixels);
  const decoded: RgbImage[] = [];
  let full: Promise<RgbImage> | undefined;
  const fullFrame = (): Promise<RgbImage> =>
    (full ??= decodeImage(jpeg, { maxPixels, ...(reservePixels ? { reservePixels } : {}) }).then((img) => {
      decoded.push(img);
      return img;
    }));
  return {
    width: header.width,
    height: header.height,
    full: fullFrame,
    async atLeast(width, height) {
      const cached = decoded.find((img) => img.width >= width && img.height >= height);
      if (cached) return cached;
      const shrink = Math.min(header.width / width, header.height / height);
      if (full || shrink < MIN_SCALED_DECODE_SHRINK) return fullFrame();
      await reservePixels?.(width * height);
      const img = await decodeJpegScaled(jpeg, header, width, height, maxPixels);
      decoded.push(img);
      return img;
    },
  };
}

/** FramePixels that add up the time spent decoding (`openedMs`: the time it took to open them). */
export function timedDecodes(pixels: FramePixels, openedMs: number): FramePixels & { decodeMs(): number } {
  let total = openedMs;
  const timed = async (decode: () => Promise<RgbImage>): Promise<RgbImage> => {
    const started = performance.now();
    try {
      return await decode();
    } finally {
      total += performance.now() - started;
    }
  };
  return {
    width: pixels.width,
    height: pixels.height,
    atLeast: (width, height) => timed(() => pixels.atLeast(width, height)),
    full: () => timed(() => pixels.full()),
    decodeMs: () => total,
  };
}
