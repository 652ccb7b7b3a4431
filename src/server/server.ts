// Starts the serving stack: models warmed, gRPC services bound, health, reflection, MQTT events; and stops it cleanly.
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { Server, ServerCredentials } from '@grpc/grpc-js';
import { KtError, errorMessage } from '../core/errors.js';
import { createLogger, type Logger } from '../core/log.js';
import { FaceAnalysisService } from '../gen/kt/v1/face_analysis.js';
import { GalleryService } from '../gen/kt/v1/gallery.js';
import { ModelsService } from '../gen/kt/v1/models.js';
import { HealthService } from '../gen/grpc/health/v1/health.js';
import { IdentityGallery } from './gallery/store.js';
import { createMqttPublisher, type MqttEventPublisher } from '../events/mqtt/publisher.js';
import { resolveBroker, type ResolvedBroker } from './mqtt/embedded-broker.js';
import { resolveServerConfig, splitListenAddress, type ServerConfig, type ServerConfigOverlay } from './config.js';
import { HealthState, ServingStatus } from './health.js';
import { ModelRegistry } from './model-registry.js';
import { FramePipeline } from './pipeline.js';
import { addReflection } from './reflection.js';
import { Semaphore } from './semaphore.js';
import { ServerStats, type StatsSnapshotView } from './server-stats.js';
import { faceAnalysisService } from './service-face-analysis.js';
import { galleryService } from './service-gallery.js';
import { modelsService } from './service-models.js';
import type { OpenStream, ServingContext } from './serving-context.js';
import { StreamScheduler } from './stream-scheduler.js';
import { UnaryLane } from './unary-lane.js';

export interface RunningServer {
  /** `host:port` actually bound (the port resolved when 0 was asked for). */
  readonly address: string;
  readonly port: number;
  /** The merged configuration in force. */
  readonly config: ServerConfig;
  /** Where MQTT events go: the broker URL and whether it is configured, a local one or embedded; undefined when MQTT is off. */
  readonly mqtt: { url: string; source: ResolvedBroker['source'] } | undefined;
  /** Model versions and their state (for logs and tests). */
  readonly registry: ModelRegistry;
  /** Counters as published on the stats topic. */
  stats(): StatsSnapshotView;
  /** Stops accepting calls, lets calls in flight finish (up to shutdownGraceMs), publishes `offline`, releases everything. Idempotent. */
  close(): Promise<void>;
}

export interface StartServerOptions {
  logger?: Logger;
}

export const servedServices = ['kt.v1.FaceAnalysis', 'kt.v1.Models', 'kt.v1.Gallery'] as const;

/**
 * Starts a server from a config (partial: merged over the defaults). The port is bound first, with health
 * NOT_SERVING; the promise resolves once the detector and the models of `config.tasks` are loaded and warmed up
 * and health says SERVING. A detector that cannot load fails the start; a task model that cannot load is logged
 * and marked FAILED, and requests for it fail with FAILED_PRECONDITION.
 */
