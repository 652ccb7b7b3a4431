// End to end over real sockets: Analyze and StreamAnalyze on a demo photo, a plain proto-loader client, health, MQTT events, drops.
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Task } from '../src/gen/kt/v1/common.js';
import { DropPolicy, StreamRequest, type FaceAnalysisClient, type FrameResult } from '../src/gen/kt/v1/face_analysis.js';
import { HealthCheckResponse_ServingStatus, HealthClient } from '../src/gen/grpc/health/v1/health.js';
import { GalleryClient } from '../src/gen/kt/v1/gallery.js';
import type { EnrolResponse, IdentifyResponse, ListPeopleResponse } from '../src/gen/kt/v1/gallery.js';
import { startEmbeddedBroker, type EmbeddedBroker } from '../src/server/mqtt/embedded-broker.js';
import { protoFiles, protoRoot } from '../src/server/reflection.js';
import type { RunningServer } from '../src/server/server.js';
import { json, recordTopic, type TopicRecorder } from './helpers/mqtt.js';
import {
  analyze,
  analyzeRequest,
  demoJpeg,
  encodedImage,
  faceAnalysisClient,
  faceTasks,
  runStream,
  startTestServer,
} from './helpers/server-fixture.js';

let broker: EmbeddedBroker;
let server: RunningServer;
let client: FaceAnalysisClient;
let subscriber: TopicRecorder;
const sample1 = demoJpeg(1);

beforeAll(async () => {
  broker = await startEmbeddedBroker({ port: 0 });
  server = await startTestServer({
    tasks: ['age', 'gender', 'emotion', 'landmarks', 'identity'],
    mqttEnabled: true,
    mqttUrl: broker.url,
    mqttNodeId: 'test-node',
    statsIntervalMs: 0,
    reflection: true,
  });
  client = faceAnalysisClient(server);
  subscriber = await recordTopic(broker.url, 'kt/test-node/#');
});

afterAll(async () => {
  client?.close();
  await subscriber?.end();
  await server?.close();
  await broker?.close();
});

function expectFullFaces(result: FrameResult): void {
  // sample1: three faces, all visible and frontal (see detector.test.ts).
  expect(result.faces).toHaveLength(3);
  expect(result.frameWidthPx).toBeGreaterThan(0);
  for (const face of result.faces) {
    expect(face.box!.widthPx).toBeGreaterThan(50);
    expect(face.score).toBeGreaterThan(0.5);
    expect(face.keypoints).toHaveLength(6);
    expect(face.age!.years).toBeGreaterThan(5);
    expect(face.age!.years).toBeLessThan(80);
    expect(['male', 'female']).toContain(face.gender!.label);
    expect(face.gender!.confidence).toBeGreaterThanOrEqual(0.5);
    // expression (the default emotion model) serves FER2013's label names in its own output order.
    expect(face.emotion!.scores.map((s) => s.label)).toEqual(['neutral', 'happy', 'sad', 'angry', 'fear', 'disgust', 'surprise']);
    expect(face.emotion!.confidence).toBeGreaterThan(0);
    expect(face.landmarks!.scheme).toBe('ibug68');
    expect(face.landmarks!.points).toHaveLength(68);
    // Landmarks lie around the face box (in frame pixels, not crop pixels).
    const nose = face.landmarks!.points[30]!;
    const box = face.box!;
    expect(nose.xPx).toBeGreaterThan(box.xPx - box.widthPx * 0.25);
    expect(nose.xPx).toBeLessThan(box.xPx + box.widthPx * 1.25);
    expect(face.mesh).toBeUndefined();
    expect(face.embedding).toBeUndefined();
  }
  expect(result.models.map((m) => m.name).sort()).toEqual(['agegender', 'blazeface', 'expression', 'faceres', 'landmarks68']);
  const t = result.timings!;
  expect(t.decodeMs).toBeGreaterThan(0);
  expect(t.detectMs).toBeGreaterThan(0);
  expect(t.tasks.map((x) => x.task)).toEqual(faceTasks);
  expect(t.totalMs).toBeGreaterThanOrEqual(t.decodeMs + t.detectMs);
}

