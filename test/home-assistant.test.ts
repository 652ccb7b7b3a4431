// Home Assistant MQTT discovery on the real Mosquitto: per-stream device configs (unique_id, state_topic, availability,
// device), states that follow people coming and going, the best-face snapshot (retained JPEG), and a re-announce when
// Home Assistant's birth message arrives.
import { randomBytes } from 'node:crypto';
import { connectAsync } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StreamFaceState } from '../src/events/mqtt/home-assistant.js';
import { Task } from '../src/gen/kt/v1/common.js';
import { DropPolicy, FacesTopicMode, TrackingMode, type FaceAnalysisClient, type StreamRequest } from '../src/gen/kt/v1/face_analysis.js';
import { probeMqttBroker } from '../src/server/mqtt/embedded-broker.js';
import type { RunningServer } from '../src/server/server.js';
import { clearRetained, json, recordTopic, type ReceivedMessage, type TopicRecorder } from './helpers/mqtt.js';
import { faceAnalysisClient, runStream, startTestServer } from './helpers/server-fixture.js';
import { demoFaceImage, rawImage, renderSequence } from './helpers/track-sequence.js';

const mosquittoUrl = 'mqtt://127.0.0.1:1883';
const suffix = randomBytes(4).toString('hex');
// Our own discovery and topic prefixes: a real Home Assistant on this broker never sees these test entities.
const haPrefix = `ha-test-${suffix}`;
const topicPrefix = `kt-ha-${suffix}`;
const nodeId = 'ha-node';
const stream = 'door';

let server: RunningServer;
let client: FaceAnalysisClient;
let ha: TopicRecorder;
let kt: TopicRecorder;

beforeAll(async () => {
  if (!(await probeMqttBroker('127.0.0.1', 1883, 2000))) throw new Error('Mosquitto is not answering MQTT on 127.0.0.1:1883');
  server = await startTestServer({
    tasks: ['age', 'emotion'],
    mqttEnabled: true,
    mqttUrl: mosquittoUrl,
    mqttTopicPrefix: topicPrefix,
    mqttNodeId: nodeId,
    statsIntervalMs: 0,
    homeAssistantDiscovery: true,
    homeAssistantPrefix: haPrefix,
  });
  client = faceAnalysisClient(server);
  ha = await recordTopic(mosquittoUrl, `${haPrefix}/#`);
  kt = await recordTopic(mosquittoUrl, `${topicPrefix}/${nodeId}/#`);
});

afterAll(async () => {
  client?.close();
  const retained = [...(ha?.messages ?? []), ...(kt?.messages ?? [])].filter((m) => m.payload.length > 0).map((m) => m.topic);
  await ha?.end();
  await kt?.end();
  await server?.close();
  for (const topic of new Set(retained)) await clearRetained(mosquittoUrl, topic);
});

const configs = (messages: ReceivedMessage[]): ReceivedMessage[] =>
  messages.filter((m) => m.topic.endsWith('/config') && m.payload.length > 0);
const states = (): StreamFaceState[] =>
  kt.messages.filter((m) => m.topic === `${topicPrefix}/${nodeId}/${stream}/state`).map((m) => json<StreamFaceState>(m));

