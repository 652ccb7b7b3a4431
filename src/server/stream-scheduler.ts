// Fair dispatch of frames to inference slots: round-robin over the lanes (streams, the unary lane) that have work.
import type { Semaphore } from './semaphore.js';

/** A source of jobs: a stream (one frame at a time, in order) or the unary lane (many at once). */
export interface SchedulerLane {
  readonly id: string;
  /** The next job when the lane has one ready now; taking it commits the lane to running it. */
  take(): (() => Promise<void>) | undefined;
}

export class StreamScheduler {
  private readonly slots: Semaphore;
  private readonly lanes: SchedulerLane[] = [];
  /** Index of the lane that gets the next turn. */
  private cursor = 0;
  private pumping = false;
  private rerun = false;

  constructor(slots: Semaphore) {
    this.slots = slots;
    slots.onReleased(() => this.wake());
  }

  get laneCount(): number {
    return this.lanes.length;
  }

  add(lane: SchedulerLane): void {
    this.lanes.push(lane);
  }

  remove(lane: SchedulerLane): void {
    const i = this.lanes.indexOf(lane);
    if (i < 0) return;
    this.lanes.splice(i, 1);
    if (this.cursor > i) this.cursor -= 1;
    if (this.cursor >= this.lanes.length) this.cursor = 0;
  }

  /** Call when a lane may have become ready (a frame arrived, a job finished, a write drained). */
  wake(): void {
    if (this.pumping) {
      this.rerun = true;
      return;
    }
    this.pumping = true;
    try {
      do {
        this.rerun = false;
        this.dispatch();
      } while (this.rerun);
    } finally {
      this.pumping = false;
    }
  }

  private dispatch(): void {
    while (this.slots.available > 0 && this.lanes.length > 0) {
      let job: (() => Promise<void>) | undefined;
      // One full turn starting at the cursor: the first lane with work runs, and the turn passes to the next one.
      for (let n = 0; n < this.lanes.length && job === undefined; n++) {
        const i = (this.cursor + n) % this.lanes.length;
        job = this.lanes[i]!.take();
        if (job !== undefined) this.cursor = (i + 1) % this.lanes.length;
      }
      if (job === undefined) return;
      if (!this.slots.tryAcquire()) throw new Error('scheduler lost an inference slot');
      const run = job;
      void Promise.resolve()
        .then(run)
        .catch(() => undefined) // lanes report their own errors; a job never takes the scheduler down
        .finally(() => this.slots.release());
    }
  }
}
