// Options of the MQTT event publisher: one interface, one defaults object, one merge point that validates (TypeBox).
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { Type, type TSchema } from '@sinclair/typebox';
import { InvalidInputError } from '../../core/errors.js';
import { checkValue } from '../../core/schema.js';
import { brokerUrlSchema, nodeIdSchema, qosSchema, topicPrefixSchema, topicSafe } from '../../contract/mqtt-topics.js';
import type { MqttQos } from '../../contract/wire-names.js';

export type { MqttQos };

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
  /** Broker user name. Default none. With `username` or `password` set, user:password in `url` are ignored. */
  username: string | undefined;
  /** Broker password. Default none. Never logged (the logger redacts `password` fields and URL credentials). */
  password: string | undefined;
  /** PEM CA certificate(s) trusted for an `mqtts://` or `wss://` broker. Default none: the system CAs. */
  ca: string | Uint8Array | undefined;
  /** PEM client certificate, for brokers that require mutual TLS (with `key`). Default none. */
  cert: string | Uint8Array | undefined;
  /** PEM private key of `cert`. Default none. */
  key: string | Uint8Array | undefined;
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
  ca: undefined,
  cert: undefined,
  key: undefined,
});

// The contract's topic rule; re-exported because the publisher and its users import it from here.
export { topicSafe };

const pem = Type.Union([Type.String({ minLength: 1 }), Type.Uint8Array({ minByteLength: 1 })]);

/** How every option is checked (the keys are exactly PublisherOptions', so an unknown option is an error). */
const publisherOptionsSchema = Type.Object(
  {
    url: brokerUrlSchema(),
    clientId: Type.String({ minLength: 1 }),
    topicPrefix: topicPrefixSchema(),
    nodeId: nodeIdSchema(),
    qos: qosSchema(),
    statusQos: qosSchema(),
    retainStatus: Type.Boolean(),
    retainFaces: Type.Boolean(),
    retainStats: Type.Boolean(),
    statsIntervalMs: Type.Integer({ minimum: 0 }),
    statsSource: Type.Function([], Type.Record(Type.String(), Type.Unknown())),
    maxQueuedMessages: Type.Integer({ minimum: 0 }),
    maxInflightMessages: Type.Integer({ exclusiveMinimum: 0 }),
    reconnectPeriodMs: Type.Integer({ exclusiveMinimum: 0 }),
    maxReconnectPeriodMs: Type.Integer({ exclusiveMinimum: 0 }),
    reconnectBackoffFactor: Type.Number({ minimum: 1 }),
    reconnectJitter: Type.Number({ minimum: 0, exclusiveMaximum: 1 }),
    connectTimeoutMs: Type.Integer({ exclusiveMinimum: 0 }),
    keepaliveSeconds: Type.Integer({ minimum: 0 }),
    closeTimeoutMs: Type.Integer({ minimum: 0 }),
    username: Type.String(),
    password: Type.String(),
    ca: pem,
    cert: pem,
    key: pem,
  } satisfies Record<keyof PublisherOptions, TSchema>,
  { additionalProperties: false },
);
const overridesSchema = Type.Partial(publisherOptionsSchema);

/**
 * The one merge point: defaults, then `overrides` (undefined values count as absent); every unknown field (with the
 * nearest name) and bad value is listed in one `InvalidInputError`.
 */
export function resolvePublisherOptions(overrides: Partial<PublisherOptions> = {}): PublisherOptions {
  const defined = Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined)) as Partial<PublisherOptions>;
  checkValue(overridesSchema, defined, '', { noun: 'MQTT publisher option' });
  const nodeId = defined.nodeId ?? topicSafe(hostname());
  const merged: PublisherOptions = {
    ...defaultPublisherOptions,
    clientId: `kt-${nodeId}-${randomBytes(4).toString('hex')}`,
    ...defined,
    nodeId,
  };
  if ((merged.cert === undefined) !== (merged.key === undefined))
    throw new InvalidInputError('MQTT publisher options "cert" and "key" go together: give both for mutual TLS, or neither');
  if (merged.maxReconnectPeriodMs < merged.reconnectPeriodMs) {
    throw new InvalidInputError(
      `MQTT publisher option "maxReconnectPeriodMs" must be >= reconnectPeriodMs (${merged.reconnectPeriodMs}), got ${merged.maxReconnectPeriodMs}`,
    );
  }
  return merged;
}
