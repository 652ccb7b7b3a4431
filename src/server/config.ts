// The server's options: one schema (types, defaults, docs, JSON Schema), one defaults object, one merge point that
// validates typed partial overlays.
import { Type, type Static } from '@sinclair/typebox';
import { readConfigFile } from '../core/config-file.js';
import { InvalidInputError } from '../core/errors.js';
import { defaultImageLimits } from '../core/image.js';
import { checkValue, literals, parseValue } from '../core/schema.js';
import { defaultRepositoryPath } from '../models/repository.js';
import { servingDefaultModels } from '../models/zoo.js';
import type { ExecutionProviderName } from '../onnx/runtime.js';
import { brokerUrlOrAutoSchema, nodeIdOrHostSchema, qosSchema, topicPrefixSchema } from '../contract/mqtt-topics.js';

import { taskNames, type TaskName } from '../contract/tasks.js';

export { taskNames, type TaskName };

import { dropPolicyNames, type DropPolicyName, type MqttQos } from '../contract/wire-names.js';

export { dropPolicyNames, type DropPolicyName, type MqttQos };

const providers: readonly ExecutionProviderName[] = ['tensorrt', 'cuda', 'dml', 'coreml', 'cpu'];

const int = (minimum: number, maximum: number | undefined, defaultValue: number, description: string) =>
  Type.Integer({ minimum, ...(maximum === undefined ? {} : { maximum }), default: defaultValue, description });
const num = (minimum: number, maximum: number, defaultValue: number, description: string) =>
  Type.Number({ minimum, maximum, default: defaultValue, description });
const bool = (defaultValue: boolean, description: string) => Type.Boolean({ default: defaultValue, description });
const text = (defaultValue: string, description: string) => Type.String({ minLength: 1, default: defaultValue, description });
const modelName = (defaultValue: string) => Type.String({ minLength: 1, default: defaultValue });

/** Repository model per task; a file may name only some tasks. Defaults: models/zoo.ts servingDefaultModels (chosen by `kt models eval`). */
const taskModelsSchema = Type.Object(
  Object.fromEntries(taskNames.map((task) => [task, modelName(servingDefaultModels[task])])) as Record<
    TaskName,
    ReturnType<typeof modelName>
  >,
  {
    additionalProperties: false,
    default: {},
    description: `Repository model that answers each task by default (a request may override per task). Defaults: ${taskNames.map((t) => `${t} ${servingDefaultModels[t]}`).join(', ')} (chosen by measurement: README "Model choice").`,
  },
);

