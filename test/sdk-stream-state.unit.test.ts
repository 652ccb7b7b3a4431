// AnalysisStream's state machine against an in-memory call (no sockets): idle -> open -> draining -> done, stop before
// the first pull opens no call, and a non-retryable error fails the stream once.
import { EventEmitter } from 'node:events';
import type { ClientDuplexStream } from '@grpc/grpc-js';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { FrameResult, type StreamRequest, type StreamResponse } from '../src/gen/kt/v1/face_analysis.js';
import { AnalysisStream, type StreamTransport } from '../src/sdk/analysis-stream.js';
import { defaultClientOptions } from '../src/sdk/client-options.js';

/** A call that answers every frame at once and ends with OK after the half-close, or fails with `failWith`. */
class FakeCall extends EventEmitter {
  readonly frames: number[] = [];
  cancelled = false;
  constructor(private readonly failWith?: number) {
    super();
  }
  write(request: StreamRequest): boolean {
    const message = request.request;
    if (message?.$case !== 'frame') return true;
    this.frames.push(message.value.sequence);
    const sequence = message.value.sequence;
    setImmediate(() => {
      if (this.failWith !== undefined) {
        this.emit('error', Object.assign(new Error('bad'), { code: this.failWith, details: 'bad request' }));
        return;
      }
      const response: StreamResponse = {
        streamId: 'cam',
        result: FrameResult.fromPartial({ sequence }),
        counters: undefined,
        trackEvents: [],
      };
      this.emit('data', response);
    });
    return true;
  }
  end(): void {
    setImmediate(() => this.emit('status', { code: GrpcStatus.OK, details: '', metadata: undefined }));
  }
  cancel(): void {
    this.cancelled = true;
  }
}

function transportOf(calls: FakeCall[], makeCall: () => FakeCall): StreamTransport & { settled: number } {
  const transport = {
    settled: 0,
    openCall: () => {
      const call = makeCall();
      calls.push(call);
      return call as unknown as ClientDuplexStream<StreamRequest, StreamResponse>;
    },
    waitForReady: async () => {},
    reconnect: defaultClientOptions.reconnect,
    defaultFrameTimeoutMs: 10_000,
    onSettled: () => {
      transport.settled += 1;
    },
  };
  return transport;
}

const frame = new Uint8Array([0xff, 0xd8, 0xff]);

describe('AnalysisStream state', () => {
  it('goes idle -> open -> done and settles once', async () => {
    const calls: FakeCall[] = [];
    const transport = transportOf(calls, () => new FakeCall());
    const stream = new AnalysisStream(transport, [frame, frame, frame], { streamId: 'cam' });
    expect(stream.state).toBe('idle');
    const sequences: number[] = [];
    for await (const r of stream) {
      expect(['open', 'draining', 'done']).toContain(stream.state);
      sequences.push(r.sequence);
    }
    expect(sequences).toEqual([1, 2, 3]);
    expect(stream.state).toBe('done');
    expect(transport.settled).toBe(1);
    expect(calls).toHaveLength(1);
    expect(stream.counters).toMatchObject({ framesSent: 3, framesAnswered: 3, framesLost: 0 });
  });

  it('stop() before the first pull opens no call and ends the iteration', async () => {
    const calls: FakeCall[] = [];
    const transport = transportOf(calls, () => new FakeCall());
    const stream = new AnalysisStream(transport, [frame], { streamId: 'cam' });
    stream.stop();
    expect(stream.state).toBe('stopped');
    const results = [];
    for await (const r of stream) results.push(r);
    expect(results).toEqual([]);
    expect(calls).toHaveLength(0);
    expect(transport.settled).toBe(1);
  });

  it('fails once on a non-retryable status, then ends', async () => {
    const calls: FakeCall[] = [];
    const transport = transportOf(calls, () => new FakeCall(GrpcStatus.INVALID_ARGUMENT));
    const stream = new AnalysisStream(transport, [frame, frame], { streamId: 'cam' });
    const iterator = stream[Symbol.asyncIterator]();
    await expect(iterator.next()).rejects.toThrow(/INVALID_ARGUMENT/);
    expect(stream.state).toBe('failed');
    await expect(iterator.next()).resolves.toEqual({ done: true, value: undefined });
    stream.stop();
    expect(stream.state).toBe('failed');
    expect(transport.settled).toBe(1);
  });
});
