// Pure parts of the gateway: config checks (camera + field in every message), ffmpeg command lines and output parsing,
// frame splitting, stderr summaries, and the built-in filters (fps cap, motion gate, zones, minimum face size).
import { describe, expect, it } from 'vitest';
import { checkGatewayConfig, resolveGatewayConfig } from '../src/gateway/config.js';
import { cameraStreamInit } from '../src/gateway/camera.js';
import { FacesTopicMode, StreamConfig, TrackingMode } from '../src/gen/kt/v1/face_analysis.js';
import { streamConfigOf } from '../src/sdk/analysis-stream.js';
import { gatewayRegistry } from '../src/gateway/builtins.js';
import { resolvePlugins } from '../src/gateway/gateway.js';
import { FixedSizeFramer, JpegFramer, StderrSummary, ffmpegArgs, parseOutputSize } from '../src/gateway/ffmpeg.js';
import { fpsFilter } from '../src/gateway/filters/fps.js';
import { motionFilter } from '../src/gateway/filters/motion.js';
import { insidePolygon, minFaceSizeFilter, zonesFilter } from '../src/gateway/filters/zones.js';
import type { FaceResult, RawImageInput, StreamResult } from '../src/sdk/results.js';
import type { FilterInstance, SourceFrame } from '../src/sdk/plugin-kinds.js';
import { failure } from './helpers/failure.js';

const issueConfig = {
  server: '127.0.0.1:50051',
  cameras: [
    { id: 'door', source: { type: 'folder', path: './frames', fps: 2 }, tasks: ['age', 'gender', 'emotion'] },
    { id: 'lobby', source: { type: 'rtsp', url: 'rtsp://127.0.0.1:8554/lobby', fps: 5 }, tasks: ['age', 'emotion', 'identity'] },
  ],
  sinks: [{ type: 'mqtt', url: 'mqtt://127.0.0.1:1883' }],
};