/** Every field with its type, range, default and documentation (unit and why), as JSON Schema. */
export const serverConfigSchema = Type.Object(
  {
    // ---- gRPC listener ----
    listenAddress: Type.String({
      pattern: '^(\\[[0-9a-fA-F:]+\\]|[^:\\s]+):\\d{1,5}$',
      mustBe: 'host:port, e.g. "0.0.0.0:50051"',
      default: '127.0.0.1:50051',
      description:
        'host:port the gRPC server listens on. Default `127.0.0.1:50051` (loopback only, where calls without a token are allowed). To serve a LAN (`0.0.0.0:50051`), configure tokens (`tokenFile`, `KT_TOKENS`, `KT_TOKEN_FILE`) or mutual TLS (`tlsClientCaFile`): the server refuses to start on a non-loopback address without them. Port 0 picks a free port.',
    }),
    tlsCertFile: Type.String({
      default: '',
      description:
        "PEM certificate (chain) of the server; with `tlsKeyFile` it turns on TLS. Default '' (plain text). `kt certs` makes one for a LAN. Reloaded when the file changes (see tlsReloadIntervalMs).",
    }),
    tlsKeyFile: Type.String({ default: '', description: "PEM private key of `tlsCertFile`. Default ''." }),
    tlsClientCaFile: Type.String({
      default: '',
      description:
        "PEM CA certificate(s) that client certificates must chain to; when set, every client must present one (mutual TLS). Needs tlsCertFile. Default '' (no client certificates).",
    }),
    tlsReloadIntervalMs: int(
      100,
      undefined,
      10_000,
      'How often the TLS files are checked for changes, in milliseconds; a changed, valid set is used for new connections, an invalid one is logged and ignored. Default 10000.',
    ),
    tokenFile: Type.String({
      default: '',
      description:
        "JSON or YAML file of bearer tokens with roles: `{ tokens: [{ name, role: analyze|admin, token | sha256 }] }`. Default '' : `$KT_TOKEN_FILE` if set. Tokens in `$KT_TOKENS` (`role:token,...`) are added. With tokens, every call but grpc.health.v1 needs `authorization: Bearer <token>`.",
    }),
    allowUnauthenticated: bool(
      true,
      'When no token is configured, serve calls without one. Allowed only on a loopback listenAddress (127.0.0.0/8, ::1, localhost); elsewhere the server refuses to start. Configured tokens are always required. Default true (the default listener is 127.0.0.1).',
    ),
    reflection: bool(
      false,
      'Serve gRPC server reflection (v1 and v1alpha) for grpcurl, buf curl and Postman. Default false (it describes the whole API to anyone who can connect).',
    ),
    maxReceiveMessageBytes: int(
      1024,
      2 ** 31 - 1,
      16 * 1024 * 1024,
      "Largest request message accepted, in bytes. Default 16 MiB (16 777 216), raised deliberately from gRPC's 4 MiB: raw 1080p RGB8 is 6.2 MB and raw 4K NV12 is 12.4 MB. Larger messages fail with RESOURCE_EXHAUSTED.",
    ),
    maxSendMessageBytes: int(
      1024,
      2 ** 31 - 1,
      16 * 1024 * 1024,
      'Largest response message, in bytes. Default 16 MiB (a frame with 20 meshes is about 0.5 MB).',
    ),
    maxFramePixels: int(
      1,
      undefined,
      defaultImageLimits.maxPixels,
      'Largest decoded or raw frame in pixels (width x height); larger frames are INVALID_ARGUMENT. Default 50 000 000 (8K is 33.2 M).',
    ),

    // ---- models ----
    // No `default` keyword: the default depends on the installation (and would make the emitted schema machine-specific).
    modelRepository: Type.String({
      minLength: 1,
      description:
        'Model repository folder (`<repo>/<name>/<version>/model.onnx + model.json`). Default `$KT_MODEL_REPOSITORY` or `./model-repository` of the package.',
    }),
    tasks: Type.Array(literals(taskNames), {
      default: [...taskNames],
      description:
        'Tasks whose models are loaded and warmed up before health reports SERVING (other tasks load on first use), and the default tasks: a request that names no task (AnalysisOptions.tasks empty) gets these; [TASK_DETECTION] asks for detection only. Default every task.',
    }),
    taskModels: taskModelsSchema,
    modelPrecision: Type.Record(Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$' }), literals(['fp32', 'int8', 'fp16'] as const), {
      default: {},
      description:
        'Per model name, the precision of the version served when a request names no version: `int8` / `fp16` pick the newest version made by `kt models quantize` at that precision (falling back to fp32 when there is none). Models not listed serve their newest fp32 version. Device profiles set int8 only where the measured accuracy change is within tolerance. Default `{}`.',
    }),
    detectorModel: text('blazeface', 'Repository name of the face detector (a BlazeFace-decoded model). Default `blazeface`.'),
    executionProviders: Type.Array(literals(providers), {
      minItems: 1,
      default: ['cpu'],
      description:
        "Execution providers in order of preference; one that fails to initialise is skipped with a logged reason. Default `['cpu']`.",
    }),
    deviceId: int(0, 64, 0, 'GPU device id for cuda / tensorrt (the only option the Node binding passes to them). Default 0.'),
    ortAllowSpinning: Type.Boolean({
      default: false,
      description:
        "Whether ONNX Runtime's idle intra-op threads spin waiting for work. Off by default: on a small box spinning threads take the cores that decoding, crops and the other model runs need (`npm run bench -- --sections threads`: 1.9-2.9x the frames/s of spinning on 2 cores under load). Default false.",
    }),
    intraOpThreads: int(0, 1024, 0, 'ONNX Runtime intra-op threads per session; 0 lets ORT choose (all physical cores). Default 0.'),
    cropEngine: literals(['kernel', 'libvips'] as const, {
      default: 'kernel',
      description:
        'The code that cuts face crops inside the frame for the task models: `kernel` (default; one JS pass that crops, resizes and normalises into the model input) or `libvips` (sharp on the thread pool, then normalisation). Which is faster depends on the CPU: `npm run bench -- --sections preprocess` measures both (rows k1 and k2). Default `kernel`.',
    }),
    ortThread: literals(['worker', 'main'] as const, {
      default: 'worker',
      description:
        "Where model runs compute. `worker` (default): in one inference thread, so a run overlaps the frames' decodes, crops and gRPC on another core (onnxruntime-node's run blocks the thread that calls it for its whole duration). `main`: on the event-loop thread, as before. Default `worker`.",
    }),
    warmupRuns: int(0, 100, 1, 'Warm-up runs per model (on a zero input) before a session serves. Default 1.'),
    watchRepository: bool(true, 'Watch the repository (fs.watch) and swap in higher model versions as they appear. Default true.'),
    repositoryRescanMs: int(
      0,
      undefined,
      5000,
      'Period of the repository rescan that backs up fs.watch, in milliseconds; 0 disables it. Default 5000.',
    ),

    // ---- detection and analysis defaults (a request's non-zero values win) ----
    detectorInputSize: int(
      0,
      4096,
      0,
      "Detector input size in pixels; 0 uses the detector manifest's size (BlazeFace's graph is fixed at 256). Default 0.",
    ),
    detectorScoreThreshold: num(0, 1, 0.5, "Minimum detector score (0..1) for a face. Default 0.5 (MediaPipe's threshold for BlazeFace)."),
    detectorIouThreshold: num(
      0,
      1,
      0.3,
      'Non-maximum suppression IoU (0..1): a box overlapping a better one by more is dropped. Default 0.3.',
    ),
    maxFacesPerFrame: int(1, 1000, 20, 'At most this many faces per frame, best first. Default 20.'),
    minFaceSizePx: int(
      0,
      100_000,
      0,
      'Faces whose box is smaller than this on its shorter side, in frame pixels, are ignored. Default 0 (keep all).',
    ),
    identityThreshold: num(
      -1,
      1,
      0,
      "Cosine similarity (-1..1) at or above which TASK_IDENTITY and Identify name a person, for every embedding model. Default 0: each model's own threshold, calibrated at FAR 0.1 % on labelled data (model.json `identity.threshold`, written by `kt models eval --task identity`), or 0.6 for a model without one. Raise it for doors.",
    ),

    // ---- backpressure ----
    maxConcurrentInferences: int(
      1,
      1024,
      2,
      'Frames analysed at the same time over all streams and calls (the inference semaphore). Default 2.',
    ),
    batchMaxFaces: int(
      0,
      1024,
      0,
      "Dynamic batching (Triton's dynamic batcher) of task models across concurrent frames: the most faces in one run. Runs of the same model from frames analysed at the same time (other streams, maxConcurrentInferences > 1) are merged along the batch dimension and split back. Default 0: off.",
    ),
    batchMaxQueueDelayMs: int(
      0,
      1000,
      2,
      'With batchMaxFaces: how long a task-model run of an idle model waits for others to join its batch, in ms. Runs that arrive while the model is busy wait for it anyway and join the next batch. Default 2.',
    ),
    maxQueuedRequests: int(
      1,
      100_000,
      32,
      'Unary calls (Analyze, Enrol, Identify) that may wait for an inference slot; more are RESOURCE_EXHAUSTED. Default 32.',
    ),
    maxStreams: int(1, 10_000, 16, 'Open StreamAnalyze calls; more are refused with RESOURCE_EXHAUSTED. Default 16.'),
    maxStreamsPerClient: int(
      0,
      10_000,
      0,
      'Open StreamAnalyze calls per client IP address; more are refused with RESOURCE_EXHAUSTED. 0: only maxStreams applies (cameras behind one gateway share an address). Default 0.',
    ),
    maxUnconfiguredStreams: int(
      1,
      10_000,
      64,
      'StreamAnalyze calls that may wait for their StreamConfig at once (a burst of cameras connecting counts); more are refused with RESOURCE_EXHAUSTED. Default 64.',
    ),
    streamConfigTimeoutMs: int(
      0,
      undefined,
      10_000,
      'A StreamAnalyze call that sends no StreamConfig within this many milliseconds is ended with DEADLINE_EXCEEDED; 0 disables it. Default 10000.',
    ),
    streamIdleTimeoutMs: int(
      0,
      undefined,
      60_000,
      'A stream that sends no frame for this many milliseconds (with nothing left to answer) is ended with DEADLINE_EXCEEDED and its slot freed; 0 disables it. Default 60000.',
    ),
    keepaliveTimeMs: int(
      1000,
      undefined,
      30_000,
      'The server pings an idle HTTP/2 connection after this many milliseconds (grpc.keepalive_time_ms). Default 30000.',
    ),
    http2StreamWindowBytes: int(
      65_535,
      2_147_483_647,
      8 * 1048576,
      "HTTP/2 receive window per call (SETTINGS_INITIAL_WINDOW_SIZE). Node's default, 65535, lets a client send one 64 KiB slice per server event-loop turn: several camera streams on one connection then queue in the client. Default 8388608 (8 MiB).",
    ),
    http2ConnectionWindowBytes: int(
      65_535,
      2_147_483_647,
      32 * 1048576,
      'HTTP/2 receive window of a whole connection, shared by its calls. Bounds the unread bytes one client may have in flight. Default 33554432 (32 MiB).',
    ),
    maxPixelsInFlight: int(
      0,
      undefined,
      64_000_000,
      'Decoded pixels (width x height) held by all frames being analysed at once; a frame waits for its share before it is decoded, so a burst of huge images is analysed one after another instead of all at once. At least maxFramePixels; 0: no budget. Default 64000000 (about 190 MB of RGB).',
    ),
    keepaliveTimeoutMs: int(
      1000,
      undefined,
      10_000,
      'A connection whose ping is not answered within this many milliseconds is closed and its calls cancelled (grpc.keepalive_timeout_ms). Default 10000.',
    ),
    streamQueueDepth: int(
      1,
      1024,
      1,
      'Frames that may wait per stream when its StreamConfig says 0. Default 1 (with LATEST_WINS: analyse the newest frame).',
    ),
    maxStreamQueueDepth: int(1, 1024, 8, "Cap on a stream's requested queue depth. Default 8."),
    streamPipelineDepth: int(
      1,
      4,
      2,
      "Frames of one stream in analysis at once: with 2, the next frame's decode and detection start while the current frame runs its task models (on another core, when an inference slot is free); task models, tracks and answers stay in frame order. 1: one frame at a time. Default 2.",
    ),
    dropPolicy: literals(dropPolicyNames, {
      default: 'LATEST_WINS',
      description: 'Drop policy of a stream whose StreamConfig leaves it unspecified. Default `LATEST_WINS`.',
    }),
    streamTracking: bool(
      true,
      'Track faces on streams whose StreamConfig leaves tracking unspecified: Face.track_id, per-track summaries, track events on gRPC and `<prefix>/<node>/<stream>/events`. Default true (additions old clients ignore; every task still runs on every frame unless a stream turns reuse on).',
    ),

    // ---- MQTT events ----
    mqttEnabled: bool(true, 'Publish face events and stats over MQTT. Default true. The server keeps serving while the broker is away.'),
    mqttUrl: brokerUrlOrAutoSchema({
      default: '',
      description: "Broker URL. Default '' : a broker answering on 127.0.0.1:1883, else an embedded aedes broker started in-process.",
    }),
    mqttTopicPrefix: topicPrefixSchema({ default: 'kt', description: 'First topic level. Default `kt`.' }),
    mqttNodeId: nodeIdOrHostSchema({ default: '', description: "Second topic level (node id). Default '' : the host name." }),
    mqttQos: qosSchema({ default: 1, description: 'QoS of faces and stats events. Default 1.' }),
    homeAssistantDiscovery: bool(
      false,
      'Announce every open stream to Home Assistant by MQTT discovery (a device with face sensors and a camera on the snapshot topic), again when Home Assistant sends its birth message. Default false.',
    ),
    homeAssistantPrefix: topicPrefixSchema({
      default: 'homeassistant',
      description: 'Home Assistant discovery prefix. Default `homeassistant`.',
    }),
    statsIntervalMs: int(0, undefined, 10_000, 'Period of `<prefix>/<node>/stats`, in milliseconds; 0 disables it. Default 10000.'),
    embeddedBrokerPort: int(0, 65535, 1883, 'Port of the embedded broker when one is started. Default 1883.'),
    embeddedBrokerHost: text(
      '127.0.0.1',
      'Interface of the embedded broker. Default `127.0.0.1` (not exposed to the network unless asked for).',
    ),
    mqttUsername: Type.String({
      default: '',
      description:
        "Broker user name. Default '' : none (or the one in mqttUrl). The environment variable KT_MQTT_USERNAME overrides it. Never logged.",
    }),
    mqttPassword: Type.String({
      default: '',
      description:
        "Broker password. Default '' : none. Prefer the environment variable KT_MQTT_PASSWORD (it overrides this) over a config file. Never logged.",
    }),
    mqttCaFile: Type.String({
      default: '',
      description: "PEM file of the CA(s) that signed the broker's certificate, for mqtts:// and wss://. Default '' : the system CAs.",
    }),
    mqttCertFile: Type.String({
      default: '',
      description: "PEM client certificate for brokers that require mutual TLS (with mqttKeyFile). Default '' : none.",
    }),
    mqttKeyFile: Type.String({
      default: '',
      description: "PEM private key of mqttCertFile. Default '' : none. Never logged.",
    }),

    // ---- operations ----
    metricsAddress: Type.String({
      pattern: '^$|^(\\[[0-9a-fA-F:]+\\]|[^:\\s]+):\\d{1,5}$',
      mustBe: 'empty (off) or host:port, e.g. "127.0.0.1:9464"',
      default: '',
      description:
        "host:port of the HTTP listener for Prometheus `/metrics`, `/health/live` and `/health/ready` (200 when gRPC health is SERVING, else 503). Default '' : off; `127.0.0.1:9464` is the usual choice (loopback: the metrics name streams and models). Port 0 picks a free port.",
    }),

    // ---- gallery ----
    galleryPath: text(
      'kt-gallery.db',
      'SQLite file of the identity gallery, created when missing; `:memory:` for a throw-away one. Default `kt-gallery.db` in the working directory.',
    ),

    // ---- lifecycle ----
    shutdownGraceMs: int(
      0,
      undefined,
      5000,
      'How long close() lets calls in flight finish before cancelling them, in milliseconds. Default 5000.',
    ),
  },
  { additionalProperties: false, title: 'kt serve configuration' },
);

