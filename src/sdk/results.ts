// The SDK's typed inputs and results, and their conversion to and from the kt.v1 messages.
import { InvalidInputError } from '../core/errors.js';
import { ErrorCode, ImageFormat, Task, errorCodeToNumber, type Image } from '../gen/kt/v1/common.js';
import type { Box as ProtoBox, IdentityMatch as ProtoIdentityMatch, Point as ProtoPoint } from '../gen/kt/v1/common.js';
import type { EmotionResult as ProtoEmotion, GenderResult as ProtoGender } from '../gen/kt/v1/face_analysis.js';
import { AnalysisOptions, DropPolicy } from '../gen/kt/v1/face_analysis.js';
import type { Face as ProtoFace, FrameResult, Landmarks as ProtoLandmarks, StreamCounters } from '../gen/kt/v1/face_analysis.js';
import type { TaskAnswerAge as ProtoTaskAnswerAge, TrackEvent as ProtoTrackEvent } from '../gen/kt/v1/face_analysis.js';
import type { TrackSummary as ProtoTrackSummary } from '../gen/kt/v1/face_analysis.js';

// ---------------------------------------------------------------- inputs

import { enumOfTask, taskNames, taskOfEnum, type TaskName } from '../contract/tasks.js';
import { facesEventOf, type FacesEvent, type FacesMessage } from '../contract/face-events.js';
import { dropPolicies, pixelFormats, type DropPolicyName, type PixelFormatName } from '../contract/wire-names.js';
import { trackEventTypeName, type TrackEventTypeName } from '../contract/track-names.js';

export { taskNames, type DropPolicyName, type TaskName };

export function taskToProto(task: TaskName | Task): Task {
  if (Object.values(Task).includes(task as Task)) return task as Task;
  const t = enumOfTask[task as TaskName];
  if (t === undefined) throw new InvalidInputError(`unknown task "${String(task)}" (known: ${taskNames.join(', ')})`);
  return t;
}

export function taskFromProto(task: Task): TaskName | undefined {
  return taskOfEnum(task);
}

/** Memory layout of raw pixels (the contract's PixelFormat without the prefix). */
export type RawPixelFormatName = PixelFormatName;

/** Uncompressed pixels, top row first. */
export interface RawImageInput {
  data: Uint8Array;
  widthPx: number;
  heightPx: number;
  /** Bytes from one row to the next; 0 or absent means tightly packed. */
  strideBytes?: number;
  pixelFormat: RawPixelFormatName;
}

/** A JPEG/PNG/WebP file as bytes, or raw pixels. */
export type ImageInput = Uint8Array | RawImageInput;

/** One frame of a stream. `sequence` defaults to a counter from 1; `captureTimeUnixMs` to the time it is sent. */
export interface FrameInput {
  image: ImageInput;
  sequence?: number;
  captureTimeUnixMs?: number;
}

/** What to run on a frame (shared by analyze and stream). Zero or absent fields use the server's defaults. */
export interface AnalysisInit {
  /** Tasks per face; empty runs detection only. Default: age, gender, emotion, landmarks. */
  tasks?: readonly (TaskName | Task)[];
  /** Route a task to a named model (version 0 or absent: the newest loaded). */
  modelOverrides?: readonly { task: TaskName | Task; model: string; version?: number }[];
  minFaceSizePx?: number;
  maxFaces?: number;
  minScore?: number;
  identityThreshold?: number;
}

export const defaultTasks: readonly TaskName[] = ['age', 'gender', 'emotion', 'landmarks'];

export function analysisToProto(init: AnalysisInit): AnalysisOptions {
  return AnalysisOptions.fromPartial({
    // The contract reads an empty list as "the server's default tasks"; in the SDK `[]` keeps meaning detection only.
    tasks: init.tasks?.length === 0 ? [Task.TASK_DETECTION] : (init.tasks ?? defaultTasks).map(taskToProto),
    modelOverrides: (init.modelOverrides ?? []).map((o) => ({
      task: taskToProto(o.task),
      model: { name: o.model, version: o.version ?? 0 },
    })),
    minFaceSizePx: init.minFaceSizePx ?? 0,
    maxFaces: init.maxFaces ?? 0,
    minScore: init.minScore ?? 0,
    identityThreshold: init.identityThreshold ?? 0,
  });
}

/** The spellings of SDK releases before the contract module (`latest-wins`), still accepted at run time. */
const legacyDropPolicyNames: Readonly<Record<string, DropPolicyName>> = { 'latest-wins': 'LATEST_WINS', queue: 'QUEUE', block: 'BLOCK' };

