// Face tracks through the client SDK against the real server over real gRPC: a sequence of real faces (demo photo
// crops moving on a canvas, one person entering and leaving) streamed with tracking on and the detector on every third
// frame; track ids per person, new/update/end events on results and the closing end events after the source ends;
// a stream that does not ask for tracking sees what it saw before.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FaceAnalysisClient } from '../src/sdk/index.js';
import type { FaceResult, RawImageInput, StreamInit, StreamResult, TrackEvent } from '../src/sdk/index.js';
import type { RunningServer } from '../src/server/server.js';
import { countTrackErrors } from '../src/server/tracking/track-metrics.js';
import { liveTracks } from '../src/server/tracking/tracker.js';
import { startTestServer } from './helpers/server-fixture.js';
import { personAt, type SequenceFrame, threeWalkers } from './helpers/track-sequence.js';

let server: RunningServer;
let client: FaceAnalysisClient;
let frames: SequenceFrame[];

beforeAll(async () => {
  server = await startTestServer({ tasks: ['age', 'emotion'] });
  client = new FaceAnalysisClient(server.address);
  // a and b stay to the end (their tracks end when the stream does); c arrives at frame 8 and leaves at frame 20.
  ({ frames } = await threeWalkers({ b: { velocity: { x: -6, y: 2 } }, c: { enter: 8, leave: 20, from: { x: 470, y: 400 } } }));
});

afterAll(async () => {
  client?.close();
  await server?.close();
});

const raw = (f: SequenceFrame): RawImageInput => ({
  data: f.image.data,
  widthPx: f.image.width,
  heightPx: f.image.height,
  pixelFormat: 'RGB8',
});

/** Streams `count` frames (10 frames/s capture times, nothing dropped) and collects results and onTrackEvents calls. */
async function streamFrames(init: Omit<StreamInit, 'streamId'> & { streamId: string }, count = frames.length) {
  const calls: { events: TrackEvent[]; sequence: number | undefined }[] = [];
  const source = frames.slice(0, count).map((f, i) => ({ image: raw(f), sequence: i + 1, captureTimeUnixMs: 1_700_000_000_000 + i * 100 }));
  const stream = client.stream(source, {
    dropPolicy: 'BLOCK',
    queueDepth: 4,
    maxInFlight: 4,
    onTrackEvents: (events, result) => calls.push({ events, sequence: result?.sequence }),
    ...init,
  });
  const results: StreamResult[] = [];
  for await (const r of stream) results.push(r);
  return { stream, results, calls };
}

const personOf = (r: StreamResult, f: FaceResult): string | undefined => personAt(frames[r.sequence - 1]!, f.box);
const ids = (events: readonly TrackEvent[], type: TrackEvent['type']): number[] =>
  events
    .filter((e) => e.type === type)
    .map((e) => e.trackId)
    .sort((x, y) => x - y);

