// One contract, run against every built-in plugin (the SDK's sinks and the gateway's sources and filters, as registered by
// gatewayRegistry()): the options schema rejects unknown keys and documents each option; start and stop are idempotent;
// stop flushes (a sink delivers what it was handed; a source sends nothing more); health reports a state; and nothing a
// plugin does with a broken setup (unreachable URL, missing file, garbage frames) escapes its host.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, mkdirSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { gatewayRegistry } from '../src/gateway/builtins.js';
import {
  PluginHost,
  isPluginOptionError,
  pluginKinds,
  silentLogger,
  type AnalysisResult,
  type AnyPluginFactory,
  type PluginKind,
  type PluginState,
  type SourceContext,
  type SourceFrame,
} from '../src/sdk/index.js';
import { demoPhotoPath } from './helpers/faces.js';
import { recordTopic, type TopicRecorder } from './helpers/mqtt.js';

const brokerUrl = 'mqtt://127.0.0.1:1883';
const states: readonly PluginState[] = ['starting', 'online', 'offline', 'error', 'stopped'];
const hostSettings = { log: silentLogger, callTimeoutMs: 5000, restartBackoff: { initialMs: 50, maxMs: 500, multiplier: 2, jitter: 0.2 } };

/** What the cases need: a temp folder, local receivers and media. */
interface Env {
  dir: string;
  /** Folder with two demo JPEGs. */
  frames: string;
  jpeg: Uint8Array;
  /** A 2 s MPEG-TS test video (made with ffmpeg). */
  video: string;
  http: string;
  webhookBodies: { stream: string; sequence: number }[];
  mqtt: TopicRecorder;
}

/**
 * How to run one plugin: `options` for a working setup, `broken` for one that cannot work. Sinks say how many results of
 * a camera reached their destination; sources whether the working setup yields frames here.
 */
interface ContractCase {
  options(env: Env): Record<string, unknown>;
  broken?(env: Env): Record<string, unknown>;
  arrived?(env: Env, camera: string): number;
  producesFrames?: boolean;
}

const linesOf = (path: string): Record<string, unknown>[] =>
  existsSync(path)
    ? readFileSync(path, 'utf8')
        .trim()
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>)
    : [];

