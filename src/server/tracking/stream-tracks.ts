// The tracks of one stream: assigns each face to a track, decides which task answers are due (analysis reuse),
// fills reused answers with their age, aggregates answers per track and produces new/update/end events.
import { Box } from '../../gen/kt/v1/common.js';
import { TaskAnswerAge, TrackEvent, TrackEventType, type Face, type FrameResult } from '../../gen/kt/v1/face_analysis.js';
import { enumOfTask, type TaskName } from '../../contract/tasks.js';
import type { Point } from '../../models/processing/index.js';
import { embeddingOf } from '../pipeline.js';
import { TrackAggregates } from './aggregates.js';
import type { BoxRect } from './kalman.js';
import { snapshotImprovement } from './snapshot.js';
import type { StreamTrackingSettings } from './settings.js';
import { FaceTracker, type Detection, type Track } from './tracker.js';

/** Tasks whose answers belong to the person rather than the frame: re-run when a better face shows or after a while. */
const personTasks: ReadonlySet<TaskName> = new Set(['age', 'gender', 'embedding', 'identity']);

/** The face-task answer fields of a Face. */
type AnswerField = 'age' | 'gender' | 'emotion' | 'landmarks' | 'mesh' | 'embedding' | 'identity';

interface Answer {
  value: NonNullable<Face[AnswerField]>;
  /** Stream frame index and time (ms) it was computed on, and the quality of the face it came from. */
  frame: number;
  timeMs: number;
  quality: number;
}

interface TrackMemory {
  aggregates: TrackAggregates;
  answers: Partial<Record<TaskName, Answer>>;
  /** Frames on which the person tasks ran for this track. */
  personRuns: number;
  startTimeMs: number;
  lastTimeMs: number;
  lastSequence: number;
  box: BoxRect;
  /** The keypoints of the last detection, relative to its box (0..1): moved with the box on predicted frames. */
  keypoints: Point[];
  /** Quality (area x score) of the last detection: a predicted face reuses it, so it never counts as a better face. */
  quality: number;
  /** The last event sent for the track (`before` of the next one); undefined until confirmed. */
  lastEvent: TrackEvent | undefined;
  /** The best face kept so far, and the one the last event carried. */
  snapshot: { quality: number; jpeg: Buffer } | undefined;
  sentSnapshot: Buffer | undefined;
}

/** A face box and score, as the detector reports them. */
export interface FaceBox {
  box: BoxRect;
  score: number;
  keypoints?: readonly Point[];
}

/** Box area times detector score: a bigger, clearer face gives better answers. */
const quality = (f: FaceBox): number => f.box.width * f.box.height * f.score;

const boxRectOf = (face: Face): BoxRect => ({
  x: face.box?.xPx ?? 0,
  y: face.box?.yPx ?? 0,
  width: face.box?.widthPx ?? 0,
  height: face.box?.heightPx ?? 0,
});

export class StreamTracks {
  readonly settings: StreamTrackingSettings;
  private readonly tracker: FaceTracker;
  private readonly memory = new Map<number, TrackMemory>();
  private frameIndex = 0;
  /** Frames since the detector last ran (predicted frames in a row); the first frame of a stream is always detected. */
  private predictedInARow = Number.MAX_SAFE_INTEGER;
  /** Track ids of the current frame's faces once associated, and the end events the association caused. */
  private current: { ids: number[]; qualities: number[]; confirmed: Set<number>; ended: TrackEvent[] } | undefined;

  constructor(settings: StreamTrackingSettings) {
    this.settings = settings;
    this.tracker = new FaceTracker(settings.tracker);
  }

  /** Live tracks, confirmed or not. */
  get size(): number {
    return this.tracker.size;
  }

