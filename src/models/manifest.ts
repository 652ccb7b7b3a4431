// The model manifest (model.json beside model.onnx): everything the server and training need to use a model.

export type ModelKind = 'detector' | 'prior' | 'baseline' | 'kt-adapter';
export type FaceTask = 'detection' | 'age' | 'gender' | 'emotion' | 'landmarks' | 'embedding' | 'mesh' | 'liveness' | 'antispoof';

/** How a face crop (or a whole frame for a detector) becomes the input tensor. */
export interface InputSpec {
  /** ONNX input tensor name. */
  name: string;
  layout: 'NHWC' | 'NCHW';
  /** Square input size in pixels (width = height). */
  size: number;
  /** Channel order fed to the model: RGB, BGR or GRAY (single channel, ITU-R BT.601 luma). */
  colorOrder: 'RGB' | 'BGR' | 'GRAY';
  /** value = (pixel * scale - mean[c]) / std[c], pixel in 0..255. */
  scale: number;
  mean: number[];
  std: number[];
  /** Crop margin around the detected box as a fraction of its size on each side (0.2 = 20 % per side). Detectors: 0. */
  cropMargin: number;
  /** Make the crop square (on the longer side) before the margin. */
  cropSquare: boolean;
}

export type OutputDecoding =
  | { type: 'blazeface'; scores: string; boxes: string; anchors: { strides: number[]; anchorsPerCell: number[] }; keypoints: number; scoreThreshold: number; iouThreshold: number; maxFaces: number }
  | { type: 'classification'; labels: string[]; activation: 'softmax' | 'none' | 'sigmoid' }
  /**
   * One softmax bin per year. 'expectation' (default): sum_i i * p_i. 'argmax-neighbour': human's decoding (argmax
   * bin moved towards its larger neighbour); faceres piles argmax mass on 29, 39, 69..., so its answers heap there.
   */
  | { type: 'age-bins'; method?: 'expectation' | 'argmax-neighbour'; note?: string }
  | { type: 'age-years'; scale: number }
  | { type: 'gender-sigmoid'; positive: 'male' | 'female' }
  | { type: 'landmarks'; scheme: 'ibug68' | 'wflw98' | 'mediapipe468'; count: number; dims: 2 | 3; coordinateScale: number; normalized: boolean }
  | { type: 'embedding'; size: number; normalize: 'l2' | 'none' }
  | { type: 'scalar'; activation: 'sigmoid' | 'none' };

export interface OutputSpec {
  /** ONNX output tensor name. */
  name: string;
  /** The task the output answers. */
  task: FaceTask;
  decoding: OutputDecoding;
}

/** The spatial embedding before a task head: where the KT-Adapter cuts an encoder. */
export interface EncoderSpec {
  /** Tensor name of the feature map inside model.onnx. */
  tensor: string;
  /** Channels C of the feature map (the prior-token width after GAP). */
  width: number;
  /** Spatial size H x W of the feature map at the model's input size. */
  spatial: [number, number];
  layout: 'NHWC' | 'NCHW';
  /** What follows the cut: 'gap-dense' heads commute with GAP exactly; 'conv' heads do not (see README). */
  head: 'gap-dense' | 'conv';
}

export interface ModelSource {
  package: string;
  version: string;
  file: string;
  license: string;
  /** Hash of the zoo entry and converter version the model was built with: a change triggers a rebuild. */
  buildKey?: string;
}

export interface ModelManifest {
  /** Repository name, e.g. "faceres". */
  name: string;
  version: number;
  kind: ModelKind;
  /** Tasks this model answers (an encoder-only "prior" lists the task it was trained for). */
  tasks: FaceTask[];
  description: string;
  input: InputSpec;
  outputs: OutputSpec[];
  encoder?: EncoderSpec;
  source?: ModelSource;
  /** sha256 of model.onnx, so caches and clients can key on content. */
  sha256: string;
  /** Trained models: priors used, data and metrics. */
  training?: { priors: string[]; canonical: string; data: string; metrics: Record<string, number>; adapterFlops?: number; [k: string]: unknown };
  createdAt: string;
}
