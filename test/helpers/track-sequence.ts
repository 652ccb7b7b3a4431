// Synthetic camera sequences made from real faces: crops of face-api's demo photos (or any face images) pasted onto
// a plain canvas, moving along straight paths, entering and leaving, hidden by a bar for a few frames. The ground
// truth (who is where in each frame) comes from the construction.
import { Image, PixelFormat, type Task } from '../../src/gen/kt/v1/common.js';
import {
  DropPolicy,
  FacesTopicMode,
  TrackingMode,
  type StreamRequest,
  type StreamResponse,
  type TrackEventType,
  type TrackingConfig,
} from '../../src/gen/kt/v1/face_analysis.js';
import { resizeRgb, type RgbImage } from '../../src/core/image.js';
import type { LabelledFrame } from '../../src/server/tracking/track-metrics.js';
import { demoFaces } from './faces.js';

export interface Rect {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** One person: a square face image moving from `from` at `velocity` px per frame while `enter <= f < leave`. */
export interface SequencePerson {
  name: string;
  face: RgbImage;
  enter: number;
  leave: number;
  from: { x: number; y: number };
  velocity: { x: number; y: number };
  /** Frames [start, end) in which a grey bar covers the face. */
  occluded?: [number, number];
}

export interface SequenceFrame {
  image: RgbImage;
  /** People fully visible (inside the canvas, not occluded) with the region their face image covers. */
  truth: { person: string; region: Rect }[];
}

/** A square crop around face `index` of demo photo `photo` (margin 0.5 of the box each side), resized to `size`. */
export async function demoFaceImage(photo: number, index: number, size: number): Promise<RgbImage> {
  const { frame, faces } = await demoFaces(photo);
  const f = faces[index];
  if (!f) throw new Error(`demo photo ${photo} has no face ${index}`);
  const side = Math.round(Math.max(f.box.width, f.box.height) * 2);
  const x0 = Math.max(0, Math.round(f.box.x + f.box.width / 2 - side / 2));
  const y0 = Math.max(0, Math.round(f.box.y + f.box.height / 2 - side / 2));
  return resizeRgb(cropPixels(frame, { x: x0, y: y0, width: side, height: side }), size, size);
}

/** The pixels of `r` (clipped to the image). */
export function cropPixels(image: RgbImage, r: Rect): RgbImage {
  const x0 = Math.max(0, r.x);
  const y0 = Math.max(0, r.y);
  const width = Math.min(image.width, r.x + r.width) - x0;
  const height = Math.min(image.height, r.y + r.height) - y0;
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    const from = ((y0 + y) * image.width + x0) * 3;
    data.set(image.data.subarray(from, from + width * 3), y * width * 3);
  }
  return { data, width, height };
}

/** Copies `image` onto `canvas` with its top-left corner at `at` (clipped to the canvas). */
export function pasteImage(canvas: RgbImage, image: RgbImage, at: { x: number; y: number }): void {
  for (let y = 0; y < image.height; y++) {
    const cy = at.y + y;
    if (cy < 0 || cy >= canvas.height) continue;
    for (let x = 0; x < image.width; x++) {
      const cx = at.x + x;
      if (cx < 0 || cx >= canvas.width) continue;
      const to = (cy * canvas.width + cx) * 3;
      const from = (y * image.width + x) * 3;
      canvas.data[to] = image.data[from]!;
      canvas.data[to + 1] = image.data[from + 1]!;
      canvas.data[to + 2] = image.data[from + 2]!;
    }
  }
}

function fill(canvas: RgbImage, r: Rect, grey: number): void {
  for (let y = Math.max(0, r.y); y < Math.min(canvas.height, r.y + r.height); y++)
    canvas.data.fill(grey, (y * canvas.width + Math.max(0, r.x)) * 3, (y * canvas.width + Math.min(canvas.width, r.x + r.width)) * 3);
}

type Walker = 'a' | 'b' | 'c';

/**
 * Three real faces (demo photos 1, 3 and 6) walking across a 640 x 560 canvas for 40 frames: a to the right and b to
 * the left from the first frame to the last, c to the left from frame 10 to 24 (its track ends inside the stream).
 * `changes` adjusts a person (another path, an occlusion, an earlier exit).
 */
export async function threeWalkers(
  changes: Partial<Record<Walker, Partial<Omit<SequencePerson, 'name' | 'face'>>>> = {},
): Promise<{ people: SequencePerson[]; frames: SequenceFrame[] }> {
  const [a, b, c] = await Promise.all([demoFaceImage(1, 0, 128), demoFaceImage(3, 0, 128), demoFaceImage(6, 0, 128)]);
  const people: SequencePerson[] = [
    { name: 'a', face: a, enter: 0, leave: 40, from: { x: 20, y: 30 }, velocity: { x: 8, y: 0 }, ...changes.a },
    { name: 'b', face: b, enter: 0, leave: 40, from: { x: 480, y: 210 }, velocity: { x: -6, y: 0 }, ...changes.b },
    { name: 'c', face: c, enter: 10, leave: 24, from: { x: 480, y: 400 }, velocity: { x: -10, y: 0 }, ...changes.c },
  ];
  return { people, frames: renderSequence(people, 40, 640, 560) };
}

