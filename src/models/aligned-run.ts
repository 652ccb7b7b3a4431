// Runs a task model on faces with the crop its manifest asks for: the box crop, or the 5-point aligned crop
// (input.align '5point'), which embedding models need to compare faces in one canonical pose.
import type { RgbImage } from '../core/image.js';
import { runFloat } from '../onnx/runtime.js';
import type { ModelManifest } from './manifest.js';
import { alignFace, similarityScale } from './processing/align.js';
import { cropFace, decodeOutput, normalize, type DetectedFace, type FaceCrop } from './processing/index.js';
import { batchItem, runTaskModel, type LoadedModel, type TaskRun } from './runner.js';

export type AlignMode = 'none' | '5point';

/** The alignment a model's manifest asks for (absent: none). */
export const alignOf = (manifest: ModelManifest): AlignMode => manifest.input.align ?? 'none';

type FaceWithKeypoints = Pick<DetectedFace, 'box'> & { keypoints?: DetectedFace['keypoints'] };

/**
 * The model's input crop of one face. Aligned: the face warped onto dlib's template from its eye, nose and mouth
 * keypoints; a face without 4 keypoints falls back to the box crop. The transform of an aligned crop keeps only the
 * scale and the translation of the crop's top-left corner (rotation dropped): fine for embeddings, not for landmarks.
 */
export function modelCrop(
  manifest: ModelManifest,
  frame: RgbImage,
  face: FaceWithKeypoints,
  align: AlignMode = alignOf(manifest),
): FaceCrop {
  const { size } = manifest.input;
  if (align === '5point' && face.keypoints && face.keypoints.length >= 4) {
    const { image, toFrame } = alignFace(frame, face.keypoints, size);
    const scale = similarityScale(toFrame);
    return {
      image,
      rect: { x: toFrame.tx, y: toFrame.ty, width: size * scale, height: size * scale },
      transform: { scaleX: scale, scaleY: scale, offsetX: toFrame.tx, offsetY: toFrame.ty },
    };
  }
  return cropFace(frame, face.box, manifest.input);
}

/**
 * runTaskModel with the manifest's alignment (or `align` to force one): one batched run, each face decoded. Models
 * without alignment take runTaskModel's path unchanged.
 */
export async function runFaceModel(
  model: LoadedModel,
  frame: RgbImage,
  faces: readonly FaceWithKeypoints[],
  align: AlignMode = alignOf(model.manifest),
): Promise<TaskRun> {
  if (align === 'none') return runTaskModel(model, frame, faces);
  if (faces.length === 0) return { crops: [], raw: {}, decoded: [] };
  const { manifest } = model;
  const crops = faces.map((f) => modelCrop(manifest, frame, f, align));
  const tensor = normalize(
    crops.map((c) => c.image),
    manifest.input,
  );
  const raw = await runFloat(
    model.session,
    { [manifest.input.name]: tensor },
    manifest.outputs.map((o) => o.name),
  );
  const decoded = crops.map((crop, i) =>
    manifest.outputs.map((o) =>
      decodeOutput(o, batchItem(raw[o.name]!.data, faces.length, i), { transform: crop.transform, inputSize: manifest.input.size }),
    ),
  );
  return { crops, raw, decoded };
}
