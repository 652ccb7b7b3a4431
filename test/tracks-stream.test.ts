// Face tracks over a real gRPC stream: a sequence built from real faces (demo photo crops moving on a canvas, entering,
// leaving, occluded), ground truth from the construction; ID switches, fragmentation, new/update/end events per person
// on gRPC and on Mosquitto; a cancelled stream ends its tracks; 1,000 open/close cycles leave no track behind.
import { randomBytes } from 'node:crypto';
import type { ClientDuplexStream } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TrackEventMessage } from '../src/contract/track-events.js';
import { Task } from '../src/gen/kt/v1/common.js';
import {
  DropPolicy,
  FacesTopicMode,
  TrackEventType,
  TrackingMode,
  type FaceAnalysisClient,
  type StreamRequest,
  type StreamResponse,
  type TrackingConfig,
} from '../src/gen/kt/v1/face_analysis.js';
import { probeMqttBroker } from '../src/server/mqtt/embedded-broker.js';
import type { RunningServer } from '../src/server/server.js';
import { countTrackErrors } from '../src/server/tracking/track-metrics.js';
import { liveTracks } from '../src/server/tracking/tracker.js';
import { json, recordTopic, type TopicRecorder } from './helpers/mqtt.js';
import { faceAnalysisClient, runStream, startTestServer } from './helpers/server-fixture.js';
import { demoFaceImage, personAt, rawImage, renderSequence, type SequenceFrame, type SequencePerson } from './helpers/track-sequence.js';

const mosquittoUrl = 'mqtt://127.0.0.1:1883';
const topicPrefix = `kt-tracks-${randomBytes(4).toString('hex')}`;
const nodeId = 'tracks-node';

let server: RunningServer;
let client: FaceAnalysisClient;
let recorder: TopicRecorder;
let people: SequencePerson[];
let frames: SequenceFrame[];

beforeAll(async () => {
  if (!(await probeMqttBroker('127.0.0.1', 1883, 2000))) throw new Error('Mosquitto is not answering MQTT on 127.0.0.1:1883');
  server = await startTestServer({
    tasks: ['age', 'emotion'],
    mqttEnabled: true,
    mqttUrl: mosquittoUrl,
    mqttTopicPrefix: topicPrefix,
    mqttNodeId: nodeId,
    statsIntervalMs: 0,
  });
  client = faceAnalysisClient(server);
  recorder = await recordTopic(mosquittoUrl, `${topicPrefix}/${nodeId}/+/events`);
  const [a, b, c] = await Promise.all([demoFaceImage(1, 0, 128), demoFaceImage(3, 0, 128), demoFaceImage(6, 0, 128)]);
  people = [
    // Walks right; a bar hides the face for 3 frames.
    { name: 'a', face: a, enter: 0, leave: 36, from: { x: 20, y: 30 }, velocity: { x: 8, y: 0 }, occluded: [12, 15] },
    // Walks left the whole time.
    { name: 'b', face: b, enter: 0, leave: 40, from: { x: 480, y: 210 }, velocity: { x: -6, y: 0 } },
    // Arrives at frame 10, leaves at frame 24 (its track ends while the stream goes on).
    { name: 'c', face: c, enter: 10, leave: 24, from: { x: 480, y: 400 }, velocity: { x: -10, y: 0 } },
  ];
  frames = renderSequence(people, 40, 640, 560);
});

afterAll(async () => {
  client?.close();
  await recorder?.end();
  await server?.close();
});

const tracking = (extra: Partial<TrackingConfig> = {}): TrackingConfig => ({
  mode: TrackingMode.TRACKING_MODE_ON,
  maxAgeFrames: 5,
  minHits: 2,
  reuse: undefined,
  facesTopic: FacesTopicMode.FACES_TOPIC_MODE_UNSPECIFIED,
  ...extra,
});

function messagesOf(streamId: string, tasks: Task[], config: TrackingConfig, count = frames.length): StreamRequest[] {
  return [
    {
      request: {
        $case: 'config',
        value: {
          streamId,
          analysis: { tasks, modelOverrides: [], minFaceSizePx: 0, maxFaces: 0, minScore: 0, identityThreshold: 0 },
          dropPolicy: DropPolicy.DROP_POLICY_BLOCK,
          queueDepth: 4,
          tracking: config,
        },
      },
    },
    ...frames.slice(0, count).map((f, i): StreamRequest => ({
      request: { $case: 'frame', value: { image: rawImage(f.image), sequence: i + 1, captureTimeUnixMs: 1_700_000_000_000 + i * 100 } },
    })),
  ];
}

