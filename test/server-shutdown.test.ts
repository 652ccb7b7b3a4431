// Graceful shutdown: every frame a stream had queued is answered or failed with UNAVAILABLE, and the stream ends UNAVAILABLE, not OK.
import { status, type ServiceError } from '@grpc/grpc-js';
import { describe, expect, it, vi } from 'vitest';
import { ErrorCode, Task } from '../src/gen/kt/v1/common.js';
import { DropPolicy, StreamRequest, type StreamResponse } from '../src/gen/kt/v1/face_analysis.js';
import { demoJpeg, encodedImage, faceAnalysisClient, startTestServer } from './helpers/server-fixture.js';

describe('server.close() with frames queued', () => {
  it('answers each queued frame or fails it with UNAVAILABLE, then ends the stream with UNAVAILABLE', async () => {
    const server = await startTestServer({ tasks: ['emotion'], maxConcurrentInferences: 1, maxStreamQueueDepth: 16 });
    const client = faceAnalysisClient(server);
    const frames = 12;
    try {
      const call = client.streamAnalyze();
      const responses: StreamResponse[] = [];
      const ended = new Promise<ServiceError | undefined>((resolve) => {
        let error: ServiceError | undefined;
        call.on('data', (r: StreamResponse) => responses.push(r));
        call.on('error', (e: ServiceError) => (error = e));
        call.on('status', () => setImmediate(() => resolve(error)));
      });
      call.write(
        StreamRequest.fromPartial({
          request: {
            $case: 'config',
            value: {
              streamId: 'shutdown',
              dropPolicy: DropPolicy.DROP_POLICY_QUEUE,
              queueDepth: 16,
              analysis: { tasks: [Task.TASK_EMOTION] },
            },
          },
        }),
      );
      const image = encodedImage(demoJpeg(1));
      for (let sequence = 1; sequence <= frames; sequence++) {
        call.write(StreamRequest.fromPartial({ request: { $case: 'frame', value: { sequence, image } } }));
      }
      // Shut down while most frames still wait in the queue (one slot, each frame takes a while).
      await vi.waitFor(() => expect(responses.length).toBeGreaterThanOrEqual(1), { timeout: 20_000 });
      await server.close();
      const error = await ended;

      expect(error?.code).toBe(status.UNAVAILABLE);
      expect(error?.details).toMatch(/server shutting down/);
      const last = responses.at(-1)!;
      expect(last.counters!.framesReceived).toBe(frames);
      expect(last.counters!.framesDropped).toBe(0);
      // Every frame sent got exactly one response, in order: analysed, or UNAVAILABLE.
      expect(responses.map((r) => r.result!.sequence)).toEqual(Array.from({ length: frames }, (_, i) => i + 1));
      const outcome = responses.map((r) => (r.result!.error ? r.result!.error.code : 'analysed'));
      for (const o of outcome) expect(['analysed', ErrorCode.ERROR_CODE_UNAVAILABLE]).toContain(o);
      expect(outcome).toContain(ErrorCode.ERROR_CODE_UNAVAILABLE);
      console.log(
        `shutdown with ${frames} frames sent: ${outcome.filter((o) => o === 'analysed').length} analysed, ` +
          `${outcome.filter((o) => o !== 'analysed').length} UNAVAILABLE; stream status ${status[error!.code]}`,
      );
    } finally {
      client.close();
      await server.close();
    }
  });
});
