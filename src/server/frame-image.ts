// A wire Image (encoded or raw) decoded once into RGB8 pixels; every malformed frame is an InvalidInputError.
import { InvalidInputError } from '../core/errors.js';
import { decodeImage, fromRaw } from '../core/image.js';
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
    return decodeImage(data, { maxPixels, ...(reservePixels ? { reservePixels } : {}) });
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