export function dropPolicyToProto(policy: DropPolicyName | undefined): DropPolicy {
  if (policy === undefined) return DropPolicy.DROP_POLICY_UNSPECIFIED;
  const name: unknown = legacyDropPolicyNames[policy] ?? policy;
  if (!dropPolicies.has(name))
    throw new InvalidInputError(`unknown drop policy "${String(policy)}" (known: ${dropPolicies.names.join(', ')})`);
  return dropPolicies.toWire[name];
}

/** Wraps bytes as a Buffer without copying (ts-proto's bytes fields are Buffers). */
function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export function isRawImageInput(image: unknown): image is RawImageInput {
  return typeof image === 'object' && image !== null && !(image instanceof Uint8Array) && 'pixelFormat' in image && 'data' in image;
}

export function imageToProto(image: ImageInput): Image {
  if (image instanceof Uint8Array)
    return { source: { $case: 'encoded', value: { data: asBuffer(image), format: ImageFormat.IMAGE_FORMAT_UNSPECIFIED } } };
  if (!isRawImageInput(image))
    throw new InvalidInputError('an image must be encoded bytes (Uint8Array) or { data, widthPx, heightPx, pixelFormat }');
  if (!pixelFormats.has(image.pixelFormat))
    throw new InvalidInputError(`unknown pixel format "${String(image.pixelFormat)}" (known: ${pixelFormats.names.join(', ')})`);
  const pixelFormat = pixelFormats.toWire[image.pixelFormat];
  return {
    source: {
      $case: 'raw',
      value: {
        data: asBuffer(image.data),
        widthPx: image.widthPx,
        heightPx: image.heightPx,
        strideBytes: image.strideBytes ?? 0,
        pixelFormat,
      },
    },
  };
}

// ---------------------------------------------------------------- results

