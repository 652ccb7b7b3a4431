// The model manifest (model.json beside model.onnx): everything the server and training need to use a model; its
// TypeBox schema validates every manifest on load and is emitted as schemas/model-manifest.schema.json.
import { Type, type Static } from '@sinclair/typebox';
import { literals } from '../core/schema.js';
import { modelKinds } from '../contract/wire-names.js';

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
  /**
   * Landmark models: run twice, the second crop centred on the first pass's points with the detector box's side
   * times `scale` (measured by `kt models eval --task landmarks`). Absent: one pass.
   */
  refineCrop?: { scale: number };
  /**
   * '5point': warp the face onto a fixed landmark template (similarity transform from the detector's eye, nose and
   * mouth keypoints, see processing/align.ts) instead of the box crop; 'none' or absent: the box crop.
   */
  align?: 'none' | '5point';
}

export type OutputDecoding =
  | {
      type: 'blazeface';
      scores: string;
      boxes: string;
      anchors: { strides: number[]; anchorsPerCell: number[] };
      keypoints: number;
      scoreThreshold: number;
      iouThreshold: number;
      maxFaces: number;
    }
  | { type: 'classification'; labels: string[]; activation: 'softmax' | 'none' | 'sigmoid' }
  /**
   * One softmax bin per year. 'expectation' (default): sum_i i * p_i. 'argmax-neighbour': human's decoding (argmax
   * bin moved towards its larger neighbour); faceres piles argmax mass on 29, 39, 69..., so its answers heap there.
   */
  | { type: 'age-bins'; method?: 'expectation' | 'argmax-neighbour'; note?: string }
  | { type: 'age-years'; scale: number }
  | { type: 'gender-sigmoid'; positive: 'male' | 'female' }
  | {
      type: 'landmarks';
      scheme: 'ibug68' | 'wflw98' | 'mediapipe468';
      count: number;
      dims: 2 | 3;
      coordinateScale: number;
      normalized: boolean;
    }
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

/** One measured result of `kt models eval --write`: one entry per task, dataset, metric and variant. */
export interface ManifestEvaluation {
  task: string;
  /** Dataset name (folder name, e.g. "age-utkface"). */
  dataset: string;
  /** E.g. "aligned"; absent for the plain serving path. */
  variant?: string;
  /** Faces (or pairs) scored. */
  n: number;
  metric: string;
  value: number;
  unit?: string;
  /** 95 % interval [lo, hi]. */
  ci95?: [number, number];
  /** How ci95 was computed, e.g. "bootstrap-subject". */
  ciMethod?: string;
  /** Crop + model + decode per face, milliseconds. */
  msPerFace?: number;
  /** ISO 8601 date of the run. */
  date: string;
  /** A caveat, e.g. that the model was trained on this dataset. */
  note?: string;
}

export type ModelPrecision = 'fp32' | 'int8' | 'fp16';

/** One accuracy change of a reduced-precision version against its source, on the same faces (paired). */
export interface PrecisionAccuracy {
  task: string;
  dataset: string;
  metric: string;
  unit?: string;
  /** Faces (or pairs) scored. */
  n: number;
  /** Source version's value and this version's value. */
  source: number;
  value: number;
  /** value - source, with its paired 95 % bootstrap interval. */
  change: number;
  ci95?: [number, number];
  /** The largest change the device profiles accept for this metric (absolute, in its unit). */
  tolerance?: number;
  /** Whether the loss (the change in the worse direction) is at most the tolerance. */
  withinTolerance?: boolean;
  date: string;
}