describe('tracks on a stream of real faces', () => {
  it('gives every person one track id and one new and one end event, on gRPC and MQTT', async () => {
    const stream = 'walk';
    const before = liveTracks();
    const { responses, error } = await runStream(client, messagesOf(stream, [Task.TASK_DETECTION], tracking()));
    expect(error).toBeUndefined();
    const analysed = responses.filter((r) => r.result);
    expect(analysed).toHaveLength(frames.length);
    // The last response carries only the end events of the tracks still open.
    const last = responses[responses.length - 1]!;
    expect(last.result).toBeUndefined();

    const labelled = analysed.map((r) => ({
      faces: r.result!.faces.map((f) => ({
        person: personAt(frames[r.result!.sequence - 1]!, { x: f.box!.xPx, y: f.box!.yPx, width: f.box!.widthPx, height: f.box!.heightPx }),
        trackId: f.trackId,
      })),
    }));
    expect(analysed.every((r) => r.result!.faces.every((f) => f.trackId > 0))).toBe(true);
    const counts = countTrackErrors(labelled);
    console.log('track counts', JSON.stringify(counts));
    // Every person is found in most of the frames they are fully visible in.
    for (const p of people) {
      const visible = frames.filter((f) => f.truth.some((t) => t.person === p.name)).length;
      const found = labelled.filter((f) => f.faces.some((x) => x.person === p.name)).length;
      expect(found, p.name).toBeGreaterThanOrEqual(visible * 0.8);
    }
    expect(counts.idSwitches).toBe(0);
    expect(counts.fragmentedPeople).toBe(0);
    expect(counts.mergedTracks).toBe(0);

    const trackOf = new Map<string, number>();
    for (const f of labelled) for (const x of f.faces) if (x.person) trackOf.set(x.person, x.trackId);
    const events = responses.flatMap((r) => r.trackEvents);
    const byType = (t: TrackEventType): number[] =>
      events
        .filter((e) => e.type === t)
        .map((e) => e.trackId)
        .sort();
    const expectedIds = [...trackOf.values()].sort();
    expect(byType(TrackEventType.TRACK_EVENT_TYPE_NEW)).toEqual(expectedIds);
    expect(byType(TrackEventType.TRACK_EVENT_TYPE_END)).toEqual(expectedIds);
    // c left at frame 24 and ended after 5 unseen frames, inside the stream: its end came with a frame's response.
    const cEnd = analysed.flatMap((r) => r.trackEvents).find((e) => e.type === TrackEventType.TRACK_EVENT_TYPE_END);
    expect(cEnd?.trackId).toBe(trackOf.get('c'));
    expect(cEnd!.endTimeUnixMs).toBeGreaterThan(cEnd!.startTimeUnixMs);
    expect(last.trackEvents.map((e) => e.trackId).sort()).toEqual([trackOf.get('a'), trackOf.get('b')].sort());
    expect(liveTracks()).toBe(before);

    // The same events on MQTT, in Frigate's shape.
    const topic = `${topicPrefix}/${nodeId}/${stream}/events`;
    const mqttEvents = (): TrackEventMessage[] => recorder.messages.filter((m) => m.topic === topic).map((m) => json<TrackEventMessage>(m));
    await recorder.waitFor(() => mqttEvents().filter((e) => e.type === 'end').length === 3, 'three end events', 10_000);
    const news = mqttEvents().filter((e) => e.type === 'new');
    expect(news.map((e) => e.after.track_id).sort()).toEqual(expectedIds);
    for (const e of mqttEvents()) {
      expect(e.after).toMatchObject({ camera: stream, node: nodeId, label: 'face' });
      if (e.type !== 'new') expect(e.before?.track_id).toBe(e.after.track_id);
    }
    const ends = mqttEvents().filter((e) => e.type === 'end');
    for (const e of ends) expect(e.after.end_time).toBeGreaterThanOrEqual(e.after.start_time);
  });

  it('reuses answers within a track: fewer model runs, every answer says how old it is, summaries aggregate', async () => {
    const reuse = { enabled: true, refreshAfterMs: 60_000, betterFaceRatio: 10, minObservations: 2, emotionEveryFrames: 3 };
    const { responses, error } = await runStream(client, messagesOf('reuse', [Task.TASK_AGE, Task.TASK_EMOTION], tracking({ reuse }), 12));
    expect(error).toBeUndefined();
    const faces = responses.flatMap((r) => r.result?.faces ?? []);
    const ages = faces.flatMap((f) => f.answerAges.filter((a) => a.task === Task.TASK_AGE));
    // Fresh answers (age 0) on the first frames of each track, reused ones (older) after that.
    expect(ages.some((a) => a.frames === 0)).toBe(true);
    expect(ages.some((a) => a.frames > 0 && a.ageMs > 0)).toBe(true);
    // Every face still has an age (reused when not fresh) and its track's summary.
    expect(faces.every((f) => f.age !== undefined && f.track !== undefined && f.track.ageYears > 0)).toBe(true);
    const emotionAges = faces.flatMap((f) => f.answerAges.filter((a) => a.task === Task.TASK_EMOTION).map((a) => a.frames));
    expect(Math.max(...emotionAges)).toBeLessThan(3);
  });

  it('ends the tracks of a cancelled stream (end events on MQTT) and keeps none', async () => {
    const stream = 'cancelled';
    const before = liveTracks();
    const call: ClientDuplexStream<StreamRequest, StreamResponse> = client.streamAnalyze();
    call.on('error', () => {});
    const got: StreamResponse[] = [];
    call.on('data', (r: StreamResponse) => got.push(r));
    for (const m of messagesOf(stream, [Task.TASK_DETECTION], tracking(), 6)) call.write(m);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no 6 responses')), 60_000);
      const check = (): void => {
        if (got.length >= 6) {
          clearTimeout(timer);
          resolve();
        } else setTimeout(check, 20);
      };
      check();
    });
    const open = new Set(got.flatMap((r) => r.result!.faces.map((f) => f.trackId)));
    expect(open.size).toBeGreaterThanOrEqual(2);
    call.cancel();
    const topic = `${topicPrefix}/${nodeId}/${stream}/events`;
    const ofStream = (type: string): number[] =>
      recorder.messages
        .filter((m) => m.topic === topic && json<TrackEventMessage>(m).type === type)
        .map((m) => json<TrackEventMessage>(m).after.track_id)
        .sort();
    // Both people were confirmed (new) while the stream ran; cancelling it ends exactly those tracks.
    await recorder.waitFor(() => ofStream('new').length >= 2 && ofStream('end').length === ofStream('new').length, 'end events', 10_000);
    expect(ofStream('end')).toEqual(ofStream('new'));
    expect(ofStream('new').every((id) => open.has(id))).toBe(true);
    await vi_waitFor(() => liveTracks() === before);
  });

  it('1,000 streams opened and closed (half-closed, cancelled after an answer, cancelled mid-frame) leave no track behind', async () => {
    const before = liveTracks();
    // A small frame with one face: the cycles measure stream set-up and tear-down, not pixels.
    const one = renderSequence([{ ...people[0]!, from: { x: 16, y: 16 }, velocity: { x: 0, y: 0 } }], 1, 160, 160)[0]!;
    let withFaces = 0;
    const cycle = async (i: number): Promise<void> => {
      const messages = [
        ...messagesOf(`cycle-${i}`, [Task.TASK_DETECTION], tracking({ minHits: 1 }), 0),
        { request: { $case: 'frame', value: { image: rawImage(one.image), sequence: 1, captureTimeUnixMs: 0 } } } as StreamRequest,
      ];
      if (i % 2 === 0) {
        const { responses } = await runStream(client, messages);
        if ((responses[0]?.result?.faces.length ?? 0) > 0) withFaces += 1;
        return;
      }
      const call: ClientDuplexStream<StreamRequest, StreamResponse> = client.streamAnalyze();
      await new Promise<void>((resolve) => {
        call.on('error', () => resolve());
        call.on('data', (r: StreamResponse) => {
          if ((r.result?.faces.length ?? 0) > 0) withFaces += 1;
          call.cancel();
        });
        call.on('status', () => resolve());
        for (const m of messages) call.write(m);
        // Every fourth stream is cancelled while its frame is being analysed.
        if (i % 4 === 3) setImmediate(() => call.cancel());
      });
    };
    for (let i = 0; i < 1000; i += 4) await Promise.all([0, 1, 2, 3].map((k) => cycle(i + k)));
    expect(withFaces).toBeGreaterThan(700);
    await vi_waitFor(() => liveTracks() === before && server.stats().streamsOpen === 0);
    expect(liveTracks()).toBe(before);
  }, 600_000);
});

async function vi_waitFor(done: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}