export type ServerConfig = Static<typeof serverConfigSchema>;

/**
 * A config file, a device profile's `config`, flags or a startServer argument: every field optional (`taskModels`
 * may name only some tasks). The defaults stay in the schema as documentation; an overlay is never filled with them.
 */
export const serverConfigOverlaySchema = Type.Partial(
  Type.Object({ ...serverConfigSchema.properties, taskModels: Type.Partial(taskModelsSchema) }, { additionalProperties: false }),
  { additionalProperties: false, title: 'kt serve configuration overlay', mustBe: 'an object of server config fields' },
);

/** A partial config (file, device profile, flags, startServer argument); `taskModels` may name only some tasks. */
export type ServerConfigOverlay = Partial<Omit<ServerConfig, 'taskModels'>> & { taskModels?: Partial<Record<TaskName, string>> };

/** What `kt serve --config FILE` reads: an overlay that may name its JSON Schema (`"$schema"`) for editors. */
export const serverConfigFileSchema = Type.Object(
  {
    $schema: Type.Optional(Type.String({ description: 'Path or URL of this JSON Schema, for editor completion; ignored by the server.' })),
    ...serverConfigOverlaySchema.properties,
  },
  {
    additionalProperties: false,
    title: 'kt serve --config file',
    description: 'Fields override the device profile; flags override the file.',
  },
);