export interface PrecisionSpec {
  type: ModelPrecision;
  /** The version this one was made from, and its sha256. */
  fromVersion: number;
  fromSha256: string;
  /** How it was made, e.g. "static QDQ: per-channel symmetric int8 weights, uint8 activations (percentile 99.99 %); ops Conv, Add". */
  method: string;
  /** Calibration of the activation ranges (int8): where the faces came from and how many. */
  calibration?: { datasets: string[]; faces: number; rangeMethod: string; file: string };
  /** Milliseconds per face of the model alone (best of N runs), this version and the source, batch 1 and 4. */
  speed?: { batch: number; msPerFace: number; sourceMsPerFace: number }[];
  accuracy?: PrecisionAccuracy[];
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
  training?: {
    priors: string[];
    canonical: string;
    data: string;
    metrics: Record<string, number>;
    adapterFlops?: number;
    [k: string]: unknown;
  };
  createdAt: string;
  /** Measured results (`kt models eval --write`), shown by `kt models list`. */
  evaluations?: ManifestEvaluation[];
  /** Embedding models: the identity threshold calibrated on labelled data (used by the server unless configured). */
  identity?: IdentityCalibration;
  /** Versions made from another version at lower precision (`kt models quantize`); absent: fp32 as built. */
  precision?: PrecisionSpec;
}

/** A cosine-similarity threshold for identity matching, measured at a false accept rate on a dataset. */
export interface IdentityCalibration {
  /** Cosine similarity in -1..1 at or above which two faces are the same person. */
  threshold: number;
  /** False accept rate (0..1) the threshold gave on `dataset`'s impostor pairs. */
  far: number;
  /** Dataset name. */
  dataset: string;
  /** Whether the faces were aligned ('5point') when it was measured. */
  align: 'none' | '5point';
  /** Verification pairs scored. */
  pairs: number;
  /** ISO 8601 date of the measurement. */
  date: string;
}

// ---- schema ----
// The interfaces above stay the documented types; the check at the end keeps the schema at least as strict as them.

const layoutSchema = literals(['NHWC', 'NCHW'] as const);
const faceTasks: readonly FaceTask[] = ['detection', 'age', 'gender', 'emotion', 'landmarks', 'embedding', 'mesh', 'liveness', 'antispoof'];
const tensorName = (description: string) => Type.String({ minLength: 1, description });
const strict = { additionalProperties: false } as const;

const inputSpecSchema = Type.Object(
  {
    name: tensorName('ONNX input tensor name.'),
    layout: layoutSchema,
    size: Type.Integer({ minimum: 1, description: 'Square input size in pixels (width = height).' }),
    colorOrder: literals(['RGB', 'BGR', 'GRAY'] as const, {
      description: 'Channel order fed to the model: RGB, BGR or GRAY (single channel, ITU-R BT.601 luma).',
    }),
    scale: Type.Number({ description: 'value = (pixel * scale - mean[c]) / std[c], pixel in 0..255.' }),
    mean: Type.Array(Type.Number(), { minItems: 1, maxItems: 3 }),
    std: Type.Array(Type.Number({ exclusiveMinimum: 0 }), { minItems: 1, maxItems: 3 }),
    cropMargin: Type.Number({
      minimum: 0,
      description: 'Crop margin around the detected box as a fraction of its size on each side (0.2 = 20 % per side). Detectors: 0.',
    }),
    cropSquare: Type.Boolean({ description: 'Make the crop square (on the longer side) before the margin.' }),
    refineCrop: Type.Optional(
      Type.Object(
        {
          scale: Type.Number({
            exclusiveMinimum: 0,
            maximum: 4,
            description: "Side of the second crop's box as a multiple of the detector box's side.",
          }),
        },
        {
          ...strict,
          description:
            "Landmark models: run twice, the second crop centred on the first pass's points (measured by `kt models eval --task landmarks`). Absent: one pass.",
        },
      ),
    ),
    align: Type.Optional(
      literals(['none', '5point'] as const, {
        description: "'5point': warp the face onto a landmark template from the detector's keypoints; 'none' or absent: the box crop.",
      }),
    ),
  },
  { ...strict, description: 'How a face crop (or a whole frame for a detector) becomes the input tensor.' },
);

