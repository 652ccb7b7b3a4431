// Contract test: the kt.v1 gRPC contract serves the generated ts-proto client and a plain @grpc/proto-loader client alike.
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, ImageFormat, PixelFormat, Task } from '../src/gen/kt/v1/common.js';
import type { Image, ItemError } from '../src/gen/kt/v1/common.js';
import {
  AnalysisOptions,
  AnalyzeRequest,
  AnalyzeResponse,
  DropPolicy,
  FaceAnalysisClient,
  FaceAnalysisService,
  Face,
  FrameResult,
  type StreamRequest,
  StreamResponse,
} from '../src/gen/kt/v1/face_analysis.js';
import type { FaceAnalysisServer, Frame, StreamConfig } from '../src/gen/kt/v1/face_analysis.js';
import {
  type HealthCheckResponse,
  HealthCheckResponse_ServingStatus,
  HealthClient,
  HealthService,
} from '../src/gen/grpc/health/v1/health.js';
import type { HealthCheckRequest, HealthServer } from '../src/gen/grpc/health/v1/health.js';

const protoRoot = fileURLToPath(new URL('../proto', import.meta.url));
const protoFiles = ['kt/v1/face_analysis.proto', 'kt/v1/models.proto', 'kt/v1/gallery.proto', 'grpc/health/v1/health.proto'];

/** The proto-loader options a plain Node gRPC user would pick. */
const loaderOptions: protoLoader.Options = {
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [protoRoot],
};

/** A frame the echo service refuses, as the real server refuses a corrupt one. */
class BadFrameError extends Error {
  override readonly name = 'BadFrameError';
}

const bytesPerPixel: Record<PixelFormat, number> = {
  [PixelFormat.PIXEL_FORMAT_UNSPECIFIED]: 0,
  [PixelFormat.PIXEL_FORMAT_RGB8]: 3,
  [PixelFormat.PIXEL_FORMAT_BGR8]: 3,
  [PixelFormat.PIXEL_FORMAT_GRAY8]: 1,
  [PixelFormat.PIXEL_FORMAT_RGBA8]: 4,
  [PixelFormat.PIXEL_FORMAT_NV12]: 1,
  [PixelFormat.UNRECOGNIZED]: 0,
};

/** Frame size as the echo service "decodes" it: raw images are checked, encoded ones are sized from their byte count. */
function echoFrameSize(image: Image | undefined): { widthPx: number; heightPx: number } {
  const source = image?.source;
  if (source === undefined) throw new BadFrameError('frame has no image');
  if (source.$case === 'encoded') return { widthPx: source.value.data.length * 10, heightPx: source.value.data.length * 5 };
  const raw = source.value;
  const bpp = bytesPerPixel[raw.pixelFormat];
  if (bpp === 0) throw new BadFrameError(`unsupported pixel format ${raw.pixelFormat}`);
  const strideBytes = raw.strideBytes || raw.widthPx * bpp;
  const needBytes = strideBytes * raw.heightPx;
  if (raw.data.length < needBytes) throw new BadFrameError(`raw image has ${raw.data.length} bytes, needs ${needBytes}`);
  return { widthPx: raw.widthPx, heightPx: raw.heightPx };
}

