// One camera stream over StreamAnalyze: bounded frames in flight, write()/'drain' backpressure, a per-frame answer
// timeout, and re-opening the call (same StreamConfig) with backoff when the server becomes UNAVAILABLE.
import type { ClientDuplexStream, ServiceError, StatusObject } from '@grpc/grpc-js';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { InvalidInputError, type KtError } from '../core/errors.js';
import { StreamConfig } from '../gen/kt/v1/face_analysis.js';
import type { StreamRequest, StreamResponse } from '../gen/kt/v1/face_analysis.js';
import { backoffDelayMs } from '../core/backoff.js';
import { checkStreamId } from '../contract/stream-id.js';
import { reconnectBackoffPolicy } from './client-options.js';
import type { ClientReconnectOptions } from './client-options.js';
import { DeadlineExceededError, UnavailableError, errorFromStatus } from './errors.js';
import { analysisToProto, dropPolicyToProto, frameResultFromProto, imageToProto, isRawImageInput } from './results.js';
import { trackEventsFromProto } from './results.js';
import type { AnalysisInit, DropPolicyName, FrameInput, ImageInput, StreamCountersView, StreamResult, TrackEvent } from './results.js';
import { trackingToProto, type TrackingInit } from './tracking-init.js';

/** Options of `client.stream()`. */
export interface StreamInit extends AnalysisInit {
  /** Stream (camera) name: letters, digits, '-', '_', '.', at most 64. Used in MQTT topics. Required. */
  streamId: string;
  /** What the server does when frames arrive faster than it analyses them. Default: the server's (LATEST_WINS). */
  dropPolicy?: DropPolicyName;
  /** Frames that may wait on the server for this stream. Default 0: the server's default (1). */
  queueDepth?: number;
  /**
   * Frames sent but not yet answered (or answered but not yet taken from the iterator). The next frame is only pulled
   * from the source when fewer are outstanding, so a live source always gives its newest frame. Default 2.
   */
  maxInFlight?: number;
  /** Fail with DeadlineExceededError when frames are outstanding and nothing came back for this long, in ms. Default: the client's deadlineMs. */
  frameTimeoutMs?: number;
  /** Deadline of the whole stream in ms from its start (a recording of known length). Default none. */
  deadlineMs?: number;
  /** Re-open the call with the same config on UNAVAILABLE and go on with the next frames. Default true. */
  reconnect?: boolean;
  /** Stops the stream (the iteration ends, the source is closed). */
  signal?: AbortSignal;
  /** Instrumentation hook; must not throw. */
  onEvent?: (event: StreamEvent) => void;
  /**
   * Face tracking: `true` (on, server defaults), `false` (off) or settings (mode 'on' unless given). Absent: the server's
   * default (on unless configured off), as before this option existed. Faces then carry `trackId`, `track` and
   * `answerAges`, and results carry `trackEvents`.
   */
  tracking?: boolean | TrackingInit;
  /**
   * Every track event of the stream, once each and in order, like Frigate's events topic: the events of a frame just
   * before its result leaves the iterator (`result` is that result), then, when the source has ended and the server
   * has answered every frame, the end events of the tracks still open (`result` undefined) just before the iteration
   * ends. The closing events come only with `tracking` mode 'on' and a source that ends (not after stop(), a `break`
   * or the signal: the server then publishes them on MQTT only). A call re-opened after UNAVAILABLE starts new tracks;
   * the old call's tracks end on the server without events here. Must not throw (a throw fails the stream).
   */
  onTrackEvents?: (events: TrackEvent[], result: StreamResult | undefined) => void;
}

/** The StreamConfig a stream sends first (checks the options; throws InvalidInputError naming the bad one). */
export function streamConfigOf(init: StreamInit): StreamConfig {
  const tracking = trackingToProto(init.tracking);
  return StreamConfig.fromPartial({
    streamId: init.streamId,
    analysis: analysisToProto(init),
    dropPolicy: dropPolicyToProto(init.dropPolicy),
    queueDepth: init.queueDepth ?? 0,
    ...(tracking ? { tracking } : {}),
  });
}