const decodingSchemas = [
  Type.Object(
    {
      type: Type.Literal('blazeface'),
      scores: tensorName('Output tensor of the scores.'),
      boxes: tensorName('Output tensor of the boxes.'),
      anchors: Type.Object(
        {
          strides: Type.Array(Type.Integer({ minimum: 1 }), { minItems: 1 }),
          anchorsPerCell: Type.Array(Type.Integer({ minimum: 1 }), { minItems: 1 }),
        },
        strict,
      ),
      keypoints: Type.Integer({ minimum: 0 }),
      scoreThreshold: Type.Number({ minimum: 0, maximum: 1 }),
      iouThreshold: Type.Number({ minimum: 0, maximum: 1 }),
      maxFaces: Type.Integer({ minimum: 1 }),
    },
    strict,
  ),
  Type.Object(
    {
      type: Type.Literal('classification'),
      labels: Type.Array(Type.String(), { minItems: 1 }),
      activation: literals(['softmax', 'none', 'sigmoid'] as const),
    },
    strict,
  ),
  Type.Object(
    {
      type: Type.Literal('age-bins'),
      method: Type.Optional(
        literals(['expectation', 'argmax-neighbour'] as const, {
          description:
            "'expectation' (default): sum_i i * p_i. 'argmax-neighbour': human's decoding (argmax bin moved towards its larger neighbour).",
        }),
      ),
      note: Type.Optional(Type.String()),
    },
    strict,
  ),
  Type.Object({ type: Type.Literal('age-years'), scale: Type.Number() }, strict),
  Type.Object({ type: Type.Literal('gender-sigmoid'), positive: literals(['male', 'female'] as const) }, strict),
  Type.Object(
    {
      type: Type.Literal('landmarks'),
      scheme: literals(['ibug68', 'wflw98', 'mediapipe468'] as const),
      count: Type.Integer({ minimum: 1 }),
      dims: literals([2, 3] as const),
      coordinateScale: Type.Number(),
      normalized: Type.Boolean(),
    },
    strict,
  ),
  Type.Object(
    { type: Type.Literal('embedding'), size: Type.Integer({ minimum: 1 }), normalize: literals(['l2', 'none'] as const) },
    strict,
  ),
  Type.Object({ type: Type.Literal('scalar'), activation: literals(['sigmoid', 'none'] as const) }, strict),
];

const outputSpecSchema = Type.Object(
  {
    name: tensorName('ONNX output tensor name.'),
    task: literals(faceTasks, { description: 'The task the output answers.' }),
    decoding: Type.Union(decodingSchemas, { description: 'How the tensor becomes an answer; `type` selects the decoder.' }),
  },
  strict,
);

const encoderSpecSchema = Type.Object(
  {
    tensor: tensorName('Tensor name of the feature map inside model.onnx.'),
    width: Type.Integer({ minimum: 1, description: 'Channels C of the feature map (the prior-token width after GAP).' }),
    spatial: Type.Tuple([Type.Integer({ minimum: 1 }), Type.Integer({ minimum: 1 })], {
      description: "Spatial size H x W of the feature map at the model's input size.",
    }),
    layout: layoutSchema,
    head: literals(['gap-dense', 'conv'] as const, {
      description: "What follows the cut: 'gap-dense' heads commute with GAP exactly; 'conv' heads do not.",
    }),
  },
  { ...strict, description: 'The spatial embedding before a task head: where the KT-Adapter cuts an encoder.' },
);

const modelSourceSchema = Type.Object(
  {
    package: Type.String(),
    version: Type.String(),
    file: Type.String(),
    license: Type.String(),
    buildKey: Type.Optional(
      Type.String({ description: 'Hash of the zoo entry and converter version the model was built with: a change triggers a rebuild.' }),
    ),
  },
  strict,
);

const trainingSchema = Type.Object(
  {
    priors: Type.Array(Type.String()),
    canonical: Type.String(),
    data: Type.String(),
    // null: JSON has no NaN, so a metric that was NaN is written as null.
    metrics: Type.Record(Type.String(), Type.Union([Type.Number(), Type.Null()])),
    adapterFlops: Type.Optional(Type.Number()),
  },
  { additionalProperties: true, description: 'Trained models: priors used, data and metrics (more fields allowed).' },
);

