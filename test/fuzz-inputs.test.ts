// Fuzzes every input as raw protobuf bytes (random, truncated, bit-flipped, huge numbers, unknown enums, odd strings):
// a client's mistake is never INTERNAL or UNKNOWN, and a bad frame never ends its stream.
import { BinaryWriter } from '@bufbuild/protobuf/wire';
import { Client, Metadata, credentials, status, type ServiceError } from '@grpc/grpc-js';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Image, PixelFormat, Task } from '../src/gen/kt/v1/common.js';
import { AnalyzeRequest, DropPolicy, Frame, StreamRequest, StreamResponse } from '../src/gen/kt/v1/face_analysis.js';
import type { RunningServer } from '../src/server/server.js';
import { startTestServer } from './helpers/server-fixture.js';
import { createRandom } from '../src/train/seeded-random.js';

const analyzePath = '/kt.v1.FaceAnalysis/Analyze';
const streamPath = '/kt.v1.FaceAnalysis/StreamAnalyze';
const identity = (b: Buffer): Buffer => b;
const maxUint64 = 18446744073709551615n;
/** A call still open after this is a hang: it shows up as DEADLINE_EXCEEDED and fails the test instead of stalling it. */
const callDeadlineMs = 30_000;

function tinyPng(): Buffer {
  const png = new PNG({ width: 24, height: 16 });
  png.data.fill(127);
  return PNG.sync.write(png);
}

const rawImage = Image.fromPartial({
  source: {
    $case: 'raw',
    value: { data: Buffer.alloc(8 * 6 * 3, 90), widthPx: 8, heightPx: 6, pixelFormat: PixelFormat.PIXEL_FORMAT_RGB8 },
  },
});
const pngImage = Image.fromPartial({ source: { $case: 'encoded', value: { data: tinyPng() } } });
const tasks = [Task.TASK_EMOTION];

const bytesOf = (m: { finish(): Uint8Array }): Buffer => Buffer.from(m.finish());
const analyzeBytes = (image: Image, sequence = 7): Buffer =>
  bytesOf(
    AnalyzeRequest.encode(
      AnalyzeRequest.fromPartial({ frame: { image, sequence, captureTimeUnixMs: 1_700_000_000_000 }, analysis: { tasks } }),
    ),
  );
const frameBytes = (image: Image, sequence = 7): Buffer =>
  bytesOf(StreamRequest.encode(StreamRequest.fromPartial({ request: { $case: 'frame', value: Frame.fromPartial({ image, sequence }) } })));

/** A length-delimited field appended to a message: a second copy of a message field replaces the first (ts-proto does not merge). */
function withSubmessage(message: Buffer, fieldNo: number, sub: Uint8Array): Buffer {
  return Buffer.concat([message, bytesOf(new BinaryWriter().uint32((fieldNo << 3) | 2).bytes(sub))]);
}

/** Whole frames (a valid image) whose 64-bit fields the generated types cannot all hold, written by hand. */
const hugeFrames: Uint8Array[] = [
  new BinaryWriter().uint32(16).uint64(maxUint64),
  new BinaryWriter().uint32(24).int64(maxUint64 >> 1n),
  new BinaryWriter().uint32(24).int64(-1n),
  new BinaryWriter().uint32(16).uint64(2n ** 53n),
  new BinaryWriter().uint32(16).uint64(2n ** 53n - 1n),
  new BinaryWriter().uint32(24).int64(-(2n ** 63n)),
].map((field) => Buffer.concat([bytesOf(Frame.encode(Frame.fromPartial({ image: rawImage }))), bytesOf(field)]));
/** Raw-image fields with odd numbers: width/height past 2^31, unknown pixel format, huge stride. */
const oddRawImages: Uint8Array[] = [
  [2, 0xffffffff],
  [3, 0x7fffffff],
  [4, 0xffffffff],
  [5, 77],
].map(([f, v]) =>
  bytesOf(
    new BinaryWriter()
      .uint32(1)
      .fork()
      .uint32(2)
      .fork()
      .uint32(f! << 3)
      .uint32(v!)
      .join()
      .join(),
  ),
);

