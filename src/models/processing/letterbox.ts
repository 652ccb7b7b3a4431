// Fits a whole frame into a detector's square input, by letterboxing (aspect kept) or stretching.
import type { RgbImage } from '../../core/image.js';
import { resampleRegion, type ResampleOptions } from './crop.js';
import { regionTransform, type FrameTransform, type Rect } from './geometry.js';

/**
 * 'letterbox' centres the frame in a square of its longer side and pads the rest (faces keep their shape: what
 * MediaPipe does for BlazeFace); 'stretch' resizes the frame to the square (human's default, faces get squashed).
 */
export type FrameFit = 'letterbox' | 'stretch';

export interface FittedFrame {
  /** size x size RGB8 pixels. */
  image: RgbImage;
  /** The frame region shown (for letterbox it reaches past the short side). */
  region: Rect;
  /** Maps input pixels back to frame pixels. */
  transform: FrameTransform;
}

export function fitFrame(frame: RgbImage, size: number, fit: FrameFit, options: ResampleOptions = {}): FittedFrame {
  let region: Rect;
  if (fit === 'letterbox') {
    const side = Math.max(frame.width, frame.height);
    region = { x: (frame.width - side) / 2, y: (frame.height - side) / 2, width: side, height: side };
  } else {
    region = { x: 0, y: 0, width: frame.width, height: frame.height };
  }
  const image = resampleRegion(frame, region, size, size, options);
  return { image, region, transform: regionTransform(region, size, size) };
}
