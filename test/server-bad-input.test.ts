// Bad input of every kind gets the right status and a clear message; on a stream it is a per-frame error and the stream goes on.
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeImage } from '../src/core/image.js';
import { ErrorCode, Image, PixelFormat, Task } from '../src/gen/kt/v1/common.js';
import { DropPolicy, StreamRequest, type FaceAnalysisClient } from '../src/gen/kt/v1/face_analysis.js';
import type { RunningServer } from '../src/server/server.js';
import {
  analyze,
  analyzeError,
  analyzeRequest,
  demoJpeg,
  encodedImage,
  faceAnalysisClient,
  runStream,
  startTestServer,
} from './helpers/server-fixture.js';

let server: RunningServer;
let client: FaceAnalysisClient;
const sample1 = demoJpeg(1);

beforeAll(async () => {
  server = await startTestServer({ tasks: ['emotion'] });
  client = faceAnalysisClient(server);
});

afterAll(async () => {
  client?.close();
  await server?.close();
});

function raw(widthPx: number, heightPx: number, pixelFormat: PixelFormat, bytes: number, strideBytes = 0): Image {
  return Image.fromPartial({
    source: { $case: 'raw', value: { data: Buffer.alloc(bytes, 128), widthPx, heightPx, pixelFormat, strideBytes } },
  });
}

/** Each bad frame, the status it must get and words its message must contain. */
const badFrames: { name: string; image: () => Image; code: status; message: RegExp }[] = [
  {
    name: 'truncated JPEG',
    image: () => encodedImage(sample1.subarray(0, Math.floor(sample1.length / 2))),
    code: status.INVALID_ARGUMENT,
    message: /truncated|corrupt/i,
  },
  {
    name: 'bytes that are no image',
    image: () => encodedImage(Buffer.from('this is not an image at all')),
    code: status.INVALID_ARGUMENT,
    message: /unsupported image format/,
  },
  { name: 'empty image', image: () => Image.fromPartial({}), code: status.INVALID_ARGUMENT, message: /no image/ },
  {
    name: 'zero dimensions',
    image: () => raw(0, 480, PixelFormat.PIXEL_FORMAT_RGB8, 0),
    code: status.INVALID_ARGUMENT,
    message: /dimensions must be positive/,
  },
  {
    name: 'huge dimensions',
    image: () => raw(100_000, 100_000, PixelFormat.PIXEL_FORMAT_RGB8, 1024),
    code: status.INVALID_ARGUMENT,
    message: /over the limit/,
  },
  {
    name: 'stride below the row size',
    image: () => raw(64, 64, PixelFormat.PIXEL_FORMAT_RGB8, 100 * 64, 100),
    code: status.INVALID_ARGUMENT,
    message: /stride 100 is less than width \* 3 = 192/,
  },
  {
    name: 'buffer shorter than stride x height',
    image: () => raw(64, 64, PixelFormat.PIXEL_FORMAT_RGB8, 64 * 192, 256),
    code: status.INVALID_ARGUMENT,
    message: /needs 16384 bytes, got 12288/,
  },
  {
    name: 'unspecified pixel format',
    image: () => raw(64, 64, PixelFormat.PIXEL_FORMAT_UNSPECIFIED, 64 * 64 * 3),
    code: status.INVALID_ARGUMENT,
    message: /pixel_format is unspecified/,
  },
  {
    name: 'unknown pixel format',
    image: () => raw(64, 64, PixelFormat.UNRECOGNIZED, 64 * 64 * 3),
    code: status.INVALID_ARGUMENT,
    message: /not a known PixelFormat/,
  },
  {
    name: 'odd NV12 dimensions',
    image: () => raw(63, 63, PixelFormat.PIXEL_FORMAT_NV12, 63 * 63 * 2),
    code: status.INVALID_ARGUMENT,
    message: /NV12 .* even/,
  },
];

