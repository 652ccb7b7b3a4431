// How the pipeline turns a frame into model inputs: which decode the crops come from and which crop code cuts them.
import type { RgbImage } from '../core/image.js';
import { alignOf, runFaceModel } from '../models/aligned-run.js';
import type { LoadedModel, TaskRun } from '../models/runner.js';
import type { DetectedFace } from '../models/processing/index.js';
import { cropShrink, runFaceModelScaled, type CropEngine, type ScaledFrame } from '../models/scaled-run.js';
import type { FramePixels } from './frame-image.js';

/**
 * The serving path (both true): JPEG shrink-on-load (the detector reads a reduced decode, crops the smallest decode
 * that keeps every crop at its model's input size) and native crops. Both false: one full decode and the JS crops of
 * runFaceModel, and the decode as it was (referenceDecode), the path before issue 12, kept as the bench's and the tests'
 * reference.
 */
export interface FramePath {
  /** JPEG frames decoded lazily at the scales needed (otherwise fully, once). */
  shrinkOnLoad: boolean;
  /** Crops cut in one pass from pixels decoded at any scale (runFaceModelScaled; otherwise runFaceModel's JS crops). */
  nativeCrops: boolean;
  /** With nativeCrops: the code that cuts box crops inside the frame (scaled-run.ts CropEngine). Default 'kernel'. */
  cropEngine?: CropEngine;
  /** Full decodes as before issue 12 (core/image.ts ImageLimits.referenceDecode); shrink-on-load never uses it. */
  referenceDecode?: boolean;
}

export const servingFramePath: Readonly<FramePath> = Object.freeze({ shrinkOnLoad: true, nativeCrops: true });
export const referenceFramePath: Readonly<FramePath> = Object.freeze({ shrinkOnLoad: false, nativeCrops: false, referenceDecode: true });

/**
 * The pixels the crops of these model runs come from: the smallest decode that keeps every crop at its model's
 * input size (shrink-on-load with native crops), else the full frame.
 */
export async function cropSource(
  path: FramePath,
  pixels: FramePixels,
  runs: readonly { model: LoadedModel; faces: readonly DetectedFace[] }[],
): Promise<ScaledFrame> {
  const frame = { width: pixels.width, height: pixels.height };
  if (!path.shrinkOnLoad || !path.nativeCrops) return { ...frame, image: await pixels.full() };
  const shrink = Math.min(...runs.map((r) => cropShrink(r.model.manifest, r.faces, alignOf(r.model.manifest))));
  const image: RgbImage =
    shrink > 1 && Number.isFinite(shrink)
      ? await pixels.atLeast(Math.ceil(frame.width / shrink), Math.ceil(frame.height / shrink))
      : await pixels.full();
  return { ...frame, image };
}

/** One batched run of a task model on the faces, with the path's crops. */
export function runOnPath(path: FramePath, model: LoadedModel, source: ScaledFrame, faces: readonly DetectedFace[]): Promise<TaskRun> {
  return path.nativeCrops
    ? runFaceModelScaled(model, source, faces, alignOf(model.manifest), true, path.cropEngine ?? 'kernel')
    : runFaceModel(model, source.image, faces);
}
