// The detector interval of analysis reuse (ReusePolicy.detect_every_frames, DeepStream's `interval`) over a real gRPC
// stream of real faces: the detector runs on one frame in three, the faces of the frames between are the tracks'
// motion predictions (Face.box_predicted), on the moving people, with the same track ids and events as detection.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Task } from '../src/gen/kt/v1/common.js';
import { TrackEventType, type FaceAnalysisClient } from '../src/gen/kt/v1/face_analysis.js';
import type { RunningServer } from '../src/server/server.js';
import { countTrackErrors } from '../src/server/tracking/track-metrics.js';
import { liveTracks } from '../src/server/tracking/tracker.js';
import { faceAnalysisClient, runStream, startTestServer } from './helpers/server-fixture.js';
import { personAt, streamMessages, trackingConfig, type SequenceFrame, threeWalkers } from './helpers/track-sequence.js';

let server: RunningServer;
let client: FaceAnalysisClient;
let frames: SequenceFrame[];

beforeAll(async () => {
  server = await startTestServer({ tasks: ['age'] });
  client = faceAnalysisClient(server);
  ({ frames } = await threeWalkers({ a: { leave: 36 }, b: { velocity: { x: -6, y: 2 } }, c: { leave: 28, from: { x: 470, y: 400 } } }));
});

afterAll(async () => {
  client?.close();
  await server?.close();
});

describe('detector every third frame, motion prediction between', () => {
  it('reports predicted faces on the people between detections, with stable track ids and one new and end per person', async () => {
    const before = liveTracks();
    const reuse = { enabled: true, refreshAfterMs: 0, betterFaceRatio: 0, minObservations: 0, emotionEveryFrames: 0, detectEveryFrames: 3 };
    const tracking = trackingConfig({ reuse });
    const { responses, error } = await runStream(
      client,
      streamMessages(
        'interval',
        [Task.TASK_AGE],
        tracking,
        frames.map((f) => f.image),
      ),
    );
    expect(error).toBeUndefined();
    const analysed = responses.filter((r) => r.result).map((r) => r.result!);
    expect(analysed).toHaveLength(frames.length);
    const detector = server.config.detectorModel;
    const detectedFrames = analysed.filter((r) => r.models.some((m) => m.name === detector)).map((r) => r.sequence);
    // The first frame, then at most two predicted frames in a row; the detector also runs while a new face waits for
    // confirmation (a/b at the start, c when it enters at frame 11), so a few more frames than one in three are detected.
    expect(detectedFrames[0]).toBe(1);
    detectedFrames.slice(1).forEach((s, i) => expect(s - detectedFrames[i]!).toBeLessThanOrEqual(3));
    expect(detectedFrames.length).toBeLessThanOrEqual(frames.length / 3 + 4);
    for (const r of analysed) {
      const predictedFrame = !detectedFrames.includes(r.sequence);
      for (const f of r.faces) expect(f.boxPredicted).toBe(predictedFrame);
    }

    const predicted = analysed.flatMap((r) => r.faces.filter((f) => f.boxPredicted).map((f) => ({ r, f })));
    const onPerson = predicted.filter(({ r, f }) =>
      personAt(frames[r.sequence - 1]!, { x: f.box!.xPx, y: f.box!.yPx, width: f.box!.widthPx, height: f.box!.heightPx }),
    );
    console.log(
      `detect interval: ${detectedFrames.length} detected frames, ${predicted.length} predicted faces, ${onPerson.length} on a person`,
    );
    expect(predicted.length).toBeGreaterThan(30);
    // A person walking out of the picture is still predicted on the frames until the next detection: a few may miss.
    expect(onPerson.length).toBeGreaterThanOrEqual(predicted.length * 0.9);
    // Predicted faces carry the track's answers (reused: older than this frame).
    for (const { f } of predicted) expect(f.age?.years).toBeGreaterThan(0);

    const labelled = analysed.map((r) => ({
      faces: r.faces.map((f) => ({
        person: personAt(frames[r.sequence - 1]!, { x: f.box!.xPx, y: f.box!.yPx, width: f.box!.widthPx, height: f.box!.heightPx }),
        trackId: f.trackId,
      })),
    }));
    const counts = countTrackErrors(labelled);
    console.log('detect interval track counts', JSON.stringify(counts));
    expect(counts).toMatchObject({ idSwitches: 0, fragmentedPeople: 0, mergedTracks: 0 });
    expect(Object.keys(counts.idsPerPerson).sort()).toEqual(['a', 'b', 'c']);
    const events = responses.flatMap((r) => r.trackEvents);
    const ids = (t: TrackEventType): number[] =>
      events
        .filter((e) => e.type === t)
        .map((e) => e.trackId)
        .sort();
    expect(ids(TrackEventType.TRACK_EVENT_TYPE_NEW)).toHaveLength(3);
    expect(ids(TrackEventType.TRACK_EVENT_TYPE_END)).toEqual(ids(TrackEventType.TRACK_EVENT_TYPE_NEW));
    expect(liveTracks()).toBe(before);
  });
});
