// One StreamAnalyze call: config first, then frames into a bounded drop-policy queue, analysed and answered in order;
// the next frame's decode and detection may start while the current one runs its task models (streamPipelineDepth).
import { Metadata, status as GrpcStatus, type ServerDuplexStream, type StatusObject } from '@grpc/grpc-js';
import { AlreadyExistsError, InvalidInputError, ResourceExhaustedError, UnavailableError, errorMessage } from '../core/errors.js';
import {
  DropPolicy,
  FrameResult,
  StreamCounters,
  StreamResponse,
  type Frame,
  type StreamConfig,
  type StreamRequest,
  type TrackEvent,
} from '../gen/kt/v1/face_analysis.js';
import { planAnalysis, type AnalysisPlan } from './analysis-plan.js';
import type { PreparedFrame } from './pipeline.js';
import { checkStreamId } from '../contract/stream-id.js';
import { dropPolicies } from '../contract/wire-names.js';
import { DropQueue } from './drop-queue.js';
import { facesEventOf } from './faces-event.js';
import type { OpenStream, ServingContext } from './serving-context.js';
import { decodeFailure } from './request-decoding.js';
import { notServingError, toItemError, toServiceError } from './status.js';
import type { SchedulerLane } from './stream-scheduler.js';
import { SessionTracking } from './tracking/session-tracking.js';

interface QueuedFrame {
  frame: Frame;
  receivedAt: number;
  receivedAtMs: number;
  /** Set when the frame message could not be decoded: answered with this error, in order. */
  error?: InvalidInputError;
}

/** The client half of `host:port` (IPv4 or IPv6): streams are limited per client address, not per connection. */
export function peerHost(peer: string): string {
  const colon = peer.lastIndexOf(':');
  const host = colon > 0 && /^\d+$/.test(peer.slice(colon + 1)) ? peer.slice(0, colon) : peer;
  return host.replace(/^\[(.*)\]$/, '$1');
}

type Call = ServerDuplexStream<StreamRequest, StreamResponse>;

export class StreamSession implements SchedulerLane, OpenStream {
  private readonly ctx: ServingContext;
  private readonly call: Call;
  streamId = '';
  private plan: AnalysisPlan | undefined;
  private queue: DropQueue<QueuedFrame> | undefined;
  /** Face tracks of the stream (track ids, reuse, events); set when the stream opens. */
  private tracking: SessionTracking | undefined;
  private readonly counters = StreamCounters.fromPartial({});
  /** Frames taken from the queue and not yet answered (analysing, waiting for their turn, or for the transport to drain). */
  private inFlight = 0;
  /** Settles when the last frame taken has written its answer: the next frame's second stage waits for it (frame order). */
  private answered: Promise<void> = Promise.resolve();
  private paused = false;
  private inputEnded = false;
  private finished = false;
  private registered = false;
  /** The status the call ends with once its queue is answered; OK unless the server ended it (shutdown, idle). */
  private endStatus: Partial<StatusObject> | undefined;
  /** Config timeout before the StreamConfig, idle timeout after it. */
  private timer: NodeJS.Timeout | undefined;
  readonly peer: string;

  constructor(ctx: ServingContext, call: Call) {
    this.ctx = ctx;
    this.call = call;
    this.peer = peerHost(call.getPeer());
  }

  get id(): string {
    return `stream:${this.streamId}`;
  }

  /** Wires the call's events; the first message decides whether the stream opens. */
  start(): void {
    this.call.on('data', (req: StreamRequest) => {
      try {
        this.onMessage(req);
      } catch (e) {
        this.fail(e);
      }
    });
    this.awaitConfig();
    this.call.on('end', () => {
      this.inputEnded = true;
      this.maybeFinish();
    });
    this.call.on('cancelled', () => this.close());
    this.call.on('error', () => this.close());
    this.call.on('close', () => this.close());
  }

