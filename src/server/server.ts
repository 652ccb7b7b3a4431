// Starts the serving stack: models warmed, gRPC services bound, health, reflection, MQTT events; and stops it cleanly.
import { Server, type ServerInterceptor } from '@grpc/grpc-js';
import { UnavailableError, errorMessage } from '../core/errors.js';
import { createLogger, type Logger } from '../core/log.js';
import { FaceAnalysisService } from '../gen/kt/v1/face_analysis.js';
import { GalleryService } from '../gen/kt/v1/gallery.js';
import { ModelsService } from '../gen/kt/v1/models.js';
import { HealthService } from '../gen/grpc/health/v1/health.js';
import { createMqttPublisher, type MqttEventPublisher } from '../events/mqtt/publisher.js';
import { brokerCredentials, summariseCredentials } from './mqtt/broker-credentials.js';
import { resolveBroker, type ResolvedBroker } from './mqtt/embedded-broker.js';
import { resolveServerConfig, splitListenAddress, type ServerConfig, type ServerConfigOverlay } from './config.js';
import { HealthState, ServingStatus } from './health.js';
import { startOpsHttp, type OpsHttpServer } from './http-ops.js';
import type { ModelRegistry } from './model-registry.js';
import { addReflection } from './reflection.js';
import { authInterceptor, authModeOf } from './auth.js';
import { loadTokens } from './auth-tokens.js';
import { grpcServerCredentials, type GrpcServerCredentials } from './tls.js';
import { addLenientService } from './request-decoding.js';
import { setConnectionWindow, setStreamWindow, type Http2Windows } from './http2-windows.js';
import type { StatsSnapshotView } from './server-stats.js';
import { faceAnalysisService } from './service-face-analysis.js';
import { galleryService } from './service-gallery.js';
import { modelsService } from './service-models.js';
import type { FramePath } from './frame-path.js';
import { createServingContext, type ServingContext, type ServingControl } from './serving-context.js';

export interface RunningServer {
  /** `host:port` actually bound (the port resolved when 0 was asked for). */
  readonly address: string;
  readonly port: number;
  /** The merged configuration in force. */
  readonly config: ServerConfig;
  /** Where MQTT events go: the broker URL and whether it is configured, a local one or embedded; undefined when MQTT is off. */
  readonly mqtt: { url: string; source: ResolvedBroker['source'] } | undefined;
  /** `host:port` of the /metrics and /health HTTP listener; undefined when metricsAddress is ''. */
  readonly metricsAddress: string | undefined;
  /** Model versions and their state (for logs and tests). */
  readonly registry: ModelRegistry;
  /** Counters as published on the stats topic. */
  stats(): StatsSnapshotView;
  /** Stops accepting calls, lets calls in flight finish (up to shutdownGraceMs), publishes `offline`, releases everything. Idempotent. */
  close(): Promise<void>;
}

export interface StartServerOptions {
  logger?: Logger;
  /** Where KT_TOKENS and KT_TOKEN_FILE are read. Default process.env. */
  env?: Readonly<Record<string, string | undefined>>;
  /** How frames become model inputs; default the serving path (the bench serves the reference path as well). */
  framePath?: FramePath;
}

export const servedServices = ['kt.v1.FaceAnalysis', 'kt.v1.Models', 'kt.v1.Gallery'] as const;

/**
 * Starts a server from a config (partial: merged over the defaults). The port is bound first, with health
 * NOT_SERVING; the promise resolves once the detector and the models of `config.tasks` are loaded and warmed up
 * and health says SERVING. A detector that cannot load fails the start; a task model that cannot load is logged
 * and marked FAILED, and requests for it fail with FAILED_PRECONDITION.
 */
