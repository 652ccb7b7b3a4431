// A stream's bounded frame queue with its drop policy: LATEST_WINS drops the oldest, QUEUE the arriving, BLOCK none.
import type { DropPolicyName } from '../contract/wire-names.js';

export type PushOutcome =
  /** Queued; nothing dropped. */
  | { kind: 'queued' }
  /** Queued, and the oldest waiting item was dropped to make room (LATEST_WINS). */
  | { kind: 'replaced'; dropped: unknown }
  /** Not queued: the queue was full (QUEUE). */
  | { kind: 'rejected' };

export class DropQueue<T> {
  readonly depth: number;
  readonly policy: DropPolicyName;
  private readonly items: T[] = [];

  constructor(depth: number, policy: DropPolicyName) {
    if (!Number.isInteger(depth) || depth < 1) throw new RangeError(`queue depth must be a positive integer, got ${depth}`);
    this.depth = depth;
    this.policy = policy;
  }

  get length(): number {
    return this.items.length;
  }

  get full(): boolean {
    return this.items.length >= this.depth;
  }

  /**
   * Adds an item under the policy. BLOCK always queues: its caller stops reading when `full` turns true, so the
   * queue exceeds `depth` only by the messages already in flight in the transport.
   */
  push(item: T): PushOutcome {
    if (this.items.length < this.depth || this.policy === 'BLOCK') {
      this.items.push(item);
      return { kind: 'queued' };
    }
    if (this.policy === 'QUEUE') return { kind: 'rejected' };
    const dropped = this.items.shift();
    this.items.push(item);
    return { kind: 'replaced', dropped };
  }

  shift(): T | undefined {
    return this.items.shift();
  }

  /** Empties the queue, returning what was waiting. */
  clear(): T[] {
    return this.items.splice(0, this.items.length);
  }
}