const cases: Record<string, ContractCase> = {
  // ---- sinks (src/sdk)
  'sink:webhook': {
    options: (env) => ({ url: `${env.http}/hook`, retryBackoffMs: 20, maxRetryBackoffMs: 100 }),
    broken: () => ({ url: 'http://127.0.0.1:1/hook', retryBackoffMs: 10, maxRetryBackoffMs: 20, maxRetries: 1, flushTimeoutMs: 200 }),
    arrived: (env, camera) => env.webhookBodies.filter((b) => b.stream === camera).length,
  },
  'sink:mqtt-forward': {
    options: () => ({ url: brokerUrl, topicPrefix: 'kt-contract', nodeId: 'contract', connectTimeoutMs: 5000 }),
    broken: () => ({ url: 'mqtt://127.0.0.1:1', topicPrefix: 'kt-contract', nodeId: 'contract' }),
    arrived: (env, camera) => env.mqtt.messages.filter((m) => m.topic === `kt-contract/contract/${camera}/faces`).length,
  },
  'sink:jsonl': {
    options: (env) => ({ path: join(env.dir, 'contract.jsonl') }),
    broken: (env) => ({ path: join(env.dir, 'not-a-folder', 'x.jsonl') }), // not-a-folder is a file
    arrived: (env, camera) => linesOf(join(env.dir, 'contract.jsonl')).filter((l) => l['stream'] === camera).length,
  },
  'sink:snapshot': {
    options: (env) => ({ path: join(env.dir, 'snapshots'), minIntervalMs: 0 }),
    broken: (env) => ({ path: join(env.dir, 'not-a-folder', 'snapshots'), minIntervalMs: 0 }),
    arrived: (env, camera) => {
      const dir = join(env.dir, 'snapshots', camera);
      return existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.jpg')).length : 0;
    },
  },
  // ---- sources (src/gateway/sources)
  'source:folder': {
    options: (env) => ({ path: env.frames, fps: 10, loop: true }),
    broken: (env) => ({ path: join(env.dir, 'no-such-folder'), fps: 10 }),
    producesFrames: true,
  },
  'source:snapshot': {
    options: (env) => ({ url: `${env.http}/snapshot.jpg`, fps: 10 }),
    broken: () => ({ url: 'http://127.0.0.1:1/snapshot.jpg', fps: 10, timeoutMs: 500 }),
    producesFrames: true,
  },
  'source:file': {
    options: (env) => ({ path: env.video, loop: true, fps: 5 }),
    broken: (env) => ({ path: join(env.dir, 'no-such-video.ts'), fps: 5 }),
    producesFrames: true,
  },
  'source:http': {
    options: (env) => ({ url: `${env.http}/video.ts`, fps: 5 }),
    broken: () => ({ url: 'http://127.0.0.1:1/video.ts', fps: 5 }),
    producesFrames: true,
  },
  'source:rtsp': {
    // No RTSP server in this suite (the gateway's own tests run one): only isolation is checked.
    options: () => ({ url: 'rtsp://127.0.0.1:1/none', fps: 5 }),
    broken: () => ({ url: 'rtsp://127.0.0.1:1/none', fps: 5 }),
  },
  'source:v4l2': {
    options: (env) => ({ device: join(env.dir, 'video-none'), fps: 5 }),
    broken: (env) => ({ device: join(env.dir, 'video-none'), fps: 5 }),
  },
  // ---- filters (src/gateway/filters)
  'filter:fps': { options: () => ({ maxFps: 5 }) },
  'filter:motion': { options: () => ({}) },
  'filter:zones': {
    options: () => ({
      zones: [
        {
          mode: 'include',
          points: [
            [0, 0],
            [320, 0],
            [320, 480],
            [0, 480],
          ],
        },
      ],
    }),
  },
  'filter:min-face-size': { options: () => ({ minSizePx: 40 }) },
};

function result(sequence: number, faces = 2): AnalysisResult {
  return {
    sequence,
    captureTimeUnixMs: Date.now(),
    frameWidthPx: 640,
    frameHeightPx: 480,
    faces: Array.from({ length: faces }, (_, i) => ({
      box: { x: 20 + i * 400, y: 40, width: 30 + i * 40, height: 30 + i * 40 },
      score: 0.9,
      keypoints: [],
    })),
    timings: { queueMs: 0, decodeMs: 1, detectMs: 1, tasks: {}, totalMs: 2 },
    models: [{ name: 'blazeface', version: 1 }],
  };
}

const garbageResult = (): AnalysisResult => ({
  ...result(1, 0),
  faces: [{ box: { x: Number.NaN, y: -5, width: -1, height: 0 }, score: 2, keypoints: [] }],
  error: { code: 'INVALID_ARGUMENT', grpcCode: 3, message: 'bad frame' },
});

/** Starts a host; sources send their frames into the returned array. */
async function started(
  factory: AnyPluginFactory,
  options: Record<string, unknown>,
  camera: string,
): Promise<{ host: PluginHost; frames: SourceFrame[]; stateLog: string[] }> {
  const frames: SourceFrame[] = [];
  const stateLog: string[] = [];
  const host = new PluginHost(factory, options, {
    ...hostSettings,
    label: `${camera}/${factory.pluginName}`,
    onStateChange: (state) => stateLog.push(state),
  });
  await host.start(factory.kind === 'source' ? { cameraId: camera, emit: (f) => frames.push(f) } : undefined);
  return { host, frames, stateLog };
}

/** A context for calling a bare source instance. */
function bareSourceContext(signal: AbortSignal): SourceContext {
  return { cameraId: 'bare', emit: () => undefined, setState: () => undefined, fail: () => undefined, signal };
}

