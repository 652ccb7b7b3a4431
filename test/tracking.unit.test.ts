// The face tracker on synthetic boxes: people moving, crossing, occluded for a few frames, entering and leaving.
import { describe, expect, it } from 'vitest';
import { assign } from '../src/server/tracking/assignment.js';
import { BoxKalman, iou, type BoxRect } from '../src/server/tracking/kalman.js';
import { countTrackErrors, type LabelledFrame } from '../src/server/tracking/track-metrics.js';
import { FaceTracker, type Detection, type TrackerOptions } from '../src/server/tracking/tracker.js';

/** A person on a straight path: box at frame f, or undefined outside [enter, leave) and while occluded. */
interface Walker {
  person: string;
  enter: number;
  leave: number;
  start: BoxRect;
  velocity: { x: number; y: number };
  occluded?: [number, number];
  /** Detector score while visible (below the tracker's high threshold: a low-score box). */
  score?: number;
  embedding?: Float32Array;
}

function boxAt(w: Walker, f: number): BoxRect | undefined {
  if (f < w.enter || f >= w.leave) return undefined;
  if (w.occluded && f >= w.occluded[0] && f < w.occluded[1]) return undefined;
  const t = f - w.enter;
  return { ...w.start, x: w.start.x + w.velocity.x * t, y: w.start.y + w.velocity.y * t };
}

/** Deterministic jitter in pixels, so a failure reproduces. */
function jitter(seed: number, amount: number): number {
  const s = Math.sin(seed * 12.9898) * 43758.5453;
  return (s - Math.floor(s) - 0.5) * 2 * amount;
}

interface RunResult {
  frames: LabelledFrame[];
  news: number;
  ends: number;
  tracker: FaceTracker;
}

function run(walkers: Walker[], frames: number, options: Partial<TrackerOptions> = {}, highScore = 0.5): RunResult {
  const tracker = new FaceTracker(options);
  const out: LabelledFrame[] = [];
  let news = 0;
  let ends = 0;
  for (let f = 0; f < frames; f++) {
    const seen = walkers.flatMap((w, i) => {
      const box = boxAt(w, f);
      if (!box) return [];
      const noisy = { ...box, x: box.x + jitter(f * 7 + i, 2), y: box.y + jitter(f * 13 + i, 2) };
      return [{ person: w.person, d: { box: noisy, score: w.score ?? 0.9, embedding: w.embedding } as Detection }];
    });
    const high = seen.filter((s) => s.d.score >= highScore);
    const low = seen.filter((s) => s.d.score < highScore);
    const step = tracker.update(
      high.map((s) => s.d),
      low.map((s) => s.d),
    );
    news += step.confirmed.length;
    ends += step.ended.length;
    out.push({
      faces: [
        ...high.map((s, i) => ({ person: s.person, trackId: step.highTrackIds[i]! })),
        ...low.flatMap((s, i) => (step.lowTrackIds[i] ? [{ person: s.person, trackId: step.lowTrackIds[i] }] : [])),
      ],
    });
  }
  ends += tracker.endAll().length;
  return { frames: out, news, ends, tracker };
}

const face = (x: number, y: number, size = 60): BoxRect => ({ x, y, width: size, height: size });

describe('assignment (Hungarian)', () => {
  it('finds the minimum-cost pairing, not the greedy one', () => {
    // Greedy takes (0,0)=1 then (1,1)=10: 11. The optimum is (0,1)+(1,0) = 2 + 2 = 4.
    expect(
      assign(
        [
          [1, 2],
          [2, 10],
        ],
        100,
      ),
    ).toEqual([
      [0, 1],
      [1, 0],
    ]);
  });
  it('handles more rows than columns, forbidden pairs and the cost ceiling', () => {
    const pairs = assign([[0.1], [0.05], [Infinity]], 1);
    expect(pairs).toEqual([[1, 0]]);
    expect(assign([[0.9]], 0.5)).toEqual([]);
    expect(assign([], 1)).toEqual([]);
  });
});

describe('Kalman box filter', () => {
  it('learns a constant velocity and predicts through missing frames', () => {
    const k = new BoxKalman(face(0, 100));
    for (let f = 1; f <= 10; f++) {
      k.predict();
      k.update(face(f * 10, 100));
    }
    k.predict();
    k.predict();
    const predicted = k.predict();
    // Three frames without a measurement: about 130 px, where the face really is.
    expect(predicted.x).toBeGreaterThan(120);
    expect(predicted.x).toBeLessThan(140);
    expect(iou(predicted, face(130, 100))).toBeGreaterThan(0.7);
  });
});

