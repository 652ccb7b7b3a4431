// The server's options: one interface, one defaults object, one merge point that validates typed partial overlays.
import { InvalidInputError } from '../core/errors.js';
import { defaultImageLimits } from '../core/image.js';
import { defaultRepositoryPath } from '../models/repository.js';
import type { ExecutionProviderName } from '../onnx/runtime.js';

import { taskNames, type TaskName } from '../contract/tasks.js';

export { taskNames, type TaskName };

/** What a stream does when frames arrive faster than they are analysed (see DropPolicy in face_analysis.proto). */
export type DropPolicyName = 'LATEST_WINS' | 'QUEUE' | 'BLOCK';
export const dropPolicyNames: readonly DropPolicyName[] = ['LATEST_WINS', 'QUEUE', 'BLOCK'];

export type MqttQos = 0 | 1 | 2;

export interface ServerConfig {
  // ---- gRPC listener ----
  /**
   * host:port the gRPC server listens on. Default `0.0.0.0:50051`: an edge gateway serves cameras and gateways on
   * its LAN, so it listens on every interface (use `127.0.0.1:50051` to keep it local). Port 0 picks a free port.
   */
  listenAddress: string;
  /**
   * Largest request message accepted, in bytes. Default 16 MiB (16 777 216), raised deliberately from gRPC's 4 MiB:
   * raw 1080p RGB8 is 6.2 MB and raw 4K NV12 is 12.4 MB. Larger messages fail with RESOURCE_EXHAUSTED.
   */
  maxReceiveMessageBytes: number;
  /** Largest response message, in bytes. Default 16 MiB (a frame with 20 meshes is about 0.5 MB). */
  maxSendMessageBytes: number;
  /** Largest decoded or raw frame in pixels (width x height); larger frames are INVALID_ARGUMENT. Default 50 000 000 (8K is 33.2 M). */
  maxFramePixels: number;

  // ---- models ----
  /** Model repository folder (`<repo>/<name>/<version>/model.onnx + model.json`). Default `$KT_MODEL_REPOSITORY` or `./model-repository` of the package. */
  modelRepository: string;
  /** Tasks whose models are loaded and warmed up before health reports SERVING; other tasks load on first use. Default every task. */
  tasks: TaskName[];
  /** Repository model that answers each task by default (a request may override per task). Default faceres for age, gender, embedding and identity; emotion; landmarks68; facemesh. */
  taskModels: Record<TaskName, string>;
  /** Repository name of the face detector (a BlazeFace-decoded model). Default `blazeface`. */
  detectorModel: string;
  /** Execution providers in order of preference; one that fails to initialise is skipped with a logged reason. Default `['cpu']`. */
  executionProviders: ExecutionProviderName[];
  /** GPU device id for cuda / tensorrt (the only option the Node binding passes to them). Default 0. */
  deviceId: number;
  /** ONNX Runtime intra-op threads per session; 0 lets ORT choose (all physical cores). Default 0. */
  intraOpThreads: number;
  /** Warm-up runs per model (on a zero input) before a session serves. Default 1. */
  warmupRuns: number;
  /** Watch the repository (fs.watch) and swap in higher model versions as they appear. Default true. */
  watchRepository: boolean;
  /** Period of the repository rescan that backs up fs.watch, in milliseconds; 0 disables it. Default 5000. */
  repositoryRescanMs: number;

  // ---- detection and analysis defaults (a request's non-zero values win) ----
  /** Detector input size in pixels; 0 uses the detector manifest's size (BlazeFace's graph is fixed at 256). Default 0. */
  detectorInputSize: number;
  /** Minimum detector score (0..1) for a face. Default 0.5 (MediaPipe's threshold for BlazeFace). */
  detectorScoreThreshold: number;
  /** Non-maximum suppression IoU (0..1): a box overlapping a better one by more is dropped. Default 0.3. */
  detectorIouThreshold: number;
  /** At most this many faces per frame, best first. Default 20. */
  maxFacesPerFrame: number;
  /** Faces whose box is smaller than this on its shorter side, in frame pixels, are ignored. Default 0 (keep all). */
  minFaceSizePx: number;
  /**
   * Cosine similarity (-1..1) at or above which TASK_IDENTITY and Identify name a person. Default 0.6: on ORL
   * (40 people, faceres descriptors, one enrolment image) genuine pairs scored 0.64-0.97 and impostors at most
   * 0.605, so 0.6 gave TAR 100 % at FAR 0.19 % (0.5 would accept 8.5 % of impostors). Raise it for doors.
   */
  identityThreshold: number;

