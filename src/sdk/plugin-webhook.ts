// Built-in sink `webhook`: POSTs each result as a JSON faces event to a URL, with a timeout per attempt and one bounded,
// ordered DeliveryQueue per camera that retries 5xx, 429 and network failures with capped backoff and jitter, honouring
// Retry-After; each event carries an idempotency key (x-kt-event-id) so a receiver can drop a repeat after a lost answer.
import { errorMessage } from '../core/errors.js';
import { Type, definePlugin, type TSchema } from './plugin.js';
import { redactSecrets, type Logger } from '../core/log-types.js';
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
  /** Events waiting for delivery per camera (including the one being retried); when full the oldest is discarded and counted. Default 100. */
  maxQueued: number;
  /** Send only results with at least one face. Default true. */
  onlyWithFaces: boolean;
  /** `node` field of the events. Default "" (left out). */
  nodeId: string;
  /** How long onStop waits for the queue to empty before discarding the rest, in milliseconds. Default 2000. */
  flushTimeoutMs: number;
  /** Longest Retry-After (seconds or an HTTP date) honoured, in milliseconds; a longer one is cut to this. Default 60000. */
  maxRetryAfterMs: number;
}

/** The header that carries `<stream>/<sequence>`, the same on every attempt of one event. */
export const webhookEventIdHeader = 'x-kt-event-id';

/**
 * Milliseconds to wait from a Retry-After value: delta-seconds ("120") or an HTTP date; undefined when absent or
 * unreadable. A date in the past gives 0.
 */
export function retryAfterMs(header: string | null | undefined, nowMs: number = Date.now()): number | undefined {
  if (header === null || header === undefined || header.trim() === '') return undefined;
  const text = header.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  // An HTTP date names its day and month ("Wed, 21 Oct 2015 07:28:00 GMT"); Date.parse would also take "-5".
  const at = /[a-z]{3}/i.test(text) ? Date.parse(text) : Number.NaN;
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}

export const webhookPlugin = definePlugin<WebhookOptions>({
  name: 'webhook',
  description: 'POST each result as JSON to a URL: ordered per camera, bounded retries with jitter, honours Retry-After',
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
          'Events waiting for delivery per camera (including the one being retried); when full the oldest is discarded and counted. Default 100.',
      }),
      onlyWithFaces: Type.Boolean({ default: true, description: 'Send only results with at least one face. Default true.' }),
      nodeId: Type.String({ default: '', description: '`node` field of the events. Default "" (left out).' }),
      flushTimeoutMs: Type.Integer({
        minimum: 0,
        maximum: 600_000,
        default: 2000,
        description: 'How long onStop waits for the queue to empty before discarding the rest, in milliseconds. Default 2000.',
      }),
      maxRetryAfterMs: Type.Integer({
        minimum: 0,
        maximum: 3_600_000,
        default: 60_000,
        description: 'Longest Retry-After (seconds or an HTTP date) honoured, in milliseconds; a longer one is cut to this. Default 60000.',
      }),
    } satisfies Record<keyof WebhookOptions, TSchema>,
    { additionalProperties: false, title: 'webhook plugin options' },
  ),
  validate: (o) =>
    o.maxRetryBackoffMs < o.retryBackoffMs
      ? `maxRetryBackoffMs (${o.maxRetryBackoffMs}) must be >= retryBackoffMs (${o.retryBackoffMs})`
      : undefined,
  create({ options: o, log }) {
    // One queue per camera: a camera's events stay in order, and a receiver refusing one camera's events does not hold
    // up the others'.
    const queues = new Map<string, DeliveryQueue<WebhookEvent>>();
    const ended = { delivered: 0, retries: 0, failed: 0, discarded: 0 };
    /** Why the last attempt failed (status or network error); cleared by a delivery. */
    let lastProblem: string | undefined;
    const queueOf = (stream: string): DeliveryQueue<WebhookEvent> => {
      let queue = queues.get(stream);
      if (!queue) {
        queue = new DeliveryQueue<WebhookEvent>({
          maxQueued: o.maxQueued,
          maxRetries: o.maxRetries,
          // Jitter keeps many gateways that lost the same receiver from retrying in lockstep.
          backoff: { initialMs: o.retryBackoffMs, maxMs: o.maxRetryBackoffMs, multiplier: 2, jitter: 0.2 },
          deliver: async (event, signal) => {
            const outcome = await postOnce(o, event, signal, log, (problem) => (lastProblem = problem));
            if (outcome === 'ok') lastProblem = undefined;
            return outcome;
          },
          onGiveUp: (event, attempts) => log.warn({ url: o.url, stream, event: event.id, attempts }, 'event not delivered'),
        });
        queues.set(stream, queue);
      }
      return queue;
    };
    const totals = (): Record<string, number> => {
      const sum: Record<string, number> = { ...ended, queued: 0, cameras: queues.size };
      for (const q of queues.values()) for (const [k, v] of Object.entries(q.counters())) sum[k] = (sum[k] ?? 0) + v;
      return sum;
    };
    return {
      onResult(result, ctx) {
        if (o.onlyWithFaces && result.faces.length === 0) return;
        const body = JSON.stringify(resultToFacesEvent(result, ctx.streamId, o.nodeId !== '' ? o.nodeId : undefined));
        queueOf(ctx.streamId).push({ id: `${ctx.streamId}/${result.sequence}`, body });
      },
      async onStop() {
        const stopping = [...queues.values()];
        queues.clear();
        await Promise.all(stopping.map((q) => q.stop(o.flushTimeoutMs)));
        for (const q of stopping) for (const k of Object.keys(ended) as (keyof typeof ended)[]) ended[k] += q.counters()[k];
      },
      stats: totals,
      // Offline while the receiver refuses or cannot be reached (events wait in the queues meanwhile).
      health: () =>
        lastProblem === undefined
          ? { state: 'online', counters: totals() }
          : { state: 'offline', reason: `${redactSecrets(o.url)}: ${lastProblem}`, counters: totals() },
    };
  },
});