const oddStrings = ['cam\u0000era', '\u202Eevil\u202C', 'x'.repeat(100_000), '', '../../etc/passwd', '\uD800', '<script>'];

/** AnalysisOptions with unknown task numbers and odd model-override names (field 2 of AnalyzeRequest, 2 of StreamConfig). */
function oddAnalysisOptions(): Uint8Array[] {
  const unknownTasks = [999, -1, 0x7fffffff].map((t) => bytesOf(new BinaryWriter().uint32(8).int32(t)));
  const overrides = oddStrings.map((name) =>
    bytesOf(new BinaryWriter().uint32(18).fork().uint32(8).int32(1).uint32(18).fork().uint32(10).string(name).join().join()),
  );
  // A string field carrying invalid UTF-8.
  const badUtf8 = bytesOf(
    new BinaryWriter()
      .uint32(18)
      .fork()
      .uint32(18)
      .fork()
      .uint32(10)
      .bytes(Buffer.from([0xff, 0xfe, 0xc0]))
      .join()
      .join(),
  );
  return [...unknownTasks, ...overrides, badUtf8];
}

/** Byte-level mutations of a valid message: random bytes, every kind of truncation, 1-3 bit flips. */
function mutations(
  valid: Buffer[],
  rand: () => number,
  counts: { random: number; truncated: number; flipped: number },
): Map<string, Buffer[]> {
  const pick = (): Buffer => valid[Math.floor(rand() * valid.length)]!;
  const random = Array.from({ length: counts.random }, () => {
    const b = Buffer.alloc(Math.floor(rand() * 256));
    for (let i = 0; i < b.length; i++) b[i] = Math.floor(rand() * 256);
    return b;
  });
  const truncated = Array.from({ length: counts.truncated }, () => {
    const v = pick();
    return v.subarray(0, Math.floor(rand() * v.length));
  });
  const flipped = Array.from({ length: counts.flipped }, () => {
    const b = Buffer.from(pick());
    for (let n = 1 + Math.floor(rand() * 3); n > 0; n--) {
      const bit = Math.floor(rand() * b.length * 8);
      b[bit >> 3]! ^= 1 << (bit & 7);
    }
    return b;
  });
  return new Map([
    ['random bytes', random],
    ['truncations', truncated],
    ['bit flips', flipped],
  ]);
}

function codeName(code: number): string {
  return status[code] ?? String(code);
}

function tally(into: Map<string, number>, key: string): void {
  into.set(key, (into.get(key) ?? 0) + 1);
}

function unary(client: Client, bytes: Buffer): Promise<number> {
  return unaryWithDetails(client, bytes).then((r) => r.code);
}

function unaryWithDetails(client: Client, bytes: Buffer): Promise<{ code: number; details: string }> {
  return new Promise((resolve) =>
    client.makeUnaryRequest(analyzePath, identity, identity, bytes, { deadline: Date.now() + callDeadlineMs }, (e: ServiceError | null) =>
      resolve(e ? { code: e.code, details: e.details } : { code: status.OK, details: '' }),
    ),
  );
}

interface StreamOutcome {
  status: number;
  details: string;
  responses: StreamResponse[];
}

/** One stream: a valid config, the given frame messages, one valid closing frame; all written as raw bytes. */
function rawStream(client: Client, config: Buffer, frames: Buffer[]): Promise<StreamOutcome> {
  return new Promise((resolve) => {
    const call = client.makeBidiStreamRequest(streamPath, identity, identity, new Metadata(), { deadline: Date.now() + callDeadlineMs });
    const responses: StreamResponse[] = [];
    let code: number = status.OK;
    let details = '';
    call.on('data', (b: Buffer) => responses.push(StreamResponse.decode(b)));
    call.on('error', (e: ServiceError) => {
      code = e.code;
      details = e.details;
    });
    call.on('status', () => setImmediate(() => resolve({ status: code, details, responses })));
    call.write(config);
    for (const f of frames) call.write(f);
    call.end();
  });
}