  /** Server shutdown: frames already queued are answered (UNAVAILABLE once serving stopped), then the call ends UNAVAILABLE. */
  shutdown(reason: string): void {
    this.endBy({ code: GrpcStatus.UNAVAILABLE, details: `${reason}; reconnect to another server or retry later` }, reason);
  }

  /** Stops reading; what is queued is still answered in order, then the call ends with `status`. */
  private endBy(status: Partial<StatusObject>, reason: string): void {
    if (this.finished || this.endStatus) return;
    this.endStatus = status;
    this.inputEnded = true;
    this.clearTimer();
    if (!this.paused) {
      this.paused = true;
      this.call.pause();
    }
    this.ctx.log.info({ stream: this.streamId || '(no config)', peer: this.peer, reason }, 'stream ending');
    this.maybeFinish();
    this.ctx.scheduler.wake();
  }

  /** A stream must send its StreamConfig within streamConfigTimeoutMs; at most maxUnconfiguredStreams may wait for one. */
  private awaitConfig(): void {
    const { pendingStreams, config } = this.ctx;
    if (pendingStreams.size >= config.maxUnconfiguredStreams) {
      this.fail(
        new ResourceExhaustedError(
          `too many streams without a StreamConfig: ${pendingStreams.size} (maxUnconfiguredStreams ${config.maxUnconfiguredStreams})`,
        ),
      );
      return;
    }
    pendingStreams.add(this);
    this.armTimer(config.streamConfigTimeoutMs, () =>
      this.endBy(
        {
          code: GrpcStatus.DEADLINE_EXCEEDED,
          details: `no StreamConfig within ${config.streamConfigTimeoutMs} ms (streamConfigTimeoutMs)`,
        },
        'no StreamConfig in time',
      ),
    );
  }

  /** After the config: a stream that sends no frame for streamIdleTimeoutMs, with nothing left to answer, is ended. */
  private armIdleTimer(): void {
    const timeoutMs = this.ctx.config.streamIdleTimeoutMs;
    this.armTimer(timeoutMs, () => {
      if (this.inFlight > 0 || (this.queue?.length ?? 0) > 0) return this.armIdleTimer();
      this.endBy(
        { code: GrpcStatus.DEADLINE_EXCEEDED, details: `stream ${this.streamId} sent no frame for ${timeoutMs} ms (streamIdleTimeoutMs)` },
        'idle',
      );
    });
  }

  private armTimer(timeoutMs: number, fire: () => void): void {
    this.clearTimer();
    if (timeoutMs <= 0 || this.finished) return;
    this.timer = setTimeout(fire, timeoutMs);
    this.timer.unref();
  }