  // ---- backpressure ----
  /** Frames analysed at the same time over all streams and calls (the inference semaphore). Default 2. */
  maxConcurrentInferences: number;
  /** Unary calls (Analyze, Enrol, Identify) that may wait for an inference slot; more are RESOURCE_EXHAUSTED. Default 32. */
  maxQueuedRequests: number;
  /** Open StreamAnalyze calls; more are refused with RESOURCE_EXHAUSTED. Default 16. */
  maxStreams: number;
  /** Frames that may wait per stream when its StreamConfig says 0. Default 1 (with LATEST_WINS: analyse the newest frame). */
  streamQueueDepth: number;
  /** Cap on a stream's requested queue depth. Default 8. */
  maxStreamQueueDepth: number;
  /** Drop policy of a stream whose StreamConfig leaves it unspecified. Default `LATEST_WINS`. */
  dropPolicy: DropPolicyName;

  // ---- MQTT events ----
  /** Publish face events and stats over MQTT. Default true. The server keeps serving while the broker is away. */
  mqttEnabled: boolean;
  /** Broker URL. Default '' : a broker answering on 127.0.0.1:1883, else an embedded aedes broker started in-process. */
  mqttUrl: string;
  /** First topic level. Default `kt`. */
  mqttTopicPrefix: string;
  /** Second topic level (node id). Default '' : the host name. */
  mqttNodeId: string;
  /** QoS of faces and stats events. Default 1. */
  mqttQos: MqttQos;
  /** Period of `<prefix>/<node>/stats`, in milliseconds; 0 disables it. Default 10000. */
  statsIntervalMs: number;
  /** Port of the embedded broker when one is started. Default 1883. */
  embeddedBrokerPort: number;
  /** Interface of the embedded broker. Default `127.0.0.1` (not exposed to the network unless asked for). */
  embeddedBrokerHost: string;

  // ---- gallery ----
  /** SQLite file of the identity gallery, created when missing; `:memory:` for a throw-away one. Default `kt-gallery.db` in the working directory. */
  galleryPath: string;

  // ---- lifecycle ----
  /** How long close() lets calls in flight finish before cancelling them, in milliseconds. Default 5000. */
  shutdownGraceMs: number;
}

export const defaultTaskModels: Readonly<Record<TaskName, string>> = Object.freeze({
  age: 'faceres',
  gender: 'faceres',
  embedding: 'faceres',
  identity: 'faceres',
  emotion: 'emotion',
  landmarks: 'landmarks68',
  mesh: 'facemesh',
});

/** The defaults; `modelRepository` is resolved when the module loads (it reads $KT_MODEL_REPOSITORY). */
export const defaultServerConfig: Readonly<ServerConfig> = Object.freeze({
  listenAddress: '0.0.0.0:50051',
  maxReceiveMessageBytes: 16 * 1024 * 1024,
  maxSendMessageBytes: 16 * 1024 * 1024,
  maxFramePixels: defaultImageLimits.maxPixels,
  modelRepository: defaultRepositoryPath(),
  tasks: [...taskNames],
  taskModels: { ...defaultTaskModels },
  detectorModel: 'blazeface',
  executionProviders: ['cpu'],
  deviceId: 0,
  intraOpThreads: 0,
  warmupRuns: 1,
  watchRepository: true,
  repositoryRescanMs: 5000,
  detectorInputSize: 0,
  detectorScoreThreshold: 0.5,
  detectorIouThreshold: 0.3,
  maxFacesPerFrame: 20,
  minFaceSizePx: 0,
  identityThreshold: 0.6,
  maxConcurrentInferences: 2,
  maxQueuedRequests: 32,
  maxStreams: 16,
  streamQueueDepth: 1,
  maxStreamQueueDepth: 8,
  dropPolicy: 'LATEST_WINS',
  mqttEnabled: true,
  mqttUrl: '',
  mqttTopicPrefix: 'kt',
  mqttNodeId: '',
  mqttQos: 1,
  statsIntervalMs: 10_000,
  embeddedBrokerPort: 1883,
  embeddedBrokerHost: '127.0.0.1',
  galleryPath: 'kt-gallery.db',
  shutdownGraceMs: 5000,
} satisfies ServerConfig);

