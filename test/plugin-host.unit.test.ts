// The plugin SDK's kinds, registry, isolation host and loader without sockets: restarts of throwing and hanging plugins
// while the others keep running, source frame numbering across restarts, filter verdicts and their counters.
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import {
  PluginHost,
  PluginRegistry,
  Type,
  definePlugin,
  isPluginFactory,
  loadPlugin,
  registerBuiltinPlugins,
  runFrameFilters,
  runResultFilters,
  silentLogger,
  type AnalysisResult,
  type FaceResult,
  type PluginState,
  type SourceFrame,
} from '../src/sdk/index.js';
import { failure } from './helpers/failure.js';

const fast = { callTimeoutMs: 200, restartBackoff: { initialMs: 2, maxMs: 10, multiplier: 2, jitter: 0.2 }, log: silentLogger };
const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function face(x: number, size: number): FaceResult {
  return { box: { x, y: 10, width: size, height: size }, score: 0.9, keypoints: [] };
}

function result(sequence: number, faces: FaceResult[] = [face(10, 50)]): AnalysisResult {
  return {
    sequence,
    captureTimeUnixMs: 1_700_000_000_000 + sequence,
    frameWidthPx: 640,
    frameHeightPx: 480,
    faces,
    timings: { queueMs: 0, decodeMs: 0, detectMs: 0, tasks: {}, totalMs: 0 },
    models: [],
  };
}

const noOptions = Type.Object({}, { additionalProperties: false });

/** A sink that records what it sees; `throwEvery` makes every n-th result (counted over all instances) throw. */
function recordingSink(name: string, throwEvery = 0) {
  const seen: number[] = [];
  let calls = 0;
  let instances = 0;
  const factory = definePlugin<Record<string, never>>({
    name,
    description: 'records results',
    schema: noOptions,
    create: () => {
      instances += 1;
      return {
        onResult(r) {
          calls += 1;
          if (throwEvery > 0 && calls % throwEvery === 0) throw new Error(`boom on call ${calls}`);
          seen.push(r.sequence);
        },
      };
    },
  });
  return { factory, seen, instances: () => instances };
}

describe('definePlugin kinds and the registry', () => {
  it('defaults to sink, checks what create() returns per kind and keeps kinds apart in the registry', async () => {
    const sink = recordingSink('plain-sink').factory;
    expect(sink.kind).toBe('sink');
    const source = definePlugin<{ fps: number }, 'source'>({
      kind: 'source',
      name: 'test-source',
      description: 'emits nothing',
      schema: Type.Object({ fps: Type.Number({ minimum: 0.1, default: 1 }) }, { additionalProperties: false }),
      create: () => ({ onStart: () => undefined }),
    });
    const broken = definePlugin<Record<string, never>, 'filter'>({
      kind: 'filter',
      name: 'broken-filter',
      description: 'returns no hook',
      schema: noOptions,
      create: () => ({}) as never,
    });
    await expect(broken()).rejects.toThrow(
      'plugin broken-filter: create() must return an object with onFrame() or onResult() (a filter plugin)',
    );
    expect(() =>
      definePlugin({ kind: 'camera' as never, name: 'x', description: '', schema: noOptions, create: () => ({}) as never }),
    ).toThrow('kind must be one of source, filter, sink');

    const registry = registerBuiltinPlugins(new PluginRegistry());
    registry.register(source);
    registry.register(sink, ['plain']);
    expect(registry.names('sink')).toEqual(['jsonl', 'mqtt-forward', 'plain-sink', 'webhook']);
    expect(registry.has('mqtt', 'sink')).toBe(true);
    expect(registry.has('mqtt', 'source')).toBe(false);
    expect(registry.names('source')).toEqual(['test-source']);
    expect(registry.get('mqtt').pluginName).toBe('mqtt-forward');
    expect(registry.get('plain', 'sink')).toBe(sink);
    expect(() => registry.get('test-source', 'sink')).toThrow('plugin "test-source" is a source plugin, not a sink plugin');
    expect(() => registry.get('rtsp', 'source')).toThrow('no source plugin named "rtsp" (registered: test-source)');
    expect(() => registry.register(sink)).toThrow('sink plugin plain-sink is already registered');
    // A name is unique within its kind: a "test-source" sink may exist next to the source, and then the kind must be said.
    const sameName = definePlugin({
      name: 'test-source',
      description: 'a sink',
      schema: noOptions,
      create: () => ({ onResult: () => undefined }),
    });
    registry.register(sameName);
    expect(registry.get('test-source', 'sink')).toBe(sameName);
    expect(registry.get('test-source', 'source')).toBe(source);
    expect(() => registry.get('test-source')).toThrow('"test-source" names plugins of several kinds (source, sink): say which');
    expect(isPluginFactory(source)).toBe(true);
    expect(isPluginFactory(() => undefined)).toBe(false);
    expect(() => new PluginHost(source, { fps: 0 }, fast)).toThrow(
      expect.objectContaining({ name: 'PluginOptionError', option: 'fps' }) as Error,
    );
  });
});

