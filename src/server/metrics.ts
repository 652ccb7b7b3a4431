// Prometheus metrics of one server (prom-client, its own registry): Triton-like inference series, streams, MQTT, models.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { PublisherCounters } from '../contract/face-events.js';
import { modelStates, type ModelStateName } from '../contract/wire-names.js';
import type { InferenceObserver } from './pipeline.js';
import type { PixelBudgetStats } from './pixel-budget.js';
import type { ServerStats } from './server-stats.js';

/** What the metrics read when scraped (counters the server keeps anyway), rather than being told twice. */
export interface MetricsSources {
  stats: ServerStats;
  streamsOpen(): number;
  inferenceSlotsBusy(): number;
  /** The decoded-pixel budget across concurrent frames. */
  pixels(): PixelBudgetStats;
  /** Face tracks alive (new, active or lost) over every stream of the process. */
  tracksLive(): number;
  models(): readonly { name: string; version: number; state: ModelStateName; serving: boolean }[];
  /** The MQTT publisher's counters; undefined while MQTT is off. */
  mqtt(): PublisherCounters | undefined;
}

/** Seconds; from 1 ms (a small model on a GPU) to 10 s (a big frame on a busy CPU). */
const durationBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/**
 * The server's metrics. Names follow Triton's (`nv_inference_*` there, `kt_inference_*` here); durations are in
 * seconds as Prometheus recommends. A registry per server, so several servers in one process do not collide.
 */
export class ServerMetrics implements InferenceObserver {
  readonly registry = new Registry();
  private readonly inferenceCount: Counter<'model' | 'version'>;
  private readonly inferenceFailure: Counter<'model' | 'version'>;
  private readonly queueDuration: Histogram<'model'>;
  private readonly computeDuration: Histogram<'model'>;
  private readonly framesDropped: Counter<'stream'>;
  private readonly batchFaces: Histogram<'model'>;
  private readonly batchRequests: Histogram<'model'>;
  private processMetrics = false;

  constructor(sources: MetricsSources) {
    const registers = [this.registry];
    this.inferenceCount = new Counter({
      name: 'kt_inference_count',
      help: 'Model runs (one per frame and model; a run covers every face of the frame), by model and version.',
      labelNames: ['model', 'version'],
      registers,
    });
    this.inferenceFailure = new Counter({
      name: 'kt_inference_model_failure',
      help: 'Model runs that failed, by model and version.',
      labelNames: ['model', 'version'],
      registers,
    });
    this.queueDuration = new Histogram({
      name: 'kt_inference_queue_duration_seconds',
      help: 'Time a frame waited in its stream queue before this model ran on it, by model.',
      labelNames: ['model'],
      buckets: durationBuckets,
      registers,
    });
    this.computeDuration = new Histogram({
      name: 'kt_inference_compute_duration_seconds',
      help: 'Time of one model run (crops, inference, decoding over all faces of a frame), by model.',
      labelNames: ['model'],
      buckets: durationBuckets,
      registers,
    });
    this.framesDropped = new Counter({
      name: 'kt_stream_frames_dropped',
      help: 'Frames a stream dropped (queue full under its drop policy, or left queued when it ended), by stream id.',
      labelNames: ['stream'],
      registers,
    });
    this.batchFaces = new Histogram({
      name: 'kt_inference_batch_faces',
      help: 'Faces (rows) per model run made by the dynamic batcher (batchMaxFaces), by model.',
      labelNames: ['model'],
      buckets: [1, 2, 4, 8, 16, 32, 64],
      registers,
    });
    this.batchRequests = new Histogram({
      name: 'kt_inference_batch_requests',
      help: 'Frames whose faces one dynamic-batcher run served together (1: nothing to merge with), by model.',
      labelNames: ['model'],
      buckets: [1, 2, 3, 4, 8],
      registers,
    });
    registerPulledMetrics(this.registry, sources);
  }

  /** One run of the dynamic batcher. */
  batchRun(model: string, run: { requests: number; rows: number }): void {
    this.batchFaces.observe({ model }, run.rows);
    this.batchRequests.observe({ model }, run.requests);
  }

  modelRun(run: { model: string; version: number; queueMs: number; computeMs: number; ok: boolean }): void {
    const labels = { model: run.model, version: String(run.version) };
    if (run.ok) this.inferenceCount.inc(labels);
    else this.inferenceFailure.inc(labels);
    this.queueDuration.observe({ model: run.model }, run.queueMs / 1000);
    this.computeDuration.observe({ model: run.model }, run.computeMs / 1000);
  }

