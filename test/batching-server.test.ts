// Dynamic batching in the server (batchMaxFaces): concurrent frames over real gRPC get the same answers as without
// batching, and the metrics show that task-model runs really served several frames at once.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AnalyzeResponse, FaceAnalysisClient } from '../src/gen/kt/v1/face_analysis.js';
import type { RunningServer } from '../src/server/server.js';
import { sampleValue, scrape } from './helpers/prometheus.js';
import { analyze, analyzeRequest, demoJpeg, encodedImage, faceAnalysisClient, startTestServer } from './helpers/server-fixture.js';

const tasks = ['age', 'gender', 'emotion', 'landmarks'] as const;
let plain: RunningServer;
let batched: RunningServer;
let plainClient: FaceAnalysisClient;
let batchedClient: FaceAnalysisClient;

beforeAll(async () => {
  plain = await startTestServer({ tasks: [...tasks] });
  // A long queue delay makes the merge certain on a loaded machine; maxConcurrentInferences lets frames overlap.
  batched = await startTestServer({
    tasks: [...tasks],
    batchMaxFaces: 16,
    batchMaxQueueDelayMs: 50,
    maxConcurrentInferences: 4,
    metricsAddress: '127.0.0.1:0',
  });
  plainClient = faceAnalysisClient(plain);
  batchedClient = faceAnalysisClient(batched);
});

afterAll(async () => {
  plainClient?.close();
  batchedClient?.close();
  await plain?.close();
  await batched?.close();
});

const photos = [1, 2, 3, 4].map((n) => encodedImage(demoJpeg(n)));

describe('dynamic batching of task models', () => {
  it('answers concurrent frames as without batching, with runs that served several frames', async () => {
    const expected: AnalyzeResponse[] = [];
    for (const [i, image] of photos.entries()) expected.push(await analyze(plainClient, analyzeRequest(image, undefined, i + 1)));
    const got = await Promise.all(photos.map((image, i) => analyze(batchedClient, analyzeRequest(image, undefined, i + 1))));
    got.forEach((response, i) => {
      const a = response.result!.faces;
      const b = expected[i]!.result!.faces;
      expect(a.length).toBe(b.length);
      a.forEach((face, k) => {
        const ref = b[k]!;
        expect(face.box).toEqual(ref.box);
        expect(face.age!.years).toBeCloseTo(ref.age!.years, 3);
        expect(face.gender!.label).toBe(ref.gender!.label);
        expect(face.emotion!.label).toBe(ref.emotion!.label);
        face.landmarks!.points.forEach((p, j) => {
          expect(p.xPx).toBeCloseTo(ref.landmarks!.points[j]!.xPx, 2);
          expect(p.yPx).toBeCloseTo(ref.landmarks!.points[j]!.yPx, 2);
        });
      });
    });
    const metrics = await scrape(batched.metricsAddress);
    const model = batched.config.taskModels.age;
    const runs = sampleValue(metrics, `kt_inference_batch_requests_count{model="${model}"}`);
    const alone = sampleValue(metrics, `kt_inference_batch_requests_bucket{le="1",model="${model}"}`);
    console.log(`batching: ${model} ${runs} runs for ${photos.length} frames, ${alone} of them with one frame`);
    expect(runs).toBeGreaterThan(0);
    expect(runs - alone).toBeGreaterThan(0); // at least one run merged two or more frames
    expect(sampleValue(metrics, `kt_inference_batch_faces_sum{model="${model}"}`)).toBe(
      expected.reduce((n, r) => n + r.result!.faces.length, 0),
    );
  });
});
