// `npx tsx bench/gateway.ts`: the gateway's frame transport measured end to end, side by side in one run: JPEG (ffmpeg
// encodes, the server decodes) versus raw NV12 and RGB (no encode, bigger messages), at 1 and 4 cameras. Each camera is a
// looped moving face video through the real ffmpeg file source; the server is a separate `kt serve` process.
// Prints capture-to-result latency p50/p99 and CPU per analysed frame for the gateway (Node + ffmpeg) and the server.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { silentLogger } from '../src/core/log-types.js';
import { gatewayRegistry } from '../src/gateway/builtins.js';
import { resolveGatewayConfig } from '../src/gateway/config.js';
import type { FrameTransport } from '../src/gateway/ffmpeg.js';
import { Gateway } from '../src/gateway/gateway.js';
import { definePlugin } from '../src/sdk/plugin.js';
import { makePhotoVideo } from '../test/helpers/rtsp.js';
import { packageInfo } from '../src/models/build.js';
import { writeBarChart } from './chart.js';
import { percentile } from './measure.js';
import { startServeChild, type ServeChild } from './serve-child.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '12' },
    fps: { type: 'string', default: '5' },
    cameras: { type: 'string', default: '1,4' },
    modes: { type: 'string', default: 'jpeg,nv12,rgb' },
    width: { type: 'string', default: '640' },
    out: { type: 'string', default: 'out/bench' },
  },
});
const seconds = Number(values.seconds);
const fps = Number(values.fps);
const cameraCounts = values.cameras.split(',').map(Number);
const modes = values.modes.split(',') as FrameTransport[];
const root = new URL('..', import.meta.url).pathname;

/** CPU seconds (user + system) of a process from /proc: self and reaped children, or one pid. */
async function cpuSeconds(pid: number | 'self', withChildren = false): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const f = stat
    .slice(stat.lastIndexOf(')') + 2)
    .split(' ')
    .map(Number);
  // Fields 14-17 of stat (utime, stime, cutime, cstime) are at 11..14 after the command name.
  const ticks = f[11]! + f[12]! + (withChildren ? f[13]! + f[14]! : 0);
  return ticks / 100;
}

const photo = join(packageInfo('@vladmandic/face-api').dir, 'demo', 'sample2.jpg');

function makeVideo(dir: string): string {
  const out = join(dir, 'faces.mp4');
  // 10 fps at 640 px: ffmpeg decodes every source frame, so a light source keeps the decode (the same in every mode) small.
  makePhotoVideo(photo, out, { moving: true, seconds: 8, preset: 'veryfast' });
  return out;
}

interface RunResult {
  mode: FrameTransport;
  cameras: number;
  frames: number;
  p50Ms: number;
  p99Ms: number;
  gatewayCpuMsPerFrame: number;
  serverCpuMsPerFrame: number;
  gatewayCpuPercentPerCamera: number;
}

async function runOnce(mode: FrameTransport, cameras: number, video: string, server: ServeChild): Promise<RunResult> {
  const latencies: number[] = [];
  let measuring = false;
  const registry = gatewayRegistry();
  registry.register(
    definePlugin<{ note: string }>({
      name: 'bench-latency',
      description: 'records capture-to-result latency',
      defaults: { note: '' },
      create: () => ({
        onResult(result) {
          if (measuring) latencies.push(Date.now() - result.captureTimeUnixMs);
        },
      }),
    }),
  );
  const config = await resolveGatewayConfig(
    {
      server: server.address,
      transport: mode,
      statsIntervalMs: 0,
      cameras: Array.from({ length: cameras }, (_, i) => ({
        id: `cam${i + 1}`,
        tasks: ['age'],
        source: { type: 'file', path: video, loop: true, fps, widthPx: Number(values.width) },
      })),
      sinks: [{ type: 'bench-latency' }],
    },
    'bench',
    root,
  );
  // CPU and frames are counted from start to stop (ffmpeg's CPU reaches cutime/cstime once it has exited);
  // latencies only after a warm-up, once ffmpeg runs and the first frames are through.
  const startedMs = Date.now();
  const gatewayBefore = await cpuSeconds('self', true);
  const serverBefore = await cpuSeconds(server.child.pid!);
  const gateway = await Gateway.start(config, { log: silentLogger, registry });
  await new Promise((r) => setTimeout(r, 3000));
  measuring = true;
  await new Promise((r) => setTimeout(r, seconds * 1000));
  measuring = false;
  const frames = gateway.status().cameras.reduce((n, c) => n + c.counters.results, 0);
  const serverCpu = (await cpuSeconds(server.child.pid!)) - serverBefore;
  await gateway.stop();
  const gatewayCpu = (await cpuSeconds('self', true)) - gatewayBefore;
  const elapsedS = (Date.now() - startedMs) / 1000;
  const sorted = [...latencies].sort((a, b) => a - b);
  return {
    mode,
    cameras,
    frames,
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    gatewayCpuMsPerFrame: (gatewayCpu * 1000) / Math.max(1, frames),
    serverCpuMsPerFrame: (serverCpu * 1000) / Math.max(1, frames),
    gatewayCpuPercentPerCamera: (gatewayCpu / elapsedS / cameras) * 100,
  };
}

