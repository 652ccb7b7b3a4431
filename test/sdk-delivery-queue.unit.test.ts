// The webhook's DeliveryQueue with an in-memory deliver(): order, retries with backoff then give-up, drop-oldest, stop.
import { describe, expect, it, vi } from 'vitest';
import { DeliveryQueue, type DeliveryOutcome } from '../src/sdk/delivery-queue.js';

const backoff = { initialMs: 1, maxMs: 4, multiplier: 2, jitter: 0 };

describe('DeliveryQueue', () => {
  it('delivers in order and retries transient failures up to maxRetries', async () => {
    const attempts: string[] = [];
    const outcomes: Record<string, DeliveryOutcome[]> = { a: ['retry', 'ok'], b: ['retry', 'retry', 'retry'], c: ['fail'], d: ['ok'] };
    const givenUp: [string, number][] = [];
    const queue = new DeliveryQueue<string>({
      maxQueued: 10,
      maxRetries: 2,
      backoff,
      deliver: async (item) => {
        attempts.push(item);
        return outcomes[item]!.shift() ?? 'ok';
      },
      onGiveUp: (item, n) => givenUp.push([item, n]),
    });
    for (const item of ['a', 'b', 'c', 'd']) queue.push(item);
    await vi.waitFor(() => expect(queue.counters()).toMatchObject({ delivered: 2, failed: 2, queued: 0 }));
    expect(attempts).toEqual(['a', 'a', 'b', 'b', 'b', 'c', 'd']);
    expect(givenUp).toEqual([
      ['b', 3],
      ['c', 1],
    ]);
    expect(queue.counters()).toEqual({ delivered: 2, retries: 3, failed: 2, discarded: 0, queued: 0 });
    await queue.stop(0);
  });

  it('discards the oldest waiting item when full, keeps the one in flight, and stop() discards the rest', async () => {
    let release: (() => void) | undefined;
    const delivered: number[] = [];
    const queue = new DeliveryQueue<number>({
      maxQueued: 2,
      maxRetries: 0,
      backoff,
      deliver: (item, signal) =>
        new Promise<DeliveryOutcome>((resolve) => {
          release = () => {
            delivered.push(item);
            resolve('ok');
          };
          signal.addEventListener('abort', () => resolve('retry'), { once: true });
        }),
    });
    queue.push(1); // in flight
    queue.push(2);
    queue.push(3); // full: 2 goes, 1 stays in flight
    expect(queue.counters()).toMatchObject({ discarded: 1, queued: 2 });
    release!();
    await vi.waitFor(() => expect(delivered).toEqual([1]));
    await queue.stop(0); // 3 is in flight and aborted
    expect(queue.stopped).toBe(true);
    queue.push(4); // ignored once stopped
    expect(queue.counters()).toMatchObject({ delivered: 1, failed: 1, discarded: 1, queued: 0 });
  });
});
