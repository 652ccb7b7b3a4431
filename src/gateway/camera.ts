// One camera's pipeline: source (isolated plugin) -> latest-frame slot -> frame filters -> the SDK's analysis stream
// (stream id = camera id) -> result filters -> sinks. Its state and counters; a failing stream is re-opened with backoff.
import { backoffDelayMs, type BackoffPolicy } from '../core/backoff.js';
import { errorMessage } from '../core/errors.js';
import type { Logger } from '../core/log-types.js';
import type { StreamInit } from '../sdk/analysis-stream.js';
import type { FaceAnalysisClient } from '../sdk/client.js';
import { PluginHost, runFrameFilters, runResultFilters, type PluginHostHealth } from '../sdk/plugin-host.js';
import type { GatewayEvent, PluginState, SourceFrame } from '../sdk/plugin-kinds.js';
import type { AnyPluginFactory } from '../sdk/plugin.js';
import type { FrameInput, StreamResult } from '../sdk/results.js';
import type { CameraConfig } from './config.js';
import { sleep } from './sleep.js';

/** Where a camera is: its source's state, or `error` while the server stream cannot be opened. */
export type CameraState = PluginState;

export interface CameraCounters {
  /** Frames the source produced. */
  framesCaptured: number;
  /** Frames replaced in the latest-frame slot before the stream took them (the server was busy). */
  framesSuperseded: number;
  /** Frames dropped by filters, per reason ("motion", "fps", ...). */
  framesFiltered: Record<string, number>;
  /** Frames handed to the server stream. */
  framesSent: number;
  /** Results received. */
  results: number;
  /** Results with at least one face after the result filters. */
  resultsWithFaces: number;
  /** Results that were per-frame errors (bad frame). */
  frameErrors: number;
  /** Results dropped by result filters. */
  resultsFiltered: number;
  /** Times the server stream was opened again after it failed. */
  streamRestarts: number;
  /** Frames the server dropped under its drop policy, and frames lost on broken calls (from the SDK's counters). */
  serverDropped: number;
  framesLost: number;
}

export interface CameraStatus {
  id: string;
  state: CameraState;
  reason?: string;
  counters: CameraCounters;
  source: PluginHostHealth | undefined;
  filters: PluginHostHealth[];
}

export interface CameraDeps {
  client: FaceAnalysisClient;
  sourceFactory: AnyPluginFactory;
  sourceOptions: Record<string, unknown>;
  filters: { factory: AnyPluginFactory; options: Record<string, unknown> }[];
  sinks: readonly PluginHost[];
  log: Logger;
  backoff: BackoffPolicy;
  /** Called on every state change (the gateway logs it and tells the sinks). */
  onEvent(event: GatewayEvent): void;
}

/** The SDK stream options of a camera: stream id = camera id, its tasks and tracking (absent: the server's defaults). */
export function cameraStreamInit(config: CameraConfig): StreamInit {
  return {
    streamId: config.id,
    ...(config.tasks !== undefined ? { tasks: config.tasks } : {}),
    ...(config.tracking !== undefined ? { tracking: config.tracking } : {}),
  };
}

/** Frames kept for sinks (snapshot) until their result arrives: a few more than can be in flight. */
const keptFrames = 8;

export class Camera {
  readonly id: string;
  private readonly log: Logger;
  private source: PluginHost | undefined;
  private readonly filters: PluginHost[] = [];
  private slot: SourceFrame | undefined;
  private wake: (() => void) | undefined;
  private readonly sentFrames = new Map<number, SourceFrame>();
  private readonly stopper = new AbortController();
  private running: Promise<void> | undefined;
  private sourceState: { state: CameraState; reason: string | undefined } = { state: 'starting', reason: undefined };
  private streamProblem: string | undefined;
  private reported: { state: CameraState; reason: string | undefined } | undefined;
  private readonly sdkTotals = { serverDropped: 0, framesLost: 0 };
  readonly counters: CameraCounters = {
    framesCaptured: 0,
    framesSuperseded: 0,
    framesFiltered: {},
    framesSent: 0,
    results: 0,
    resultsWithFaces: 0,
    frameErrors: 0,
    resultsFiltered: 0,
    streamRestarts: 0,
    serverDropped: 0,
    framesLost: 0,
  };

  constructor(
    readonly config: CameraConfig,
    private readonly deps: CameraDeps,
  ) {
    this.id = config.id;
    this.log = deps.log.child({ camera: config.id });
  }

  /** Starts filters, the source and the stream loop; resolves once they are launched (a failing part retries itself). */
  async start(): Promise<void> {
    for (const [i, f] of this.deps.filters.entries()) {
      const host = new PluginHost(f.factory, f.options, { label: `${this.id}/filters[${i}]:${f.factory.pluginName}`, log: this.log });
      await host.start();
      this.filters.push(host);
    }
    this.source = new PluginHost(this.deps.sourceFactory, this.deps.sourceOptions, {
      label: `${this.id}/source:${this.deps.sourceFactory.pluginName}`,
      log: this.log,
      onStateChange: (state, reason) => {
        this.sourceState = { state, reason };
        this.report();
      },
    });
    await this.source.start({ cameraId: this.id, emit: (frame) => this.offer(frame) });
    this.running = this.streamLoop();
  }

  /** The camera's state: the source's, unless the server stream is failing. */
  get state(): { state: CameraState; reason: string | undefined } {
    if (this.stopper.signal.aborted) return { state: 'stopped', reason: undefined };
    if (this.streamProblem !== undefined && this.sourceState.state === 'online') return { state: 'error', reason: this.streamProblem };
    return this.sourceState;
  }

