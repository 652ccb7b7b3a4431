// Options of the MQTT event publisher: one interface, one defaults object, one merge point that validates.
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { InvalidInputError } from '../../core/errors.js';

export type MqttQos = 0 | 1 | 2;

/** A snapshot of whatever the server wants to report on `<prefix>/<node>/stats` (throughput, latency, drops). */
export type StatsSnapshot = Record<string, unknown>;

export interface PublisherOptions {
  /** Broker URL (`mqtt://host:port`, `mqtts://`, `ws://`). Default `mqtt://127.0.0.1:1883`. */
  url: string;
  /** MQTT client id. Default `kt-<nodeId>-<8 random hex>`, so two processes on one node never evict each other. */
  clientId: string;
  /** First topic level. Default `kt`. Must not contain `+`, `#` or NUL; may contain `/` for deeper prefixes. */
  topicPrefix: string;
  /** Node id, the second topic level. Default: the host name with topic-unsafe characters replaced by `_`. */
  nodeId: string;
  /** QoS of faces and stats events. Default 1: an event in flight when the link drops is re-sent after reconnecting. */
  qos: MqttQos;
  /** QoS of the status message and of the last will. Default 1. */
  statusQos: MqttQos;
  /** Whether `<prefix>/<node>/status` is retained (and so is the last will). Default true. */
  retainStatus: boolean;
  /** Whether faces events are retained. Default false: a late subscriber should not see an old face as current. */
  retainFaces: boolean;
  /** Whether stats are retained. Default false. */
  retainStats: boolean;
  /** Period of `<prefix>/<node>/stats`, in milliseconds; 0 disables the timer. Default 10000. Needs `statsSource`. */
  statsIntervalMs: number;
  /** Called on every stats tick; its snapshot is published along with the publisher's own counters. Default none. */
  statsSource: (() => StatsSnapshot) | undefined;
  /** Messages kept while the broker is away (or while `maxInflightMessages` are unacknowledged); the oldest is
   *  discarded when full and counted. Default 1000. 0 means: never queue, discard whatever cannot be sent now. */
  maxQueuedMessages: number;
  /** Messages handed to the MQTT client and not yet acknowledged (QoS 1/2) or written (QoS 0). Default 100.
   *  Bounds mqtt.js's own unbounded stores, so memory stays bounded when the broker is slow. */
  maxInflightMessages: number;
  /** First reconnect delay in milliseconds. Default 1000. */
  reconnectPeriodMs: number;
  /** Longest reconnect delay in milliseconds (the backoff cap). Default 30000. */
  maxReconnectPeriodMs: number;
  /** Factor between consecutive reconnect delays. Default 2. */
  reconnectBackoffFactor: number;
  /** Random spread of each delay, as a fraction of it (0.2 = +-20 %), so a fleet does not reconnect in lockstep. Default 0.2. */
  reconnectJitter: number;
  /** Time allowed for TCP connect plus CONNACK, in milliseconds. Default 10000. */
  connectTimeoutMs: number;
  /** MQTT keepalive in seconds. Default 30. */
  keepaliveSeconds: number;
  /** How long `close()` waits for queued and in-flight messages and the final `offline`, in milliseconds. Default 2000. */
  closeTimeoutMs: number;
  /** Broker user name. Default none. */
  username: string | undefined;
  /** Broker password. Default none. */
  password: string | undefined;
}

/** The defaults that do not depend on the node; `nodeId` and `clientId` are derived in `resolvePublisherOptions`. */
export const defaultPublisherOptions: Readonly<Omit<PublisherOptions, 'nodeId' | 'clientId'>> = Object.freeze({
  url: 'mqtt://127.0.0.1:1883',
  topicPrefix: 'kt',
  qos: 1,
  statusQos: 1,
  retainStatus: true,
  retainFaces: false,
  retainStats: false,
  statsIntervalMs: 10_000,
  statsSource: undefined,
  maxQueuedMessages: 1000,
  maxInflightMessages: 100,
  reconnectPeriodMs: 1000,
  maxReconnectPeriodMs: 30_000,
  reconnectBackoffFactor: 2,
  reconnectJitter: 0.2,
  connectTimeoutMs: 10_000,
  keepaliveSeconds: 30,
  closeTimeoutMs: 2000,
  username: undefined,
  password: undefined,
});

