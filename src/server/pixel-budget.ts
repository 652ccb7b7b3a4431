// A budget of decoded pixels across the frames being analysed at once: a frame reserves width x height before its pixels
// are allocated and gives them back when its analysis ends. Waiters are served first come, first served, so a huge frame
// is not starved by a stream of small ones. A per-frame limit (maxFramePixels) alone lets four 7000x7000 PNGs of 140 KiB
// each allocate ~600 MB together; with the budget they are decoded one after another.

export interface PixelBudgetStats {
  /** The budget; 0 = none. */
  capacity: number;
  /** Pixels reserved now. */
  inUse: number;
  /** Frames waiting for their share now. */
  waiting: number;
  /** Frames that had to wait, since start. */
  waitsTotal: number;
}

/** One frame's reservations; release() returns them all (idempotent). */
export interface PixelReservation {
  reserve(pixels: number): Promise<void>;
  release(): void;
}

export class PixelBudget {
  readonly capacity: number;
  private inUse = 0;
  private waitsTotal = 0;
  private readonly queue: { pixels: number; grant: () => void }[] = [];

  /** capacity 0: no budget (reservations are counted but never wait). */
  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 0) throw new RangeError(`pixel budget must be a non-negative integer, got ${capacity}`);
    this.capacity = capacity;
  }

  /** A reservation for one frame. */
  reservation(): PixelReservation {
    let held = 0;
    return {
      reserve: async (pixels: number) => {
        const share = this.capacity > 0 ? Math.min(pixels, this.capacity) : pixels;
        await this.acquire(share);
        held += share;
      },
      release: () => {
        if (held > 0) this.release(held);
        held = 0;
      },
    };
  }

  stats(): PixelBudgetStats {
    return { capacity: this.capacity, inUse: this.inUse, waiting: this.queue.length, waitsTotal: this.waitsTotal };
  }

  private fits(pixels: number): boolean {
    return this.capacity === 0 || this.inUse + pixels <= this.capacity;
  }

  private acquire(pixels: number): Promise<void> {
    if (this.queue.length === 0 && this.fits(pixels)) {
      this.inUse += pixels;
      return Promise.resolve();
    }
    this.waitsTotal += 1;
    return new Promise((grant) => this.queue.push({ pixels, grant }));
  }

  private release(pixels: number): void {
    this.inUse = Math.max(0, this.inUse - pixels);
    while (this.queue.length > 0 && this.fits(this.queue[0]!.pixels)) {
      const next = this.queue.shift()!;
      this.inUse += next.pixels;
      next.grant();
    }
  }
}