export async function startServer(
  config: ServerConfigOverlay | ServerConfig = {},
  options: StartServerOptions = {},
): Promise<RunningServer> {
  const cfg = resolveServerConfig(config);
  const log = options.logger ?? createLogger('serve');
  // Auth and TLS first: a config that must not serve fails before any model loads.
  const auth = authModeOf(cfg, await loadTokens(cfg.tokenFile, options.env ?? process.env));
  const tls = grpcServerCredentials(cfg, log);
  log.info({ auth: auth.kind, transport: tls.mode, reflection: cfg.reflection }, 'gRPC security');
  const serving = await createServingContext(cfg, log, options.framePath).catch((e: unknown) => {
    tls.close();
    throw e;
  });
  const health = new HealthState(servedServices);
  const server = grpcServer(serving.ctx, health, authInterceptor(auth, log));
  let events: ServerEvents | undefined;
  let ops: OpsHttpServer | undefined;
  const release = async (): Promise<void> => {
    tls.close();
    await ops?.close();
    await events?.close();
    await serving.release();
  };

  const bound = await bindGrpc(server, cfg, tls, log).catch(async (e: unknown) => {
    await release();
    throw e;
  });
  try {
    ops = await startOps(serving.ctx, health, log);
    events = await startEvents(cfg, log, serving.snapshot, options.env ?? process.env);
    serving.setEvents(events?.publisher);
    await warmModels(serving.ctx.registry, cfg, log);
  } catch (e) {
    server.forceShutdown();
    await release();
    throw e;
  }
  serving.ctx.registry.start();
  serving.setServing(true);
  health.setAll(ServingStatus.SERVING);
  log.info('health SERVING');

  return {
    ...bound,
    config: cfg,
    mqtt: events ? { url: events.broker.url, source: events.broker.source } : undefined,
    metricsAddress: ops?.address,
    registry: serving.ctx.registry,
    stats: serving.snapshot,
    close: makeClose({ server, serving, health, log, release }),
  };
}

function grpcServer(ctx: ServingContext, health: HealthState, auth: ServerInterceptor): Server {
  const server = new Server({
    // One interceptor checks the token and role of every call, unary and streaming, before a handler runs.
    interceptors: [auth],
    'grpc.max_receive_message_length': ctx.config.maxReceiveMessageBytes,
    'grpc.max_send_message_length': ctx.config.maxSendMessageBytes,
    // Dead peers (a camera unplugged mid-stream) are found by pings instead of holding their streams until TCP gives up.
    'grpc.keepalive_time_ms': ctx.config.keepaliveTimeMs,
    'grpc.keepalive_timeout_ms': ctx.config.keepaliveTimeoutMs,
  });
  // Malformed protobuf from a client is its mistake: INVALID_ARGUMENT (per frame on a stream), never INTERNAL.
  addLenientService(server, FaceAnalysisService, faceAnalysisService(ctx));
  addLenientService(server, ModelsService, modelsService(ctx));
  addLenientService(server, GalleryService, galleryService(ctx));
  addLenientService(server, HealthService, health.service());
  if (ctx.config.reflection) addReflection(server);
  setStreamWindow(server, http2Windows(ctx.config));
  return server;
}

const http2Windows = (cfg: ServerConfig): Http2Windows => ({
  streamWindowBytes: cfg.http2StreamWindowBytes,
  connectionWindowBytes: cfg.http2ConnectionWindowBytes,
});

/** Binds the listen address (UNAVAILABLE when taken); health stays NOT_SERVING until the models are warm. */
async function bindGrpc(
  server: Server,
  cfg: ServerConfig,
  tls: GrpcServerCredentials,
  log: Logger,
): Promise<{ address: string; port: number }> {
  const port = await new Promise<number>((ok, fail) =>
    server.bindAsync(cfg.listenAddress, tls.credentials, (err, boundPort) =>
      err ? fail(new UnavailableError(`cannot listen on ${cfg.listenAddress}: ${err.message}`)) : ok(boundPort),
    ),
  );
  setConnectionWindow(server, http2Windows(cfg));
  const { host } = splitListenAddress(cfg.listenAddress);
  const address = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  log.info(
    { address, maxMessageMiB: Math.round(cfg.maxReceiveMessageBytes / 1048576) },
    'gRPC listening; health NOT_SERVING until models are warm',
  );
  return { address, port };
}

/** The /metrics and /health listener when metricsAddress is set: live from the start, ready once gRPC health is SERVING. */
async function startOps(ctx: ServingContext, health: HealthState, log: Logger): Promise<OpsHttpServer | undefined> {
  if (ctx.config.metricsAddress === '') return undefined;
  ctx.metrics.collectProcessMetrics();
  return startOpsHttp({
    address: ctx.config.metricsAddress,
    metrics: ctx.metrics,
    ready: () => health.get('') === ServingStatus.SERVING,
    details: () => {
      const mqtt = ctx.events?.counters?.();
      return mqtt === undefined ? {} : { mqttConnected: mqtt.connected, mqttQueued: mqtt.queued };
    },
    logger: log.child({ component: 'ops-http' }),
  });
}

/** The MQTT side of a running server: where events go and the publisher that sends them. */
interface ServerEvents {
  readonly broker: ResolvedBroker;
  readonly publisher: MqttEventPublisher;
  /** Publishes `offline`, disconnects, stops an embedded broker; never throws. */
  close(): Promise<void>;
}

const brokerSourceText: Record<ResolvedBroker['source'], string> = {
  embedded: 'embedded aedes broker',
  local: 'broker already running locally',
  configured: 'configured broker',
};

