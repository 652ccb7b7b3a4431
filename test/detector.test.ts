// BlazeFace on the six face-api demo photos: face counts checked by eye, annotated frames written to out/detector/.
import type { Tensor as TfTensor } from '@tensorflow/tfjs';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeImage, encodePng, type RgbImage } from '../src/core/image.js';
import { drawPoint, drawRect, drawText, type Color } from '../src/core/draw.js';
import {
  blazefaceInputSpec,
  decodeBlazeface,
  prepareBlazefaceInput,
  selectBlazefaceHeads,
  type DetectedFace,
  type FloatTensor,
} from '../src/models/processing/index.js';

const onnxPath = 'model-repository/blazeface/1/model.onnx';
const tfjsPath = 'node_modules/@vladmandic/human/models/blazeface.json';
const samples = 'node_modules/@vladmandic/face-api/demo';
const outDir = 'out/detector';
const outputNames = ['Identity', 'Identity_1', 'Identity_2', 'Identity_3'];

/**
 * Faces counted by looking at each photo (and checked against the annotated output): every visible face,
 * including the profile on the left of sample2 and the two faces looking down in sample2.
 */
const trueFaceCount: Record<number, number> = { 1: 3, 2: 3, 3: 3, 4: 4, 5: 5, 6: 4 };

type Outputs = Record<string, { data: Float32Array; dims: number[] }>;
type RunModel = (input: FloatTensor) => Promise<Outputs>;

/**
 * ONNX Runtime on the converted model when the build produced it, else the original TF.js graph.
 * KT_DETECTOR_RUNTIME=tfjs forces the TF.js graph (to check the decoding against the original model).
 */
async function openDetector(): Promise<{ runtime: string; run: RunModel; close: () => Promise<void> }> {
  const forceTfjs = process.env['KT_DETECTOR_RUNTIME'] === 'tfjs';
  if (existsSync(onnxPath) && !forceTfjs) {
    const { createSession, runFloat } = await import('../src/onnx/runtime.js');
    const { session, provider } = await createSession(onnxPath);
    return {
      runtime: `onnxruntime-node (${provider}) on ${onnxPath}`,
      run: (input) => runFloat(session, { [blazefaceInputSpec.name]: input }),
      close: () => session.release(),
    };
  }
  const { loadTf } = await import('../src/train/tfjs-backend.js');
  const { readTfjsGraphModel } = await import('../src/onnx/tfjs-artifacts.js');
  const { tf, backend } = await loadTf();
  const artifacts = await readTfjsGraphModel(tfjsPath);
  const model = await tf.loadGraphModel({
    load: async () => ({
      modelTopology: artifacts.json['modelTopology'] as object,
      weightSpecs: artifacts.weightSpecs as Parameters<typeof tf.io.decodeWeights>[1],
      weightData: artifacts.weightData,
      format: 'graph-model',
    }),
  });
  return {
    runtime: `TF.js (${backend}) on ${tfjsPath}${forceTfjs ? ' (KT_DETECTOR_RUNTIME=tfjs)' : `; ${onnxPath} not built yet`}`,
    run: async (input) => {
      const x = tf.tensor(input.data, input.dims, 'float32');
      const results = model.execute({ [blazefaceInputSpec.name]: x }, outputNames) as TfTensor[];
      const outputs: Outputs = {};
      for (const [k, name] of outputNames.entries())
        outputs[name] = { data: (await results[k]!.data()) as Float32Array, dims: results[k]!.shape };
      tf.dispose([x, ...results]);
      return outputs;
    },
    close: async () => model.dispose(),
  };
}

const detector = await openDetector();
console.info(`detector runtime: ${detector.runtime}`);

async function detect(frame: RgbImage): Promise<DetectedFace[]> {
  const { tensor, transform } = prepareBlazefaceInput(frame);
  return decodeBlazeface(selectBlazefaceHeads(await detector.run(tensor)), transform);
}

const keypointColors: Color[] = [
  [255, 0, 0],
  [255, 128, 0],
  [255, 255, 0],
  [255, 0, 255],
  [0, 200, 255],
  [0, 0, 255],
];

function annotate(frame: RgbImage, faces: readonly DetectedFace[]): RgbImage {
  const image = { ...frame, data: frame.data.slice() };
  for (const face of faces) {
    drawRect(image, face.box, [0, 255, 0], 4);
    face.keypoints.forEach((p, k) => drawPoint(image, p.x, p.y, keypointColors[k % keypointColors.length]!, 6));
    drawText(image, face.box.x, face.box.y - 32, face.score.toFixed(2), [255, 255, 0], 5);
  }
  return image;
}

function mirror(frame: RgbImage): RgbImage {
  const data = new Uint8Array(frame.data.length);
  for (let y = 0; y < frame.height; y++) {
    for (let x = 0; x < frame.width; x++) {
      const s = (y * frame.width + x) * 3;
      const d = (y * frame.width + (frame.width - 1 - x)) * 3;
      data[d] = frame.data[s]!;
      data[d + 1] = frame.data[s + 1]!;
      data[d + 2] = frame.data[s + 2]!;
    }
  }
  return { data, width: frame.width, height: frame.height };
}

