// The SDK's tracking conversions without a server: StreamInit.tracking -> TrackingConfig (defaults, checks naming the
// field), proto faces and track events -> SDK results, and a closing response (no result) against an in-memory call.
import { EventEmitter } from 'node:events';
import type { ClientDuplexStream } from '@grpc/grpc-js';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { Task } from '../src/gen/kt/v1/common.js';
import {
  Face,
  FacesTopicMode,
  FrameResult,
  StreamConfig,
  TrackEvent as ProtoTrackEvent,
  TrackEventType,
  TrackingMode,
  type StreamRequest,
  type StreamResponse,
} from '../src/gen/kt/v1/face_analysis.js';
import { AnalysisStream, streamConfigOf, type StreamTransport } from '../src/sdk/analysis-stream.js';
import { defaultClientOptions } from '../src/sdk/client-options.js';
import { faceFromProto, trackEventFromProto, type StreamResult, type TrackEvent } from '../src/sdk/results.js';
import { trackingToProto } from '../src/sdk/tracking-init.js';

describe('StreamInit.tracking on the wire', () => {
  it('absent stays absent: the StreamConfig is byte for byte the one sent before the option existed', () => {
    const config = streamConfigOf({ streamId: 'cam', tasks: ['age'] });
    expect(config.tracking).toBeUndefined();
    const before = StreamConfig.fromPartial({ streamId: 'cam', analysis: config.analysis! });
    expect(StreamConfig.encode(config).finish()).toEqual(StreamConfig.encode(before).finish());
  });

  it('true, false, an object (mode on unless given) and reuse: true map to the contract with 0 for server defaults', () => {
    expect(trackingToProto(true)).toEqual({
      mode: TrackingMode.TRACKING_MODE_ON,
      maxAgeFrames: 0,
      minHits: 0,
      reuse: undefined,
      facesTopic: FacesTopicMode.FACES_TOPIC_MODE_UNSPECIFIED,
    });
    expect(trackingToProto(false)?.mode).toBe(TrackingMode.TRACKING_MODE_OFF);
    expect(trackingToProto({ minHits: 1, reuse: true, facesTopic: 'off' })).toMatchObject({
      mode: TrackingMode.TRACKING_MODE_ON,
      minHits: 1,
      reuse: { enabled: true, refreshAfterMs: 0, betterFaceRatio: 0, detectEveryFrames: 0 },
      facesTopic: FacesTopicMode.FACES_TOPIC_MODE_OFF,
    });
    expect(trackingToProto({ mode: 'off', reuse: false })).toMatchObject({ mode: TrackingMode.TRACKING_MODE_OFF, reuse: undefined });
    expect(trackingToProto({ reuse: { betterFaceRatio: 1.5, refreshAfterMs: 500 } })?.reuse).toMatchObject({
      betterFaceRatio: 1.5,
      refreshAfterMs: 500,
    });
  });

  it('bad values are refused with the field named', () => {
    const bad: [unknown, string][] = [
      [{ maxAgeFrames: 2.5 }, 'tracking.maxAgeFrames must be an integer >= 1, got 2.5'],
      [{ minHits: -1 }, 'tracking.minHits must be an integer >= 1, got -1'],
      [{ mode: 'auto' }, 'tracking.mode must be "on" or "off", got "auto"'],
      [{ facesTopic: true }, 'tracking.facesTopic must be "on" or "off", got true'],
      [{ reuse: 'yes' }, 'tracking.reuse must be true, false or an object, got "yes"'],
      [{ reuse: { betterFaceRatio: 0.5 } }, 'tracking.reuse.betterFaceRatio must be a number >= 1, got 0.5'],
      [{ reuse: { emotionEveryFrames: 0 } }, 'tracking.reuse.emotionEveryFrames must be an integer >= 1, got 0'],
      ['on', 'tracking must be true, false or an object, got "on"'],
    ];
    for (const [tracking, message] of bad) expect(() => trackingToProto(tracking as never), message).toThrow(message);
  });
});

