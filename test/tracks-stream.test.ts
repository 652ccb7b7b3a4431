// Face tracks over a real gRPC stream: a sequence built from real faces (demo photo crops moving on a canvas, entering,
// leaving, occluded), ground truth from the construction; ID switches, fragmentation, new/update/end events per person
// on gRPC and on Mosquitto; a cancelled stream ends its tracks; 1,000 open/close cycles leave no track behind.
import { randomBytes } from 'node:crypto';
import type { ClientDuplexStream } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TrackEventMessage } from '../src/contract/track-events.js';
import { Task } from '../src/gen/kt/v1/common.js';
import {
  TrackEventType,
  type FaceAnalysisClient,
  type StreamRequest,
  type StreamResponse,
  type TrackingConfig,
} from '../src/gen/kt/v1/face_analysis.js';
import type { RunningServer } from '../src/server/server.js';
import { countTrackErrors } from '../src/server/tracking/track-metrics.js';
import { liveTracks } from '../src/server/tracking/tracker.js';
import { json, type TopicRecorder } from './helpers/mqtt.js';
import { mib, settledHeap } from './helpers/heap.js';
import { runStream, startMosquittoEventServer } from './helpers/server-fixture.js';
import {
  eventTrackIds,
  labelResponses,
  personAt,
  rawImage,
  streamMessages,
  trackingConfig,
  type SequenceFrame,
  type SequencePerson,
  renderSequence,
  threeWalkers,
} from './helpers/track-sequence.js';

const topicPrefix = `kt-tracks-${randomBytes(4).toString('hex')}`;
const nodeId = 'tracks-node';

let server: RunningServer;
let client: FaceAnalysisClient;
let recorder: TopicRecorder;
let people: SequencePerson[];
let frames: SequenceFrame[];

beforeAll(async () => {
  ({ server, client, recorder } = await startMosquittoEventServer(['age', 'emotion'], topicPrefix, nodeId));
  // a walks right and a bar hides it for 3 frames; b walks left the whole time; c arrives at frame 10 and leaves at 24.
  ({ people, frames } = await threeWalkers({ a: { leave: 36, occluded: [12, 15] } }));
});

afterAll(async () => {
  client?.close();
  await recorder?.end();
  await server?.close();
});

const tracking = trackingConfig;

function messagesOf(streamId: string, tasks: Task[], config: TrackingConfig, count = frames.length): StreamRequest[] {
  return streamMessages(
    streamId,
    tasks,
    config,
    frames.slice(0, count).map((f) => f.image),
  );
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

    const labelled = labelResponses(analysed, (n, box) => personAt(frames[n]!, box));
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
    const expectedIds = [...trackOf.values()].sort((x, y) => x - y);
    expect(eventTrackIds(responses, TrackEventType.TRACK_EVENT_TYPE_NEW)).toEqual(expectedIds);
    expect(eventTrackIds(responses, TrackEventType.TRACK_EVENT_TYPE_END)).toEqual(expectedIds);
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
    expect(news.map((e) => e.after.track_id).sort((x, y) => x - y)).toEqual(expectedIds);
    for (const e of mqttEvents()) {
      expect(e.after).toMatchObject({ camera: stream, node: nodeId, label: 'face' });
      if (e.type !== 'new') expect(e.before?.track_id).toBe(e.after.track_id);
    }
    const ends = mqttEvents().filter((e) => e.type === 'end');
    for (const e of ends) expect(e.after.end_time).toBeGreaterThanOrEqual(e.after.start_time);
  });

  it('reuses answers within a track: fewer model runs, every answer says how old it is, summaries aggregate', async () => {
    const reuse = {
      enabled: true,
      refreshAfterMs: 60_000,
      betterFaceRatio: 10,
      minObservations: 2,
      emotionEveryFrames: 3,
      detectEveryFrames: 0,
    };
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
    const cycles = async (from: number, count: number): Promise<void> => {
      for (let i = from; i < from + count; i += 4) await Promise.all([0, 1, 2, 3].map((k) => cycle(i + k)));
      await vi_waitFor(() => liveTracks() === before && server.stats().streamsOpen === 0);
    };
    // The test's own subscriber would keep every cycle's events in memory: stop it before the heap is measured.
    await recorder.client.unsubscribeAsync(`${topicPrefix}/${nodeId}/+/events`);
    // Warm-up: lazily built state (gRPC channel, pools, JIT code, metric series) is made before the first sample.
    await cycles(0, warmUpCycles);
    const start = await settledHeap();
    withFaces = 0;
    await cycles(warmUpCycles, 1000);
    const end = await settledHeap();
    expect(withFaces).toBeGreaterThan(700);
    expect(liveTracks()).toBe(before);
    const heapGrownBytes = end.heapUsedBytes - start.heapUsedBytes;
    const externalGrownBytes = end.externalBytes - start.externalBytes;
    console.log(
      `1,000 stream cycles after ${warmUpCycles} warm-up: heap ${mib(start.heapUsedBytes)} -> ${mib(end.heapUsedBytes)} MiB ` +
        `(bound +${mib(heapGrowthBoundBytes)}), external ${mib(start.externalBytes)} -> ${mib(end.externalBytes)} MiB ` +
        `(bound +${mib(externalGrowthBoundBytes)}), ${withFaces} answers with a face`,
    );
    expect(externalGrownBytes).toBeLessThan(externalGrowthBoundBytes);
    expect(heapGrownBytes).toBeLessThan(heapGrowthBoundBytes);
  }, 600_000);
});

/** Cycles run before the first heap sample (V8 keeps compiling code for the first few hundred). */
const warmUpCycles = 200;
/**
 * Allowed growth over the 1,000 cycles. A track left behind per cycle would keep its face snapshot, a JPEG of 3 KB for
 * this frame's face made by sharp (external memory): 750 cycles find the face, and 750 kept snapshots grow external
 * memory by 2.1 MiB. Measured without a leak (2 cores shared with other jobs): external +0.04 to +0.05 MiB in 3 runs;
 * the heap +1.1 to +1.3 MiB (+0.2 to +1.4 with 100 warm-up cycles), V8's compiled code: a heap snapshot diff over 2,000
 * more cycles showed code and deopt data, no objects of the server's.
 */
const externalGrowthBoundBytes = 1 * 2 ** 20;
const heapGrowthBoundBytes = 3 * 2 ** 20;

async function vi_waitFor(done: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}
