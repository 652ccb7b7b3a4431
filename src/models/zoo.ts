// The face-model zoo: which npm-shipped networks become which repository models, with their manifests.
import type { TaskName } from '../contract/tasks.js';
import type { EncoderSpec, FaceTask, IdentityCalibration, InputSpec, ModelKind, OutputSpec } from './manifest.js';

/**
 * The repository model that answers each request task unless the config or a request says otherwise. The server's
 * config takes its defaults from here, and `kt models eval` compares every model against these.
 */
export const servingDefaultModels: Readonly<Record<TaskName, string>> = Object.freeze({
  // README "Model choice": not separable from faceres on outside adult faces (4.14 vs 4.52 years MAE), 4.7x cheaper here.
  age: 'agegender',
  gender: 'faceres',
  embedding: 'faceres',
  // README "Model choice": ties faceres on ORL (99.53 vs 99.39 %, paired +0.14 [-0.16, 0.44]) at 2.6x less compute; its
  // architecture (dlib ResNet-34) reports 99.38 % on LFW where faceres measured 96.3 % from outside.
  identity: 'facerec',
  // README "Model choice": 58.0 vs 44.9 % on outside posed faces (+13.1, CI 10.2..16.1); FER2013 favours emotion (its own data).
  emotion: 'expression',
  landmarks: 'landmarks68',
  mesh: 'facemesh',
});

export const EMOTION_LABELS_FER = ['angry', 'disgust', 'fear', 'happy', 'sad', 'surprise', 'neutral'];

/** A zoo entry converted from a TF.js graph model of @vladmandic/human. */
export interface TfjsZooEntry {
  source: 'tfjs-graph';
  name: string;
  kind: ModelKind;
  tasks: FaceTask[];
  description: string;
  package: string;
  /** Path of model.json inside the package. */
  file: string;
  license: string;
  input: Omit<InputSpec, 'name'>;
  /** Output TF tensor name -> decoding; the ONNX output keeps the TF name (without ':0'). */
  outputs: { tfName: string; task: FaceTask; decoding: OutputSpec['decoding'] }[];
  encoder?: Omit<EncoderSpec, 'tensor'> & { tfTensor: string };
  /** Symbolic batch for task models (crops of many faces), fixed for the detector. */
  batch: number | 'N';
  /** Embedding models: the identity threshold measured by `kt models eval --task identity` (copied into model.json). */
  identity?: IdentityCalibration;
}

/** A zoo entry built from face-api's weights-only networks (see faceapi-nets.ts). */
export interface FaceApiZooEntry {
  source: 'faceapi-weights';
  name: string;
  net: 'landmark68' | 'expression' | 'age-gender' | 'recognition';
  kind: ModelKind;
  tasks: FaceTask[];
  description: string;
  package: string;
  file: string;
  license: string;
  /** Landmark nets: the manifest's input.refineCrop (a second crop centred on the first pass's points). */
  refineCrop?: { scale: number };
  /**
   * Emotion nets: the served labels of the emotion output, in the net's output order. One label set per task: face-api's
   * fearful / disgusted / surprised are served as FER2013's fear / disgust / surprise, like the emotion model's.
   */
  emotionLabels?: string[];
  /** Embedding models: the identity threshold measured by `kt models eval --task identity` (copied into model.json). */
  identity?: IdentityCalibration;
}

export type ZooEntry = TfjsZooEntry | FaceApiZooEntry;

/** BlazeFace's decoding, repeated on each of its four outputs: the scores and boxes of one anchor group. */
const blazefaceDecoding = (scores: string, boxes: string): OutputSpec['decoding'] => ({
  type: 'blazeface',
  scores,
  boxes,
  anchors: { strides: [16, 32], anchorsPerCell: [2, 6] },
  keypoints: 6,
  scoreThreshold: 0.5,
  iouThreshold: 0.3,
  maxFaces: 50,
});

const HUMAN = '@vladmandic/human';
const FACEAPI = '@vladmandic/face-api';

