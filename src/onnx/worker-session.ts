// ONNX Runtime sessions that run in a worker thread. onnxruntime-node's run() computes on the calling thread (it only
// defers the call with setImmediate), so on the main thread every model run stops decoding, crops, gRPC and the next
// frame for its whole duration. In the inference thread a run overlaps that work on another core.
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import { errorMessage } from '../core/errors.js';

/** The thread's code: plain CommonJS (an eval worker), so it runs the same under tsx, vitest and the compiled dist. */
const threadSource = `
const { parentPort, workerData } = require('node:worker_threads');
const ort = require(workerData.ortPath);
const sessions = new Map();
const plain = (t) => ({ type: t.type, data: t.data, dims: t.dims });
parentPort.on('message', async (m) => {
  try {
    if (m.op === 'create') {
      const s = await ort.InferenceSession.create(m.model, m.options);
      sessions.set(m.sid, s);
      parentPort.postMessage({ id: m.id, inputNames: s.inputNames, outputNames: s.outputNames });
    } else if (m.op === 'run') {
      const s = sessions.get(m.sid);
      if (!s) throw new Error('session ' + m.sid + ' is not open in the inference thread');
      const feeds = {};
      for (const [k, v] of Object.entries(m.feeds)) feeds[k] = new ort.Tensor(v.type, v.data, v.dims);
      const r = m.fetches ? await s.run(feeds, m.fetches) : await s.run(feeds);
      const out = {};
      for (const [k, t] of Object.entries(r)) out[k] = plain(t);
      const buffers = [...new Set(Object.values(out).map((t) => t.data.buffer))];
      try {
        parentPort.postMessage({ id: m.id, out }, buffers);
      } catch {
        parentPort.postMessage({ id: m.id, out });
      }
    } else if (m.op === 'release') {
      const s = sessions.get(m.sid);
      sessions.delete(m.sid);
      if (s) await s.release();
      parentPort.postMessage({ id: m.id });
    }
  } catch (e) {
    parentPort.postMessage({ id: m.id, error: String((e && e.message) || e) });
  }
});
`;

interface Reply {
  id: number;
  error?: string;
  inputNames?: string[];
  outputNames?: string[];
  out?: Record<string, { type: ort.Tensor.Type; data: ort.Tensor.DataType; dims: number[] }>;
}

/** The process's inference thread, started on first use; it keeps the process alive only while a request is pending. */
class InferenceThread {
  private worker: Worker | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void }>();

  request(message: Record<string, unknown>, transfer: ArrayBuffer[] = []): Promise<Reply> {
    const worker = this.start();
    const id = this.nextId++;
    return new Promise<Reply>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      if (this.pending.size === 1) worker.ref();
      worker.postMessage({ ...message, id }, transfer);
    }).then((reply) => {
      if (reply.error !== undefined) throw new Error(reply.error);
      return reply;
    });
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    const ortPath = createRequire(import.meta.url).resolve('onnxruntime-node');
    const worker = new Worker(threadSource, { eval: true, workerData: { ortPath }, name: 'kt-inference' });
    worker.unref();
    worker.on('message', (reply: Reply) => {
      const waiter = this.pending.get(reply.id);
      if (!waiter) return;
      this.pending.delete(reply.id);
      if (this.pending.size === 0) worker.unref();
      waiter.resolve(reply);
    });
    const fail = (why: string): void => {
      if (this.worker === worker) this.worker = undefined;
      for (const waiter of this.pending.values()) waiter.reject(new Error(`inference thread ${why}`));
      this.pending.clear();
    };
    worker.on('error', (e) => fail(`failed: ${errorMessage(e)}`));
    worker.on('exit', (code) => fail(`exited (code ${code})`));
    this.worker = worker;
    return worker;
  }
}

let thread: InferenceThread | undefined;
let nextSession = 1;

/** Feed arrays their maker will not read again: handed to the inference thread without a copy (the caller's view is detached). */
const singleUse = new WeakSet<ArrayBufferView>();

/**
 * Marks a freshly made model input (a crop batch, a detector input) as used by one run only, so that a run in the
 * inference thread moves its memory instead of copying it. Returns the array.
 */
export function singleUseInput<T extends Float32Array>(data: T): T {
  if (data.byteOffset === 0 && data.byteLength === data.buffer.byteLength) singleUse.add(data);
  return data;
}

/**
 * An ORT session in the inference thread with the members the project uses (run, release, input and output
 * names). Feeds are copied to the thread (moved when marked with singleUseInput); outputs are moved back.
 */
export async function createThreadSession(
  model: string | Uint8Array,
  options: ort.InferenceSession.SessionOptions,
): Promise<ort.InferenceSession> {
  thread ??= new InferenceThread();
  const t = thread;
  const sid = nextSession++;
  const created = await t.request({ op: 'create', sid, model, options });
  let released: Promise<void> | undefined;
  const session = {
    inputNames: created.inputNames ?? [],
    outputNames: created.outputNames ?? [],
    async run(feeds: Record<string, ort.Tensor>, fetches?: readonly string[] | ort.InferenceSession.RunOptions) {
      const plainFeeds: Record<string, { type: ort.Tensor.Type; data: ort.Tensor.DataType; dims: readonly number[] }> = {};
      const moved: ArrayBuffer[] = [];
      for (const [k, v] of Object.entries(feeds)) {
        plainFeeds[k] = { type: v.type, data: v.data, dims: v.dims };
        const data = v.data as ArrayBufferView;
        if (singleUse.has(data) && data.buffer instanceof ArrayBuffer && !moved.includes(data.buffer)) moved.push(data.buffer);
      }
      const reply = await t.request({ op: 'run', sid, feeds: plainFeeds, fetches: Array.isArray(fetches) ? fetches : undefined }, moved);
      const out: Record<string, ort.Tensor> = {};
      for (const [k, v] of Object.entries(reply.out ?? {})) out[k] = new ort.Tensor(v.type, v.data as Float32Array, v.dims);
      return out;
    },
    release: () => (released ??= t.request({ op: 'release', sid }).then(() => undefined)),
  };
  return session as unknown as ort.InferenceSession;
}
