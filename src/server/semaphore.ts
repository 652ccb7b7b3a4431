// A counting semaphore for inference slots: non-blocking tryAcquire for the scheduler, release wakes a listener.

export class Semaphore {
  readonly capacity: number;
  private inUse = 0;
  private readonly onRelease: (() => void)[] = [];

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`semaphore capacity must be a positive integer, got ${capacity}`);
    this.capacity = capacity;
  }

  /** Slots free now. */
  get available(): number {
    return this.capacity - this.inUse;
  }

  /** Slots taken now. */
  get busy(): number {
    return this.inUse;
  }

  /** Takes a slot when one is free; never waits. */
  tryAcquire(): boolean {
    if (this.inUse >= this.capacity) return false;
    this.inUse += 1;
    return true;
  }

  release(): void {
    if (this.inUse === 0) throw new Error('semaphore released more often than acquired');
    this.inUse -= 1;
    for (const listener of this.onRelease) listener();
  }

  /** Called after every release (the scheduler pumps from here). */
  onReleased(listener: () => void): void {
    this.onRelease.push(listener);
  }
}
