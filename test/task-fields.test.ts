// One decoding per task, checked end to end: every repository model that answers a task returns that task's field
// for real faces through the gRPC server with a per-request model override (gender from agegender included).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Task } from '../src/gen/kt/v1/common.js';
import type { Face, FaceAnalysisClient } from '../src/gen/kt/v1/face_analysis.js';
import { enumOfTask, type TaskName } from '../src/contract/tasks.js';
import { listRepository } from '../src/models/repository.js';
import { manifestTaskOf } from '../src/server/analysis-plan.js';
import type { RunningServer } from '../src/server/server.js';
import { analyze, analyzeRequest, demoJpeg, encodedImage, faceAnalysisClient, startTestServer } from './helpers/server-fixture.js';

/** The wire field each request task fills. */
const fieldOf: Record<TaskName, (f: Face) => unknown> = {
  age: (f) => f.age,
  gender: (f) => f.gender,
  emotion: (f) => f.emotion,
  landmarks: (f) => f.landmarks,
  embedding: (f) => f.embedding,
  identity: (f) => f.identity,
  mesh: (f) => f.mesh,
};

// The fp32 versions: an override by name serves those (int8 / fp16 versions are checked by test/models-quantize).
const entries = (await listRepository()).filter((e) => !e.manifest.precision);
/** Every (model, task) pair the repository declares: a manifest output answers the task's manifest task. */
const pairs = entries.flatMap((e) =>
  (Object.keys(fieldOf) as TaskName[])
    .filter((task) => e.manifest.kind !== 'detector' && e.manifest.outputs.some((o) => o.task === manifestTaskOf[task]))
    .map((task) => ({ model: e.manifest.name, task })),
);

let server: RunningServer;
let client: FaceAnalysisClient;

beforeAll(async () => {
  server = await startTestServer({ tasks: ['age'] });
  client = faceAnalysisClient(server);
});

afterAll(async () => {
  client?.close();
  await server?.close();
});

describe('every model answering a task returns its field for real faces', () => {
  it('covers agegender for gender and every task of the default models', () => {
    expect(pairs).toContainEqual({ model: 'agegender', task: 'gender' });
    expect(pairs).toContainEqual({ model: 'agegender', task: 'age' });
    expect(pairs).toContainEqual({ model: 'expression', task: 'emotion' });
    expect(pairs).toContainEqual({ model: 'faceres', task: 'gender' });
  });

  it.each(pairs)('$model answers $task', async ({ model, task }) => {
    const request = analyzeRequest(encodedImage(demoJpeg(1)), [enumOfTask[task]], 1, {
      modelOverrides: [{ task: enumOfTask[task], model: { name: model, version: 0 } }],
    });
    const res = await analyze(client, request);
    const faces = res.result!.faces;
    expect(faces.length).toBeGreaterThan(0);
    expect(res.result!.models.map((m) => m.name)).toContain(model);
    for (const face of faces) expect(fieldOf[task](face), `${model} ${task}: face without its ${task} field`).toBeDefined();
    if (task === 'gender') {
      for (const face of faces) {
        expect(['male', 'female']).toContain(face.gender!.label);
        expect(face.gender!.confidence).toBeGreaterThanOrEqual(0.5);
        expect(face.gender!.confidence).toBeLessThanOrEqual(1);
      }
    }
  });

  it('faceres and agegender agree on the gender of most demo faces', async () => {
    const genders = async (model: string): Promise<string[]> => {
      const res = await analyze(
        client,
        analyzeRequest(encodedImage(demoJpeg(1)), [Task.TASK_GENDER], 1, {
          modelOverrides: [{ task: Task.TASK_GENDER, model: { name: model, version: 0 } }],
        }),
      );
      return res.result!.faces.map((f) => f.gender!.label);
    };
    const [a, b] = [await genders('faceres'), await genders('agegender')];
    expect(a.length).toBe(b.length);
    const agree = a.filter((g, i) => g === b[i]).length;
    expect(agree).toBeGreaterThanOrEqual(Math.ceil(a.length / 2));
  });
});
