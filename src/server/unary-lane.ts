// The scheduler lane of unary calls (Analyze, Enrol, Identify): a bounded FIFO; overflow is RESOURCE_EXHAUSTED.
import { ResourceExhaustedError } from '../core/errors.js';
import type { SchedulerLane, StreamScheduler } from './stream-scheduler.js';

interface Pending {
  run: () => Promise<void>;
}

export class UnaryLane implements SchedulerLane {
  readonly id = 'unary';
  private readonly waiting: Pending[] = [];
  private readonly maxWaiting: number;
  private readonly scheduler: StreamScheduler;

  constructor(scheduler: StreamScheduler, maxWaiting: number) {
    this.scheduler = scheduler;
    this.maxWaiting = maxWaiting;
    scheduler.add(this);
  }

  get queued(): number {
    return this.waiting.length;
  }

  /** Runs `work` in an inference slot, waiting in line behind other unary calls (and taking turns with streams). */
  run<T>(work: () => Promise<T>): Promise<T> {
    if (this.waiting.length >= this.maxWaiting) {
      return Promise.reject(
        new ResourceExhaustedError(
          `server overloaded: ${this.waiting.length} calls already wait for an inference slot (maxQueuedRequests ${this.maxWaiting}); retry later`,
        ),
      );
    }
    return new Promise<T>((resolve, reject) => {
      this.waiting.push({
        run: async () => {
          try {
            resolve(await work());
          } catch (e) {
            reject(e);
          }
        },
      });
      this.scheduler.wake();
    });
  }

  take(): (() => Promise<void>) | undefined {
    return this.waiting.shift()?.run;
  }
}