describe('FaceAnalysis on sample1', () => {
  let unary: FrameResult;

  it('Analyze returns one entry per face with box, age, gender, emotion and landmarks, plus stage timings', async () => {
    const res = await analyze(client, analyzeRequest(encodedImage(sample1), faceTasks, 42));
    unary = res.result!;
    expect(unary.sequence).toBe(42);
    expect(unary.error).toBeUndefined();
    expectFullFaces(unary);
    process.stderr.write(`sample1 stage timings (ms): ${JSON.stringify(unary.timings)}\n`);
  });

  it('StreamAnalyze gives the same faces, with counters', async () => {
    const { responses, error } = await runStream(client, [
      StreamRequest.fromPartial({
        request: {
          $case: 'config',
          value: { streamId: 'cam-1', analysis: { tasks: faceTasks }, dropPolicy: DropPolicy.DROP_POLICY_BLOCK },
        },
      }),
      StreamRequest.fromPartial({
        request: { $case: 'frame', value: { image: encodedImage(sample1), sequence: 1, captureTimeUnixMs: Date.now() } },
      }),
    ]);
    expect(error).toBeUndefined();
    expect(responses).toHaveLength(1);
    const r = responses[0]!;
    expect(r.streamId).toBe('cam-1');
    expect(r.counters).toMatchObject({ framesReceived: 1, framesAnalyzed: 1, framesDropped: 0, framesFailed: 0 });
    expectFullFaces(r.result!);
    r.result!.faces.forEach((f, i) => {
      expect(f.box!.xPx).toBeCloseTo(unary.faces[i]!.box!.xPx, 1);
      expect(f.age!.years).toBeCloseTo(unary.faces[i]!.age!.years, 1);
      expect(f.emotion!.label).toBe(unary.faces[i]!.emotion!.label);
    });
  });

  it('a plain @grpc/proto-loader client gets the same results as the generated client', async () => {
    const definition = protoLoader.loadSync(protoFiles, {
      includeDirs: [protoRoot],
      keepCase: false,
      longs: Number,
      enums: String,
      defaults: true,
      oneofs: true,
    });
    const pkg = grpc.loadPackageDefinition(definition) as unknown as { kt: { v1: { FaceAnalysis: grpc.ServiceClientConstructor } } };
    const plain = new pkg.kt.v1.FaceAnalysis(server.address, grpc.credentials.createInsecure());
    type PlainFace = {
      box: { xPx: number };
      age: { years: number };
      gender: { label: string };
      emotion: { label: string };
      landmarks: { scheme: string; points: unknown[] };
    };
    const res = await new Promise<{ result: { faces: PlainFace[] } }>((resolve, reject) =>
      plain['analyze']!(
        {
          frame: { image: { encoded: { data: sample1 } }, sequence: 42 },
          analysis: { tasks: ['TASK_AGE', 'TASK_GENDER', 'TASK_EMOTION', 'TASK_LANDMARKS'] },
        },
        (e: grpc.ServiceError | null, r: { result: { faces: PlainFace[] } }) => (e ? reject(e) : resolve(r)),
      ),
    );
    plain.close();
    expect(res.result.faces).toHaveLength(unary.faces.length);
    res.result.faces.forEach((f, i) => {
      const g = unary.faces[i]!;
      expect(f.box.xPx).toBeCloseTo(g.box!.xPx, 1);
      expect(f.age.years).toBeCloseTo(g.age!.years, 1);
      expect(f.gender.label).toBe(g.gender!.label);
      expect(f.emotion.label).toBe(g.emotion!.label);
      expect(f.landmarks.scheme).toBe('ibug68');
      expect(f.landmarks.points).toHaveLength(68);
    });
  });

  it('publishes one MQTT faces event per analysed frame with faces, on kt/<node>/<stream>/faces', async () => {
    const topics = ['kt/test-node/unary/faces', 'kt/test-node/cam-1/faces'];
    const events = await subscriber.waitFor(
      (ms) => topics.every((t) => ms.some((m) => m.topic === t)),
      'the unary and the stream faces events',
    );
    const unaryEvent = json(events.find((e) => e.topic === 'kt/test-node/unary/faces')!);
    expect(unaryEvent).toMatchObject({ node: 'test-node', stream: 'unary', sequence: 42 });
    const faces = unaryEvent['faces'] as {
      box: unknown;
      age: number;
      gender: { label: string };
      emotion: { label: string };
      landmarks: { scheme: string; points: unknown[] };
    }[];
    expect(faces).toHaveLength(3);
    expect(faces[0]!.landmarks.scheme).toBe('ibug68');
    expect(typeof faces[0]!.age).toBe('number');
    const streamEvent = json(events.find((e) => e.topic === 'kt/test-node/cam-1/faces')!);
    expect(streamEvent['latencyMs']).toBeGreaterThanOrEqual(0);
    expect(events.find((e) => e.topic === 'kt/test-node/status')?.payload).toBe('online');
  });
});

