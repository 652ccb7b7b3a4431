// What the gRPC services share: config, models, the frame pipeline, the scheduler and its lanes, counters and events.
import type { Logger } from '../core/log.js';
import type { IdentityGallery } from './gallery/store.js';
import type { FacesEvent } from '../contract/face-events.js';
import type { ServerConfig } from './config.js';
import type { ModelRegistry } from './model-registry.js';
import type { FramePipeline } from './pipeline.js';
import type { Semaphore } from './semaphore.js';
import type { ServerStats } from './server-stats.js';
import type { StreamScheduler } from './stream-scheduler.js';
import type { UnaryLane } from './unary-lane.js';

/** Where faces events go (the MQTT publisher); never blocks, never throws. */
export interface FacesSink {
  publishFaces(streamId: string, event: FacesEvent): void;
}

/** An open StreamAnalyze call, as the server tracks it for limits and shutdown. */
export interface OpenStream {
  readonly streamId: string;
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
  readonly gallery: IdentityGallery | undefined;
  readonly events: FacesSink | undefined;
  readonly streams: Set<OpenStream>;
  readonly log: Logger;
  /** False until warm-up is done and again while shutting down; calls then fail with UNAVAILABLE. */
  serving(): boolean;
}
