// One event builder, end to end: the faces event the real server publishes on Mosquitto equals the contract's
// facesEventOf of the result the SDK parsed from the same call, field for field (boxes, mesh, identity, latency, ...).
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FacesMessage } from '../src/contract/face-events.js';
import { probeMqttBroker } from '../src/server/mqtt/embedded-broker.js';
import type { RunningServer } from '../src/server/server.js';
import { FaceAnalysisClient, resultToFacesEvent } from '../src/sdk/index.js';
import type { AnalysisResult, TaskName } from '../src/sdk/index.js';
import { json, recordTopic, type ReceivedMessage, type TopicRecorder } from './helpers/mqtt.js';
import { demoJpeg, startTestServer } from './helpers/server-fixture.js';

const mosquittoUrl = 'mqtt://127.0.0.1:1883';
// A topic prefix of our own, so that other tests on the shared broker neither see nor disturb these events.
const topicPrefix = `kt-contract-${randomBytes(4).toString('hex')}`;
const nodeId = 'contract-node';
const tasks: TaskName[] = ['age', 'gender', 'emotion', 'landmarks', 'mesh', 'identity'];

let server: RunningServer;
let client: FaceAnalysisClient;
let recorder: TopicRecorder;

beforeAll(async () => {
  if (!(await probeMqttBroker('127.0.0.1', 1883, 2000))) {
    throw new Error('Mosquitto is not answering MQTT on 127.0.0.1:1883; start it (`mosquitto -d` or the CI service) and run again.');
  }
  server = await startTestServer({
    tasks,
    mqttEnabled: true,
    mqttUrl: mosquittoUrl,
    mqttTopicPrefix: topicPrefix,
    mqttNodeId: nodeId,
    statsIntervalMs: 0,
  });
  client = new FaceAnalysisClient(server.address);
  recorder = await recordTopic(mosquittoUrl, `${topicPrefix}/${nodeId}/+/faces`);
  const enrolled = await client.gallery.enrol({ name: 'Ada', images: [demoJpeg(1)] });
  expect(enrolled.facesUsed).toBe(1);
});

afterAll(async () => {
  client?.close();
  await recorder?.end();
  await server?.close();
});

/** The published event of `stream` with `sequence`. */
async function published(stream: string, sequence: number): Promise<FacesMessage> {
  const topic = `${topicPrefix}/${nodeId}/${stream}/faces`;
  const match = (m: ReceivedMessage): boolean => m.topic === topic && json<FacesMessage>(m).sequence === sequence;
  const messages = await recorder.waitFor((ms) => ms.some(match), `the faces event of ${stream} #${sequence}`, 10_000);
  return json<FacesMessage>(messages.find(match)!);
}

/** The event as it travels: JSON (so -0 and undefined fields read as the subscriber sees them). */
const asJson = (value: unknown): unknown => JSON.parse(JSON.stringify(value));

/** The server's event against the SDK's, with the SDK clock set to the server's processing time. */
function expectSameEvent(event: FacesMessage, result: AnalysisResult, stream: string): void {
  const expected = resultToFacesEvent(result, stream, nodeId, event.processedTimeMs);
  expect(event).toEqual(asJson(expected));
  // The fields the two builders used to disagree on, spelled out.
  expect(event.latencyMs).toBe(event.processedTimeMs! - result.captureTimeUnixMs);
  expect(event.faces).toHaveLength(result.faces.length);
  for (const [i, face] of event.faces.entries()) {
    const mesh = face.tasks?.['mesh'] as { scheme: string; points: number[][] } | undefined;
    expect(mesh?.scheme).toBe(result.faces[i]!.mesh!.scheme);
    expect(mesh?.points).toHaveLength(result.faces[i]!.mesh!.points.length);
    expect(face.identity).toBeDefined();
  }
}

describe('the published faces event equals facesEventOf(the SDK result)', () => {
  it('Analyze: sample1 (enrolled) and sample2, every field', async () => {
    for (const n of [1, 2]) {
      const captureTimeUnixMs = Date.now() - 5;
      const result = await client.analyze(demoJpeg(n), { tasks, sequence: n, captureTimeUnixMs });
      expect(result.faces.length).toBeGreaterThan(0);
      expectSameEvent(await published('unary', n), result, 'unary');
    }
    const sample1 = await published('unary', 1);
    expect(sample1.faces.some((f) => f.identity?.name === 'Ada')).toBe(true);
    expect(sample1.faces[0]!.tasks?.['mesh']).toMatchObject({ scheme: 'mediapipe468' });
  });

  it('StreamAnalyze: every frame of a stream', async () => {
    const results: AnalysisResult[] = [];
    for await (const r of client.stream([demoJpeg(1), demoJpeg(3)], { streamId: 'contract-cam', tasks, dropPolicy: 'BLOCK' }))
      results.push(r);
    expect(results.map((r) => r.sequence)).toEqual([1, 2]);
    for (const result of results) expectSameEvent(await published('contract-cam', result.sequence), result, 'contract-cam');
  });
});
