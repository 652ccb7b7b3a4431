// One StreamAnalyze call: config first, then frames into a bounded drop-policy queue, analysed in order, one at a time.
import type { ServerDuplexStream } from '@grpc/grpc-js';
import { InvalidInputError, ResourceExhaustedError, UnavailableError, errorMessage } from '../core/errors.js';
import {
  DropPolicy,
  FrameResult,
  StreamCounters,
  StreamResponse,
  type Frame,
  type StreamConfig,
  type StreamRequest,
} from '../gen/kt/v1/face_analysis.js';
import { planAnalysis, type AnalysisPlan } from './analysis-plan.js';
import { checkStreamId } from '../contract/stream-id.js';
import { dropPolicies } from '../contract/wire-names.js';
import { DropQueue } from './drop-queue.js';
import { facesEventOf } from './faces-event.js';
import type { OpenStream, ServingContext } from './serving-context.js';
import { notServingError, toItemError, toServiceError } from './status.js';
import type { SchedulerLane } from './stream-scheduler.js';

interface QueuedFrame {
  frame: Frame;
  receivedAt: number;
  receivedAtMs: number;
}

type Call = ServerDuplexStream<StreamRequest, StreamResponse>;

export class StreamSession implements SchedulerLane, OpenStream {
  private readonly ctx: ServingContext;
  private readonly call: Call;
  streamId = '';
  private plan: AnalysisPlan | undefined;
  private queue: DropQueue<QueuedFrame> | undefined;
  private readonly counters = StreamCounters.fromPartial({});
  /** A frame is being analysed or its response is waiting for the transport to drain. */
  private busy = false;
  private paused = false;
  private inputEnded = false;
  private finished = false;
  private registered = false;

  constructor(ctx: ServingContext, call: Call) {
    this.ctx = ctx;
    this.call = call;
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
    this.call.on('end', () => {
      this.inputEnded = true;
      this.maybeFinish();
    });
    this.call.on('cancelled', () => this.close());
    this.call.on('error', () => this.close());
    this.call.on('close', () => this.close());
  }

  shutdown(reason: string): void {
    if (this.finished) return;
    this.inputEnded = true;
    const dropped = this.queue?.clear().length ?? 0;
    this.count('framesDropped', dropped);
    this.ctx.log.info({ stream: this.streamId, reason }, 'stream ending');
    this.maybeFinish();
  }

  take(): (() => Promise<void>) | undefined {
    if (this.busy || this.finished || !this.queue) return undefined;
    const next = this.queue.shift();
    if (!next) return undefined;
    this.busy = true;
    if (this.paused && !this.queue.full) {
      this.paused = false;
      this.call.resume();
    }
    return () => this.analyse(next);
  }

  private onMessage(req: StreamRequest): void {
    if (this.finished) return;
    const message = req.request;
    if (!this.plan) {
      if (message?.$case !== 'config')
        throw new InvalidInputError('the first StreamAnalyze message must be a StreamConfig (request.config)');
      this.open(message.value);
      return;
    }
    if (message?.$case === 'config')
      throw new InvalidInputError(`stream ${this.streamId}: StreamConfig is allowed only as the first message`);
    this.count('framesReceived');
    if (message?.$case !== 'frame') {
      // An empty message is a bad frame, not a bad stream: report it in order and keep going.
      this.queueFrame({ frame: { sequence: 0, captureTimeUnixMs: 0 }, receivedAt: performance.now(), receivedAtMs: Date.now() });
      return;
    }
    this.queueFrame({ frame: message.value, receivedAt: performance.now(), receivedAtMs: Date.now() });
  }

  private open(config: StreamConfig): void {
    const { ctx } = this;
    if (!ctx.serving()) throw notServingError();
    checkStreamId(config.streamId, 'stream_id');
    const policy =
      config.dropPolicy === DropPolicy.DROP_POLICY_UNSPECIFIED ? ctx.config.dropPolicy : dropPolicies.fromWire(config.dropPolicy);
    if (policy === undefined) throw new InvalidInputError(`stream ${config.streamId}: unknown drop_policy ${String(config.dropPolicy)}`);
    const plan = planAnalysis(config.analysis, ctx.config, ctx.registry);
    if (ctx.streams.size >= ctx.config.maxStreams) {
      throw new ResourceExhaustedError(
        `too many streams: ${ctx.streams.size} are open (maxStreams ${ctx.config.maxStreams}); close one or retry later`,
      );
    }
    const depth = Math.min(config.queueDepth || ctx.config.streamQueueDepth, ctx.config.maxStreamQueueDepth);
    this.streamId = config.streamId;
    this.plan = plan;
    this.queue = new DropQueue(depth, policy);
    ctx.streams.add(this);
    ctx.scheduler.add(this);
    this.registered = true;
    ctx.log.debug(
      { stream: this.streamId, peer: this.call.getPeer(), tasks: plan.tasks, dropPolicy: policy, queueDepth: depth },
      'stream opened',
    );
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

  private async analyse(item: QueuedFrame): Promise<void> {
    const queueMs = performance.now() - item.receivedAt;
    let result: FrameResult;
    try {
      if (!this.ctx.serving()) throw new UnavailableError('server is shutting down');
      result = await this.ctx.pipeline.analyze(item.frame, this.plan!, queueMs);
      this.count('framesAnalyzed');
      this.ctx.stats.recordLatency(Date.now() - item.receivedAtMs);
      if (result.faces.length > 0) this.ctx.events?.publishFaces(this.streamId, facesEventOf(result, item.receivedAtMs));
    } catch (e) {
      this.count('framesFailed');
      this.ctx.log.debug({ stream: this.streamId, sequence: item.frame.sequence, error: errorMessage(e) }, 'frame failed');
      result = FrameResult.fromPartial({
        sequence: item.frame.sequence,
        captureTimeUnixMs: item.frame.captureTimeUnixMs,
        error: toItemError(e, `frame ${item.frame.sequence}: `),
      });
    }
    if (this.finished) return;
    const response = StreamResponse.fromPartial({ streamId: this.streamId, result, counters: { ...this.counters } });
    const flushed = this.call.write(response);
    if (flushed) {
      this.idle();
    } else {
      // The client reads slower than we answer: wait for the transport before analysing the next frame.
      this.call.once('drain', () => this.idle());
    }
  }

  private idle(): void {
    this.busy = false;
    this.maybeFinish();
    this.ctx.scheduler.wake();
  }

  /** Ends the call once the client has half-closed and every queued frame is answered. */
  private maybeFinish(): void {
    if (this.finished || !this.inputEnded || this.busy || (this.queue?.length ?? 0) > 0) return;
    this.close();
    this.call.end();
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
  }

  private close(): void {
    if (this.finished) return;
    this.finished = true;
    const dropped = this.queue?.clear().length ?? 0;
    this.count('framesDropped', dropped);
    if (this.registered) {
      this.ctx.streams.delete(this);
      this.ctx.scheduler.remove(this);
      this.registered = false;
    }
  }
}