describe('FaceTracker', () => {
  it('keeps one id per person on parallel paths, with no switches', () => {
    const walkers: Walker[] = [
      { person: 'a', enter: 0, leave: 60, start: face(0, 50), velocity: { x: 4, y: 0 } },
      { person: 'b', enter: 0, leave: 60, start: face(0, 250), velocity: { x: 5, y: 0 } },
    ];
    const { frames, news, ends } = run(walkers, 60);
    const counts = countTrackErrors(frames);
    expect(counts.idSwitches).toBe(0);
    expect(counts.fragmentedPeople).toBe(0);
    expect(counts.mergedTracks).toBe(0);
    expect(news).toBe(2);
    expect(ends).toBe(2);
  });

  it('bridges an occlusion of a few frames with the motion model (no fragmentation)', () => {
    const walkers: Walker[] = [{ person: 'a', enter: 0, leave: 50, start: face(0, 50), velocity: { x: 6, y: 0 }, occluded: [20, 25] }];
    const counts = countTrackErrors(run(walkers, 50).frames);
    expect(counts.idsPerPerson).toEqual({ a: 1 });
    // Without a memory of lost tracks the same occlusion fragments the person: the test can fail.
    const forgetful = countTrackErrors(run(walkers, 50, { maxAgeFrames: 1 }).frames);
    expect(forgetful.idsPerPerson.a).toBe(2);
  });

  it('keeps identities apart when two people cross', () => {
    const walkers: Walker[] = [
      { person: 'a', enter: 0, leave: 60, start: face(0, 100), velocity: { x: 8, y: 0 } },
      { person: 'b', enter: 0, leave: 60, start: face(480, 140), velocity: { x: -8, y: 0 } },
    ];
    const counts = countTrackErrors(run(walkers, 60).frames);
    expect(counts.idSwitches).toBe(0);
    expect(counts.mergedTracks).toBe(0);
  });

  it('re-attaches a person who moved while hidden by appearance, when embeddings are given', () => {
    const e = (k: number): Float32Array => Float32Array.from({ length: 16 }, (_, i) => (i === k ? 1 : 0.05));
    const walkers: Walker[] = [
      // Hidden for 6 frames while jumping 200 px: IoU alone cannot bridge it.
      { person: 'a', enter: 0, leave: 20, start: face(0, 50), velocity: { x: 2, y: 0 }, embedding: e(0) },
      { person: 'a2', enter: 26, leave: 50, start: face(300, 60), velocity: { x: 2, y: 0 }, embedding: e(0) },
      { person: 'b', enter: 0, leave: 50, start: face(0, 300), velocity: { x: 2, y: 0 }, embedding: e(1) },
    ];
    const frames = run(walkers, 50).frames.map((f) => ({ faces: f.faces.map((x) => ({ ...x, person: x.person?.replace('a2', 'a') })) }));
    const counts = countTrackErrors(frames);
    expect(counts.idsPerPerson).toEqual({ a: 1, b: 1 });
    // The same jump without embeddings fragments.
    const plain = walkers.map(({ embedding: _e, ...w }) => w);
    const noAppearance = run(plain, 50).frames.map((f) => ({
      faces: f.faces.map((x) => ({ ...x, person: x.person?.replace('a2', 'a') })),
    }));
    expect(countTrackErrors(noAppearance).idsPerPerson.a).toBe(2);
  });

  it('continues a track through low-score frames (second association) but never starts one from them', () => {
    const walkers: Walker[] = [
      { person: 'a', enter: 0, leave: 20, start: face(0, 50), velocity: { x: 3, y: 0 } },
      // The same person's face turned away: detected, but below the high threshold, for 20 frames.
      { person: 'a', enter: 20, leave: 40, start: face(60, 50), velocity: { x: 3, y: 0 }, score: 0.3 },
      { person: 'a', enter: 40, leave: 50, start: face(120, 50), velocity: { x: 3, y: 0 } },
      { person: 'ghost', enter: 0, leave: 50, start: face(400, 400), velocity: { x: 0, y: 0 }, score: 0.3 },
    ];
    const { frames, news } = run(walkers, 50, { maxAgeFrames: 5 });
    const counts = countTrackErrors(frames);
    expect(counts.idsPerPerson).toEqual({ a: 1 });
    expect(news).toBe(1);
  });

  it('confirms after minHits, drops one-frame noise silently, ends tracks after maxAgeFrames', () => {
    const tracker = new FaceTracker({ minHits: 3, maxAgeFrames: 4 });
    const noise = tracker.update([{ box: face(500, 500), score: 0.9 }]);
    expect(noise.confirmed).toEqual([]);
    const steps = [1, 2, 3].map((i) => tracker.update([{ box: face(i * 2, 0), score: 0.9 }]));
    expect(steps.map((s) => s.confirmed.length)).toEqual([0, 0, 1]);
    expect(tracker.size).toBe(1); // the one-frame box is gone
    const id = steps[2]!.highTrackIds[0]!;
    const ended: number[] = [];
    for (let f = 0; f < 5; f++) ended.push(...tracker.update([]).ended.map((t) => t.id));
    expect(ended).toEqual([id]);
    expect(tracker.size).toBe(0);
  });

  it('handles people entering and leaving: one new and one end event per person', () => {
    const walkers: Walker[] = [
      { person: 'a', enter: 0, leave: 30, start: face(0, 50), velocity: { x: 5, y: 0 } },
      { person: 'b', enter: 10, leave: 60, start: face(600, 250), velocity: { x: -5, y: 0 } },
      { person: 'c', enter: 35, leave: 70, start: face(100, 400), velocity: { x: 0, y: -3 } },
    ];
    const { frames, news, ends, tracker } = run(walkers, 100, { maxAgeFrames: 10 });
    const counts = countTrackErrors(frames);
    expect(counts.fragmentedPeople).toBe(0);
    expect(counts.idSwitches).toBe(0);
    expect(news).toBe(3);
    expect(ends).toBe(3);
    expect(tracker.size).toBe(0);
  });
});
