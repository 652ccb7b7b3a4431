// The `kt gateway` config: one TypeBox schema (server, ffmpeg, transport, cameras with source/filters/tasks, sinks),
// read from YAML or JSON; every problem names the camera and the field, unknown keys get the nearest valid name.
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { readConfigFile } from '../core/config-file.js';
import { InvalidInputError, errorMessage } from '../core/errors.js';
import { literals, schemaIssues, withDefaults } from '../core/schema.js';
import { streamIdPattern, reservedStreamIds } from '../contract/stream-id.js';
import { taskNames, type TaskName } from '../contract/tasks.js';
import { onOffNames } from '../contract/track-names.js';
import type { TrackingInit } from '../sdk/tracking-init.js';
import { frameTransports, type FrameTransport } from './ffmpeg.js';

/** A plugin reference in the config: `type` names the plugin, the other keys are its options (checked by the plugin). */
const pluginRef = (what: string): TSchema =>
  Type.Object(
    { type: Type.String({ minLength: 1, description: `Which ${what} plugin (built-in name or one loaded through "plugins").` }) },
    { additionalProperties: true },
  );

const tlsSchema = Type.Object(
  {
    caFile: Type.Optional(Type.String({ minLength: 1, description: 'PEM file of the CA that signed the server certificate.' })),
    certFile: Type.Optional(Type.String({ minLength: 1, description: 'Client certificate (PEM) for mutual TLS.' })),
    keyFile: Type.Optional(Type.String({ minLength: 1, description: 'Client key (PEM) for mutual TLS.' })),
  },
  { additionalProperties: false },
);

const serverObjectSchema = Type.Object(
  {
    address: Type.String({ minLength: 1, mustBe: 'host:port, e.g. "127.0.0.1:50051"', description: 'The kt server, host:port.' }),
    token: Type.Optional(
      Type.String({ minLength: 16, description: 'Bearer token (analyze role); prefer tokenFile or $KT_GATEWAY_TOKEN.' }),
    ),
    tokenFile: Type.Optional(Type.String({ minLength: 1, description: 'File holding the bearer token (first line).' })),
    tls: Type.Optional(Type.Union([Type.Literal(true), tlsSchema], { description: 'TLS: true (system roots) or CA/cert/key files.' })),
    deadlineMs: Type.Optional(Type.Integer({ minimum: 100, description: 'Per-frame answer timeout, in ms. Default 10000.' })),
  },
  { additionalProperties: false },
);

/** A whole count >= 1 with its unit and the server's default, for the tracking fields. */
const count = (description: string): TSchema => Type.Optional(Type.Integer({ minimum: 1, maximum: 2 ** 32 - 1, description }));

const reuseSchema = Type.Object(
  {
    refreshAfterMs: count('Age, gender, embedding and identity re-run after this many ms. Server default 2000.'),
    betterFaceRatio: Type.Optional(
      Type.Number({
        minimum: 1,
        description: '... or when the face is this much better (area x score), 1.25 = 25 %. Server default 1.25.',
      }),
    ),
    minObservations: count('Those tasks run on the first this-many frames of a track. Server default 3.'),
    emotionEveryFrames: count('Emotion re-runs every this-many frames of a track. Server default 3.'),
    detectEveryFrames: count('The detector runs on every this-many frames; faces between are predicted. Server default 1.'),
  },
  { additionalProperties: false },
);

const trackingSchema = Type.Object(
  {
    mode: Type.Optional(literals(onOffNames, { description: 'Default "on" (a tracking block asks for tracks).' })),
    maxAgeFrames: count('Frames a track may miss its face before it ends (detected frames only). Server default 15.'),
    minHits: count('Frames with a face before a track is confirmed (its new event). Server default 3.'),
    reuse: Type.Optional(
      Type.Union([Type.Boolean(), reuseSchema], { description: 'Reuse task answers within a track: true (server defaults) or settings.' }),
    ),
    facesTopic: Type.Optional(literals(onOffNames, { description: '"off": the server publishes only track events on MQTT.' })),
  },
  { additionalProperties: false },
);

