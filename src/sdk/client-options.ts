// Options of the client SDK: one interface, one defaults object, one merge point that checks them (TypeBox schema).
import type { ChannelOptions } from '@grpc/grpc-js';
import type { BackoffPolicy } from '../core/backoff.js';
import { Type, type TSchema } from '@sinclair/typebox';
import { InvalidInputError } from '../core/errors.js';
import { checkValue } from '../core/schema.js';

/** TLS material (PEM). Without `rootCerts` the system roots are used; `privateKey` + `certChain` enable mutual TLS. */
export interface ClientTlsOptions {
  rootCerts?: Uint8Array;
  privateKey?: Uint8Array;
  certChain?: Uint8Array;
}

/** HTTP/2 keepalive pings, so a dead link is noticed while a camera stream is idle. */
export interface ClientKeepaliveOptions {
  /** Milliseconds between pings on an idle connection. Default 60000 (servers reject pings more often than allowed). */
  timeMs: number;
  /** Milliseconds to wait for a ping's answer before the connection is declared dead. Default 20000. */
  timeoutMs: number;
  /** Whether to ping when no call is open. Default false. */
  permitWithoutCalls: boolean;
}

/** Reconnects with capped exponential backoff: for the channel (grpc-js) and for re-opening a broken stream. */
export interface ClientReconnectOptions {
  /** First delay before a reconnect attempt, in milliseconds. Default 200. */
  initialBackoffMs: number;
  /** Longest delay between attempts, in milliseconds. Default 5000. */
  maxBackoffMs: number;
  /** Factor between consecutive delays. Default 2. */
  multiplier: number;
  /** Random spread of each delay as a fraction (0.2 = +-20 %), so many gateways do not retry in lockstep. Default 0.2. */
  jitter: number;
  /** How long a broken stream keeps trying to re-open before it fails with UnavailableError, in milliseconds. Default 30000; 0 never re-opens. */
  maxReconnectMs: number;
}

export interface FaceAnalysisClientOptions {
  /** TLS credentials, or `false` for plaintext (loopback, trusted LAN). Default false. */
  tls: ClientTlsOptions | false;
  /**
   * Bearer token sent as `authorization: Bearer <token>` metadata on every call (unary, streams and their re-opens).
   * Default undefined (none). Use it with `tls` beyond loopback: in plain text the token can be read on the wire.
   */
  token: string | undefined;
  /** Deadline of unary calls (analyze, models, gallery, health) in milliseconds, and the per-frame answer timeout of streams. Default 10000. */
  deadlineMs: number;
  /**
   * Largest message sent or received, in bytes. Default 16 MiB, the server's default limit (`maxReceiveMessageBytes`),
   * raised from gRPC's 4 MiB because raw 1080p RGB is 6.2 MB.
   */
  maxMessageBytes: number;
  keepalive: ClientKeepaliveOptions;
  reconnect: ClientReconnectOptions;
  /** Extra grpc-js channel options (`grpc.*`), applied last. Default none. */
  channelOptions: ChannelOptions;
}

export const defaultClientOptions: Readonly<FaceAnalysisClientOptions> = Object.freeze({
  tls: false,
  token: undefined,
  deadlineMs: 10_000,
  maxMessageBytes: 16 * 1024 * 1024,
  keepalive: Object.freeze({ timeMs: 60_000, timeoutMs: 20_000, permitWithoutCalls: false }),
  reconnect: Object.freeze({ initialBackoffMs: 200, maxBackoffMs: 5000, multiplier: 2, jitter: 0.2, maxReconnectMs: 30_000 }),
  channelOptions: Object.freeze({}),
});

/** What a caller passes: every field optional, nested groups partial. */
export interface FaceAnalysisClientInit {
  tls?: ClientTlsOptions | false;
  token?: string;
  deadlineMs?: number;
  maxMessageBytes?: number;
  keepalive?: Partial<ClientKeepaliveOptions>;
  reconnect?: Partial<ClientReconnectOptions>;
  channelOptions?: ChannelOptions;
}

const positiveInt = Type.Integer({ exclusiveMinimum: 0 });