describe('tracks in results', () => {
  it('an untracked face: trackId 0, not predicted, no answer ages, no summary', () => {
    const face = faceFromProto(Face.fromPartial({ score: 0.9 }));
    expect(face).toMatchObject({ trackId: 0, boxPredicted: false, answerAges: [] });
    expect(face.track).toBeUndefined();
  });

  it('a tracked face and an event: task names, summary (absent answers left out), snapshot only when sent', () => {
    const face = faceFromProto(
      Face.fromPartial({
        trackId: 7,
        boxPredicted: true,
        answerAges: [
          { task: Task.TASK_AGE, frames: 2, ageMs: 200 },
          { task: Task.TASK_UNSPECIFIED, frames: 1, ageMs: 1 },
        ],
        track: { ageYears: 31.5, gender: { label: 'female', confidence: 0.9 }, hits: 5, bestScore: 0.97 },
      }),
    );
    expect(face).toMatchObject({ trackId: 7, boxPredicted: true, answerAges: [{ task: 'age', frames: 2, ageMs: 200 }] });
    expect(face.track).toEqual({
      ageYears: 31.5,
      gender: { label: 'female', confidence: 0.9 },
      hits: 5,
      bestScore: expect.closeTo(0.97, 5),
    });

    const jpeg = Buffer.from([0xff, 0xd8, 0xff, 0xd9]);
    const event = (type: TrackEventType, snapshotJpeg = Buffer.alloc(0)) =>
      ProtoTrackEvent.fromPartial({
        type,
        trackId: 7,
        startTimeUnixMs: 1000,
        lastSequence: 9,
        box: { xPx: 1, yPx: 2, widthPx: 3, heightPx: 4 },
        snapshotJpeg,
      });
    expect(trackEventFromProto(event(TrackEventType.TRACK_EVENT_TYPE_NEW, jpeg))).toEqual({
      type: 'new',
      trackId: 7,
      startTimeUnixMs: 1000,
      endTimeUnixMs: 0,
      summary: { hits: 0, bestScore: 0 },
      box: { x: 1, y: 2, width: 3, height: 4 },
      lastSequence: 9,
      snapshotJpeg: jpeg,
    });
    expect(trackEventFromProto(event(TrackEventType.TRACK_EVENT_TYPE_UPDATE))).not.toHaveProperty('snapshotJpeg');
    // An event type from a newer server is left out rather than mislabelled.
    expect(trackEventFromProto(event(TrackEventType.TRACK_EVENT_TYPE_UNSPECIFIED))).toBeUndefined();
  });
});

/** A call that answers each frame with one `new` event and, after the half-close, one closing response, then OK. */
class ClosingCall extends EventEmitter {
  write(request: StreamRequest): boolean {
    const message = request.request;
    if (message?.$case !== 'frame') return true;
    const sequence = message.value.sequence;
    const trackEvents = [ProtoTrackEvent.fromPartial({ type: TrackEventType.TRACK_EVENT_TYPE_NEW, trackId: sequence })];
    setImmediate(() =>
      this.emit('data', { streamId: 'cam', result: FrameResult.fromPartial({ sequence }), trackEvents } as StreamResponse),
    );
    return true;
  }
  end(): void {
    const ends = [1, 2].map((trackId) => ProtoTrackEvent.fromPartial({ type: TrackEventType.TRACK_EVENT_TYPE_END, trackId }));
    setImmediate(() => {
      this.emit('data', { streamId: 'cam', result: undefined, counters: undefined, trackEvents: ends } as StreamResponse);
      this.emit('status', { code: GrpcStatus.OK, details: '', metadata: undefined });
    });
  }
  cancel(): void {}
}

const transport: StreamTransport = {
  openCall: () => new ClosingCall() as unknown as ClientDuplexStream<StreamRequest, StreamResponse>,
  waitForReady: async () => {},
  reconnect: defaultClientOptions.reconnect,
  defaultFrameTimeoutMs: 10_000,
};

describe('the closing response', () => {
  it('is no frame: the iterator yields the frames, the end events come last through onTrackEvents', async () => {
    const calls: [number[], number | undefined][] = [];
    const onTrackEvents = (events: TrackEvent[], result: StreamResult | undefined): void => {
      calls.push([events.map((e) => e.trackId), result?.sequence]);
    };
    const stream = new AnalysisStream(transport, [new Uint8Array(1), new Uint8Array(1)], {
      streamId: 'cam',
      tracking: true,
      onTrackEvents,
    });
    const sequences: number[] = [];
    for await (const r of stream) sequences.push(r.sequence);
    expect(sequences).toEqual([1, 2]);
    expect(stream.counters).toMatchObject({ framesSent: 2, framesAnswered: 2 });
    expect(stream.closingTrackEvents.map((e) => [e.type, e.trackId])).toEqual([
      ['end', 1],
      ['end', 2],
    ]);
    expect(calls).toEqual([
      [[1], 1],
      [[2], 2],
      [[1, 2], undefined],
    ]);
  });

  it('a throwing onTrackEvents fails the stream with its message', async () => {
    const stream = new AnalysisStream(transport, [new Uint8Array(1), new Uint8Array(1)], {
      streamId: 'cam',
      onTrackEvents: () => {
        throw new Error('sink down');
      },
    });
    const got: number[] = [];
    await expect(
      (async () => {
        for await (const r of stream) got.push(r.sequence);
      })(),
    ).rejects.toThrow('stream cam: onTrackEvents threw: sink down');
    expect(got).toEqual([1]);
    expect(stream.state).toBe('failed');
  });

  it('a throwing onTrackEvents on the closing events ends the loop with its message after every frame', async () => {
    const stream = new AnalysisStream(transport, [new Uint8Array(1)], {
      streamId: 'cam',
      tracking: true,
      onTrackEvents: (_events, result) => {
        if (result === undefined) throw new Error('sink down');
      },
    });
    const got: number[] = [];
    await expect(
      (async () => {
        for await (const r of stream) got.push(r.sequence);
      })(),
    ).rejects.toThrow('stream cam: onTrackEvents threw: sink down');
    expect(got).toEqual([1]);
    expect(stream.closingTrackEvents).toHaveLength(2);
  });
});