describe('PluginHost isolation', () => {
  it('restarts a sink that throws on every third result while another sink keeps getting every result', async () => {
    const flaky = recordingSink('flaky', 3);
    const steady = recordingSink('steady');
    const states: PluginState[] = [];
    const flakyHost = new PluginHost(flaky.factory, {}, { ...fast, onStateChange: (s) => states.push(s) });
    const steadyHost = new PluginHost(steady.factory, {}, fast);
    await Promise.all([flakyHost.start(), steadyHost.start()]);
    for (let sequence = 1; sequence <= 30; sequence += 1) {
      await Promise.all([
        flakyHost.deliver(result(sequence), { streamId: 'door' }),
        steadyHost.deliver(result(sequence), { streamId: 'door' }),
      ]);
      await pause(15); // longer than the backoff cap: the flaky sink is back for the next result
    }
    await vi.waitFor(() => expect(flakyHost.health().state).toBe('online'));
    const health = flakyHost.health();
    console.info(`flaky sink after 30 results: ${JSON.stringify(health)}; instances ${flaky.instances()}`);
    expect(steady.seen).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    expect(health.failures).toBeGreaterThanOrEqual(9);
    expect(health.restarts).toBe(health.failures);
    expect(flaky.instances()).toBe(health.failures + 1);
    expect(health.calls + health.skipped).toBe(30);
    // Every call that did not throw was recorded; the throwing ones were not.
    expect(flaky.seen.length).toBe(health.calls - health.failures);
    expect(states).toContain('error');
    expect(steadyHost.health()).toMatchObject({ state: 'online', failures: 0, restarts: 0, calls: 30 });
    await Promise.all([flakyHost.stop(), steadyHost.stop()]);
    expect(flakyHost.health().state).toBe('stopped');
  });

  it('counts a hung call as a timeout, abandons that instance and serves the next calls with a new one', async () => {
    let instances = 0;
    const hanging = definePlugin<Record<string, never>>({
      name: 'hangs-once',
      description: 'the first instance never answers',
      schema: noOptions,
      create: () => {
        instances += 1;
        const first = instances === 1;
        return { onResult: () => (first ? new Promise<void>(() => undefined) : undefined) };
      },
    });
    const host = new PluginHost(hanging, {}, { ...fast, callTimeoutMs: 30 });
    await host.start();
    await host.deliver(result(1), { streamId: 'door' });
    expect(host.health()).toMatchObject({ state: 'error', failures: 1, timeouts: 1 });
    expect(host.health().reason).toMatch(/^onResult: onResult did not finish within 30 ms$/);
    await vi.waitFor(() => expect(host.health().state).toBe('online'));
    await host.deliver(result(2), { streamId: 'door' });
    expect(host.health()).toMatchObject({ failures: 1, restarts: 1, calls: 2 });
    await host.stop();
  });

  it('numbers source frames across a restart (ctx.fail), reports state and sends nothing after stop', async () => {
    const frames: SourceFrame[] = [];
    const states: string[] = [];
    let instances = 0;
    const ticker = definePlugin<{ failAfter: number }, 'source'>({
      kind: 'source',
      name: 'ticker',
      description: 'emits a tiny frame every few ms',
      schema: Type.Object({ failAfter: Type.Integer({ default: 3 }) }, { additionalProperties: false }),
      create: ({ options }) => {
        instances += 1;
        let timer: NodeJS.Timeout | undefined;
        return {
          onStart(ctx) {
            let emitted = 0;
            ctx.setState('online');
            timer = setInterval(() => {
              ctx.emit({ image: new Uint8Array([0xff, 0xd8, emitted]), captureTimeUnixMs: 1000 + emitted });
              emitted += 1;
              if (instances === 1 && emitted === options.failAfter) ctx.fail(new Error('camera went away'));
            }, 3);
          },
          onStop: () => clearInterval(timer),
        };
      },
    });
    const host = new PluginHost(
      ticker,
      { failAfter: 3 },
      { ...fast, onStateChange: (s, reason) => states.push(reason ? `${s}: ${reason}` : s) },
    );
    await host.start({ cameraId: 'door', emit: (f) => frames.push(f) });
    await vi.waitFor(() => expect(frames.length).toBeGreaterThanOrEqual(8));
    await host.stop();
    const n = frames.length;
    await pause(20);
    expect(frames.length).toBe(n);
    expect(frames.map((f) => f.sequence)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
    expect(frames[3]!.captureTimeUnixMs).toBe(1000); // the second instance starts its own count
    expect(states.slice(0, 3)).toEqual(['online', 'error: source: camera went away', 'starting: source: camera went away']);
    expect(states.at(-1)).toBe('stopped');
    expect(host.health()).toMatchObject({ kind: 'source', failures: 1, restarts: 1, counters: { frames: n } });
  });

  it('retries a source whose onStart throws, with the reason in its health', async () => {
    let attempts = 0;
    const dead = definePlugin<Record<string, never>, 'source'>({
      kind: 'source',
      name: 'dead-camera',
      description: 'never starts',
      schema: noOptions,
      create: () => ({
        onStart() {
          attempts += 1;
          throw new Error('connection refused');
        },
      }),
    });
    const host = new PluginHost(dead, {}, fast);
    await host.start({ cameraId: 'lobby', emit: () => undefined });
    await vi.waitFor(() => expect(attempts).toBeGreaterThanOrEqual(3));
    expect(host.health()).toMatchObject({
      state: expect.stringMatching(/^(error|starting)$/) as string,
      reason: 'start: connection refused',
    });
    await host.stop();
    const after = attempts;
    await pause(30);
    expect(attempts).toBe(after);
  });
});

describe('filters through their hosts', () => {
  const evenOnly = definePlugin<Record<string, never>, 'filter'>({
    kind: 'filter',
    name: 'even-only',
    description: 'drops odd frames',
    schema: noOptions,
    create: () => ({ onFrame: (f) => (f.sequence % 2 === 0 ? undefined : { drop: 'odd' }) }),
  });
  const bigFaces = definePlugin<{ minPx: number }, 'filter'>({
    kind: 'filter',
    name: 'big-faces',
    description: 'drops small faces',
    schema: Type.Object({ minPx: Type.Integer({ minimum: 1, default: 40 }) }, { additionalProperties: false }),
    create: ({ options }) => ({
      onResult: (r) => ({ faces: r.faces.filter((f) => f.box.width >= options.minPx), reason: 'min-size' }),
    }),
  });
  const throwing = definePlugin<Record<string, never>, 'filter'>({
    kind: 'filter',
    name: 'throws',
    description: 'always throws',
    schema: noOptions,
    create: () => ({
      onFrame: () => {
        throw new Error('bad filter');
      },
    }),
  });
  const frame = (sequence: number): SourceFrame => ({ image: new Uint8Array([1]), sequence, captureTimeUnixMs: sequence });

  it('drops frames and faces with reasons counted per filter', async () => {
    const hosts = [new PluginHost(evenOnly, {}, fast), new PluginHost(bigFaces, { minPx: 40 }, fast)];
    await Promise.all(hosts.map((h) => h.start()));
    const outcomes = await Promise.all([1, 2, 3, 4].map((s) => runFrameFilters(hosts, frame(s), { cameraId: 'door' })));
    expect(outcomes.map((o) => o.pass)).toEqual([false, true, false, true]);
    expect(outcomes[0]).toEqual({ pass: false, reason: 'odd', by: 'even-only' });
    const kept = await runResultFilters(hosts, result(2, [face(0, 80), face(100, 20), face(200, 30)]), { cameraId: 'door' });
    expect(kept?.faces.map((f) => f.box.x)).toEqual([0]);
    expect(hosts[0]!.health().counters).toEqual({ 'framesDropped.odd': 2 });
    expect(hosts[1]!.health().counters).toEqual({ 'facesDropped.min-size': 2 });
    await Promise.all(hosts.map((h) => h.stop()));
  });

  it('restarts a filter that throws on every third frame; the filter after it sees every frame', async () => {
    let calls = 0;
    const everyThird = definePlugin<Record<string, never>, 'filter'>({
      kind: 'filter',
      name: 'every-third',
      description: 'throws on every third frame',
      schema: noOptions,
      create: () => ({
        onFrame: () => {
          if (++calls % 3 === 0) throw new Error(`frame ${calls}`);
        },
      }),
    });
    const hosts = [new PluginHost(everyThird, {}, fast), new PluginHost(evenOnly, {}, fast)];
    await Promise.all(hosts.map((h) => h.start()));
    const passed: number[] = [];
    for (let s = 1; s <= 12; s += 1) {
      const outcome = await runFrameFilters(hosts, frame(s), { cameraId: 'door' });
      if (outcome.pass) passed.push(outcome.frame.sequence);
      await vi.waitFor(() => expect(hosts[0]!.health().state).toBe('online')); // back before the next frame
    }
    expect(passed).toEqual([2, 4, 6, 8, 10, 12]); // the failing filter let frames through; even-only saw all 12
    expect(hosts[1]!.health()).toMatchObject({ calls: 12, failures: 0, counters: { 'framesDropped.odd': 6 } });
    expect(hosts[0]!.health()).toMatchObject({ failures: 4, restarts: 4, calls: 12 });
    await Promise.all(hosts.map((h) => h.stop()));
  });

  it('lets frames pass (or drops them, when asked) while a throwing filter restarts', async () => {
    const open = new PluginHost(throwing, {}, fast);
    const closed = new PluginHost(throwing, {}, { ...fast, label: 'door/throws', whileDown: 'drop' });
    await Promise.all([open.start(), closed.start()]);
    expect(await open.filterFrame(frame(1), { cameraId: 'door' })).toMatchObject({ pass: true });
    expect(await closed.filterFrame(frame(1), { cameraId: 'door' })).toEqual({ pass: false, reason: 'throws down' });
    expect(open.health()).toMatchObject({ state: 'error', failures: 1, reason: 'onFrame: bad filter' });
    await Promise.all([open.stop(), closed.stop()]);

    // A malformed verdict is the plugin's failure too, not the pipeline's.
    const sloppy = definePlugin<Record<string, never>, 'filter'>({
      kind: 'filter',
      name: 'sloppy',
      description: 'returns what it should not',
      schema: noOptions,
      create: () => ({ onFrame: () => 'nope' as never, onResult: () => ({ faces: 'all' }) as never }),
    });
    const host = new PluginHost(sloppy, {}, fast);
    await host.start();
    expect(await host.filterFrame(frame(1), { cameraId: 'door' })).toMatchObject({ pass: true });
    expect(host.health().reason).toBe(
      'onFrame: onFrame returned an invalid verdict ("nope"): expected nothing, true, { drop: reason } or { frame }',
    );
    await vi.waitFor(() => expect(host.health().state).toBe('online'));
    expect(await host.filterResult(result(2), { cameraId: 'door' })).toMatchObject({ pass: true, result: { faces: [face(10, 50)] } });
    expect(host.health()).toMatchObject({ failures: 2, state: 'error' });
    await host.stop();
  });
});

describe('loadPlugin', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kt-plugin-loader-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  // A factory as another copy of the SDK makes it (duck-typed: no instanceof across copies).
  const moduleText = `const make = (name) => Object.assign(async () => ({ name, kind: 'sink', options: {}, instance: { onResult() {} } }), {
  pluginName: name, kind: 'sink', description: name, defaults: {}, schema: {}, resolveOptions: (o = {}) => o });
export const first = make('third-first');
export default [make('third-second')];
export const notAPlugin = 42;
`;

  it('loads every factory of a module given by path or by package name, and names the spec when it cannot', async () => {
    writeFileSync(join(dir, 'plugins.mjs'), moduleText);
    const registry = new PluginRegistry();
    const byPath = await loadPlugin('./plugins.mjs', { baseDir: dir, registry });
    expect(byPath.map((f) => f.pluginName).sort()).toEqual(['third-first', 'third-second']);
    expect(registry.names('sink')).toEqual(['third-first', 'third-second']);

    const pkg = join(dir, 'node_modules', 'kt-plugin-esm');
    mkdirSync(pkg, { recursive: true });
    writeFileSync(
      join(pkg, 'package.json'),
      JSON.stringify({ name: 'kt-plugin-esm', type: 'module', exports: { '.': { import: './main.js' } } }),
    );
    writeFileSync(join(pkg, 'main.js'), moduleText);
    const byName = await loadPlugin('kt-plugin-esm', { baseDir: join(dir, 'sub') });
    expect(byName).toHaveLength(2);

    await expect(loadPlugin('./missing.js', { baseDir: dir })).rejects.toThrow(
      `plugin ./missing.js: no such file ${join(dir, 'missing.js')}`,
    );
    await expect(loadPlugin('kt-plugin-absent', { baseDir: dir })).rejects.toThrow('plugin package kt-plugin-absent is not installed');
    writeFileSync(join(dir, 'empty.mjs'), 'export const x = 1;\n');
    await expect(loadPlugin('./empty.mjs', { baseDir: dir })).rejects.toThrow('plugin ./empty.mjs exports no plugin');
    writeFileSync(join(dir, 'broken.mjs'), 'export const = ;\n');
    const e = await failure(() => loadPlugin('./broken.mjs', { baseDir: dir }));
    expect(String(e)).toMatch(/plugin \.\/broken\.mjs failed to load: /);
  });
});
