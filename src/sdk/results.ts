// The SDK's typed inputs and results, and their conversion to and from the kt.v1 messages.
import { InvalidInputError } from '../core/errors.js';
import { ErrorCode, Image, ImageFormat, PixelFormat, Task, errorCodeToNumber } from '../gen/kt/v1/common.js';
import type { IdentityMatch as ProtoIdentityMatch, Point as ProtoPoint } from '../gen/kt/v1/common.js';
import { AnalysisOptions, DropPolicy } from '../gen/kt/v1/face_analysis.js';
import type { Face as ProtoFace, FrameResult, Landmarks as ProtoLandmarks, StreamCounters } from '../gen/kt/v1/face_analysis.js';

// ---------------------------------------------------------------- inputs

import { enumOfTask, taskNames, taskOfEnum, type TaskName } from '../contract/tasks.js';
import type { FacesMessage } from '../contract/face-events.js';

export { taskNames, type TaskName };

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
export type RawPixelFormatName = 'RGB8' | 'BGR8' | 'GRAY8' | 'RGBA8' | 'NV12';

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
    tasks: (init.tasks ?? defaultTasks).map(taskToProto),
    modelOverrides: (init.modelOverrides ?? []).map((o) => ({ task: taskToProto(o.task), model: { name: o.model, version: o.version ?? 0 } })),
    minFaceSizePx: init.minFaceSizePx ?? 0,
    maxFaces: init.maxFaces ?? 0,
    minScore: init.minScore ?? 0,
    identityThreshold: init.identityThreshold ?? 0,
  });
}

/** Drop policy of a stream (see DropPolicy in face_analysis.proto). */
export type DropPolicyName = 'latest-wins' | 'queue' | 'block';

const dropPolicyEnum: Record<DropPolicyName, DropPolicy> = {
  'latest-wins': DropPolicy.DROP_POLICY_LATEST_WINS,
  queue: DropPolicy.DROP_POLICY_QUEUE,
  block: DropPolicy.DROP_POLICY_BLOCK,
};

export function dropPolicyToProto(policy: DropPolicyName | undefined): DropPolicy {
  if (policy === undefined) return DropPolicy.DROP_POLICY_UNSPECIFIED;
  const p = dropPolicyEnum[policy];
  if (p === undefined) throw new InvalidInputError(`unknown drop policy "${String(policy)}" (known: ${Object.keys(dropPolicyEnum).join(', ')})`);
  return p;
}

const pixelFormats: Record<RawPixelFormatName, PixelFormat> = {
  RGB8: PixelFormat.PIXEL_FORMAT_RGB8,
  BGR8: PixelFormat.PIXEL_FORMAT_BGR8,
  GRAY8: PixelFormat.PIXEL_FORMAT_GRAY8,
  RGBA8: PixelFormat.PIXEL_FORMAT_RGBA8,
  NV12: PixelFormat.PIXEL_FORMAT_NV12,
};

/** Wraps bytes as a Buffer without copying (ts-proto's bytes fields are Buffers). */
function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export function isRawImageInput(image: unknown): image is RawImageInput {
  return typeof image === 'object' && image !== null && !(image instanceof Uint8Array) && 'pixelFormat' in image && 'data' in image;
}

