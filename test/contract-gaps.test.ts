// Contract gaps found from outside: Enrol with a client-chosen id, person names cleaned, stream ids unique and not
// reserved, repository paths kept out of error details, a deleted model version stops serving, broken versions logged.
import { cp, mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { credentials, status, type ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createLogger } from '../src/core/log.js';
import { Task } from '../src/gen/kt/v1/common.js';
import { StreamRequest, type FaceAnalysisClient } from '../src/gen/kt/v1/face_analysis.js';
import { GalleryClient, type EnrolRequest, type EnrolResponse, type ListPeopleResponse } from '../src/gen/kt/v1/gallery.js';
import { ModelsClient, type DescribeModelResponse } from '../src/gen/kt/v1/models.js';
import { defaultRepositoryPath } from '../src/models/repository.js';
import type { RunningServer } from '../src/server/server.js';
import { startServer } from '../src/server/server.js';
import { analyze, analyzeRequest, demoJpeg, encodedImage, faceAnalysisClient } from './helpers/server-fixture.js';
import type { LogLine } from './helpers/log-lines.js';

let repo: string;
let server: RunningServer;
let client: FaceAnalysisClient;
let gallery: GalleryClient;
let models: ModelsClient;
const logLines: LogLine[] = [];

function unary<Req, Res>(
  target: object,
  method: (req: Req, cb: (e: ServiceError | null, r: Res) => void) => unknown,
  req: Req,
): Promise<Res> {
  return new Promise<Res>((resolve, reject) => method.call(target, req, (e: ServiceError | null, r: Res) => (e ? reject(e) : resolve(r))));
}
const enrol = (req: Partial<EnrolRequest>): Promise<EnrolResponse> =>
  unary<EnrolRequest, EnrolResponse>(gallery, gallery.enrol, { name: '', personId: '', images: [encodedImage(demoJpeg(1))], ...req });
const enrolError = (req: Partial<EnrolRequest>): Promise<ServiceError> =>
  enrol(req).then(
    () => Promise.reject(new Error('expected Enrol to fail')),
    (e: ServiceError) => e,
  );
const describeModel = (name: string, version = 0): Promise<DescribeModelResponse> => unary(models, models.describeModel, { name, version });

/** Opens a stream with `streamId` and keeps it open; resolves with the call once the server answered its first frame. */
function openStream(streamId: string): Promise<{ end(): void; error: Promise<ServiceError | undefined> }> {
  const call = client.streamAnalyze();
  const error = new Promise<ServiceError | undefined>((resolve) => {
    call.on('error', (e: ServiceError) => resolve(e));
    call.on('status', () => setImmediate(() => resolve(undefined)));
  });
  call.write(StreamRequest.fromPartial({ request: { $case: 'config', value: { streamId, analysis: { tasks: [Task.TASK_DETECTION] } } } }));
  call.write({
    request: { $case: 'frame', value: { sequence: 1, captureTimeUnixMs: 0, image: encodedImage(demoJpeg(1)) } },
  } as StreamRequest);
  return new Promise((resolve, reject) => {
    call.once('data', () => resolve({ end: () => call.end(), error }));
    void error.then((e) => reject(e ?? new Error('stream ended before its first answer')));
  });
}

beforeAll(async () => {
  repo = await mkdtemp(join(tmpdir(), 'kt-gaps-repo-'));
  for (const name of ['blazeface', 'faceres', 'emotion'])
    await cp(join(defaultRepositoryPath(), name, '1'), join(repo, name, '1'), { recursive: true });
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n')) if (line.startsWith('{')) logLines.push(JSON.parse(line) as LogLine);
      done();
    },
  });
  const logger = createLogger('serve', { level: 'debug', pretty: false, destination });
  server = await startServer(
    {
      listenAddress: '127.0.0.1:0',
      mqttEnabled: false,
      galleryPath: ':memory:',
      modelRepository: repo,
      tasks: ['identity', 'emotion'],
      taskModels: { emotion: 'emotion', identity: 'faceres' },
      watchRepository: true,
      repositoryRescanMs: 500,
    },
    { logger },
  );
  client = faceAnalysisClient(server);
  gallery = new GalleryClient(server.address, credentials.createInsecure());
  models = new ModelsClient(server.address, credentials.createInsecure());
});

afterAll(async () => {
  for (const c of [client, gallery, models]) c?.close();
  await server?.close();
  if (repo) await rm(repo, { recursive: true, force: true });
});

