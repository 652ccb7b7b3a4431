// Per-stream face tracker, ByteTrack style: Kalman-predicted boxes matched to high-score detections by IoU (Hungarian),
// then the remaining tracks to low-score detections, then lost tracks to unmatched faces by appearance (embeddings).
import { cosineSimilarity as cosine, l2Normalize } from '../../models/processing/index.js';
import { assign } from './assignment.js';
import { BoxKalman, iou, type BoxRect } from './kalman.js';

/** Tracker settings; every field has a default in defaultTrackerOptions. */
export interface TrackerOptions {
  /** Frames a track may go unmatched before it ends (occlusion, missed detections). Default 15. */
  maxAgeFrames: number;
  /** Matched frames before a track is confirmed; unconfirmed tracks that miss a frame are dropped silently. Default 3. */
  minHits: number;
  /** Minimum IoU of a predicted box and a high-score detection to match. Default 0.2. */
  matchIou: number;
  /** Minimum IoU for the second association with low-score detections (stricter: they are less certain). Default 0.4. */
  lowMatchIou: number;
  /** Minimum cosine similarity of embeddings to re-attach a face to a lost track. Default 0.6. */
  reidSimilarity: number;
  /** Below this cosine similarity a face never matches a track by motion alone (a different person). Default 0.2. */
  appearanceGate: number;
}

export const defaultTrackerOptions: Readonly<TrackerOptions> = Object.freeze({
  maxAgeFrames: 15,
  minHits: 3,
  matchIou: 0.2,
  lowMatchIou: 0.4,
  reidSimilarity: 0.6,
  appearanceGate: 0.2,
});

/** A face box handed to the tracker. */
export interface Detection {
  box: BoxRect;
  score: number;
  /** L2-normalised descriptor, when one was computed for this face. */
  embedding?: Float32Array | undefined;
}

/** tentative: not yet confirmed; active: matched this frame; lost: unmatched for a few frames; ended: gone. */
export type TrackState = 'tentative' | 'active' | 'lost' | 'ended';

export interface Track {
  readonly id: number;
  state: TrackState;
  /** Whether the track was ever confirmed (only confirmed tracks produce events). */
  confirmed: boolean;
  /** The last matched detection box (not the prediction). */
  box: BoxRect;
  score: number;
  bestScore: number;
  hits: number;
  /** Frames since the last match (0: matched this frame). */
  missed: number;
  /** Tracker frame index of the first and the last match. */
  firstFrame: number;
  lastFrame: number;
  /** Running mean of the embeddings seen, L2-normalised. */
  embedding: Float32Array | undefined;
  readonly kalman: BoxKalman;
  /** The predicted box for the current frame. */
  predicted: BoxRect;
}

/** What one frame did to the tracks. */
export interface TrackerStep {
  /** Track id of each high-score detection, in input order (a new tentative track when nothing matched). */
  highTrackIds: number[];
  /** Track id of each low-score detection that continued a track; 0 for the others. */
  lowTrackIds: number[];
  /** Tracks confirmed in this frame. */
  confirmed: Track[];
  /** Confirmed tracks that ended in this frame (too old). */
  ended: Track[];
}

/** Live tracks over every tracker in the process: a gauge for leak checks (1,000 streams opened and closed leave 0). */
let liveTrackCount = 0;
export const liveTracks = (): number => liveTrackCount;

export class FaceTracker {
  readonly options: Readonly<TrackerOptions>;
  private readonly tracks = new Map<number, Track>();
  private nextId = 1;
  private frame = 0;

  constructor(options: Partial<TrackerOptions> = {}) {
    this.options = Object.freeze({ ...defaultTrackerOptions, ...options });
  }

  /** Tracks not ended, confirmed or not. */
  get size(): number {
    return this.tracks.size;
  }

  get(id: number): Track | undefined {
    return this.tracks.get(id);
  }

  /** Whether a track waits for confirmation (it needs detections: motion predictions do not confirm it). */
  hasTentative(): boolean {
    for (const t of this.tracks.values()) if (!t.confirmed) return true;
    return false;
  }

