// The wire contract without sockets: backoff bounds, the stream id rule, every enum table both ways, and one faces event
// from the server's proto result and from the SDK's parsed result.
import { describe, expect, it } from 'vitest';
import { backoffDelayMs, type BackoffPolicy } from '../src/core/backoff.js';
import { InvalidInputError } from '../src/core/errors.js';
import { rawPixelFormats } from '../src/core/pixels.js';
import { facesEventOf } from '../src/contract/face-events.js';
import { checkStreamId, isStreamId } from '../src/contract/stream-id.js';
import { enumOfTask, taskNames, taskOfEnum } from '../src/contract/tasks.js';
import { dropPolicies, imageContainers, modelKinds, modelStates, pixelFormats, type WireTable } from '../src/contract/wire-names.js';
import { ImageFormat, PixelFormat, Task } from '../src/gen/kt/v1/common.js';
import { DropPolicy, FrameResult } from '../src/gen/kt/v1/face_analysis.js';
import { ModelKind, ModelState } from '../src/gen/kt/v1/models.js';
import { facesEventOf as serverFacesEventOf } from '../src/server/faces-event.js';
import { dropPolicyToProto, facesEventOfResult, frameResultFromProto } from '../src/sdk/results.js';

describe('backoffDelayMs', () => {
  const policy: BackoffPolicy = { initialMs: 100, maxMs: 5000, multiplier: 2, jitter: 0.2 };

  it('doubles from initialMs and stops at maxMs without jitter', () => {
    const exact = { ...policy, jitter: 0 };
    expect([0, 1, 2, 3, 5, 6, 20].map((a) => backoffDelayMs(exact, a))).toEqual([100, 200, 400, 800, 3200, 5000, 5000]);
  });

  it('stays within +-jitter of the nominal delay and never above maxMs', () => {
    for (const attempt of [0, 1, 2, 3, 4, 5, 6, 10]) {
      const nominal = Math.min(policy.maxMs, policy.initialMs * 2 ** attempt);
      for (const r of [0, 0.25, 0.5, 0.999999]) {
        const delay = backoffDelayMs(policy, attempt, () => r);
        expect(delay).toBeGreaterThanOrEqual(Math.round(nominal * 0.8));
        expect(delay).toBeLessThanOrEqual(Math.min(policy.maxMs, Math.round(nominal * 1.2)));
      }
    }
    expect(backoffDelayMs(policy, 0, () => 0)).toBe(80);
    expect(backoffDelayMs(policy, 0, () => 0.5)).toBe(100);
  });

  it('is at least 1 ms', () => {
    expect(backoffDelayMs({ initialMs: 0, maxMs: 10, multiplier: 2, jitter: 0.5 }, 0, () => 0)).toBe(1);
  });
});

describe('stream id rule', () => {
  it('accepts 1-64 letters, digits, - _ .', () => {
    for (const id of ['a', 'cam-1', 'door_left.2', 'A'.repeat(64)]) expect(isStreamId(id), id).toBe(true);
  });

  it('rejects empty, long, topic-breaking and non-string ids with the rule in the message', () => {
    for (const id of ['', 'A'.repeat(65), 'door/left', 'cam+', 'cam#', 'cam 1', 'kamera-ü', 7, undefined]) {
      expect(isStreamId(id), String(id)).toBe(false);
      expect(() => checkStreamId(id)).toThrow(InvalidInputError);
    }
    expect(() => checkStreamId('door/left', 'stream_id')).toThrow(
      `stream_id must be 1-64 letters, digits, '-', '_' or '.', got "door/left"`,
    );
  });
});

/** Every value of a generated enum except UNSPECIFIED and UNRECOGNIZED. */
function knownValues<E extends string>(values: Record<string, E>): E[] {
  return Object.values(values).filter((v) => !/_UNSPECIFIED$/.test(v) && v !== 'UNRECOGNIZED');
}

function expectRoundTrip<N extends string, W extends string>(table: WireTable<N, W>, wireEnum: Record<string, W>, unspecified: W): void {
  const wires = knownValues(wireEnum);
  expect(table.names).toHaveLength(wires.length);
  for (const wire of wires) {
    const name = table.fromWire(wire);
    expect(name, wire).toBeDefined();
    expect(table.toWire[name!]).toBe(wire);
  }
  for (const name of table.names) expect(table.fromWire(table.toWire[name])).toBe(name);
  expect(table.fromWire(unspecified)).toBeUndefined();
  expect(table.fromWire('UNRECOGNIZED' as W)).toBeUndefined();
  expect(table.has('no-such-name')).toBe(false);
  expect(table.has('toString')).toBe(false);
}

