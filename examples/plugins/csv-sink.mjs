// @ts-check
// A third-party SINK plugin written only against the public kt-edge-face-sdk package: one CSV line per face (camera,
// frame, box, age, gender, emotion, identity), plus a line per camera state change; flushed on stop.
import { createWriteStream, existsSync, statSync } from 'node:fs';
import { once } from 'node:events';
import { Type, definePlugin } from 'kt-edge-face-sdk';

/**
 * @typedef {object} CsvOptions
 * @property {string} path      The CSV file (appended to; the header is written when it is new). Required.
 * @property {number} minScore  Faces below this detector score are left out. Default 0.
 */

const header = 'camera,sequence,capture_time_ms,x,y,width,height,score,age,gender,emotion,person\n';

/** @param {unknown} v */
const csv = (v) => {
  const text = v === undefined || v === null ? '' : String(v);
  return /[",\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
};

export const csvSink = definePlugin({
  kind: 'sink',
  name: 'csv-faces',
  description: 'writes one CSV line per face',
  schema: Type.Object(
    {
      path: Type.String({ minLength: 1, default: '', description: 'The CSV file (appended to). Required.' }),
      minScore: Type.Number({ minimum: 0, maximum: 1, default: 0, description: 'Leave out faces below this score. Default 0.' }),
    },
    { additionalProperties: false },
  ),
  create({ options }) {
    const o = /** @type {CsvOptions} */ (options);
    /** @type {import('node:fs').WriteStream | undefined} */
    let out;
    let faces = 0;
    let events = 0;
    /** @param {string} text */
    const write = (text) => {
      out ??= createWriteStream(o.path, { flags: 'a' });
      out.write(text);
    };
    return {
      onStart() {
        if (!existsSync(o.path) || statSync(o.path).size === 0) write(header);
      },
      onResult(result, ctx) {
        for (const f of result.faces) {
          if (f.score < o.minScore) continue;
          const b = f.box;
          const box = [b.x, b.y, b.width, b.height].map(Math.round);
          /** @type {unknown[]} */
          const cells = [ctx.streamId, result.sequence, result.captureTimeUnixMs, ...box, f.score.toFixed(3)];
          cells.push(f.age?.years.toFixed(1), f.gender?.label, f.emotion?.label, f.identity?.name);
          write(`${cells.map(csv).join(',')}\n`);
          faces += 1;
        }
      },
      onEvent(event) {
        events += 1;
        write(`# ${event.cameraId} ${event.state}${event.reason ? `: ${event.reason}` : ''}\n`);
      },
      async onStop() {
        const stream = out;
        out = undefined;
        if (!stream) return;
        stream.end();
        await once(stream, 'finish');
      },
      health: () => ({ state: 'online', counters: { faces, events } }),
    };
  },
});