  /** Tracks that are confirmed and not ended. */
  confirmedTracks(): Track[] {
    return [...this.tracks.values()].filter((t) => t.confirmed);
  }

  /** One frame: high-score detections (reported faces) and low-score ones (only to keep tracks alive). */
  update(high: readonly Detection[], low: readonly Detection[] = []): TrackerStep {
    this.frame += 1;
    const tracks = [...this.tracks.values()];
    for (const t of tracks) t.predicted = t.kalman.predict();
    const highTrackIds = new Array<number>(high.length).fill(0);
    const lowTrackIds = new Array<number>(low.length).fill(0);
    const confirmed: Track[] = [];

    // 1. Every track against the high-score faces.
    const first = this.associate(tracks, high, 1 - this.options.matchIou);
    for (const [ti, di] of first) highTrackIds[di] = this.match(tracks[ti]!, high[di]!, confirmed);
    const matched = new Set(first.map(([ti]) => tracks[ti]!));

    // 2. Tracks that were active last frame and are still unmatched, against the low-score faces.
    const recent = tracks.filter((t) => !matched.has(t) && t.missed === 0 && t.state !== 'tentative');
    const second = this.associate(recent, low, 1 - this.options.lowMatchIou);
    for (const [ti, di] of second) {
      lowTrackIds[di] = this.match(recent[ti]!, low[di]!, confirmed);
      matched.add(recent[ti]!);
    }

    // 3. Lost tracks against the faces still unmatched, by appearance alone (a face that moved while hidden).
    const freeFaces = high.map((_, i) => i).filter((i) => highTrackIds[i] === 0 && high[i]!.embedding);
    const lost = tracks.filter((t) => !matched.has(t) && t.confirmed && t.embedding);
    for (const [ti, fi] of this.byAppearance(
      lost,
      freeFaces.map((i) => high[i]!),
    )) {
      highTrackIds[freeFaces[fi]!] = this.match(lost[ti]!, high[freeFaces[fi]!]!, confirmed);
      matched.add(lost[ti]!);
    }

    // 4. Faces nobody claimed start tentative tracks; tracks nobody matched age.
    high.forEach((d, i) => {
      if (highTrackIds[i] === 0) highTrackIds[i] = this.start(d, confirmed).id;
    });
    const ended = this.age(tracks.filter((t) => !matched.has(t)));
    return { highTrackIds, lowTrackIds, confirmed, ended };
  }

  /**
   * A frame the detector did not run on: every track moves to its motion prediction. Tracks matched on the last
   * detected frame are shown at their predicted boxes (the faces to report); lost ones age as on any frame, so
   * maxAgeFrames counts frames whether the detector ran on them or not.
   */
  coast(): { shown: { track: Track; box: BoxRect }[]; ended: Track[] } {
    this.frame += 1;
    const shown: { track: Track; box: BoxRect }[] = [];
    for (const t of this.tracks.values()) {
      t.predicted = t.kalman.predict();
      if (t.confirmed && t.missed === 0) shown.push({ track: t, box: t.predicted });
    }
    return { shown, ended: this.age([...this.tracks.values()].filter((t) => t.missed > 0)) };
  }

  /**
   * Appearance re-association after the fact: when a face that started a new track this frame turns out (once its
   * embedding is computed) to look like a lost confirmed track, the lost track takes the face over and the new one
   * goes. Returns the id the face now belongs to.
   */
  reidentify(trackId: number, embedding: Float32Array): number {
    const track = this.tracks.get(trackId);
    if (!track) return trackId;
    if (track.hits > 1 || track.confirmed) {
      blendEmbedding(track, embedding);
      return trackId;
    }
    const lost = [...this.tracks.values()].filter((t) => t.confirmed && t.missed > 0 && t.embedding);
    let best: Track | undefined;
    let bestSimilarity = this.options.reidSimilarity;
    for (const t of lost) {
      const s = cosine(t.embedding!, embedding);
      if (s >= bestSimilarity) [best, bestSimilarity] = [t, s];
    }
    if (!best) {
      blendEmbedding(track, embedding);
      return trackId;
    }
    this.remove(track);
    this.match(best, { box: track.box, score: track.score, embedding }, []);
    return best.id;
  }

