// Backpressure building blocks: drop policies of the per-stream queue and round-robin fairness under a bounded semaphore.
import { describe, expect, it } from 'vitest';
import { DropQueue } from '../src/server/drop-queue.js';
import { Semaphore } from '../src/server/semaphore.js';
import { StreamScheduler, type SchedulerLane } from '../src/server/stream-scheduler.js';
import { UnaryLane } from '../src/server/unary-lane.js';

describe('DropQueue', () => {
  it('LATEST_WINS drops the oldest waiting item', () => {
    const q = new DropQueue<number>(2, 'LATEST_WINS');
    q.push(1);
    q.push(2);
    expect(q.push(3)).toEqual({ kind: 'replaced', dropped: 1 });
    expect(q.clear()).toEqual([2, 3]);
  });
  it('QUEUE drops the arriving item when full', () => {
    const q = new DropQueue<number>(1, 'QUEUE');
    q.push(1);
    expect(q.push(2)).toEqual({ kind: 'rejected' });
    expect(q.shift()).toBe(1);
  });
  it('BLOCK never drops and reports full so the reader pauses', () => {
    const q = new DropQueue<number>(1, 'BLOCK');
    q.push(1);
    expect(q.full).toBe(true);
    expect(q.push(2)).toEqual({ kind: 'queued' });
    expect(q.length).toBe(2);
  });
});

/** A serial lane (like a stream): one job at a time, each job resolves when `finish` is called. */
function lane(id: string, jobs: number, log: string[], pending: (() => void)[]): SchedulerLane & { left: number; busy: boolean } {
  const l = {
    id,
    left: jobs,
    busy: false,
    take() {
      if (l.busy || l.left === 0) return undefined;
      l.left -= 1;
      l.busy = true;
      return () =>
        new Promise<void>((resolve) => {
          log.push(id);
          pending.push(() => {
            l.busy = false;
            resolve();
          });
        });
    },
  };
  return l;
}

describe('StreamScheduler', () => {
  it('never runs more than the semaphore allows and takes turns among lanes with work', async () => {
    const slots = new Semaphore(1);
    const scheduler = new StreamScheduler(slots);
    const log: string[] = [];
    const pending: (() => void)[] = [];
    const busy = lane('busy', 6, log, pending);
    const quiet = lane('quiet', 2, log, pending);
    scheduler.add(busy);
    scheduler.add(quiet);
    const tick = (): Promise<void> => new Promise((r) => setTimeout(r, 0));
    scheduler.wake();
    await tick();
    while (pending.length > 0) {
      expect(slots.busy).toBe(1);
      expect(pending).toHaveLength(1);
      pending.shift()!();
      await tick();
      scheduler.wake(); // a stream lane wakes the scheduler when its job is done
      await tick();
    }
    expect(log).toEqual(['busy', 'quiet', 'busy', 'quiet', 'busy', 'busy', 'busy', 'busy']);
  });

  it('the unary lane rejects work beyond its bound with RESOURCE_EXHAUSTED', async () => {
    const slots = new Semaphore(1);
    const scheduler = new StreamScheduler(slots);
    const unary = new UnaryLane(scheduler, 1);
    let release!: () => void;
    const first = unary.run(() => new Promise<number>((r) => (release = () => r(1))));
    const second = unary.run(async () => 2); // waits: the only slot is taken
    await expect(unary.run(async () => 3)).rejects.toMatchObject({ code: 'RESOURCE_EXHAUSTED' });
    release();
    expect(await first).toBe(1);
    expect(await second).toBe(2);
  });
});
