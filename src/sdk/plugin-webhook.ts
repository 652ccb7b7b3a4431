// Built-in plugin `webhook`: POSTs each result as a JSON faces event to a URL, with a timeout per attempt and a
// bounded queue that retries 5xx, 429 and network failures with capped exponential backoff.
import { errorMessage } from '../core/errors.js';
import { definePlugin, optionChecks } from './plugin.js';
import { resultToFacesEvent } from './results.js';
import type { FacesEventJson } from './results.js';

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

interface Pending {
  body: string;
  attempts: number;
}

export const webhookPlugin = definePlugin<WebhookOptions>({
  name: 'webhook',
  description: 'POST each result as JSON to a URL, with timeout and bounded retries',
  defaults: {
    url: '',
    method: 'POST',
    headers: {},
    timeoutMs: 5000,
    maxRetries: 3,
    retryBackoffMs: 500,
    maxRetryBackoffMs: 10_000,
    maxQueued: 100,
    onlyWithFaces: true,
    nodeId: '',
    flushTimeoutMs: 2000,
  },
  schema: {
    url: optionChecks.url(['http', 'https']),
    method: optionChecks.oneOf(['POST', 'PUT']),
    headers: optionChecks.stringRecord(),
    timeoutMs: optionChecks.int(1, 600_000),
    maxRetries: optionChecks.int(0, 100),
    retryBackoffMs: optionChecks.int(1, 600_000),
    maxRetryBackoffMs: optionChecks.int(1, 3_600_000),
    maxQueued: optionChecks.int(1, 1_000_000),
    onlyWithFaces: optionChecks.boolean(),
    nodeId: optionChecks.string(),
    flushTimeoutMs: optionChecks.int(0, 600_000),
  },
  validate: (o) => (o.maxRetryBackoffMs < o.retryBackoffMs ? `maxRetryBackoffMs (${o.maxRetryBackoffMs}) must be >= retryBackoffMs (${o.retryBackoffMs})` : undefined),
  create({ options: o, log }) {
    const queue: Pending[] = [];
    const count = { delivered: 0, retries: 0, failed: 0, discarded: 0 };
    let worker: Promise<void> | undefined;
    let stopping = false;
    let wakeSleep: (() => void) | undefined;
    const inflight = new Set<AbortController>();

    const sleep = (ms: number): Promise<void> =>
      new Promise((resolve) => {
        const timer = setTimeout(done, ms);
        function done(): void {
          clearTimeout(timer);
          wakeSleep = undefined;
          resolve();
        }
        wakeSleep = done;
      });

    /** One attempt: 'ok', 'retry' (5xx, 429, network, timeout) or 'fail' (other statuses). */
    const attempt = async (item: Pending): Promise<'ok' | 'retry' | 'fail'> => {
      const controller = new AbortController();
      inflight.add(controller);
      const timer = setTimeout(() => controller.abort(new Error(`timed out after ${o.timeoutMs} ms`)), o.timeoutMs);
      try {
        const res = await fetch(o.url, { method: o.method, headers: { 'content-type': 'application/json', ...o.headers }, body: item.body, signal: controller.signal });
        await res.arrayBuffer().catch(() => undefined); // free the connection
        if (res.ok) return 'ok';
        log.debug(`${o.url} answered ${res.status}`);
        return res.status >= 500 || res.status === 429 || res.status === 408 ? 'retry' : 'fail';
      } catch (e) {
        log.debug(`${o.url}: ${errorMessage(e)}`);
        return 'retry';
      } finally {
        clearTimeout(timer);
        inflight.delete(controller);
      }
    };

    const drain = async (): Promise<void> => {
      while (queue.length > 0 && !stopping) {
        const item = queue[0]!;
        const outcome = await attempt(item);
        if (queue[0] !== item) continue; // discarded while in flight (queue overflow)
        if (outcome === 'ok') {
          queue.shift();
          count.delivered += 1;
          continue;
        }
        if (outcome === 'fail' || item.attempts >= o.maxRetries || stopping) {
          queue.shift();
          count.failed += 1;
          log.warn(`event not delivered to ${o.url} after ${item.attempts + 1} attempt(s)`);
          continue;
        }
        const delay = Math.min(o.maxRetryBackoffMs, o.retryBackoffMs * 2 ** item.attempts);
        item.attempts += 1;
        count.retries += 1;
        await sleep(delay);
      }
    };

    const kick = (): void => {
      worker ??= drain().finally(() => {
        worker = undefined;
        if (queue.length > 0 && !stopping) kick();
      });
    };

    return {
      onResult(result, ctx) {
        if (stopping) return;
        if (o.onlyWithFaces && result.faces.length === 0) return;
        const event: FacesEventJson = resultToFacesEvent(result, ctx.streamId, o.nodeId !== '' ? o.nodeId : undefined);
        if (queue.length >= o.maxQueued) {
          // Drop the oldest that is not in flight (index 0 may be mid-attempt: keep order simple and drop index 1 when it exists).
          queue.splice(queue.length > 1 ? 1 : 0, 1);
          count.discarded += 1;
        }
        queue.push({ body: JSON.stringify(event), attempts: 0 });
        kick();
      },
      async onStop() {
        const deadline = Date.now() + o.flushTimeoutMs;
        while (worker && Date.now() < deadline) {
          await Promise.race([worker, new Promise((r) => setTimeout(r, Math.max(1, deadline - Date.now())))]);
        }
        stopping = true;
        wakeSleep?.();
        for (const c of inflight) c.abort(new Error('webhook plugin stopping'));
        await worker;
        count.discarded += queue.length;
        queue.length = 0;
      },
      stats: () => ({ ...count, queued: queue.length }),
    };
  },
});
