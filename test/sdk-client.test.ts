// The client and plugin SDK end to end against the real server on 127.0.0.1: analyze parity with a plain proto-loader
// client, ordered streams, backpressure, deadlines, reconnect across a server restart, and the built-in plugins.
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { IncomingMessage, Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { credentials, loadPackageDefinition } from '@grpc/grpc-js';
import type { GrpcObject, ServiceClientConstructor } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createLogger } from '../src/core/log.js';
import { KtError } from '../src/core/errors.js';
import {
  DeadlineExceededError,
  FaceAnalysisClient,
  InvalidInputError,
  PluginRunner,
  isDeadlineExceededError,
  mqttForwardPlugin,
  webhookPlugin,
} from '../src/sdk/index.js';
import type { AnalysisResult, StreamEvent, StreamResult } from '../src/sdk/index.js';
import { startServer } from '../src/server/server.js';
import type { RunningServer } from '../src/server/server.js';
import { startEmbeddedBroker } from '../src/server/mqtt/embedded-broker.js';
import { demoPhotoPath } from './helpers/faces.js';
import { json, recordTopic } from './helpers/mqtt.js';

const quiet = createLogger('sdk-test', 'error');
const tasks = ['age', 'gender', 'emotion', 'landmarks'] as const;
const serverConfig = (listenAddress: string) => ({
  listenAddress,
  mqttEnabled: false,
  galleryPath: ':memory:',
  watchRepository: false,
  tasks: [...tasks],
  shutdownGraceMs: 1000,
});

let server: RunningServer;
let client: FaceAnalysisClient;
const photos: Buffer[] = [];

beforeAll(async () => {
  for (let n = 1; n <= 6; n++) photos.push(await readFile(demoPhotoPath(n)));
  server = await startServer(serverConfig('127.0.0.1:0'), { logger: quiet });
  client = new FaceAnalysisClient(server.address, { reconnect: { initialBackoffMs: 100, maxBackoffMs: 1000 } });
});

afterAll(async () => {
  client?.close();
  await server?.close();
});

/** The fields both clients must agree on, rounded where float32 meets float64. */
function summary(
  faces: {
    box: { x: number; y: number; width: number; height: number };
    score: number;
    age?: number;
    gender?: string;
    emotion?: string;
    landmarks: number[];
  }[],
) {
  const r = (v: number): number => Math.round(v * 1000) / 1000;
  return faces.map((f) => ({
    box: [f.box.x, f.box.y, f.box.width, f.box.height].map(r),
    score: r(f.score),
    age: f.age === undefined ? undefined : r(f.age),
    gender: f.gender,
    emotion: f.emotion,
    landmarks: f.landmarks.map(r),
  }));
}

function sdkSummary(result: AnalysisResult) {
  return summary(
    result.faces.map((f) => ({
      box: f.box,
      score: f.score,
      ...(f.age ? { age: f.age.years } : {}),
      ...(f.gender ? { gender: f.gender.label } : {}),
      ...(f.emotion ? { emotion: f.emotion.label } : {}),
      landmarks: (f.landmarks?.points ?? []).flatMap((p) => [p.x, p.y]),
    })),
  );
}

interface LoaderFace {
  box: { xPx: number; yPx: number; widthPx: number; heightPx: number };
  score: number;
  age: { years: number } | null;
  gender: { label: string } | null;
  emotion: { label: string } | null;
  landmarks: { points: { xPx: number; yPx: number }[] } | null;
}

