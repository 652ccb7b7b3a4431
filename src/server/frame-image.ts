// A wire Image (encoded or raw) decoded once into RGB8 pixels; every malformed frame is an InvalidInputError.
import { InvalidInputError } from '../core/errors.js';
import { decodeImage, fromRaw, type RawPixelFormat, type RgbImage } from '../core/image.js';
import { ImageFormat, PixelFormat, type Image } from '../gen/kt/v1/common.js';

const rawFormats: Partial<Record<PixelFormat, RawPixelFormat>> = {
  [PixelFormat.PIXEL_FORMAT_RGB8]: 'RGB8',
  [PixelFormat.PIXEL_FORMAT_BGR8]: 'BGR8',
  [PixelFormat.PIXEL_FORMAT_GRAY8]: 'GRAY8',
  [PixelFormat.PIXEL_FORMAT_RGBA8]: 'RGBA8',
  [PixelFormat.PIXEL_FORMAT_NV12]: 'NV12',
};
const bytesPerPixel: Record<RawPixelFormat, number> = { RGB8: 3, BGR8: 3, GRAY8: 1, RGBA8: 4, NV12: 1 };

const magic: Partial<Record<ImageFormat, (b: Uint8Array) => boolean>> = {
  [ImageFormat.IMAGE_FORMAT_JPEG]: (b) => b[0] === 0xff && b[1] === 0xd8,
  [ImageFormat.IMAGE_FORMAT_PNG]: (b) => b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47,
  [ImageFormat.IMAGE_FORMAT_WEBP]: (b) => b[0] === 0x52 && b[1] === 0x49 && b[2] === 0x46 && b[3] === 0x46,
};

/** Decodes the frame's image: JPEG/PNG/WebP through sharp, raw layouts with stride and length checks. */
export async function decodeFrameImage(image: Image | undefined, maxPixels: number): Promise<RgbImage> {
  const source = image?.source;
  if (source === undefined) throw new InvalidInputError('frame has no image: set image.encoded or image.raw');
  if (source.$case === 'encoded') {
    const { data, format } = source.value;
    if (format === ImageFormat.UNRECOGNIZED) throw new InvalidInputError('image.encoded.format is not a known ImageFormat');
    const matches = magic[format];
    if (matches && data.length > 0 && !matches(data)) {
      throw new InvalidInputError(`image.encoded.format says ${format.replace('IMAGE_FORMAT_', '')} but the bytes are not one (first bytes ${Buffer.from(data.subarray(0, 8)).toString('hex')})`);
    }
    return decodeImage(data, { maxPixels });
  }
  const raw = source.value;
  const format = rawFormats[raw.pixelFormat];
  if (format === undefined) {
    throw new InvalidInputError(`image.raw.pixel_format ${raw.pixelFormat === PixelFormat.PIXEL_FORMAT_UNSPECIFIED ? 'is unspecified' : 'is not a known PixelFormat'}: set RGB8, BGR8, GRAY8, RGBA8 or NV12`);
  }
  const { widthPx: width, heightPx: height, strideBytes } = raw;
  let data: Uint8Array = raw.data;
  // The contract allows trailing bytes after the last row (some capture APIs pad buffers); fromRaw wants the exact size.
  if (width > 0 && height > 0 && width * height <= maxPixels) {
    const stride = strideBytes || width * bytesPerPixel[format];
    const needed = format === 'NV12' ? stride * height + stride * Math.ceil(height / 2) : stride * height;
    if (data.length > needed) data = data.subarray(0, needed);
  }
  return fromRaw({ data, width, height, format, ...(strideBytes ? { stride: strideBytes } : {}) }, { maxPixels });
}