/** How `FaceAnalysisClientInit` is checked; the keys are exactly the interfaces', so an unknown option is an error. */
const clientInitSchema = Type.Partial(
  Type.Object(
    {
      tls: Type.Union([
        Type.Partial(
          Type.Object(
            { rootCerts: Type.Uint8Array(), privateKey: Type.Uint8Array(), certChain: Type.Uint8Array() } satisfies Record<
              keyof ClientTlsOptions,
              TSchema
            >,
            { additionalProperties: false },
          ),
        ),
        Type.Literal(false),
      ]),
      // Printable ASCII without spaces: what an HTTP/2 header value may carry after "Bearer ".
      token: Type.String({ pattern: '^[\\x21-\\x7e]+$', mustBe: 'a non-empty token of printable ASCII without spaces' }),
      deadlineMs: positiveInt,
      maxMessageBytes: positiveInt,
      keepalive: Type.Partial(
        Type.Object(
          { timeMs: positiveInt, timeoutMs: positiveInt, permitWithoutCalls: Type.Boolean() } satisfies Record<
            keyof ClientKeepaliveOptions,
            TSchema
          >,
          {
            additionalProperties: false,
          },
        ),
      ),
      reconnect: Type.Partial(
        Type.Object(
          {
            initialBackoffMs: positiveInt,
            maxBackoffMs: positiveInt,
            multiplier: Type.Number({ minimum: 1 }),
            jitter: Type.Number({ minimum: 0, exclusiveMaximum: 1 }),
            maxReconnectMs: Type.Integer({ minimum: 0 }),
          } satisfies Record<keyof ClientReconnectOptions, TSchema>,
          { additionalProperties: false },
        ),
      ),
      channelOptions: Type.Object({}),
    } satisfies Record<keyof FaceAnalysisClientOptions, TSchema>,
    { additionalProperties: false },
  ),
);

function defined<T extends object>(value: T | undefined): Partial<T> {
  return Object.fromEntries(Object.entries(value ?? {}).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** The one merge point: defaults, then `init`; every unknown field (with the nearest name) and bad value is listed in one InvalidInputError. */
export function resolveClientOptions(init: FaceAnalysisClientInit = {}): FaceAnalysisClientOptions {
  checkValue(clientInitSchema, init, '', { noun: 'client option' });
  const d = defaultClientOptions;
  const o: FaceAnalysisClientOptions = {
    tls: init.tls ?? d.tls,
    token: init.token ?? d.token,
    deadlineMs: init.deadlineMs ?? d.deadlineMs,
    maxMessageBytes: init.maxMessageBytes ?? d.maxMessageBytes,
    keepalive: { ...d.keepalive, ...defined(init.keepalive) },
    reconnect: { ...d.reconnect, ...defined(init.reconnect) },
    channelOptions: { ...d.channelOptions, ...(init.channelOptions ?? {}) },
  };
  if (o.reconnect.maxBackoffMs < o.reconnect.initialBackoffMs) {
    throw new InvalidInputError(
      `client option "reconnect.maxBackoffMs" must be >= reconnect.initialBackoffMs (${o.reconnect.initialBackoffMs}), got ${o.reconnect.maxBackoffMs}`,
    );
  }
  return o;
}

/** grpc-js channel options derived from the client options. */
export function channelOptionsOf(o: FaceAnalysisClientOptions): ChannelOptions {
  return {
    'grpc.max_receive_message_length': o.maxMessageBytes,
    'grpc.max_send_message_length': o.maxMessageBytes,
    'grpc.keepalive_time_ms': o.keepalive.timeMs,
    'grpc.keepalive_timeout_ms': o.keepalive.timeoutMs,
    'grpc.keepalive_permit_without_calls': o.keepalive.permitWithoutCalls ? 1 : 0,
    'grpc.initial_reconnect_backoff_ms': o.reconnect.initialBackoffMs,
    'grpc.max_reconnect_backoff_ms': o.reconnect.maxBackoffMs,
    ...o.channelOptions,
  };
}

/** The reconnect options as the core backoff policy (stream re-opens use it; grpc-js applies its own to the channel). */
export function reconnectBackoffPolicy(r: ClientReconnectOptions): BackoffPolicy {
  return { initialMs: r.initialBackoffMs, maxMs: r.maxBackoffMs, multiplier: r.multiplier, jitter: r.jitter };
}