/** Analyze through a plain @grpc/proto-loader client (no SDK, no ts-proto). */
async function analyzeWithProtoLoader(address: string, image: Buffer): Promise<{ faces: LoaderFace[] }> {
  const definition = loadSync('kt/v1/face_analysis.proto', {
    includeDirs: ['proto'],
    longs: Number,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  const kt = (loadPackageDefinition(definition)['kt'] as GrpcObject)['v1'] as GrpcObject;
  const Ctor = kt['FaceAnalysis'] as ServiceClientConstructor;
  const plain = new Ctor(address, credentials.createInsecure(), { 'grpc.max_receive_message_length': 16 * 1024 * 1024 });
  try {
    const response = await new Promise<{ result: { faces: LoaderFace[] } }>((resolve, reject) =>
      (plain['analyze'] as (req: unknown, opts: unknown, cb: (e: Error | null, r: { result: { faces: LoaderFace[] } }) => void) => void)(
        {
          frame: { image: { encoded: { data: image } } },
          analysis: { tasks: ['TASK_AGE', 'TASK_GENDER', 'TASK_EMOTION', 'TASK_LANDMARKS'] },
        },
        { deadline: new Date(Date.now() + 30_000) },
        (e, r) => (e ? reject(e) : resolve(r)),
      ),
    );
    return response.result;
  } finally {
    plain.close();
  }
}

async function* slowFrames(
  images: Buffer[],
  count: number,
  delayMs: number,
  pulls?: number[],
  consumed?: () => number,
): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < count; i++) {
    pulls?.push(consumed?.() ?? 0);
    if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
    yield images[i % images.length]!;
  }
}