  streamFramesDropped(streamId: string, count: number): void {
    if (count > 0) this.framesDropped.inc({ stream: streamId }, count);
  }

  /**
   * Adds the process metrics (`kt_process_resident_memory_bytes`, `kt_nodejs_eventloop_lag_seconds`, GC, ...). Only
   * when /metrics is served: they start an event-loop monitor and a GC observer that live as long as the process.
   */
  collectProcessMetrics(): void {
    if (this.processMetrics) return;
    this.processMetrics = true;
    collectDefaultMetrics({ register: this.registry, prefix: 'kt_' });
  }

  /** The text exposition format, for GET /metrics. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

/** A counter whose value is read from a running total at scrape time. */
function pulledCounter(registry: Registry, name: string, help: string, read: () => number | undefined): void {
  new Counter({
    name,
    help,
    registers: [registry],
    collect() {
      const value = read();
      this.reset();
      if (value !== undefined) this.inc(value);
    },
  });
}

/** A gauge read at scrape time; undefined leaves it out. */
function pulledGauge(registry: Registry, name: string, help: string, read: () => number | undefined): void {
  new Gauge({
    name,
    help,
    registers: [registry],
    collect() {
      const value = read();
      this.reset();
      if (value !== undefined) this.set(value);
    },
  });
}

function registerPulledMetrics(registry: Registry, s: MetricsSources): void {
  const { stats } = s;
  pulledCounter(
    registry,
    'kt_inference_request_success',
    'Frames analysed successfully (Analyze calls and stream frames).',
    () => stats.framesAnalyzed,
  );
  pulledCounter(
    registry,
    'kt_inference_request_failure',
    'Frames that failed (per-frame errors on streams and failed Analyze calls).',
    () => stats.framesFailed + stats.unaryFailed,
  );
  pulledCounter(registry, 'kt_frames_received', 'Frames received on streams.', () => stats.framesReceived);
  pulledCounter(registry, 'kt_frames_dropped', 'Frames dropped by every stream together.', () => stats.framesDropped);
  pulledGauge(registry, 'kt_streams_open', 'StreamAnalyze calls open now.', () => s.streamsOpen());
  pulledGauge(registry, 'kt_inference_slots_busy', 'Inference slots in use now (of maxConcurrentInferences).', () =>
    s.inferenceSlotsBusy(),
  );
  pulledGauge(
    registry,
    'kt_frame_pixels_in_flight',
    'Decoded pixels held by frames being analysed now (of maxPixelsInFlight).',
    () => s.pixels().inUse,
  );
  pulledGauge(registry, 'kt_tracks_live', 'Face tracks alive (new, active or lost) over every stream now.', () => s.tracksLive());
  pulledGauge(registry, 'kt_frame_pixels_waiting', 'Frames waiting for their share of the pixel budget now.', () => s.pixels().waiting);
  pulledCounter(
    registry,
    'kt_frame_pixel_budget_waits',
    'Frames that waited for their share of the pixel budget.',
    () => s.pixels().waitsTotal,
  );
  const mqtt = s.mqtt;
  pulledGauge(registry, 'kt_mqtt_connected', '1 when the MQTT publisher is connected to its broker, 0 when not (absent: MQTT off).', () => {
    const c = mqtt();
    return c === undefined ? undefined : Number(c.connected);
  });
  pulledGauge(registry, 'kt_mqtt_queue_depth', 'Events waiting for the broker.', () => mqtt()?.queued);
  pulledCounter(registry, 'kt_mqtt_events_published', 'Events handed to the broker.', () => mqtt()?.published);
  pulledCounter(
    registry,
    'kt_mqtt_events_discarded',
    'Events discarded: queue full while the broker was away, or undelivered at shutdown.',
    () => mqtt()?.discarded,
  );
  pulledCounter(registry, 'kt_mqtt_reconnects', 'Reconnections to the broker.', () => mqtt()?.reconnects);
  new Gauge({
    name: 'kt_model_state',
    help: 'Model version state: 1 for its current state (unloaded, loading, loaded, failed), 0 for the others.',
    labelNames: ['model', 'version', 'state'],
    registers: [registry],
    collect() {
      this.reset();
      for (const m of s.models())
        for (const state of modelStates.names) this.set({ model: m.name, version: String(m.version), state }, state === m.state ? 1 : 0);
    },
  });
  new Gauge({
    name: 'kt_model_serving',
    help: '1 for the version that serves requests naming no version, by model.',
    labelNames: ['model', 'version'],
    registers: [registry],
    collect() {
      this.reset();
      for (const m of s.models()) this.set({ model: m.name, version: String(m.version) }, m.serving ? 1 : 0);
    },
  });
}