describe('gateway config', () => {
  it('accepts the issue config and fills defaults', async () => {
    const c = await resolveGatewayConfig(issueConfig, 'gateway.yaml', '/etc/kt');
    expect(c.server).toEqual({ address: '127.0.0.1:50051', tls: false });
    expect(c.cameras.map((x) => [x.id, x.transport, x.enabled])).toEqual([
      ['door', 'jpeg', true],
      ['lobby', 'jpeg', true],
    ]);
    const plan = resolvePlugins(c, gatewayRegistry());
    expect(plan.cameras[0]!.source.options['path']).toBe('/etc/kt/frames');
    expect(plan.cameras[1]!.source.options['ffmpegPath']).toBe('ffmpeg');
    expect(plan.sinks[0]!.factory.pluginName).toBe('mqtt-forward');
  });

  it('names the camera and the field of every problem, with the nearest name for unknown keys', async () => {
    const bad = {
      server: '127.0.0.1:50051',
      trasnport: 'nv12',
      cameras: [
        { id: 'door', source: { type: 'folder' }, tasks: ['age'], filtres: [] },
        { id: 'door', source: { type: 'rtsp' }, tasks: ['agee'] },
      ],
    };
    const e = (await failure(async () => checkGatewayConfig(bad, 'gw.yaml'))) as Error;
    expect(e.message).toContain('unknown key "trasnport" (did you mean "transport"?)');
    expect(e.message).toContain(
      'camera "door" (cameras[0]) field filtres: unknown key "cameras[0].filtres" (did you mean "cameras[0].filters"?)',
    );
    expect(e.message).toContain('camera "door" (cameras[1]) field tasks');
    expect(e.message).toContain('camera "door" (cameras[1]) field id: the same id as cameras[0]');
  });

  it('checks plugin options per camera: unknown type and option, bad values', async () => {
    const c = await resolveGatewayConfig(
      {
        server: 'x:1',
        cameras: [
          { id: 'a', source: { type: 'rtsp', urll: 'rtsp://h/x' } },
          {
            id: 'b',
            source: { type: 'folder', path: '.' },
            filters: [{ type: 'motoin' }, { type: 'zones', zones: [{ mode: 'inside', points: [] }] }],
          },
        ],
      },
      'gw.yaml',
      '/',
    );
    const e = (await failure(async () => resolvePlugins(c, gatewayRegistry()))) as Error;
    expect(e.message).toContain('camera "a" (cameras[0]) field source.urll: plugin rtsp: unknown option "urll" (did you mean "url"?)');
    expect(e.message).toContain('camera "b" (cameras[1]) field filters[0].type');
    expect(e.message).toContain('did you mean "motion"?');
    expect(e.message).toContain('camera "b" (cameras[1]) field filters[1].zones');
  });

  it('server as an object: token from $KT_GATEWAY_TOKEN when not in the file', async () => {
    const env = process.env['KT_GATEWAY_TOKEN'];
    process.env['KT_GATEWAY_TOKEN'] = 'token-from-the-environment-0123';
    try {
      const c = await resolveGatewayConfig({ ...issueConfig, server: { address: 'edge:50051', tls: true } }, 'gw.yaml', '/');
      expect(c.server).toEqual({ address: 'edge:50051', tls: {}, token: 'token-from-the-environment-0123' });
    } finally {
      if (env === undefined) delete process.env['KT_GATEWAY_TOKEN'];
      else process.env['KT_GATEWAY_TOKEN'] = env;
    }
  });

  it('tracking per camera: checked with camera and field named, and carried into the StreamConfig', async () => {
    const tracked = {
      ...issueConfig,
      cameras: [
        { ...issueConfig.cameras[0]!, tracking: { maxAgeFrames: 30, minHits: 2, reuse: { detectEveryFrames: 3 }, facesTopic: 'off' } },
        { ...issueConfig.cameras[1]!, tracking: false },
        { id: 'hall', source: { type: 'folder', path: '.' } },
      ],
    };
    const c = await resolveGatewayConfig(tracked, 'gw.yaml', '/');
    const configs = c.cameras.map((camera) => streamConfigOf(cameraStreamInit(camera)));
    expect(configs.map((x) => x.streamId)).toEqual(['door', 'lobby', 'hall']);
    expect(configs[0]!.tracking).toEqual({
      mode: TrackingMode.TRACKING_MODE_ON,
      maxAgeFrames: 30,
      minHits: 2,
      reuse: { enabled: true, refreshAfterMs: 0, betterFaceRatio: 0, minObservations: 0, emotionEveryFrames: 0, detectEveryFrames: 3 },
      facesTopic: FacesTopicMode.FACES_TOPIC_MODE_OFF,
    });
    expect(configs[1]!.tracking?.mode).toBe(TrackingMode.TRACKING_MODE_OFF);
    // No tracking key: the StreamConfig is the one the gateway sent before the option existed (server default).
    expect(configs[2]!.tracking).toBeUndefined();
    expect(StreamConfig.encode(configs[2]!).finish()).toEqual(
      StreamConfig.encode(StreamConfig.fromPartial({ streamId: 'hall', analysis: configs[2]!.analysis! })).finish(),
    );

    const bad = {
      ...issueConfig,
      cameras: [
        { ...issueConfig.cameras[0]!, tracking: { maxAgeFrames: 0, reuse: { detectEveryFrame: 3 } } },
        { ...issueConfig.cameras[1]!, tracking: { mode: 'yes', reuse: 'always' } },
      ],
    };
    const e = (await failure(async () => resolveGatewayConfig(bad, 'gw.yaml', '/'))) as Error;
    expect(e.message).toContain(
      'camera "door" (cameras[0]) field tracking.maxAgeFrames: "cameras[0].tracking.maxAgeFrames" must be an integer',
    );
    expect(e.message).toContain('camera "door" (cameras[0]) field tracking.reuse.detectEveryFrame: unknown key');
    expect(e.message).toContain('did you mean "cameras[0].tracking.reuse.detectEveryFrames"?');
    expect(e.message).toContain(
      'camera "lobby" (cameras[1]) field tracking.mode: "cameras[1].tracking.mode" must be one of "on", "off", got "yes"',
    );
    expect(e.message).toContain('camera "lobby" (cameras[1]) field tracking.reuse');
  });
});