describe('wire-name tables round-trip every enum value', () => {
  it('pixel formats (and they are the core raw layouts)', () => {
    expectRoundTrip(pixelFormats, PixelFormat, PixelFormat.PIXEL_FORMAT_UNSPECIFIED);
    expect([...pixelFormats.names].sort()).toEqual([...rawPixelFormats].sort());
  });
  it('image containers', () => expectRoundTrip(imageContainers, ImageFormat, ImageFormat.IMAGE_FORMAT_UNSPECIFIED));
  it('drop policies', () => expectRoundTrip(dropPolicies, DropPolicy, DropPolicy.DROP_POLICY_UNSPECIFIED));
  it('model kinds', () => expectRoundTrip(modelKinds, ModelKind, ModelKind.MODEL_KIND_UNSPECIFIED));
  it('model states', () => expectRoundTrip(modelStates, ModelState, ModelState.MODEL_STATE_UNSPECIFIED));

  it('tasks', () => {
    for (const name of taskNames) expect(taskOfEnum(enumOfTask[name])).toBe(name);
    // TASK_DETECTION asks for detection only; it is not a face task with a result of its own.
    for (const task of knownValues(Task).filter((t) => t !== Task.TASK_DETECTION)) expect(enumOfTask[taskOfEnum(task)!], task).toBe(task);
  });

  it('the SDK takes the one DropPolicyName, and the spelling of earlier releases', () => {
    for (const name of dropPolicies.names) expect(dropPolicyToProto(name)).toBe(dropPolicies.toWire[name]);
    expect(dropPolicyToProto('latest-wins' as never)).toBe(DropPolicy.DROP_POLICY_LATEST_WINS);
    expect(() => dropPolicyToProto('NEWEST' as never)).toThrow(/unknown drop policy "NEWEST" \(known: LATEST_WINS, QUEUE, BLOCK\)/);
  });
});

describe('facesEventOf', () => {
  // float64 values as the server holds them before serialising; several sit next to a rounding boundary in float32.
  const pts = (n: number, z: boolean) =>
    Array.from({ length: n }, (_, i) => ({ xPx: 100.05 + i * 1.23456, yPx: 200.45 - i * 0.77, zPx: z ? -0.04 * i : 0 }));
  const proto = FrameResult.fromPartial({
    sequence: 7,
    captureTimeUnixMs: 1_700_000_000_000,
    faces: [
      {
        box: { xPx: 418.25, yPx: 408.15, widthPx: 190.05, heightPx: 189.95 },
        score: 0.93849,
        age: { years: 30.45 },
        gender: { label: 'female', confidence: 0.8415 },
        emotion: {
          label: 'happy',
          confidence: 0.59,
          scores: [
            { label: 'happy', score: 0.5905 },
            { label: 'neutral', score: 0.2 },
          ],
        },
        landmarks: { scheme: 'ibug68', points: pts(68, false) },
        mesh: { scheme: 'mediapipe468', points: pts(468, true) },
        embedding: { values: [0.1, 0.2] },
        identity: { known: true, personId: 'p-1', name: 'Ada', similarity: 0.81234 },
      },
      { box: { xPx: 1, yPx: 2, widthPx: 3, heightPx: 4 }, score: 0.6, identity: { known: false, personId: '', name: '', similarity: 0.2 } },
    ],
    timings: { queueMs: 1.5, decodeMs: 2, detectMs: 3, totalMs: 10.4 },
  });
  const sdkResult = frameResultFromProto(FrameResult.decode(FrameResult.encode(proto).finish()));

  it('gives the same event from the server proto and from the SDK result that crossed the wire', () => {
    const server = serverFacesEventOf(proto, 0);
    const sdk = facesEventOfResult(sdkResult, server.processedTimeMs);
    expect(JSON.parse(JSON.stringify(sdk))).toEqual(JSON.parse(JSON.stringify(server)));
  });

  it('carries mesh (3-D) in tasks, identity, latency from the capture time, and no embedding', () => {
    const event = facesEventOf(sdkResult, { processedTimeMs: 1_700_000_000_250, receivedAtMs: 0 });
    expect(event).toMatchObject({ sequence: 7, captureTimeMs: 1_700_000_000_000, processedTimeMs: 1_700_000_000_250, latencyMs: 250 });
    const [face, unknown] = event.faces;
    // Rounded as the float32 on the wire reads: 408.15 is 408.1499938... there, so 408.1, as every client computes it.
    expect(face!.box).toEqual({ x: 418.3, y: 408.1, width: 190.1, height: 189.9 });
    expect(face!.identity).toEqual({ personId: 'p-1', name: 'Ada', similarity: 0.812 });
    expect(unknown!.identity).toEqual({ similarity: 0.2 });
    const mesh = face!.tasks?.['mesh'] as { scheme: string; points: number[][] };
    expect(mesh.scheme).toBe('mediapipe468');
    expect(mesh.points).toHaveLength(468);
    expect(mesh.points[10]).toHaveLength(3);
    expect(face!.landmarks?.points).toHaveLength(68);
    expect(JSON.stringify(event)).not.toContain('embedding');
  });

  it('measures latency from receivedAtMs without a capture time', () => {
    const event = facesEventOf({ ...sdkResult, captureTimeUnixMs: 0 }, { processedTimeMs: 5000, receivedAtMs: 4900 });
    expect(event.captureTimeMs).toBeUndefined();
    expect(event.latencyMs).toBe(100);
    // The SDK estimates the receive time from the server's own queue + analysis time.
    expect(facesEventOfResult({ ...sdkResult, captureTimeUnixMs: 0 }, 5000).latencyMs).toBe(12);
  });
});

describe('gRPC status of each domain code', () => {
  it('matches grpc-js numbering for every KtErrorCode', async () => {
    const { status } = await import('@grpc/grpc-js');
    const { grpcStatusOfKtCode } = await import('../src/contract/status-codes.js');
    for (const [code, number] of Object.entries(grpcStatusOfKtCode)) expect(number, code).toBe(status[code as keyof typeof status]);
  });
});
