// What the gRPC services share (config, models, pipeline, scheduler and lanes, counters, events) and the step that builds it.
import type { BatchObserver } from './model-slot.js';
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { FailedPreconditionError } from '../core/errors.js';
import type { Logger } from '../core/log-types.js';
import type { FacesEvent, PublisherCounters } from '../contract/face-events.js';
import type { ServerConfig } from './config.js';
import { IdentityGallery } from './gallery/store.js';
import { ModelRegistry, type ModelRegistryOptions } from './model-registry.js';
import { FramePipeline, type FramePath } from './pipeline.js';
import { PixelBudget } from './pixel-budget.js';
import { Semaphore } from './semaphore.js';
import { liveTracks } from './tracking/tracker.js';
import { ServerMetrics } from './metrics.js';
import { ServerStats, type StatsSnapshotView } from './server-stats.js';
import { StreamScheduler } from './stream-scheduler.js';
import { UnaryLane } from './unary-lane.js';

/** Where faces events go (the MQTT publisher); never blocks, never throws. */
export interface FacesSink {
  publishFaces(streamId: string, event: FacesEvent): void;
  /** The publisher's counters and broker connection state (metrics, health). */
  counters?(): PublisherCounters;
}

/** An open StreamAnalyze call, as the server tracks it for limits and shutdown. */
export interface OpenStream {
  readonly streamId: string;
  /** The client's address without its port (per-client stream limit). */
  readonly peer: string;
  /** Stops reading, drops what waits, lets the frame in flight finish, ends the call with `reason`. */
  shutdown(reason: string): void;
}

export interface ServingContext {
  readonly config: ServerConfig;
  readonly registry: ModelRegistry;
  readonly pipeline: FramePipeline;
  readonly slots: Semaphore;
  readonly scheduler: StreamScheduler;
  readonly unary: UnaryLane;
  readonly stats: ServerStats;
  /** Prometheus metrics (kept whether or not they are served over HTTP). */
  readonly metrics: ServerMetrics;
  readonly gallery: IdentityGallery | undefined;
  readonly events: FacesSink | undefined;
  readonly streams: Set<OpenStream>;
  /** Calls that have not sent their StreamConfig yet (limited by maxUnconfiguredStreams, timed by streamConfigTimeoutMs). */
  readonly pendingStreams: Set<OpenStream>;
  readonly log: Logger;
  /** False until warm-up is done and again while shutting down; calls then fail with UNAVAILABLE. */
  serving(): boolean;
}

/** The context with the switches only the server turns: serving on and off, where events go, and releasing what it holds. */
export interface ServingControl {
  readonly ctx: ServingContext;
  setServing(on: boolean): void;
  setEvents(sink: FacesSink | undefined): void;
  /** Counters as published on the stats topic. */
  snapshot(): StatsSnapshotView;
  /** Releases every model session and closes the gallery (calls must have finished). Idempotent. */
  release(): Promise<void>;
}

/**
 * Scans the model repository (the detector must be there: FAILED_PRECONDITION otherwise), opens the identity gallery
 * and builds the scheduler, lanes and counters. Nothing is loaded yet and the context is not serving.
 */
export async function createServingContext(cfg: ServerConfig, log: Logger, framePath?: FramePath): Promise<ServingControl> {
  // Batched runs are counted by the metrics, which are made after the registry (they read it).
  const late: { metrics?: ServerMetrics } = {};
  const registry = await openRegistry(cfg, log, (model, run) => late.metrics?.batchRun(model, run));
  if (cfg.galleryPath !== ':memory:') mkdirSync(dirname(resolve(cfg.galleryPath)), { recursive: true });
  const gallery = IdentityGallery.open({ path: cfg.galleryPath });
  const stats = new ServerStats();
  let events: FacesSink | undefined;
  const pixelBudget = new PixelBudget(cfg.maxPixelsInFlight);
  const metrics = new ServerMetrics({
    stats,
    pixels: () => pixelBudget.stats(),
    tracksLive: liveTracks,
    streamsOpen: () => streams.size,
    inferenceSlotsBusy: () => slots.busy,
    models: () => registry.list(),
    mqtt: () => events?.counters?.(),
  });
  late.metrics = metrics;
  const slots = new Semaphore(cfg.maxConcurrentInferences);
  const scheduler = new StreamScheduler(slots);
  const unary = new UnaryLane(scheduler, cfg.maxQueuedRequests);
  const streams = new Set<OpenStream>();
  let serving = false;
  let released: Promise<void> | undefined;
  const ctx: ServingContext = {
    config: cfg,
    registry,
    pipeline: new FramePipeline({ config: cfg, registry, gallery, pixelBudget, observer: metrics, ...(framePath ? { framePath } : {}) }),
    slots,
    scheduler,
    unary,
    stats,
    metrics,
    gallery,
    get events() {
      return events;
    },
    streams,
    pendingStreams: new Set<OpenStream>(),
    log,
    serving: () => serving,
  };
  return {
    ctx,
    setServing: (on) => void (serving = on),
    setEvents: (sink) => void (events = sink),
    snapshot: () => stats.snapshot({ streamsOpen: streams.size, inferenceSlotsBusy: slots.busy, unaryQueued: unary.queued }),
    release: () =>
      (released ??= (async () => {
        await registry.close();
        gallery.close();
      })()),
  };
}

/** The model registry's options as the config sets them (the server's, and the benches' in-process pipelines). */
export function registryOptionsOf(cfg: ServerConfig, logger: Logger, onBatch?: BatchObserver): ModelRegistryOptions {
  return {
    repository: resolve(cfg.modelRepository),
    session: {
      providers: cfg.executionProviders,
      intraOpThreads: cfg.intraOpThreads,
      deviceId: cfg.deviceId,
      allowSpinning: cfg.ortAllowSpinning,
      thread: cfg.ortThread,
    },
    warmupRuns: cfg.warmupRuns,
    precision: cfg.modelPrecision,
    ...(cfg.batchMaxFaces > 0 ? { batching: { maxBatch: cfg.batchMaxFaces, maxQueueDelayMs: cfg.batchMaxQueueDelayMs } } : {}),
    ...(onBatch ? { onBatch } : {}),
    watch: cfg.watchRepository,
    rescanMs: cfg.repositoryRescanMs,
    logger,
  };
}

async function openRegistry(cfg: ServerConfig, log: Logger, onBatch: BatchObserver): Promise<ModelRegistry> {
  const registry = new ModelRegistry(registryOptionsOf(cfg, log.child({ component: 'models' }), onBatch));
  await registry.scan();
  if (!registry.has(cfg.detectorModel)) {
    throw new FailedPreconditionError(
      `detector model "${cfg.detectorModel}" not found in ${registry.repository}: run \`kt models build\` or set modelRepository`,
    );
  }
  return registry;
}