  /**
   * Step 1 of a frame: assigns the reported faces (and low-score ones, which only keep tracks alive) to tracks.
   * Returns the track id per reported face.
   */
  associate(faces: readonly FaceBox[], low: readonly FaceBox[], timeMs: number, sequence: number): number[] {
    this.frameIndex += 1;
    this.predictedInARow = 0;
    const toDetection = (f: FaceBox): Detection => ({ box: f.box, score: f.score });
    const step = this.tracker.update(faces.map(toDetection), low.map(toDetection));
    // End events of a frame that failed after its association are not lost: they go out with this frame's.
    const ended = [...(this.current?.ended ?? []), ...step.ended.map((t) => this.endEvent(t))];
    for (const [i, id] of step.highTrackIds.entries()) {
      this.remember(id, faces[i]!.box, timeMs, sequence);
      Object.assign(this.memory.get(id)!, { keypoints: relativePoints(faces[i]!), quality: quality(faces[i]!) });
    }
    for (const [i, id] of step.lowTrackIds.entries()) if (id) this.remember(id, low[i]!.box, timeMs, sequence);
    // Tentative tracks the tracker dropped (one-frame noise) leave no memory behind.
    for (const id of this.memory.keys()) if (!this.tracker.get(id)) this.memory.delete(id);
    this.current = {
      ids: step.highTrackIds,
      qualities: faces.map(quality),
      confirmed: new Set(step.confirmed.map((t) => t.id)),
      ended,
    };
    return step.highTrackIds;
  }

  /**
   * Step 1 of a frame the detector skips (reuse's detectEveryFrames): the faces of confirmed tracks at their motion
   * predictions, keypoints moved with their boxes. Undefined when the detector is due on this frame: every
   * detectEveryFrames-th frame, and every frame while a new track waits for confirmation.
   */
  predict(timeMs: number, sequence: number): { box: BoxRect; score: number; keypoints: Point[] }[] | undefined {
    const every = this.settings.reuse?.detectEveryFrames ?? 1;
    // A new face is confirmed by detections on consecutive frames: while one waits, the detector runs every frame.
    if (this.predictedInARow + 1 >= every || this.tracker.hasTentative()) return undefined;
    this.predictedInARow += 1;
    this.frameIndex += 1;
    const { shown, ended } = this.tracker.coast();
    const endEvents = [...(this.current?.ended ?? []), ...ended.map((t) => this.endEvent(t))];
    for (const { track, box } of shown) this.remember(track.id, box, timeMs, sequence);
    const ids = shown.map((s) => s.track.id);
    // A predicted face has the quality of its last detection: it never counts as a better face.
    this.current = {
      ids,
      qualities: ids.map((id) => this.memory.get(id)!.quality),
      confirmed: new Set(),
      ended: endEvents,
    };
    return shown.map(({ track, box }) => ({
      box,
      score: track.score,
      keypoints: this.memory.get(track.id)!.keypoints.map((p) => ({ ...p, x: box.x + p.x * box.width, y: box.y + p.y * box.height })),
    }));
  }

  /** Step 2 (analysis reuse): the tasks due now on each face of the current frame, out of `tasks`. */
  tasksDue(tasks: readonly TaskName[], timeMs: number): Set<TaskName>[] {
    const current = this.current;
    if (!current) return [];
    const reuse = this.settings.reuse;
    return current.ids.map((id, i) => {
      const m = this.memory.get(id)!;
      if (!reuse) return new Set(tasks);
      const q = current.qualities[i]!;
      const personDue = [...personTasks].some((task) => {
        if (!tasks.includes(task)) return false;
        const a = m.answers[task];
        return (
          !a || m.personRuns < reuse.minObservations || timeMs - a.timeMs >= reuse.refreshAfterMs || q >= a.quality * reuse.betterFaceRatio
        );
      });
      return new Set(
        tasks.filter((task) => {
          if (personTasks.has(task)) return personDue;
          const a = m.answers[task];
          if (task === 'emotion') return !a || this.frameIndex - a.frame >= reuse.emotionEveryFrames;
          return true;
        }),
      );
    });
  }