describe('Gallery.Enrol with a client-chosen person_id', () => {
  it('creates the person under that id, then adds faces and renames', async () => {
    const created = await enrol({ personId: 'staff-0042', name: 'Ada' });
    expect(created.personId).toBe('staff-0042');
    expect(created.person).toMatchObject({ personId: 'staff-0042', name: 'Ada', faceCount: 1 });
    const more = await enrol({ personId: 'staff-0042', name: 'Ada Lovelace', images: [encodedImage(demoJpeg(1))] });
    expect(more.person).toMatchObject({ personId: 'staff-0042', name: 'Ada Lovelace', faceCount: 2 });
    const kept = await enrol({ personId: 'staff-0042' });
    expect(kept.person).toMatchObject({ name: 'Ada Lovelace', faceCount: 3 });
  });

  it('needs a name for a new id and rejects ids that are not safe', async () => {
    expect((await enrolError({ personId: 'new-person' })).code).toBe(status.INVALID_ARGUMENT);
    for (const personId of ['a/b', 'x'.repeat(129), 'nul\u0000', 'spa ce']) {
      const e = await enrolError({ personId, name: 'X' });
      expect(e.code, personId).toBe(status.INVALID_ARGUMENT);
      expect(e.details).toMatch(/person_id must be/);
    }
  });

  it('cleans names: control, bidi and markup characters removed, white space collapsed, length limited', async () => {
    const dirty = '\u202eAda\u0000\u200f <b>Lovelace</b>\t\n\u2066x\u2069';
    const enrolled = await enrol({ name: dirty });
    expect(enrolled.person!.name).toBe('Ada bLovelace/b x');
    const listed = await unary<object, ListPeopleResponse>(gallery, gallery.listPeople, {});
    expect(listed.people.find((p) => p.personId === enrolled.personId)!.name).toBe('Ada bLovelace/b x');
    expect((await enrolError({ name: '\u0000\u202e \u200f' })).details).toMatch(/non-empty name/);
    expect((await enrolError({ name: 'n'.repeat(129) })).details).toMatch(/limited to 128/);
  });
});

describe('stream ids', () => {
  it('rejects a second open stream with the same id (ALREADY_EXISTS); the id is free again once it ends', async () => {
    const first = await openStream('door-1');
    const second = openStream('door-1');
    await expect(second).rejects.toMatchObject({ code: status.ALREADY_EXISTS, details: expect.stringMatching(/door-1.*already used/) });
    const other = await openStream('door-2');
    first.end();
    other.end();
    expect(await first.error).toBeUndefined();
    const again = await openStream('door-1');
    again.end();
    expect(await again.error).toBeUndefined();
  });

  it('rejects reserved names such as unary', async () => {
    for (const id of ['unary', '.', '..']) {
      await expect(openStream(id)).rejects.toMatchObject({ code: status.INVALID_ARGUMENT, details: expect.stringMatching(/reserved/) });
    }
  });
});

describe('model repository in error details', () => {
  it('never echoes the absolute repository path to clients', async () => {
    const missing = await describeModel('nope').catch((e: ServiceError) => e);
    expect((missing as ServiceError).code).toBe(status.NOT_FOUND);
    expect((missing as ServiceError).details).not.toContain(repo);
    expect((missing as ServiceError).details).toMatch(/not found in the model repository/);
    const badVersion = await describeModel('emotion', 9).catch((e: ServiceError) => e);
    expect((badVersion as ServiceError).details).not.toContain(repo);
  });
});

describe('repository changes', () => {
  const emotionVersion = async (): Promise<number> =>
    (await analyze(client, analyzeRequest(encodedImage(demoJpeg(1)), [Task.TASK_EMOTION]))).result!.models.find(
      (m) => m.name === 'emotion',
    )!.version;

  it('logs a version folder without model.json, and a deleted serving version stops serving', async () => {
    expect(await emotionVersion()).toBe(1);
    // A folder that is not a servable version: reported in the log, not silently ignored.
    await mkdir(join(repo, 'emotion', '7'));
    await writeFile(join(repo, 'emotion', '7', 'model.onnx'), 'not a model');
    await vi.waitFor(() => expect(logLines.find((l) => /version folder skipped/.test(l.msg) && l['version'] === '7')).toBeDefined(), {
      timeout: 10_000,
      interval: 100,
    });
    await rm(join(repo, 'emotion', '7'), { recursive: true });
    // Version 2 appears and serves; then it is deleted and version 1 serves again.
    const staging = join(repo, 'emotion', '.staging-2');
    await cp(join(defaultRepositoryPath(), 'emotion', '1'), staging, { recursive: true });
    await rename(staging, join(repo, 'emotion', '2'));
    await vi.waitFor(async () => expect(await emotionVersion()).toBe(2), { timeout: 20_000, interval: 200 });
    await rm(join(repo, 'emotion', '2'), { recursive: true });
    await vi.waitFor(async () => expect(await emotionVersion()).toBe(1), { timeout: 20_000, interval: 200 });
    const v2 = await describeModel('emotion', 2).catch((e: ServiceError) => e);
    expect((v2 as ServiceError).code).toBe(status.NOT_FOUND);
    expect(logLines.some((l) => /deleted from the repository/.test(l.msg) && l['version'] === 2)).toBe(true);
  });

  it('a version that fails to load is reported to clients without the repository path, and logged whole', async () => {
    const staging = join(repo, 'emotion', '.staging-5');
    await cp(join(defaultRepositoryPath(), 'emotion', '1'), staging, { recursive: true });
    await writeFile(join(staging, 'model.onnx'), 'not an onnx model');
    await rename(staging, join(repo, 'emotion', '5'));
    const failed = await unary(models, models.loadModel, { name: 'emotion', version: 5 }).catch((e: ServiceError) => e);
    expect((failed as ServiceError).code).toBe(status.FAILED_PRECONDITION);
    expect((failed as ServiceError).details).not.toContain(repo);
    expect((failed as ServiceError).details).toContain('…/emotion/5/model.onnx');
    const described = await describeModel('emotion', 5);
    expect(described.model!.stateMessage).not.toContain(repo);
    const logged = logLines.find((l) => l['call'] === 'Models.LoadModel');
    expect(logged).toMatchObject({ level: 'warn', error: expect.stringContaining(join(repo, 'emotion', '5', 'model.onnx')) });
    // Version 1 still serves.
    expect(await emotionVersion()).toBe(1);
  });
});
