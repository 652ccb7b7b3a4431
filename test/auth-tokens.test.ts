// Bearer tokens with roles against the real server on 127.0.0.1: every service (streams included) refuses a missing or
// wrong token with UNAUTHENTICATED, an analyze token gets PERMISSION_DENIED on model and gallery writes, admin does all.
import { readFile } from 'node:fs/promises';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../src/core/log.js';
import { FaceAnalysisClient, PermissionDeniedError, UnauthenticatedError, grpcCodeOf } from '../src/sdk/index.js';
import type { RunningServer } from '../src/server/server.js';
import { startTestServer } from './helpers/server-fixture.js';
import { demoPhotoPath } from './helpers/faces.js';
import { failure } from './helpers/failure.js';

const quiet = createLogger('auth-test', 'error');
const adminToken = 'kt-admin-5f1c0d7e9a2b4c6d8e0f';
const analyzeToken = 'kt-analyze-3a5c7e9b1d2f4a6c8e0b';
/** Over the test fixture's loopback defaults. */
const config = { tasks: ['age' as const], shutdownGraceMs: 1000 };

let server: RunningServer;
let photo: Buffer;
const clients: FaceAnalysisClient[] = [];

function clientWith(token?: string): FaceAnalysisClient {
  const client = new FaceAnalysisClient(server.address, { deadlineMs: 20_000, ...(token !== undefined ? { token } : {}) });
  clients.push(client);
  return client;
}

/** Every call of every service, as a token holder would make it. */
function calls(client: FaceAnalysisClient): Record<string, () => Promise<unknown>> {
  return {
    'FaceAnalysis.Analyze': () => client.analyze(photo, { tasks: ['age'] }),
    'FaceAnalysis.StreamAnalyze': async () => {
      const results = [];
      for await (const r of client.stream([photo], { streamId: 'auth-test', tasks: ['age'], dropPolicy: 'BLOCK' })) results.push(r);
      return results;
    },
    'Models.ListModels': () => client.models.list(),
    'Models.UnloadModel': () => client.models.unload('emotion'),
    'Gallery.Enrol': () => client.gallery.enrol({ name: 'Someone', images: [photo] }),
    'Gallery.DeletePerson': () => client.gallery.delete('no-such-person'),
    'Gallery.ListPeople': () => client.gallery.list(),
    'Gallery.Identify': () => client.gallery.identify(photo),
  };
}

const callNames = [
  'FaceAnalysis.Analyze',
  'FaceAnalysis.StreamAnalyze',
  'Models.ListModels',
  'Models.UnloadModel',
  'Gallery.Enrol',
  'Gallery.DeletePerson',
  'Gallery.ListPeople',
  'Gallery.Identify',
];

beforeAll(async () => {
  photo = await readFile(demoPhotoPath(1));
  server = await startTestServer(config, { logger: quiet, env: { KT_TOKENS: `admin:${adminToken},analyze:${analyzeToken}` } });
});

afterAll(async () => {
  for (const c of clients) c.close();
  await server?.close();
});

describe.each([
  ['missing', undefined],
  ['wrong', 'kt-wrong-00000000000000000000'],
])('a %s token', (_what, token) => {
  it.each(callNames)('%s: UNAUTHENTICATED', async (name) => {
    const e = await failure(calls(clientWith(token))[name]!);
    expect(e).toBeInstanceOf(UnauthenticatedError);
    expect(grpcCodeOf(e)).toBe(status.UNAUTHENTICATED);
  });

  it('health stays open', async () => {
    expect(await clientWith(token).health()).toBe('SERVING');
  });
});

describe('an analyze token', () => {
  it('analyses frames (unary and stream), lists models and identifies', async () => {
    const c = calls(clientWith(analyzeToken));
    expect(((await c['FaceAnalysis.Analyze']!()) as { faces: unknown[] }).faces.length).toBeGreaterThan(0);
    expect(await c['FaceAnalysis.StreamAnalyze']!()).toHaveLength(1);
    expect(await c['Models.ListModels']!()).not.toHaveLength(0);
    await expect(c['Gallery.Identify']!()).resolves.toBeDefined();
  });

  it.each(['Models.UnloadModel', 'Gallery.Enrol', 'Gallery.DeletePerson', 'Gallery.ListPeople'])('%s: PERMISSION_DENIED', async (name) => {
    const e = await failure(calls(clientWith(analyzeToken))[name]!);
    expect(e).toBeInstanceOf(PermissionDeniedError);
    expect(grpcCodeOf(e)).toBe(status.PERMISSION_DENIED);
    expect((e as Error).message).toMatch(/needs the admin role/);
  });
});

describe('an admin token', () => {
  it('does everything: analyse, enrol, list, delete, load and unload models', async () => {
    const client = clientWith(adminToken);
    const c = calls(client);
    expect(await c['FaceAnalysis.StreamAnalyze']!()).toHaveLength(1);
    const person = await client.gallery.enrol({ name: 'Admin Made', images: [photo] });
    expect((await client.gallery.list()).map((p) => p.name)).toEqual(['Admin Made']);
    expect((await client.gallery.delete(person.personId))?.name).toBe('Admin Made');
    await client.models.load('emotion');
    const unloaded = await client.models.unload('emotion');
    expect(unloaded.map((m) => m.name)).toContain('emotion');
  });
});

describe('start-up', () => {
  it('refuses to listen beyond loopback without tokens or mutual TLS, before loading any model', async () => {
    await expect(startTestServer({ ...config, listenAddress: '0.0.0.0:0' }, { logger: quiet, env: {} })).rejects.toThrow(
      /refusing to listen on 0\.0\.0\.0:0 without authentication/,
    );
  });
});
