// Dynamic batching of a real ONNX Runtime session (a MatMul graph built in code): concurrent runs are merged along the
// batch dimension and split back exactly; incompatible requests run apart; a failure reaches every request of its batch.
import { describe, expect, it } from 'vitest';
import { batchingSession, type BatchRun } from '../src/onnx/batching.js';
import { GraphBuilder } from '../src/onnx/graph-builder.js';
import { encodeModel } from '../src/onnx/proto.js';
import { createSession, runFloat } from '../src/onnx/runtime.js';

/** y = x W + 1 for x [N, 4], W [4, 3]: each output row depends on its own input row only. */
async function matmulSession() {
  const b = new GraphBuilder('rows');
  const x = b.input('x', ['N', 4]);
  const w = b.constF(
    'w',
    Float32Array.from({ length: 12 }, (_, i) => (i % 5) - 2),
    [4, 3],
  );
  const one = b.constF('one', Float32Array.from([1, 1, 1]), [3]);
  b.node('MatMul', [x, w], ['xw']);
  b.node('Add', ['xw', one], ['y']);
  b.output('y', ['N', 3]);
  return (await createSession(encodeModel(b.build({ opset: 13 })))).session;
}

const rows = (n: number, seed: number) => ({
  data: Float32Array.from({ length: n * 4 }, (_, i) => ((i * 7 + seed) % 11) - 5),
  dims: [n, 4],
});

describe('dynamic batching', () => {
  it('merges concurrent runs into one and returns each its own rows, equal to separate runs', async () => {
    const plain = await matmulSession();
    const runs: BatchRun[] = [];
    const batched = batchingSession(await matmulSession(), { maxBatch: 16, maxQueueDelayMs: 5 }, (r) => runs.push(r));
    const inputs = [rows(3, 1), rows(1, 2), rows(4, 3), rows(2, 4)];
    const expected = await Promise.all(inputs.map((x) => runFloat(plain, { x })));
    const got = await Promise.all(inputs.map((x) => runFloat(batched, { x })));
    got.forEach((out, i) => {
      expect(out.y!.dims).toEqual([inputs[i]!.dims[0], 3]);
      expect([...out.y!.data]).toEqual([...expected[i]!.y!.data]);
    });
    expect(runs).toEqual([{ requests: 4, rows: 10 }]);
  });

  it('keeps batches within maxBatch, in arrival order, and runs a lone request without waiting for company', async () => {
    const runs: BatchRun[] = [];
    const batched = batchingSession(await matmulSession(), { maxBatch: 4, maxQueueDelayMs: 5 }, (r) => runs.push(r));
    await Promise.all([rows(3, 1), rows(2, 2), rows(2, 3), rows(5, 4)].map((x) => runFloat(batched, { x })));
    // 3 alone (3 + 2 > 4), then 2 + 2, then the 5-row request alone (larger than maxBatch, never split).
    expect(runs).toEqual([
      { requests: 1, rows: 3 },
      { requests: 2, rows: 4 },
      { requests: 1, rows: 5 },
    ]);
    runs.length = 0;
    await runFloat(
      batchingSession(await matmulSession(), { maxBatch: 4, maxQueueDelayMs: 0 }, (r) => runs.push(r)),
      { x: rows(1, 1) },
    );
    expect(runs).toEqual([{ requests: 1, rows: 1 }]);
  });

  it('fails every request of a failed batch with the error, and the session keeps serving', async () => {
    const batched = batchingSession(await matmulSession(), { maxBatch: 16, maxQueueDelayMs: 5 });
    const bad = { data: new Float32Array(2 * 5), dims: [2, 5] }; // 5 columns: MatMul cannot run it
    const results = await Promise.allSettled([runFloat(batched, { x: bad }), runFloat(batched, { x: bad })]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect((await runFloat(batched, { x: rows(2, 1) })).y!.dims).toEqual([2, 3]);
    expect(() => batchingSession(batched, { maxBatch: 0, maxQueueDelayMs: 1 })).toThrow(/maxBatch must be an integer >= 1/);
  });
});
