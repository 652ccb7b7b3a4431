// The gateway runtime: many cameras in one process, each its own pipeline (camera.ts) on one shared SDK client (TLS and
// token from the config on every call, streams included); shared sinks; plugin options checked before anything starts.
import { isAbsolute, resolve } from 'node:path';
import { InvalidInputError, errorMessage } from '../core/errors.js';
import { createBasicLogger, type Logger } from '../core/log-types.js';
import { nearestName } from '../core/schema.js';
import { FaceAnalysisClient } from '../sdk/client.js';
import type { FaceAnalysisClientInit } from '../sdk/client-options.js';
import { PluginHost, type PluginHostHealth } from '../sdk/plugin-host.js';
import { loadPlugin } from '../sdk/plugin-loader.js';
import type { GatewayEvent, PluginKind } from '../sdk/plugin-kinds.js';
import { isPluginOptionError, type AnyPluginFactory, type PluginRegistry } from '../sdk/plugin.js';
import { gatewayRegistry } from './builtins.js';
import { Camera, type CameraStatus } from './camera.js';
import type { CameraConfig, GatewayConfig, PluginRefConfig } from './config.js';

export interface GatewayStatus {
  cameras: CameraStatus[];
  sinks: PluginHostHealth[];
}

export interface GatewayInit {
  log?: Logger;
  /** Plugins to use; default: every built-in. */
  registry?: PluginRegistry;
  /** Extra client options (tests shorten reconnect budgets). */
  client?: FaceAnalysisClientInit;
}

/** A plugin reference resolved against the registry: its factory and its options (without `type`). */
interface ResolvedRef {
  factory: AnyPluginFactory;
  options: Record<string, unknown>;
}

/** Options the gateway fills in for a source that declares them and whose camera did not set them. */
function sourceDefaults(config: GatewayConfig, camera: CameraConfig): Record<string, unknown> {
  return {
    ffmpegPath: config.ffmpegPath,
    transport: camera.transport,
    reconnectInitialMs: config.reconnect.initialMs,
    reconnectMaxMs: config.reconnect.maxMs,
    reconnectJitter: config.reconnect.jitter,
  };
}

/** Resolves `ref` of `kind`; problems are pushed naming `where` (`camera "lobby" (cameras[1]) field source`). */
function resolveRef(
  registry: PluginRegistry,
  kind: PluginKind,
  ref: PluginRefConfig,
  where: string,
  problems: string[],
  extra: { defaults?: Record<string, unknown>; baseDir?: string } = {},
): ResolvedRef | undefined {
  const { type, ...given } = ref;
  let factory: AnyPluginFactory;
  try {
    factory = registry.get(type, kind);
  } catch (e) {
    const near = nearestName(type, registry.names(kind));
    problems.push(`${where}.type: ${errorMessage(e)}${near ? ` (did you mean "${near}"?)` : ''}`);
    return undefined;
  }
  const known = Object.keys((factory.schema as { properties?: object }).properties ?? {});
  const options: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(extra.defaults ?? {})) if (known.includes(k)) options[k] = v;
  Object.assign(options, given);
  // Paths in the config are relative to the config file.
  if (extra.baseDir !== undefined && typeof options['path'] === 'string' && !isAbsolute(options['path']))
    options['path'] = resolve(extra.baseDir, options['path']);
  try {
    factory.resolveOptions(options);
  } catch (e) {
    const field = isPluginOptionError(e) && e.option !== '' ? `.${e.option}` : '';
    problems.push(`${where}${field}: ${errorMessage(e)}`);
    return undefined;
  }
  return { factory, options };
}

/** Checks every camera's source and filters and every sink against its plugin; throws one error listing all problems. */
export function resolvePlugins(
  config: GatewayConfig,
  registry: PluginRegistry,
): { cameras: { camera: CameraConfig; source: ResolvedRef; filters: ResolvedRef[] }[]; sinks: ResolvedRef[] } {
  const problems: string[] = [];
  const cameras = config.cameras.map((camera, i) => {
    const who = `camera "${camera.id}" (cameras[${i}]) field`;
    const source = resolveRef(registry, 'source', camera.source, `${who} source`, problems, {
      defaults: sourceDefaults(config, camera),
      baseDir: config.baseDir,
    });
    const filters = camera.filters.map((f, j) => resolveRef(registry, 'filter', f, `${who} filters[${j}]`, problems));
    return { camera, source, filters };
  });
  const sinks = config.sinks.map((s, i) => resolveRef(registry, 'sink', s, `field sinks[${i}]`, problems, { baseDir: config.baseDir }));
  if (problems.length > 0) throw new InvalidInputError(problems.join('; '));
  return {
    cameras: cameras.map((c) => ({ camera: c.camera, source: c.source!, filters: c.filters.map((f) => f!) })),
    sinks: sinks.map((s) => s!),
  };
}