const configBytes = (streamId: string, extra?: Uint8Array): Buffer => {
  const valid = bytesOf(
    StreamRequest.encode(
      StreamRequest.fromPartial({
        request: { $case: 'config', value: { streamId, dropPolicy: DropPolicy.DROP_POLICY_BLOCK, queueDepth: 4, analysis: { tasks } } },
      }),
    ),
  );
  return extra ? withSubmessage(valid, 1, extra) : valid;
};

let server: RunningServer;
let client: Client;
beforeAll(async () => {
  server = await startTestServer({ tasks: ['emotion'], maxQueuedRequests: 1000 });
  client = new Client(server.address, credentials.createInsecure());
});
afterAll(async () => {
  client?.close();
  await server?.close();
});

describe('fuzzed Analyze requests', () => {
  it('never answer INTERNAL or UNKNOWN', { timeout: 240_000 }, async () => {
    const rand = createRandom(0x5eed13);
    const valid = [analyzeBytes(pngImage), analyzeBytes(rawImage)];
    const inputs = mutations(valid, rand, { random: 400, truncated: 400, flipped: 1000 });
    inputs.set(
      'huge numbers',
      [...hugeFrames, ...oddRawImages].map((f) => withSubmessage(valid[1]!, 1, f)),
    );
    inputs.set(
      'unknown enums and odd strings',
      oddAnalysisOptions().map((o) => withSubmessage(valid[1]!, 2, o)),
    );
    const codes = new Map<string, number>();
    const bad: string[] = [];
    for (const [kind, list] of inputs) {
      for (let i = 0; i < list.length; i += 8) {
        const batch = list.slice(i, i + 8);
        const got = await Promise.all(batch.map((b) => unary(client, b)));
        got.forEach((code, j) => {
          tally(codes, codeName(code));
          if (code === status.INTERNAL || code === status.UNKNOWN || code === status.DEADLINE_EXCEEDED)
            bad.push(`${kind} #${i + j}: ${codeName(code)}`);
        });
      }
    }
    const counts = [...inputs].map(([kind, list]) => `${kind} ${list.length}`).join(', ');
    console.log(`fuzz Analyze: ${counts}; status codes ${JSON.stringify(Object.fromEntries(codes))}`);
    expect(bad).toEqual([]);
    // The 64-bit cases: past 2^53 is refused cleanly, 2^53-1 is accepted.
    const tooBig = await unaryWithDetails(client, withSubmessage(valid[1]!, 1, hugeFrames[0]!));
    expect(tooBig).toEqual({ code: status.INVALID_ARGUMENT, details: expect.stringMatching(/larger than 2\^53-1/) as unknown });
    expect(await unaryWithDetails(client, withSubmessage(valid[1]!, 1, hugeFrames[4]!))).toEqual({ code: status.OK, details: '' });
  });
});