/** Builds a deterministic FrameResult from the request: one face, one result per requested task. */
function echoAnalyze(frame: Frame | undefined, analysis: AnalysisOptions | undefined): FrameResult {
  const { widthPx, heightPx } = echoFrameSize(frame?.image);
  const sequence = frame?.sequence ?? 0;
  const tasks = analysis?.tasks ?? [];
  const face: Face = Face.fromPartial({
    box: { xPx: sequence, yPx: 2 * sequence, widthPx: widthPx / 2, heightPx: heightPx / 2 },
    score: 0.75,
    keypoints: [
      { xPx: 1, yPx: 2 },
      { xPx: 3, yPx: 4 },
    ],
  });
  for (const task of tasks) {
    switch (task) {
      case Task.TASK_AGE:
        face.age = { years: 30.5 };
        break;
      case Task.TASK_GENDER:
        face.gender = { label: 'female', confidence: 0.75 };
        break;
      case Task.TASK_EMOTION:
        face.emotion = {
          label: 'happy',
          confidence: 0.5,
          scores: [
            { label: 'happy', score: 0.5 },
            { label: 'neutral', score: 0.25 },
          ],
        };
        break;
      case Task.TASK_LANDMARKS:
        face.landmarks = { scheme: 'ibug68', points: [{ xPx: 5, yPx: 6, zPx: 0 }] };
        break;
      case Task.TASK_MESH:
        face.mesh = { scheme: 'mediapipe468', points: [{ xPx: 7, yPx: 8, zPx: -1.5 }] };
        break;
      case Task.TASK_EMBEDDING:
        face.embedding = { values: [0.5, -0.5, 0.25], model: { name: 'faceres', version: 1 } };
        break;
      case Task.TASK_IDENTITY:
        face.identity = { known: false, personId: '', name: '', similarity: 0.25 };
        break;
      default:
        throw new BadFrameError(`unknown task ${task}`);
    }
  }
  return FrameResult.fromPartial({
    sequence,
    captureTimeUnixMs: frame?.captureTimeUnixMs ?? 0,
    frameWidthPx: widthPx,
    frameHeightPx: heightPx,
    faces: [face],
    timings: {
      decodeMs: 1.5,
      detectMs: 2.5,
      tasks: tasks.map((task) => ({ task, durationMs: 0.5 })),
      totalMs: 4 + 0.5 * tasks.length,
    },
    models: [{ name: 'blazeface', version: 1 }, ...(analysis?.modelOverrides ?? []).flatMap((o) => (o.model ? [o.model] : []))],
  });
}

function itemErrorOf(error: unknown): ItemError {
  return { code: ErrorCode.ERROR_CODE_INVALID_ARGUMENT, message: error instanceof Error ? error.message : String(error) };
}

const faceAnalysisEcho: FaceAnalysisServer = {
  analyze(call, callback) {
    try {
      callback(null, { result: echoAnalyze(call.request.frame, call.request.analysis) });
    } catch (error) {
      callback({ code: grpc.status.INVALID_ARGUMENT, details: itemErrorOf(error).message });
    }
  },
  streamAnalyze(call) {
    let config: StreamConfig | undefined;
    const counters = { framesReceived: 0, framesAnalyzed: 0, framesDropped: 0, framesFailed: 0 };
    call.on('data', (request: StreamRequest) => {
      const message = request.request;
      if (config === undefined) {
        if (message?.$case !== 'config') {
          call.emit('error', { code: grpc.status.INVALID_ARGUMENT, details: 'the first StreamRequest must be a StreamConfig' });
          return;
        }
        config = message.value;
        return;
      }
      if (message?.$case !== 'frame') {
        call.emit('error', { code: grpc.status.INVALID_ARGUMENT, details: 'StreamConfig may only be sent first' });
        return;
      }
      counters.framesReceived += 1;
      let result: FrameResult;
      try {
        result = echoAnalyze(message.value, config.analysis);
        counters.framesAnalyzed += 1;
      } catch (error) {
        counters.framesFailed += 1;
        result = FrameResult.fromPartial({
          sequence: message.value.sequence,
          captureTimeUnixMs: message.value.captureTimeUnixMs,
          error: itemErrorOf(error),
        });
      }
      call.write({ streamId: config.streamId, result, counters: { ...counters }, trackEvents: [] });
    });
    call.on('end', () => call.end());
  },
};

const healthEcho: HealthServer = {
  check(call, callback) {
    const known = ['', 'kt.v1.FaceAnalysis'].includes(call.request.service);
    if (!known) callback({ code: grpc.status.NOT_FOUND, details: `unknown service ${call.request.service}` });
    else callback(null, { status: HealthCheckResponse_ServingStatus.SERVING });
  },
  watch(call) {
    call.write({ status: HealthCheckResponse_ServingStatus.SERVING });
    call.end();
  },
};