/** Resolves the broker (configured, local or embedded) and starts the publisher; undefined when MQTT is off. */
async function startEvents(
  cfg: ServerConfig,
  log: Logger,
  stats: () => StatsSnapshotView,
  env: Readonly<Record<string, string | undefined>>,
): Promise<ServerEvents | undefined> {
  if (!cfg.mqttEnabled) {
    log.info('MQTT events disabled');
    return undefined;
  }
  const mqttLog = log.child({ component: 'mqtt' });
  // Read first: a missing certificate file fails the start before a broker is started or probed.
  const credentials = brokerCredentials(cfg, env);
  const broker = await resolveBroker({
    ...(cfg.mqttUrl !== '' ? { url: cfg.mqttUrl } : {}),
    embeddedPort: cfg.embeddedBrokerPort,
    embeddedHost: cfg.embeddedBrokerHost,
    logger: mqttLog,
  });
  let publisher: MqttEventPublisher;
  try {
    const publisherOptions = {
      url: broker.url,
      topicPrefix: cfg.mqttTopicPrefix,
      qos: cfg.mqttQos,
      statsIntervalMs: cfg.statsIntervalMs,
      ...credentials,
    };
    publisher = createMqttPublisher(
      { ...publisherOptions, ...(cfg.mqttNodeId !== '' ? { nodeId: cfg.mqttNodeId } : {}), statsSource: () => ({ ...stats() }) },
      mqttLog,
    );
  } catch (e) {
    await broker.close().catch(() => undefined);
    throw e;
  }
  const { topicPrefix, nodeId } = publisher.options;
  log.info(
    {
      url: broker.url,
      brokerSource: broker.source,
      topics: `${topicPrefix}/${nodeId}/...`,
      credentials: summariseCredentials(credentials),
    },
    `MQTT events to the ${brokerSourceText[broker.source]}`,
  );
  return {
    broker,
    publisher,
    close: async () => {
      await publisher.close().catch(() => undefined);
      await broker.close().catch(() => undefined);
    },
  };
}

/** The detector must load; task models that fail are reported and the rest serve. */
async function warmModels(registry: ModelRegistry, cfg: ServerConfig, log: Logger): Promise<void> {
  const started = performance.now();
  await registry.load(cfg.detectorModel);
  for (const name of new Set(cfg.tasks.map((t) => cfg.taskModels[t]))) {
    try {
      await registry.load(name);
    } catch (e) {
      log.error(
        { model: name, tasks: cfg.tasks.filter((t) => cfg.taskModels[t] === name), error: errorMessage(e) },
        'model failed to load; its tasks fail with FAILED_PRECONDITION',
      );
    }
  }
  const loaded = registry.list().filter((v) => v.state === 'loaded');
  log.info(
    {
      warmupMs: Math.round(performance.now() - started),
      models: loaded.map((v) => `${v.name} v${v.version}`),
      providers: [...new Set(loaded.map((v) => v.provider))],
      providersAskedFor: cfg.executionProviders,
    },
    'models warm',
  );
}

interface CloseParts {
  server: Server;
  serving: ServingControl;
  health: HealthState;
  log: Logger;
  /** Closes events, releases models and the gallery. */
  release(): Promise<void>;
}

/** RunningServer.close: stop accepting, end streams, let calls finish within the grace period, then release everything. */
function makeClose({ server, serving, health, log, release }: CloseParts): () => Promise<void> {
  const { config: cfg, streams, pendingStreams, slots } = serving.ctx;
  let closing: Promise<void> | undefined;
  return () =>
    (closing ??= (async () => {
      serving.setServing(false);
      health.setAll(ServingStatus.NOT_SERVING);
      health.endWatches();
      for (const s of [...streams, ...pendingStreams]) s.shutdown('server shutting down');
      await drainCalls(server, cfg.shutdownGraceMs, log);
      // Frames still in ONNX Runtime finish before their sessions are released.
      const idleBy = Date.now() + cfg.shutdownGraceMs;
      while (slots.busy > 0 && Date.now() < idleBy) await new Promise((r) => setTimeout(r, 20));
      await release();
      log.info('server stopped');
    })());
}

/** tryShutdown, forced once the grace period is over. */
function drainCalls(server: Server, graceMs: number, log: Logger): Promise<void> {
  return new Promise<void>((done) => {
    const timer = setTimeout(() => {
      log.warn({ graceMs }, 'calls still running after the grace period; cancelling them');
      server.forceShutdown();
      done();
    }, graceMs);
    server.tryShutdown(() => {
      clearTimeout(timer);
      done();
    });
  });
}
