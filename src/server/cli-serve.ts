// `kt serve`: config file + device profile + flags merged into one ServerConfig; logs providers and broker; clean shutdown.
import { parse, type RegisterCommand } from '../core/cli-args.js';
import { InvalidInputError, errorMessage } from '../core/errors.js';
import type { Logger } from '../core/log-types.js';
import type { ServerConfigOverlay, TaskName } from './config.js';

const help = `kt serve [options]
  Starts the gRPC face-analysis server (FaceAnalysis, Models, Gallery, grpc.health.v1, reflection if enabled) and the
  MQTT events. Beyond 127.0.0.1 it needs tokens ($KT_TOKENS, $KT_TOKEN_FILE, --token-file) or mutual TLS (kt certs).
  Precedence: defaults < --device profile < --config file < flags.

  --config FILE          JSON or YAML file of ServerConfig fields (unknown keys are rejected with the nearest valid name)
  --device NAME|FILE     device profile from devices/NAME.json (default x86-cpu) or a profile file
  --listen HOST:PORT     listen address (default 127.0.0.1:50051)
  --token-file FILE      bearer tokens with roles (analyze, admin), JSON or YAML
  --reflection           serve gRPC server reflection (off by default)
  --repo DIR             model repository (default $KT_MODEL_REPOSITORY, else model-repository/ in the package)
  --tasks a,b,...        tasks warmed before SERVING, and run for a request that names none
                         (age,gender,emotion,landmarks,embedding,identity,mesh; default all)
  --providers a,b,...    execution providers in order (tensorrt,cuda,dml,coreml,cpu)
  --threads N            ONNX Runtime intra-op threads per session (0: ORT decides)
  --max-concurrent N     frames analysed at once
  --max-streams N        open StreamAnalyze calls
  --mqtt-url URL         MQTT broker (default: a local broker on 127.0.0.1:1883, else an embedded one)
  --no-mqtt              no MQTT events
  --node-id ID           MQTT node id (default: host name)
  --gallery FILE         identity gallery SQLite file (default kt-gallery.db)
  --metrics HOST:PORT    HTTP /metrics (Prometheus), /health/live, /health/ready, e.g. 127.0.0.1:9464 (default off)
  --print-config         print the merged config as JSON and exit
  --help                 print this help
`;

function positiveInt(flag: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidInputError(`${flag} expects a non-negative integer, got "${value}"`);
  return n;
}

export function registerServeCommands(register: RegisterCommand): void {
  register('serve', 'start the gRPC face-analysis server with MQTT events', async (argv) => {
    const { values } = parse(argv, {
      config: { type: 'string' },
      device: { type: 'string' },
      listen: { type: 'string' },
      'token-file': { type: 'string' },
      reflection: { type: 'boolean', default: false },
      repo: { type: 'string' },
      tasks: { type: 'string' },
      providers: { type: 'string' },
      threads: { type: 'string' },
      'max-concurrent': { type: 'string' },
      'max-streams': { type: 'string' },
      'mqtt-url': { type: 'string' },
      'no-mqtt': { type: 'boolean', default: false },
      'node-id': { type: 'string' },
      gallery: { type: 'string' },
      metrics: { type: 'string' },
      'print-config': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    });
    if (values.help) {
      process.stdout.write(help);
      return 0;
    }
    const [{ loadDeviceProfile }, { loadServerConfigFile, resolveServerConfig, validateConfigOverlay }, { createLogger }] =
      await Promise.all([import('./device-profile.js'), import('./config.js'), import('../core/log.js')]);
    const log = createLogger('serve');
    const profile = await loadDeviceProfile(values.device ?? 'x86-cpu');
    let fileOverlay: ServerConfigOverlay = {};
    // JSON or YAML by extension; syntax errors name line:column, bad fields are all listed with the nearest valid name.
    if (values.config !== undefined) fileOverlay = await loadServerConfigFile(values.config);
    const flags: Record<string, unknown> = {};
    if (values.listen !== undefined) flags['listenAddress'] = values.listen;
    if (values['token-file'] !== undefined) flags['tokenFile'] = values['token-file'];
    if (values.reflection) flags['reflection'] = true;
    if (values.repo !== undefined) flags['modelRepository'] = values.repo;
    if (values.tasks !== undefined) flags['tasks'] = values.tasks.split(',').filter(Boolean) as TaskName[];
    if (values.providers !== undefined) flags['executionProviders'] = values.providers.split(',').filter(Boolean);
    if (values.threads !== undefined) flags['intraOpThreads'] = positiveInt('--threads', values.threads);
    if (values['max-concurrent'] !== undefined)
      flags['maxConcurrentInferences'] = positiveInt('--max-concurrent', values['max-concurrent']);
    if (values['max-streams'] !== undefined) flags['maxStreams'] = positiveInt('--max-streams', values['max-streams']);
    if (values['mqtt-url'] !== undefined) flags['mqttUrl'] = values['mqtt-url'];
    if (values['no-mqtt']) flags['mqttEnabled'] = false;
    if (values['node-id'] !== undefined) flags['mqttNodeId'] = values['node-id'];
    if (values.gallery !== undefined) flags['galleryPath'] = values.gallery;
    if (values.metrics !== undefined) flags['metricsAddress'] = values.metrics;
    const config = resolveServerConfig(profile.config, fileOverlay, validateConfigOverlay(flags, 'flags'));
    if (values['print-config']) {
      process.stdout.write(`${JSON.stringify(config, null, 2)}\n`);
      // stderr, so that stdout stays a config file: what `tasks` means for a client that names none.
      process.stderr.write(
        `tasks [${config.tasks.join(', ')}]: warmed before SERVING and run for every request that names no task ([TASK_DETECTION]: detection only)\n`,
      );
      return 0;
    }
    log.info({ profile: profile.name, description: profile.description }, 'device profile');
    for (const note of profile.notes) log.debug({ profile: profile.name, note }, 'profile note');
    log.info({ providers: config.executionProviders }, 'execution providers in order of preference');

    const { startServer } = await import('./server.js');
    const server = await startServer(config, { logger: log });
    log.info(
      {
        address: server.address,
        mqtt: server.mqtt ? server.mqtt.url : 'off',
        ...(server.mqtt ? { brokerSource: server.mqtt.source } : {}),
      },
      'serving',
    );
    await closeOnSignal(server, log);
    return 0;
  });
}

/** Resolves once SIGINT or SIGTERM has closed the server (offline published, calls in flight finished). */
async function closeOnSignal(server: { close(): Promise<void> }, log: Logger): Promise<void> {
  await new Promise<void>((resolve) => {
    const stop = (signal: string): void => {
      log.info({ signal }, 'shutting down (publishing offline, finishing calls in flight)');
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      server.close().then(resolve, (e: unknown) => {
        log.error({ error: errorMessage(e) }, 'shutdown failed');
        resolve();
      });
    };
    const onInt = (): void => stop('SIGINT');
    const onTerm = (): void => stop('SIGTERM');
    process.on('SIGINT', onInt);
    process.on('SIGTERM', onTerm);
  });
}
