// Parity of the ONNX builds of face-api's nets against face-api itself (TF.js wasm) on real face crops.
import { createRequire } from 'node:module';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { encodeModel } from '../src/onnx/proto.js';
import { createSession, runFloat, type OrtSession } from '../src/onnx/runtime.js';
import { loadTf, type Tf } from '../src/train/tfjs-backend.js';
import {
  FACEAPI_EXPRESSION_LABELS,
  FACEAPI_TENSORS,
  buildFaceApiAgeGender,
  buildFaceApiExpression,
  buildFaceApiLandmark68,
  decodeFaceApiLandmarks,
  faceApiModelDir,
  type FaceApiHead,
  type FaceApiNetBuild,
} from '../src/models/faceapi-nets.js';
import { maxAbsDiff } from './helpers/compare.js';

const require = createRequire(import.meta.url);
const SIZE = 112;

// Boxes (x, y, width, height) of the three faces in demo/sample1.jpg (1920x1280), found once with face-api's
// own SsdMobilenetv1 (scores 0.99+).
const FACE_BOXES = [
  { x: 414, y: 355, width: 177, height: 240 },
  { x: 838, y: 421, width: 186, height: 228 },
  { x: 1476, y: 199, width: 203, height: 241 },
];

/** A square crop around the box centre (side = longer box side), resized to 112: RGB 0..255 as float32 HWC. */
async function faceCrop(image: string, box: (typeof FACE_BOXES)[number]): Promise<Float32Array> {
  const side = Math.max(box.width, box.height);
  const left = Math.round(box.x + box.width / 2 - side / 2);
  const top = Math.round(box.y + box.height / 2 - side / 2);
  const raw = await sharp(image).removeAlpha().extract({ left, top, width: side, height: side }).resize(SIZE, SIZE).raw().toBuffer();
  return Float32Array.from(raw);
}

/** GAP of an NCHW map followed by the head's dense layer (and softmax): what a KT decoder starts from. */
function gapThroughHead(features: { data: Float32Array; dims: number[] }, head: FaceApiHead): Float32Array {
  const [n, c, h, w] = features.dims as [number, number, number, number];
  expect(c).toBe(head.inFeatures);
  const out = new Float32Array(n * head.outFeatures);
  for (let b = 0; b < n; b++) {
    const pooled = new Float64Array(c);
    for (let ch = 0; ch < c; ch++) {
      let s = 0;
      for (let i = 0; i < h * w; i++) s += features.data[(b * c + ch) * h * w + i]!;
      pooled[ch] = s / (h * w);
    }
    const row = new Float64Array(head.outFeatures);
    for (let o = 0; o < head.outFeatures; o++) {
      let s = head.bias[o]!;
      for (let ch = 0; ch < c; ch++) s += pooled[ch]! * head.weights[ch * head.outFeatures + o]!;
      row[o] = s;
    }
    if (head.activation === 'softmax') {
      const max = Math.max(...row);
      let sum = 0;
      for (let o = 0; o < row.length; o++) sum += row[o] = Math.exp(row[o]! - max);
      for (let o = 0; o < row.length; o++) row[o] = row[o]! / sum;
    }
    out.set(row, b * head.outFeatures);
  }
  return out;
}

interface FaceApiTensor {
  dataSync(): Float32Array;
  dispose(): void;
  shape: number[];
}
interface FaceApiModule {
  nets: Record<
    'faceLandmark68Net' | 'faceExpressionNet' | 'ageGenderNet',
    {
      loadFromDisk(dir: string): Promise<void>;
      runNet(input: unknown): FaceApiTensor | { age: FaceApiTensor; gender: FaceApiTensor };
      forwardInput(input: unknown): FaceApiTensor | { age: FaceApiTensor; gender: FaceApiTensor };
      detectLandmarks(input: unknown): Promise<{ positions: { x: number; y: number }[] }>;
      faceFeatureExtractor: { forwardInput(input: unknown): FaceApiTensor };
    }
  >;
  toNetInput(input: unknown): Promise<unknown>;
}

let tf: Tf;
let faceapi: FaceApiModule;
let crops: Float32Array[];
let batch: Float32Array;
const built: Record<string, { build: FaceApiNetBuild; session: OrtSession }> = {};

const inputTensors: { dispose(): void }[] = [];

/** face-api's NetInput for one crop; the tensor is disposed after the test. */
async function faceApiOn(crop: Float32Array): Promise<unknown> {
  const t = tf.tensor4d(crop, [1, SIZE, SIZE, 3]);
  inputTensors.push(t);
  return faceapi.toNetInput(t);
}