function subImage(frame: RgbImage, x0: number, y0: number, width: number, height: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++)
    data.set(frame.data.subarray(((y0 + y) * frame.width + x0) * 3, ((y0 + y) * frame.width + x0 + width) * 3), y * width * 3);
  return { data, width, height };
}

describe(`blazeface detector (${detector.runtime})`, () => {
  const frames = new Map<number, RgbImage>();

  beforeAll(async () => {
    await mkdir(outDir, { recursive: true });
    for (const n of Object.keys(trueFaceCount).map(Number))
      frames.set(n, await decodeImage(await readFile(join(samples, `sample${n}.jpg`))));
  });
  afterAll(() => detector.close());

  for (const [n, count] of Object.entries(trueFaceCount)) {
    it(`finds the ${count} faces of sample${n}.jpg`, async () => {
      const frame = frames.get(Number(n))!;
      const faces = await detect(frame);
      await writeFile(join(outDir, `sample${n}.png`), await encodePng(annotate(frame, faces)));
      expect(faces.length, `sample${n}: scores ${faces.map((f) => f.score.toFixed(3)).join(', ')}`).toBe(count);
      for (const face of faces) {
        const { box } = face;
        // A face box lies in the frame (up to a little overhang), is about square, and holds its eyes and nose.
        expect(box.x).toBeGreaterThan(-0.1 * box.width);
        expect(box.y).toBeGreaterThan(-0.1 * box.height);
        expect(box.x + box.width).toBeLessThan(frame.width + 0.1 * box.width);
        expect(box.y + box.height).toBeLessThan(frame.height + 0.1 * box.height);
        expect(box.width / box.height).toBeGreaterThan(0.8);
        expect(box.width / box.height).toBeLessThan(1.25);
        expect(box.width).toBeGreaterThan(60);
        expect(face.score).toBeGreaterThan(0.5);
        expect(face.keypoints).toHaveLength(6);
        for (const p of face.keypoints.slice(0, 3)) {
          expect(p.x).toBeGreaterThanOrEqual(box.x);
          expect(p.x).toBeLessThanOrEqual(box.x + box.width);
          expect(p.y).toBeGreaterThanOrEqual(box.y);
          expect(p.y).toBeLessThanOrEqual(box.y + box.height);
        }
      }
      // No two faces are the same face.
      for (let i = 0; i < faces.length; i++) {
        for (let j = i + 1; j < faces.length; j++) {
          const a = faces[i]!.box;
          const b = faces[j]!.box;
          const dx = a.x + a.width / 2 - (b.x + b.width / 2);
          const dy = a.y + a.height / 2 - (b.y + b.height / 2);
          expect(Math.hypot(dx, dy)).toBeGreaterThan(Math.min(a.width, b.width) / 2);
        }
      }
    });
  }

  it('finds the same faces in mirrored photos (not tuned to one view)', async () => {
    for (const [n, count] of Object.entries(trueFaceCount)) {
      const faces = await detect(mirror(frames.get(Number(n))!));
      expect(faces.length, `mirrored sample${n}`).toBe(count);
    }
  });

  it('handles a portrait frame by letterboxing: the left 760 px of sample1 hold one face', async () => {
    const full = frames.get(1)!;
    const part = subImage(full, 0, 0, 760, full.height);
    const faces = await detect(part);
    expect(faces).toHaveLength(1);
    const [inFull] = (await detect(full)).filter((f) => f.box.x + f.box.width < 760);
    expect(inFull).toBeDefined();
    // Same face, same place (in the crop's coordinates, which here equal the full frame's).
    expect(Math.abs(faces[0]!.box.x - inFull!.box.x)).toBeLessThan(0.15 * inFull!.box.width);
    expect(Math.abs(faces[0]!.box.y - inFull!.box.y)).toBeLessThan(0.15 * inFull!.box.height);
  });

  it('finds nothing in a blank frame', async () => {
    const grey = { data: new Uint8Array(640 * 480 * 3).fill(128), width: 640, height: 480 };
    expect(await detect(grey)).toHaveLength(0);
  });

  it('the serving path (native letterbox resize in runner.detectFaces) finds the same faces as the reference path', async () => {
    const { detectFaces } = await import('../src/models/runner.js');
    const { iou } = await import('../src/models/processing/index.js');
    const { resolveModel } = await import('../src/models/repository.js');
    const { loadModel } = await import('../src/models/runner.js');
    const detector = await loadModel(await resolveModel('blazeface'));
    for (const [n, count] of Object.entries(trueFaceCount)) {
      const frame = await decodeImage(await readFile(join(samples, `sample${n}.jpg`)));
      const served = await detectFaces(detector, frame);
      const reference = await detect(frame);
      expect(served, `sample${n}`).toHaveLength(count);
      for (const f of served) expect(Math.max(...reference.map((r) => iou(f.box, r.box))), `sample${n}`).toBeGreaterThan(0.8);
    }
    await detector.session.release();
  });
});