export function imageToProto(image: ImageInput): Image {
  if (image instanceof Uint8Array) return { source: { $case: 'encoded', value: { data: asBuffer(image), format: ImageFormat.IMAGE_FORMAT_UNSPECIFIED } } };
  if (!isRawImageInput(image)) throw new InvalidInputError('an image must be encoded bytes (Uint8Array) or { data, widthPx, heightPx, pixelFormat }');
  const pixelFormat = pixelFormats[image.pixelFormat];
  if (pixelFormat === undefined) throw new InvalidInputError(`unknown pixel format "${String(image.pixelFormat)}" (known: ${Object.keys(pixelFormats).join(', ')})`);
  return {
    source: {
      $case: 'raw',
      value: { data: asBuffer(image.data), widthPx: image.widthPx, heightPx: image.heightPx, strideBytes: image.strideBytes ?? 0, pixelFormat },
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
}

const point = (p: ProtoPoint): PointPx => ({ x: p.xPx, y: p.yPx, z: p.zPx });
const landmarks = (l: ProtoLandmarks): LandmarkSet => ({ scheme: l.scheme, points: l.points.map(point) });
const identity = (m: ProtoIdentityMatch): IdentityResult => ({ known: m.known, personId: m.personId, name: m.name, similarity: m.similarity });

export function faceFromProto(f: ProtoFace): FaceResult {
  const face: FaceResult = {
    box: { x: f.box?.xPx ?? 0, y: f.box?.yPx ?? 0, width: f.box?.widthPx ?? 0, height: f.box?.heightPx ?? 0 },
    score: f.score,
    keypoints: f.keypoints.map(point),
  };
  if (f.age) face.age = { years: f.age.years };
  if (f.gender) face.gender = { label: f.gender.label, confidence: f.gender.confidence };
  if (f.emotion) face.emotion = { label: f.emotion.label, confidence: f.emotion.confidence, scores: f.emotion.scores.map((s) => ({ label: s.label, score: s.score })) };
  if (f.landmarks) face.landmarks = landmarks(f.landmarks);
  if (f.mesh) face.mesh = landmarks(f.mesh);
  if (f.embedding) face.embedding = { values: [...f.embedding.values], model: f.embedding.model ? { name: f.embedding.model.name, version: f.embedding.model.version } : undefined };
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
    timings: { queueMs: r.timings?.queueMs ?? 0, decodeMs: r.timings?.decodeMs ?? 0, detectMs: r.timings?.detectMs ?? 0, tasks, totalMs: r.timings?.totalMs ?? 0 },
    models: r.models.map((m) => ({ name: m.name, version: m.version })),
  };
  if (r.error && r.error.code !== ErrorCode.ERROR_CODE_UNSPECIFIED) {
    result.error = { code: r.error.code.replace(/^ERROR_CODE_/, ''), grpcCode: errorCodeToNumber(r.error.code), message: r.error.message };
  }
  return result;
}

// ---------------------------------------------------------------- JSON events for plugins

/** The MQTT faces event of a result (the server's contract, src/contract/face-events.ts), as the mqtt-forward plugin publishes it. */
export type FacesEventJson = Omit<FacesMessage, 'node'> & { node?: string; processedTimeMs: number; error?: FrameError };

const round = (v: number, digits = 1): number => Math.round(v * 10 ** digits) / 10 ** digits;

export function resultToFacesEvent(result: AnalysisResult, stream: string, node?: string): FacesEventJson {
  const now = Date.now();
  const event: FacesEventJson = {
    ...(node !== undefined ? { node } : {}),
    stream,
    sequence: result.sequence,
    processedTimeMs: now,
    faces: result.faces.map((f) => ({
      box: { x: round(f.box.x), y: round(f.box.y), width: round(f.box.width), height: round(f.box.height) },
      score: round(f.score, 3),
      ...(f.age ? { age: round(f.age.years) } : {}),
      ...(f.gender ? { gender: { label: f.gender.label, score: round(f.gender.confidence, 3) } } : {}),
      ...(f.emotion ? { emotion: { label: f.emotion.label, scores: Object.fromEntries(f.emotion.scores.map((s) => [s.label, round(s.score, 3)])) } } : {}),
      ...(f.landmarks ? { landmarks: { scheme: f.landmarks.scheme, points: f.landmarks.points.map((p): [number, number] => [round(p.x), round(p.y)]) } } : {}),
      ...(f.identity ? { identity: f.identity.known ? { personId: f.identity.personId, name: f.identity.name, similarity: round(f.identity.similarity, 3) } : { similarity: round(f.identity.similarity, 3) } } : {}),
    })),
  };
  if (result.captureTimeUnixMs > 0) {
    event.captureTimeMs = result.captureTimeUnixMs;
    event.latencyMs = now - result.captureTimeUnixMs;
  }
  if (result.error) event.error = result.error;
  return event;
}