export type StreamEvent =
  | { type: 'open'; call: number }
  | { type: 'write'; sequence: number; inFlight: number }
  | { type: 'result'; sequence: number; inFlight: number }
  | { type: 'write-blocked'; sequence: number }
  | { type: 'reconnecting'; attempt: number; delayMs: number; lostFrames: number; error: KtError }
  | { type: 'reconnected'; call: number; afterMs: number };

/** What the stream needs from the client: open a call, and wait for the channel to be ready. */
export interface StreamTransport {
  openCall(deadline: Date | undefined): ClientDuplexStream<StreamRequest, StreamResponse>;
  waitForReady(deadline: Date): Promise<void>;
  reconnect: ClientReconnectOptions;
  defaultFrameTimeoutMs: number;
  /** Called once when the stream has finished, failed or been stopped. */
  onSettled?(stream: AnalysisStream): void;
}

/**
 * Where a stream is. `idle` until the first `next()`; the producer moves it open -> (reopening -> open)* ->
 * draining -> done; `failed` and `stopped` can interrupt any phase. done, failed and stopped are final.
 */
export type StreamState =
  | { name: 'idle' }
  /** Sending frames on the current call. */
  | { name: 'open' }
  /** The call broke (UNAVAILABLE): backing off before a new call with the same config. */
  | { name: 'reopening'; cause: KtError }
  /** The source is exhausted: the call is half-closed, waiting for the last answers. */
  | { name: 'draining' }
  | { name: 'done' }
  /** `thrown` once the iterator has thrown `error`. */
  | { name: 'failed'; error: Error; thrown: boolean }
  /** stop(), the signal, or a `break` out of the loop. */
  | { name: 'stopped' };

/** Where one gRPC call is: every call ends ended (after our half-close) or broken. */
type CallPhase =
  | { name: 'sending' }
  /** write() returned false: waiting for 'drain'. */
  | { name: 'blocked' }
  | { name: 'half-closed' }
  /** The server closed the call with OK after our half-close. */
  | { name: 'ended' }
  /** Lost (UNAVAILABLE, a failed write, or the server ending the call early); `ended` when its status already came. */
  | { name: 'broken'; error: KtError; ended: boolean };

interface CallState {
  call: ClientDuplexStream<StreamRequest, StreamResponse>;
  index: number;
  sent: number;
  answered: number;
  /** StreamCounters.framesDropped of the latest answer on this call. */
  dropped: number;
  phase: CallPhase;
}

/** Marks a call broken; the first reason is the one reported, and `ended` (its status came) sticks. */
function breakCall(c: CallState, error: KtError, ended = false): void {
  if (c.phase.name === 'broken') c.phase.ended ||= ended;
  else c.phase = { name: 'broken', error, ended };
}

const isFinal = (state: StreamState): boolean => state.name === 'done' || state.name === 'failed' || state.name === 'stopped';

/**
 * An async iterable of results, in frame order. Iterating starts the stream; breaking out of the loop (or the signal)
 * cancels it and closes the source. `counters` is readable at any time.
 */
export class AnalysisStream implements AsyncIterable<StreamResult> {
  readonly streamId: string;
  private readonly source: AsyncIterator<FrameInput | ImageInput>;
  private readonly config: StreamConfig;
  private readonly maxInFlight: number;
  private readonly frameTimeoutMs: number;
  private readonly reconnectEnabled: boolean;
  private readonly deadline: Date | undefined;
  private readonly emit: (event: StreamEvent) => void;
  private readonly onTrackEvents: StreamInit['onTrackEvents'];
  /** The end events the server sent after the last answer (tracking 'on'); `delivered` once onTrackEvents had them. */
  private readonly closing = { events: [] as TrackEvent[], delivered: false };

