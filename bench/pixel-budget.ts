// `npm run bench:pixels`: peak server RSS while four 7000x7000 PNGs (each ~100 KiB on the wire, 49 M pixels decoded)
// arrive at once, without a pixel budget (maxPixelsInFlight 0) and with the shipped one, in one run, side by side.
import { parseArgs } from 'node:util';
import { credentials } from '@grpc/grpc-js';
import sharp from 'sharp';
import { Task } from '../src/gen/kt/v1/common.js';
import { AnalyzeRequest, FaceAnalysisClient } from '../src/gen/kt/v1/face_analysis.js';
import { defaultServerConfig } from '../src/server/config.js';
import { encoded, startServeChild } from './serve-child.js';

const { values } = parseArgs({ options: { frames: { type: 'string', default: '4' }, rounds: { type: 'string', default: '2' } } });
const frames = Number(values.frames);
const mb = (b: number): string => `${(b / 1048576).toFixed(0)} MB`;

const png = await sharp({ create: { width: 7000, height: 7000, channels: 3, background: '#6b8e23' } })
  .png({ compressionLevel: 9 })
  .toBuffer();
const small = await sharp({ create: { width: 64, height: 64, channels: 3, background: '#808080' } })
  .jpeg()
  .toBuffer();
process.stderr.write(`frame: 7000x7000 PNG, ${(png.length / 1024).toFixed(0)} KiB; ${frames} at once, ${values.rounds} rounds\n`);

const rows: { budget: string; idle: number; peak: number; ms: number; answered: number }[] = [];
for (const budget of [0, defaultServerConfig.maxPixelsInFlight]) {
  const server = await startServeChild(
    small,
    { maxPixelsInFlight: budget, maxConcurrentInferences: frames, maxFramePixels: 50_000_000 },
    'emotion',
  );
  const client = new FaceAnalysisClient(server.address, credentials.createInsecure(), { 'grpc.max_send_message_length': 64 << 20 });
  try {
    const idle = await server.peakRssBytes();
    const start = performance.now();
    let answered = 0;
    for (let round = 0; round < Number(values.rounds); round++) {
      const calls = Array.from({ length: frames }, (_, i) =>
        new Promise<void>((done, fail) =>
          client.analyze(
            AnalyzeRequest.fromPartial({ frame: { image: encoded(png), sequence: i + 1 }, analysis: { tasks: [Task.TASK_EMOTION] } }),
            (err) => (err ? fail(err) : done()),
          ),
        ).then(() => (answered += 1)),
      );
      await Promise.all(calls);
    }
    rows.push({
      budget: budget === 0 ? 'none' : `${budget / 1e6} M px`,
      idle,
      peak: await server.peakRssBytes(),
      ms: performance.now() - start,
      answered,
    });
  } finally {
    client.close();
    await server.stop();
  }
}
process.stdout.write(
  `\n${'budget'.padStart(10)} ${'idle RSS'.padStart(9)} ${'peak RSS'.padStart(9)} ${'answered'.padStart(9)} ${'time'.padStart(8)}\n`,
);
for (const r of rows)
  process.stdout.write(
    `${r.budget.padStart(10)} ${mb(r.idle).padStart(9)} ${mb(r.peak).padStart(9)} ${String(r.answered).padStart(9)} ${`${(r.ms / 1000).toFixed(1)} s`.padStart(8)}\n`,
  );
const [none, budgeted] = rows;
if (none && budgeted)
  process.stdout.write(`peak RSS above idle, budget / none: ${((budgeted.peak - budgeted.idle) / (none.peak - none.idle)).toFixed(2)}x\n`);