describe('Analyze rejects bad input with a status and a clear message', () => {
  for (const bad of badFrames) {
    it(bad.name, async () => {
      const e = await analyzeError(client, analyzeRequest(bad.image(), [Task.TASK_EMOTION]));
      expect(e.code, e.details).toBe(bad.code);
      expect(e.details).toMatch(bad.message);
    });
  }

  it('a message over the 16 MiB limit is RESOURCE_EXHAUSTED', async () => {
    const e = await analyzeError(
      client,
      analyzeRequest(raw(2560, 2300, PixelFormat.PIXEL_FORMAT_RGB8, 2560 * 2300 * 3), [Task.TASK_DETECTION]),
    );
    expect(e.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(e.details).toMatch(/larger than max/);
  });

  it('raw 1080p-class RGB8 (above the 4 MiB gRPC default) is accepted and analysed', async () => {
    const pixels = await decodeImage(sample1); // 1920 x 1280 RGB8 = 7.4 MB
    const image = Image.fromPartial({
      source: {
        $case: 'raw',
        value: {
          data: Buffer.from(pixels.data),
          widthPx: pixels.width,
          heightPx: pixels.height,
          pixelFormat: PixelFormat.PIXEL_FORMAT_RGB8,
        },
      },
    });
    const res = await analyze(client, analyzeRequest(image, [Task.TASK_EMOTION]));
    expect(res.result!.faces).toHaveLength(3);
  });

  it('an unknown task is INVALID_ARGUMENT', async () => {
    const e = await analyzeError(client, analyzeRequest(encodedImage(sample1), [Task.UNRECOGNIZED]));
    expect(e.code).toBe(status.INVALID_ARGUMENT);
    expect(e.details).toMatch(/unknown task/);
    const unspecified = await analyzeError(client, analyzeRequest(encodedImage(sample1), [Task.TASK_UNSPECIFIED]));
    expect(unspecified.code).toBe(status.INVALID_ARGUMENT);
    expect(unspecified.details).toMatch(/TASK_UNSPECIFIED is not a task/);
  });

  it('an unknown model is NOT_FOUND; a model that does not answer the task is INVALID_ARGUMENT', async () => {
    const e = await analyzeError(
      client,
      analyzeRequest(encodedImage(sample1), [Task.TASK_AGE], 1, {
        modelOverrides: [{ task: Task.TASK_AGE, model: { name: 'no-such-model', version: 0 } }],
      }),
    );
    expect(e.code).toBe(status.NOT_FOUND);
    expect(e.details).toMatch(/no-such-model.*not found/);
    const version = await analyzeError(
      client,
      analyzeRequest(encodedImage(sample1), [Task.TASK_AGE], 1, {
        modelOverrides: [{ task: Task.TASK_AGE, model: { name: 'faceres', version: 99 } }],
      }),
    );
    expect(version.code).toBe(status.NOT_FOUND);
    expect(version.details).toMatch(/faceres version 99 .*not found/);
    const wrong = await analyzeError(
      client,
      analyzeRequest(encodedImage(sample1), [Task.TASK_AGE], 1, {
        modelOverrides: [{ task: Task.TASK_AGE, model: { name: 'emotion', version: 0 } }],
      }),
    );
    expect(wrong.code).toBe(status.INVALID_ARGUMENT);
    expect(wrong.details).toMatch(/does not answer task age/);
  });
});

describe('StreamAnalyze', () => {
  it('reports each bad frame as an error result and still analyses the next good frame', async () => {
    const frames = badFrames.map((bad, i) =>
      StreamRequest.fromPartial({ request: { $case: 'frame', value: { image: bad.image(), sequence: i + 1 } } }),
    );
    const good = StreamRequest.fromPartial({ request: { $case: 'frame', value: { image: encodedImage(sample1), sequence: 100 } } });
    const { responses, error } = await runStream(client, [
      StreamRequest.fromPartial({
        request: {
          $case: 'config',
          value: { streamId: 'bad-cam', analysis: { tasks: [Task.TASK_EMOTION] }, dropPolicy: DropPolicy.DROP_POLICY_BLOCK },
        },
      }),
      ...frames,
      good,
    ]);
    expect(error).toBeUndefined();
    expect(responses).toHaveLength(badFrames.length + 1);
    badFrames.forEach((bad, i) => {
      const r = responses[i]!.result!;
      expect(r.sequence).toBe(i + 1);
      expect(r.error?.code, bad.name).toBe(ErrorCode.ERROR_CODE_INVALID_ARGUMENT);
      expect(r.error?.message).toMatch(bad.message);
      expect(r.error?.message).toMatch(new RegExp(`^frame ${i + 1}: `));
      expect(r.faces).toHaveLength(0);
    });
    const last = responses.at(-1)!;
    expect(last.result!.sequence).toBe(100);
    expect(last.result!.error).toBeUndefined();
    expect(last.result!.faces).toHaveLength(3);
    expect(last.counters).toMatchObject({
      framesReceived: badFrames.length + 1,
      framesAnalyzed: 1,
      framesFailed: badFrames.length,
      framesDropped: 0,
    });
  });

  it('a frame before the StreamConfig ends the stream with INVALID_ARGUMENT', async () => {
    const { responses, error } = await runStream(client, [
      StreamRequest.fromPartial({ request: { $case: 'frame', value: { image: encodedImage(sample1), sequence: 1 } } }),
    ]);
    expect(responses).toHaveLength(0);
    expect(error?.code).toBe(status.INVALID_ARGUMENT);
    expect(error?.details).toMatch(/first StreamAnalyze message must be a StreamConfig/);
  });

  it('a bad StreamConfig ends the stream: bad stream id, unknown task, unknown model', async () => {
    const config = (value: object): StreamRequest => StreamRequest.fromPartial({ request: { $case: 'config', value } });
    const badId = await runStream(client, [config({ streamId: 'has spaces/and slash' })]);
    expect(badId.error?.code).toBe(status.INVALID_ARGUMENT);
    expect(badId.error?.details).toMatch(/stream_id/);
    const badTask = await runStream(client, [config({ streamId: 'cam', analysis: { tasks: [Task.UNRECOGNIZED] } })]);
    expect(badTask.error?.code).toBe(status.INVALID_ARGUMENT);
    const badModel = await runStream(client, [
      config({
        streamId: 'cam',
        analysis: { tasks: [Task.TASK_EMOTION], modelOverrides: [{ task: Task.TASK_EMOTION, model: { name: 'nope' } }] },
      }),
    ]);
    expect(badModel.error?.code).toBe(status.NOT_FOUND);
  });

  it('the server keeps serving after all of it', async () => {
    const res = await analyze(client, analyzeRequest(encodedImage(sample1), [Task.TASK_EMOTION]));
    expect(res.result!.faces).toHaveLength(3);
    expect(server.stats().streamsOpen).toBe(0);
  });
});