describe('face tracks through the SDK', () => {
  it('tracking on with reuse and the detector every third frame: stable ids, events on results, closing end events', async () => {
    const before = liveTracks();
    const { stream, results, calls } = await streamFrames({
      streamId: 'sdk-tracks',
      tasks: ['age', 'emotion'],
      tracking: {
        // The server ages tracks on detected frames only: 3 misses at one detection in three end c about 12 frames later.
        maxAgeFrames: 3,
        minHits: 2,
        reuse: { refreshAfterMs: 60_000, minObservations: 2, emotionEveryFrames: 3, detectEveryFrames: 3 },
      },
    });
    // One result per frame: the closing response is not a frame and is not counted as one.
    expect(results.map((r) => r.sequence)).toEqual(frames.map((_, i) => i + 1));
    expect(stream.counters).toMatchObject({ framesSent: frames.length, framesAnswered: frames.length, framesFailed: 0, framesLost: 0 });
    expect(stream.state).toBe('done');

    const faces = results.flatMap((r) => r.faces.map((f) => ({ r, f })));
    expect(faces.every(({ f }) => (f.trackId ?? 0) > 0)).toBe(true);
    const counts = countTrackErrors(results.map((r) => ({ faces: r.faces.map((f) => ({ person: personOf(r, f), trackId: f.trackId! })) })));
    console.log('sdk tracks', JSON.stringify(counts));
    expect(counts).toMatchObject({ idSwitches: 0, fragmentedPeople: 0, mergedTracks: 0 });
    expect(Object.keys(counts.idsPerPerson).sort()).toEqual(['a', 'b', 'c']);
    const trackOf = new Map(faces.flatMap(({ r, f }) => (personOf(r, f) ? [[personOf(r, f)!, f.trackId!] as const] : [])));

    // The detector ran on about one frame in three; the faces of the others are motion predictions with reused answers.
    const predicted = faces.filter(({ f }) => f.boxPredicted);
    expect(predicted.length).toBeGreaterThan(20);
    expect(faces.length - predicted.length).toBeGreaterThan(20);
    for (const { f } of faces) {
      expect(f.answerAges?.map((a) => a.task).sort()).toEqual(['age', 'emotion']);
      expect(f.age?.years).toBeGreaterThan(0);
      expect(f.track?.hits).toBeGreaterThan(0);
    }
    const ageAnswers = faces.flatMap(({ f }) => f.answerAges!.filter((a) => a.task === 'age'));
    expect(ageAnswers.some((a) => a.frames === 0)).toBe(true);
    expect(ageAnswers.some((a) => a.frames > 0 && a.ageMs > 0)).toBe(true);

    // Events: one new and one end per person; c's track ended inside the stream (on a frame's result), a's and b's after it.
    const onResults = results.flatMap((r) => r.trackEvents);
    const closing = stream.closingTrackEvents;
    const all = [...onResults, ...closing];
    const personIds = [...trackOf.values()].sort((x, y) => x - y);
    expect(ids(all, 'new')).toEqual(personIds);
    expect(ids(all, 'end')).toEqual(personIds);
    expect(ids(onResults, 'end')).toEqual([trackOf.get('c')]);
    expect(ids(closing, 'end')).toEqual([trackOf.get('a')!, trackOf.get('b')!].sort((x, y) => x - y));
    expect(closing.every((e) => e.type === 'end')).toBe(true);
    for (const e of all.filter((x) => x.type !== 'update')) {
      expect([...(e.snapshotJpeg ?? new Uint8Array()).subarray(0, 2)]).toEqual([0xff, 0xd8]);
      expect(e.startTimeUnixMs).toBeGreaterThanOrEqual(1_700_000_000_000);
      expect(e.box.width).toBeGreaterThan(0);
      expect(e.summary.hits).toBeGreaterThanOrEqual(2);
    }
    for (const e of all.filter((x) => x.type === 'end')) {
      expect(e.endTimeUnixMs).toBeGreaterThan(e.startTimeUnixMs);
      expect(e.summary.ageYears).toBeGreaterThan(0);
      expect(e.summary.emotion?.label).toBeTruthy();
    }

    // onTrackEvents had every event once, in order: each frame's with its result, the closing ones last without one.
    expect(calls.flatMap((c) => c.events)).toEqual(all);
    expect(calls.at(-1)).toEqual({ events: closing, sequence: undefined });
    expect(calls.slice(0, -1).every((c) => c.sequence !== undefined)).toBe(true);
    expect(liveTracks()).toBe(before);
  });

  it('without asking for tracking the stream behaves as before: every frame one result, no closing response', async () => {
    const { stream, results, calls } = await streamFrames({ streamId: 'sdk-default', tasks: ['age'] }, 8);
    expect(results.map((r) => r.sequence)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(stream.counters).toMatchObject({ framesSent: 8, framesAnswered: 8, framesFailed: 0 });
    expect(stream.closingTrackEvents).toEqual([]);
    expect(calls.every((c) => c.sequence !== undefined)).toBe(true);
    // The server tracks by default (an addition old clients ignore); every task still ran on every face of every frame.
    const faces = results.flatMap((r) => r.faces);
    expect(faces.length).toBeGreaterThanOrEqual(8 * 2);
    expect(faces.every((f) => f.age !== undefined && !f.boxPredicted && f.answerAges!.every((a) => a.frames === 0))).toBe(true);
  });

  it('tracking off: no track ids, no events', async () => {
    const { stream, results, calls } = await streamFrames({ streamId: 'sdk-off', tasks: ['age'], tracking: false }, 6);
    expect(results).toHaveLength(6);
    const faces = results.flatMap((r) => r.faces);
    expect(faces.length).toBeGreaterThanOrEqual(6 * 2);
    expect(faces.every((f) => f.trackId === 0 && f.track === undefined && f.answerAges!.length === 0)).toBe(true);
    expect(results.every((r) => r.trackEvents.length === 0)).toBe(true);
    expect(stream.closingTrackEvents).toEqual([]);
    expect(calls).toEqual([]);
  });

  it('rejects bad tracking options before anything is sent, naming the field', () => {
    expect(() => client.stream([], { streamId: 'bad', tracking: { reuse: { detectEveryFrames: 0 } } })).toThrow(
      'tracking.reuse.detectEveryFrames must be an integer >= 1, got 0',
    );
    expect(() => client.stream([], { streamId: 'bad', tracking: { mode: 'yes' as 'on' } })).toThrow(
      'tracking.mode must be "on" or "off", got "yes"',
    );
  });
});
