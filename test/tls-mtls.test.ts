// TLS and mutual TLS with certificates made by `kt certs` (makeCerts): trusted clients are served, others refused,
// and a replaced certificate is picked up for new connections without a restart.
import { copyFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { makeCerts, type MadeCerts } from '../src/cli-certs.js';
import { createLogger } from '../src/core/log.js';
import { FaceAnalysisClient, grpcCodeOf, type FaceAnalysisClientInit } from '../src/sdk/index.js';
import type { RunningServer } from '../src/server/server.js';
import { startTestServer } from './helpers/server-fixture.js';
import { demoPhotoPath } from './helpers/faces.js';
import { failure } from './helpers/failure.js';

const quiet = createLogger('tls-test', 'error');
/** Over the test fixture's loopback defaults. */
const config = { tasks: ['age' as const], shutdownGraceMs: 1000 };

let dir: string;
let certs: MadeCerts;
let photo: Buffer;
const clients: FaceAnalysisClient[] = [];

function client(server: RunningServer, init: FaceAnalysisClientInit): FaceAnalysisClient {
  const c = new FaceAnalysisClient(server.address, { deadlineMs: 5000, ...init });
  clients.push(c);
  return c;
}

async function pem(path: string): Promise<Buffer> {
  return readFile(path);
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kt-tls-test-'));
  certs = await makeCerts({ outDir: join(dir, 'a') });
  photo = await readFile(demoPhotoPath(1));
});

afterAll(async () => {
  for (const c of clients) c.close();
  await rm(dir, { recursive: true, force: true });
});

describe('kt certs', () => {
  it('makes a CA, a server and a client certificate, and keeps them on a second run', async () => {
    expect(certs.written).toHaveLength(6);
    expect(certs.serverNames).toEqual(expect.arrayContaining(['localhost', '127.0.0.1']));
    expect((await makeCerts({ outDir: join(dir, 'a') })).written).toEqual([]);
  });
});

describe('TLS', () => {
  let server: RunningServer;
  const served = { cert: '', key: '' };
  beforeAll(async () => {
    // Copies, so that the reload test can replace them.
    served.cert = join(dir, 'served.pem');
    served.key = join(dir, 'served.key');
    await copyFile(certs.serverCert, served.cert);
    await copyFile(certs.serverKey, served.key);
    server = await startTestServer(
      { ...config, tlsCertFile: served.cert, tlsKeyFile: served.key, tlsReloadIntervalMs: 100 },
      { logger: quiet },
    );
  });
  afterAll(() => server?.close());

  it('a client that trusts the CA analyses a frame and streams', async () => {
    const c = client(server, { tls: { rootCerts: await pem(certs.caCert) } });
    expect((await c.analyze(photo, { tasks: ['age'] })).faces.length).toBeGreaterThan(0);
    const results = [];
    for await (const r of c.stream([photo], { streamId: 'tls', tasks: ['age'], dropPolicy: 'BLOCK' })) results.push(r);
    expect(results).toHaveLength(1);
  });

  it('a plain-text client and a client that does not trust the CA are refused (UNAVAILABLE)', async () => {
    for (const init of [{ tls: false as const }, { tls: {} }]) {
      const e = await failure(() => client(server, init).health());
      expect(grpcCodeOf(e), String(e)).toBe(status.UNAVAILABLE);
    }
  });

  it('a replaced certificate (another CA) serves new connections without a restart', async () => {
    const next = await makeCerts({ outDir: join(dir, 'b') });
    await copyFile(next.serverKey, served.key);
    await copyFile(next.serverCert, served.cert);
    const nextCa = await pem(next.caCert);
    await vi.waitFor(async () => expect(await client(server, { tls: { rootCerts: nextCa }, deadlineMs: 1000 }).health()).toBe('SERVING'), {
      timeout: 15_000,
      interval: 200,
    });
    const e = await failure(async () => client(server, { tls: { rootCerts: await pem(certs.caCert) } }).health());
    expect(grpcCodeOf(e)).toBe(status.UNAVAILABLE);
  });
});

describe('mutual TLS', () => {
  let server: RunningServer;
  beforeAll(async () => {
    server = await startTestServer(
      { ...config, tlsCertFile: certs.serverCert, tlsKeyFile: certs.serverKey, tlsClientCaFile: certs.caCert },
      { logger: quiet },
    );
  });
  afterAll(() => server?.close());

  it('a client with a certificate of the CA is served', async () => {
    const tls = { rootCerts: await pem(certs.caCert), certChain: await pem(certs.clientCert), privateKey: await pem(certs.clientKey) };
    const c = client(server, { tls });
    expect((await c.analyze(photo, { tasks: ['age'] })).faces.length).toBeGreaterThan(0);
    expect((await c.models.list()).length).toBeGreaterThan(0);
  });

  it('a client without a client certificate is refused, even for health', async () => {
    const e = await failure(async () => client(server, { tls: { rootCerts: await pem(certs.caCert) } }).health());
    expect(grpcCodeOf(e), String(e)).toBe(status.UNAVAILABLE);
  });

  it('a client certificate of another CA is refused', async () => {
    const other = await makeCerts({ outDir: join(dir, 'c') });
    const tls = { rootCerts: await pem(certs.caCert), certChain: await pem(other.clientCert), privateKey: await pem(other.clientKey) };
    const e = await failure(() => client(server, { tls }).health());
    expect(grpcCodeOf(e), String(e)).toBe(status.UNAVAILABLE);
  });
});

describe('start-up', () => {
  it('a key that does not match the certificate fails the start, naming the files', async () => {
    const bad = { ...config, tlsCertFile: certs.serverCert, tlsKeyFile: certs.clientKey };
    await expect(startTestServer(bad, { logger: quiet })).rejects.toThrow(/TLS files .*server\.pem .*client\.key/);
  });
});