const precisionSchema = Type.Object(
  {
    type: literals(['fp32', 'int8', 'fp16'] as const),
    fromVersion: Type.Integer({ minimum: 1, description: 'The version this one was made from.' }),
    fromSha256: Type.String({ pattern: '^[0-9a-f]{64}$', mustBe: 'a sha256 as 64 lower-case hex digits' }),
    method: Type.String({ description: 'How the version was made (quantization scheme, ops).' }),
    calibration: Type.Optional(
      Type.Object(
        {
          datasets: Type.Array(Type.String()),
          faces: Type.Integer({ minimum: 0 }),
          rangeMethod: Type.String(),
          file: Type.String({ description: 'The stored activation ranges the graph was built from.' }),
        },
        strict,
      ),
    ),
    speed: Type.Optional(
      Type.Array(
        Type.Object(
          { batch: Type.Integer({ minimum: 1 }), msPerFace: Type.Number({ minimum: 0 }), sourceMsPerFace: Type.Number({ minimum: 0 }) },
          { ...strict, description: 'Model-only milliseconds per face, best of N runs, this version and the source.' },
        ),
      ),
    ),
    accuracy: Type.Optional(
      Type.Array(
        Type.Object(
          {
            task: Type.String(),
            dataset: Type.String(),
            metric: Type.String(),
            unit: Type.Optional(Type.String()),
            n: Type.Integer({ minimum: 0 }),
            source: Type.Number(),
            value: Type.Number(),
            change: Type.Number({ description: 'value - source on the same faces.' }),
            ci95: Type.Optional(
              Type.Tuple([Type.Number(), Type.Number()], { description: 'Paired 95 % bootstrap interval of the change.' }),
            ),
            tolerance: Type.Optional(Type.Number({ minimum: 0 })),
            withinTolerance: Type.Optional(Type.Boolean()),
            date: Type.String(),
          },
          strict,
        ),
      ),
    ),
  },
  { ...strict, description: 'A version made from another at lower precision (`kt models quantize`); absent: fp32 as built.' },
);

const evaluationSchema = Type.Object(
  {
    task: Type.String({ minLength: 1 }),
    dataset: Type.String({ minLength: 1, description: 'Dataset name (folder name, e.g. "age-utkface").' }),
    variant: Type.Optional(Type.String({ description: 'E.g. "aligned"; absent for the plain serving path.' })),
    n: Type.Integer({ minimum: 0, description: 'Faces (or pairs) scored.' }),
    metric: Type.String({ minLength: 1 }),
    value: Type.Number(),
    unit: Type.Optional(Type.String()),
    ci95: Type.Optional(Type.Tuple([Type.Number(), Type.Number()], { description: '95 % interval [lo, hi].' })),
    ciMethod: Type.Optional(Type.String({ description: 'How ci95 was computed, e.g. "bootstrap-subject".' })),
    msPerFace: Type.Optional(Type.Number({ minimum: 0, description: 'Crop + model + decode per face, milliseconds.' })),
    date: Type.String({ description: 'ISO 8601 date of the run.' }),
    note: Type.Optional(Type.String({ description: 'A caveat, e.g. that the model was trained on this dataset.' })),
  },
  { ...strict, description: 'One measured result of `kt models eval --write`: one entry per task, dataset, metric and variant.' },
);

