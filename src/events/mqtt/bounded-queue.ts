// A fixed-capacity FIFO ring buffer that evicts its oldest entry when full (the MQTT outbound queue).

export class BoundedQueue<T> {
  private readonly slots: (T | undefined)[];
  private head = 0;
  private size = 0;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 0) throw new RangeError(`queue capacity must be an integer >= 0, got ${capacity}`);
    this.slots = new Array<T | undefined>(capacity);
  }

  get length(): number {
    return this.size;
  }

  /** Appends `item`; when full, evicts and returns the oldest entry (or `item` itself when the capacity is 0). */
  push(item: T): T | undefined {
    if (this.capacity === 0) return item;
    let evicted: T | undefined;
    if (this.size === this.capacity) {
      evicted = this.slots[this.head];
      this.slots[this.head] = undefined;
      this.head = (this.head + 1) % this.capacity;
      this.size -= 1;
    }
    this.slots[(this.head + this.size) % this.capacity] = item;
    this.size += 1;
    return evicted;
  }

  /** Removes and returns the oldest entry. */
  shift(): T | undefined {
    if (this.size === 0) return undefined;
    const item = this.slots[this.head];
    this.slots[this.head] = undefined;
    this.head = (this.head + 1) % this.capacity;
    this.size -= 1;
    return item;
  }

  clear(): void {
    this.slots.fill(undefined);
    this.head = 0;
    this.size = 0;
  }
}