const dir = await mkdtemp(join(tmpdir(), 'kt-bench-gateway-'));
const video = makeVideo(dir);
// A `kt serve` child (its own process, so its CPU is read apart from the gateway's), ready once a photo is answered.
const server = await startServeChild(await readFile(photo), { galleryPath: ':memory:' }, 'age');
const results: RunResult[] = [];
try {
  for (const cameras of cameraCounts) {
    for (const mode of modes) {
      process.stderr.write(`bench gateway: ${cameras} camera(s), ${mode}, ${seconds} s ...\n`);
      results.push(await runOnce(mode, cameras, video, server));
    }
  }
} finally {
  await server.stop();
  await rm(dir, { recursive: true, force: true });
}

const rows = results.map(
  (r) =>
    `| ${r.cameras} | ${r.mode} | ${r.frames} | ${r.p50Ms.toFixed(0)} | ${r.p99Ms.toFixed(0)} | ${r.gatewayCpuMsPerFrame.toFixed(1)} | ${r.serverCpuMsPerFrame.toFixed(1)} | ${(r.gatewayCpuMsPerFrame + r.serverCpuMsPerFrame).toFixed(1)} | ${r.gatewayCpuPercentPerCamera.toFixed(1)} |`,
);
process.stdout.write(
  `gateway transport, ${fps} fps per camera, ${values.width} px wide, tasks [age], ${seconds} s per row (capture = frame read from ffmpeg, result = answer at the gateway)\n` +
    '| cameras | transport | frames analysed | latency p50 ms | latency p99 ms | gateway CPU ms/frame (node+ffmpeg) | server CPU ms/frame | end-to-end CPU ms/frame | gateway CPU % per camera |\n' +
    '|---|---|---|---|---|---|---|---|---|\n' +
    `${rows.join('\n')}\n`,
);
for (const n of cameraCounts) {
  const jpeg = results.find((r) => r.cameras === n && r.mode === 'jpeg');
  for (const r of results.filter((x) => x.cameras === n && x.mode !== 'jpeg')) {
    if (!jpeg) continue;
    const ratio = (r.gatewayCpuMsPerFrame + r.serverCpuMsPerFrame) / (jpeg.gatewayCpuMsPerFrame + jpeg.serverCpuMsPerFrame);
    process.stdout.write(`${n} camera(s): ${r.mode} costs ${ratio.toFixed(2)}x the end-to-end CPU per frame of jpeg\n`);
  }
}
await writeBarChart(join(values.out, 'gateway-transport.png'), 'kt gateway: transport cost end to end', [
  {
    title: 'CPU per analysed frame (gateway node+ffmpeg + server)',
    unit: 'ms',
    series: ['gateway', 'server'],
    rows: results.map((r) => ({ label: `${r.cameras} cam ${r.mode}`, values: [r.gatewayCpuMsPerFrame, r.serverCpuMsPerFrame] })),
  },
  {
    title: 'capture-to-result latency',
    unit: 'ms',
    series: ['p50', 'p99'],
    rows: results.map((r) => ({ label: `${r.cameras} cam ${r.mode}`, values: [r.p50Ms, r.p99Ms] })),
  },
]);
process.stdout.write(`chart: ${join(values.out, 'gateway-transport.png')}\n`);
