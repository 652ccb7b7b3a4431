// Streams a folder of frames, or a camera's MJPEG on stdin (ffmpeg `-f mjpeg -`), through the client SDK to a kt server.
// A starting point to copy: open a stream, feed it frames, read one result per analysed frame.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { faceLine } from '../src/face-report.js';
import { FaceAnalysisClient, type FrameInput, type TaskName } from '../src/sdk/index.js';

const usage = `npx tsx scripts/stream-frames.ts [options] DIR | -
  DIR: every .jpg/.jpeg/.png/.webp in it, in name order; every frame is analysed (drop policy BLOCK).
  - : JPEG frames back to back on stdin (MJPEG, e.g. ffmpeg -f v4l2 -i /dev/video0 -vf fps=5 -f mjpeg -);
      a live camera, so the server keeps only the newest waiting frame (LATEST_WINS).
  --address HOST:PORT   the kt server (default $KT_ADDRESS or 127.0.0.1:50051)
  --tasks a,b,...       face tasks (default age,gender,emotion)
  --stream-id ID        stream name in results and MQTT topics (default frames)
`;

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    address: { type: 'string', default: process.env['KT_ADDRESS'] ?? '127.0.0.1:50051' },
    tasks: { type: 'string', default: 'age,gender,emotion' },
    'stream-id': { type: 'string', default: 'frames' },
    help: { type: 'boolean', default: false },
  },
});
if (values.help || positionals.length !== 1) {
  process.stdout.write(usage);
  process.exit(values.help ? 0 : 2);
}
const source = positionals[0]!;

/** The image files of a folder in name order, read one at a time as the stream asks for them. */
async function* folderFrames(dir: string): AsyncGenerator<FrameInput & { name: string }> {
  const names = (await readdir(dir)).filter((n) => /\.(jpe?g|png|webp)$/i.test(n)).sort();
  let sequence = 0;
  for (const name of names) yield { image: await readFile(join(dir, name)), sequence: ++sequence, name };
}

/** Where the JPEG starting at `start` (FF D8) ends, just after its EOI marker; -1 while it is incomplete. */
function jpegEnd(buf: Buffer, start: number): number {
  let i = start + 2;
  for (;;) {
    if (i + 2 > buf.length) return -1;
    if (buf[i] !== 0xff) throw new Error(`stdin is not MJPEG: no marker at byte ${i}`);
    const marker = buf[i + 1]!;
    if (marker === 0xd9) return i + 2;
    // Fill bytes, restart markers and TEM stand alone; every other marker carries a 16-bit length.
    if (marker === 0xff || (marker >= 0xd0 && marker <= 0xd7) || marker === 0x01) {
      i += marker === 0xff ? 1 : 2;
      continue;
    }
    if (i + 4 > buf.length) return -1;
    i += 2 + buf.readUInt16BE(i + 2);
    if (marker !== 0xda) continue;
    // Entropy-coded data after SOS ends at the first FF that is neither a stuffed FF 00 nor a restart marker.
    while (i + 1 < buf.length && !(buf[i] === 0xff && buf[i + 1] !== 0x00 && !(buf[i + 1]! >= 0xd0 && buf[i + 1]! <= 0xd7))) i++;
    if (i + 1 >= buf.length) return -1;
  }
}

/** JPEG frames from a byte stream that carries them back to back (what ffmpeg's mjpeg muxer writes). */
async function* mjpegFrames(input: AsyncIterable<Buffer>): AsyncGenerator<FrameInput & { name: string }> {
  let pending = Buffer.alloc(0);
  let sequence = 0;
  for await (const chunk of input) {
    pending = Buffer.concat([pending, chunk]);
    for (;;) {
      const start = pending.indexOf(Buffer.from([0xff, 0xd8]));
      if (start < 0) break;
      const end = jpegEnd(pending, start);
      if (end < 0) {
        pending = pending.subarray(start);
        break;
      }
      yield {
        image: Buffer.from(pending.subarray(start, end)),
        sequence: ++sequence,
        captureTimeUnixMs: Date.now(),
        name: `frame ${sequence}`,
      };
      pending = pending.subarray(end);
    }
  }
}

const live = source === '-';
const frames = live ? mjpegFrames(process.stdin) : folderFrames(source);
const names = new Map<number, string>();
async function* named(): AsyncGenerator<FrameInput> {
  for await (const frame of frames) {
    names.set(frame.sequence!, frame.name);
    yield frame;
  }
}

const client = new FaceAnalysisClient(values.address, { deadlineMs: 60_000 });
await client.waitUntilServing(10_000);
const tasks = values.tasks.split(',') as TaskName[];
const stream = client.stream(named(), { streamId: values['stream-id'], tasks, dropPolicy: live ? 'LATEST_WINS' : 'BLOCK', maxInFlight: 2 });
for await (const result of stream) {
  process.stdout.write(
    `${names.get(result.sequence)}: ${result.faces.length} face(s), ${result.timings.totalMs.toFixed(0)} ms${result.error ? `, error ${result.error.message}` : ''}\n`,
  );
  result.faces.forEach((face, i) => process.stdout.write(`  ${faceLine(i, face)}\n`));
}
process.stdout.write(`done: ${JSON.stringify(stream.counters)}\n`);
client.close();