  /** Ends every track (the stream ended); returns the confirmed ones. */
  endAll(): Track[] {
    const ended: Track[] = [];
    for (const t of [...this.tracks.values()]) {
      this.remove(t);
      if (t.confirmed) ended.push(t);
    }
    return ended;
  }

  private associate(tracks: readonly Track[], faces: readonly Detection[], maxCost: number): [number, number][] {
    if (tracks.length === 0 || faces.length === 0) return [];
    const { appearanceGate } = this.options;
    const cost = tracks.map((t) =>
      faces.map((d) => {
        const overlap = iou(t.predicted, d.box);
        if (overlap <= 0) return Infinity;
        // Motion says yes but the faces clearly differ: two people crossing.
        if (t.embedding && d.embedding && cosine(t.embedding, d.embedding) < appearanceGate) return Infinity;
        return 1 - overlap;
      }),
    );
    return assign(cost, maxCost);
  }

  private byAppearance(tracks: readonly Track[], faces: readonly Detection[]): [number, number][] {
    if (tracks.length === 0 || faces.length === 0) return [];
    const cost = tracks.map((t) => faces.map((d) => 1 - cosine(t.embedding!, d.embedding!)));
    return assign(cost, 1 - this.options.reidSimilarity);
  }

  private match(track: Track, d: Detection, confirmed: Track[]): number {
    track.kalman.update(d.box);
    track.box = d.box;
    track.score = d.score;
    track.bestScore = Math.max(track.bestScore, d.score);
    track.hits += 1;
    track.missed = 0;
    track.lastFrame = this.frame;
    if (d.embedding) blendEmbedding(track, d.embedding);
    track.state = 'active';
    if (!track.confirmed && track.hits >= this.options.minHits) {
      track.confirmed = true;
      confirmed.push(track);
    } else if (!track.confirmed) {
      track.state = 'tentative';
    }
    return track.id;
  }

  private start(d: Detection, confirmed: Track[]): Track {
    const kalman = new BoxKalman(d.box);
    const track: Track = {
      id: this.nextId++,
      state: 'tentative',
      confirmed: false,
      box: d.box,
      score: d.score,
      bestScore: d.score,
      hits: 0,
      missed: 0,
      firstFrame: this.frame,
      lastFrame: this.frame,
      embedding: undefined,
      kalman,
      predicted: d.box,
    };
    this.tracks.set(track.id, track);
    liveTrackCount += 1;
    // The first observation: the filter already holds the box, so count the hit without a second update.
    track.hits = 1;
    if (d.embedding) blendEmbedding(track, d.embedding);
    if (this.options.minHits <= 1) {
      track.confirmed = true;
      track.state = 'active';
      confirmed.push(track);
    }
    return track;
  }

  /** Unmatched tracks: tentative ones go at once, confirmed ones are lost and end after maxAgeFrames. */
  private age(unmatched: readonly Track[]): Track[] {
    const ended: Track[] = [];
    for (const t of unmatched) {
      t.missed += 1;
      if (!t.confirmed) {
        this.remove(t);
        continue;
      }
      t.state = 'lost';
      if (t.missed > this.options.maxAgeFrames) {
        this.remove(t);
        ended.push(t);
      }
    }
    return ended;
  }

  private remove(track: Track): void {
    if (!this.tracks.delete(track.id)) return;
    track.state = 'ended';
    liveTrackCount -= 1;
  }
}

function blendEmbedding(track: Track, embedding: Float32Array): void {
  if (!track.embedding || track.embedding.length !== embedding.length) {
    track.embedding = l2Normalize(embedding);
    return;
  }
  // A slow running mean: one odd frame (blur, profile) does not pull the track's appearance away.
  const mixed = track.embedding.map((v, i) => 0.8 * v + 0.2 * embedding[i]!);
  track.embedding = l2Normalize(mixed);
}
