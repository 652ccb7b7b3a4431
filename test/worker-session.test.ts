// ORT sessions in the inference thread answer as sessions on the main thread do, keep the event loop free while a
// run computes, and report bad calls without taking the thread down.
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { resolveModel } from '../src/models/repository.js';
import { createSession, runFloat } from '../src/onnx/runtime.js';
import { repoRoot } from './helpers/cli.js';

const repository = resolve(repoRoot, 'model-repository');

/** A deterministic input for a model's [N, H, W, 3] or [N, 3, H, W] float input. */
function input(n: number, size: number): Float32Array {
  const data = new Float32Array(n * size * size * 3);
  for (let i = 0; i < data.length; i++) data[i] = Math.sin(i * 0.37) * 0.8;
  return data;
}

describe('ORT sessions in the inference thread', () => {
  it("give the main thread's outputs, keep the event loop turning during a run, and survive bad calls", async () => {
    const entry = await resolveModel('faceres', undefined, repository);
    const size = entry.manifest.input.size;
    const dims = entry.manifest.input.layout === 'NCHW' ? [4, 3, size, size] : [4, size, size, 3];
    const feeds = { [entry.manifest.input.name]: { data: input(4, size), dims } };
    const main = await createSession(entry.modelPath);
    const thread = await createSession(entry.modelPath, { thread: 'worker' });
    try {
      expect(thread.session.inputNames).toEqual(main.session.inputNames);
      expect(thread.session.outputNames).toEqual(main.session.outputNames);
      const expected = await runFloat(main.session, feeds);
      // While the thread computes, timers on this thread still fire (a main-thread run blocks them for its duration).
      let ticks = 0;
      const timer = setInterval(() => (ticks += 1), 1);
      const started = performance.now();
      const got = await runFloat(thread.session, feeds);
      const ms = performance.now() - started;
      clearInterval(timer);
      for (const [name, out] of Object.entries(expected)) {
        expect(got[name]!.dims).toEqual(out.dims);
        let worst = 0;
        for (let i = 0; i < out.data.length; i++) worst = Math.max(worst, Math.abs(out.data[i]! - got[name]!.data[i]!));
        expect(worst, name).toBeLessThan(1e-4);
      }
      console.log(`inference thread: faceres x4 in ${ms.toFixed(1)} ms, ${ticks} timer ticks on the main thread meanwhile`);
      if (ms > 20) expect(ticks).toBeGreaterThan(0);
      // A wrong input name is the caller's error; the thread keeps serving.
      await expect(runFloat(thread.session, { nosuch: feeds[entry.manifest.input.name]! })).rejects.toThrow(/nosuch|input/i);
      expect(Object.keys(await runFloat(thread.session, feeds))).toEqual(Object.keys(expected));
      // A released session is gone; others in the thread are not.
      const other = await createSession(entry.modelPath, { thread: 'worker' });
      await other.session.release();
      await expect(runFloat(other.session, feeds)).rejects.toThrow(/not open in the inference thread/);
      expect(Object.keys(await runFloat(thread.session, feeds))).toEqual(Object.keys(expected));
    } finally {
      await Promise.all([main.session.release(), thread.session.release()]);
    }
  });

  it('a model that cannot load fails as it does on the main thread, naming the provider and the reason', async () => {
    await expect(createSession(new Uint8Array([1, 2, 3, 4]), { thread: 'worker' })).rejects.toThrow(
      /cannot create an ONNX Runtime session for 4-byte model: cpu: /,
    );
  });
});