const cameraSchema = Type.Object(
  {
    id: Type.String({
      pattern: streamIdPattern.source,
      mustBe: "1-64 letters, digits, '-', '_' or '.' (the stream id and MQTT topic level)",
      description: 'Camera id: the stream id on the server and the topic level of its events.',
    }),
    source: pluginRef('source'),
    tasks: Type.Optional(Type.Array(literals(taskNames), { description: 'Tasks per face. Default: the server’s tasks.' })),
    filters: Type.Array(pluginRef('filter'), { default: [], description: 'Filters in order (fps, motion, zones, min-face-size).' }),
    transport: Type.Optional(literals(frameTransports, { description: 'Overrides the gateway transport for this camera.' })),
    tracking: Type.Optional(
      Type.Union([Type.Boolean(), trackingSchema], {
        description: "Face tracking on this camera's stream: true, false or settings. Default: the server's (on).",
      }),
    ),
    enabled: Type.Boolean({ default: true, description: 'false: listed but not started.' }),
  },
  { additionalProperties: false },
);

export const gatewayConfigSchema = Type.Object(
  {
    server: Type.Union([Type.String({ minLength: 1, mustBe: 'host:port, e.g. "127.0.0.1:50051"' }), serverObjectSchema], {
      description: 'The kt server: "host:port" or { address, token, tokenFile, tls }.',
    }),
    ffmpegPath: Type.String({ minLength: 1, default: 'ffmpeg', description: 'ffmpeg binary (name on PATH or path). Default "ffmpeg".' }),
    transport: literals(frameTransports, {
      default: 'jpeg',
      description: 'How ffmpeg cameras send frames: "jpeg" (default, cheaper end to end: see bench/gateway.ts), "nv12" or "rgb".',
    }),
    reconnect: Type.Object(
      {
        initialMs: Type.Integer({ minimum: 1, default: 500, description: 'First delay before a camera is retried, in ms. Default 500.' }),
        maxMs: Type.Integer({ minimum: 1, default: 10_000, description: 'Longest delay between retries, in ms. Default 10000.' }),
        jitter: Type.Number({ minimum: 0, exclusiveMaximum: 1, default: 0.2, description: 'Random spread of each delay. Default 0.2.' }),
      },
      { additionalProperties: false, default: {} },
    ),
    statsIntervalMs: Type.Integer({ minimum: 0, default: 30_000, description: 'Per-camera counters in the log every N ms (0: never).' }),
    plugins: Type.Array(Type.String({ minLength: 1 }), {
      default: [],
      description: 'Third-party plugins: file paths (relative to this file) or package names.',
    }),
    cameras: Type.Array(cameraSchema, { minItems: 1, description: 'The cameras, each its own pipeline.' }),
    sinks: Type.Array(pluginRef('sink'), { default: [], description: 'Where results go (mqtt, webhook, jsonl, snapshot, ...).' }),
  },
  { additionalProperties: false, title: 'kt gateway config' },
);

export type GatewayConfigFile = Static<typeof gatewayConfigSchema>;

export interface PluginRefConfig {
  type: string;
  [option: string]: unknown;
}

export interface CameraConfig {
  id: string;
  source: PluginRefConfig;
  tasks?: TaskName[];
  filters: PluginRefConfig[];
  transport: FrameTransport;
  /** The SDK stream's `tracking` option; absent: the server's default. */
  tracking?: boolean | TrackingInit;
  enabled: boolean;
}

/** Where the server is and how to reach it (the SDK client's options, files already read). */
export interface GatewayServerConfig {
  address: string;
  token?: string;
  tls: false | { rootCerts?: Uint8Array; privateKey?: Uint8Array; certChain?: Uint8Array };
  deadlineMs?: number;
}

export interface GatewayConfig {
  server: GatewayServerConfig;
  ffmpegPath: string;
  transport: FrameTransport;
  reconnect: { initialMs: number; maxMs: number; jitter: number };
  statsIntervalMs: number;
  plugins: string[];
  cameras: CameraConfig[];
  sinks: PluginRefConfig[];
  /** Folder of the config file: relative paths in it are relative to this. */
  baseDir: string;
}

/** `cameras[1].source.url` -> `camera "lobby" (cameras[1]) field source.url`, so a message names camera and field. */
function locate(path: string, raw: unknown): string {
  const m = /^cameras\[(\d+)\](?:\.(.*))?$/.exec(path);
  if (!m) return path === '' ? 'the config' : `field ${path}`;
  const cameras = (raw as { cameras?: unknown }).cameras;
  const id = Array.isArray(cameras) ? (cameras[Number(m[1])] as { id?: unknown } | undefined)?.id : undefined;
  const who = typeof id === 'string' ? `camera "${id}" (cameras[${m[1]}])` : `cameras[${m[1]}]`;
  return m[2] ? `${who} field ${m[2]}` : who;
}