/** One event on its way: its idempotency key and JSON body. */
interface WebhookEvent {
  id: string;
  body: string;
}

/**
 * One attempt with its own timeout: 'ok', 'retry' (5xx, 429, 408, network, timeout; after Retry-After when the answer
 * has one) or 'fail' (other statuses).
 */
async function postOnce(
  o: WebhookOptions,
  event: WebhookEvent,
  stopSignal: AbortSignal,
  log: Logger,
  onProblem: (problem: string) => void,
): Promise<DeliveryOutcome> {
  const controller = new AbortController();
  const abort = (): void => controller.abort(stopSignal.reason);
  stopSignal.addEventListener('abort', abort, { once: true });
  const timer = setTimeout(() => controller.abort(new Error(`timed out after ${o.timeoutMs} ms`)), o.timeoutMs);
  try {
    const res = await fetch(o.url, {
      method: o.method,
      headers: { 'content-type': 'application/json', [webhookEventIdHeader]: event.id, ...o.headers },
      body: event.body,
      signal: controller.signal,
    });
    await res.arrayBuffer().catch(() => undefined); // free the connection
    if (res.ok) return 'ok';
    log.debug({ url: o.url, status: res.status, event: event.id }, 'webhook answered with an error status');
    onProblem(`answered ${res.status}`);
    if (!(res.status >= 500 || res.status === 429 || res.status === 408)) return 'fail';
    const waitMs = retryAfterMs(res.headers.get('retry-after'));
    return waitMs === undefined ? 'retry' : { retryAfterMs: Math.min(waitMs, o.maxRetryAfterMs) };
  } catch (e) {
    log.debug({ url: o.url, event: event.id, error: errorMessage(e) }, 'webhook request failed');
    // fetch says only "fetch failed"; the cause says why (ECONNREFUSED, timed out...).
    const cause = (e as { cause?: unknown }).cause;
    onProblem(cause === undefined ? errorMessage(e) : `${errorMessage(e)}: ${errorMessage(cause)}`);
    return 'retry';
  } finally {
    clearTimeout(timer);
    stopSignal.removeEventListener('abort', abort);
  }
}
