// BlazeFace (human's blazeface.json, 256 px): input preparation, anchors, box/keypoint decoding, NMS, frame mapping.
import { InvalidInputError, ModelFormatError } from '../../core/errors.js';
import type { RgbImage } from '../../core/image.js';
import type { OutputDecoding } from '../manifest.js';
import type { ResampleOptions } from './crop.js';
import { toFramePoint, type FrameTransform, type Point, type Rect } from './geometry.js';
import { fitFrame, type FrameFit } from './letterbox.js';
import { nonMaxSuppression } from './nms.js';
import { normalize, type FloatTensor, type NormalizeSpec } from './normalize.js';

/** MediaPipe's order of the six BlazeFace keypoints (the subject's right eye appears on the image's left). */
export const blazefaceKeypointNames = ['rightEye', 'leftEye', 'noseTip', 'mouthCenter', 'rightEarTragion', 'leftEarTragion'] as const;

/** human feeds the detector RGB in -1..1: pixel / 127.5 - 1. */
export const blazefaceInputSpec: NormalizeSpec & { name: string; size: number } = {
  name: 'input',
  size: 256,
  layout: 'NHWC',
  colorOrder: 'RGB',
  scale: 1 / 127.5,
  mean: [1],
  std: [1],
};

export interface BlazefaceOptions {
  /** Square input size in pixels. Default 256. */
  inputSize: number;
  /** Anchor strides in input pixels, in the order the model's anchors are laid out. Default [16, 32]. */
  strides: number[];
  /** Anchors per grid cell for each stride. Default [2, 6]. */
  anchorsPerCell: number[];
  /** Keypoints per face after the 4 box values. Default 6. */
  keypoints: number;
  /**
   * Minimum sigmoid score to keep a face. Default 0.5: MediaPipe's threshold for this model. human uses 0.2, but
   * it then verifies each face with facemesh and drops those without a mesh; a detector used alone needs 0.5.
   */
  scoreThreshold: number;
  /** A box overlapping a better one by more than this IoU is dropped. Default 0.3 (MediaPipe's; human 0.1). */
  iouThreshold: number;
  /** At most this many faces per frame, best first. Default 50. */
  maxFaces: number;
  /** How a non-square frame fits the square input. Default 'letterbox'. */
  fit: FrameFit;
}

export const defaultBlazefaceOptions: Readonly<BlazefaceOptions> = Object.freeze({
  inputSize: 256,
  strides: [16, 32],
  anchorsPerCell: [2, 6],
  keypoints: 6,
  scoreThreshold: 0.5,
  iouThreshold: 0.3,
  maxFaces: 50,
  fit: 'letterbox',
});

export interface DetectedFace {
  /** Face box in frame pixels (BlazeFace's tight box: brows to chin; crops add the task's margin). */
  box: Rect;
  /** Sigmoid score 0..1. */
  score: number;
  /** The six keypoints in frame pixels, in blazefaceKeypointNames order. */
  keypoints: Point[];
}

/** The detector decoding of a manifest as options (fields the manifest leaves out keep their defaults). */
export function blazefaceOptionsFromManifest(
  decoding: Extract<OutputDecoding, { type: 'blazeface' }>,
  overrides: Partial<BlazefaceOptions> = {},
): BlazefaceOptions {
  return {
    ...defaultBlazefaceOptions,
    strides: decoding.anchors.strides,
    anchorsPerCell: decoding.anchors.anchorsPerCell,
    keypoints: decoding.keypoints,
    scoreThreshold: decoding.scoreThreshold,
    iouThreshold: decoding.iouThreshold,
    maxFaces: decoding.maxFaces,
    ...overrides,
  };
}

/**
 * Anchor centres in input pixels as x,y pairs, row-major per stride then per cell (human's generateAnchors):
 * every anchor of a cell has the same centre, and box sizes are regressed absolutely.
 */
export function blazefaceAnchors(inputSize: number, strides: readonly number[], anchorsPerCell: readonly number[]): Float32Array {
  if (strides.length !== anchorsPerCell.length)
    throw new InvalidInputError(`blazeface anchors: ${strides.length} strides but ${anchorsPerCell.length} anchor counts`);
  const out: number[] = [];
  strides.forEach((stride, s) => {
    const cells = Math.ceil(inputSize / stride);
    for (let gy = 0; gy < cells; gy++) {
      for (let gx = 0; gx < cells; gx++) {
        for (let n = 0; n < anchorsPerCell[s]!; n++) out.push(stride * (gx + 0.5), stride * (gy + 0.5));
      }
    }
  });
  return Float32Array.from(out);
}

/** One output level of the model: per-anchor score logits and regressors (4 box values + 2 per keypoint). */
export interface BlazefaceHead {
  scores: Float32Array;
  regressors: Float32Array;
}

const volume = (dims: readonly number[]): number => dims.reduce((a, d) => a * d, 1);

/**
 * Picks the score and regressor tensors of each stride by shape ([1, anchors, 1] and [1, anchors, 4 + 2k]), as
 * human does: the TF.js outputs are named Identity..Identity_3 in no meaningful order.
 */
