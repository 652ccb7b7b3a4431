// The three plugin kinds of the gateway (source, filter, sink): what an instance of each implements and what it is handed.
import type { AnalysisResult, FaceResult, ImageInput, StreamResult } from './results.js';

/** What a plugin does in a camera pipeline: source -> filters -> server stream -> sinks. */
export type PluginKind = 'source' | 'filter' | 'sink';
export const pluginKinds: readonly PluginKind[] = ['source', 'filter', 'sink'];

/**
 * A plugin's state, as reported by `health()` (and, for sources, by `ctx.setState`). `starting` until it works,
 * `online` while it works, `offline` while what it depends on is away (a camera, a broker; it is reconnecting),
 * `error` when it failed and the host restarts it, `stopped` after stop().
 */
export type PluginState = 'starting' | 'online' | 'offline' | 'error' | 'stopped';

/** What `health()` answers: the state, why (for offline and error), and the plugin's own counters. */
export interface PluginHealth {
  state: PluginState;
  /** Why it is offline or in error (e.g. "connection refused: rtsp://127.0.0.1:8554/lobby"). */
  reason?: string;
  /** Counters for logs and tests (frames, dropped, delivered...). */
  counters?: Record<string, number>;
}

/** Lifecycle hooks every kind may implement. Hooks may be async; the host awaits them with a per-call timeout. */
export interface PluginLifecycle {
  /** Stops work, flushes queues, closes files and connections. Called once per started instance; must not throw. */
  onStop?(): void | Promise<void>;
  /** The state now (cheap, synchronous). Without it the host reports its own view (online once started). */
  health?(): PluginHealth;
  /** Counters for logs and tests (delivered, failed, queued...). */
  stats?(): Record<string, number>;
}

// ---------------------------------------------------------------- frames

/**
 * One camera frame as filters and sinks see it: encoded bytes (JPEG, PNG, WebP: a Uint8Array) or raw pixels
 * (`{ data, widthPx, heightPx, strideBytes?, pixelFormat: 'RGB8' | 'BGR8' | 'GRAY8' | 'RGBA8' | 'NV12' }`).
 */
export interface SourceFrame {
  image: ImageInput;
  /** Numbered by the host per camera from 1, increasing across source restarts (the stream's sequence number). */
  sequence: number;
  /** When the frame was captured, milliseconds since the Unix epoch. */
  captureTimeUnixMs: number;
  /** Width and height in pixels when the source knows them (always for raw frames). */
  widthPx?: number;
  heightPx?: number;
}

/** What a source emits: the image, and the capture time when it knows it (default: now). The host numbers frames. */
export interface EmittedFrame {
  image: ImageInput;
  captureTimeUnixMs?: number;
  widthPx?: number;
  heightPx?: number;
}

// ---------------------------------------------------------------- source

/** Handed to a source's onStart: where frames go, how to report state, when to stop. */
export interface SourceContext {
  /** The camera this source feeds (the stream id). */
  readonly cameraId: string;
  /** Hands one frame to the pipeline. Never blocks: a busy pipeline keeps the newest frame (latest wins) and counts drops. */
  emit(frame: EmittedFrame): void;
  /** Reports the source's state (`online` when frames flow, `offline` with a reason while reconnecting). */
  setState(state: Exclude<PluginState, 'stopped'>, reason?: string): void;
  /**
   * Reports a failure the source cannot handle itself: the host logs it, stops this instance and starts a new one
   * after a capped backoff with jitter (the same as throwing from onStart).
   */
  fail(error: unknown): void;
  /** Aborted when the host stops this instance (end loops, kill child processes). */
  readonly signal: AbortSignal;
}

/**
 * A source produces frames for one camera. `onStart` starts the work and returns (frames flow through `ctx.emit`
 * afterwards, from timers, child processes or a loop that checks `ctx.signal`); `onStop` ends it.
 */
export interface SourceInstance extends PluginLifecycle {
  onStart(ctx: SourceContext): void | Promise<void>;
}

// ---------------------------------------------------------------- filter

/** Handed to filters with each frame or result. */
export interface FilterContext {
  /** The camera (stream id). */
  readonly cameraId: string;
}

/**
 * A filter's answer for a frame: nothing (or true) passes it on, `{ drop: reason }` drops it (the host counts drops
 * per reason, e.g. "motion", "fps"), `{ frame }` passes a replacement (e.g. downscaled).
 */
export type FrameVerdict = void | undefined | true | { drop: string } | { frame: SourceFrame };

/**
 * A filter's answer for a result: nothing keeps it as it is, `{ faces, reason }` keeps only those faces (the host counts
 * the dropped faces under `reason`, e.g. "zone", "min-size"), `{ drop: reason }` drops the whole result.
 */
export type ResultVerdict = void | undefined | { faces: FaceResult[]; reason: string } | { drop: string };

/** A filter sees each frame before it is sent to the server and/or each result before the sinks. */
export interface FilterInstance extends PluginLifecycle {
  /** Before anything reaches the filter. */
  onStart?(): void | Promise<void>;
  onFrame?(frame: SourceFrame, ctx: FilterContext): FrameVerdict | Promise<FrameVerdict>;
  onResult?(result: AnalysisResult | StreamResult, ctx: FilterContext): ResultVerdict | Promise<ResultVerdict>;
}

// ---------------------------------------------------------------- sink

/** What a result comes with. */
export interface PluginResultContext {
  /** The stream (camera) the result belongs to; for analyze() results, the name the caller gave. */
  streamId: string;
  /** The frame the result is for, when the gateway kept it (snapshot sinks crop the best face from it). */
  frame?: SourceFrame;
}

/** A gateway event for sinks: a camera (its source) changed state. */
export interface CameraStateEvent {
  type: 'camera-state';
  cameraId: string;
  state: PluginState;
  reason?: string;
  timeUnixMs: number;
}

/** Events other than results that sinks may receive. */
export type GatewayEvent = CameraStateEvent;

/** A sink receives results (and optionally events) and sends them somewhere. Today's plugins are sinks. */
export interface SinkInstance extends PluginLifecycle {
  /** Before the first result (connect, open files). A failure here is retried by the host with backoff. */
  onStart?(): void | Promise<void>;
  /** Each result, in order per camera. A failure is logged and counted; the host restarts a failing sink. */
  onResult(result: AnalysisResult | StreamResult, ctx: PluginResultContext): void | Promise<void>;
  /** Camera state changes and other gateway events. */
  onEvent?(event: GatewayEvent): void | Promise<void>;
}

/** A sink instance: what `create` of a plugin without `kind` (or with kind 'sink') returns. */
export type PluginInstance = SinkInstance;

/** The instance type of each kind. */
export interface PluginInstanceOfKind {
  source: SourceInstance;
  filter: FilterInstance;
  sink: SinkInstance;
}