  status(): CameraStatus {
    const { state, reason } = this.state;
    return {
      id: this.id,
      state,
      ...(reason !== undefined ? { reason } : {}),
      counters: { ...this.counters, framesFiltered: { ...this.counters.framesFiltered } },
      source: this.source?.health(),
      filters: this.filters.map((f) => f.health()),
    };
  }

  async stop(): Promise<void> {
    this.stopper.abort();
    this.wake?.();
    await this.source?.stop();
    await this.running;
    for (const f of this.filters) await f.stop();
    this.report();
  }

  // ---------------------------------------------------------------- frames

  /** From the source: the newest frame wins the slot (a live camera wants its latest frame analysed). */
  private offer(frame: SourceFrame): void {
    this.counters.framesCaptured += 1;
    if (this.slot !== undefined) this.counters.framesSuperseded += 1;
    this.slot = frame;
    this.wake?.();
  }

  private async nextFrame(signal: AbortSignal): Promise<SourceFrame | undefined> {
    while (this.slot === undefined) {
      if (signal.aborted) return undefined;
      let onAbort: (() => void) | undefined;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        onAbort = () => resolve();
        signal.addEventListener('abort', onAbort, { once: true });
      });
      signal.removeEventListener('abort', onAbort!);
      this.wake = undefined;
    }
    const frame = this.slot;
    this.slot = undefined;
    return frame;
  }

  /** The frames of one stream call: filtered, remembered for the sinks, ended when `signal` aborts. */
  private async *frames(signal: AbortSignal): AsyncGenerator<FrameInput> {
    for (;;) {
      const frame = await this.nextFrame(signal);
      if (frame === undefined) return;
      const outcome = await runFrameFilters(this.filters, frame, { cameraId: this.id });
      if (!outcome.pass) {
        this.counters.framesFiltered[outcome.reason] = (this.counters.framesFiltered[outcome.reason] ?? 0) + 1;
        continue;
      }
      this.sentFrames.set(outcome.frame.sequence, outcome.frame);
      for (const old of this.sentFrames.keys()) if (this.sentFrames.size > keptFrames) this.sentFrames.delete(old);
      this.counters.framesSent += 1;
      yield { image: outcome.frame.image, sequence: outcome.frame.sequence, captureTimeUnixMs: outcome.frame.captureTimeUnixMs };
    }
  }

  // ---------------------------------------------------------------- results

  private async onResult(result: StreamResult): Promise<void> {
    this.counters.results += 1;
    this.counters.serverDropped = this.sdkTotals.serverDropped + result.counters.framesDropped;
    this.counters.framesLost = this.sdkTotals.framesLost + result.counters.framesLost;
    if (this.streamProblem !== undefined) {
      this.streamProblem = undefined;
      this.report();
    }
    const frame = this.sentFrames.get(result.sequence);
    this.sentFrames.delete(result.sequence);
    if (result.error) {
      this.counters.frameErrors += 1;
      this.log.warn({ sequence: result.sequence, code: result.error.code, error: result.error.message }, 'the server rejected a frame');
      return;
    }
    const kept = await runResultFilters(this.filters, result, { cameraId: this.id });
    if (kept === undefined) {
      this.counters.resultsFiltered += 1;
      return;
    }
    if (kept.faces.length > 0) this.counters.resultsWithFaces += 1;
    for (const sink of this.deps.sinks) await sink.deliver(kept, { streamId: this.id, ...(frame ? { frame } : {}) });
  }

  /** Opens the server stream and consumes it; when it fails, reports `error` and opens a new one after a backoff. */
  private async streamLoop(): Promise<void> {
    let attempt = 0;
    const signal = this.stopper.signal;
    while (!signal.aborted) {
      const call = new AbortController();
      const stop = (): void => call.abort();
      signal.addEventListener('abort', stop, { once: true });
      const stream = this.deps.client.stream(this.frames(call.signal), { ...cameraStreamInit(this.config), signal: call.signal });
      let failure: string | undefined;
      try {
        for await (const result of stream) {
          attempt = 0;
          await this.onResult(result);
        }
      } catch (e) {
        failure = errorMessage(e);
      } finally {
        signal.removeEventListener('abort', stop);
        call.abort();
        this.sdkTotals.serverDropped += stream.counters.framesDropped;
        this.sdkTotals.framesLost += stream.counters.framesLost;
      }
      if (signal.aborted) return;
      this.counters.streamRestarts += 1;
      const delayMs = backoffDelayMs(this.deps.backoff, attempt);
      attempt += 1;
      this.streamProblem = `server ${this.deps.client.address}: ${failure ?? 'the stream ended'}`;
      this.log.warn({ error: this.streamProblem, delayMs }, 'camera stream to the server failed; re-opening');
      this.report();
      await sleep(delayMs, signal);
    }
  }

  /** Logs and announces a state change (once per change). */
  private report(): void {
    const now = this.state;
    if (this.reported && this.reported.state === now.state && this.reported.reason === now.reason) return;
    this.reported = now;
    const fields = { state: now.state, ...(now.reason !== undefined ? { reason: now.reason } : {}) };
    if (now.state === 'offline' || now.state === 'error') this.log.warn(fields, 'camera state');
    else this.log.info(fields, 'camera state');
    this.deps.onEvent({ type: 'camera-state', cameraId: this.id, ...fields, timeUnixMs: Date.now() });
  }
}
