// The MQTT JSON contract: one faces event per analysed frame, the stats message, publisher counters (server and SDK share it).

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
}

/** On the wire at `<prefix>/<node>/<stream>/faces`. */
export interface FacesMessage extends FacesEvent {
  node: string;
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