/** A partial config (file, device profile, flags, startServer argument); `taskModels` may name only some tasks. */
export type ServerConfigOverlay = Partial<Omit<ServerConfig, 'taskModels'>> & { taskModels?: Partial<Record<TaskName, string>> };

const providers: readonly ExecutionProviderName[] = ['tensorrt', 'cuda', 'dml', 'coreml', 'cpu'];

type FieldCheck = (value: unknown) => string | undefined;
const int = (min: number, max = Number.MAX_SAFE_INTEGER): FieldCheck => (v) =>
  typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max ? undefined : `an integer in ${min}..${max}`;
const num = (min: number, max: number): FieldCheck => (v) => (typeof v === 'number' && Number.isFinite(v) && v >= min && v <= max ? undefined : `a number in ${min}..${max}`);
const str = (allowEmpty: boolean): FieldCheck => (v) => (typeof v === 'string' && (allowEmpty || v.length > 0) ? undefined : allowEmpty ? 'a string' : 'a non-empty string');
const bool: FieldCheck = (v) => (typeof v === 'boolean' ? undefined : 'true or false');
const oneOf = (values: readonly unknown[]): FieldCheck => (v) => (values.includes(v) ? undefined : `one of ${values.map((x) => JSON.stringify(x)).join(', ')}`);
const listOf = (values: readonly string[], nonEmpty: boolean): FieldCheck => (v) =>
  Array.isArray(v) && (!nonEmpty || v.length > 0) && v.every((x) => values.includes(x as string)) ? undefined : `${nonEmpty ? 'a non-empty' : 'an'} array of ${values.map((x) => JSON.stringify(x)).join(', ')}`;
const taskModelMap: FieldCheck = (v) => {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'an object of task -> model name';
  for (const [k, name] of Object.entries(v)) {
    if (!taskNames.includes(k as TaskName)) return `an object keyed by task (${taskNames.join(', ')}); "${k}" is not a task`;
    if (typeof name !== 'string' || name === '') return `an object of task -> non-empty model name ("${k}" is not)`;
  }
  return undefined;
};