  /**
   * Step 3: writes track ids, reused answers with their ages and the track summaries into the result; returns the
   * frame's track events (end events of tracks that aged out, new for confirmed tracks, update on a change).
   */
  complete(result: FrameResult, tasks: readonly TaskName[], timeMs: number): TrackEvent[] {
    if (!this.current)
      this.associate(
        result.faces.map((f) => ({ box: boxRectOf(f), score: f.score })),
        [],
        timeMs,
        result.sequence,
      );
    const current = this.current!;
    this.current = undefined;
    const seen = new Set<number>();
    result.faces.forEach((face, i) => {
      let id = current.ids[i]!;
      const embedding = embeddingOf(face);
      if (embedding) {
        const merged = this.tracker.reidentify(id, embedding);
        if (merged !== id) {
          this.memory.delete(id);
          this.remember(merged, boxRectOf(face), timeMs, result.sequence);
          id = merged;
        }
      }
      this.fillFace(face, id, tasks, timeMs, current.qualities[i]!);
      seen.add(id);
    });
    const events = [...current.ended];
    for (const id of seen) {
      const event = this.eventFor(id, current.confirmed.has(id));
      if (event) events.push(event);
    }
    return events;
  }

  /** Faces of confirmed tracks in the current frame that are better than their track's kept snapshot (snapshotImprovement). */
  snapshotsDue(faces: readonly FaceBox[]): { id: number; box: BoxRect; quality: number }[] {
    const current = this.current;
    if (!current) return [];
    return current.ids.flatMap((id, i) => {
      // Only confirmed tracks keep a best face: a one-frame false detection costs no JPEG encode.
      if (!this.tracker.get(id)?.confirmed) return [];
      const kept = this.memory.get(id)?.snapshot;
      const q = current.qualities[i]!;
      return !kept || q >= kept.quality * snapshotImprovement ? [{ id, box: faces[i]!.box, quality: q }] : [];
    });
  }

  /** Keeps `jpeg` as the best face of track `id`. */
  keepSnapshot(id: number, quality: number, jpeg: Buffer): void {
    const m = this.memory.get(id);
    if (m) m.snapshot = { quality, jpeg };
  }

  /** Ends every track (the stream ended or was cancelled): their end events. */
  endAll(): TrackEvent[] {
    const events = this.tracker.endAll().map((t) => this.endEvent(t));
    this.memory.clear();
    this.current = undefined;
    return events;
  }

  private remember(id: number, box: BoxRect, timeMs: number, sequence: number): void {
    let m = this.memory.get(id);
    if (!m) {
      m = {
        aggregates: new TrackAggregates(),
        answers: {},
        personRuns: 0,
        startTimeMs: timeMs,
        lastTimeMs: timeMs,
        lastSequence: sequence,
        box,
        keypoints: [],
        quality: 0,
        lastEvent: undefined,
        snapshot: undefined,
        sentSnapshot: undefined,
      };
      this.memory.set(id, m);
    }
    m.lastTimeMs = timeMs;
    m.lastSequence = sequence;
    m.box = box;
  }

  private fillFace(face: Face, id: number, tasks: readonly TaskName[], timeMs: number, q: number): void {
    const m = this.memory.get(id)!;
    const track = this.tracker.get(id);
    let ranPersonTasks = false;
    for (const task of tasks) {
      const field = task as AnswerField;
      const fresh = face[field];
      if (fresh !== undefined) {
        m.answers[task] = { value: fresh, frame: this.frameIndex, timeMs, quality: q };
        this.observe(m.aggregates, face, task);
        if (personTasks.has(task)) ranPersonTasks = true;
      } else {
        const old = m.answers[task];
        if (old) (face as unknown as Record<AnswerField, unknown>)[field] = old.value;
      }
    }
    if (ranPersonTasks) m.personRuns += 1;
    m.aggregates.hits = track?.hits ?? m.aggregates.hits;
    m.aggregates.bestScore = Math.max(m.aggregates.bestScore, face.score);
    face.trackId = id;
    face.answerAges = tasks.flatMap((task) => {
      const a = m.answers[task];
      return a ? [TaskAnswerAge.fromPartial({ task: enumOfTask[task], frames: this.frameIndex - a.frame, ageMs: timeMs - a.timeMs })] : [];
    });
    face.track = m.aggregates.summary();
  }

