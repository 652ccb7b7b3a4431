// @ts-check
/* global AbortController */
// A one-camera gateway in one file, using only the public kt-edge-face-sdk package: loads a source and sinks from plugin
// modules named in a JSON config, runs each in an isolating PluginHost, streams the newest frame to the server and hands
// every result to every sink. `kt gateway` does the same for many cameras, with filters; this shows the SDK's parts.
//
//   node mini-gateway.mjs config.json
//   config.json: { "server": "127.0.0.1:50051", "camera": "door", "tasks": ["age", "gender", "emotion"], "frames": 10,
//                  "source": { "plugin": "./plugins/slideshow-source.mjs", "options": { "folder": "./frames" } },
//                  "sinks": [{ "plugin": "./plugins/csv-sink.mjs", "options": { "path": "faces.csv" } }] }
// Plugin paths are relative to the config file; a package name works too. `frames`: stop after that many results
// (0: run until Ctrl-C). Prints one JSON line per plugin with its health and counters at the end.
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { FaceAnalysisClient, PluginHost, createBasicLogger, loadPlugin } from 'kt-edge-face-sdk';

/**
 * @typedef {{ plugin: string, type?: string, options?: Record<string, unknown> }} PluginEntry
 * @typedef {{ server: string, camera: string, tasks?: import('kt-edge-face-sdk').TaskName[], frames?: number,
 *             source: PluginEntry, sinks: PluginEntry[] }} MiniGatewayConfig
 */

const configPath = resolve(process.argv[2] ?? 'mini-gateway.json');
const config = /** @type {MiniGatewayConfig} */ (JSON.parse(await readFile(configPath, 'utf8')));
const log = createBasicLogger('mini-gateway');
const restartBackoff = { initialMs: 200, maxMs: 5000, multiplier: 2, jitter: 0.2 };

/**
 * A host for the plugin of `kind` exported by `entry.plugin` (the one named `entry.type` when it exports several).
 * @param {PluginEntry} entry
 * @param {import('kt-edge-face-sdk').PluginKind} kind
 * @param {Partial<import('kt-edge-face-sdk').PluginHostOptions>} [extra]
 */
async function hostOf(entry, kind, extra = {}) {
  const factories = await loadPlugin(entry.plugin, { baseDir: dirname(configPath) });
  const factory = factories.find((f) => (f.kind ?? 'sink') === kind && (entry.type === undefined || f.pluginName === entry.type));
  if (!factory) throw new Error(`${entry.plugin}: no ${kind} plugin${entry.type ? ` named ${entry.type}` : ''}`);
  return new PluginHost(factory, entry.options ?? {}, { label: `${config.camera}/${factory.pluginName}`, log, restartBackoff, ...extra });
}

const sinks = await Promise.all(config.sinks.map((entry) => hostOf(entry, 'sink')));
const source = await hostOf(config.source, 'source', {
  // Camera state changes go to the sinks as events (a sink without onEvent is skipped by its host).
  onStateChange: (state, reason) => {
    const event = { type: /** @type {const} */ ('camera-state'), cameraId: config.camera, state, timeUnixMs: Date.now() };
    for (const sink of sinks) void sink.event(reason === undefined ? event : { ...event, reason });
  },
});

// The newest frame waits in one slot; the stream pulls it when the server is ready for another (latest wins).
/** @type {import('kt-edge-face-sdk').SourceFrame | undefined} */
let slot;
/** @type {(() => void) | undefined} */
let wake;
let superseded = 0;
const stopping = new AbortController();
async function* frames() {
  while (!stopping.signal.aborted) {
    if (slot === undefined) await new Promise((resolve) => (wake = () => resolve(undefined)));
    const frame = slot;
    slot = undefined;
    if (frame !== undefined && !stopping.signal.aborted)
      yield { image: frame.image, sequence: frame.sequence, captureTimeUnixMs: frame.captureTimeUnixMs };
  }
}
const stop = () => {
  stopping.abort();
  wake?.();
};
process.once('SIGINT', stop);

const client = new FaceAnalysisClient(config.server);
let results = 0;
let faces = 0;
try {
  await client.waitUntilServing(30_000);
  await Promise.all(sinks.map((sink) => sink.start()));
  await source.start({
    cameraId: config.camera,
    emit: (frame) => {
      if (slot !== undefined) superseded += 1;
      slot = frame;
      wake?.();
      wake = undefined;
    },
  });
  const stream = client.stream(frames(), {
    streamId: config.camera,
    tasks: config.tasks ?? ['age', 'gender', 'emotion'],
    signal: stopping.signal,
  });
  for await (const result of stream) {
    results += 1;
    faces += result.faces.length;
    for (const sink of sinks) await sink.deliver(result, { streamId: config.camera });
    if (config.frames && results >= config.frames) break;
  }
} finally {
  stop();
  await source.stop();
  await Promise.all(sinks.map((sink) => sink.stop()));
  client.close();
}
console.log(JSON.stringify({ camera: config.camera, results, faces, superseded }));
for (const host of [source, ...sinks]) console.log(JSON.stringify(host.health()));
