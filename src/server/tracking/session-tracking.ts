// What a StreamAnalyze session does for tracks: analyses frames through the tracker (with analysis reuse when asked),
// publishes track events on MQTT, counts task-model runs, and ends every track when the stream ends.
import type { TrackEventMessage } from '../../contract/track-events.js';
import { TrackEventType, type Frame, type FrameResult, type StreamConfig, type TrackEvent } from '../../gen/kt/v1/face_analysis.js';
import type { RgbImage } from '../../core/image.js';
import type { DetectedFace } from '../../models/processing/index.js';
import type { TaskName } from '../../contract/tasks.js';
import type { AnalysisPlan } from '../analysis-plan.js';
import type { FramePipeline, PreparedFrame } from '../pipeline.js';
import { trackEventMessage } from './mqtt-events.js';
import { faceSnapshot } from './snapshot.js';
import { discoveryFor } from './home-assistant-link.js';
import type { HomeAssistantDiscovery, StreamFaceState } from '../../events/mqtt/home-assistant.js';
import { trackingSettingsOf, type StreamTrackingSettings } from './settings.js';
import { StreamTracks } from './stream-tracks.js';

/** Where track events go besides the gRPC stream: the MQTT publisher (its optional track methods). */
export interface TrackEventSink {
  publishTrackEvent(streamId: string, message: TrackEventMessage): void;
  /** The best face of the stream's latest track event, retained (`<prefix>/<node>/<stream>/snapshot`). */
  publishSnapshot?(streamId: string, jpeg: Uint8Array): void;
}

/** The sink's track-event side, when it has one (a faces-only sink publishes no track events). */
export function trackSinkOf(sink: unknown): TrackEventSink | undefined {
  const candidate = sink as Partial<TrackEventSink> | undefined;
  return typeof candidate?.publishTrackEvent === 'function' ? (candidate as TrackEventSink) : undefined;
}

export interface SessionTrackingDeps {
  pipeline: FramePipeline;
  /** The server's `streamTracking`. */
  trackingByDefault: boolean;
  /** The server's `homeAssistantDiscovery` and `homeAssistantPrefix`; absent: no discovery. */
  homeAssistant?: { enabled: boolean; prefix: string };
  /** Read on every publish: the server may attach or detach its publisher while streams are open. */
  sink: () => unknown;
}

/** The lowest detector score a box may have to keep a track alive (ByteTrack's low-score association). */
const lowScoreOf = (minScore: number): number => Math.max(0.1, minScore / 2);

export class SessionTracking {
  readonly settings: StreamTrackingSettings;
  /** Face-model runs so far (one per face per model that ran): what analysis reuse saves. */
  modelRuns = 0;
  private readonly streamId: string;
  private readonly deps: SessionTrackingDeps;
  private readonly tracks: StreamTracks | undefined;
  private readonly published = new Map<number, { event: TrackEvent; frameTimeMs: number }>();
  private lastFrameTimeMs = 0;
  /** end() ran: a frame still in flight then (a cancelled stream) must not start tracks again. */
  private ended = false;
  /** A best-face snapshot was published for the stream. */
  private hasSnapshot = false;
  /** Confirmed tracks in view, and the stream's face state for Home Assistant. */
  private readonly present = new Set<number>();
  private state: StreamFaceState = { faces: 0, last_person: '', last_emotion: '', last_age: 0, last_change: new Date().toISOString() };

  constructor(streamId: string, config: StreamConfig, deps: SessionTrackingDeps) {
    this.streamId = streamId;
    this.deps = deps;
    this.settings = trackingSettingsOf(config.tracking, deps.trackingByDefault);
    this.tracks = this.settings.enabled ? new StreamTracks(this.settings) : undefined;
    if (this.tracks) this.discovery()?.publishState(streamId, this.state);
  }

  /** Whether the per-frame faces topic is published for this stream. */
  get publishFaces(): boolean {
    return this.settings.publishFaces;
  }

  /** Live tracks of this stream. */
  get size(): number {
    return this.tracks?.size ?? 0;
  }

  /**
   * Starts a frame's decode and detection ahead of its turn (FramePipeline.prepare); analyze() finishes it. The
   * detector runs ahead only when this stream never skips it (no reuse.detect_every_frames above 1): whether a frame
   * is predicted depends on the tracks after the previous frame.
   */
  prepare(frame: Frame, plan: AnalysisPlan, queueMs: number): PreparedFrame {
    const mayPredict = (this.settings.reuse?.detectEveryFrames ?? 1) > 1;
    return this.deps.pipeline.prepare(frame, plan, queueMs, {
      detect: !this.tracks || !mayPredict,
      ...(this.tracks ? { lowScore: lowScoreOf(plan.minScore) } : {}),
    });
  }

