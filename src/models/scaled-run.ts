// The serving path's task-model run: crops cut natively from a frame decoded at any scale (JPEG shrink-on-load), with
// geometry and results in full-frame pixels. runFaceModel (aligned-run.ts) is the reference it is tested against.
import { cropResizeRgb, type PixelRect, type RgbImage } from '../core/image.js';
import { runFloat } from '../onnx/runtime.js';
import { singleUseInput } from '../onnx/worker-session.js';
import type { ModelManifest } from './manifest.js';
import { alignOf, type AlignMode } from './aligned-run.js';
import { alignmentTemplate, fitSimilarity, similarityScale, type Similarity } from './processing/align.js';
import { cropsToTensor, type CropSampling } from './processing/crop-kernel.js';
import { refinedBoxes } from './processing/refine-crop.js';
import {
  cropRect,
  decodeOutput,
  normalize,
  regionTransform,
  type DetectedFace,
  type FloatTensor,
  type FrameTransform,
  type Rect,
} from './processing/index.js';
import { batchItem, type LoadedModel, type TaskRun } from './runner.js';

/** Decoded pixels of a `width` x `height` frame, possibly reduced: image pixel x covers frame pixels [x*sx, (x+1)*sx). */
export interface ScaledFrame {
  image: RgbImage;
  width: number;
  height: number;
}

type FaceWithKeypoints = Pick<DetectedFace, 'box'> & { keypoints?: DetectedFace['keypoints'] };

/** One face's crop: its geometry in frame pixels and how it is sampled from the scaled image. */
interface PlannedCrop {
  rect: Rect;
  transform: FrameTransform;
  sampling: CropSampling;
  /** Set when the region lies inside the image: the integer pixels the native resize cuts out. */
  pixels?: PixelRect;
}

/** The aligned crop's similarity (crop pixel -> frame pixel), or undefined when the face lacks 4 keypoints. */
function alignedToFrame(manifest: ModelManifest, face: FaceWithKeypoints, align: AlignMode): Similarity | undefined {
  if (align !== '5point' || !face.keypoints || face.keypoints.length < 4) return undefined;
  return fitSimilarity(alignmentTemplate(manifest.input.size), face.keypoints.slice(0, 4));
}

/**
 * How many frame pixels per model-input pixel the crops of these faces span at least (the smallest face governs):
 * a decode shrunk by up to this much still gives every crop its full input resolution. A refined second crop that is
 * tighter than the first (refineCrop.scale < 1) counts too.
 */
export function cropShrink(manifest: ModelManifest, faces: readonly FaceWithKeypoints[], align: AlignMode = alignOf(manifest)): number {
  const { input } = manifest;
  const refine = Math.min(1, input.refineCrop?.scale ?? 1);
  let least = Infinity;
  for (const face of faces) {
    const toFrame = alignedToFrame(manifest, face, align);
    if (toFrame) {
      least = Math.min(least, similarityScale(toFrame));
      continue;
    }
    const rect = cropRect(face.box, input, { width: Infinity, height: Infinity });
    least = Math.min(least, (Math.min(rect.width, rect.height) * refine) / input.size);
  }
  return least;
}

function planCrop(manifest: ModelManifest, frame: ScaledFrame, face: FaceWithKeypoints, align: AlignMode): PlannedCrop {
  const { size } = manifest.input;
  const sx = frame.width / frame.image.width;
  const sy = frame.height / frame.image.height;
  const toFrame = alignedToFrame(manifest, face, align);
  if (toFrame) {
    const scale = similarityScale(toFrame);
    // Reduced decodes keep the aspect ratio to within a pixel, so one scale maps the similarity into the image.
    const s = (sx + sy) / 2;
    return {
      rect: { x: toFrame.tx, y: toFrame.ty, width: size * scale, height: size * scale },
      transform: { scaleX: scale, scaleY: scale, offsetX: toFrame.tx, offsetY: toFrame.ty },
      sampling: { kind: 'similarity', toSource: { a: toFrame.a / s, b: toFrame.b / s, tx: toFrame.tx / s, ty: toFrame.ty / s } },
    };
  }
  const rect = cropRect(face.box, manifest.input, frame);
  const region = { x: rect.x / sx, y: rect.y / sy, width: rect.width / sx, height: rect.height / sy };
  const left = Math.round(region.x);
  const top = Math.round(region.y);
  const right = Math.round(region.x + region.width);
  const bottom = Math.round(region.y + region.height);
  if (left < 0 || top < 0 || right > frame.image.width || bottom > frame.image.height || right <= left || bottom <= top)
    return { rect, transform: regionTransform(rect, size, size), sampling: { kind: 'region', region } };
  // Inside the image: the native resize cuts whole pixels, so the crop's geometry becomes those pixels (under half a
  // pixel of the exact rectangle).
  const cut = { x: left * sx, y: top * sy, width: (right - left) * sx, height: (bottom - top) * sy };
  return {
    rect: cut,
    transform: regionTransform(cut, size, size),
    sampling: { kind: 'region', region: { x: left, y: top, width: right - left, height: bottom - top } },
    pixels: { left, top, width: right - left, height: bottom - top },
  };
}