describe('Home Assistant discovery', () => {
  it('announces a device per stream and follows people coming and going', async () => {
    const face = await demoFaceImage(1, 0, 128);
    // A person in view for 10 frames, then 10 empty frames: the track ends (max age 5) and faces drops to 0.
    const frames = renderSequence(
      [{ name: 'a', face, enter: 0, leave: 10, from: { x: 60, y: 60 }, velocity: { x: 4, y: 0 } }],
      20,
      320,
      256,
    );
    const messages: StreamRequest[] = [
      {
        request: {
          $case: 'config',
          value: {
            streamId: stream,
            analysis: {
              tasks: [Task.TASK_AGE, Task.TASK_EMOTION],
              modelOverrides: [],
              minFaceSizePx: 0,
              maxFaces: 0,
              minScore: 0,
              identityThreshold: 0,
            },
            dropPolicy: DropPolicy.DROP_POLICY_BLOCK,
            queueDepth: 2,
            tracking: {
              mode: TrackingMode.TRACKING_MODE_ON,
              maxAgeFrames: 5,
              minHits: 2,
              reuse: undefined,
              facesTopic: FacesTopicMode.FACES_TOPIC_MODE_OFF,
            },
          },
        },
      },
      ...frames.map((f, i): StreamRequest => ({
        request: { $case: 'frame', value: { image: rawImage(f.image), sequence: i + 1, captureTimeUnixMs: 0 } },
      })),
    ];
    const { error } = await runStream(client, messages);
    expect(error).toBeUndefined();

    const announced = await ha.waitFor((ms) => configs(ms).length >= 6, 'six discovery configs', 10_000);
    const byComponent = new Map(
      configs(announced).map((m) => [m.topic.split('/')[1] + '/' + m.topic.split('/')[3], json<Record<string, unknown>>(m)]),
    );
    expect([...byComponent.keys()].sort()).toEqual(
      [
        'binary_sensor/face_present',
        'camera/snapshot',
        'sensor/faces',
        'sensor/last_age',
        'sensor/last_emotion',
        'sensor/last_person',
      ].sort(),
    );
    const ids = new Set<string>();
    for (const [key, payload] of byComponent) {
      ids.add(payload.unique_id as string);
      expect(payload.availability, key).toEqual([
        { topic: `${topicPrefix}/${nodeId}/status`, payload_available: 'online', payload_not_available: 'offline' },
      ]);
      expect((payload.device as { identifiers: string[] }).identifiers).toEqual([`kt_${nodeId}_${stream}`]);
      if (key === 'camera/snapshot') expect(payload.topic).toBe(`${topicPrefix}/${nodeId}/${stream}/snapshot`);
      else expect(payload.state_topic).toBe(`${topicPrefix}/${nodeId}/${stream}/state`);
    }
    expect(ids.size).toBe(6);
    // Configs are retained: a Home Assistant that subscribes later still finds them.
    const lateConfigs = await recordTopic(mosquittoUrl, `${haPrefix}/sensor/+/faces/config`);
    try {
      const retained = await lateConfigs.waitFor((ms) => ms.length > 0, 'the retained faces config', 5000);
      expect(retained[0]!.retain).toBe(true);
    } finally {
      await lateConfigs.end();
    }

    // The states: nobody yet, then one face with an age, then nobody again.
    await kt.waitFor(
      () => states().length > 0 && states().at(-1)!.faces === 0 && states().some((s) => s.faces === 1),
      'faces 1 then 0',
      10_000,
    );
    const seen = states().map((s) => s.faces);
    expect(seen[0]).toBe(0);
    expect(seen.indexOf(1)).toBeGreaterThan(0);
    expect(seen.lastIndexOf(0)).toBeGreaterThan(seen.indexOf(1));
    const withFace = states().find((s) => s.faces === 1)!;
    expect(withFace.last_age).toBeGreaterThan(0);
    expect(withFace.last_emotion).not.toBe('');

    // The best face, retained, as a JPEG; the per-frame faces topic is off for this stream.
    await kt.waitFor((ms) => ms.some((m) => m.topic.endsWith(`/${stream}/snapshot`)), 'a snapshot', 10_000);
    expect(kt.messages.some((m) => m.topic.endsWith(`/${stream}/faces`))).toBe(false);
    const late = await connectAsync(mosquittoUrl, { clientId: `kt-test-snap-${suffix}`, reconnectPeriod: 0 });
    try {
      const got = new Promise<{ payload: Buffer; retain: boolean }>((resolve) =>
        late.on('message', (_t, payload, packet) => resolve({ payload, retain: packet.retain })),
      );
      await late.subscribeAsync(`${topicPrefix}/${nodeId}/${stream}/snapshot`, { qos: 1 });
      const { payload, retain } = await got;
      expect(retain).toBe(true);
      expect([...payload.subarray(0, 3)]).toEqual([0xff, 0xd8, 0xff]);
    } finally {
      await late.endAsync();
    }
  });

  it("re-announces every stream and its last state when Home Assistant's birth message arrives", async () => {
    const before = configs(ha.messages).length;
    const statesBefore = states().length;
    const birth = await connectAsync(mosquittoUrl, { clientId: `kt-test-ha-${suffix}`, reconnectPeriod: 0 });
    try {
      await birth.publishAsync(`${haPrefix}/status`, 'online', { qos: 1 });
    } finally {
      await birth.endAsync();
    }
    await ha.waitFor((ms) => configs(ms).length >= before + 6, 'six configs again', 10_000);
    await kt.waitFor(() => states().length > statesBefore, 'the state again', 10_000);
    expect(states().at(-1)!.faces).toBe(0);
  });
});
