// Runs repository models on frames: the detector once per frame, task models on batched face crops, decoded results.
import { resizeRgb, type RgbImage } from '../core/image.js';
import { InvalidInputError } from '../core/errors.js';
import { singleUseInput } from '../onnx/worker-session.js';
import { createSession, runFloat, type ExecutionProviderName, type OrtSession, type SessionOptions } from '../onnx/runtime.js';
import type { ModelManifest, OutputDecoding } from './manifest.js';
import {
  blazefaceOptionsFromManifest,
  cropFace,
  decodeBlazeface,
  decodeOutput,
  normalize,
  selectBlazefaceHeads,
  type BlazefaceOptions,
  type DecodedOutput,
  type DetectedFace,
  type FaceCrop,
  type FittedFrame,
  type FloatTensor,
} from './processing/index.js';
import { refinedBoxes } from './processing/refine-crop.js';
import type { RepositoryEntry } from './repository.js';

export interface LoadedModel {
  manifest: ModelManifest;
  session: OrtSession;
  provider: ExecutionProviderName;
  skippedProviders: { provider: ExecutionProviderName; reason: string }[];
  modelPath: string;
}

export async function loadModel(entry: RepositoryEntry, options: SessionOptions = {}): Promise<LoadedModel> {
  const { session, provider, skipped } = await createSession(entry.modelPath, options);
  return { manifest: entry.manifest, session, provider, skippedProviders: skipped, modelPath: entry.modelPath };
}

type BlazefaceDecoding = Extract<OutputDecoding, { type: 'blazeface' }>;

function detectorOptions(detector: LoadedModel, overrides: Partial<BlazefaceOptions>): BlazefaceOptions {
  const decoding = detector.manifest.outputs.find((o) => o.decoding.type === 'blazeface')?.decoding as BlazefaceDecoding | undefined;
  if (!decoding) throw new InvalidInputError(`model ${detector.manifest.name} is not a BlazeFace detector`);
  return blazefaceOptionsFromManifest(decoding, { inputSize: detector.manifest.input.size, ...overrides });
}

/**
 * Finds faces in a frame with a detector model (BlazeFace decoding). `frame` may be a reduced decode of a larger
 * frame (`frameSize`, default its own size): boxes and keypoints come back in `frameSize` pixels.
 */
export async function detectFaces(
  detector: LoadedModel,
  frame: RgbImage,
  overrides: Partial<BlazefaceOptions> = {},
  frameSize: { width: number; height: number } = frame,
): Promise<DetectedFace[]> {
  const options = detectorOptions(detector, overrides);
  const fitted = await fitFrameNative(frame, options.inputSize, options.fit);
  const input = normalize(fitted.image, detector.manifest.input);
  singleUseInput(input.data);
  const out = await runFloat(detector.session, { [detector.manifest.input.name]: input });
  const sx = frameSize.width / frame.width;
  const sy = frameSize.height / frame.height;
  const t = fitted.transform;
  const toFrame = { scaleX: t.scaleX * sx, scaleY: t.scaleY * sy, offsetX: t.offsetX * sx, offsetY: t.offsetY * sy };
  return decodeBlazeface(selectBlazefaceHeads(out, options), toFrame, options);
}

/**
 * The smallest decode of a `frame`-sized frame from which the detector's input is made without enlarging: its
 * letterbox (or stretch) size in the detector's input. A reduced JPEG decode at this size replaces a full decode and
 * the resize (bench section "preprocess").
 */
export function detectorSourceSize(
  detector: LoadedModel,
  frame: { width: number; height: number },
  overrides: Partial<BlazefaceOptions> = {},
): { width: number; height: number } {
  const { inputSize, fit } = detectorOptions(detector, overrides);
  const side = fit === 'letterbox' ? Math.max(frame.width, frame.height) : Math.min(frame.width, frame.height);
  const scale = Math.min(1, inputSize / side);
  return { width: Math.max(1, Math.round(frame.width * scale)), height: Math.max(1, Math.round(frame.height * scale)) };
}

/**
 * The frame fitted into a square detector input like processing's fitFrame ('letterbox': aspect kept, centred,
 * black bars; 'stretch'), but resized natively. The transform maps input pixels back to frame pixels exactly for
 * the integer size the frame was resized to.
 */
