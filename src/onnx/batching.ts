// Dynamic batching of one session's runs (Triton's dynamic batcher): runs that arrive while the session is busy, or
// within a short queue delay, go to ONNX Runtime as one batch along the first dimension and are split afterwards.
// Task models take a batch of face crops already; this merges the crops of concurrent frames (other streams).
import { InvalidInputError } from '../core/errors.js';
import { ort } from './runtime.js';

export interface BatchingOptions {
  /** Most rows (faces) in one run. A single request larger than this runs alone. */
  maxBatch: number;
  /** How long the first request of a batch may wait for others when the session is idle, in ms (0: run at once). */
  maxQueueDelayMs: number;
}

/** What one batched run did, for metrics. */
export interface BatchRun {
  requests: number;
  rows: number;
}

type Feeds = Record<string, ort.Tensor>;
type Fetched = Record<string, ort.Tensor>;

interface Pending {
  feeds: Feeds;
  fetches: readonly string[] | undefined;
  rows: number;
  /** Requests with equal keys can share a run: same inputs, same per-row shapes, same outputs asked. */
  key: string;
  resolve: (out: Fetched) => void;
  reject: (e: unknown) => void;
}

function keyOf(feeds: Feeds, fetches: readonly string[] | undefined): string {
  const inputs = Object.entries(feeds)
    .map(([name, t]) => `${name}:${t.type}:${t.dims.slice(1).join('x')}`)
    .sort();
  return `${inputs.join(',')}|${fetches ? [...fetches].sort().join(',') : '*'}`;
}

function rowsOf(feeds: Feeds): number {
  const rows = new Set(Object.values(feeds).map((t) => t.dims[0] ?? 0));
  if (rows.size !== 1) throw new InvalidInputError(`batched inputs disagree on their first dimension: ${[...rows].join(', ')}`);
  return [...rows][0]!;
}

/** Concatenates the requests' float tensors of one input along dimension 0. */
function concat(name: string, requests: readonly Pending[]): ort.Tensor {
  const parts = requests.map((r) => r.feeds[name]!);
  const first = parts[0]!;
  const rows = parts.reduce((n, t) => n + t.dims[0]!, 0);
  const data = new Float32Array(parts.reduce((n, t) => n + t.size, 0));
  let at = 0;
  for (const t of parts) {
    data.set(t.data as Float32Array, at);
    at += t.size;
  }
  return new ort.Tensor('float32', data, [rows, ...first.dims.slice(1)]);
}

/** The rows [from, from + count) of a batched output, as a tensor of its own. */
function sliceRows(t: ort.Tensor, from: number, count: number, total: number): ort.Tensor {
  const perRow = t.size / total;
  const data = (t.data as Float32Array).slice(from * perRow, (from + count) * perRow);
  return new ort.Tensor('float32', data, [count, ...t.dims.slice(1)]);
}

/** Takes the next batch out of `queue`: the oldest request and the later compatible ones that fit in maxBatch rows. */
function takeBatch(queue: Pending[], maxBatch: number): { batch: Pending[]; rows: number } {
  const head = queue[0]!;
  const batch: Pending[] = [];
  let rows = 0;
  for (let i = 0; i < queue.length;) {
    const p = queue[i]!;
    if (p.key === head.key && (batch.length === 0 || rows + p.rows <= maxBatch)) {
      batch.push(p);
      rows += p.rows;
      queue.splice(i, 1);
    } else i += 1;
  }
  return { batch, rows };
}

/**
 * A session whose `run` batches concurrent calls. It is the session itself (prototype) with `run` replaced, so every
 * caller of the session (runFloat, warm-up, release) keeps working unchanged. Inputs other than float32 with a batch
 * dimension, and outputs whose first dimension is not the batch, make a request run alone.
 */
export function batchingSession(
  session: ort.InferenceSession,
  options: BatchingOptions,
  onRun?: (run: BatchRun) => void,
): ort.InferenceSession {
  if (!Number.isInteger(options.maxBatch) || options.maxBatch < 1)
    throw new InvalidInputError(`maxBatch must be an integer >= 1, got ${options.maxBatch}`);
  const queue: Pending[] = [];
  let busy = false;
  let unbatchable = false;
  let timer: NodeJS.Timeout | undefined;
  const original = session.run.bind(session) as (feeds: Feeds, fetches?: readonly string[]) => Promise<Fetched>;

  const flush = (): void => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    if (busy || queue.length === 0) return;
    const { batch, rows } = takeBatch(queue, options.maxBatch);
    busy = true;
    void runBatch(batch, rows).finally(() => {
      busy = false;
      // Requests that queued during the run have waited long enough.
      flush();
    });
  };

  const runBatch = async (batch: readonly Pending[], rows: number): Promise<void> => {
    try {
      if (batch.length === 1) {
        batch[0]!.resolve(await original(batch[0]!.feeds, batch[0]!.fetches));
        onRun?.({ requests: 1, rows });
        return;
      }
      const feeds: Feeds = {};
      for (const name of Object.keys(batch[0]!.feeds)) feeds[name] = concat(name, batch);
      const out = await original(feeds, batch[0]!.fetches);
      if (Object.values(out).some((t) => t.dims[0] !== rows)) {
        // An output without the batch as its first dimension cannot be split: this session runs requests alone.
        unbatchable = true;
        for (const p of batch) p.resolve(await original(p.feeds, p.fetches));
        return;
      }
      onRun?.({ requests: batch.length, rows });
      let from = 0;
      for (const p of batch) {
        const mine: Fetched = {};
        for (const [name, t] of Object.entries(out)) mine[name] = sliceRows(t, from, p.rows, rows);
        from += p.rows;
        p.resolve(mine);
      }
    } catch (e) {
      for (const p of batch) p.reject(e);
    }
  };

  const run = (feeds: Feeds, fetches?: readonly string[]): Promise<Fetched> => {
    const batchable = !unbatchable && Object.values(feeds).every((t) => t.type === 'float32' && t.dims.length > 1);
    if (!batchable) return original(feeds, fetches);
    return new Promise<Fetched>((resolve, reject) => {
      queue.push({ feeds, fetches, rows: rowsOf(feeds), key: keyOf(feeds, fetches), resolve, reject });
      const queuedRows = queue.reduce((n, p) => n + p.rows, 0);
      if (busy) return;
      if (options.maxQueueDelayMs <= 0 || queuedRows >= options.maxBatch) flush();
      else timer ??= setTimeout(flush, options.maxQueueDelayMs);
    });
  };
  const proxy = Object.create(session) as ort.InferenceSession;
  Object.defineProperty(proxy, 'run', { value: run });
  return proxy;
}
