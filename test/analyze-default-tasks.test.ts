// A request that names no task gets the server's configured tasks; [TASK_DETECTION] still asks for boxes only.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Task } from '../src/gen/kt/v1/common.js';
import { AnalyzeRequest, StreamRequest, type FaceAnalysisClient, type Face } from '../src/gen/kt/v1/face_analysis.js';
import { FaceAnalysisClient as SdkClient } from '../src/sdk/index.js';
import type { RunningServer } from '../src/server/server.js';
import { runKt } from './helpers/cli.js';
import {
  analyze,
  analyzeError,
  analyzeRequest,
  demoJpeg,
  encodedImage,
  faceAnalysisClient,
  runStream,
  startTestServer,
} from './helpers/server-fixture.js';

const sample1 = demoJpeg(1);
let server: RunningServer;
let client: FaceAnalysisClient;

beforeAll(async () => {
  server = await startTestServer({ tasks: ['age', 'emotion'] });
  client = faceAnalysisClient(server);
});

afterAll(async () => {
  client?.close();
  await server?.close();
});

/** Which per-face answers a face carries. */
function answered(face: Face): string[] {
  return (['age', 'gender', 'emotion', 'landmarks', 'mesh', 'embedding', 'identity'] as const).filter((k) => face[k] !== undefined);
}

describe('no tasks named', () => {
  it('Analyze with no analysis options runs the configured tasks (age, emotion)', async () => {
    const res = await analyze(client, AnalyzeRequest.fromPartial({ frame: { image: encodedImage(sample1), sequence: 1 } }));
    expect(res.result!.faces).toHaveLength(3);
    for (const face of res.result!.faces) expect(answered(face)).toEqual(['age', 'emotion']);
    expect(res.result!.timings!.tasks.map((t) => t.task)).toEqual([Task.TASK_AGE, Task.TASK_EMOTION]);
  });

  it('Analyze with an empty task list runs the configured tasks too', async () => {
    const res = await analyze(client, analyzeRequest(encodedImage(sample1), []));
    for (const face of res.result!.faces) expect(answered(face)).toEqual(['age', 'emotion']);
  });

  it('a stream whose config names no task runs the configured tasks', async () => {
    const { responses, error } = await runStream(client, [
      StreamRequest.fromPartial({ request: { $case: 'config', value: { streamId: 'defaults' } } }),
      StreamRequest.fromPartial({ request: { $case: 'frame', value: { image: encodedImage(sample1), sequence: 1 } } }),
    ]);
    expect(error).toBeUndefined();
    expect(responses).toHaveLength(1);
    for (const face of responses[0]!.result!.faces) expect(answered(face)).toEqual(['age', 'emotion']);
  });
});

describe('detection only, when asked for', () => {
  it('[TASK_DETECTION] returns boxes, scores and keypoints and no face task', async () => {
    const res = await analyze(client, analyzeRequest(encodedImage(sample1), [Task.TASK_DETECTION]));
    expect(res.result!.faces).toHaveLength(3);
    for (const face of res.result!.faces) {
      expect(face.score).toBeGreaterThan(0.5);
      expect(face.keypoints).toHaveLength(6);
      expect(answered(face)).toEqual([]);
    }
    expect(res.result!.timings!.tasks).toEqual([]);
  });

  it('TASK_DETECTION next to other tasks changes nothing', async () => {
    const res = await analyze(client, analyzeRequest(encodedImage(sample1), [Task.TASK_DETECTION, Task.TASK_GENDER]));
    for (const face of res.result!.faces) expect(answered(face)).toEqual(['gender']);
  });

  it('an unknown task says how to ask for detection only', async () => {
    const e = await analyzeError(client, analyzeRequest(encodedImage(sample1), [Task.TASK_UNSPECIFIED]));
    expect(e.details).toMatch(/TASK_DETECTION alone for detection only/);
  });

  it('the SDK keeps `tasks: []` meaning detection only, and its default list otherwise', async () => {
    const sdk = new SdkClient(server.address);
    try {
      const bare = await sdk.analyze(sample1, { tasks: [] });
      expect(bare.faces).toHaveLength(3);
      for (const face of bare.faces) expect([face.age, face.gender, face.emotion]).toEqual([undefined, undefined, undefined]);
      const full = await sdk.analyze(sample1);
      for (const face of full.faces) expect(face.gender?.label).toMatch(/male/);
    } finally {
      sdk.close();
    }
  });
});

describe('kt serve --print-config', () => {
  it('says that the configured tasks are what a request naming none gets', async () => {
    const run = await runKt(['serve', '--print-config', '--tasks', 'age,emotion']);
    expect(run.code, run.stderr).toBe(0);
    expect((JSON.parse(run.stdout) as { tasks: string[] }).tasks).toEqual(['age', 'emotion']);
    expect(run.stderr).toContain(
      'tasks [age, emotion]: warmed before SERVING and run for every request that names no task ([TASK_DETECTION]: detection only)',
    );
  });
});