/**
 * Which code cuts box crops that lie inside the image: 'kernel', the one-pass JS kernel (crop-kernel.ts: crop, resize
 * and normalise straight into the model input, on the calling thread), or 'libvips' (sharp extract + resize on the
 * thread pool, then normalize()). Crops reaching past the image and aligned crops always take the kernel. Measured
 * (bench section "preprocess", faceres crops of the demo photos, rate against the JS resampler): an earlier 2-core
 * machine under load gave libvips x2.35 and the kernel x1.78; an idle 2-core AMD EPYC x1.24 and x1.70, and over gRPC
 * the kernel cost ~10 ms less CPU per frame (no pool hand-offs, no pixel buffers for the GC). Default 'kernel'.
 */
export type CropEngine = 'kernel' | 'libvips';

/** The batch tensor of planned crops (see CropEngine). */
async function cropTensor(
  image: RgbImage,
  crops: readonly PlannedCrop[],
  manifest: ModelManifest,
  engine: CropEngine,
): Promise<FloatTensor> {
  const { input } = manifest;
  const native = engine === 'libvips' ? crops.flatMap((c, i) => (c.pixels ? [i] : [])) : [];
  const kernel = engine === 'libvips' ? crops.flatMap((c, i) => (c.pixels ? [] : [i])) : crops.map((_, i) => i);
  const parts: { indices: number[]; tensor: FloatTensor }[] = [];
  if (native.length > 0) {
    const pixels = await Promise.all(native.map((i) => cropResizeRgb(image, crops[i]!.pixels!, input.size, input.size)));
    parts.push({ indices: native, tensor: normalize(pixels, input) });
  }
  if (kernel.length > 0)
    parts.push({
      indices: kernel,
      tensor: cropsToTensor(
        image,
        kernel.map((i) => crops[i]!.sampling),
        input.size,
        input,
      ),
    });
  if (parts.length === 1 && parts[0]!.indices.length === crops.length) return parts[0]!.tensor;
  // Mixed batch: each part's crops go back to their face's place in the batch.
  const dims = [crops.length, ...parts[0]!.tensor.dims.slice(1)];
  const per = dims.slice(1).reduce((a, b) => a * b, 1);
  const data = new Float32Array(per * crops.length);
  for (const part of parts) part.indices.forEach((face, k) => data.set(part.tensor.data.subarray(k * per, (k + 1) * per), face * per));
  return { data, dims };
}

/**
 * runFaceModel for the serving path: the same crops (box with the manifest's margin, or 5-point aligned), model run
 * and decoding, from a frame decoded at any scale; a landmark model with input.refineCrop runs its second pass on
 * boxes centred on its first-pass points. Results are in full-frame pixels.
 */
export async function runFaceModelScaled(
  model: LoadedModel,
  frame: ScaledFrame,
  faces: readonly FaceWithKeypoints[],
  align: AlignMode = alignOf(model.manifest),
  refine = true,
  engine: CropEngine = 'kernel',
): Promise<TaskRun> {
  if (faces.length === 0) return { crops: [], raw: {}, decoded: [] };
  const { manifest } = model;
  const crops = faces.map((f) => planCrop(manifest, frame, f, align));
  const tensor = await cropTensor(frame.image, crops, manifest, engine);
  singleUseInput(tensor.data); // made for this run only: the inference thread may take it without a copy
  const names = manifest.outputs.map((o) => o.name);
  const raw = await runFloat(model.session, { [manifest.input.name]: tensor }, names);
  const decoded = crops.map((crop, i) =>
    manifest.outputs.map((o) =>
      decodeOutput(o, batchItem(raw[o.name]!.data, faces.length, i), { transform: crop.transform, inputSize: manifest.input.size }),
    ),
  );
  const refineCrop = refine ? manifest.input.refineCrop : undefined;
  const boxes = refineCrop ? refinedBoxes(decoded, faces, refineCrop.scale) : undefined;
  if (boxes)
    return runFaceModelScaled(
      model,
      frame,
      boxes.map((box) => ({ box })),
      'none',
      false,
      engine,
    );
  return { crops: crops.map(({ rect, transform }) => ({ rect, transform })), raw, decoded };
}