/** How every field is validated; its keys are exactly the fields, so an unknown key is an error. */
const fieldChecks: Record<keyof ServerConfig, FieldCheck> = {
  listenAddress: (v) => (typeof v === 'string' && /^(\[[0-9a-fA-F:]+\]|[^:\s]+):\d{1,5}$/.test(v) ? undefined : 'host:port, e.g. "0.0.0.0:50051"'),
  maxReceiveMessageBytes: int(1024, 2 ** 31 - 1),
  maxSendMessageBytes: int(1024, 2 ** 31 - 1),
  maxFramePixels: int(1),
  modelRepository: str(false),
  tasks: listOf(taskNames, false),
  taskModels: taskModelMap,
  detectorModel: str(false),
  executionProviders: listOf(providers, true),
  deviceId: int(0, 64),
  intraOpThreads: int(0, 1024),
  warmupRuns: int(0, 100),
  watchRepository: bool,
  repositoryRescanMs: int(0),
  detectorInputSize: int(0, 4096),
  detectorScoreThreshold: num(0, 1),
  detectorIouThreshold: num(0, 1),
  maxFacesPerFrame: int(1, 1000),
  minFaceSizePx: int(0, 100_000),
  identityThreshold: num(-1, 1),
  maxConcurrentInferences: int(1, 1024),
  maxQueuedRequests: int(1, 100_000),
  maxStreams: int(1, 10_000),
  streamQueueDepth: int(1, 1024),
  maxStreamQueueDepth: int(1, 1024),
  dropPolicy: oneOf(dropPolicyNames),
  mqttEnabled: bool,
  mqttUrl: (v) => (v === '' || (typeof v === 'string' && /^(mqtts?|wss?|tcp|ssl):\/\/./.test(v)) ? undefined : 'empty (auto) or an mqtt://, mqtts://, ws:// or wss:// URL'),
  mqttTopicPrefix: (v) => (typeof v === 'string' && v.length > 0 && !/[+#\u0000]/.test(v) && !v.startsWith('/') && !v.endsWith('/') ? undefined : 'a topic prefix without +, # or a leading/trailing "/"'),
  mqttNodeId: (v) => (typeof v === 'string' && !/[/+#\u0000\s]/.test(v) ? undefined : 'one topic level without / + # or spaces (empty: the host name)'),
  mqttQos: oneOf([0, 1, 2]),
  statsIntervalMs: int(0),
  embeddedBrokerPort: int(0, 65535),
  embeddedBrokerHost: str(false),
  galleryPath: str(false),
  shutdownGraceMs: int(0),
};

export const serverConfigKeys = Object.keys(fieldChecks) as (keyof ServerConfig)[];

/**
 * Checks an overlay from JSON (config file, device profile, flags): every key must be a ServerConfig field and every
 * value of the field's type. `source` names where it came from in the error (a file path, "flags").
 */
export function validateConfigOverlay(value: unknown, source: string): ServerConfigOverlay {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new InvalidInputError(`${source}: server config must be a JSON object`);
  const problems: string[] = [];
  for (const [key, v] of Object.entries(value)) {
    const check = (fieldChecks as Record<string, FieldCheck | undefined>)[key];
    if (check === undefined) {
      const near = serverConfigKeys.find((k) => k.toLowerCase() === key.toLowerCase().replace(/[-_]/g, ''));
      problems.push(`unknown key "${key}"${near ? ` (did you mean "${near}"?)` : ''}`);
      continue;
    }
    if (v === undefined) continue;
    const why = check(v);
    if (why !== undefined) problems.push(`"${key}" must be ${why}, got ${JSON.stringify(v)}`);
  }
  if (problems.length > 0) throw new InvalidInputError(`${source}: ${problems.join('; ')}`);
  return value as ServerConfigOverlay;
}

/**
 * The one merge point: defaults, then each overlay in order (later wins; `taskModels` merges per task). Every overlay
 * is validated, and so is the result (cross-field rules).
 */
export function resolveServerConfig(...overlays: readonly (ServerConfigOverlay | undefined)[]): ServerConfig {
  const merged: ServerConfig = { ...defaultServerConfig, tasks: [...defaultServerConfig.tasks], taskModels: { ...defaultServerConfig.taskModels }, executionProviders: [...defaultServerConfig.executionProviders] };
  overlays.forEach((overlay, i) => {
    if (overlay === undefined) return;
    validateConfigOverlay(overlay, `config overlay ${i + 1}`);
    for (const [key, value] of Object.entries(overlay)) {
      if (value === undefined) continue;
      if (key === 'taskModels') merged.taskModels = { ...merged.taskModels, ...(value as Partial<Record<TaskName, string>>) };
      else (merged as unknown as Record<string, unknown>)[key] = Array.isArray(value) ? [...(value as unknown[])] : value;
    }
  });
  if (merged.streamQueueDepth > merged.maxStreamQueueDepth) {
    throw new InvalidInputError(`streamQueueDepth (${merged.streamQueueDepth}) must not exceed maxStreamQueueDepth (${merged.maxStreamQueueDepth})`);
  }
  return merged;
}

/** Splits `host:port` (IPv6 in brackets). */
export function splitListenAddress(address: string): { host: string; port: number } {
  const at = address.lastIndexOf(':');
  return { host: address.slice(0, at).replace(/^\[|\]$/g, ''), port: Number(address.slice(at + 1)) };
}