  private observe(aggregates: TrackAggregates, face: Face, task: TaskName): void {
    if (task === 'age' && face.age) aggregates.observeAge(face.age.years);
    else if (task === 'gender' && face.gender) aggregates.observeGender(face.gender);
    else if (task === 'identity' && face.identity) aggregates.observeIdentity(face.identity);
    else if (task === 'emotion' && face.emotion) aggregates.observeEmotion(face.emotion);
  }

  /** new when the track was confirmed this frame; update when what a consumer shows changed; else nothing. */
  private eventFor(id: number, confirmedNow: boolean): TrackEvent | undefined {
    const m = this.memory.get(id);
    const track = this.tracker.get(id);
    if (!m || !track?.confirmed) return undefined;
    const betterFace = m.snapshot !== undefined && m.snapshot.jpeg !== m.sentSnapshot;
    if (!confirmedNow && m.lastEvent && !betterFace && !changed(m.lastEvent, m.aggregates)) return undefined;
    // A track re-attached by appearance after its `new` was sent continues with updates.
    const type = m.lastEvent ? TrackEventType.TRACK_EVENT_TYPE_UPDATE : TrackEventType.TRACK_EVENT_TYPE_NEW;
    return (m.lastEvent = this.event(type, id, m, 0));
  }

  private endEvent(track: Track): TrackEvent {
    const m = this.memory.get(track.id);
    this.memory.delete(track.id);
    if (!m) return TrackEvent.fromPartial({ type: TrackEventType.TRACK_EVENT_TYPE_END, trackId: track.id });
    return this.event(TrackEventType.TRACK_EVENT_TYPE_END, track.id, m, m.lastTimeMs);
  }

  private event(type: TrackEventType, id: number, m: TrackMemory, endTimeMs: number): TrackEvent {
    // The best face travels with new and end events, and with an update when it is a better one than last sent.
    const withSnapshot = m.snapshot && (type !== TrackEventType.TRACK_EVENT_TYPE_UPDATE || m.snapshot.jpeg !== m.sentSnapshot);
    if (withSnapshot) m.sentSnapshot = m.snapshot!.jpeg;
    return TrackEvent.fromPartial({
      ...(withSnapshot ? { snapshotJpeg: m.snapshot!.jpeg } : {}),
      type,
      trackId: id,
      startTimeUnixMs: Math.round(m.startTimeMs),
      endTimeUnixMs: Math.round(endTimeMs),
      summary: m.aggregates.summary(),
      box: Box.fromPartial({ xPx: m.box.x, yPx: m.box.y, widthPx: m.box.width, heightPx: m.box.height }),
      lastSequence: m.lastSequence,
    });
  }
}

/** Keypoints relative to their box, so that they can follow a predicted box. */
function relativePoints(face: FaceBox): Point[] {
  const { x, y, width, height } = face.box;
  return (face.keypoints ?? []).map((p) => ({ ...p, x: (p.x - x) / Math.max(width, 1), y: (p.y - y) / Math.max(height, 1) }));
}

/** Whether the aggregates differ from the last event in something a consumer shows. */
function changed(last: TrackEvent, now: TrackAggregates): boolean {
  const before = last.summary;
  const after = now.summary();
  if (!before) return true;
  return (
    (before.identity?.personId ?? '') !== (after.identity?.personId ?? '') ||
    (before.gender?.label ?? '') !== (after.gender?.label ?? '') ||
    (before.emotion?.label ?? '') !== (after.emotion?.label ?? '') ||
    Math.abs(before.ageYears - after.ageYears) >= 1 ||
    after.bestScore >= before.bestScore + 0.02
  );
}