let env: Env;
let http: Server;
const escaped: unknown[] = [];
const onEscape = (e: unknown): void => void escaped.push(e);
const registry = gatewayRegistry();
/** `<kind>:<name>` of every registered plugin (a name is unique within its kind only). */
const registered = pluginKinds.flatMap((kind) => registry.names(kind).map((name) => `${kind}:${name}`));

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kt-plugin-contract-'));
  const frames = join(dir, 'frames');
  mkdirSync(frames);
  for (const n of [1, 2]) symlinkSync(demoPhotoPath(n), join(frames, `sample${n}.jpg`));
  writeFileSync(join(dir, 'not-a-folder'), 'a file');
  const video = join(dir, 'video.ts');
  execFileSync('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'testsrc=size=160x120:rate=10', '-t', '2', '-f', 'mpegts', '-y', video]);
  const jpeg = readFileSync(demoPhotoPath(1));
  const webhookBodies: Env['webhookBodies'] = [];
  http = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.url === '/hook') {
        webhookBodies.push(JSON.parse(Buffer.concat(chunks).toString('utf8')) as Env['webhookBodies'][number]);
        res.writeHead(204).end();
      } else if (req.url === '/snapshot.jpg') res.writeHead(200, { 'content-type': 'image/jpeg' }).end(jpeg);
      else if (req.url === '/video.ts') res.writeHead(200, { 'content-type': 'video/mp2t' }).end(readFileSync(video));
      else res.writeHead(404).end();
    });
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const mqtt = await recordTopic(brokerUrl, 'kt-contract/#');
  env = { dir, frames, jpeg, video, http: `http://127.0.0.1:${(http.address() as AddressInfo).port}`, webhookBodies, mqtt };
  process.on('unhandledRejection', onEscape);
  process.on('uncaughtException', onEscape);
});

afterAll(async () => {
  process.off('unhandledRejection', onEscape);
  process.off('uncaughtException', onEscape);
  await env?.mqtt.end();
  await new Promise((resolve) => http?.close(resolve));
  if (env) rmSync(env.dir, { recursive: true, force: true });
});