/** A rectangle in frame pixels, top-left origin. */
export interface BoxPx {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** A point in frame pixels; `z` is relative depth for 3-D schemes (mesh), 0 otherwise. */
export interface PointPx {
  x: number;
  y: number;
  z: number;
}

export interface LandmarkSet {
  /** "ibug68", "mediapipe468", ... */
  scheme: string;
  points: PointPx[];
}

export interface IdentityResult {
  /** Whether the nearest person clears the threshold; personId and name are empty when not. */
  known: boolean;
  personId: string;
  name: string;
  /** Cosine similarity with the nearest person, -1..1. */
  similarity: number;
}

export interface FaceResult {
  box: BoxPx;
  /** Detector confidence, 0..1. */
  score: number;
  /** Detector keypoints (BlazeFace: right eye, left eye, nose, mouth, right ear, left ear). */
  keypoints: PointPx[];
  age?: { years: number };
  gender?: { label: string; confidence: number };
  emotion?: { label: string; confidence: number; scores: { label: string; score: number }[] };
  landmarks?: LandmarkSet;
  mesh?: LandmarkSet;
  embedding?: { values: number[]; model: { name: string; version: number } | undefined };
  identity?: IdentityResult;
  /**
   * The face's track in its stream (Face.track_id); 0 when the face is not tracked (analyze(), tracking off). The SDK
   * sets this and the next two on every face it receives; they are optional only so that faces built by hand type-check.
   */
  trackId?: number;
  /** True when the detector skipped this frame (reuse.detectEveryFrames > 1): box, score and keypoints are predicted. */
  boxPredicted?: boolean;
  /** How old each task answer above is, per task (tracking on; empty otherwise). Reused answers are older than 0 frames. */
  answerAges?: TaskAnswerAge[];
  /** What the face's track concluded over all its frames (tracking on). */
  track?: TrackSummary;
}

/** How old a face's answer of one task is: 0 frames and 0 ms when it was computed on this frame. */
export interface TaskAnswerAge {
  task: TaskName;
  /** Analysed frames of the stream since the answer was computed. */
  frames: number;
  /** Milliseconds since then (capture times, else the server's receive times). */
  ageMs: number;
}

/** A track's aggregated answers: age robust mean, gender and identity votes, smoothed emotion. Absent: no answer yet. */
export interface TrackSummary {
  ageYears?: number;
  gender?: { label: string; confidence: number };
  /** The vote over confident gallery matches; similarity is the winner's best. */
  identity?: IdentityResult;
  emotion?: { label: string; confidence: number; scores: { label: string; score: number }[] };
  /** Frames in which the track had a matching face. */
  hits: number;
  /** Highest detector score of the track. */
  bestScore: number;
}

/** One event of a face track, as on MQTT `kt/<node>/<stream>/events` (Frigate's new / update / end). */
export interface TrackEvent {
  type: TrackEventTypeName;
  trackId: number;
  /** Capture (else receive) time of the track's first frame, Unix ms. */
  startTimeUnixMs: number;
  /** Time of the track's last frame with a face, Unix ms; 0 until the track ends. */
  endTimeUnixMs: number;
  summary: TrackSummary;
  /** The latest box of the track. */
  box: BoxPx;
  /** Sequence of the frame the track was last seen in. */
  lastSequence: number;
  /** JPEG of the track's best face so far: on new and end events, and on updates when a better face was kept. */
  snapshotJpeg?: Uint8Array;
}

export interface TimingsMs {
  /** Waiting in the stream's queue (0 for analyze). */
  queueMs: number;
  decodeMs: number;
  detectMs: number;
  /** Per task, over all faces of the frame. */
  tasks: Partial<Record<TaskName, number>>;
  /** From the start of decoding to the finished result. */
  totalMs: number;
}

/** A per-frame error inside a stream (the frame failed, the stream goes on). */
export interface FrameError {
  /** gRPC status code name, e.g. "INVALID_ARGUMENT". */
  code: string;
  /** The numeric status code. */
  grpcCode: number;
  message: string;
}

export interface AnalysisResult {
  sequence: number;
  captureTimeUnixMs: number;
  frameWidthPx: number;
  frameHeightPx: number;
  /** Highest detector score first. */
  faces: FaceResult[];
  timings: TimingsMs;
  /** Models that produced the result, detector first. */
  models: { name: string; version: number }[];
  /** Set (on streams only) when this frame failed; faces is then empty. */
  error?: FrameError;
}

/** Frame counters of a stream as the SDK sees them, summed over re-opened calls. */
export interface StreamCountersView {
  /** Frames written to the server. */
  framesSent: number;
  /** Results received (analysed or failed). */
  framesAnswered: number;
  /** Frames the server dropped under its drop policy (no result for them). */
  framesDropped: number;
  /** Frames that failed (result.error set). */
  framesFailed: number;
  /** Frames in flight on a call that broke: sent, never answered, not re-sent. */
  framesLost: number;
  /** Times the stream was re-opened after UNAVAILABLE. */
  reconnects: number;
}

export interface StreamResult extends AnalysisResult {
  streamId: string;
  /** The server's counters for the current call (they restart at 0 after a reconnect). */
  serverCounters: StreamCounters;
  /** The SDK's counters for the whole stream, including this result. */
  counters: StreamCountersView;
  /**
   * Track events caused by this frame (tracking on; empty otherwise). The end events of the tracks still open when the
   * source ends come after the last frame, without a frame: see StreamInit.onTrackEvents and AnalysisStream.closingTrackEvents.
   */
  trackEvents: TrackEvent[];
}

const point = (p: ProtoPoint): PointPx => ({ x: p.xPx, y: p.yPx, z: p.zPx });
const landmarks = (l: ProtoLandmarks): LandmarkSet => ({ scheme: l.scheme, points: l.points.map(point) });
const identity = (m: ProtoIdentityMatch): IdentityResult => ({
  known: m.known,
  personId: m.personId,
  name: m.name,
  similarity: m.similarity,
});

const box = (b: ProtoBox | undefined): BoxPx => ({ x: b?.xPx ?? 0, y: b?.yPx ?? 0, width: b?.widthPx ?? 0, height: b?.heightPx ?? 0 });
const gender = (g: ProtoGender): { label: string; confidence: number } => ({ label: g.label, confidence: g.confidence });
const emotion = (e: ProtoEmotion): NonNullable<FaceResult['emotion']> => ({
  label: e.label,
  confidence: e.confidence,
  scores: e.scores.map((s) => ({ label: s.label, score: s.score })),
});

/** Ages of tasks this build does not know are left out. */
function answerAges(ages: readonly ProtoTaskAnswerAge[]): TaskAnswerAge[] {
  return ages.flatMap((a) => {
    const task = taskFromProto(a.task);
    return task === undefined ? [] : [{ task, frames: a.frames, ageMs: a.ageMs }];
  });
}

export function trackSummaryFromProto(t: ProtoTrackSummary | undefined): TrackSummary {
  const summary: TrackSummary = { hits: t?.hits ?? 0, bestScore: t?.bestScore ?? 0 };
  if (t?.ageYears) summary.ageYears = t.ageYears;
  if (t?.gender) summary.gender = gender(t.gender);
  if (t?.identity) summary.identity = identity(t.identity);
  if (t?.emotion) summary.emotion = emotion(t.emotion);
  return summary;
}

/** A track event in the SDK's terms; undefined for an event type this build does not know. */
export function trackEventFromProto(e: ProtoTrackEvent): TrackEvent | undefined {
  const type = trackEventTypeName(e.type);
  if (type === undefined) return undefined;
  const event: TrackEvent = {
    type,
    trackId: e.trackId,
    startTimeUnixMs: e.startTimeUnixMs,
    endTimeUnixMs: e.endTimeUnixMs,
    summary: trackSummaryFromProto(e.summary),
    box: box(e.box),
    lastSequence: e.lastSequence,
  };
  if (e.snapshotJpeg.length > 0) event.snapshotJpeg = e.snapshotJpeg;
  return event;
}

export function trackEventsFromProto(events: readonly ProtoTrackEvent[]): TrackEvent[] {
  return events.flatMap((e) => trackEventFromProto(e) ?? []);
}

export function faceFromProto(f: ProtoFace): FaceResult {
  const face: FaceResult = {
    box: box(f.box),
    score: f.score,
    keypoints: f.keypoints.map(point),
    trackId: f.trackId,
    boxPredicted: f.boxPredicted,
    answerAges: answerAges(f.answerAges),
  };
  if (f.track) face.track = trackSummaryFromProto(f.track);
  if (f.age) face.age = { years: f.age.years };
  if (f.gender) face.gender = gender(f.gender);
  if (f.emotion) face.emotion = emotion(f.emotion);
  if (f.landmarks) face.landmarks = landmarks(f.landmarks);
  if (f.mesh) face.mesh = landmarks(f.mesh);
  if (f.embedding)
    face.embedding = {
      values: [...f.embedding.values],
      model: f.embedding.model ? { name: f.embedding.model.name, version: f.embedding.model.version } : undefined,
    };
  if (f.identity) face.identity = identity(f.identity);
  return face;
}

export function frameResultFromProto(r: FrameResult | undefined): AnalysisResult {
  if (r === undefined) throw new InvalidInputError('the server answered without a result');
  const tasks: Partial<Record<TaskName, number>> = {};
  for (const t of r.timings?.tasks ?? []) {
    const name = taskFromProto(t.task);
    if (name !== undefined) tasks[name] = (tasks[name] ?? 0) + t.durationMs;
  }
  const result: AnalysisResult = {
    sequence: r.sequence,
    captureTimeUnixMs: r.captureTimeUnixMs,
    frameWidthPx: r.frameWidthPx,
    frameHeightPx: r.frameHeightPx,
    faces: r.faces.map(faceFromProto),
    timings: {
      queueMs: r.timings?.queueMs ?? 0,
      decodeMs: r.timings?.decodeMs ?? 0,
      detectMs: r.timings?.detectMs ?? 0,
      tasks,
      totalMs: r.timings?.totalMs ?? 0,
    },
    models: r.models.map((m) => ({ name: m.name, version: m.version })),
  };
  if (r.error && r.error.code !== ErrorCode.ERROR_CODE_UNSPECIFIED) {
    result.error = { code: r.error.code.replace(/^ERROR_CODE_/, ''), grpcCode: errorCodeToNumber(r.error.code), message: r.error.message };
  }
  return result;
}

// ---------------------------------------------------------------- JSON events for plugins

/** The faces event of a result: the contract's FacesMessage (src/contract/face-events.ts), one type for MQTT and webhook. */
export type FacesEventJson = FacesMessage;

/**
 * The contract's faces event of a result, equal to what the server publishes for it at the same `processedTimeMs`.
 * Without a capture time the server measures latency from when it received the frame; the SDK's closest estimate of
 * that moment is the server's own queue + analysis time before `processedTimeMs`.
 */
export function facesEventOfResult(result: AnalysisResult, processedTimeMs: number = Date.now()): FacesEvent {
  const receivedAtMs = processedTimeMs - Math.round(result.timings.queueMs + result.timings.totalMs);
  return facesEventOf(result, { processedTimeMs, receivedAtMs });
}

/** The faces event with its `stream` (and `node`, when given), as the webhook sends it. */
export function resultToFacesEvent(result: AnalysisResult, stream: string, node?: string, processedTimeMs?: number): FacesEventJson {
  return { ...(node !== undefined ? { node } : {}), stream, ...facesEventOfResult(result, processedTimeMs) };
}