describe('ffmpeg plumbing', () => {
  it('builds the command line: fps and even size, raw or JPEG to stdout', () => {
    const args = ffmpegArgs(
      { url: 'rtsp://h/x', inputArgs: ['-rtsp_transport', 'tcp'] },
      { fps: 5, widthPx: 641, heightPx: 0, transport: 'nv12', jpegQuality: 5 },
    );
    expect(args.join(' ')).toContain('-rtsp_transport tcp -i rtsp://h/x -an -vf fps=5,scale=640:-2 -f rawvideo -pix_fmt nv12 pipe:1');
    const jpeg = ffmpegArgs({ url: '/dev/video0', format: 'v4l2' }, { fps: 2, widthPx: 0, heightPx: 0, transport: 'jpeg', jpegQuality: 7 });
    expect(jpeg.join(' ')).toContain('-f v4l2 -i /dev/video0');
    expect(jpeg.join(' ')).toContain('-f image2pipe -c:v mjpeg -pix_fmt yuvj420p -q:v 7 pipe:1');
  });

  it('reads the output size from the stream banner', () => {
    const banner = `Input #0, rtsp, from 'rtsp://h/x':\n  Stream #0:0: Video: h264 (High), yuv420p, 1920x1080, 25 fps\nOutput #0, rawvideo, to 'pipe:1':\n  Stream #0:0: Video: rawvideo (NV12 / 0x3231564E), nv12(tv, progressive), 640x426 [SAR 1:1 DAR 320:213], q=2-31, 5 fps\n`;
    expect(parseOutputSize(banner)).toEqual({ widthPx: 640, heightPx: 426 });
    expect(parseOutputSize(banner.split('Output')[0]!)).toBeUndefined();
  });

  it('splits raw video into fixed-size frames across chunk boundaries', () => {
    const framer = new FixedSizeFramer(4);
    expect(framer.push(Buffer.from([1, 2, 3]))).toEqual([]);
    const out = framer.push(Buffer.from([4, 5, 6, 7, 8, 9]));
    expect(out.map((b) => [...b])).toEqual([
      [1, 2, 3, 4],
      [5, 6, 7, 8],
    ]);
    expect(framer.push(Buffer.from([10, 11, 12])).map((b) => [...b])).toEqual([[9, 10, 11, 12]]);
  });

  it('splits MJPEG at end-of-image markers, also when a marker straddles two chunks', () => {
    const a = [0xff, 0xd8, 1, 0xff, 0x00, 2, 0xff, 0xd9];
    const b = [0xff, 0xd8, 3, 4, 0xff, 0xd9];
    const framer = new JpegFramer();
    const first = framer.push(Buffer.from([...a, ...b.slice(0, 5)]));
    expect(first.map((x) => [...x])).toEqual([a]);
    expect(framer.push(Buffer.from(b.slice(5))).map((x) => [...x])).toEqual([b]);
  });

  it('summarises stderr: banner lines skipped, repeats counted, addresses dropped', () => {
    const s = new StderrSummary();
    s.push('Input #0, rtsp, from x:\n  Metadata:\n    title           : No Name\n');
    s.push('[h264 @ 0x55d1] error while decoding MB 3 4\n[h264 @ 0x77aa] error while decoding MB 3 4\nrtsp://h/x: Connection ');
    s.push('refused\n');
    expect(s.text()).toBe('[h264] error while decoding MB 3 4 (x2); rtsp://h/x: Connection refused');
  });
});

// ---------------------------------------------------------------- filters

function grey(width: number, height: number, value: (x: number, y: number) => number): RawImageInput {
  const data = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) data[y * width + x] = value(x, y);
  return { data, widthPx: width, heightPx: height, pixelFormat: 'GRAY8' };
}

function frame(image: RawImageInput, sequence: number, timeMs = sequence * 200): SourceFrame {
  return { image, sequence, captureTimeUnixMs: timeMs, widthPx: image.widthPx, heightPx: image.heightPx };
}

async function filterOf(p: Promise<{ instance: FilterInstance }>): Promise<FilterInstance> {
  return (await p).instance;
}

const ctx = { cameraId: 'cam' };