  /**
   * Analyses one frame (`prepared`: its first stage, from prepare()); with tracking on, its faces carry track ids and
   * the frame's track events come back.
   */
  async analyze(
    frame: Frame,
    plan: AnalysisPlan,
    queueMs: number,
    receivedAtMs: number,
    prepared?: PreparedFrame,
  ): Promise<{ result: FrameResult; events: TrackEvent[] }> {
    const tracks = this.tracks;
    if (!tracks) {
      const result = await this.deps.pipeline.analyze(frame, plan, queueMs, prepared);
      this.modelRuns += result.faces.length * new Set(plan.tasks.map((t) => plan.models[t]!.name)).size;
      return { result, events: [] };
    }
    const timeMs = frame.captureTimeUnixMs > 0 ? frame.captureTimeUnixMs : receivedAtMs;
    let predicted = false;
    const predict = (): DetectedFace[] | undefined => {
      const faces = this.ended ? undefined : tracks.predict(timeMs, frame.sequence);
      predicted = faces !== undefined;
      return faces;
    };
    const result = await this.deps.pipeline.analyzeSelected(
      frame,
      plan,
      queueMs,
      {
        lowScore: lowScoreOf(plan.minScore),
        predict,
        select: (faces, low, image) => this.select(tracks, { faces, low, image, predicted }, plan, { timeMs, sequence: frame.sequence }),
      },
      prepared,
    );
    if (this.ended) return { result, events: [] };
    const events = tracks.complete(result, plan.tasks, timeMs);
    this.lastFrameTimeMs = timeMs;
    this.publish(events, timeMs);
    return { result, events };
  }

  /** Associates the frame's faces with tracks (unless they are the tracks' predictions), keeps snapshots, picks tasks. */
  private async select(
    tracks: StreamTracks,
    frame: { faces: DetectedFace[]; low: DetectedFace[]; image: () => Promise<RgbImage>; predicted: boolean },
    plan: AnalysisPlan,
    at: { timeMs: number; sequence: number },
  ): Promise<ReadonlySet<TaskName>[]> {
    const { faces, low, image } = frame;
    const timeMs = at.timeMs;
    if (this.ended) return faces.map(() => new Set(plan.tasks));
    if (!frame.predicted) {
      tracks.associate(faces, low, timeMs, at.sequence);
      // A predicted box is a guess: the best-face snapshot waits for a detected one.
      for (const s of tracks.snapshotsDue(faces)) {
        // A snapshot that cannot be encoded costs the track its picture, never the frame its answer.
        const jpeg = await image()
          .then((pixels) => faceSnapshot(pixels, s.box))
          .catch(() => undefined);
        if (jpeg) tracks.keepSnapshot(s.id, s.quality, jpeg);
      }
    }
    const due = tracks.tasksDue(plan.tasks, timeMs);
    for (const tasks of due) this.modelRuns += new Set([...tasks].map((t) => plan.models[t]!.name)).size;
    return due;
  }

  /** Ends every track (stream ended or cancelled) and publishes the end events; returns them. Idempotent. */
  end(): TrackEvent[] {
    this.ended = true;
    const events = this.tracks?.endAll() ?? [];
    this.publish(events, this.lastFrameTimeMs);
    this.published.clear();
    return events;
  }

  private discovery(): HomeAssistantDiscovery | undefined {
    const ha = this.deps.homeAssistant;
    return ha?.enabled ? discoveryFor(this.deps.sink(), ha.prefix) : undefined;
  }

  /** Folds the events into the stream's face state and publishes it for Home Assistant. */
  private updateState(events: readonly TrackEvent[]): void {
    const discovery = this.discovery();
    if (!discovery || events.length === 0) return;
    for (const e of events) {
      if (e.type === TrackEventType.TRACK_EVENT_TYPE_END) this.present.delete(e.trackId);
      else this.present.add(e.trackId);
      const s = e.summary;
      if (s?.identity?.known) this.state.last_person = s.identity.name;
      if (s?.emotion) this.state.last_emotion = s.emotion.label;
      if (s?.ageYears) this.state.last_age = Math.round(s.ageYears);
    }
    this.state = { ...this.state, faces: this.present.size, last_change: new Date().toISOString() };
    discovery.publishState(this.streamId, this.state);
  }

  private publish(events: readonly TrackEvent[], frameTimeMs: number): void {
    this.updateState(events);
    const sink = trackSinkOf(this.deps.sink());
    for (const event of events) {
      const before = this.published.get(event.trackId);
      if (event.type === TrackEventType.TRACK_EVENT_TYPE_END) this.published.delete(event.trackId);
      else this.published.set(event.trackId, { event, frameTimeMs });
      if (event.snapshotJpeg.length > 0) this.hasSnapshot = true;
      sink?.publishTrackEvent(this.streamId, trackEventMessage(this.streamId, event, before, this.hasSnapshot, frameTimeMs));
      if (event.snapshotJpeg.length > 0) sink?.publishSnapshot?.(this.streamId, event.snapshotJpeg);
    }
  }
}
