// `npm run bench:streams`: several StreamAnalyze calls on ONE HTTP/2 connection versus one connection per stream, each
// stream a camera at a fixed frame rate with latest-wins, against a `kt serve` child process (its own event loop, as in
// production). Prints frames offered/received/answered and capture-to-answer latency p50/p99 side by side, for the
// server's HTTP/2 flow-control window as configured (http2WindowBytes) and at Node's default (65,535 B), and with
// dynamic batching of task models across streams (batchMaxFaces) off and on: frames/s, p50/p99, drops, fairness.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { credentials, type ClientDuplexStream, type ServiceError } from '@grpc/grpc-js';
import { packageInfo } from '../src/models/build.js';
import { Task } from '../src/gen/kt/v1/common.js';
import { DropPolicy, FaceAnalysisClient, StreamRequest, type StreamResponse } from '../src/gen/kt/v1/face_analysis.js';
import { percentile } from './measure.js';
import { encoded, startServeChild } from './serve-child.js';

const { values } = parseArgs({
  options: {
    streams: { type: 'string', default: '1,4,8' },
    fps: { type: 'string', default: '8' },
    seconds: { type: 'string', default: '12' },
    windows: { type: 'string', default: 'default,65535' },
    batching: { type: 'string', default: 'off' },
    sharing: { type: 'string', default: 'one,per-stream' },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  process.stdout.write(
    'npm run bench:streams -- [--streams 1,4,8] [--fps 8 per stream] [--seconds 12 per mode] [--windows default,65535]\n' +
      '    [--batching off,on] [--sharing one,per-stream]\n' +
      '  windows: the server\'s http2WindowBytes per run ("default" = the shipped config; a number overrides it)\n' +
      '  batching: on = batchMaxFaces 16, batchMaxQueueDelayMs 2 (task models batched across concurrent frames)\n',
  );
  process.exit(0);
}

interface ModeResult {
  window: string;
  batching: string;
  streams: number;
  sharing: 'one connection' | 'per stream';
  offered: number;
  answered: number;
  dropped: number;
  p50Ms: number;
  p99Ms: number;
  /** Answers of the least and the most served stream (fairness). */
  minPerStream: number;
  maxPerStream: number;
}

function openStream(
  client: FaceAnalysisClient,
  id: string,
  onAnswer: (latencyMs: number) => boolean,
): { call: ClientDuplexStream<StreamRequest, StreamResponse>; dropped: () => number; answered: () => number } {
  const call = client.streamAnalyze();
  let dropped = 0;
  let answered = 0;
  // Drops during the warm-up do not count: the server's counter at the first counted answer is the baseline.
  let droppedBefore: number | undefined;
  call.on('data', (r: StreamResponse) => {
    dropped = Number(r.counters?.framesDropped ?? 0);
    const capture = Number(r.result?.captureTimeUnixMs ?? 0);
    if (capture > 0 && onAnswer(Date.now() - capture)) {
      answered += 1;
      droppedBefore ??= dropped;
    }
  });
  call.on('error', (e: ServiceError) => {
    if (e.code !== 1) process.stderr.write(`stream ${id}: ${e.message}\n`);
  });
  call.write(
    StreamRequest.fromPartial({
      request: {
        $case: 'config',
        value: {
          streamId: id,
          analysis: { tasks: [Task.TASK_AGE, Task.TASK_GENDER, Task.TASK_EMOTION, Task.TASK_LANDMARKS] },
          dropPolicy: DropPolicy.DROP_POLICY_LATEST_WINS,
        },
      },
    }),
  );
  return { call, dropped: () => dropped - (droppedBefore ?? dropped), answered: () => answered };
}

async function runMode(
  address: string,
  server: { window: string; batching: string },
  streams: number,
  shared: boolean,
  photos: Buffer[],
): Promise<ModeResult> {
  const fps = Number(values.fps);
  const durationMs = Number(values.seconds) * 1000;
  const options = { 'grpc.max_send_message_length': 64 << 20, 'grpc.use_local_subchannel_pool': 1 };
  const sharedClient = shared ? new FaceAnalysisClient(address, credentials.createInsecure(), options) : undefined;
  const clients: FaceAnalysisClient[] = [];
  const latencies: number[] = [];
  const started = Date.now();
  // The first two seconds warm the streams up; latencies count after them.
  const warmupMs = 2000;
  const record = (ms: number): boolean => {
    if (Date.now() - started <= warmupMs) return false;
    latencies.push(ms);
    return true;
  };
  const opened = Array.from({ length: streams }, (_, i) => {
    const client = sharedClient ?? new FaceAnalysisClient(address, credentials.createInsecure(), options);
    if (!shared) clients.push(client);
    return openStream(client, `cam-${i}`, record);
  });
  let offered = 0;
  await new Promise<void>((done) => {
    let seq = 0;
    const timer = setInterval(() => {
      seq += 1;
      for (const [i, s] of opened.entries()) {
        const photo = photos[(seq + i) % photos.length]!;
        s.call.write(
          StreamRequest.fromPartial({
            request: { $case: 'frame', value: { image: encoded(photo), sequence: seq, captureTimeUnixMs: Date.now() } },
          }),
        );
        if (Date.now() - started > warmupMs) offered += 1;
      }
      if (Date.now() - started >= durationMs + warmupMs) {
        clearInterval(timer);
        done();
      }
    }, 1000 / fps);
  });
  for (const s of opened) s.call.end();
  // Answers still in flight count; wait for the calls to finish (bounded).
  await Promise.race([
    Promise.all(opened.map((s) => new Promise((r) => s.call.on('status', r)))),
    new Promise((r) => setTimeout(r, 30_000)),
  ]);
  for (const s of opened) s.call.cancel();
  sharedClient?.close();
  for (const c of clients) c.close();
  const sorted = latencies.sort((a, b) => a - b);
  const perStream = opened.map((s) => s.answered());
  return {
    ...server,
    streams,
    sharing: shared ? 'one connection' : 'per stream',
    offered,
    answered: sorted.length,
    dropped: opened.reduce((n, s) => n + s.dropped(), 0),
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    minPerStream: Math.min(...perStream),
    maxPerStream: Math.max(...perStream),
  };
}

const photoDir = join(packageInfo('@vladmandic/face-api').dir, 'demo');
const photos = await Promise.all([1, 2, 3, 4, 5, 6].map((n) => readFile(join(photoDir, `sample${n}.jpg`))));
const results: ModeResult[] = [];
const sharings = values.sharing.split(',').map((x) => x.trim());
for (const window of values.windows.split(',').map((w) => w.trim())) {
  for (const batching of values.batching.split(',').map((b) => b.trim())) {
    const server = await startServeChild(photos[0]!, {
      ...(window === 'default' ? {} : { http2StreamWindowBytes: Number(window), http2ConnectionWindowBytes: Number(window) }),
      ...(batching === 'on' ? { batchMaxFaces: 16, batchMaxQueueDelayMs: 2 } : {}),
    });
    try {
      for (const streams of values.streams.split(',').map(Number)) {
        for (const shared of [true, false]) {
          if (!sharings.includes(shared ? 'one' : 'per-stream') || (streams === 1 && !shared && sharings.includes('one'))) continue;
          const r = await runMode(server.address, { window, batching }, streams, shared, photos);
          process.stderr.write(`${JSON.stringify(r)}\n`);
          results.push(r);
        }
      }
    } finally {
      await server.stop();
    }
  }
}
const seconds = Number(values.seconds);
const pad = (s: string | number, n: number): string => String(s).padStart(n);
process.stdout.write(
  `\n${pad('window', 8)} ${pad('batching', 8)} ${pad('streams', 7)} ${pad('connections', 15)} ${pad('offered', 8)} ${pad('answered', 8)} ${pad('frames/s', 8)} ${pad('dropped', 8)} ${pad('p50 ms', 8)} ${pad('p99 ms', 8)} ${pad('per stream min-max', 18)}\n`,
);
for (const r of results)
  process.stdout.write(
    `${pad(r.window, 8)} ${pad(r.batching, 8)} ${pad(r.streams, 7)} ${pad(r.sharing, 15)} ${pad(r.offered, 8)} ${pad(r.answered, 8)} ${pad((r.answered / seconds).toFixed(2), 8)} ${pad(r.dropped, 8)} ${pad(r.p50Ms.toFixed(0), 8)} ${pad(r.p99Ms.toFixed(0), 8)} ${pad(`${r.minPerStream}-${r.maxPerStream}`, 18)}\n`,
  );
