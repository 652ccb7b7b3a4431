// `npm run demo`: streams face-api's six demo photos through the SDK to a running server, prints the faces and the MQTT
// events the server published for them, and writes annotated PNGs to out/demo/.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { connect } from 'mqtt';
import type { MqttClient } from 'mqtt';
import { annotatedPng, faceLine } from '../src/face-report.js';
import { packageInfo } from '../src/models/build.js';
import { FaceAnalysisClient } from '../src/sdk/index.js';
import type { StreamResult, TaskName } from '../src/sdk/index.js';

const { values } = parseArgs({
  options: {
    address: { type: 'string', default: process.env['KT_ADDRESS'] ?? '127.0.0.1:50051' },
    mqtt: { type: 'string', default: process.env['KT_MQTT'] ?? 'mqtt://127.0.0.1:1883' },
    out: { type: 'string', default: 'out/demo' },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  process.stdout.write(
    'npm run demo -- [--address HOST:PORT (KT_ADDRESS, default 127.0.0.1:50051)] [--mqtt URL (default mqtt://127.0.0.1:1883)] [--out DIR]\n',
  );
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
// A server that wants a token (tokenFile / KT_TOKENS) gets $KT_TOKEN.
const client = new FaceAnalysisClient(address, {
  deadlineMs: 60_000,
  ...(process.env['KT_TOKEN'] ? { token: process.env['KT_TOKEN'] } : {}),
});
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
  faces: {
    box: { x: number; y: number; width: number; height: number };
    age?: number;
    gender?: { label: string };
    emotion?: { label: string };
  }[];
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
  process.stdout.write(
    `MQTT: no broker at ${mqttUrl} (${e instanceof Error ? e.message : String(e)}); continuing without events (use --mqtt URL)\n`,
  );
  mqtt = undefined;
}

// ---------------------------------------------------------------- analyse
const fmt = (v: number, d = 0): string => v.toFixed(d);

await mkdir(outDir, { recursive: true });
process.stdout.write(`sending ${photos.length} photos to ${address} on stream ${streamId} (tasks ${tasks.join(', ')})\n`);
const bySequence = new Map<number, StreamResult>();
const started = performance.now();
const stream = client.stream(
  photos.map((p) => ({ image: p.bytes, sequence: p.n })),
  { streamId, tasks, dropPolicy: 'BLOCK', maxInFlight: 2 },
);
for await (const result of stream) {
  const photo = photos.find((p) => p.n === result.sequence)!;
  bySequence.set(result.sequence, result);
  process.stdout.write(
    `sample${photo.n}.jpg: ${result.frameWidthPx}x${result.frameHeightPx}, ${result.faces.length} face(s), ${fmt(result.timings.totalMs)} ms on the server\n`,
  );
  if (result.error) process.stdout.write(`  error ${result.error.code}: ${result.error.message}\n`);
  result.faces.forEach((f, i) => process.stdout.write(`  ${faceLine(i, f)}\n`));
  const png = join(outDir, `sample${photo.n}.png`);
  await writeFile(png, await annotatedPng(photo.bytes, result));
  process.stdout.write(`  -> ${png}\n`);
}
process.stdout.write(
  `analysed ${bySequence.size} photos in ${fmt(performance.now() - started)} ms (counters ${JSON.stringify(stream.counters)})\n`,
);

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
    const match =
      result !== undefined &&
      forPhoto.length === (result.faces.length > 0 ? 1 : 0) &&
      (forPhoto.length === 0 || faces === result.faces.length);
    const first = forPhoto[0];
    process.stdout.write(
      `  sample${p.n}.jpg: ${forPhoto.length} event(s)${first ? ` on ${first.topic}, ${faces} face(s), latency ${first.message.latencyMs ?? '-'} ms` : ''} -> ${match ? 'matches the gRPC result' : `MISMATCH (gRPC had ${result?.faces.length ?? 0} faces)`}\n`,
    );
  }
  await mqtt.endAsync();
}
client.close();