/** The client shape grpc.loadPackageDefinition builds for kt.v1.FaceAnalysis; proto-loader clients are untyped. */
interface LoaderFaceAnalysisClient extends grpc.Client {
  analyze(request: object, callback: (error: grpc.ServiceError | null, response?: LoaderAnalyzeResponse) => void): grpc.ClientUnaryCall;
  streamAnalyze(): grpc.ClientDuplexStream<object, LoaderStreamResponse>;
}
interface LoaderHealthClient extends grpc.Client {
  check(request: object, callback: (error: grpc.ServiceError | null, response?: { status: string }) => void): grpc.ClientUnaryCall;
}
/** The parts of a proto-loader response the test reads directly (the rest is compared through fromJSON). */
interface LoaderFace {
  box: { xPx: number; yPx: number; widthPx: number; heightPx: number } | null;
  mesh: object | null;
  age: { years: number } | null;
}
interface LoaderFrameResult {
  sequence: number;
  captureTimeUnixMs: number;
  faces: LoaderFace[];
  timings: { tasks: { task: string; durationMs: number }[] } | null;
  error: { code: string; message: string } | null;
}
interface LoaderAnalyzeResponse {
  result: LoaderFrameResult | null;
}
interface LoaderStreamResponse {
  streamId: string;
  result: LoaderFrameResult | null;
  counters: { framesReceived: number; framesAnalyzed: number; framesDropped: number; framesFailed: number } | null;
}
type ClientConstructor<T> = new (address: string, credentials: grpc.ChannelCredentials) => T;

function unary<Response>(invoke: (callback: (error: grpc.ServiceError | null, response?: Response) => void) => unknown): Promise<Response> {
  return new Promise((resolve, reject) => {
    invoke((error, response) => {
      if (error) reject(error);
      else if (response === undefined) reject(new Error('empty response'));
      else resolve(response);
    });
  });
}

/** Writes every message, half-closes, and collects the responses until the server ends the call. */
function bidi<Request, Response>(call: grpc.ClientDuplexStream<Request, Response>, messages: Request[]): Promise<Response[]> {
  return new Promise((resolve, reject) => {
    const responses: Response[] = [];
    call.on('data', (response: Response) => responses.push(response));
    call.on('error', reject);
    call.on('end', () => resolve(responses));
    for (const message of messages) call.write(message);
    call.end();
  });
}

const jpegLikeBytes = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46]);
const rgb4x2 = Buffer.alloc(4 * 2 * 3, 7);
const analysisTasks = [Task.TASK_AGE, Task.TASK_GENDER, Task.TASK_EMOTION, Task.TASK_LANDMARKS, Task.TASK_EMBEDDING, Task.TASK_IDENTITY];
const captureTimeUnixMs = 1_700_000_000_123;

