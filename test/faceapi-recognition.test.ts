// Parity of the ONNX build of face-api's FaceRecognitionNet against face-api itself (TF.js wasm) on real face crops.
import { createRequire } from 'node:module';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeModel } from '../src/onnx/proto.js';
import { createSession, runFloat, type OrtSession } from '../src/onnx/runtime.js';
import { loadTf, type Tf } from '../src/train/tfjs-backend.js';
import { FACEAPI_TENSORS, faceApiModelDir } from '../src/models/faceapi-nets.js';
import {
  FACEAPI_DESCRIPTOR,
  FACEAPI_RECOGNITION_INPUT_SIZE as SIZE,
  buildFaceApiRecognition,
  type FaceApiRecognitionBuild,
} from '../src/models/faceapi-recognition.js';
import { maxAbsDiff } from './helpers/compare.js';
import { cosineSimilarity as cosine } from '../src/models/processing/index.js';

const require = createRequire(import.meta.url);

// The three faces of face-api's demo/sample1.jpg (1920x1280), boxes found once with face-api's SsdMobilenetv1
// (as in faceapi-nets.test.ts), and one of them again from a shifted, larger crop (same person, other pixels).
const FACES = [
  { x: 414, y: 355, width: 177, height: 240 },
  { x: 838, y: 421, width: 186, height: 228 },
  { x: 1476, y: 199, width: 203, height: 241 },
  { x: 820, y: 400, width: 230, height: 260 },
];

interface FaceApiTensor {
  dataSync(): Float32Array;
  dispose(): void;
}
interface FaceApiModule {
  nets: { faceRecognitionNet: { loadFromDisk(dir: string): Promise<void>; forwardInput(input: unknown): FaceApiTensor } };
  toNetInput(input: unknown): Promise<unknown>;
}

async function faceCrop(image: string, box: (typeof FACES)[number]): Promise<Float32Array> {
  const side = Math.max(box.width, box.height);
  const left = Math.round(box.x + box.width / 2 - side / 2);
  const top = Math.round(box.y + box.height / 2 - side / 2);
  const raw = await sharp(image).removeAlpha().extract({ left, top, width: side, height: side }).resize(SIZE, SIZE).raw().toBuffer();
  return Float32Array.from(raw);
}

let tf: Tf;
let faceapi: FaceApiModule;
let build: FaceApiRecognitionBuild;
let session: OrtSession;
let crops: Float32Array[];

describe('face-api FaceRecognitionNet as ONNX', () => {
  beforeAll(async () => {
    ({ tf } = await loadTf('wasm'));
    faceapi = require('@vladmandic/face-api/dist/face-api.node-wasm.js') as FaceApiModule;
    const dir = faceApiModelDir();
    await faceapi.nets.faceRecognitionNet.loadFromDisk(dir);
    crops = await Promise.all(FACES.map((b) => faceCrop(join(dir, '..', 'demo', 'sample1.jpg'), b)));
    build = await buildFaceApiRecognition();
    ({ session } = await createSession(encodeModel(build.model)));
  });

  afterAll(async () => {
    await session?.release();
  });

  it('declares a 150 px RGB input, a 128-d embedding and the 2x2x256 encoder cut', () => {
    expect(build.input).toMatchObject({ name: 'input', layout: 'NHWC', size: 150, colorOrder: 'RGB', scale: 1, align: '5point' });
    expect(build.outputs).toEqual([{ name: 'descriptor', task: 'embedding', decoding: { type: 'embedding', size: 128, normalize: 'l2' } }]);
    expect(build.encoder).toMatchObject({ tensor: 'encoder/features', width: 256, spatial: [2, 2], head: 'gap-dense' });
  });

  it("matches face-api's descriptor on real faces (max abs diff and cosine), and GAP -> fc reproduces it", async () => {
    const batch = new Float32Array(crops.length * SIZE * SIZE * 3);
    crops.forEach((c, i) => batch.set(c, i * c.length));
    const out = await runFloat(session, { [FACEAPI_TENSORS.input]: { data: batch, dims: [crops.length, SIZE, SIZE, 3] } }, [
      FACEAPI_DESCRIPTOR,
      FACEAPI_TENSORS.pooled,
    ]);
    const onnx = out[FACEAPI_DESCRIPTOR]!;
    expect(onnx.dims).toEqual([crops.length, 128]);
    let worst = 0;
    let worstCos = 1;
    const reference: Float32Array[] = [];
    for (let i = 0; i < crops.length; i++) {
      const t = tf.tensor4d(crops[i]!, [1, SIZE, SIZE, 3]);
      const d = faceapi.nets.faceRecognitionNet.forwardInput(await faceapi.toNetInput(t));
      const ref = d.dataSync().slice();
      reference.push(ref);
      const mine = onnx.data.subarray(i * 128, (i + 1) * 128);
      worst = Math.max(worst, maxAbsDiff(mine, ref));
      worstCos = Math.min(worstCos, cosine(mine, ref));
      d.dispose();
      t.dispose();
    }
    // The descriptor is an identity code: the same person (faces 1 and 3) must be closer than different people.
    const same = cosine(reference[1]!, reference[3]!);
    const different = Math.max(
      cosine(reference[0]!, reference[1]!),
      cosine(reference[0]!, reference[2]!),
      cosine(reference[1]!, reference[2]!),
    );
    console.info(
      `facerec: max |onnx - face-api| = ${worst.toExponential(2)}, min cosine = ${worstCos.toFixed(7)}; face-api cosine same person ${same.toFixed(3)}, different people max ${different.toFixed(3)}`,
    );
    expect(worst).toBeLessThan(1e-3);
    expect(worstCos).toBeGreaterThan(0.99999);
    expect(same).toBeGreaterThan(different);
    // GAP -> fc from the pooled encoder output reproduces the descriptor (the KT cut is exact).
    const pooled = out[FACEAPI_TENSORS.pooled]!;
    const viaHead = new Float32Array(crops.length * 128);
    for (let n = 0; n < crops.length; n++)
      for (let o = 0; o < 128; o++) {
        let s = 0;
        for (let c = 0; c < 256; c++) s += pooled.data[n * 256 + c]! * build.fc[c * 128 + o]!;
        viaHead[n * 128 + o] = s;
      }
    expect(maxAbsDiff(viaHead, onnx.data)).toBeLessThan(1e-4);
  });
});
