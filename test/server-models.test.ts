// Models service over a temp repository: list/describe, unload/load, and hot swap of a new version under load without a failed request.
import { cp, mkdtemp, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { credentials, status, type ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Task } from '../src/gen/kt/v1/common.js';
import type { FaceAnalysisClient } from '../src/gen/kt/v1/face_analysis.js';
import { ModelKind, ModelState, ModelsClient } from '../src/gen/kt/v1/models.js';
import type {
  DescribeModelRequest,
  DescribeModelResponse,
  ListModelsRequest,
  ListModelsResponse,
  LoadModelRequest,
  LoadModelResponse,
  ModelInfo,
  ReloadModelRequest,
  ReloadModelResponse,
  UnloadModelRequest,
  UnloadModelResponse,
} from '../src/gen/kt/v1/models.js';
import { defaultRepositoryPath } from '../src/models/repository.js';
import type { RunningServer } from '../src/server/server.js';
import {
  analyze,
  analyzeError,
  analyzeRequest,
  demoJpeg,
  encodedImage,
  faceAnalysisClient,
  startTestServer,
} from './helpers/server-fixture.js';

let repo: string;
let server: RunningServer;
let client: FaceAnalysisClient;
let models: ModelsClient;
const emotionRequest = analyzeRequest(encodedImage(demoJpeg(1)), [Task.TASK_EMOTION]);

/** Promise twin of a unary Models method. */
function call<Req, Res>(method: (req: Req, cb: (e: ServiceError | null, r: Res) => void) => unknown, req: Req): Promise<Res> {
  return new Promise<Res>((resolve, reject) => method.call(models, req, (e: ServiceError | null, r: Res) => (e ? reject(e) : resolve(r))));
}
const listModels = (task = ''): Promise<ModelInfo[]> =>
  call<ListModelsRequest, ListModelsResponse>(models.listModels, { task }).then((r) => r.models);
const describeModel = (name: string, version = 0): Promise<ModelInfo> =>
  call<DescribeModelRequest, DescribeModelResponse>(models.describeModel, { name, version }).then((r) => r.model!);

/** Copies a repository version under a hidden name, then renames it into place: the server never sees a half-written model. */
async function publishVersion(name: string, from: number, to: number): Promise<void> {
  const staging = join(repo, name, `.staging-${to}`);
  await cp(join(defaultRepositoryPath(), name, String(from)), staging, { recursive: true });
  await rename(staging, join(repo, name, String(to)));
}

beforeAll(async () => {
  repo = await mkdtemp(join(tmpdir(), 'kt-repo-'));
  for (const name of ['blazeface', 'emotion'])
    await cp(join(defaultRepositoryPath(), name, '1'), join(repo, name, '1'), { recursive: true });
  server = await startTestServer({
    modelRepository: repo,
    tasks: ['emotion'],
    taskModels: { emotion: 'emotion' },
    watchRepository: true,
    repositoryRescanMs: 1000,
  });
  client = faceAnalysisClient(server);
  models = new ModelsClient(server.address, credentials.createInsecure());
});

afterAll(async () => {
  client?.close();
  models?.close();
  await server?.close();
  if (repo) await rm(repo, { recursive: true, force: true });
});

describe('Models service', () => {
  it('lists every version with its manifest and state', async () => {
    const list = await listModels();
    expect(list.map((m) => `${m.name}@${m.version}`)).toEqual(['blazeface@1', 'emotion@1']);
    const blazeface = list[0]!;
    expect(blazeface.kind).toBe(ModelKind.MODEL_KIND_DETECTOR);
    expect(blazeface.state).toBe(ModelState.MODEL_STATE_LOADED);
    expect(blazeface.serving).toBe(true);
    expect(blazeface.provider).toBe('cpu');
    expect((await listModels('emotion')).map((m) => m.name)).toEqual(['emotion']);
  });

  it('describes a model: input, outputs with labels, sha256', async () => {
    const emotion = await describeModel('emotion');
    expect(emotion.input).toMatchObject({ sizePx: 64, colorOrder: 'GRAY', layout: 'NHWC' });
    expect(emotion.outputs[0]!.labels).toEqual(['angry', 'disgust', 'fear', 'happy', 'sad', 'surprise', 'neutral']);
    expect(emotion.sha256).toMatch(/^[0-9a-f]{64}$/);
    const missing = await describeModel('nope').catch((e: ServiceError) => e);
    expect((missing as ServiceError).code).toBe(status.NOT_FOUND);
    const badVersion = await describeModel('emotion', 7).catch((e: ServiceError) => e);
    expect((badVersion as ServiceError).code).toBe(status.NOT_FOUND);
    expect((badVersion as ServiceError).details).toMatch(/no version 7/);
  });

  it('unload makes requests fail with FAILED_PRECONDITION until the model is loaded again', async () => {
    const unloaded = await call<UnloadModelRequest, UnloadModelResponse>(models.unloadModel, { name: 'emotion', version: 0 });
    expect(unloaded.models.map((m) => m.state)).toEqual([ModelState.MODEL_STATE_UNLOADED]);
    const e = await analyzeError(client, emotionRequest);
    expect(e.code).toBe(status.FAILED_PRECONDITION);
    expect(e.details).toMatch(/emotion.*unloaded/);
    const loaded = await call<LoadModelRequest, LoadModelResponse>(models.loadModel, { name: 'emotion', version: 0 });
    expect(loaded.model!.state).toBe(ModelState.MODEL_STATE_LOADED);
    expect((await analyze(client, emotionRequest)).result!.faces).toHaveLength(3);
  });

  it('hot-swaps a new version dropped into the repository while requests run; none fails', async () => {
    const answered = new Map<number, number>();
    const answeredBy = (version: number): number => answered.get(version) ?? 0;
    const failures: unknown[] = [];
    let stop = false;
    // Two request loops keep the old session busy across the swap.
    const loop = async (): Promise<void> => {
      while (!stop) {
        try {
          const res = await analyze(client, emotionRequest);
          const emotion = res.result!.models.find((m) => m.name === 'emotion')!;
          expect(res.result!.faces[0]!.emotion).toBeDefined();
          answered.set(emotion.version, answeredBy(emotion.version) + 1);
        } catch (e) {
          failures.push(e);
        }
      }
    };
    const loops = [loop(), loop()];
    try {
      // Requests are running on version 1 before version 2 appears (a failing request is reported as such, not as a timeout).
      const answeredAtLeast = (version: number, count: number) => (): void => {
        expect(failures).toEqual([]);
        expect(answeredBy(version)).toBeGreaterThanOrEqual(count);
      };
      await vi.waitFor(answeredAtLeast(1, 2), { timeout: 20_000, interval: 20 });
      await publishVersion('emotion', 1, 2);
      // The swap happens under load, and a few more requests are answered by the new version.
      await vi.waitFor(answeredAtLeast(2, 3), { timeout: 20_000, interval: 50 });
    } finally {
      stop = true;
      await Promise.all(loops);
    }
    expect(failures).toEqual([]);
    expect(answeredBy(1)).toBeGreaterThan(0);
    expect(answeredBy(2)).toBeGreaterThan(0);
    const list = await listModels('emotion');
    expect(list.map((m) => [m.version, m.state, m.serving])).toEqual([
      [1, ModelState.MODEL_STATE_UNLOADED, false],
      [2, ModelState.MODEL_STATE_LOADED, true],
    ]);
    const after = await analyze(client, emotionRequest);
    expect(after.result!.models.find((m) => m.name === 'emotion')!.version).toBe(2);
  });

  it('ReloadModel swaps in the newest version on demand', async () => {
    await publishVersion('emotion', 1, 3);
    const reloaded = await call<ReloadModelRequest, ReloadModelResponse>(models.reloadModel, { name: 'emotion' });
    expect(reloaded.failed).toEqual([]);
    expect(reloaded.models.map((m) => [m.name, m.version, m.serving])).toEqual([['emotion', 3, true]]);
    const res = await analyze(client, emotionRequest);
    expect(res.result!.models.find((m) => m.name === 'emotion')!.version).toBe(3);
    const unknown = await call<ReloadModelRequest, ReloadModelResponse>(models.reloadModel, { name: 'nope' }).catch((e: ServiceError) => e);
    expect((unknown as ServiceError).code).toBe(status.NOT_FOUND);
  });
});