describe('kt.v1 gRPC contract', () => {
  let server: grpc.Server;
  let address: string;
  let generatedClient: FaceAnalysisClient;
  let loaderClient: LoaderFaceAnalysisClient;
  let loaderHealth: LoaderHealthClient;
  let generatedHealth: HealthClient;

  beforeAll(async () => {
    server = new grpc.Server();
    server.addService(FaceAnalysisService, faceAnalysisEcho);
    server.addService(HealthService, healthEcho);
    const port = await new Promise<number>((resolve, reject) => {
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, boundPort) =>
        error ? reject(error) : resolve(boundPort),
      );
    });
    address = `127.0.0.1:${port}`;
    const insecure = grpc.credentials.createInsecure();
    generatedClient = new FaceAnalysisClient(address, insecure);
    generatedHealth = new HealthClient(address, insecure);

    const packageDefinition = protoLoader.loadSync(protoFiles, loaderOptions);
    const loaded = grpc.loadPackageDefinition(packageDefinition) as unknown as {
      kt: { v1: { FaceAnalysis: ClientConstructor<LoaderFaceAnalysisClient> } };
      grpc: { health: { v1: { Health: ClientConstructor<LoaderHealthClient> } } };
    };
    loaderClient = new loaded.kt.v1.FaceAnalysis(address, insecure);
    loaderHealth = new loaded.grpc.health.v1.Health(address, insecure);
  });

  afterAll(() => {
    for (const client of [generatedClient, loaderClient, loaderHealth, generatedHealth]) client?.close();
    server?.forceShutdown();
  });

  it('Analyze gives equal results to the ts-proto client and the proto-loader client', async () => {
    const fromGenerated = await unary<AnalyzeResponse>((callback) =>
      generatedClient.analyze(
        AnalyzeRequest.fromPartial({
          frame: {
            image: { source: { $case: 'encoded', value: { data: jpegLikeBytes, format: ImageFormat.IMAGE_FORMAT_JPEG } } },
            sequence: 7,
            captureTimeUnixMs,
          },
          analysis: {
            tasks: analysisTasks,
            modelOverrides: [{ task: Task.TASK_AGE, model: { name: 'kt-age', version: 2 } }],
            minFaceSizePx: 24,
            maxFaces: 5,
            minScore: 0.5,
          },
        }),
        callback,
      ),
    );
    const fromLoader = await unary<LoaderAnalyzeResponse>((callback) =>
      loaderClient.analyze(
        {
          frame: {
            image: { encoded: { data: jpegLikeBytes, format: 'IMAGE_FORMAT_JPEG' } },
            sequence: 7,
            captureTimeUnixMs,
          },
          analysis: {
            tasks: analysisTasks.map(String),
            modelOverrides: [{ task: 'TASK_AGE', model: { name: 'kt-age', version: 2 } }],
            minFaceSizePx: 24,
            maxFaces: 5,
            minScore: 0.5,
          },
        },
        callback,
      ),
    );

    // Same content, read through the generated types.
    expect(AnalyzeResponse.fromJSON(fromLoader)).toEqual(fromGenerated);
    // And what each kind of user sees directly.
    const generatedResult = fromGenerated.result;
    expect(generatedResult?.sequence).toBe(7);
    expect(generatedResult?.captureTimeUnixMs).toBe(captureTimeUnixMs);
    expect(generatedResult?.models).toEqual([
      { name: 'blazeface', version: 1 },
      { name: 'kt-age', version: 2 },
    ]);
    expect(generatedResult?.faces[0]?.age).toEqual({ years: 30.5 });
    expect(generatedResult?.faces[0]?.mesh).toBeUndefined();
    expect(generatedResult?.timings?.tasks[0]).toEqual({ task: Task.TASK_AGE, durationMs: 0.5 });

    const loaderResult = fromLoader.result;
    expect(loaderResult?.sequence).toBe(7);
    expect(loaderResult?.captureTimeUnixMs).toBe(captureTimeUnixMs);
    expect(loaderResult?.faces[0]?.box).toEqual({ xPx: 7, yPx: 14, widthPx: 40, heightPx: 20 });
    expect(loaderResult?.faces[0]?.age).toEqual({ years: 30.5 });
    expect(loaderResult?.faces[0]?.mesh).toBeNull();
    // stringEnums=true: both clients see the same enum strings.
    expect(loaderResult?.timings?.tasks[0]).toEqual({ task: 'TASK_AGE', durationMs: 0.5 });
    expect(loaderResult?.error).toBeNull();
  });

  it('Analyze fails a frame without an image with INVALID_ARGUMENT for both clients', async () => {
    const generatedError = await unary((callback) =>
      generatedClient.analyze(AnalyzeRequest.fromPartial({ frame: { sequence: 1 } }), callback),
    ).catch((error: unknown) => error);
    const loaderError = await unary((callback) => loaderClient.analyze({ frame: { sequence: 1 } }, callback)).catch(
      (error: unknown) => error,
    );
    for (const error of [generatedError, loaderError]) {
      expect(error).toMatchObject({ code: grpc.status.INVALID_ARGUMENT, details: 'frame has no image' });
    }
  });

  it('StreamAnalyze answers 3 frames with 3 responses in order, a bad frame without ending the stream', async () => {
    const config = { streamId: 'door-cam', dropPolicy: DropPolicy.DROP_POLICY_LATEST_WINS, queueDepth: 2 } as const;
    const frames: Frame[] = [
      {
        image: { source: { $case: 'encoded', value: { data: jpegLikeBytes, format: ImageFormat.IMAGE_FORMAT_UNSPECIFIED } } },
        sequence: 1,
        captureTimeUnixMs,
      },
      {
        image: {
          source: {
            $case: 'raw',
            value: { data: rgb4x2, widthPx: 4, heightPx: 2, strideBytes: 0, pixelFormat: PixelFormat.PIXEL_FORMAT_RGB8 },
          },
        },
        sequence: 2,
        captureTimeUnixMs: captureTimeUnixMs + 40,
      },
      {
        image: {
          source: {
            $case: 'raw',
            value: { data: rgb4x2.subarray(0, 10), widthPx: 4, heightPx: 2, strideBytes: 16, pixelFormat: PixelFormat.PIXEL_FORMAT_BGR8 },
          },
        },
        sequence: 3,
        captureTimeUnixMs: captureTimeUnixMs + 80,
      },
    ];
    const generatedMessages: StreamRequest[] = [
      {
        request: {
          $case: 'config',
          value: { ...config, analysis: AnalysisOptions.fromPartial({ tasks: [Task.TASK_AGE, Task.TASK_MESH] }) },
        },
      },
      ...frames.map((frame): StreamRequest => ({ request: { $case: 'frame', value: frame } })),
    ];
    const loaderMessages = [
      { config: { ...config, analysis: { tasks: ['TASK_AGE', 'TASK_MESH'] } } },
      ...frames.map((frame) => ({ frame: { ...frame, image: imageForLoader(frame.image) } })),
    ];

    const fromGenerated = await bidi(generatedClient.streamAnalyze(), generatedMessages);
    const fromLoader = await bidi(loaderClient.streamAnalyze(), loaderMessages);

    expect(fromGenerated.map((response) => response.result?.sequence)).toEqual([1, 2, 3]);
    expect(fromLoader.map((response) => response.result?.sequence)).toEqual([1, 2, 3]);
    expect(fromLoader.map((response) => StreamResponse.fromJSON(response))).toEqual(fromGenerated);

    expect(fromGenerated.every((response) => response.streamId === 'door-cam')).toBe(true);
    expect(fromGenerated[1]?.result?.frameWidthPx).toBe(4);
    expect(fromGenerated[1]?.result?.faces[0]?.mesh?.points[0]).toEqual({ xPx: 7, yPx: 8, zPx: -1.5 });
    expect(fromGenerated[2]?.result?.error).toEqual({
      code: ErrorCode.ERROR_CODE_INVALID_ARGUMENT,
      message: 'raw image has 10 bytes, needs 32',
    });
    expect(fromGenerated[2]?.result?.faces).toEqual([]);
    expect(fromGenerated[2]?.counters).toEqual({ framesReceived: 3, framesAnalyzed: 2, framesDropped: 0, framesFailed: 1 });
    expect(fromLoader[2]?.result?.error).toEqual({ code: 'ERROR_CODE_INVALID_ARGUMENT', message: 'raw image has 10 bytes, needs 32' });
    expect(fromLoader[0]?.result?.error).toBeNull();
  });

  it('StreamAnalyze ends with INVALID_ARGUMENT when the first message is not a StreamConfig', async () => {
    const outcome = await bidi(generatedClient.streamAnalyze(), [
      { request: { $case: 'frame', value: { sequence: 1, captureTimeUnixMs: 0 } } },
    ]).catch((error: unknown) => error);
    expect(outcome).toMatchObject({ code: grpc.status.INVALID_ARGUMENT });
  });

  it('grpc.health.v1 Check works for both clients', async () => {
    const fromGenerated = await unary<HealthCheckResponse>((callback) =>
      generatedHealth.check({ service: 'kt.v1.FaceAnalysis' } satisfies HealthCheckRequest, callback),
    );
    const fromLoader = await unary<{ status: string }>((callback) => loaderHealth.check({ service: 'kt.v1.FaceAnalysis' }, callback));
    expect(fromGenerated.status).toBe(HealthCheckResponse_ServingStatus.SERVING);
    expect(fromLoader.status).toBe('SERVING');
    const unknown = await unary((callback) => loaderHealth.check({ service: 'nope' }, callback)).catch((error: unknown) => error);
    expect(unknown).toMatchObject({ code: grpc.status.NOT_FOUND });
  });
});

/** The same image in proto-loader's oneof shape: the set member by name, enums as strings. */
function imageForLoader(image: Image | undefined): object {
  const source = image?.source;
  if (source === undefined) return {};
  if (source.$case === 'encoded') return { encoded: { ...source.value, format: String(source.value.format) } };
  return { raw: { ...source.value, pixelFormat: String(source.value.pixelFormat) } };
}