  private clearTimer(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  take(): (() => Promise<void>) | undefined {
    if (this.inFlight >= this.ctx.config.streamPipelineDepth || this.finished || !this.queue) return undefined;
    const next = this.queue.shift();
    if (!next) return undefined;
    this.inFlight += 1;
    if (this.paused && !this.queue.full) {
      this.paused = false;
      this.call.resume();
    }
    const previous = this.answered;
    let done!: () => void;
    this.answered = new Promise((resolve) => (done = resolve));
    return () => this.analyse(next, previous, done);
  }

  private onMessage(req: StreamRequest): void {
    if (this.finished || this.endStatus) return;
    const undecodable = decodeFailure(req);
    if (undecodable && !this.plan) throw undecodable;
    const message = undecodable ? undefined : req.request;
    if (!this.plan) {
      if (message?.$case !== 'config')
        throw new InvalidInputError('the first StreamAnalyze message must be a StreamConfig (request.config)');
      this.open(message.value);
      return;
    }
    this.count('framesReceived');
    this.armIdleTimer();
    if (message?.$case !== 'frame') {
      // An empty, undecodable or repeated-config message is a bad frame, not a bad stream: report it in order and keep going.
      const error =
        undecodable ??
        (message?.$case === 'config'
          ? new InvalidInputError(`stream ${this.streamId}: StreamConfig is allowed only as the first message; this one is ignored`)
          : undefined);
      const frame = { sequence: 0, captureTimeUnixMs: 0 };
      this.queueFrame({ frame, receivedAt: performance.now(), receivedAtMs: Date.now(), ...(error ? { error } : {}) });
      return;
    }
    this.queueFrame({ frame: message.value, receivedAt: performance.now(), receivedAtMs: Date.now() });
  }

  private open(config: StreamConfig): void {
    const { ctx } = this;
    if (!ctx.serving()) throw notServingError();
    checkStreamId(config.streamId, 'stream_id');
    // Two open streams with one id would interleave two cameras' events in one MQTT topic.
    if ([...ctx.streams].some((s) => s.streamId === config.streamId))
      throw new AlreadyExistsError(`stream_id "${config.streamId}" is already used by an open stream; give each camera its own id`);
    const policy =
      config.dropPolicy === DropPolicy.DROP_POLICY_UNSPECIFIED ? ctx.config.dropPolicy : dropPolicies.fromWire(config.dropPolicy);
    if (policy === undefined) throw new InvalidInputError(`stream ${config.streamId}: unknown drop_policy ${String(config.dropPolicy)}`);
    const plan = planAnalysis(config.analysis, ctx.config, ctx.registry);
    this.checkStreamLimits();
    const depth = Math.min(config.queueDepth || ctx.config.streamQueueDepth, ctx.config.maxStreamQueueDepth);
    this.streamId = config.streamId;
    this.plan = plan;
    this.tracking = new SessionTracking(config.streamId, config, {
      pipeline: ctx.pipeline,
      trackingByDefault: ctx.config.streamTracking,
      homeAssistant: { enabled: ctx.config.homeAssistantDiscovery, prefix: ctx.config.homeAssistantPrefix },
      sink: () => ctx.events,
    });
    this.queue = new DropQueue(depth, policy);
    ctx.pendingStreams.delete(this);
    ctx.streams.add(this);
    ctx.scheduler.add(this);
    this.registered = true;
    this.armIdleTimer();
    ctx.log.debug(
      { stream: this.streamId, peer: this.call.getPeer(), tasks: plan.tasks, dropPolicy: policy, queueDepth: depth },
      'stream opened',
    );
  }

  /** maxStreams over all clients, maxStreamsPerClient per client address (0: no per-client limit). */
  private checkStreamLimits(): void {
    const { streams, config } = this.ctx;
    if (streams.size >= config.maxStreams) {
      throw new ResourceExhaustedError(
        `too many streams: ${streams.size} are open (maxStreams ${config.maxStreams}); close one or retry later`,
      );
    }
    if (config.maxStreamsPerClient <= 0) return;
    let fromPeer = 0;
    for (const s of streams) if (s.peer === this.peer) fromPeer += 1;
    if (fromPeer >= config.maxStreamsPerClient) {
      throw new ResourceExhaustedError(
        `too many streams from ${this.peer}: ${fromPeer} are open (maxStreamsPerClient ${config.maxStreamsPerClient}); close one or retry later`,
      );
    }
  }

  private queueFrame(item: QueuedFrame): void {
    const queue = this.queue!;
    const outcome = queue.push(item);
    if (outcome.kind !== 'queued') {
      this.count('framesDropped');
    }
    if (queue.policy === 'BLOCK' && queue.full && !this.paused) {
      // Stop reading: HTTP/2 flow control then slows the sender down.
      this.paused = true;
      this.call.pause();
    }
    this.ctx.scheduler.wake();
  }

  /**
   * Analyses a frame and answers it after `previous` (the frame before) has written its answer: its decode and detection
   * may run before that (the pipeline's first stage), its task models, tracks and answer after. `done` lets the next
   * frame go on; it never waits for the client to read (a frame waiting for its turn holds an inference slot).
   */
  private async analyse(item: QueuedFrame, previous: Promise<void>, done: () => void): Promise<void> {
    const queueMs = performance.now() - item.receivedAt;
    let prepared: PreparedFrame | undefined;
    let result: FrameResult;
    let trackEvents: TrackEvent[] = [];
    try {
      if (item.error) throw item.error;
      if (!this.ctx.serving()) throw new UnavailableError('server is shutting down');
      prepared = this.tracking!.prepare(item.frame, this.plan!, queueMs);
      await previous;
      if (!this.ctx.serving()) throw new UnavailableError('server is shutting down');
      ({ result, events: trackEvents } = await this.tracking!.analyze(item.frame, this.plan!, queueMs, item.receivedAtMs, prepared));
      this.count('framesAnalyzed');
      this.ctx.stats.recordLatency(Date.now() - item.receivedAtMs);
      if (result.faces.length > 0 && this.tracking!.publishFaces)
        this.ctx.events?.publishFaces(this.streamId, facesEventOf(result, item.receivedAtMs));
    } catch (e) {
      await previous; // failures are answered in frame order too
      this.count('framesFailed');
      this.ctx.log.debug({ stream: this.streamId, sequence: item.frame.sequence, error: errorMessage(e) }, 'frame failed');
      result = FrameResult.fromPartial({
        sequence: item.frame.sequence,
        captureTimeUnixMs: item.frame.captureTimeUnixMs,
        error: toItemError(e, `frame ${item.frame.sequence}: `),
      });
    } finally {
      // A frame that failed before analyze() returns what its first stage holds (analyze() returned it otherwise).
      await prepared?.release();
    }
    try {
      if (this.finished) return this.settle();
      const response = StreamResponse.fromPartial({ streamId: this.streamId, result, counters: { ...this.counters }, trackEvents });
      // The client reads slower than we answer: the frame stays in flight until the transport drains, so the stream
      // takes no new frame; a frame already taken may still answer (its response queues behind this one).
      if (this.call.write(response)) this.settle();
      else this.call.once('drain', () => this.settle());
    } finally {
      done();
    }
  }

  /** A frame's answer left (or the stream is gone): the stream may take another frame. */
  private settle(): void {
    this.inFlight -= 1;
    this.maybeFinish();
    this.ctx.scheduler.wake();
  }

  /** Ends the call once the client has half-closed and every queued frame is answered. */
  private maybeFinish(): void {
    if (this.finished || !this.inputEnded || this.inFlight > 0 || (this.queue?.length ?? 0) > 0) return;
    // A client that asked for tracking by name hears the end of the tracks still open before the call ends.
    const ended = this.tracking?.end() ?? [];
    if (!this.endStatus && this.tracking?.settings.requested)
      this.call.write(StreamResponse.fromPartial({ streamId: this.streamId, counters: { ...this.counters }, trackEvents: ended }));
    this.close();
    if (this.endStatus) this.call.emit('error', { metadata: new Metadata(), ...this.endStatus });
    else this.call.end();
  }

  /** Ends the call with an error status (bad or missing StreamConfig, too many streams). */
  private fail(e: unknown): void {
    if (this.finished) return;
    this.ctx.log.debug({ stream: this.streamId || '(no config)', peer: this.call.getPeer(), error: errorMessage(e) }, 'stream refused');
    this.close();
    this.call.emit('error', toServiceError(e));
  }

  /** Every stream counter counts server-wide too (the stats topic). */
  private count(counter: 'framesReceived' | 'framesAnalyzed' | 'framesDropped' | 'framesFailed', n = 1): void {
    this.counters[counter] += n;
    this.ctx.stats[counter] += n;
    if (counter === 'framesDropped') this.ctx.metrics.streamFramesDropped(this.streamId, n);
  }

  private close(): void {
    if (this.finished) return;
    this.finished = true;
    this.clearTimer();
    this.ctx.pendingStreams.delete(this);
    const dropped = this.queue?.clear().length ?? 0;
    this.count('framesDropped', dropped);
    // A cancelled or failed stream ends its tracks too (end events on MQTT).
    this.tracking?.end();
    if (this.registered) {
      this.ctx.streams.delete(this);
      this.ctx.scheduler.remove(this);
      this.registered = false;
    }
  }
}
