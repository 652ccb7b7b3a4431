// Streams cannot hold the server hostage: idle streams and streams without a StreamConfig are reaped, and limits apply per client.
import { status, type ClientDuplexStream, type ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Task } from '../src/gen/kt/v1/common.js';
import { StreamRequest, type FaceAnalysisClient, type StreamResponse } from '../src/gen/kt/v1/face_analysis.js';
import type { RunningServer } from '../src/server/server.js';
import { peerHost } from '../src/server/stream-session.js';
import { demoJpeg, encodedImage, faceAnalysisClient, runStream, startTestServer } from './helpers/server-fixture.js';

/** An open call whose final status is recorded; it writes only what the test tells it to. */
interface OpenCall {
  call: ClientDuplexStream<StreamRequest, StreamResponse>;
  responses: StreamResponse[];
  ended: Promise<ServiceError | undefined>;
}

function openCall(client: FaceAnalysisClient, streamId?: string): OpenCall {
  const call = client.streamAnalyze();
  const responses: StreamResponse[] = [];
  const ended = new Promise<ServiceError | undefined>((resolve) => {
    let error: ServiceError | undefined;
    call.on('data', (r: StreamResponse) => responses.push(r));
    call.on('error', (e: ServiceError) => (error = e));
    call.on('status', () => setImmediate(() => resolve(error)));
  });
  if (streamId !== undefined) call.write(configMessage(streamId));
  return { call, responses, ended };
}

function configMessage(streamId: string): StreamRequest {
  return StreamRequest.fromPartial({ request: { $case: 'config', value: { streamId, analysis: { tasks: [Task.TASK_EMOTION] } } } });
}

function frameMessage(sequence: number): StreamRequest {
  return StreamRequest.fromPartial({ request: { $case: 'frame', value: { sequence, image: encodedImage(demoJpeg(1)) } } });
}

describe('idle streams and streams without a StreamConfig', () => {
  let server: RunningServer;
  let client: FaceAnalysisClient;
  const idleTimeoutMs = 2500;

  beforeAll(async () => {
    server = await startTestServer({
      tasks: ['emotion'],
      maxStreams: 8,
      streamIdleTimeoutMs: idleTimeoutMs,
      streamConfigTimeoutMs: idleTimeoutMs,
      maxUnconfiguredStreams: 2,
    });
    client = faceAnalysisClient(server);
  });
  afterAll(async () => {
    client?.close();
    await server?.close();
  });

  it('8 idle streams hold every slot, are ended with DEADLINE_EXCEEDED after streamIdleTimeoutMs, and stream 9 is then served', async () => {
    // One after the other: at most maxUnconfiguredStreams (2) may wait for their config at once.
    const idle: OpenCall[] = [];
    for (let i = 0; i < 8; i++) {
      idle.push(openCall(client, `idle-${i}`));
      await vi.waitFor(() => expect(server.stats().streamsOpen).toBe(i + 1), { timeout: 10_000 });
    }
    // Before the timeout the ninth is refused: the eight hold every slot.
    const refused = await runStream(client, [configMessage('ninth-early')]);
    expect(refused.error?.code).toBe(status.RESOURCE_EXHAUSTED);

    const ends = await Promise.all(idle.map((c) => c.ended));
    for (const e of ends) {
      expect(e?.code).toBe(status.DEADLINE_EXCEEDED);
      expect(e?.details).toMatch(/sent no frame for 2500 ms \(streamIdleTimeoutMs\)/);
    }
    await vi.waitFor(() => expect(server.stats().streamsOpen).toBe(0), { timeout: 10_000 });

    const ninth = await runStream(client, [configMessage('ninth'), frameMessage(1)]);
    expect(ninth.error).toBeUndefined();
    expect(ninth.responses).toHaveLength(1);
    expect(ninth.responses[0]!.result!.faces).toHaveLength(3);
  });

  it('a stream that keeps sending frames is not reaped', async () => {
    const busy = openCall(client, 'busy');
    // Frames spaced well inside the timeout, for longer than the timeout in total.
    for (let seq = 1; seq <= 4; seq++) {
      busy.call.write(frameMessage(seq));
      await new Promise((r) => setTimeout(r, idleTimeoutMs / 2));
    }
    busy.call.end();
    expect(await busy.ended).toBeUndefined();
    expect(busy.responses.map((r) => r.result!.sequence)).toEqual([1, 2, 3, 4]);
  });

  it('a stream that never sends its StreamConfig is ended with DEADLINE_EXCEEDED; beyond maxUnconfiguredStreams it is refused', async () => {
    const silent = [openCall(client), openCall(client)];
    // Calls on one connection reach the server in order, so the third finds two waiting for a config.
    const third = openCall(client);
    const thirdError = await third.ended;
    expect(thirdError?.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(thirdError?.details).toMatch(/without a StreamConfig.*maxUnconfiguredStreams 2/);
    for (const e of await Promise.all(silent.map((c) => c.ended))) {
      expect(e?.code).toBe(status.DEADLINE_EXCEEDED);
      expect(e?.details).toMatch(/no StreamConfig within 2500 ms/);
    }
  });
});

describe('per-client stream limit', () => {
  it('maxStreamsPerClient refuses a third stream from the same address with RESOURCE_EXHAUSTED', async () => {
    const server = await startTestServer({ tasks: ['emotion'], maxStreams: 8, maxStreamsPerClient: 2 });
    const client = faceAnalysisClient(server);
    try {
      const open = [openCall(client, 'a'), openCall(client, 'b')];
      await vi.waitFor(() => expect(server.stats().streamsOpen).toBe(2), { timeout: 10_000 });
      const third = await runStream(client, [configMessage('c')]);
      expect(third.error?.code).toBe(status.RESOURCE_EXHAUSTED);
      expect(third.error?.details).toMatch(/too many streams from 127\.0\.0\.1: 2 are open \(maxStreamsPerClient 2\)/);
      for (const c of open) c.call.end();
      for (const e of await Promise.all(open.map((c) => c.ended))) expect(e).toBeUndefined();
    } finally {
      client.close();
      await server.close();
    }
  });

  it('the client address is the peer without its port', () => {
    expect(peerHost('127.0.0.1:53122')).toBe('127.0.0.1');
    expect(peerHost('::1:53122')).toBe('::1');
    expect(peerHost('[::1]:53122')).toBe('::1');
    expect(peerHost('unix:/tmp/kt.sock')).toBe('unix:/tmp/kt.sock');
  });
});