  private current: CallState | undefined;
  private callCount = 0;
  private readonly buffer: StreamResult[] = [];
  private phase: StreamState = { name: 'idle' };
  /** [Symbol.asyncIterator] was called (a stream is iterated once; independent of the phase, as stop() may come first). */
  private iterated = false;
  private nextSequence = 1;
  /** The current run of re-opens without an answer in between (undefined when the stream is healthy). */
  private streak: { startedMs: number; attempts: number } | undefined;
  private lastProgressMs = Date.now();
  private watchdog: NodeJS.Timeout | undefined;
  private changed!: Promise<void>;
  private wakeUp!: () => void;
  private readonly totals = { framesSent: 0, framesAnswered: 0, droppedOnClosedCalls: 0, framesFailed: 0, framesLost: 0, reconnects: 0 };

  constructor(
    private readonly transport: StreamTransport,
    frames: AsyncIterable<FrameInput | ImageInput> | Iterable<FrameInput | ImageInput>,
    init: StreamInit,
  ) {
    checkStreamId(init.streamId);
    const maxInFlight = init.maxInFlight ?? 2;
    if (!Number.isInteger(maxInFlight) || maxInFlight < 1)
      throw new InvalidInputError(`maxInFlight must be an integer >= 1, got ${String(init.maxInFlight)}`);
    this.streamId = init.streamId;
    this.maxInFlight = maxInFlight;
    this.frameTimeoutMs = init.frameTimeoutMs ?? transport.defaultFrameTimeoutMs;
    this.reconnectEnabled = (init.reconnect ?? true) && transport.reconnect.maxReconnectMs > 0;
    this.deadline = init.deadlineMs !== undefined ? new Date(Date.now() + init.deadlineMs) : undefined;
    const onEvent = init.onEvent;
    this.emit = onEvent ? (e) => onEvent(e) : () => {};
    this.config = streamConfigOf(init);
    this.onTrackEvents = init.onTrackEvents;
    this.source = Symbol.asyncIterator in frames ? frames[Symbol.asyncIterator]() : toAsyncIterator(frames[Symbol.iterator]());
    this.resetChanged();
    if (init.signal) {
      if (init.signal.aborted) this.stop();
      else init.signal.addEventListener('abort', () => this.stop(), { once: true });
    }
  }

  /** The stream's counters so far (summed over re-opened calls). */
  get counters(): StreamCountersView {
    return {
      framesSent: this.totals.framesSent,
      framesAnswered: this.totals.framesAnswered,
      framesDropped: this.totals.droppedOnClosedCalls + (this.current?.dropped ?? 0),
      framesFailed: this.totals.framesFailed,
      framesLost: this.totals.framesLost,
      reconnects: this.totals.reconnects,
    };
  }

  /**
   * The end events of the tracks still open when the source ended, which the server sends after the last answer
   * (tracking mode 'on'). Complete once the iteration has ended; empty without tracking or when stopped before the end.
   */
  get closingTrackEvents(): readonly TrackEvent[] {
    return this.closing.events;
  }

  /** Where the stream is now. */
  get state(): StreamState['name'] {
    return this.phase.name;
  }

  /** Frames sent on the current call and not answered or dropped yet. */
  get inFlight(): number {
    const c = this.current;
    return c ? Math.max(0, c.sent - c.answered - c.dropped) : 0;
  }

  /** Stops the stream: cancels the call, closes the source; the iteration ends after buffered results. */
  stop(): void {
    if (this.phase.name === 'stopped') return;
    // A failed or finished stream keeps its state (a failure is still thrown once); the call and source close anyway.
    if (!isFinal(this.phase)) this.enter({ name: 'stopped' });
    this.closeCall();
    this.stopWatchdog();
    void this.source.return?.().catch(() => {});
    this.wake();
  }

  /** Moves to `next` unless the stream is already final; tells the transport once when it becomes final. */
  private enter(next: StreamState): void {
    if (isFinal(this.phase)) return;
    this.phase = next;
    if (isFinal(next)) this.transport.onSettled?.(this);
  }