describe('fuzzed stream frames', () => {
  it(
    'are per-frame errors: the stream lives on and answers its closing frame; never INTERNAL or UNKNOWN',
    { timeout: 240_000 },
    async () => {
      const rand = createRandom(0xf4a3e5);
      const valid = [frameBytes(pngImage), frameBytes(rawImage)];
      const inputs = mutations(valid, rand, { random: 400, truncated: 400, flipped: 1000 });
      const frameField = (f: Uint8Array): Buffer => withSubmessage(valid[1]!, 2, f);
      inputs.set('huge numbers', [...hugeFrames.map(frameField), ...oddRawImages.map(frameField)]);
      const frameCodes = new Map<string, number>();
      const deaths: string[] = [];
      let streamNo = 0;
      for (const [kind, list] of inputs) {
        // Chunks of 50 frames per stream, each stream closed by a valid frame that must be answered.
        for (let i = 0; i < list.length; i += 50) {
          const frames = list.slice(i, i + 50);
          const closing = frameBytes(rawImage, 424242);
          const out = await rawStream(client, configBytes(`fuzz-${streamNo++}`), [...frames, closing]);
          if (out.status !== status.OK) deaths.push(`${kind} frames ${i}..: ${codeName(out.status)} ${out.details}`);
          for (const r of out.responses) tally(frameCodes, r.result?.error ? r.result.error.code.replace('ERROR_CODE_', '') : 'OK');
          const last = out.responses.at(-1);
          if (last?.result?.sequence !== 424242) deaths.push(`${kind} frames ${i}..: closing frame not answered`);
          if (last?.counters?.framesReceived !== frames.length + 1)
            deaths.push(`${kind} frames ${i}..: ${last?.counters?.framesReceived} received`);
        }
      }
      const counts = [...inputs].map(([kind, list]) => `${kind} ${list.length}`).join(', ');
      console.log(
        `fuzz StreamAnalyze: ${counts} in ${streamNo} streams; stream deaths ${deaths.length}; ` +
          `per-frame codes ${JSON.stringify(Object.fromEntries(frameCodes))}`,
      );
      expect(deaths).toEqual([]);
      expect(frameCodes.get('INTERNAL') ?? 0).toBe(0);
      expect(frameCodes.get('UNKNOWN') ?? 0).toBe(0);
    },
  );

  it('a frame with sequence 2^64-1 is a per-frame INVALID_ARGUMENT and the stream goes on', async () => {
    const out = await rawStream(client, configBytes('huge-seq'), [
      withSubmessage(frameBytes(rawImage), 2, hugeFrames[0]!),
      frameBytes(rawImage, 5),
    ]);
    expect(out.status).toBe(status.OK);
    expect(out.responses).toHaveLength(2);
    expect(out.responses[0]!.result!.error!.message).toMatch(/larger than 2\^53-1/);
    expect(out.responses[0]!.result!.error!.code).toBe('ERROR_CODE_INVALID_ARGUMENT');
    expect(out.responses[1]!.result!.sequence).toBe(5);
    expect(out.responses[1]!.result!.error).toBeUndefined();
  });
});

describe('fuzzed stream configs', () => {
  it(
    'a bad config ends its stream with INVALID_ARGUMENT (or another client status), never INTERNAL or UNKNOWN',
    { timeout: 120_000 },
    async () => {
      const rand = createRandom(0xc0f1);
      const valid = [configBytes('cfg')];
      const inputs = mutations(valid, rand, { random: 50, truncated: 50, flipped: 100 });
      const oddIds = oddStrings.map((id) => bytesOf(new BinaryWriter().uint32(10).string(id)));
      const oddPolicies = [42, -7].map((p) => bytesOf(new BinaryWriter().uint32(24).int32(p)));
      const oddDepth = [bytesOf(new BinaryWriter().uint32(32).uint32(0xffffffff))];
      const oddOptions = oddAnalysisOptions().map((o) => bytesOf(new BinaryWriter().uint32(18).bytes(o)));
      inputs.set(
        'unknown enums, odd strings and numbers',
        [...oddIds, ...oddPolicies, ...oddDepth, ...oddOptions].map((c) => configBytes('cfg', c)),
      );
      const codes = new Map<string, number>();
      const bad: string[] = [];
      for (const [kind, list] of inputs) {
        for (let i = 0; i < list.length; i += 8) {
          const outs = await Promise.all(list.slice(i, i + 8).map((c) => rawStream(client, c, [frameBytes(rawImage, 1)])));
          outs.forEach((out, j) => {
            tally(codes, codeName(out.status));
            if (out.status === status.INTERNAL || out.status === status.UNKNOWN || out.status === status.DEADLINE_EXCEEDED)
              bad.push(`${kind} #${i + j}: ${codeName(out.status)} ${out.details}`);
          });
        }
      }
      const counts = [...inputs].map(([kind, list]) => `${kind} ${list.length}`).join(', ');
      console.log(`fuzz StreamConfig: ${counts}; stream status codes ${JSON.stringify(Object.fromEntries(codes))}`);
      expect(bad).toEqual([]);
    },
  );
});