describe('plugin contract', () => {
  it('covers every built-in plugin', () => {
    const missing = registered.filter((n) => !(n in cases));
    expect(missing, `plugins without a contract case in test/plugin-contract.test.ts: ${missing.join(', ')}`).toEqual([]);
  });

  describe.each(registered)('%s', (key) => {
    const [kind, name] = key.split(':') as [PluginKind, string];
    const factory = registry.get(name, kind);
    const contract = cases[key];
    let seq = 0;
    const camera = (): string => `${kind}-${name.replace(/[^a-z0-9]/g, '')}-${(seq += 1)}`;

    it('declares its kind and documented options, and rejects unknown ones with PluginOptionError', () => {
      expect(pluginKinds).toContain(kind);
      expect(factory.description.length).toBeGreaterThan(5);
      expect(factory.schema.additionalProperties).toBe(false);
      for (const [option, schema] of Object.entries(factory.schema.properties))
        expect(typeof (schema as { description?: unknown }).description, `option ${option} has no description`).toBe('string');
      const options = contract!.options(env);
      expect(() => factory.resolveOptions(options)).not.toThrow();
      let error: unknown;
      try {
        factory.resolveOptions({ ...options, notAnOption: 1 });
      } catch (e) {
        error = e;
      }
      expect(isPluginOptionError(error)).toBe(true);
      expect(error).toMatchObject({ plugin: name, option: 'notAnOption' });
      expect(() => new PluginHost(factory, { ...options, notAnOption: 1 }, hostSettings)).toThrow('unknown option "notAnOption"');
    });

    it('starts and stops idempotently (the instance and its host)', async () => {
      const options = contract!.options(env);
      const bare = await factory(options, { log: silentLogger });
      const instance = bare.instance as { onStart?: (ctx?: SourceContext) => unknown; onStop?: () => unknown };
      await instance.onStop?.(); // before start
      const abort = new AbortController();
      await instance.onStart?.(kind === 'source' ? bareSourceContext(abort.signal) : undefined);
      abort.abort();
      await instance.onStop?.();
      await instance.onStop?.();

      const { host } = await started(factory, options, camera());
      await host.start(kind === 'source' ? { cameraId: 'again', emit: () => undefined } : undefined); // a second start restarts, never throws
      await host.stop();
      await host.stop();
      expect(host.health().state).toBe('stopped');
    });

    it('reports its health while running and flushes on stop', async () => {
      const cam = camera();
      const { host, frames, stateLog } = await started(factory, contract!.options(env), cam);
      if (kind === 'sink') {
        const frame = { image: env.jpeg, sequence: 1, captureTimeUnixMs: Date.now() };
        for (let s = 1; s <= 5; s += 1) await host.deliver(result(s), { streamId: cam, frame: { ...frame, sequence: s } });
        await host.stop(); // must deliver what it was handed before it returns
        expect(contract!.arrived!(env, cam)).toBe(5);
      } else if (kind === 'source') {
        if (contract!.producesFrames) await vi.waitFor(() => expect(frames.length).toBeGreaterThanOrEqual(2), { timeout: 30_000 });
        else await new Promise((r) => setTimeout(r, 300));
        // A finite input (the 2 s video over HTTP) may already have ended: it must have been online while it played.
        if (contract!.producesFrames) expect(stateLog).toContain('online');
        expect(states).toContain(host.health().state);
        await host.stop();
        const sent = frames.length;
        await new Promise((r) => setTimeout(r, 300));
        expect(frames.length, 'frames after stop').toBe(sent);
        expect(frames.map((f) => f.sequence)).toEqual(frames.map((_, i) => i + 1));
      } else {
        const outcome = await host.filterFrame({ image: env.jpeg, sequence: 1, captureTimeUnixMs: Date.now() }, { cameraId: cam });
        expect(typeof outcome.pass).toBe('boolean');
        const input = result(2);
        const filtered = await host.filterResult(input, { cameraId: cam });
        if (filtered.pass) for (const f of filtered.result.faces) expect(input.faces).toContain(f);
        expect(host.health().state).toBe('online');
        await host.stop();
      }
      expect(host.health()).toMatchObject({ name, kind, state: 'stopped', failures: 0 });
    }, 60_000);

    it('keeps its errors inside its host (broken setup or garbage input)', async () => {
      const cam = camera();
      const options = contract!.broken?.(env) ?? contract!.options(env);
      const { host, frames } = await started(factory, options, cam);
      if (kind === 'sink') {
        for (let s = 1; s <= 3; s += 1) await host.deliver(result(s), { streamId: cam });
        await host.deliver(garbageResult(), { streamId: cam });
        await host.event({ type: 'camera-state', cameraId: cam, state: 'offline', reason: 'test', timeUnixMs: Date.now() });
      } else if (kind === 'source') {
        await new Promise((r) => setTimeout(r, 1500));
        expect(frames).toHaveLength(0);
        const health = host.health();
        expect(health.state).not.toBe('online');
        if (health.state === 'offline' || health.state === 'error') expect(health.reason).toMatch(/\S/);
      } else {
        const garbage: SourceFrame[] = [
          { image: new Uint8Array([1, 2, 3]), sequence: 1, captureTimeUnixMs: Date.now() },
          { image: { data: new Uint8Array(10), widthPx: 4, heightPx: 4, pixelFormat: 'RGB8' }, sequence: 2, captureTimeUnixMs: Date.now() },
        ];
        for (const frame of garbage) await host.filterFrame(frame, { cameraId: cam });
        await host.filterResult(garbageResult(), { cameraId: cam });
      }
      expect(states).toContain(host.health().state);
      await host.stop();
      expect(host.health().state).toBe('stopped');
      expect(escaped, 'unhandled rejections or exceptions').toEqual([]);
    }, 60_000);
  });
});