  /** The first failure wins; later ones (and failures after stop or the end) are dropped. */
  private fail(e: unknown): void {
    this.enter({ name: 'failed', error: e instanceof Error ? e : new Error(String(e)), thrown: false });
  }

  [Symbol.asyncIterator](): AsyncIterator<StreamResult> {
    if (this.iterated) throw new InvalidInputError('a stream can be iterated only once');
    this.iterated = true;
    return {
      next: () => this.next(),
      return: async () => {
        this.stop();
        return { done: true, value: undefined };
      },
    };
  }

  private async next(): Promise<IteratorResult<StreamResult>> {
    if (this.phase.name === 'idle') {
      this.phase = { name: 'open' };
      void this.run();
    }
    for (;;) {
      const result = this.buffer.shift();
      if (result !== undefined) {
        this.wake(); // a buffer slot is free: the producer may send again
        this.deliverTrackEvents(result.trackEvents, result);
        return { done: false, value: result };
      }
      const phase = this.phase;
      if (phase.name === 'failed' && !phase.thrown) {
        phase.thrown = true;
        throw phase.error;
      }
      if (isFinal(phase)) {
        if (!this.closing.delivered) {
          this.closing.delivered = true;
          this.deliverTrackEvents(this.closing.events, undefined);
        }
        return { done: true, value: undefined };
      }
      await this.changed;
    }
  }