export async function startServer(config: ServerConfigOverlay | ServerConfig = {}, options: StartServerOptions = {}): Promise<RunningServer> {
  const cfg = resolveServerConfig(config);
  const log = options.logger ?? createLogger('serve');
  const registry = new ModelRegistry({
    repository: resolve(cfg.modelRepository),
    session: { providers: cfg.executionProviders, intraOpThreads: cfg.intraOpThreads, deviceId: cfg.deviceId },
    warmupRuns: cfg.warmupRuns,
    watch: cfg.watchRepository,
    rescanMs: cfg.repositoryRescanMs,
    logger: log.child('models'),
  });
  await registry.scan();
  if (!registry.has(cfg.detectorModel)) {
    throw new KtError('FAILED_PRECONDITION', `detector model "${cfg.detectorModel}" not found in ${registry.repository}: run \`kt models build\` or set modelRepository`);
  }

  let gallery: IdentityGallery | undefined;
  if (cfg.galleryPath !== ':memory:') mkdirSync(dirname(resolve(cfg.galleryPath)), { recursive: true });
  gallery = IdentityGallery.open({ path: cfg.galleryPath });

  let broker: ResolvedBroker | undefined;
  let publisher: MqttEventPublisher | undefined;
  const stats = new ServerStats();
  const slots = new Semaphore(cfg.maxConcurrentInferences);
  const scheduler = new StreamScheduler(slots);
  const unary = new UnaryLane(scheduler, cfg.maxQueuedRequests);
  const streams = new Set<OpenStream>();
  const health = new HealthState(servedServices);
  let serving = false;
  const snapshot = (): StatsSnapshotView => stats.snapshot({ streamsOpen: streams.size, inferenceSlotsBusy: slots.busy, unaryQueued: unary.queued });

  const ctx: ServingContext = {
    config: cfg,
    registry,
    pipeline: new FramePipeline({ config: cfg, registry, gallery }),
    slots,
    scheduler,
    unary,
    stats,
    gallery,
    get events() {
      return publisher;
    },
    streams,
    log,
    serving: () => serving,
  };

  const server = new Server({
    'grpc.max_receive_message_length': cfg.maxReceiveMessageBytes,
    'grpc.max_send_message_length': cfg.maxSendMessageBytes,
  });
  server.addService(FaceAnalysisService, faceAnalysisService(ctx));
  server.addService(ModelsService, modelsService(ctx));
  server.addService(GalleryService, galleryService(ctx));
  server.addService(HealthService, health.service());
  addReflection(server);

  const cleanup = async (): Promise<void> => {
    await publisher?.close().catch(() => undefined);
    await broker?.close().catch(() => undefined);
    await registry.close();
    gallery?.close();
    gallery = undefined;
  };

  let port: number;
  try {
    port = await new Promise<number>((ok, fail) =>
      server.bindAsync(cfg.listenAddress, ServerCredentials.createInsecure(), (err, boundPort) => (err ? fail(new KtError('UNAVAILABLE', `cannot listen on ${cfg.listenAddress}: ${err.message}`)) : ok(boundPort))),
    );
  } catch (e) {
    await cleanup();
    throw e;
  }
  const { host } = splitListenAddress(cfg.listenAddress);
  const address = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  log.info(`gRPC listening on ${address} (max message ${(cfg.maxReceiveMessageBytes / 1048576).toFixed(0)} MiB); health NOT_SERVING until models are warm`);

  try {
    if (cfg.mqttEnabled) {
      broker = await resolveBroker({
        ...(cfg.mqttUrl !== '' ? { url: cfg.mqttUrl } : {}),
        embeddedPort: cfg.embeddedBrokerPort,
        embeddedHost: cfg.embeddedBrokerHost,
        logger: log.child('mqtt'),
      });
      publisher = createMqttPublisher(
        {
          url: broker.url,
          topicPrefix: cfg.mqttTopicPrefix,
          ...(cfg.mqttNodeId !== '' ? { nodeId: cfg.mqttNodeId } : {}),
          qos: cfg.mqttQos,
          statsIntervalMs: cfg.statsIntervalMs,
          statsSource: () => ({ ...snapshot() }),
        },
        log.child('mqtt'),
      );
      log.info(`MQTT events to ${broker.url} (${broker.source === 'embedded' ? 'embedded aedes broker' : broker.source === 'local' ? 'broker already running locally' : 'configured broker'}), topics ${publisher.options.topicPrefix}/${publisher.options.nodeId}/...`);
    } else {
      log.info('MQTT events disabled');
    }

    // Warm-up: the detector must load; task models that fail are reported and the rest serve.
    const started = performance.now();
    await registry.load(cfg.detectorModel);
    const names = [...new Set(cfg.tasks.map((t) => cfg.taskModels[t]))];
    for (const name of names) {
      try {
        await registry.load(name);
      } catch (e) {
        log.error(`model ${name} (tasks ${cfg.tasks.filter((t) => cfg.taskModels[t] === name).join(', ')}) failed to load: ${errorMessage(e)}`);
      }
    }
    const providers = [...new Set(registry.list().filter((v) => v.state === 'LOADED').map((v) => `${v.name} v${v.version}: ${v.provider}`))];
    log.info(`models warm in ${(performance.now() - started).toFixed(0)} ms (${providers.join(', ')}); execution providers asked for: ${cfg.executionProviders.join(' > ')}`);
  } catch (e) {
    server.forceShutdown();
    await cleanup();
    throw e;
  }
  registry.start();
  serving = true;
  health.setAll(ServingStatus.SERVING);
  log.info('health SERVING');

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      serving = false;
      health.setAll(ServingStatus.NOT_SERVING);
      health.endWatches();
      for (const s of [...streams]) s.shutdown('server shutting down');
      await new Promise<void>((done) => {
        const timer = setTimeout(() => {
          log.warn(`calls still running after ${cfg.shutdownGraceMs} ms; cancelling them`);
          server.forceShutdown();
          done();
        }, cfg.shutdownGraceMs);
        server.tryShutdown(() => {
          clearTimeout(timer);
          done();
        });
      });
      // Frames still in ONNX Runtime finish before their sessions are released.
      const idleBy = Date.now() + cfg.shutdownGraceMs;
      while (slots.busy > 0 && Date.now() < idleBy) await new Promise((r) => setTimeout(r, 20));
      await cleanup();
      log.info('server stopped');
    })();
    return closing;
  };

  return {
    address,
    port,
    config: cfg,
    mqtt: broker ? { url: broker.url, source: broker.source } : undefined,
    registry,
    stats: snapshot,
    close,
  };
}