describe('serving', () => {
  it('health reports SERVING for the server and each service', async () => {
    const health = new HealthClient(server.address, grpc.credentials.createInsecure());
    for (const service of ['', 'kt.v1.FaceAnalysis', 'kt.v1.Models', 'kt.v1.Gallery']) {
      const res = await new Promise<{ status: HealthCheckResponse_ServingStatus }>((resolve, reject) =>
        health.check({ service }, (e, r) => (e ? reject(e) : resolve(r))),
      );
      expect(res.status).toBe(HealthCheckResponse_ServingStatus.SERVING);
    }
    health.close();
  });

  it('LATEST_WINS drops the oldest waiting frames, counts them, and answers in sequence order', async () => {
    const frames = Array.from({ length: 8 }, (_, i) =>
      StreamRequest.fromPartial({ request: { $case: 'frame', value: { image: encodedImage(sample1), sequence: i + 1 } } }),
    );
    const { responses, error } = await runStream(client, [
      StreamRequest.fromPartial({
        request: {
          $case: 'config',
          value: {
            streamId: 'burst',
            analysis: { tasks: [Task.TASK_EMOTION] },
            dropPolicy: DropPolicy.DROP_POLICY_LATEST_WINS,
            queueDepth: 1,
          },
        },
      }),
      ...frames,
    ]);
    expect(error).toBeUndefined();
    const sequences = responses.map((r) => r.result!.sequence);
    expect(sequences).toEqual([...sequences].sort((a, b) => a - b));
    // The newest frame always survives; the burst arrives faster than frames are analysed, so some are dropped.
    expect(sequences.at(-1)).toBe(8);
    const last = responses.at(-1)!.counters!;
    expect(last.framesReceived).toBe(8);
    expect(last.framesDropped).toBeGreaterThan(0);
    expect(last.framesAnalyzed + last.framesDropped + last.framesFailed).toBe(8);
    expect(server.stats().framesDropped).toBeGreaterThanOrEqual(last.framesDropped);
  });
});

describe('Gallery', () => {
  it('enrols the largest face, identifies it in Identify and in Analyze (TASK_IDENTITY), deletes it', async () => {
    const gallery = new GalleryClient(server.address, grpc.credentials.createInsecure());
    const enrolled = await new Promise<EnrolResponse>((resolve, reject) =>
      gallery.enrol({ name: 'Ada', personId: '', images: [encodedImage(sample1), encodedImage(Buffer.from('not an image'))] }, (e, r) =>
        e ? reject(e) : resolve(r),
      ),
    );
    expect(enrolled.facesUsed).toBe(1);
    expect(enrolled.skipped.map((skip) => skip.imageIndex)).toEqual([1]);
    expect(enrolled.skipped[0]!.error!.message).toMatch(/image 1: unsupported image format/);
    expect(enrolled.person).toMatchObject({ name: 'Ada', faceCount: 1 });
    const people = await new Promise<ListPeopleResponse>((resolve, reject) =>
      gallery.listPeople({}, (e, r) => (e ? reject(e) : resolve(r))),
    );
    expect(people.people.map((p) => p.name)).toEqual(['Ada']);
    const found = await new Promise<IdentifyResponse>((resolve, reject) =>
      gallery.identify({ image: encodedImage(sample1), maxMatches: 0, threshold: 0 }, (e, r) => (e ? reject(e) : resolve(r))),
    );
    expect(found.faces).toHaveLength(3);
    const best = found.faces.flatMap((f) => f.matches).sort((a, b) => b.similarity - a.similarity)[0]!;
    expect(best).toMatchObject({ known: true, name: 'Ada', personId: enrolled.personId });
    expect(best.similarity).toBeGreaterThan(0.99);
    const analysed = await analyze(client, analyzeRequest(encodedImage(sample1), [Task.TASK_IDENTITY]));
    const named = analysed.result!.faces.filter((f) => f.identity?.known);
    expect(named.map((f) => f.identity!.name)).toContain('Ada');
    await new Promise<void>((resolve, reject) => gallery.deletePerson({ personId: enrolled.personId }, (e) => (e ? reject(e) : resolve())));
    const again = await new Promise<grpc.ServiceError | null>((resolve) =>
      gallery.deletePerson({ personId: enrolled.personId }, (e) => resolve(e)),
    );
    expect(again?.code).toBe(grpc.status.NOT_FOUND);
    gallery.close();
  });
});

describe('reflection', () => {
  it('lists the kt.v1 services and health', async () => {
    const reflectionProto = fileURLToPath(new URL('../node_modules/@grpc/reflection/build/proto', import.meta.url));
    const definition = protoLoader.loadSync('grpc/reflection/v1/reflection.proto', {
      includeDirs: [reflectionProto],
      keepCase: true,
      oneofs: true,
    });
    const pkg = grpc.loadPackageDefinition(definition) as unknown as {
      grpc: { reflection: { v1: { ServerReflection: grpc.ServiceClientConstructor } } };
    };
    const reflection = new pkg.grpc.reflection.v1.ServerReflection(server.address, grpc.credentials.createInsecure());
    const stream = reflection['ServerReflectionInfo']!() as grpc.ClientDuplexStream<
      object,
      { list_services_response?: { service: { name: string }[] } }
    >;
    const names = await new Promise<string[]>((resolve, reject) => {
      stream.on('data', (r: { list_services_response?: { service: { name: string }[] } }) =>
        resolve((r.list_services_response?.service ?? []).map((s) => s.name)),
      );
      stream.on('error', reject);
      stream.write({ list_services: '' });
    });
    stream.end();
    reflection.close();
    expect(names).toEqual(expect.arrayContaining(['kt.v1.FaceAnalysis', 'kt.v1.Models', 'kt.v1.Gallery', 'grpc.health.v1.Health']));
  });
});
