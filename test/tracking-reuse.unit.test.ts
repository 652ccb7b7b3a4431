// Analysis reuse and per-track answers without models: which tasks are due per face, reused answers with their age,
// robust aggregates (median age, gender vote, identity vote over confident matches, smoothed emotion), and events.
import { describe, expect, it } from 'vitest';
import { Task } from '../src/gen/kt/v1/common.js';
import { Face, FacesTopicMode, FrameResult, TrackEventType, TrackingMode } from '../src/gen/kt/v1/face_analysis.js';
import type { TaskName } from '../src/contract/tasks.js';
import { TrackAggregates } from '../src/server/tracking/aggregates.js';
import { trackEventMessage } from '../src/server/tracking/mqtt-events.js';
import { trackingSettingsOf } from '../src/server/tracking/settings.js';
import { StreamTracks } from '../src/server/tracking/stream-tracks.js';

const reuse = {
  enabled: true,
  refreshAfterMs: 1000,
  betterFaceRatio: 1.25,
  minObservations: 2,
  emotionEveryFrames: 3,
  detectEveryFrames: 0,
};
const settings = trackingSettingsOf(
  { mode: TrackingMode.TRACKING_MODE_ON, maxAgeFrames: 3, minHits: 2, reuse, facesTopic: FacesTopicMode.FACES_TOPIC_MODE_UNSPECIFIED },
  true,
);
const tasks: TaskName[] = ['age', 'emotion', 'landmarks'];
const box = (size = 100) => ({ x: 100, y: 100, width: size, height: size });

/** One frame: associate, the tasks due, then a result where exactly the due tasks were answered. */
function frame(tracks: StreamTracks, n: number, timeMs: number, size = 100, age = 30 + n) {
  tracks.associate([{ box: box(size), score: 0.9 }], [], timeMs, n);
  const due = tracks.tasksDue(tasks, timeMs)[0]!;
  const face = Face.fromPartial({ box: { xPx: 100, yPx: 100, widthPx: size, heightPx: size }, score: 0.9 });
  if (due.has('age')) face.age = { years: age };
  if (due.has('emotion'))
    face.emotion = {
      label: 'happy',
      confidence: 0.8,
      scores: [
        { label: 'happy', score: 0.8 },
        { label: 'sad', score: 0.2 },
      ],
    };
  if (due.has('landmarks')) face.landmarks = { scheme: 'ibug68', points: [] };
  const result = FrameResult.fromPartial({ sequence: n, faces: [face] });
  const events = tracks.complete(result, tasks, timeMs);
  return { due: [...due].sort(), face: result.faces[0]!, events };
}