/** Loads third-party plugins named in the config into `registry` (paths relative to the config file). */
export async function loadThirdParty(config: GatewayConfig, registry: PluginRegistry, log: Logger): Promise<void> {
  for (const [i, spec] of config.plugins.entries()) {
    try {
      const factories = await loadPlugin(spec, { baseDir: config.baseDir, registry });
      log.info({ spec, plugins: factories.map((f) => `${f.kind ?? 'sink'} ${f.pluginName}`) }, 'plugins loaded');
    } catch (e) {
      throw new InvalidInputError(`field plugins[${i}] "${spec}": ${errorMessage(e)}`, { cause: e });
    }
  }
}

export class Gateway {
  readonly client: FaceAnalysisClient;
  private readonly log: Logger;
  private readonly cameras: Camera[] = [];
  private readonly sinks: PluginHost[] = [];
  private statsTimer: NodeJS.Timeout | undefined;

  private constructor(
    readonly config: GatewayConfig,
    log: Logger,
    clientInit: FaceAnalysisClientInit,
  ) {
    this.log = log;
    const s = config.server;
    this.client = new FaceAnalysisClient(s.address, {
      ...clientInit,
      tls: s.tls,
      ...(s.token !== undefined ? { token: s.token } : {}),
      ...(s.deadlineMs !== undefined ? { deadlineMs: s.deadlineMs } : {}),
    });
  }

  /** Checks the plugins of every camera and sink (one error listing every problem) and starts everything. */
  static async start(config: GatewayConfig, init: GatewayInit = {}): Promise<Gateway> {
    const log = init.log ?? createBasicLogger('gateway');
    const registry = init.registry ?? gatewayRegistry();
    await loadThirdParty(config, registry, log);
    const plan = resolvePlugins(config, registry);
    const gateway = new Gateway(config, log, init.client ?? {});
    try {
      await gateway.launch(plan);
    } catch (e) {
      await gateway.stop();
      throw e;
    }
    return gateway;
  }

  private async launch(plan: ReturnType<typeof resolvePlugins>): Promise<void> {
    const backoff = {
      initialMs: this.config.reconnect.initialMs,
      maxMs: this.config.reconnect.maxMs,
      multiplier: 2,
      jitter: this.config.reconnect.jitter,
    };
    for (const [i, s] of plan.sinks.entries()) {
      const host = new PluginHost(s.factory, s.options, {
        label: `sinks[${i}]:${s.factory.pluginName}`,
        log: this.log,
        restartBackoff: backoff,
      });
      await host.start();
      this.sinks.push(host);
    }
    for (const c of plan.cameras) {
      if (!c.camera.enabled) continue;
      const camera = new Camera(c.camera, {
        client: this.client,
        sourceFactory: c.source.factory,
        sourceOptions: c.source.options,
        filters: c.filters,
        sinks: this.sinks,
        log: this.log,
        backoff,
        onEvent: (event) => this.broadcast(event),
      });
      this.cameras.push(camera);
      // One camera failing to start never stops another: its host retries it; a bug here is logged.
      await camera.start().catch((e: unknown) => this.log.error({ camera: camera.id, error: errorMessage(e) }, 'camera failed to start'));
    }
    this.log.info(
      { cameras: this.cameras.map((c) => c.id), sinks: this.sinks.map((s) => s.label), server: this.client.address },
      'gateway started',
    );
    if (this.config.statsIntervalMs > 0) {
      this.statsTimer = setInterval(() => this.logStats(), this.config.statsIntervalMs);
      this.statsTimer.unref();
    }
  }

  private broadcast(event: GatewayEvent): void {
    for (const sink of this.sinks) void sink.event(event);
  }

  private logStats(): void {
    for (const c of this.cameras) {
      const s = c.status();
      this.log.info(
        { camera: s.id, state: s.state, ...(s.reason !== undefined ? { reason: s.reason } : {}), ...s.counters },
        'camera stats',
      );
    }
  }

  /** Every camera's state and counters, and every sink's health. */
  status(): GatewayStatus {
    return { cameras: this.cameras.map((c) => c.status()), sinks: this.sinks.map((s) => s.health()) };
  }

  camera(id: string): Camera | undefined {
    return this.cameras.find((c) => c.id === id);
  }

  /** Stops cameras (sources first, so nothing new arrives), then sinks (they flush), then the client. */
  async stop(): Promise<void> {
    clearInterval(this.statsTimer);
    await Promise.all(this.cameras.map((c) => c.stop()));
    for (const s of this.sinks) await s.stop();
    this.client.close();
  }
}
