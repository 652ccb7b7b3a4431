// The MQTT JSON contract: one faces event per analysed frame (and its one builder), the stats message, publisher counters.

/** Face box in pixels of the decoded frame, top-left origin. */
export interface FaceBox {
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface FaceResult {
  box: FaceBox;
  /** Detector confidence in [0, 1]. */
  score: number;
  age?: number;
  gender?: { label: string; score: number };
  emotion?: { label: string; scores: Record<string, number> };
  /** Points in frame pixels, `[x, y]` pairs, with the scheme they follow (e.g. `ibug68`, `mediapipe468`). */
  landmarks?: { scheme: string; points: [number, number][] };
  /** Gallery match; `name` absent when the face is unknown. */
  identity?: { personId?: string; name?: string; similarity: number };
  /** Results of other tasks, keyed by task name. */
  tasks?: Record<string, unknown>;
}

/** What the pipeline hands to `publishFaces`; the publisher adds node and stream. */
export interface FacesEvent {
  /** Frame sequence number within the stream. */
  sequence: number;
  /** Capture time of the frame, milliseconds since the Unix epoch, as sent by the camera/gateway. */
  captureTimeMs?: number;
  /** Time analysis finished, milliseconds since the Unix epoch. */
  processedTimeMs?: number;
  /** End-to-end latency in milliseconds (processed minus capture, or receive-to-result when no capture time). */
  latencyMs?: number;
  faces: FaceResult[];
  /** Set when the frame failed (only SDK plugins forward failed frames; the server publishes frames with faces). */
  error?: { code: string; grpcCode: number; message: string };
}

/**
 * On the wire at `<prefix>/<node>/<stream>/faces`, and the body of the SDK's webhook. The MQTT publisher always sets
 * `node`; the webhook leaves it out when no node id is configured.
 */
export interface FacesMessage extends FacesEvent {
  node?: string;
  stream: string;
}

/** The publisher's own counters, also published inside every stats message under `mqtt`. */
export interface PublisherCounters {
  /** Messages the broker acknowledged (QoS 1/2) or that were written to the socket (QoS 0). */
  published: number;
  /** Messages waiting in the outbound queue now. */
  queued: number;
  /** Messages handed to the client and not yet acknowledged now. */
  inflight: number;
  /** Messages discarded because the outbound queue was full (oldest first), or unserialisable. */
  discarded: number;
  /** Messages the client reported as failed (e.g. a QoS 0 message in flight when the link dropped). */
  failed: number;
  /** Successful connections after the first one. */
  reconnects: number;
  /** Whether the client is connected now. */
  connected: boolean;
}

/** On the wire at `<prefix>/<node>/stats`. */
export interface StatsMessage {
  node: string;
  /** Milliseconds since the Unix epoch. */
  timeMs: number;
  mqtt: PublisherCounters;
  [key: string]: unknown;
}

// ---------------------------------------------------------------- the one builder

/** A point in frame pixels (z: relative depth of 3-D schemes, 0 otherwise). */
export interface PointLike {
  x: number;
  y: number;
  z: number;
}

/**
 * The face fields the event needs. The SDK's FaceResult has this shape; the server adapts the proto Face (whose boxes
 * and points name their fields `xPx`, ...). Optional members accept `undefined` because ts-proto messages use it.
 */
export interface FaceLike {
  box: FaceBox;
  score: number;
  age?: { years: number } | undefined;
  gender?: { label: string; confidence: number } | undefined;
  emotion?: { label: string; scores: readonly { label: string; score: number }[] } | undefined;
  landmarks?: { scheme: string; points: readonly PointLike[] } | undefined;
  mesh?: { scheme: string; points: readonly PointLike[] } | undefined;
  identity?: { known: boolean; personId: string; name: string; similarity: number } | undefined;
}

/** The frame fields the event needs: the SDK's AnalysisResult as is, the proto FrameResult through a small adapter. */
export interface FrameLike {
  sequence: number;
  /** 0 when the client sent no capture time. */
  captureTimeUnixMs: number;
  faces: readonly FaceLike[];
  error?: FacesEvent['error'] | undefined;
}

/** When the event is built, and the latency origin for frames without a capture time. */
export interface FacesEventClock {
  /** Default: now. */
  processedTimeMs?: number;
  /** When the frame arrived (server) or the best estimate of it (SDK), in Unix milliseconds. */
  receivedAtMs: number;
}

/**
 * Rounds a value as the kt.v1 wire carries it: every face field is a proto `float`, so the value is taken to float32
 * first. The server (which holds float64 before serialising) and a client (which reads float32) then round alike.
 */
const round = (value: number, digits: number): number => Math.round(Math.fround(value) * 10 ** digits) / 10 ** digits;
const point2 = (p: PointLike): [number, number] => [round(p.x, 1), round(p.y, 1)];
const point3 = (p: PointLike): [number, number, number] => [round(p.x, 1), round(p.y, 1), round(p.z, 1)];

/** One face of the event: boxes and points to 0.1 px, scores to 3 digits, age to 0.1 year. */
export function faceEventOf(face: FaceLike): FaceResult {
  const { box } = face;
  const out: FaceResult = {
    box: { x: round(box.x, 1), y: round(box.y, 1), width: round(box.width, 1), height: round(box.height, 1) },
    score: round(face.score, 3),
  };
  if (face.age) out.age = round(face.age.years, 1);
  if (face.gender) out.gender = { label: face.gender.label, score: round(face.gender.confidence, 3) };
  if (face.emotion) {
    out.emotion = { label: face.emotion.label, scores: Object.fromEntries(face.emotion.scores.map((s) => [s.label, round(s.score, 3)])) };
  }
  if (face.landmarks) out.landmarks = { scheme: face.landmarks.scheme, points: face.landmarks.points.map(point2) };
  if (face.identity) {
    const similarity = round(face.identity.similarity, 3);
    out.identity = face.identity.known ? { personId: face.identity.personId, name: face.identity.name, similarity } : { similarity };
  }
  // The mesh (468 points) travels in `tasks`; embeddings stay off MQTT (1024 floats per face, and biometric data).
  if (face.mesh) out.tasks = { mesh: { scheme: face.mesh.scheme, points: face.mesh.points.map(point3) } };
  return out;
}

/**
 * The faces event of an analysed frame: what the server publishes on MQTT and what the SDK's plugins forward.
 * Latency is processed time minus capture time, or minus `receivedAtMs` when the frame carries no capture time.
 */
export function facesEventOf(frame: FrameLike, clock: FacesEventClock): FacesEvent {
  const processedTimeMs = clock.processedTimeMs ?? Date.now();
  const origin = frame.captureTimeUnixMs > 0 ? frame.captureTimeUnixMs : clock.receivedAtMs;
  return {
    sequence: frame.sequence,
    ...(frame.captureTimeUnixMs > 0 ? { captureTimeMs: frame.captureTimeUnixMs } : {}),
    processedTimeMs,
    latencyMs: processedTimeMs - origin,
    faces: frame.faces.map(faceEventOf),
    ...(frame.error ? { error: { code: frame.error.code, grpcCode: frame.error.grpcCode, message: frame.error.message } } : {}),
  };
}
