// MQTT topic and broker rules shared by the server, the event publisher and the SDK's mqtt-forward plugin.
import { Type } from '@sinclair/typebox';

/** Broker URL schemes mqtt.js connects with. */
export const brokerUrlPattern = '^(mqtts?|wss?|tcp|ssl)://.';
/** One or more topic levels: non-empty, no wildcard or NUL, no leading or trailing '/' (that would add an empty level). */
export const topicPrefixPattern = '^[^/+#\\u0000]([^+#\\u0000]*[^/+#\\u0000])?$';
/** Exactly one topic level: no '/', wildcard, NUL or white space. */
export const topicLevelPattern = '^[^/+#\\u0000\\s]*$';

const brokerUrlRe = new RegExp(brokerUrlPattern);
const topicPrefixRe = new RegExp(topicPrefixPattern);
const topicLevelRe = new RegExp(topicLevelPattern);

export const isBrokerUrl = (v: unknown): v is string => typeof v === 'string' && brokerUrlRe.test(v);
export const isTopicPrefix = (v: unknown): v is string => typeof v === 'string' && topicPrefixRe.test(v);
/** One non-empty topic level (a node id or a stream id as it appears in a topic). */
export const isTopicLevel = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && topicLevelRe.test(v);

/** Replaces characters that would change a topic's meaning (`/`, `+`, `#`, NUL) or are awkward in one (space). */
export function topicSafe(level: string): string {
  const safe = level.replace(/[/+#\u0000\s]/g, '_');
  return safe.length > 0 ? safe : '_';
}

type Doc = { description?: string; default?: string };

/** Schema of a broker URL. */
export const brokerUrlSchema = (doc: Doc = {}) =>
  Type.String({ pattern: brokerUrlPattern, mustBe: 'an mqtt://, mqtts://, ws:// or wss:// URL', ...doc });

/** Schema of a broker URL where '' means "choose automatically" (the server's local-or-embedded broker). */
export const brokerUrlOrAutoSchema = (doc: Doc = {}) =>
  Type.String({ pattern: `^$|${brokerUrlPattern}`, mustBe: 'empty (auto) or an mqtt://, mqtts://, ws:// or wss:// URL', ...doc });

/** Schema of a topic prefix (first level(s)). */
export const topicPrefixSchema = (doc: Doc = {}) =>
  Type.String({ pattern: topicPrefixPattern, mustBe: 'a topic prefix without +, # or a leading/trailing "/"', ...doc });

/** Schema of a node id where '' means "the host name". */
export const nodeIdOrHostSchema = (doc: Doc = {}) =>
  Type.String({ pattern: topicLevelPattern, mustBe: 'one topic level without / + # or spaces (empty: the host name)', ...doc });

/** Schema of a non-empty node id. */
export const nodeIdSchema = (doc: Doc = {}) =>
  Type.String({ minLength: 1, pattern: topicLevelPattern, mustBe: 'one non-empty topic level without / + # or spaces', ...doc });

/** Schema of an MQTT QoS. */
export const qosSchema = (doc: { description?: string; default?: 0 | 1 | 2 } = {}) =>
  Type.Union([Type.Literal(0), Type.Literal(1), Type.Literal(2)], doc);

/** The per-stream topics: `<prefix>/<node>/<stream>/<leaf>` (faces per frame, track events, best-face snapshot). */
export type StreamTopicLeaf = 'faces' | 'events' | 'snapshot';

/** A per-stream topic; the stream id is made topic-safe (see topicSafe). */
export function streamTopic(prefix: string, node: string, streamId: string, leaf: StreamTopicLeaf): string {
  return `${prefix}/${node}/${topicSafe(streamId)}/${leaf}`;
}