/** Renders `frames` frames of `width` x `height`. */
export function renderSequence(people: readonly SequencePerson[], frames: number, width: number, height: number): SequenceFrame[] {
  const out: SequenceFrame[] = [];
  for (let f = 0; f < frames; f++) {
    const image: RgbImage = { data: new Uint8Array(width * height * 3).fill(96), width, height };
    const truth: SequenceFrame['truth'] = [];
    for (const p of people) {
      if (f < p.enter || f >= p.leave) continue;
      const t = f - p.enter;
      const at = { x: Math.round(p.from.x + p.velocity.x * t), y: Math.round(p.from.y + p.velocity.y * t) };
      const region = { ...at, width: p.face.width, height: p.face.height };
      pasteImage(image, p.face, at);
      const hidden = p.occluded !== undefined && f >= p.occluded[0] && f < p.occluded[1];
      if (hidden) fill(image, { x: region.x - 4, y: region.y - 4, width: region.width + 8, height: region.height + 8 }, 60);
      const inside = region.x >= 0 && region.y >= 0 && region.x + region.width <= width && region.y + region.height <= height;
      if (inside && !hidden) truth.push({ person: p.name, region });
    }
    out.push({ image, truth });
  }
  return out;
}

/** The person whose face region contains the centre of `box`; undefined when none (a partly visible face). */
export function personAt(frame: SequenceFrame, box: Rect): string | undefined {
  return personIn(frame.truth, box);
}

/** The person of the first region that contains the centre of `box`. */
export function personIn(regions: readonly { person: string; region: Rect }[], box: Rect): string | undefined {
  const cx = box.x + box.width / 2;
  const cy = box.y + box.height / 2;
  return regions.find((t) => cx >= t.region.x && cx < t.region.x + t.region.width && cy >= t.region.y && cy < t.region.y + t.region.height)
    ?.person;
}

/** Tracking ON with the given settings (tests pass short lifetimes so that tracks end inside a short sequence). */
export function trackingConfig(extra: Partial<TrackingConfig> = {}): TrackingConfig {
  return {
    mode: TrackingMode.TRACKING_MODE_ON,
    maxAgeFrames: 5,
    minHits: 2,
    reuse: undefined,
    facesTopic: FacesTopicMode.FACES_TOPIC_MODE_UNSPECIFIED,
    ...extra,
  };
}

/** A stream's messages: its config (blocking queue, nothing dropped), then one raw frame per image, 10 frames/s. */
export function streamMessages(streamId: string, tasks: Task[], tracking: TrackingConfig, images: readonly RgbImage[]): StreamRequest[] {
  return [
    {
      request: {
        $case: 'config',
        value: {
          streamId,
          analysis: { tasks, modelOverrides: [], minFaceSizePx: 0, maxFaces: 0, minScore: 0, identityThreshold: 0 },
          dropPolicy: DropPolicy.DROP_POLICY_BLOCK,
          queueDepth: 4,
          tracking,
        },
      },
    },
    ...images.map((image, i): StreamRequest => ({
      request: { $case: 'frame', value: { image: rawImage(image), sequence: i + 1, captureTimeUnixMs: 1_700_000_000_000 + i * 100 } },
    })),
  ];
}

/** Each answered frame's faces with the person `personOf` finds at the face's box (frame = sequence - 1). */
export function labelResponses(
  responses: readonly StreamResponse[],
  personOf: (frame: number, box: Rect) => string | undefined,
): LabelledFrame[] {
  return responses.flatMap((r) =>
    r.result
      ? [
          {
            faces: r.result.faces.map((f) => ({
              person: personOf(r.result!.sequence - 1, { x: f.box!.xPx, y: f.box!.yPx, width: f.box!.widthPx, height: f.box!.heightPx }),
              trackId: f.trackId,
            })),
          },
        ]
      : [],
  );
}

/** The track ids of the stream's events of one type, sorted. */
export function eventTrackIds(responses: readonly StreamResponse[], type: TrackEventType): number[] {
  return responses
    .flatMap((r) => r.trackEvents)
    .filter((e) => e.type === type)
    .map((e) => e.trackId)
    .sort((a, b) => a - b);
}

/** A frame as a raw RGB8 wire image (no encode/decode cost). */
export function rawImage(image: RgbImage): Image {
  return Image.fromPartial({
    source: {
      $case: 'raw',
      value: { data: Buffer.from(image.data), widthPx: image.width, heightPx: image.height, pixelFormat: PixelFormat.PIXEL_FORMAT_RGB8 },
    },
  });
}