export function selectBlazefaceHeads(
  outputs: Readonly<Record<string, { data: Float32Array; dims: readonly number[] }>>,
  options: Pick<BlazefaceOptions, 'inputSize' | 'strides' | 'anchorsPerCell' | 'keypoints'> = defaultBlazefaceOptions,
): BlazefaceHead[] {
  const width = 4 + 2 * options.keypoints;
  const entries = Object.entries(outputs);
  return options.strides.map((stride, s) => {
    const count = Math.ceil(options.inputSize / stride) ** 2 * options.anchorsPerCell[s]!;
    const find = (channels: number): Float32Array => {
      const hit = entries.find(([, t]) => t.dims[t.dims.length - 1] === channels && volume(t.dims) === count * channels);
      if (!hit) {
        const have = entries.map(([n, t]) => `${n}[${t.dims.join(',')}]`).join(', ');
        throw new ModelFormatError(`blazeface: no output of shape [1,${count},${channels}] for stride ${stride}; outputs are ${have}`);
      }
      if (hit[1].data.length !== count * channels)
        throw new ModelFormatError(`blazeface: output ${hit[0]} holds ${hit[1].data.length} values, dims say ${count * channels}`);
      return hit[1].data;
    };
    return { scores: find(1), regressors: find(width) };
  });
}

const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));

/**
 * Decodes the model's outputs into faces in frame pixels: anchor + offset for the box centre and keypoints,
 * absolute width and height, sigmoid score, score threshold, then hard NMS in frame space (so that a stretched
 * input does not distort the overlaps).
 */
export function decodeBlazeface(
  heads: readonly BlazefaceHead[],
  transform: FrameTransform,
  options: Partial<BlazefaceOptions> = {},
): DetectedFace[] {
  const o: BlazefaceOptions = { ...defaultBlazefaceOptions, ...options };
  if (heads.length !== o.strides.length)
    throw new ModelFormatError(`blazeface: ${heads.length} output heads for ${o.strides.length} strides`);
  const anchors = blazefaceAnchors(o.inputSize, o.strides, o.anchorsPerCell);
  const width = 4 + 2 * o.keypoints;
  const boxes: Rect[] = [];
  const scores: number[] = [];
  const rows: { head: BlazefaceHead; row: number; anchor: number }[] = [];
  let anchor = 0;
  for (const head of heads) {
    const count = head.scores.length;
    if (head.regressors.length !== count * width)
      throw new ModelFormatError(`blazeface: ${count} scores but ${head.regressors.length} regressor values (expected ${count * width})`);
    for (let row = 0; row < count; row++, anchor++) {
      const score = sigmoid(head.scores[row]!);
      if (score <= o.scoreThreshold) continue;
      const r = row * width;
      const ax = anchors[anchor * 2]!;
      const ay = anchors[anchor * 2 + 1]!;
      const cx = ax + head.regressors[r]!;
      const cy = ay + head.regressors[r + 1]!;
      const w = head.regressors[r + 2]!;
      const h = head.regressors[r + 3]!;
      if (!(w > 0 && h > 0)) continue;
      const topLeft = toFramePoint(transform, cx - w / 2, cy - h / 2);
      const bottomRight = toFramePoint(transform, cx + w / 2, cy + h / 2);
      boxes.push({ x: topLeft.x, y: topLeft.y, width: bottomRight.x - topLeft.x, height: bottomRight.y - topLeft.y });
      scores.push(score);
      rows.push({ head, row, anchor });
    }
  }
  if (anchor !== anchors.length / 2)
    throw new ModelFormatError(
      `blazeface: outputs hold ${anchor} anchors; ${o.inputSize} px with strides [${o.strides.join(', ')}] needs ${anchors.length / 2}`,
    );
  const kept = nonMaxSuppression(boxes, scores, o.iouThreshold, o.scoreThreshold, o.maxFaces);
  return kept.map((k) => {
    const { head, row, anchor: a } = rows[k]!;
    const r = row * width;
    const keypoints: Point[] = [];
    for (let p = 0; p < o.keypoints; p++) {
      keypoints.push(
        toFramePoint(transform, anchors[a * 2]! + head.regressors[r + 4 + 2 * p]!, anchors[a * 2 + 1]! + head.regressors[r + 5 + 2 * p]!),
      );
    }
    return { box: boxes[k]!, score: scores[k]!, keypoints };
  });
}

export interface BlazefaceInput {
  /** [1, size, size, 3] float32 in -1..1, for the model's input `blazefaceInputSpec.name`. */
  tensor: FloatTensor;
  /** Maps input pixels back to frame pixels; pass it to decodeBlazeface. */
  transform: FrameTransform;
}

/** Fits the frame into the detector input (letterbox or stretch) and normalises it the way the model expects. */
export function prepareBlazefaceInput(
  frame: RgbImage,
  options: Partial<Pick<BlazefaceOptions, 'inputSize' | 'fit'>> & ResampleOptions = {},
  spec: NormalizeSpec = blazefaceInputSpec,
): BlazefaceInput {
  const size = options.inputSize ?? defaultBlazefaceOptions.inputSize;
  const fitted = fitFrame(frame, size, options.fit ?? defaultBlazefaceOptions.fit, options);
  return { tensor: normalize(fitted.image, spec), transform: fitted.transform };
}