/** model.json as JSON Schema. */
export const modelManifestSchema = Type.Object(
  {
    $schema: Type.Optional(Type.String({ description: 'Path or URL of this JSON Schema, for editor completion; ignored by the server.' })),
    name: Type.String({
      pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$',
      mustBe: 'a repository name (letters, digits, ".", "_", "-")',
      description: 'Repository name, e.g. "faceres".',
    }),
    version: Type.Integer({ minimum: 1, description: 'Version: the folder name under the model (higher wins).' }),
    kind: literals(modelKinds.names),
    tasks: Type.Array(literals(faceTasks), {
      description: 'Tasks this model answers (an encoder-only "prior" lists the task it was trained for).',
    }),
    description: Type.String(),
    input: inputSpecSchema,
    outputs: Type.Array(outputSpecSchema, { minItems: 1 }),
    encoder: Type.Optional(encoderSpecSchema),
    source: Type.Optional(modelSourceSchema),
    sha256: Type.String({
      pattern: '^[0-9a-f]{64}$',
      mustBe: 'the sha256 of model.onnx as 64 lower-case hex digits',
      description: 'sha256 of model.onnx, so caches and clients can key on content.',
    }),
    training: Type.Optional(trainingSchema),
    createdAt: Type.String({ description: 'When the model was built (ISO 8601).' }),
    evaluations: Type.Optional(Type.Array(evaluationSchema, { description: 'Measured results (`kt models eval --write`).' })),
    precision: Type.Optional(precisionSchema),
    identity: Type.Optional(
      Type.Object(
        {
          threshold: Type.Number({ minimum: -1, maximum: 1, description: 'Cosine similarity at or above which two faces match.' }),
          far: Type.Number({ minimum: 0, maximum: 1, description: "False accept rate of the threshold on the dataset's impostor pairs." }),
          dataset: Type.String(),
          align: literals(['none', '5point'] as const),
          pairs: Type.Integer({ minimum: 0 }),
          date: Type.String(),
        },
        {
          ...strict,
          description: 'Embedding models: identity threshold calibrated on labelled data; the server uses it unless configured.',
        },
      ),
    ),
  },
  { ...strict, title: 'kt model manifest (model.json)' },
);

// Compile-time: whatever passes the schema is a ModelManifest (training is looser on purpose: NaN metrics are null).
type Checked = Omit<Static<typeof modelManifestSchema>, '$schema' | 'training'>;
const _schemaMatchesTypes: (m: Checked) => Omit<ModelManifest, 'training'> = (m) => m;
void _schemaMatchesTypes;

// ---- which decodings can answer which task ----

type Decoding = OutputDecoding;

/** Why a decoding cannot answer a task (undefined: it can). One decoding per task: every model's answer has one shape. */
const taskDecodingCheck: Record<FaceTask, (d: Decoding) => string | undefined> = {
  detection: (d) => (d.type === 'blazeface' ? undefined : 'needs a blazeface decoding'),
  age: (d) => (d.type === 'age-bins' || d.type === 'age-years' ? undefined : 'needs an age-bins or age-years decoding'),
  gender: (d) => {
    if (d.type === 'gender-sigmoid') return undefined;
    if (d.type === 'classification' && d.labels.length === 2 && d.labels.includes('male') && d.labels.includes('female')) return undefined;
    if (d.type === 'classification') return `needs the labels male and female (a two-class classifier), has ${d.labels.join(', ')}`;
    return 'needs a gender-sigmoid decoding or a classification with the labels male and female';
  },
  emotion: (d) => (d.type === 'classification' ? undefined : 'needs a classification decoding'),
  landmarks: (d) => (d.type === 'landmarks' ? undefined : 'needs a landmarks decoding'),
  mesh: (d) => (d.type === 'landmarks' || d.type === 'scalar' ? undefined : 'needs a landmarks decoding (or a scalar face score)'),
  embedding: (d) => (d.type === 'embedding' ? undefined : 'needs an embedding decoding'),
  liveness: (d) => (d.type === 'scalar' || d.type === 'classification' ? undefined : 'needs a scalar or classification decoding'),
  antispoof: (d) => (d.type === 'scalar' || d.type === 'classification' ? undefined : 'needs a scalar or classification decoding'),
};

/**
 * Outputs whose decoding cannot answer the task they declare, e.g. task gender with a classification lacking the
 * labels male/female: `model agegender output "gender" (task gender, decoding classification): needs the labels ...`.
 */
export function manifestTaskProblems(manifest: Pick<ModelManifest, 'name' | 'outputs'>): string[] {
  const problems: string[] = [];
  for (const out of manifest.outputs) {
    const why = taskDecodingCheck[out.task](out.decoding);
    if (why) problems.push(`model ${manifest.name} output "${out.name}" (task ${out.task}, decoding ${out.decoding.type}): ${why}`);
  }
  return problems;
}