  private deliverTrackEvents(events: TrackEvent[], result: StreamResult | undefined): void {
    if (this.onTrackEvents === undefined || events.length === 0) return;
    try {
      this.onTrackEvents(events, result);
    } catch (e) {
      const error = new Error(`stream ${this.streamId}: onTrackEvents threw: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
      // The stream has ended (closing events): nothing is left to fail, so the loop that is ending hears it directly.
      if (isFinal(this.phase)) throw error;
      this.fail(error);
      this.stop();
    }
  }

  // ---------------------------------------------------------------- producer

  private hasCapacity(): boolean {
    return this.inFlight + this.buffer.length < this.maxInFlight;
  }

  private halted(): boolean {
    return this.phase.name === 'stopped' || this.phase.name === 'failed';
  }

  private broken(c: CallState | undefined = this.current): boolean {
    return c?.phase.name === 'broken';
  }

  private async run(): Promise<void> {
    try {
      this.openCall();
      this.startWatchdog();
      for (;;) {
        await this.waitFor(() => this.halted() || this.broken() || this.hasCapacity());
        if (this.halted()) return;
        if (this.broken()) {
          await this.reopen();
          continue;
        }
        const item = await this.source.next();
        if (this.halted()) return;
        if (item.done) break;
        if (this.broken()) await this.reopen();
        if (this.halted()) return;
        await this.send(item.value);
      }
      await this.drain();
      this.enter({ name: 'done' });
    } catch (e) {
      this.fail(e);
      this.closeCall();
    } finally {
      this.stopWatchdog();
      this.wake();
    }
  }

  /** The source is exhausted: half-close and wait for the last answers. */
  private async drain(): Promise<void> {
    const last = this.current;
    if (!last || this.broken(last)) return;
    this.enter({ name: 'draining' });
    last.phase = { name: 'half-closed' };
    last.call.end();
    await this.waitFor(() => this.halted() || last.phase.name === 'ended' || this.broken(last));
    if (this.broken(last)) this.totals.framesLost += this.inFlight;
  }

  private async send(input: FrameInput | ImageInput): Promise<void> {
    const c = this.current!;
    const frame = this.toFrame(input);
    const wasIdle = this.inFlight === 0;
    let ok: boolean;
    try {
      ok = c.call.write({ request: { $case: 'frame', value: frame } });
    } catch (e) {
      // A call that failed between the check and the write; its 'error' event says why.
      breakCall(
        c,
        new UnavailableError(`stream ${this.streamId}: write failed: ${e instanceof Error ? e.message : String(e)}`, { cause: e }),
      );
      this.totals.framesLost += 1;
      return;
    }
    c.sent += 1;
    this.totals.framesSent += 1;
    if (wasIdle) this.lastProgressMs = Date.now();
    this.emit({ type: 'write', sequence: frame.sequence, inFlight: this.inFlight });
    if (!ok) {
      if (c.phase.name === 'sending') c.phase = { name: 'blocked' };
      this.emit({ type: 'write-blocked', sequence: frame.sequence });
      await this.waitFor(() => this.halted() || c.phase.name !== 'blocked');
    }
  }

  private toFrame(input: FrameInput | ImageInput): { image: ReturnType<typeof imageToProto>; sequence: number; captureTimeUnixMs: number } {
    const frame: FrameInput = input instanceof Uint8Array || isRawImageInput(input) ? { image: input } : input;
    if (frame === null || typeof frame !== 'object' || !('image' in frame))
      throw new InvalidInputError('a stream item must be an image (Uint8Array or raw image) or { image, sequence?, captureTimeUnixMs? }');
    const sequence = frame.sequence ?? this.nextSequence;
    this.nextSequence = sequence + 1;
    return { image: imageToProto(frame.image), sequence, captureTimeUnixMs: frame.captureTimeUnixMs ?? Date.now() };
  }

  // ---------------------------------------------------------------- calls

  private openCall(): void {
    const call = this.transport.openCall(this.deadline);
    this.callCount += 1;
    const state: CallState = { call, index: this.callCount, sent: 0, answered: 0, dropped: 0, phase: { name: 'sending' } };
    this.current = state;
    const isCurrent = (): boolean => this.current === state;
    call.on('data', (response: StreamResponse) => {
      if (!isCurrent()) return;
      this.streak = undefined;
      state.dropped = response.counters?.framesDropped ?? state.dropped;
      this.lastProgressMs = Date.now();
      if (response.result === undefined) {
        // Not a frame: the end events of the tracks still open, after our half-close (TrackingConfig mode ON).
        this.closing.events.push(...trackEventsFromProto(response.trackEvents));
        this.wake();
        return;
      }
      state.answered += 1;
      const converted = frameResultFromProto(response.result);
      this.totals.framesAnswered += 1;
      if (converted.error) this.totals.framesFailed += 1;
      const result: StreamResult = {
        ...converted,
        streamId: response.streamId,
        serverCounters: response.counters ?? { framesReceived: 0, framesAnalyzed: 0, framesDropped: 0, framesFailed: 0 },
        counters: this.counters,
        trackEvents: trackEventsFromProto(response.trackEvents),
      };
      this.buffer.push(result);
      this.emit({ type: 'result', sequence: result.sequence, inFlight: this.inFlight });
      this.wake();
    });
    call.on('drain', () => {
      if (!isCurrent()) return;
      if (state.phase.name === 'blocked') state.phase = { name: 'sending' };
      this.wake();
    });
    call.on('status', (status: StatusObject) => {
      if (!isCurrent() || status.code !== GrpcStatus.OK) return;
      if (state.phase.name === 'half-closed') state.phase = { name: 'ended' };
      // The server ended the call while we still had frames to send: treat as a lost connection.
      else breakCall(state, new UnavailableError(`stream ${this.streamId}: the server ended the stream`), true);
      this.wake();
    });
    call.on('error', (e: ServiceError) => {
      if (!isCurrent()) return;
      const mapped = errorFromStatus(e, `StreamAnalyze(${this.streamId})`);
      // CANCELLED that we did not ask for is a server shutting down: as retryable as UNAVAILABLE.
      const retryable = e.code === GrpcStatus.UNAVAILABLE || e.code === GrpcStatus.CANCELLED;
      if (retryable && this.reconnectEnabled && this.phase.name !== 'stopped') breakCall(state, mapped);
      else this.fail(mapped);
      this.wake();
    });
    this.emit({ type: 'open', call: state.index });
    call.write({ request: { $case: 'config', value: this.config } });
  }

  /**
   * Re-opens the call with backoff until the server is back or the reconnect budget is spent. The budget and the
   * backoff run over a streak of failed re-opens (a server that accepts the call and fails it again, e.g. while it is
   * still warming up, does not reset them); the first answer on a new call ends the streak.
   */
  private async reopen(): Promise<void> {
    const brokenPhase = this.current!.phase;
    if (brokenPhase.name !== 'broken') return;
    const cause = brokenPhase.error;
    this.enter({ name: 'reopening', cause });
    const lostFrames = this.inFlight;
    this.totals.framesLost += lostFrames;
    this.closeCall();
    const r = this.transport.reconnect;
    this.streak ??= { startedMs: Date.now(), attempts: 0 };
    const streak = this.streak;
    for (;;) {
      const elapsed = Date.now() - streak.startedMs;
      if (elapsed >= r.maxReconnectMs) {
        throw new UnavailableError(
          `stream ${this.streamId}: server unavailable, gave up re-opening after ${elapsed} ms (${streak.attempts} attempts): ${cause.message}`,
          { cause },
        );
      }
      const delayMs = Math.min(backoffDelayMs(reconnectBackoffPolicy(r), streak.attempts), r.maxReconnectMs - elapsed);
      streak.attempts += 1;
      this.emit({ type: 'reconnecting', attempt: streak.attempts, delayMs, lostFrames, error: cause });
      await this.sleep(delayMs);
      if (this.halted()) return;
      const remaining = r.maxReconnectMs - (Date.now() - streak.startedMs);
      try {
        await this.transport.waitForReady(new Date(Date.now() + Math.max(1, Math.min(remaining, r.maxBackoffMs))));
      } catch {
        continue;
      }
      if (this.halted()) return;
      this.totals.reconnects += 1;
      this.openCall();
      this.enter({ name: 'open' });
      this.lastProgressMs = Date.now();
      this.emit({ type: 'reconnected', call: this.callCount, afterMs: Date.now() - streak.startedMs });
      return;
    }
  }

  /** Cancels the current call (if still open) and folds its drop count into the totals. */
  private closeCall(): void {
    const c = this.current;
    if (!c) return;
    this.current = undefined;
    this.totals.droppedOnClosedCalls += c.dropped;
    if (c.phase.name !== 'ended' && !(c.phase.name === 'broken' && c.phase.ended)) {
      try {
        c.call.cancel();
      } catch {
        // already closed
      }
    }
  }

  // ---------------------------------------------------------------- timing

  private startWatchdog(): void {
    const period = Math.max(10, Math.min(1000, Math.floor(this.frameTimeoutMs / 4)));
    this.watchdog = setInterval(() => {
      if (this.halted() || this.current === undefined || this.broken()) return;
      if (this.inFlight > 0 && Date.now() - this.lastProgressMs > this.frameTimeoutMs) {
        this.fail(
          new DeadlineExceededError(
            `StreamAnalyze(${this.streamId}): no answer for ${this.frameTimeoutMs} ms with ${this.inFlight} frame(s) in flight`,
            this.frameTimeoutMs,
          ),
        );
        this.closeCall();
        this.wake();
      }
    }, period);
    this.watchdog.unref();
  }

  private stopWatchdog(): void {
    clearInterval(this.watchdog);
    this.watchdog = undefined;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      const check = (): void => {
        if (this.halted()) done();
        else void this.changed.then(check);
      };
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      void this.changed.then(check);
    });
  }

  private resetChanged(): void {
    this.changed = new Promise<void>((resolve) => {
      this.wakeUp = resolve;
    });
  }

  private wake(): void {
    const resolve = this.wakeUp;
    this.resetChanged();
    resolve();
  }

  private async waitFor(predicate: () => boolean): Promise<void> {
    while (!predicate()) await this.changed;
  }
}

function toAsyncIterator<T>(it: Iterator<T>): AsyncIterator<T> {
  return {
    next: async () => it.next(),
    return: async () => it.return?.() ?? { done: true, value: undefined },
  };
}