export async function fitFrameNative(frame: RgbImage, size: number, fit: 'letterbox' | 'stretch'): Promise<FittedFrame> {
  if (fit === 'stretch') {
    const image = await resizeRgb(frame, size, size);
    const scaleX = frame.width / size;
    const scaleY = frame.height / size;
    return {
      image,
      region: { x: 0, y: 0, width: frame.width, height: frame.height },
      transform: { scaleX, scaleY, offsetX: 0, offsetY: 0 },
    };
  }
  const side = Math.max(frame.width, frame.height);
  const w = Math.max(1, Math.round((frame.width * size) / side));
  const h = Math.max(1, Math.round((frame.height * size) / side));
  // A frame decoded at the letterbox size already (JPEG shrink-on-load) needs no second resize.
  const resized = w === frame.width && h === frame.height ? frame : await resizeRgb(frame, w, h);
  const offX = Math.floor((size - w) / 2);
  const offY = Math.floor((size - h) / 2);
  const data = new Uint8Array(size * size * 3);
  for (let y = 0; y < h; y++) data.set(resized.data.subarray(y * w * 3, (y + 1) * w * 3), ((y + offY) * size + offX) * 3);
  const scaleX = frame.width / w;
  const scaleY = frame.height / h;
  const transform = { scaleX, scaleY, offsetX: -offX * scaleX, offsetY: -offY * scaleY };
  return {
    image: { data, width: size, height: size },
    region: { x: transform.offsetX, y: transform.offsetY, width: size * scaleX, height: size * scaleY },
    transform,
  };
}

/** Crops every face for one model (its margin, squareness and size) and stacks them into one input batch. */
export function prepareFaceBatch(
  manifest: ModelManifest,
  frame: RgbImage,
  faces: readonly { box: DetectedFace['box'] }[],
): { crops: FaceCrop[]; tensor: FloatTensor } {
  const crops = faces.map((f) => cropFace(frame, f.box, manifest.input));
  return {
    crops,
    tensor: normalize(
      crops.map((c) => c.image),
      manifest.input,
    ),
  };
}

export interface TaskRun {
  /** Per face, the frame region its crop shows and the crop -> frame transform. */
  crops: Pick<FaceCrop, 'rect' | 'transform'>[];
  /** Raw outputs of the batch, by output name. */
  raw: Record<string, { data: Float32Array; dims: number[] }>;
  /** Per face, the decoded outputs in manifest order. */
  decoded: DecodedOutput[][];
}

/** The part of a batched output that belongs to item `i` of `count` (a view, not a copy). */
export function batchItem(data: Float32Array, count: number, i: number): Float32Array {
  const per = data.length / count;
  return data.subarray(i * per, (i + 1) * per);
}

/**
 * Runs a task model on all faces of a frame in one batch and decodes each face's outputs. A landmark model whose
 * manifest asks for `input.refineCrop` runs twice, the second time on boxes centred on its first-pass points
 * (`refine` false: one pass only).
 */
export async function runTaskModel(
  model: LoadedModel,
  frame: RgbImage,
  faces: readonly { box: DetectedFace['box'] }[],
  extraOutputs: readonly string[] = [],
  refine = true,
): Promise<TaskRun> {
  if (faces.length === 0) return { crops: [], raw: {}, decoded: [] };
  const { crops, tensor } = prepareFaceBatch(model.manifest, frame, faces);
  const names = [...model.manifest.outputs.map((o) => o.name), ...extraOutputs];
  const raw = await runFloat(model.session, { [model.manifest.input.name]: tensor }, names);
  const decoded = crops.map((crop, i) =>
    model.manifest.outputs.map((o) =>
      decodeOutput(o, batchItem(raw[o.name]!.data, faces.length, i), { transform: crop.transform, inputSize: model.manifest.input.size }),
    ),
  );
  const refineCrop = refine ? model.manifest.input.refineCrop : undefined;
  const boxes = refineCrop ? refinedBoxes(decoded, faces, refineCrop.scale) : undefined;
  const refinedFaces = boxes?.map((box) => ({ box }));
  if (refinedFaces) return runTaskModel(model, frame, refinedFaces, extraOutputs, false);
  return { crops, raw, decoded };
}