describe('filters', () => {
  it('motion gate: static frames are skipped and counted, a moving square passes', async () => {
    const f = await filterOf(motionFilter({ keepAliveMs: 0 }));
    // A textured still scene with a little sensor noise, then a bright square moving across it.
    const scene = (square: number | undefined, noise: number) =>
      grey(320, 240, (x, y) => {
        if (square !== undefined && x >= square && x < square + 60 && y >= 90 && y < 150) return 250;
        return ((x * 7 + y * 3) % 100) + ((x * 13 + y * 17 + noise) % 5);
      });
    const verdicts = [];
    for (let i = 0; i < 5; i++) verdicts.push(await f.onFrame!(frame(scene(undefined, i), i + 1), ctx));
    expect(verdicts[0]).toBeUndefined(); // the first frame always passes
    expect(verdicts.slice(1)).toEqual([{ drop: 'motion' }, { drop: 'motion' }, { drop: 'motion' }, { drop: 'motion' }]);
    expect(await f.onFrame!(frame(scene(40, 0), 6), ctx)).toBeUndefined();
    expect(await f.onFrame!(frame(scene(140, 0), 7), ctx)).toBeUndefined();
    expect(await f.onFrame!(frame(scene(140, 1), 8), ctx)).toEqual({ drop: 'motion' });
    const stats = f.stats!();
    expect(stats).toMatchObject({ framesSeen: 8, framesPassed: 3, framesSkipped: 5, bytesSkipped: 5 * 320 * 240 });
  });

  it('motion gate: keepAliveMs passes a static frame now and then', async () => {
    const f = await filterOf(motionFilter({ keepAliveMs: 1000 }));
    const still = grey(64, 48, (x) => x * 4);
    const passed = [];
    for (let i = 0; i < 12; i++) if ((await f.onFrame!(frame(still, i + 1, i * 250), ctx)) === undefined) passed.push(i * 250);
    expect(passed).toEqual([0, 1000, 2000]);
  });

  it('fps cap drops frames that come too soon', async () => {
    const f = await filterOf(fpsFilter({ maxFps: 2 }));
    const img = grey(8, 8, () => 0);
    const out = [];
    for (let t = 0; t <= 2000; t += 200) out.push((await f.onFrame!(frame(img, t, t), ctx)) === undefined ? t : null);
    expect(out.filter((t) => t !== null)).toEqual([0, 600, 1200, 1800]);
  });

  const face = (x: number, y: number, size: number): FaceResult => ({
    box: { x, y, width: size, height: size },
    score: 0.9,
    keypoints: [],
  });
  const result = (faces: FaceResult[]): StreamResult =>
    ({ sequence: 1, captureTimeUnixMs: 0, frameWidthPx: 1000, frameHeightPx: 500, faces }) as unknown as StreamResult;

  it('zones: faces outside the include polygon or inside an exclude polygon are dropped', async () => {
    const f = await filterOf(
      zonesFilter({
        zones: [
          {
            mode: 'include',
            points: [
              [0, 0],
              [0.5, 0],
              [0.5, 1],
              [0, 1],
            ],
          },
          {
            mode: 'exclude',
            points: [
              [0, 0],
              [0.2, 0],
              [0.2, 0.2],
              [0, 0.2],
            ],
          },
        ],
      }),
    );
    const inside = face(300, 200, 50); // centre (325, 225): left half, not in the corner
    const right = face(700, 200, 50); // right half: outside the include zone
    const corner = face(20, 20, 40); // centre (40, 40) = (0.04, 0.08): in the excluded corner
    expect(await f.onResult!(result([inside, right, corner]), ctx)).toEqual({ faces: [inside], reason: 'zone' });
    expect(await f.onResult!(result([inside]), ctx)).toBeUndefined();
    expect(f.stats!()).toEqual({ facesDropped: 2 });
    expect(
      insidePolygon(0.5, 0.5, [
        [0, 0],
        [1, 0],
        [0, 1],
      ]),
    ).toBe(false);
    expect(
      insidePolygon(0.2, 0.2, [
        [0, 0],
        [1, 0],
        [0, 1],
      ]),
    ).toBe(true);
  });

  it('min-face-size drops small faces', async () => {
    const f = await filterOf(minFaceSizeFilter({ minSizePx: 40 }));
    const big = face(0, 0, 80);
    expect(await f.onResult!(result([big, face(100, 100, 20)]), ctx)).toEqual({ faces: [big], reason: 'min-size' });
  });
});
