// Face tracks on a real video: ffmpeg pans and zooms a virtual camera over a collage of real faces (face-api demo photos
// and UTKFace from ../shared/data), one face walking against the pan, a bar hiding one face for four frames, H.264. The
// frames go over real gRPC with tracking on. Ground truth from the camera path: ID switches and fragmented tracks counted,
// one new and one end event per person on gRPC and on Mosquitto. A contact sheet with truth and track ids is written.
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { drawRect, drawText, SERIES_COLORS } from '../src/core/draw.js';
import { encodePng, type RgbImage } from '../src/core/image.js';
import type { TrackEventMessage } from '../src/contract/track-events.js';
import { Task } from '../src/gen/kt/v1/common.js';
import { TrackEventType, type FaceAnalysisClient, type StreamResponse } from '../src/gen/kt/v1/face_analysis.js';
import type { RunningServer } from '../src/server/server.js';
import { countTrackErrors, type LabelledFrame } from '../src/server/tracking/track-metrics.js';
import { liveTracks } from '../src/server/tracking/tracker.js';
import { json, type TopicRecorder } from './helpers/mqtt.js';
import { runStream, startMosquittoEventServer } from './helpers/server-fixture.js';
import { eventTrackIds, labelResponses, pasteImage, personIn, streamMessages, trackingConfig } from './helpers/track-sequence.js';
import { checkFfmpeg, makeVideo, panZoomScene, type VideoFrame, type VideoSpec } from './helpers/video-sequence.js';

const topicPrefix = `kt-video-${randomBytes(4).toString('hex')}`;
const nodeId = 'video-node';

let server: RunningServer;
let client: FaceAnalysisClient;
let recorder: TopicRecorder;
let spec: VideoSpec;
let frames: VideoFrame[];

beforeAll(async () => {
  await checkFfmpeg();
  ({ server, client, recorder } = await startMosquittoEventServer(['age'], topicPrefix, nodeId));
  spec = await panZoomScene();
  frames = (await makeVideo(spec)).frames;
}, 120_000);

afterAll(async () => {
  client?.close();
  await recorder?.end();
  await server?.close();
});

/** Frames in which each person is fully in view and not hidden (the ground truth's presence). */
function presentFrames(): Map<string, number[]> {
  const out = new Map<string, number[]>(spec.faces.map((t) => [t.name, []]));
  frames.forEach((f, n) => f.truth.forEach((t) => out.get(t.person)!.push(n)));
  return out;
}

describe('tracks on an ffmpeg pan/zoom video of real faces', () => {
  it('the video has people entering, leaving and hidden, each present in one run of frames', () => {
    const present = presentFrames();
    const gaps = (ns: number[]): number => ns.slice(1).filter((n, i) => n - ns[i]! > 1).length;
    // Entering (not present at first), leaving (not present at the end), the bar (one gap) and everyone seen.
    for (const [person, ns] of present) expect(ns.length, person).toBeGreaterThan(0);
    expect([...present.values()].filter((ns) => ns[0]! > 0).length).toBeGreaterThanOrEqual(4);
    expect([...present.values()].filter((ns) => ns[ns.length - 1]! < frames.length - 1).length).toBeGreaterThanOrEqual(4);
    expect([...present.values()].map(gaps)).toEqual(spec.faces.map((t) => (t.occluded ? 1 : 0)));
  });

  it('gives every person one track id: no ID switch, no fragment, one new and one end event each (gRPC and MQTT)', async () => {
    const stream = 'pan-zoom';
    const before = liveTracks();
    const messages = streamMessages(
      stream,
      [Task.TASK_DETECTION],
      trackingConfig(),
      frames.map((f) => f.image),
    );
    const { responses, error } = await runStream(client, messages);
    expect(error).toBeUndefined();
    const analysed = responses.filter((r) => r.result);
    expect(analysed).toHaveLength(frames.length);
    // A face counts as the person whose visible tile holds its centre (partly visible faces included).
    const labelled = labelResponses(responses, (n, box) => personIn(frames[n]!.visible, box));
    const counts = countTrackErrors(labelled);
    const found = foundShare(labelled);
    const unlabelled = labelled.flatMap((f) => f.faces).filter((x) => x.person === undefined).length;
    const picture = await writeContactSheet(responses);
    console.log(
      `tracks-video: ${frames.length} frames 640x360 H.264, counts ${JSON.stringify(counts)}, found/present ${JSON.stringify(found)}, ` +
        `faces on nobody ${unlabelled}, contact sheet ${picture}`,
    );

    // Detection: every person is found in most frames in which they are fully in view (H.264, 67-93 px faces).
    for (const [person, share] of Object.entries(found)) expect(share, person).toBeGreaterThanOrEqual(0.8);
    expect(unlabelled).toBe(0);
    expect(counts.idSwitches).toBe(0);
    expect(counts.fragmentedPeople).toBe(0);
    expect(counts.mergedTracks).toBe(0);

    // One new and one end event per person, for the person's track and no other.
    const personTracks = [...new Set(labelled.flatMap((f) => f.faces.map((x) => x.trackId)))].sort((a, b) => a - b);
    expect(personTracks).toHaveLength(Object.keys(counts.idsPerPerson).length);
    expect(eventTrackIds(responses, TrackEventType.TRACK_EVENT_TYPE_NEW)).toEqual(personTracks);
    expect(eventTrackIds(responses, TrackEventType.TRACK_EVENT_TYPE_END)).toEqual(personTracks);
    await waitUntil(() => liveTracks() === before);

    const topic = `${topicPrefix}/${nodeId}/${stream}/events`;
    const mqttEvents = (type: string): number[] =>
      recorder.messages
        .filter((m) => m.topic === topic && json<TrackEventMessage>(m).type === type)
        .map((m) => json<TrackEventMessage>(m).after.track_id)
        .sort((a, b) => a - b);
    await recorder.waitFor(() => mqttEvents('end').length === personTracks.length, 'one end event per person on MQTT', 10_000);
    expect(mqttEvents('new')).toEqual(personTracks);
    expect(mqttEvents('end')).toEqual(personTracks);
  }, 120_000);
});