/** Replaces characters that would change a topic's meaning (`/`, `+`, `#`, NUL) or are awkward in one (space). */
export function topicSafe(level: string): string {
  const safe = level.replace(/[/+#\u0000\s]/g, '_');
  return safe.length > 0 ? safe : '_';
}

const known = new Set<string>([...Object.keys(defaultPublisherOptions), 'nodeId', 'clientId']);

/** The one merge point: defaults, then `overrides`; rejects unknown fields and bad values with `InvalidInputError`. */
export function resolvePublisherOptions(overrides: Partial<PublisherOptions> = {}): PublisherOptions {
  for (const key of Object.keys(overrides)) {
    if (!known.has(key)) throw new InvalidInputError(`unknown MQTT publisher option "${key}"`);
  }
  const defined = Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined)) as Partial<PublisherOptions>;
  const nodeId = defined.nodeId ?? topicSafe(hostname());
  const merged: PublisherOptions = {
    ...defaultPublisherOptions,
    clientId: `kt-${nodeId}-${randomBytes(4).toString('hex')}`,
    ...defined,
    nodeId,
  };
  validate(merged);
  return merged;
}

function validate(o: PublisherOptions): void {
  const bad = (field: string, why: string): never => {
    throw new InvalidInputError(`MQTT publisher option ${field} ${why}`);
  };
  if (!/^(mqtts?|wss?|tcp|ssl):\/\/./.test(o.url)) bad('url', `must be an mqtt://, mqtts://, ws:// or wss:// URL, got "${o.url}"`);
  if (o.topicPrefix.length === 0 || /[+#\u0000]/.test(o.topicPrefix) || o.topicPrefix.startsWith('/') || o.topicPrefix.endsWith('/')) {
    bad('topicPrefix', `must be non-empty, without +, # or a leading/trailing "/", got "${o.topicPrefix}"`);
  }
  if (o.nodeId.length === 0 || o.nodeId !== topicSafe(o.nodeId)) bad('nodeId', `must be one topic level without / + # or spaces, got "${o.nodeId}"`);
  if (o.clientId.length === 0) bad('clientId', 'must be non-empty');
  for (const field of ['qos', 'statusQos'] as const) {
    if (o[field] !== 0 && o[field] !== 1 && o[field] !== 2) bad(field, `must be 0, 1 or 2, got ${String(o[field])}`);
  }
  const nonNegativeInt = ['statsIntervalMs', 'maxQueuedMessages', 'closeTimeoutMs', 'keepaliveSeconds'] as const;
  for (const field of nonNegativeInt) {
    if (!Number.isInteger(o[field]) || o[field] < 0) bad(field, `must be an integer >= 0, got ${o[field]}`);
  }
  const positiveInt = ['maxInflightMessages', 'reconnectPeriodMs', 'maxReconnectPeriodMs', 'connectTimeoutMs'] as const;
  for (const field of positiveInt) {
    if (!Number.isInteger(o[field]) || o[field] <= 0) bad(field, `must be an integer > 0, got ${o[field]}`);
  }
  if (o.maxReconnectPeriodMs < o.reconnectPeriodMs) bad('maxReconnectPeriodMs', `must be >= reconnectPeriodMs (${o.reconnectPeriodMs})`);
  if (!(o.reconnectBackoffFactor >= 1)) bad('reconnectBackoffFactor', `must be >= 1, got ${o.reconnectBackoffFactor}`);
  if (!(o.reconnectJitter >= 0 && o.reconnectJitter < 1)) bad('reconnectJitter', `must be in [0, 1), got ${o.reconnectJitter}`);
  if (o.statsSource !== undefined && typeof o.statsSource !== 'function') bad('statsSource', 'must be a function');
}