export const zoo: ZooEntry[] = [
  {
    source: 'tfjs-graph',
    name: 'blazeface',
    kind: 'detector',
    tasks: ['detection'],
    description: 'BlazeFace short-range face detector (MediaPipe), 256 px, 896 anchors, 6 keypoints',
    package: HUMAN,
    file: 'models/blazeface.json',
    license: 'Apache-2.0 (MediaPipe) / MIT (human)',
    input: {
      layout: 'NHWC',
      size: 256,
      colorOrder: 'RGB',
      scale: 1 / 127.5,
      mean: [1, 1, 1],
      std: [1, 1, 1],
      cropMargin: 0,
      cropSquare: false,
    },
    outputs: [
      { tfName: 'Identity', task: 'detection', decoding: blazefaceDecoding('Identity', 'Identity_2') },
      { tfName: 'Identity_1', task: 'detection', decoding: blazefaceDecoding('Identity_1', 'Identity_3') },
      { tfName: 'Identity_2', task: 'detection', decoding: blazefaceDecoding('Identity', 'Identity_2') },
      { tfName: 'Identity_3', task: 'detection', decoding: blazefaceDecoding('Identity_1', 'Identity_3') },
    ],
    batch: 1,
  },
  {
    source: 'tfjs-graph',
    name: 'faceres',
    kind: 'prior',
    tasks: ['age', 'gender', 'embedding'],
    description: 'HSE FaceRes (MobileNet): age (100 bins), gender, 1024-d face descriptor',
    package: HUMAN,
    file: 'models/faceres.json',
    license: 'MIT (human)',
    // BGR, although human feeds RGB: on 250 UTKFace faces BGR gives age MAE 9.9 vs 12.2 years and gender 88 vs 86 %
    // (the network comes from an OpenCV pipeline). scale 1: it expects 0..255 (human multiplies its 0..1 crop by 255).
    input: { layout: 'NHWC', size: 224, colorOrder: 'BGR', scale: 1, mean: [0, 0, 0], std: [1, 1, 1], cropMargin: 0.2, cropSquare: true },
    outputs: [
      {
        tfName: 'age_pred/Softmax:0',
        task: 'age',
        decoding: {
          type: 'age-bins',
          method: 'expectation',
          note: "one bin per year; expectation MAE 9.9 vs 10.3 years for human's argmax-neighbour decoding on 250 UTKFace faces",
        },
      },
      { tfName: 'gender_pred/Sigmoid:0', task: 'gender', decoding: { type: 'gender-sigmoid', positive: 'male' } },
      { tfName: 'global_pooling/Mean', task: 'embedding', decoding: { type: 'embedding', size: 1024, normalize: 'l2' } },
    ],
    encoder: { tfTensor: 'conv_pw_13_relu/clip_by_value', width: 1024, spatial: [7, 7], layout: 'NCHW', head: 'gap-dense' },
    batch: 'N',
    // `kt models eval --task identity --data ../shared/data/identity-orl`: FAR 1 % on all 78,000 impostor pairs, box crop
    // (0.626 at FAR 0.1 %; see CALIBRATION_FAR for why 1 %).
    identity: { threshold: 0.574, far: 0.01, dataset: 'identity-orl', align: 'none', pairs: 79800, date: '2026-11-29' },
  },
  {
    source: 'tfjs-graph',
    name: 'emotion',
    kind: 'prior',
    tasks: ['emotion'],
    description: 'Mini-Xception emotion classifier trained on FER2013, 64 px grey, 7 classes',
    package: HUMAN,
    file: 'models/emotion.json',
    license: 'MIT (oarriaga/face_classification, human)',
    input: { layout: 'NHWC', size: 64, colorOrder: 'GRAY', scale: 1 / 255, mean: [0.5], std: [0.5], cropMargin: 0.1, cropSquare: true },
    outputs: [
      { tfName: 'Identity', task: 'emotion', decoding: { type: 'classification', labels: EMOTION_LABELS_FER, activation: 'none' } },
    ],
    encoder: { tfTensor: 'StatefulPartitionedCall/model_1/add_2/add', width: 256, spatial: [8, 8], layout: 'NCHW', head: 'conv' },
    batch: 'N',
  },
  {
    source: 'tfjs-graph',
    name: 'facemesh',
    kind: 'prior',
    tasks: ['mesh'],
    description: 'MediaPipe FaceMesh: 468 3-D points on a 192 px face crop, plus face flag',
    package: HUMAN,
    file: 'models/facemesh.json',
    license: 'Apache-2.0 (MediaPipe)',
    input: {
      layout: 'NHWC',
      size: 192,
      colorOrder: 'RGB',
      scale: 1 / 255,
      mean: [0, 0, 0],
      std: [1, 1, 1],
      cropMargin: 0.25,
      cropSquare: true,
    },
    outputs: [
      {
        tfName: 'Identity_2',
        task: 'mesh',
        decoding: { type: 'landmarks', scheme: 'mediapipe468', count: 468, dims: 3, coordinateScale: 1, normalized: false },
      },
      { tfName: 'Identity_1', task: 'mesh', decoding: { type: 'scalar', activation: 'sigmoid' } },
    ],
    encoder: { tfTensor: 'StatefulPartitionedCall/model_1/p_re_lu_15/Relu', width: 128, spatial: [6, 6], layout: 'NCHW', head: 'conv' },
    batch: 'N',
  },
  {
    source: 'faceapi-weights',
    name: 'landmarks68',
    net: 'landmark68',
    kind: 'prior',
    tasks: ['landmarks'],
    description: 'face-api FaceLandmark68Net: 68 iBUG points on a 112 px face crop',
    package: FACEAPI,
    file: 'model/face_landmark_68_model-weights_manifest.json',
    license: 'MIT (face-api)',
    // Measured: WFLW NME 14.38 % one pass, 12.44 % with the re-centred second crop (kt models eval --task landmarks).
    refineCrop: { scale: 1.1 },
  },
  {
    source: 'faceapi-weights',
    name: 'expression',
    net: 'expression',
    kind: 'prior',
    tasks: ['emotion'],
    description: 'face-api FaceExpressionNet: 7 expressions on a 112 px face crop',
    package: FACEAPI,
    file: 'model/face_expression_model-weights_manifest.json',
    license: 'MIT (face-api)',
    emotionLabels: ['neutral', 'happy', 'sad', 'angry', 'fear', 'disgust', 'surprise'],
  },
  {
    source: 'faceapi-weights',
    name: 'agegender',
    net: 'age-gender',
    kind: 'prior',
    tasks: ['age', 'gender'],
    description: 'face-api AgeGenderNet: age in years and gender on a 112 px face crop',
    package: FACEAPI,
    file: 'model/age_gender_model-weights_manifest.json',
    license: 'MIT (face-api)',
  },
  {
    source: 'faceapi-weights',
    name: 'facerec',
    net: 'recognition',
    kind: 'prior',
    tasks: ['embedding'],
    description: 'face-api FaceRecognitionNet (dlib ResNet-34): 128-d face descriptor on a 150 px 5-point-aligned face',
    package: FACEAPI,
    file: 'model/face_recognition_model-weights_manifest.json',
    license: 'MIT (face-api); dlib model: Boost Software License / CC0 (dlib)',
    // `kt models eval --task identity --data ../shared/data/identity-orl`: FAR 1 % on all 78,000 impostor pairs, aligned
    // (0.9345 at FAR 0.1 %).
    identity: { threshold: 0.9186, far: 0.01, dataset: 'identity-orl', align: '5point', pairs: 79800, date: '2026-11-29' },
  },
  {
    source: 'tfjs-graph',
    name: 'antispoof',
    kind: 'prior',
    tasks: ['antispoof'],
    description: 'Anti-spoofing score (real face vs photo/screen), 128 px',
    package: HUMAN,
    file: 'models/antispoof.json',
    license: 'MIT (human)',
    input: { layout: 'NHWC', size: 128, colorOrder: 'RGB', scale: 1, mean: [0, 0, 0], std: [1, 1, 1], cropMargin: 0.2, cropSquare: true },
    outputs: [{ tfName: 'Identity', task: 'antispoof', decoding: { type: 'scalar', activation: 'none' } }],
    batch: 'N',
  },
];