describe('FaceAnalysisClient against the real server', () => {
  it('analyze(sample1) equals a plain @grpc/proto-loader client', async () => {
    const viaSdk = await client.analyze(photos[0]!, { tasks: [...tasks] });
    const viaLoader = await analyzeWithProtoLoader(server.address, photos[0]!);
    expect(viaSdk.faces.length).toBeGreaterThanOrEqual(2);
    expect(viaSdk.frameWidthPx).toBeGreaterThan(0);
    expect(viaSdk.faces[0]!.landmarks?.points).toHaveLength(68);
    expect(viaSdk.timings.totalMs).toBeGreaterThan(0);
    const loaderSummary = summary(
      viaLoader.faces.map((f) => ({
        box: { x: f.box.xPx, y: f.box.yPx, width: f.box.widthPx, height: f.box.heightPx },
        score: f.score,
        ...(f.age ? { age: f.age.years } : {}),
        ...(f.gender ? { gender: f.gender.label } : {}),
        ...(f.emotion ? { emotion: f.emotion.label } : {}),
        landmarks: (f.landmarks?.points ?? []).flatMap((p) => [p.xPx, p.yPx]),
      })),
    );
    expect(sdkSummary(viaSdk)).toEqual(loaderSummary);
  });

  it('streams the six demo photos and yields six results in order', async () => {
    const results: StreamResult[] = [];
    for await (const r of client.stream(photos, { streamId: 'sdk-order', tasks: [...tasks], dropPolicy: 'BLOCK', maxInFlight: 3 }))
      results.push(r);
    expect(results.map((r) => r.sequence)).toEqual([1, 2, 3, 4, 5, 6]);
    for (const r of results) {
      expect(r.streamId).toBe('sdk-order');
      expect(r.error).toBeUndefined();
      expect(r.faces.length).toBeGreaterThan(0);
    }
    expect(results.at(-1)!.counters).toMatchObject({ framesSent: 6, framesAnswered: 6, framesDropped: 0, framesLost: 0, reconnects: 0 });
  });

  it('with maxInFlight 1 never has more than one frame outstanding', async () => {
    const events: StreamEvent[] = [];
    const pulls: number[] = [];
    let consumed = 0;
    const results: StreamResult[] = [];
    const stream = client.stream(
      slowFrames(photos, 6, 0, pulls, () => consumed),
      { streamId: 'sdk-bp', tasks: ['age'], dropPolicy: 'QUEUE', queueDepth: 4, maxInFlight: 1, onEvent: (e) => events.push(e) },
    );
    for await (const r of stream) {
      results.push(r);
      consumed += 1;
    }
    expect(results.map((r) => r.sequence)).toEqual([1, 2, 3, 4, 5, 6]);
    // Client side: every write happened with nothing else outstanding, and frame k+1 was pulled only after result k was taken.
    const writes = events.filter((e): e is Extract<StreamEvent, { type: 'write' }> => e.type === 'write');
    expect(writes).toHaveLength(6);
    expect(Math.max(...writes.map((w) => w.inFlight))).toBe(1);
    expect(pulls).toEqual([0, 1, 2, 3, 4, 5]);
    // Server side: when it answered frame k it had received exactly k frames.
    expect(results.map((r) => r.serverCounters.framesReceived)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('maps an exceeded deadline to DeadlineExceededError (unary and stream)', async () => {
    const err = await client.analyze(photos[0]!, { deadlineMs: 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DeadlineExceededError);
    expect(isDeadlineExceededError(err)).toBe(true);
    expect(err).toBeInstanceOf(KtError);
    expect((err as DeadlineExceededError).deadlineMs).toBe(1);

    const stream = client.stream(photos, { streamId: 'sdk-deadline', tasks: [...tasks], maxInFlight: 1, frameTimeoutMs: 5 });
    const streamErr = await (async () => {
      for await (const _ of stream) {
        // no frame is answered within 5 ms
      }
    })().catch((e: unknown) => e);
    expect(streamErr).toBeInstanceOf(DeadlineExceededError);
  });

  it('maps a bad frame to InvalidInputError, and on a stream reports it in the result', async () => {
    const bad = new Uint8Array([0xff, 0xd8, 0xff, 0x00, 0x01]);
    await expect(client.analyze(bad)).rejects.toBeInstanceOf(InvalidInputError);
    const results: StreamResult[] = [];
    for await (const r of client.stream([bad, photos[1]!], { streamId: 'sdk-bad', tasks: ['age'], dropPolicy: 'BLOCK' })) results.push(r);
    expect(results).toHaveLength(2);
    expect(results[0]!.error?.code).toBe('INVALID_ARGUMENT');
    expect(results[1]!.error).toBeUndefined();
    expect(results[1]!.counters.framesFailed).toBe(1);
  });

  it('models, gallery and health helpers', async () => {
    expect(await client.health()).toBe('SERVING');
    const models = await client.models.list();
    expect(models.find((m) => m.name === 'blazeface')).toMatchObject({ kind: 'detector', state: 'loaded' });
    expect((await client.models.describe('landmarks68')).tasks).toContain('landmarks');
    await expect(client.models.describe('no-such-model')).rejects.toMatchObject({ code: 'NOT_FOUND' });

    const enrolled = await client.gallery.enrol({ name: 'Sample One', images: [photos[0]!] });
    expect(enrolled.facesUsed).toBe(1);
    expect((await client.gallery.list()).map((p) => p.name)).toEqual(['Sample One']);
    const identified = await client.gallery.identify(photos[0]!);
    expect(identified.faces.some((f) => f.matches[0]?.known && f.matches[0].personId === enrolled.personId)).toBe(true);
    const withIdentity = await client.analyze(photos[0]!, { tasks: ['identity'] });
    expect(withIdentity.faces.some((f) => f.identity?.known && f.identity.name === 'Sample One')).toBe(true);
    expect((await client.gallery.delete(enrolled.personId))?.name).toBe('Sample One');
    expect(await client.gallery.list()).toEqual([]);
  });

  it('re-opens the stream when the server restarts on the same port and continues with the next frames', async () => {
    let first = await startServer(serverConfig('127.0.0.1:0'), { logger: quiet });
    const port = first.port;
    let second: RunningServer | undefined;
    const local = new FaceAnalysisClient(`127.0.0.1:${port}`, {
      reconnect: { initialBackoffMs: 100, maxBackoffMs: 500, maxReconnectMs: 60_000 },
    });
    const events: StreamEvent[] = [];
    try {
      const results: StreamResult[] = [];
      const stream = local.stream(slowFrames(photos, 14, 50), {
        streamId: 'sdk-reconnect',
        tasks: ['age'],
        dropPolicy: 'BLOCK',
        maxInFlight: 2,
        onEvent: (e) => events.push(e),
      });
      let restarted = false;
      for await (const r of stream) {
        results.push(r);
        if (results.length === 3 && !restarted) {
          restarted = true;
          await first.close();
          second = await startServer(serverConfig(`127.0.0.1:${port}`), { logger: quiet });
          first = second;
        }
      }
      const c = stream.counters;
      expect(c.reconnects).toBeGreaterThanOrEqual(1);
      expect(events.some((e) => e.type === 'reconnected')).toBe(true);
      // Every frame is accounted for: answered, dropped by the server or lost with the broken call.
      expect(c.framesSent).toBe(14);
      expect(c.framesAnswered + c.framesDropped + c.framesLost).toBe(c.framesSent);
      // Results after the restart came from the new server and kept increasing sequence numbers.
      const seqs = results.map((r) => r.sequence);
      expect([...seqs].sort((a, b) => a - b)).toEqual(seqs);
      expect(seqs.at(-1)).toBe(14);
      expect(results.length).toBeGreaterThan(3);
    } finally {
      local.close();
      await first.close();
    }
  });
});

describe('plugin SDK', () => {
  it('webhook delivers to a local HTTP server and retries after a 500', async () => {
    const bodies: { status: number; body: unknown }[] = [];
    const http: HttpServer = createServer((req: IncomingMessage, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const status = bodies.length === 0 ? 500 : 200;
        bodies.push({ status, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown });
        res.writeHead(status, { 'content-type': 'text/plain' }).end(status === 200 ? 'ok' : 'try again');
      });
    });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    const { port } = http.address() as AddressInfo;
    try {
      const plugin = await webhookPlugin({ url: `http://127.0.0.1:${port}/faces`, retryBackoffMs: 50, timeoutMs: 2000 }, { log: quiet });
      const runner = new PluginRunner([plugin], quiet);
      await runner.start();
      const result = await client.analyze(photos[0]!, { tasks: ['age', 'emotion'] });
      await runner.dispatch(result, { streamId: 'door' });
      await vi.waitFor(() => expect(bodies).toHaveLength(2), { timeout: 10_000, interval: 20 });
      await runner.stop();
      expect(bodies.map((b) => b.status)).toEqual([500, 200]);
      expect(bodies[1]!.body).toMatchObject({ stream: 'door', faces: expect.any(Array) });
      expect((bodies[1]!.body as { faces: unknown[] }).faces).toHaveLength(result.faces.length);
      expect(runner.snapshot()[0]).toMatchObject({ name: 'webhook', results: 1, errors: 0, delivered: 1, retries: 1, failed: 0 });
    } finally {
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    }
  });

  it('mqtt-forward republishes results through the MQTT publisher', async () => {
    const broker = await startEmbeddedBroker({ port: 0, logger: quiet });
    const sub = await recordTopic(broker.url, 'gw/+/+/faces');
    try {
      const plugin = await mqttForwardPlugin(
        { url: broker.url, topicPrefix: 'gw', nodeId: 'edge1', connectTimeoutMs: 5000 },
        { log: quiet },
      );
      const runner = new PluginRunner([plugin], quiet);
      await runner.start();
      const n = await runner.run(client.stream(photos.slice(0, 2), { streamId: 'lobby', tasks: ['age'], dropPolicy: 'BLOCK' }));
      await runner.stop();
      const received = await sub.waitFor((ms) => ms.length >= 2, 'two forwarded faces events');
      expect(n).toBe(2);
      expect(received.map((m) => m.topic)).toEqual(['gw/edge1/lobby/faces', 'gw/edge1/lobby/faces']);
      expect(received.map((m) => json(m)['sequence'])).toEqual([1, 2]);
      expect(json(received[0]!)).toMatchObject({ node: 'edge1', stream: 'lobby' });
    } finally {
      await sub.end();
      await broker.close();
    }
  });
});
