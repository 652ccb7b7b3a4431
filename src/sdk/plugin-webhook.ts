// Built-in plugin `webhook`: POSTs each result as a JSON faces event to a URL, with a timeout per attempt and a
// bounded DeliveryQueue that retries 5xx, 429 and network failures with the core's capped exponential backoff.
import { errorMessage } from '../core/errors.js';
import { Type, definePlugin, type TSchema } from './plugin.js';
import type { Logger } from '../core/log-types.js';
import { DeliveryQueue, type DeliveryOutcome } from './delivery-queue.js';
import { resultToFacesEvent } from './results.js';

export interface WebhookOptions {
  /** Where to send events (http or https). Required. */
  url: string;
  /** HTTP method. Default "POST". */
  method: 'POST' | 'PUT';
  /** Extra request headers (e.g. Authorization). Default none. */
  headers: Record<string, string>;
  /** Time allowed per attempt, in milliseconds. Default 5000. */
  timeoutMs: number;
  /** Retries after the first attempt for 5xx, 429, timeouts and network errors (4xx are not retried). Default 3. */
  maxRetries: number;
  /** Delay before the first retry, in milliseconds; doubles per retry. Default 500. */
  retryBackoffMs: number;
  /** Longest delay between retries, in milliseconds. Default 10000. */
  maxRetryBackoffMs: number;
  /** Events waiting for delivery (including the one being retried); when full the oldest is discarded and counted. Default 100. */
  maxQueued: number;
  /** Send only results with at least one face. Default true. */
  onlyWithFaces: boolean;
  /** `node` field of the events. Default "" (left out). */
  nodeId: string;
  /** How long onStop waits for the queue to empty before discarding the rest, in milliseconds. Default 2000. */
  flushTimeoutMs: number;
}

export const webhookPlugin = definePlugin<WebhookOptions>({
  name: 'webhook',
  description: 'POST each result as JSON to a URL, with timeout and bounded retries',
  schema: Type.Object(
    {
      url: Type.String({
        pattern: '^https?://.',
        mustBe: 'an http or https URL',
        default: '',
        description: 'Where to send events (http or https). Required.',
      }),
      method: Type.Union([Type.Literal('POST'), Type.Literal('PUT')], { default: 'POST', description: 'HTTP method. Default "POST".' }),
      headers: Type.Record(Type.String(), Type.String(), {
        default: {},
        description: 'Extra request headers (e.g. Authorization). Default none.',
      }),
      timeoutMs: Type.Integer({
        minimum: 1,
        maximum: 600_000,
        default: 5000,
        description: 'Time allowed per attempt, in milliseconds. Default 5000.',
      }),
      maxRetries: Type.Integer({
        minimum: 0,
        maximum: 100,
        default: 3,
        description: 'Retries after the first attempt for 5xx, 429, timeouts and network errors (4xx are not retried). Default 3.',
      }),
      retryBackoffMs: Type.Integer({
        minimum: 1,
        maximum: 600_000,
        default: 500,
        description: 'Delay before the first retry, in milliseconds; doubles per retry. Default 500.',
      }),
      maxRetryBackoffMs: Type.Integer({
        minimum: 1,
        maximum: 3_600_000,
        default: 10_000,
        description: 'Longest delay between retries, in milliseconds. Default 10000.',
      }),
      maxQueued: Type.Integer({
        minimum: 1,
        maximum: 1_000_000,
        default: 100,
        description:
          'Events waiting for delivery (including the one being retried); when full the oldest is discarded and counted. Default 100.',
      }),
      onlyWithFaces: Type.Boolean({ default: true, description: 'Send only results with at least one face. Default true.' }),
      nodeId: Type.String({ default: '', description: '`node` field of the events. Default "" (left out).' }),
      flushTimeoutMs: Type.Integer({
        minimum: 0,
        maximum: 600_000,
        default: 2000,
        description: 'How long onStop waits for the queue to empty before discarding the rest, in milliseconds. Default 2000.',
      }),
    } satisfies Record<keyof WebhookOptions, TSchema>,
    { additionalProperties: false, title: 'webhook plugin options' },
  ),
  validate: (o) =>
    o.maxRetryBackoffMs < o.retryBackoffMs
      ? `maxRetryBackoffMs (${o.maxRetryBackoffMs}) must be >= retryBackoffMs (${o.retryBackoffMs})`
      : undefined,
  create({ options: o, log }) {
    const queue = new DeliveryQueue<string>({
      maxQueued: o.maxQueued,
      maxRetries: o.maxRetries,
      // Deterministic doubling (no jitter): one gateway retrying one URL has nobody to fall in lockstep with.
      backoff: { initialMs: o.retryBackoffMs, maxMs: o.maxRetryBackoffMs, multiplier: 2, jitter: 0 },
      deliver: (body, signal) => postOnce(o, body, signal, log),
      onGiveUp: (_body, attempts) => log.warn({ url: o.url, attempts }, 'event not delivered'),
    });
    return {
      onResult(result, ctx) {
        if (o.onlyWithFaces && result.faces.length === 0) return;
        queue.push(JSON.stringify(resultToFacesEvent(result, ctx.streamId, o.nodeId !== '' ? o.nodeId : undefined)));
      },
      onStop: () => queue.stop(o.flushTimeoutMs),
      stats: () => ({ ...queue.counters() }),
    };
  },
});

/** One attempt with its own timeout: 'ok', 'retry' (5xx, 429, 408, network, timeout) or 'fail' (other statuses). */
async function postOnce(o: WebhookOptions, body: string, stopSignal: AbortSignal, log: Logger): Promise<DeliveryOutcome> {
  const controller = new AbortController();
  const abort = (): void => controller.abort(stopSignal.reason);
  stopSignal.addEventListener('abort', abort, { once: true });
  const timer = setTimeout(() => controller.abort(new Error(`timed out after ${o.timeoutMs} ms`)), o.timeoutMs);
  try {
    const res = await fetch(o.url, {
      method: o.method,
      headers: { 'content-type': 'application/json', ...o.headers },
      body,
      signal: controller.signal,
    });
    await res.arrayBuffer().catch(() => undefined); // free the connection
    if (res.ok) return 'ok';
    log.debug({ url: o.url, status: res.status }, 'webhook answered with an error status');
    return res.status >= 500 || res.status === 429 || res.status === 408 ? 'retry' : 'fail';
  } catch (e) {
    log.debug({ url: o.url, error: errorMessage(e) }, 'webhook request failed');
    return 'retry';
  } finally {
    clearTimeout(timer);
    stopSignal.removeEventListener('abort', abort);
  }
}
