// A bounded, ordered delivery queue: one item in flight, retries with the core backoff, drop-oldest when full.
import { backoffDelayMs, type BackoffPolicy } from '../core/backoff.js';

/**
 * What one attempt achieved: delivered, worth retrying (transient), failed for good, or worth retrying after the
 * delay the receiver asked for (HTTP Retry-After), which replaces the backoff delay for that retry.
 */
export type DeliveryOutcome = 'ok' | 'retry' | 'fail' | { retryAfterMs: number };

export interface DeliveryQueueOptions<T> {
  /** Items waiting (including the one in flight); when full the oldest not in flight is discarded and counted. */
  maxQueued: number;
  /** Retries after the first attempt of an item. */
  maxRetries: number;
  /** Delay before each retry. */
  backoff: BackoffPolicy;
  /** One attempt. `signal` aborts when the queue stops, so a slow attempt ends at once. */
  deliver(item: T, signal: AbortSignal): Promise<DeliveryOutcome>;
  /** Called when an item is given up (a 'fail' outcome, retries spent, or stopping). */
  onGiveUp?(item: T, attempts: number): void;
}

export interface DeliveryCounters {
  delivered: number;
  retries: number;
  failed: number;
  discarded: number;
  queued: number;
}

interface Pending<T> {
  item: T;
  attempts: number;
}

export class DeliveryQueue<T> {
  private readonly options: DeliveryQueueOptions<T>;
  private readonly queue: Pending<T>[] = [];
  private readonly count = { delivered: 0, retries: 0, failed: 0, discarded: 0 };
  private readonly stopController = new AbortController();
  private worker: Promise<void> | undefined;
  private wakeSleep: (() => void) | undefined;

  constructor(options: DeliveryQueueOptions<T>) {
    this.options = options;
  }

  get stopped(): boolean {
    return this.stopController.signal.aborted;
  }

  /** Queues an item and starts delivering; ignored once stopped. */
  push(item: T): void {
    if (this.stopped) return;
    if (this.queue.length >= this.options.maxQueued) {
      // Index 0 may be mid-attempt: keep the order simple and drop index 1 when it exists.
      this.queue.splice(this.queue.length > 1 ? 1 : 0, 1);
      this.count.discarded += 1;
    }
    this.queue.push({ item, attempts: 0 });
    this.kick();
  }

  /** Waits up to `timeoutMs` for the queue to empty, then aborts what is in flight and discards the rest. */
  async stop(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.worker && Date.now() < deadline) {
      await Promise.race([this.worker, new Promise((r) => setTimeout(r, Math.max(1, deadline - Date.now())))]);
    }
    this.stopController.abort(new Error('delivery queue stopping'));
    this.wakeSleep?.();
    await this.worker;
    this.count.discarded += this.queue.length;
    this.queue.length = 0;
  }

  counters(): DeliveryCounters {
    return { ...this.count, queued: this.queue.length };
  }

  private kick(): void {
    this.worker ??= this.drain().finally(() => {
      this.worker = undefined;
      if (this.queue.length > 0 && !this.stopped) this.kick();
    });
  }

  private async drain(): Promise<void> {
    const { options } = this;
    while (this.queue.length > 0 && !this.stopped) {
      const pending = this.queue[0]!;
      const outcome = await options.deliver(pending.item, this.stopController.signal);
      if (this.queue[0] !== pending) continue; // discarded while in flight (queue overflow)
      if (outcome === 'ok') {
        this.queue.shift();
        this.count.delivered += 1;
        continue;
      }
      if (outcome === 'fail' || pending.attempts >= options.maxRetries || this.stopped) {
        this.queue.shift();
        this.count.failed += 1;
        options.onGiveUp?.(pending.item, pending.attempts + 1);
        continue;
      }
      const delayMs = typeof outcome === 'object' ? Math.max(1, outcome.retryAfterMs) : backoffDelayMs(options.backoff, pending.attempts);
      pending.attempts += 1;
      this.count.retries += 1;
      await this.sleep(delayMs);
    }
  }

  /** A sleep that stop() cuts short. */
  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.wakeSleep = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wakeSleep = done;
    });
  }
}