export const defaultTaskModels: Readonly<Record<TaskName, string>> = Object.freeze(parseValue(taskModelsSchema, {}, 'default task models'));

/** The defaults; `modelRepository` is resolved when the module loads (it reads $KT_MODEL_REPOSITORY). */
export const defaultServerConfig: Readonly<ServerConfig> = Object.freeze(
  parseValue(serverConfigSchema, { modelRepository: defaultRepositoryPath() }, 'default server config'),
);

export const serverConfigKeys = Object.keys(serverConfigSchema.properties) as (keyof ServerConfig)[];

/**
 * Checks an overlay from JSON (config file, device profile, flags): every key must be a ServerConfig field and every
 * value of the field's type. `source` names where it came from in the error (a file path, "flags"); every problem is
 * listed, an unknown key with the nearest field name.
 */
export function validateConfigOverlay(value: unknown, source: string): ServerConfigOverlay {
  return checkValue(serverConfigOverlaySchema, value, source) as ServerConfigOverlay;
}

/** Checks a `--config` file's content and returns its overlay (without `$schema`). */
export function configFileOverlay(value: unknown, source: string): ServerConfigOverlay {
  const { $schema: _schema, ...overlay } = checkValue(serverConfigFileSchema, value, source);
  return overlay as ServerConfigOverlay;
}