async function onnxRun(key: string, outputs: string[]): Promise<Record<string, { data: Float32Array; dims: number[] }>> {
  const { session } = built[key]!;
  return runFloat(session, { [FACEAPI_TENSORS.input]: { data: batch, dims: [crops.length, SIZE, SIZE, 3] } }, outputs);
}

describe('face-api nets as ONNX', () => {
  beforeAll(async () => {
    ({ tf } = await loadTf('wasm'));
    // The node-wasm bundle requires the same CommonJS @tensorflow/tfjs that loadTf imported, so it runs on wasm.
    faceapi = require('@vladmandic/face-api/dist/face-api.node-wasm.js') as FaceApiModule;
    const dir = faceApiModelDir();
    await faceapi.nets.faceLandmark68Net.loadFromDisk(dir);
    await faceapi.nets.faceExpressionNet.loadFromDisk(dir);
    await faceapi.nets.ageGenderNet.loadFromDisk(dir);
    const image = join(dir, '..', 'demo', 'sample1.jpg');
    crops = await Promise.all(FACE_BOXES.map((b) => faceCrop(image, b)));
    batch = new Float32Array(crops.length * SIZE * SIZE * 3);
    crops.forEach((c, i) => batch.set(c, i * c.length));
    for (const [key, build] of [
      ['landmark68', buildFaceApiLandmark68],
      ['expression', buildFaceApiExpression],
      ['ageGender', buildFaceApiAgeGender],
    ] as const) {
      const b = await build();
      built[key] = { build: b, session: (await createSession(encodeModel(b.model))).session };
    }
  });

  afterEach(() => {
    for (const t of inputTensors.splice(0)) t.dispose();
  });

  it('describes the encoder cut', () => {
    const lm = built['landmark68']!.build;
    expect([lm.encoderTensor, lm.encoderWidth, lm.encoderSpatial]).toEqual(['encoder/features', 256, [7, 7]]);
    const ex = built['expression']!.build;
    expect([ex.encoderTensor, ex.encoderWidth, ex.encoderSpatial]).toEqual(['encoder/features', 256, [7, 7]]);
    const ag = built['ageGender']!.build;
    expect([ag.encoderTensor, ag.encoderWidth, ag.encoderSpatial]).toEqual(['encoder/features', 512, [7, 7]]);
    expect(lm.input).toMatchObject({ name: 'input', layout: 'NHWC', size: 112, colorOrder: 'RGB', scale: 1 });
  });

  it('landmark68 matches face-api runNet, and the documented pixel decoding matches detectLandmarks', async () => {
    const onnx = await onnxRun('landmark68', ['landmarks', FACEAPI_TENSORS.features, FACEAPI_TENSORS.pooled]);
    let worst = 0;
    let worstPooled = 0;
    for (let i = 0; i < crops.length; i++) {
      const input = await faceApiOn(crops[i]!);
      const raw = faceapi.nets.faceLandmark68Net.runNet(input) as FaceApiTensor;
      worst = Math.max(worst, maxAbsDiff(onnx['landmarks']!.data.subarray(i * 136, (i + 1) * 136), raw.dataSync()));
      const pooled = faceapi.nets.faceLandmark68Net.faceFeatureExtractor.forwardInput(input);
      worstPooled = Math.max(
        worstPooled,
        maxAbsDiff(onnx[FACEAPI_TENSORS.pooled]!.data.subarray(i * 256, (i + 1) * 256), pooled.dataSync()),
      );
      // face-api's own decoding on the 112x112 crop: pixels of the crop = raw * 112.
      const { positions } = await faceapi.nets.faceLandmark68Net.detectLandmarks(input);
      const decoded = decodeFaceApiLandmarks(raw.dataSync(), { x: 0, y: 0, width: SIZE, height: SIZE });
      expect(
        maxAbsDiff(
          decoded.flatMap((p) => [p.x, p.y]),
          positions.flatMap((p) => [p.x, p.y]),
        ),
      ).toBeLessThan(1e-3);
      raw.dispose();
      pooled.dispose();
    }
    console.info(
      `landmark68: max |onnx - face-api| = ${worst.toExponential(2)} (landmarks), ${worstPooled.toExponential(2)} (pooled features)`,
    );
    expect(worst).toBeLessThan(1e-3);
    expect(worstPooled).toBeLessThan(1e-3);
    const cut = maxAbsDiff(gapThroughHead(onnx[FACEAPI_TENSORS.features]!, built['landmark68']!.build.heads[0]!), onnx['landmarks']!.data);
    console.info(`landmark68: GAP-cut max diff = ${cut.toExponential(2)}`);
    expect(cut).toBeLessThan(1e-4);
  });

  it('decodeFaceApiLandmarks reproduces face-api on a non-square input', async () => {
    // A 112x80 input: face-api zero-pads it to a centred square before the net, then maps back.
    const wide = tf.slice(tf.tensor4d(crops[0]!, [1, SIZE, SIZE, 3]), [0, 16, 0, 0], [1, 80, SIZE, 3]);
    const input = await faceapi.toNetInput(wide);
    const raw = faceapi.nets.faceLandmark68Net.runNet(input) as FaceApiTensor;
    const { positions } = await faceapi.nets.faceLandmark68Net.detectLandmarks(input);
    const decoded = decodeFaceApiLandmarks(raw.dataSync(), { x: 0, y: 0, width: SIZE, height: 80 });
    expect(
      maxAbsDiff(
        decoded.flatMap((p) => [p.x, p.y]),
        positions.flatMap((p) => [p.x, p.y]),
      ),
    ).toBeLessThan(1e-3);
    raw.dispose();
    wide.dispose();
  });

  it('expression matches face-api forwardInput (softmax probabilities)', async () => {
    const onnx = await onnxRun('expression', ['expressions', 'expression_logits', FACEAPI_TENSORS.features]);
    let worst = 0;
    for (let i = 0; i < crops.length; i++) {
      const input = await faceApiOn(crops[i]!);
      const probs = faceapi.nets.faceExpressionNet.forwardInput(input) as FaceApiTensor;
      worst = Math.max(worst, maxAbsDiff(onnx['expressions']!.data.subarray(i * 7, (i + 1) * 7), probs.dataSync()));
      probs.dispose();
    }
    const top = Array.from({ length: crops.length }, (_, i) => {
      const p = Array.from(onnx['expressions']!.data.subarray(i * 7, (i + 1) * 7));
      return FACEAPI_EXPRESSION_LABELS[p.indexOf(Math.max(...p))];
    });
    console.info(`expression: max |onnx - face-api| = ${worst.toExponential(2)}; top labels ${top.join(', ')}`);
    expect(worst).toBeLessThan(1e-3);
    const head = built['expression']!.build.heads[0]!;
    const cut = maxAbsDiff(gapThroughHead(onnx[FACEAPI_TENSORS.features]!, head), onnx['expressions']!.data);
    const cutLogits = maxAbsDiff(
      gapThroughHead(onnx[FACEAPI_TENSORS.features]!, { ...head, activation: 'none' }),
      onnx['expression_logits']!.data,
    );
    console.info(`expression: GAP-cut max diff = ${cut.toExponential(2)} (probabilities), ${cutLogits.toExponential(2)} (logits)`);
    expect(cut).toBeLessThan(1e-4);
    expect(cutLogits).toBeLessThan(1e-4);
  });

  it('age/gender matches face-api forwardInput', async () => {
    const onnx = await onnxRun('ageGender', ['age', 'gender', FACEAPI_TENSORS.features]);
    let worstAge = 0;
    let worstGender = 0;
    for (let i = 0; i < crops.length; i++) {
      const input = await faceApiOn(crops[i]!);
      const { age, gender } = faceapi.nets.ageGenderNet.forwardInput(input) as { age: FaceApiTensor; gender: FaceApiTensor };
      worstAge = Math.max(worstAge, maxAbsDiff(onnx['age']!.data.subarray(i, i + 1), age.dataSync()));
      worstGender = Math.max(worstGender, maxAbsDiff(onnx['gender']!.data.subarray(i * 2, (i + 1) * 2), gender.dataSync()));
      age.dispose();
      gender.dispose();
    }
    console.info(
      `age/gender: max |onnx - face-api| = ${worstAge.toExponential(2)} years, ${worstGender.toExponential(2)} gender prob; ages ${Array.from(onnx['age']!.data, (a) => a.toFixed(1)).join(', ')}`,
    );
    expect(worstAge).toBeLessThan(1e-3);
    expect(worstGender).toBeLessThan(1e-3);
    const [ageHead, genderHead] = built['ageGender']!.build.heads as [FaceApiHead, FaceApiHead];
    const features = onnx[FACEAPI_TENSORS.features]!;
    const cutAge = maxAbsDiff(gapThroughHead(features, ageHead), onnx['age']!.data);
    const cutGender = maxAbsDiff(gapThroughHead(features, genderHead), onnx['gender']!.data);
    console.info(`age/gender: GAP-cut max diff = ${cutAge.toExponential(2)} (age), ${cutGender.toExponential(2)} (gender)`);
    expect(cutAge).toBeLessThan(1e-4);
    expect(cutGender).toBeLessThan(1e-4);
  });
});
