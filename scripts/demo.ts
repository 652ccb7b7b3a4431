// `npm run demo`: streams face-api's six demo photos through the SDK to a running server, prints the faces and the MQTT
// events the server published for them, and writes annotated PNGs to out/demo/.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { connect } from 'mqtt';
import type { MqttClient } from 'mqtt';
import { decodeImage, drawPoint, drawRect, drawText, encodePng } from '../src/core/image.js';
import type { Color } from '../src/core/image.js';
import { packageInfo } from '../src/models/build.js';
import { FaceAnalysisClient } from '../src/sdk/index.js';
import type { FaceResult, StreamResult, TaskName } from '../src/sdk/index.js';

const { values } = parseArgs({
  options: {
    address: { type: 'string', default: process.env['KT_ADDRESS'] ?? '127.0.0.1:50051' },
    mqtt: { type: 'string', default: process.env['KT_MQTT'] ?? 'mqtt://127.0.0.1:1883' },
    out: { type: 'string', default: 'out/demo' },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  process.stdout.write('npm run demo -- [--address HOST:PORT (KT_ADDRESS, default 127.0.0.1:50051)] [--mqtt URL (default mqtt://127.0.0.1:1883)] [--out DIR]\n');
  process.exit(0);
}

const address = values.address;
const mqttUrl = values.mqtt;
const outDir = values.out;
const tasks: TaskName[] = ['age', 'gender', 'emotion', 'landmarks', 'identity'];
const streamId = `demo-${process.pid}`;
const photoDir = join(packageInfo('@vladmandic/face-api').dir, 'demo');
const photos = await Promise.all([1, 2, 3, 4, 5, 6].map(async (n) => ({ n, bytes: await readFile(join(photoDir, `sample${n}.jpg`)) })));

// ---------------------------------------------------------------- server
const client = new FaceAnalysisClient(address, { deadlineMs: 60_000 });
try {
  await client.waitUntilServing(5000);
} catch (e) {
  process.stderr.write(
    `demo: no kt server answers at ${address} (${e instanceof Error ? e.message : String(e)}).\n` +
      `      Start one in another terminal with \`npm start\` (= \`node bin/kt.js serve\`), wait for "health SERVING", then run \`npm run demo\` again.\n` +
      `      Another address: \`npm run demo -- --address HOST:PORT\` or KT_ADDRESS=HOST:PORT.\n`,
  );
  client.close();
  process.exit(1);
}

// ---------------------------------------------------------------- MQTT (subscribe before sending)
interface FacesMessage {
  node: string;
  stream: string;
  sequence: number;
  latencyMs?: number;
  faces: { box: { x: number; y: number; width: number; height: number }; age?: number; gender?: { label: string }; emotion?: { label: string } }[];
}
const events: { topic: string; message: FacesMessage }[] = [];
let mqtt: MqttClient | undefined;
try {
  mqtt = await new Promise<MqttClient>((resolve, reject) => {
    const c = connect(mqttUrl, { clientId: `kt-demo-${process.pid}`, reconnectPeriod: 0, connectTimeout: 3000 });
    c.once('connect', () => resolve(c));
    c.once('error', (e) => {
      c.end(true);
      reject(e);
    });
  });
  mqtt.on('message', (topic, payload) => {
    try {
      events.push({ topic, message: JSON.parse(payload.toString('utf8')) as FacesMessage });
    } catch {
      // not a faces event
    }
  });
  await mqtt.subscribeAsync('kt/+/+/faces', { qos: 1 });
  process.stdout.write(`subscribed to kt/+/+/faces on ${mqttUrl}\n`);
} catch (e) {
  process.stdout.write(`MQTT: no broker at ${mqttUrl} (${e instanceof Error ? e.message : String(e)}); continuing without events (use --mqtt URL)\n`);
  mqtt = undefined;
}

// ---------------------------------------------------------------- analyse
const fmt = (v: number, d = 0): string => v.toFixed(d);
function faceLine(i: number, f: FaceResult): string {
  const b = f.box;
  const parts = [
    `face ${i + 1}: box ${fmt(b.x)},${fmt(b.y)} ${fmt(b.width)}x${fmt(b.height)} score ${fmt(f.score, 2)}`,
    `age ${f.age ? fmt(f.age.years, 1) : '-'}`,
    `gender ${f.gender ? `${f.gender.label} ${fmt(f.gender.confidence, 2)}` : '-'}`,
    `emotion ${f.emotion ? `${f.emotion.label} ${fmt(f.emotion.confidence, 2)}` : '-'}`,
    `landmarks ${f.landmarks?.points.length ?? 0}${f.landmarks ? ` (${f.landmarks.scheme})` : ''}`,
    `identity ${f.identity ? (f.identity.known ? `${f.identity.name} (${fmt(f.identity.similarity, 2)})` : `unknown (nearest ${fmt(f.identity.similarity, 2)})`) : '-'}`,
  ];
  return `  ${parts.join(', ')}`;
}

const palette: Color[] = [
  [46, 204, 113],
  [52, 152, 219],
  [241, 196, 15],
  [231, 76, 60],
  [155, 89, 182],
  [26, 188, 156],
];

async function annotate(bytes: Uint8Array, result: StreamResult, path: string): Promise<void> {
  const img = await decodeImage(bytes);
  const scale = Math.max(1, Math.round(Math.min(img.width, img.height) / 400));
  result.faces.forEach((f, i) => {
    const color = palette[i % palette.length]!;
    drawRect(img, f.box, color, 2 * scale);
    for (const p of f.landmarks?.points ?? []) drawPoint(img, p.x, p.y, [0, 255, 255], scale);
    for (const p of f.keypoints) drawPoint(img, p.x, p.y, [255, 0, 0], 2 * scale);
    const label = [`${i + 1}`, f.age ? `${Math.round(f.age.years)}Y` : '', f.gender?.label ?? '', f.emotion?.label ?? '', f.identity?.known ? f.identity.name : ''].filter(Boolean).join(' ');
    const textScale = Math.max(2, scale + 1);
    drawText(img, f.box.x, Math.max(textScale, f.box.y - 8 * textScale), label, color, textScale);
  });
  await writeFile(path, await encodePng(img));
}

await mkdir(outDir, { recursive: true });
process.stdout.write(`sending ${photos.length} photos to ${address} on stream ${streamId} (tasks ${tasks.join(', ')})\n`);
const bySequence = new Map<number, StreamResult>();
const started = performance.now();
const stream = client.stream(
  photos.map((p) => ({ image: p.bytes, sequence: p.n })),
  { streamId, tasks, dropPolicy: 'block', maxInFlight: 2 },
);
for await (const result of stream) {
  const photo = photos.find((p) => p.n === result.sequence)!;
  bySequence.set(result.sequence, result);
  process.stdout.write(`sample${photo.n}.jpg: ${result.frameWidthPx}x${result.frameHeightPx}, ${result.faces.length} face(s), ${fmt(result.timings.totalMs)} ms on the server\n`);
  if (result.error) process.stdout.write(`  error ${result.error.code}: ${result.error.message}\n`);
  result.faces.forEach((f, i) => process.stdout.write(`${faceLine(i, f)}\n`));
  const png = join(outDir, `sample${photo.n}.png`);
  await annotate(photo.bytes, result, png);
  process.stdout.write(`  -> ${png}\n`);
}
process.stdout.write(`analysed ${bySequence.size} photos in ${fmt(performance.now() - started)} ms (counters ${JSON.stringify(stream.counters)})\n`);

// ---------------------------------------------------------------- MQTT events
if (mqtt) {
  const expected = [...bySequence.values()].filter((r) => r.faces.length > 0).length;
  const mine = (): { topic: string; message: FacesMessage }[] => events.filter((e) => e.message.stream === streamId);
  const deadline = Date.now() + 3000;
  while (mine().length < expected && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  const received = mine();
  process.stdout.write(`MQTT: ${received.length} faces event(s) for stream ${streamId} (of ${events.length} on kt/+/+/faces)\n`);
  for (const p of photos) {
    const result = bySequence.get(p.n);
    const forPhoto = received.filter((e) => e.message.sequence === p.n);
    const faces = forPhoto[0]?.message.faces.length ?? 0;
    const match = result !== undefined && forPhoto.length === (result.faces.length > 0 ? 1 : 0) && (forPhoto.length === 0 || faces === result.faces.length);
    const first = forPhoto[0];
    process.stdout.write(
      `  sample${p.n}.jpg: ${forPhoto.length} event(s)${first ? ` on ${first.topic}, ${faces} face(s), latency ${first.message.latencyMs ?? '-'} ms` : ''} -> ${match ? 'matches the gRPC result' : `MISMATCH (gRPC had ${result?.faces.length ?? 0} faces)`}\n`,
    );
  }
  await mqtt.endAsync();
}
client.close();