/** Reads a `--config` file (JSON, or YAML for .yaml/.yml) and returns its checked overlay. */
export async function loadServerConfigFile(path: string): Promise<ServerConfigOverlay> {
  return configFileOverlay(await readConfigFile(path), path);
}

/**
 * The one merge point: defaults, then each overlay in order (later wins; `taskModels` merges per task). Every overlay
 * is validated, and so is the result (cross-field rules).
 */
export function resolveServerConfig(...overlays: readonly (ServerConfigOverlay | undefined)[]): ServerConfig {
  const merged: ServerConfig = {
    ...defaultServerConfig,
    tasks: [...defaultServerConfig.tasks],
    taskModels: { ...defaultServerConfig.taskModels },
    executionProviders: [...defaultServerConfig.executionProviders],
  };
  overlays.forEach((overlay, i) => {
    if (overlay === undefined) return;
    validateConfigOverlay(overlay, `config overlay ${i + 1}`);
    for (const [key, value] of Object.entries(overlay)) {
      if (value === undefined) continue;
      if (key === 'taskModels') merged.taskModels = { ...merged.taskModels, ...(value as Partial<Record<TaskName, string>>) };
      else (merged as unknown as Record<string, unknown>)[key] = Array.isArray(value) ? [...(value as unknown[])] : value;
    }
  });
  if ((merged.tlsCertFile === '') !== (merged.tlsKeyFile === '')) {
    throw new InvalidInputError('tlsCertFile and tlsKeyFile must be set together');
  }
  if (merged.tlsClientCaFile !== '' && merged.tlsCertFile === '') {
    throw new InvalidInputError('tlsClientCaFile (mutual TLS) needs tlsCertFile and tlsKeyFile');
  }
  if (merged.maxPixelsInFlight > 0 && merged.maxPixelsInFlight < merged.maxFramePixels) {
    throw new InvalidInputError(
      `maxPixelsInFlight (${merged.maxPixelsInFlight}) must be 0 or at least maxFramePixels (${merged.maxFramePixels}): the largest accepted frame must fit`,
    );
  }
  if (merged.http2ConnectionWindowBytes < merged.http2StreamWindowBytes) {
    throw new InvalidInputError(
      `http2ConnectionWindowBytes (${merged.http2ConnectionWindowBytes}) must be at least http2StreamWindowBytes (${merged.http2StreamWindowBytes})`,
    );
  }
  if (merged.streamQueueDepth > merged.maxStreamQueueDepth) {
    throw new InvalidInputError(
      `streamQueueDepth (${merged.streamQueueDepth}) must not exceed maxStreamQueueDepth (${merged.maxStreamQueueDepth})`,
    );
  }
  return merged;
}

/** Splits `host:port` (IPv6 in brackets). */
export function splitListenAddress(address: string): { host: string; port: number } {
  const at = address.lastIndexOf(':');
  return { host: address.slice(0, at).replace(/^\[|\]$/g, ''), port: Number(address.slice(at + 1)) };
}