/** Checks the parsed file; throws InvalidInputError listing every problem, each naming the camera and field. */
export function checkGatewayConfig(raw: unknown, source: string): GatewayConfigFile {
  const value = withDefaults(gatewayConfigSchema, raw);
  const issues = schemaIssues(gatewayConfigSchema, value);
  const problems = issues.map((i) => `${locate(i.path, raw)}: ${i.message}`);
  const cameras = (value as { cameras?: { id?: unknown }[] }).cameras;
  if (Array.isArray(cameras)) {
    const seen = new Map<unknown, number>();
    cameras.forEach((c, i) => {
      if (reservedStreamIds.includes(c?.id as string))
        problems.push(`cameras[${i}] field id: "${String(c.id)}" is reserved; choose another`);
      const first = seen.get(c?.id);
      if (first !== undefined) problems.push(`camera "${String(c.id)}" (cameras[${i}]) field id: the same id as cameras[${first}]`);
      else seen.set(c?.id, i);
    });
  }
  if (problems.length > 0) throw new InvalidInputError(`${source}: ${problems.join('; ')}`);
  return value as GatewayConfigFile;
}

async function readPem(path: string, field: string, baseDir: string): Promise<Uint8Array> {
  try {
    return await readFile(isAbsolute(path) ? path : resolve(baseDir, path));
  } catch (e) {
    throw new InvalidInputError(`field server.${field}: cannot read ${path}: ${errorMessage(e)}`, { cause: e });
  }
}

/** The server block with files read: token from `token`, `tokenFile` or $KT_GATEWAY_TOKEN; TLS material as bytes. */
export async function resolveServerConfig(
  server: GatewayConfigFile['server'],
  baseDir: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<GatewayServerConfig> {
  if (typeof server === 'string')
    return { address: server, tls: false, ...(env['KT_GATEWAY_TOKEN'] ? { token: env['KT_GATEWAY_TOKEN'] } : {}) };
  let token = server.token ?? env['KT_GATEWAY_TOKEN'];
  if (server.tokenFile !== undefined) {
    const text = new TextDecoder().decode(await readPem(server.tokenFile, 'tokenFile', baseDir));
    token = text.split('\n')[0]!.trim();
  }
  let tls: GatewayServerConfig['tls'] = false;
  if (server.tls === true) tls = {};
  else if (server.tls !== undefined) {
    const t = server.tls;
    tls = {
      ...(t.caFile !== undefined ? { rootCerts: await readPem(t.caFile, 'tls.caFile', baseDir) } : {}),
      ...(t.certFile !== undefined ? { certChain: await readPem(t.certFile, 'tls.certFile', baseDir) } : {}),
      ...(t.keyFile !== undefined ? { privateKey: await readPem(t.keyFile, 'tls.keyFile', baseDir) } : {}),
    };
  }
  return {
    address: server.address,
    tls,
    ...(token !== undefined && token !== '' ? { token } : {}),
    ...(server.deadlineMs !== undefined ? { deadlineMs: server.deadlineMs } : {}),
  };
}

/** The checked config with defaults, server files read and per-camera transport filled in. */
export async function resolveGatewayConfig(raw: unknown, source: string, baseDir: string): Promise<GatewayConfig> {
  const file = checkGatewayConfig(raw, source);
  const server = await resolveServerConfig(file.server, baseDir);
  return {
    server,
    ffmpegPath: file.ffmpegPath,
    transport: file.transport,
    reconnect: file.reconnect,
    statsIntervalMs: file.statsIntervalMs,
    plugins: file.plugins,
    cameras: file.cameras.map((c) => ({
      id: c.id,
      source: c.source as PluginRefConfig,
      ...(c.tasks !== undefined ? { tasks: c.tasks } : {}),
      filters: c.filters as PluginRefConfig[],
      transport: c.transport ?? file.transport,
      ...(c.tracking !== undefined ? { tracking: c.tracking as boolean | TrackingInit } : {}),
      enabled: c.enabled,
    })),
    sinks: file.sinks as PluginRefConfig[],
    baseDir,
  };
}

/** Reads `path` (YAML or JSON by extension) and resolves it. */
export async function loadGatewayConfig(path: string): Promise<GatewayConfig> {
  return resolveGatewayConfig(await readConfigFile(path), path, dirname(resolve(path)));
}