/** Per person: the share of the frames in which they are present where a face was labelled with them. */
function foundShare(labelled: readonly LabelledFrame[]): Record<string, number> {
  return Object.fromEntries(
    [...presentFrames()].map(([person, ns]) => {
      const hits = ns.filter((n) => labelled[n]!.faces.some((x) => x.person === person)).length;
      return [person, Math.round((hits / ns.length) * 100) / 100];
    }),
  );
}

/**
 * Every fifth frame, 4 per row: the truth (thin, person's tile, name) and the answers (thick, track id). Written to
 * out/tracks-video/ with KT_TEST_PICTURES=1, else to the system's temporary folder; returns the path.
 */
async function writeContactSheet(responses: readonly StreamResponse[]): Promise<string> {
  const picked = frames.map((_, n) => n).filter((n) => n % 5 === 0);
  const { width, height } = spec.output;
  const columns = 4;
  const sheet: RgbImage = {
    data: new Uint8Array(columns * width * Math.ceil(picked.length / columns) * height * 3),
    width: columns * width,
    height: Math.ceil(picked.length / columns) * height,
  };
  const names = spec.faces.map((t) => t.name);
  picked.forEach((n, k) => {
    const tile: RgbImage = { ...frames[n]!.image, data: frames[n]!.image.data.slice() };
    for (const t of frames[n]!.visible) {
      const color = SERIES_COLORS[names.indexOf(t.person) % SERIES_COLORS.length]!;
      drawRect(tile, t.region, color, 1);
      drawText(tile, t.region.x + 3, t.region.y + t.region.height - 14, t.person, color, 2);
    }
    const faces = responses.find((r) => r.result?.sequence === n + 1)?.result?.faces ?? [];
    for (const f of faces) {
      const color = SERIES_COLORS[f.trackId % SERIES_COLORS.length]!;
      const box = { x: f.box!.xPx, y: f.box!.yPx, width: f.box!.widthPx, height: f.box!.heightPx };
      drawRect(tile, box, color, 3);
      drawText(tile, box.x + 3, box.y + 4, `T${f.trackId}`, [255, 255, 255], 2, color);
    }
    drawText(tile, 6, 6, `F${n}`, [255, 255, 255], 3);
    pasteImage(sheet, tile, { x: (k % columns) * width, y: Math.floor(k / columns) * height });
  });
  const dir = process.env['KT_TEST_PICTURES'] === '1' ? join('out', 'tracks-video') : join(tmpdir(), 'kt-tracks-video');
  await mkdir(dir, { recursive: true });
  const path = join(dir, 'contact-sheet.png');
  await writeFile(path, await encodePng(sheet));
  return path;
}

async function waitUntil(done: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}
