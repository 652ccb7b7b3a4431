// Memory samples for leak tests: a forced full garbage collection (exposed at run time when node was started without
// --expose-gc) before reading what the JavaScript heap and the memory its objects hold outside it.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

export interface HeapSample {
  /** V8 heap in use after collection. */
  heapUsedBytes: number;
  /**
   * Memory outside the V8 heap that JS objects hold: array buffers, and Buffers made by native code (sharp's JPEGs,
   * which `arrayBuffers` does not count: 750 kept face snapshots of 3 KB grew external by 2.1 MiB, arrayBuffers by 0).
   */
  externalBytes: number;
}

function collector(): () => void {
  const exposed = (globalThis as { gc?: () => void }).gc;
  if (exposed) return exposed;
  setFlagsFromString('--expose-gc');
  // A new context sees the flag; the function it returns collects the whole isolate.
  return runInNewContext('gc') as () => void;
}

/** Collects garbage a few times, with event-loop turns between so finalisers and weak callbacks run, then samples. */
export async function settledHeap(rounds = 3): Promise<HeapSample> {
  const gc = collector();
  for (let i = 0; i < rounds; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 50));
  }
  gc();
  const m = process.memoryUsage();
  return { heapUsedBytes: m.heapUsed, externalBytes: m.external };
}

export const mib = (bytes: number): string => (bytes / 2 ** 20).toFixed(2);
