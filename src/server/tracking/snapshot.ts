// Best-face snapshots: a JPEG of a face with some context around it, kept per track while better faces come.
import { encodeJpeg, type RgbImage } from '../../core/image.js';
import type { BoxRect } from './kalman.js';

/** Margin around the face box, as a fraction of its size on each side (hair and chin in view). */
const margin = 0.4;
/** A new snapshot is taken only when the face is this much better than the kept one (bounds JPEG encodes). */
export const snapshotImprovement = 1.2;

/** The JPEG of `box` (grown by the margin, cut to the frame). */
export async function faceSnapshot(image: RgbImage, box: BoxRect, quality = 80): Promise<Buffer> {
  const x0 = Math.max(0, Math.floor(box.x - box.width * margin));
  const y0 = Math.max(0, Math.floor(box.y - box.height * margin));
  const x1 = Math.min(image.width, Math.ceil(box.x + box.width * (1 + margin)));
  const y1 = Math.min(image.height, Math.ceil(box.y + box.height * (1 + margin)));
  const width = Math.max(1, x1 - x0);
  const height = Math.max(1, y1 - y0);
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height && y0 + y < image.height; y++) {
    const from = ((y0 + y) * image.width + x0) * 3;
    data.set(image.data.subarray(from, from + width * 3), y * width * 3);
  }
  const jpeg = await encodeJpeg({ data, width, height }, quality);
  return Buffer.from(jpeg.buffer, jpeg.byteOffset, jpeg.byteLength);
}
