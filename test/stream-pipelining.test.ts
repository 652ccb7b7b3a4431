// A stream's next frame starts (decode, detection) while the current one runs its task models
// (streamPipelineDepth 2, the default): answers stay in frame order and equal one-frame-at-a-time answers, bad
// frames are answered in their place, and a cancelled stream returns every pixel and lease it held.
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Task } from '../src/gen/kt/v1/common.js';
import { DropPolicy, StreamRequest, type StreamResponse } from '../src/gen/kt/v1/face_analysis.js';
import type { RunningServer } from '../src/server/server.js';
import { sampleValue, scrape } from './helpers/prometheus.js';
import {
  analyze,
  analyzeRequest,
  demoJpeg,
  encodedImage,
  faceAnalysisClient,
  runStream,
  startTestServer,
} from './helpers/server-fixture.js';

const tasks = [Task.TASK_AGE, Task.TASK_EMOTION, Task.TASK_LANDMARKS];
const config = (streamId: string): StreamRequest =>
  StreamRequest.fromPartial({
    request: {
      $case: 'config',
      value: { streamId, analysis: { tasks }, dropPolicy: DropPolicy.DROP_POLICY_QUEUE, queueDepth: 8 },
    },
  });
const frame = (image: Uint8Array, sequence: number): StreamRequest =>
  StreamRequest.fromPartial({ request: { $case: 'frame', value: { image: encodedImage(image), sequence } } });

/** Per response: sequence, error code or the faces' boxes, ages, emotions, landmark counts and track ids (tracking is on by default). */
function answers(responses: StreamResponse[]): unknown[] {
  return responses
    .filter((r) => r.result)
    .map((r) => {
      const res = r.result!;
      if (res.error) return { sequence: res.sequence, error: res.error.code };
      return {
        sequence: res.sequence,
        faces: res.faces.map((f) => [
          Math.round(f.box!.xPx),
          Math.round(f.box!.yPx),
          f.age?.years.toFixed(2),
          f.emotion?.label,
          f.landmarks?.points.length,
          f.trackId,
        ]),
      };
    });
}

let pipelined: RunningServer;
let serial: RunningServer;
beforeAll(async () => {
  const common = { tasks: ['age', 'emotion', 'landmarks'] as const, metricsAddress: '127.0.0.1:0' };
  pipelined = await startTestServer({ ...common, tasks: [...common.tasks] });
  serial = await startTestServer({ ...common, tasks: [...common.tasks], streamPipelineDepth: 1 });
});
afterAll(async () => {
  await Promise.all([pipelined?.close(), serial?.close()]);
});

describe('stream pipelining', () => {
  it('answers in frame order, bad frames in their place, as a server that takes one frame at a time', async () => {
    const corrupt = Buffer.from(demoJpeg(2).subarray(0, 3000));
    const frames = [demoJpeg(1), demoJpeg(3), corrupt, demoJpeg(6), new Uint8Array(0), demoJpeg(2), demoJpeg(1)];
    const messages = (id: string) => [config(id), ...frames.map((f, i) => frame(f, i + 1))];
    const clients = [faceAnalysisClient(pipelined), faceAnalysisClient(serial)];
    try {
      const [a, b] = await Promise.all([runStream(clients[0]!, messages('p')), runStream(clients[1]!, messages('s'))]);
      expect(a.error).toBeUndefined();
      expect(b.error).toBeUndefined();
      const got = answers(a.responses);
      expect(got.map((r) => (r as { sequence: number }).sequence)).toEqual([1, 2, 3, 4, 5, 6, 7]);
      expect(got.filter((r) => 'error' in (r as object)).map((r) => (r as { sequence: number }).sequence)).toEqual([3, 5]);
      expect(got).toEqual(answers(b.responses));
      const counters = a.responses.at(-1)!.counters!;
      expect([counters.framesAnalyzed, counters.framesFailed, counters.framesDropped]).toEqual([5, 2, 0]);
    } finally {
      for (const c of clients) c.close();
    }
  });

  it('starts the next frame while the current one holds its pixels: with a one-frame pixel budget the second waits', async () => {
    // PNG frames are decoded whole, one reservation each, so the budget counts frames.
    const pngs = await Promise.all([1, 3].map((n) => sharp(demoJpeg(n)).resize(960).png({ compressionLevel: 1 }).toBuffer()));
    const budget = 960 * 800;
    const servers = await Promise.all(
      [2, 1].map((depth) =>
        startTestServer({
          tasks: ['age'],
          maxFramePixels: budget,
          maxPixelsInFlight: budget,
          metricsAddress: '127.0.0.1:0',
          streamPipelineDepth: depth,
        }),
      ),
    );
    try {
      const waits: number[] = [];
      for (const server of servers) {
        const client = faceAnalysisClient(server);
        const messages = [config('budget'), ...[0, 1, 0, 1, 0, 1].map((k, i) => frame(pngs[k]!, i + 1))];
        const { responses, error } = await runStream(client, messages);
        client.close();
        expect(error).toBeUndefined();
        expect(responses.filter((r) => r.result && !r.result.error).length).toBe(6);
        const metrics = await scrape(server.metricsAddress);
        expect(sampleValue(metrics, 'kt_frame_pixels_in_flight')).toBe(0);
        waits.push(sampleValue(metrics, 'kt_frame_pixel_budget_waits'));
      }
      console.log(`one-frame pixel budget, 6 frames: waits with streamPipelineDepth 2: ${waits[0]}, with 1: ${waits[1]}`);
      expect(waits[0]).toBeGreaterThanOrEqual(1);
      expect(waits[1]).toBe(0);
    } finally {
      await Promise.all(servers.map((s) => s.close()));
    }
  });

  it('a stream cancelled with frames in both stages returns their pixels and slots, and the server answers the next call', async () => {
    const client = faceAnalysisClient(pipelined);
    try {
      const call = client.streamAnalyze();
      const first = new Promise<void>((resolve) => call.once('data', () => resolve()));
      call.on('error', () => undefined);
      call.write(config('cancelled'));
      for (let i = 0; i < 6; i++) call.write(frame(demoJpeg((i % 6) + 1), i + 1));
      await first;
      call.cancel();
      let metrics = await scrape(pipelined.metricsAddress);
      for (
        let i = 0;
        i < 100 && sampleValue(metrics, 'kt_inference_slots_busy') + sampleValue(metrics, 'kt_frame_pixels_in_flight') > 0;
        i++
      ) {
        await new Promise((r) => setTimeout(r, 50));
        metrics = await scrape(pipelined.metricsAddress);
      }
      expect(sampleValue(metrics, 'kt_inference_slots_busy')).toBe(0);
      expect(sampleValue(metrics, 'kt_frame_pixels_in_flight')).toBe(0);
      const after = await analyze(client, analyzeRequest(encodedImage(demoJpeg(1)), [Task.TASK_AGE], 99));
      expect(after.result!.faces.length).toBe(3);
    } finally {
      client.close();
    }
  });
});
