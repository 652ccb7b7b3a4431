// Built-in filter `motion`: a motion gate on a downscaled grey frame difference. Frames like the last one passed on are
// skipped (no inference for a static scene); the savings are counted (frames and bytes not sent).
import { Type, type TSchema } from '@sinclair/typebox';
import { definePlugin, type PluginFactory } from '../../sdk/plugin.js';
import type { ImageInput } from '../../sdk/results.js';
import { changedFraction, greyThumbnail, type GreyThumbnail } from './thumbnail.js';

export interface MotionFilterOptions {
  /** Width of the grey thumbnail compared, in pixels. Default 64. */
  thumbnailWidthPx: number;
  /** A thumbnail pixel has changed when its grey level moved by more than this (0..255). Default 12. */
  pixelThreshold: number;
  /** Motion when at least this fraction of thumbnail pixels changed (0..1). Default 0.01. */
  minChangedFraction: number;
  /** Pass a frame at least this often even without motion, in milliseconds (0: never). Default 10000. */
  keepAliveMs: number;
}

function bytesOf(image: ImageInput): number {
  return image instanceof Uint8Array ? image.byteLength : image.data.byteLength;
}

export const motionFilter: PluginFactory<MotionFilterOptions, 'filter'> = definePlugin<MotionFilterOptions, 'filter'>({
  name: 'motion',
  kind: 'filter',
  description: 'skips frames without motion (downscaled grey frame difference) and counts the savings',
  schema: Type.Object(
    {
      thumbnailWidthPx: Type.Integer({
        minimum: 8,
        maximum: 640,
        default: 64,
        description: 'Width of the compared thumbnail. Default 64.',
      }),
      pixelThreshold: Type.Number({
        minimum: 0,
        maximum: 255,
        default: 12,
        description: 'Grey-level change that counts (0..255). Default 12.',
      }),
      minChangedFraction: Type.Number({
        minimum: 0,
        maximum: 1,
        default: 0.01,
        description: 'Fraction of changed pixels that is motion. Default 0.01.',
      }),
      keepAliveMs: Type.Integer({
        minimum: 0,
        default: 10_000,
        description: 'Pass a frame at least this often, in ms (0: never). Default 10000.',
      }),
    } satisfies Record<keyof MotionFilterOptions, TSchema>,
    { additionalProperties: false, title: 'motion filter options' },
  ),
  create({ options: o }) {
    let reference: GreyThumbnail | undefined;
    let referenceTimeMs = 0;
    const counters = { framesSeen: 0, framesPassed: 0, framesSkipped: 0, bytesSkipped: 0, lastChangedPermille: 0 };
    return {
      async onFrame(frame) {
        counters.framesSeen += 1;
        const thumb = await greyThumbnail(frame.image, o.thumbnailWidthPx);
        const changed = reference === undefined ? 1 : changedFraction(reference, thumb, o.pixelThreshold);
        counters.lastChangedPermille = Math.round(changed * 1000);
        const stale = o.keepAliveMs > 0 && frame.captureTimeUnixMs - referenceTimeMs >= o.keepAliveMs;
        if (reference !== undefined && changed < o.minChangedFraction && !stale) {
          counters.framesSkipped += 1;
          counters.bytesSkipped += bytesOf(frame.image);
          return { drop: 'motion' };
        }
        // Compare with the last frame passed on, not the last seen: slow changes add up until they count.
        reference = thumb;
        referenceTimeMs = frame.captureTimeUnixMs;
        counters.framesPassed += 1;
        return undefined;
      },
      stats: () => ({ ...counters }),
    };
  },
});