describe('analysis reuse per track', () => {
  it('re-runs person tasks on the first frames, on a better face and after refreshAfterMs; emotion every k frames', () => {
    const tracks = new StreamTracks(settings);
    expect(frame(tracks, 1, 0).due).toEqual(['age', 'emotion', 'landmarks']);
    expect(frame(tracks, 2, 100).due).toEqual(['age', 'landmarks']); // minObservations 2; emotion 1 frame old
    const third = frame(tracks, 3, 200);
    expect(third.due).toEqual(['landmarks']);
    // Reused answers are filled in, and say how old they are.
    expect(third.face.age?.years).toBe(32);
    const ageOf = (f: Face, task: Task) => f.answerAges.find((a) => a.task === task);
    expect(ageOf(third.face, Task.TASK_AGE)).toMatchObject({ frames: 1, ageMs: 100 });
    expect(ageOf(third.face, Task.TASK_LANDMARKS)).toMatchObject({ frames: 0, ageMs: 0 });
    expect(ageOf(third.face, Task.TASK_EMOTION)).toMatchObject({ frames: 2, ageMs: 200 });
    expect(frame(tracks, 4, 300).due).toEqual(['emotion', 'landmarks']); // every 3 frames
    expect(frame(tracks, 5, 400, 120).due).toEqual(['age', 'landmarks']); // 1.44x the area: a better face
    expect(frame(tracks, 6, 500, 120).due).toEqual(['landmarks']);
    expect(frame(tracks, 7, 1450, 120).due).toEqual(['age', 'emotion', 'landmarks']); // 1050 ms after the last age
  });

  it('without reuse every task is due on every frame, and every answer is fresh', () => {
    const tracks = new StreamTracks(trackingSettingsOf(undefined, true));
    for (let n = 1; n <= 4; n++) {
      const { due, face } = frame(tracks, n, n * 100);
      expect(due).toEqual(['age', 'emotion', 'landmarks']);
      expect(face.answerAges.every((a) => a.frames === 0)).toBe(true);
    }
  });

  it('with detectEveryFrames 3 predicts two frames out of three: boxes and keypoints follow the motion, no better face', () => {
    const every3 = trackingSettingsOf(
      {
        mode: TrackingMode.TRACKING_MODE_ON,
        maxAgeFrames: 3,
        minHits: 2,
        reuse: { ...reuse, detectEveryFrames: 3 },
        facesTopic: FacesTopicMode.FACES_TOPIC_MODE_UNSPECIFIED,
      },
      true,
    );
    const tracks = new StreamTracks(every3);
    // A face moving 10 px per frame to the right, detected on frames 1-3 (the tracker learns its velocity).
    const at = (n: number) => ({ x: 100 + 10 * n, y: 100, width: 100, height: 100 });
    const detected = (n: number) => {
      tracks.associate([{ box: at(n), score: 0.9, keypoints: [{ x: at(n).x + 30, y: 140 }] }], [], n * 100, n);
      tracks.complete(
        FrameResult.fromPartial({ sequence: n, faces: [Face.fromPartial({ score: 0.9, age: { years: 30 } })] }),
        tasks,
        n * 100,
      );
    };
    for (let n = 1; n <= 3; n++) detected(n); // the detector ran on frames 1-3 (frame 3: predictions may start)
    const fourth = tracks.predict(400, 4);
    const fifth = tracks.predict(500, 5);
    expect(tracks.predict(600, 6)).toBeUndefined(); // every third frame the detector is due again
    expect(fourth).toHaveLength(1);
    // The predictions run ahead of the last detection in the direction of motion; keypoints move with the box.
    expect(fourth![0]!.box.x).toBeGreaterThan(at(3).x);
    expect(fifth![0]!.box.x).toBeGreaterThan(fourth![0]!.box.x);
    expect(fifth![0]!.keypoints[0]!.x - fifth![0]!.box.x).toBeCloseTo(30, 5);
    expect(fifth![0]!.score).toBeCloseTo(0.9);
    // Person tasks are not re-run early on a predicted face (it is never a better face).
    const due = tracks.tasksDue(['age', 'landmarks'], 500)[0]!;
    expect([...due]).toEqual(['landmarks']);
  });

  it('sends new once confirmed, update when the aggregate changes, end when the stream ends (Frigate shape on MQTT)', () => {
    const tracks = new StreamTracks(settings);
    expect(frame(tracks, 1, 0).events).toEqual([]);
    const second = frame(tracks, 2, 100).events;
    expect(second.map((e) => e.type)).toEqual([TrackEventType.TRACK_EVENT_TYPE_NEW]);
    expect(frame(tracks, 3, 200).events).toEqual([]); // nothing a consumer sees changed
    const ended = tracks.endAll();
    expect(ended.map((e) => e.type)).toEqual([TrackEventType.TRACK_EVENT_TYPE_END]);
    expect(ended[0]!.endTimeUnixMs).toBe(200);
    const message = trackEventMessage('door', ended[0]!, { event: second[0]!, frameTimeMs: 100 }, false, 200);
    expect(message).toMatchObject({
      type: 'end',
      before: { track_id: 1, end_time: null },
      after: { track_id: 1, end_time: 0.2, label: 'face' },
    });
    expect(tracks.size).toBe(0);
  });
});

describe('track aggregates', () => {
  it('takes the median age, votes gender by confidence, identity over confident matches only, smooths emotion', () => {
    const a = new TrackAggregates();
    for (const years of [30, 31, 90, 29, 32]) a.observeAge(years);
    expect(a.age()).toBe(31); // the 90 (a blurred frame) does not move the median
    a.observeGender({ label: 'female', confidence: 0.9 });
    a.observeGender({ label: 'male', confidence: 0.55 });
    a.observeGender({ label: 'male', confidence: 0.6 });
    expect(a.gender()?.label).toBe('female'); // 0.4 of evidence against 0.15
    const match = (personId: string, known: boolean, similarity: number) => ({ known, personId, name: personId.toUpperCase(), similarity });
    a.observeIdentity(match('ada', true, 0.7));
    a.observeIdentity(match('bob', false, 0.5));
    a.observeIdentity(match('bob', false, 0.5));
    a.observeIdentity(match('ada', true, 0.8));
    expect(a.identity()).toMatchObject({ personId: 'ada', similarity: 0.8 });
    const emotion = (happy: number) => ({
      label: '',
      confidence: 0,
      scores: [
        { label: 'happy', score: happy },
        { label: 'sad', score: 1 - happy },
      ],
    });
    a.observeEmotion(emotion(0.9));
    a.observeEmotion(emotion(0.1)); // one odd frame
    expect(a.emotionResult()?.label).toBe('happy');
    a.observeEmotion(emotion(0.1));
    a.observeEmotion(emotion(0.1));
    expect(a.emotionResult()?.label).toBe('sad'); // a lasting change wins
  });
});
