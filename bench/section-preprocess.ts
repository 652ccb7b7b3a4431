// Bench section "preprocess": the alternatives issue 12 chose between, on the demo photos: JPEG decodes (full, and
// shrink-on-load to the detector's size and to larger sizes) and face crops for faceres (224 px, the largest crops)
// by the JS resampler + normalize (before), the one-pass JS kernel, and libvips' native crop + resize + normalize.
import { resolve } from 'node:path';
import { cropResizeRgb, decodeImage, decodeJpegScaled, probeImage, resizeRgb, type RgbImage } from '../src/core/image.js';
import type { InputSpec } from '../src/models/manifest.js';
import { resolveModel } from '../src/models/repository.js';
import { detectFaces, loadModel } from '../src/models/runner.js';
import { cropsToTensor } from '../src/models/processing/crop-kernel.js';
import { cropFace, cropRect, normalize, type DetectedFace } from '../src/models/processing/index.js';
import { resolveServerConfig } from '../src/server/config.js';
import { measureLoop } from './measure.js';
import type { BenchContext, BenchRow, BenchSection } from './sections.js';

type Frames = { image: RgbImage; faces: DetectedFace[]; width: number; height: number }[];
type Mode = { key: string; label: string; note: string; step: (i: number) => Promise<number> };

/** Whole-frame decodes: before (full + resize) and shrink-on-load to the detector's size and larger. */
function decodeModes(ctx: BenchContext, frames: Frames): Mode[] {
  const bytes = (i: number): Buffer => ctx.photos[i % ctx.photos.length]!.bytes;
  const frame = (i: number) => frames[i % frames.length]!;
  /** Width x height of the frame shrunk by `s` (the detector's letterbox for s = side / 256). */
  const shrunk = (i: number, s: number): [number, number] => [Math.round(frame(i).width / s), Math.round(frame(i).height / s)];
  const toDetector = (i: number): [number, number] => shrunk(i, Math.max(frame(i).width, frame(i).height) / 256);
  return [
    {
      key: 'd0',
      label: '(d0) full decode + resize to 256',
      note: 'before: decodeImage, then resizeRgb to the letterbox size',
      step: async (i) => (await resizeRgb(await decodeImage(bytes(i), { referenceDecode: true }), ...toDetector(i)), 0),
    },
    {
      key: 'd1r',
      label: '(d1r) full decode as before',
      note: 'decodeImage with referenceDecode: random access, embedded sRGB profiles converted to sRGB',
      step: async (i) => (await decodeImage(bytes(i), { referenceDecode: true }), 0),
    },
    {
      key: 'd1',
      label: '(d1) full decode',
      note: 'decodeImage: sequential read, sRGB-tagged pixels as stored (what crops of ~200 px faces need)',
      step: async (i) => (await decodeImage(bytes(i)), 0),
    },
    {
      key: 'd2',
      label: '(d2) shrink-on-load to 256',
      note: 'probeImage + decodeJpegScaled to the detector letterbox (DCT 1/4 + linear)',
      step: async (i) => (await decodeJpegScaled(bytes(i), await probeImage(bytes(i)), ...toDetector(i), 5e7), 0),
    },
    {
      key: 'd3',
      label: '(d3) shrink-on-load by 3',
      note: 'decodeJpegScaled to 1/3 (DCT 1/2 + linear 1.5)',
      step: async (i) => (await decodeJpegScaled(bytes(i), await probeImage(bytes(i)), ...shrunk(i, 3), 5e7), 0),
    },
    {
      key: 'd5',
      label: '(d5) shrink-on-load by 5',
      note: 'decodeJpegScaled to 1/5 (DCT 1/4 + linear 1.25)',
      step: async (i) => (await decodeJpegScaled(bytes(i), await probeImage(bytes(i)), ...shrunk(i, 5), 5e7), 0),
    },
  ];
}

/** faceres crops of every face of a frame by the three crop implementations. */
function cropModes(frames: Frames, faceres: InputSpec): Mode[] {
  const frame = (i: number) => frames[i % frames.length]!;
  const regions = (i: number) => frame(i).faces.map((f) => cropRect(f.box, faceres, frame(i).image, 'clamp'));
  const pixels = (i: number) =>
    regions(i).map((r) => {
      const [left, top] = [Math.round(r.x), Math.round(r.y)];
      return {
        left,
        top,
        width: Math.min(Math.round(r.width), frame(i).width - left),
        height: Math.min(Math.round(r.height), frame(i).height - top),
      };
    });
  return [
    {
      key: 'k0',
      label: '(k0) faceres crops, JS resampler',
      note: 'before: cropFace per face + normalize',
      step: async (i) => (
        normalize(
          frame(i).faces.map((f) => cropFace(frame(i).image, f.box, faceres).image),
          faceres,
        ),
        frame(i).faces.length
      ),
    },
    {
      key: 'k1',
      label: '(k1) faceres crops, one-pass kernel',
      note: 'cropsToTensor (crop + resize + normalise in one JS pass)',
      step: async (i) => {
        cropsToTensor(
          frame(i).image,
          regions(i).map((region) => ({ kind: 'region', region })),
          faceres.size,
          faceres,
        );
        return frame(i).faces.length;
      },
    },
    {
      key: 'k2',
      label: '(k2) faceres crops, native',
      note: 'cropResizeRgb (libvips extract + linear resize, thread pool) + normalize',
      step: async (i) => {
        const crops = await Promise.all(pixels(i).map((p) => cropResizeRgb(frame(i).image, p, faceres.size, faceres.size)));
        normalize(crops, faceres);
        return frame(i).faces.length;
      },
    },
  ];
}

export const preprocessSection: BenchSection = {
  name: 'preprocess',
  description: 'JPEG decode with and without shrink-on-load; faceres crops: JS resampler vs one-pass kernel vs native',
  async run(ctx: BenchContext) {
    const config = resolveServerConfig({ mqttEnabled: false, galleryPath: ':memory:', watchRepository: false, repositoryRescanMs: 0 });
    const repo = resolve(config.modelRepository);
    const detector = await loadModel(await resolveModel(config.detectorModel, undefined, repo));
    const faceres = (await loadModel(await resolveModel('faceres', undefined, repo))).manifest.input;
    const frames: Frames = [];
    for (const photo of ctx.photos) {
      const image = await decodeImage(photo.bytes);
      frames.push({ image, faces: await detectFaces(detector, image), width: image.width, height: image.height });
    }
    await detector.session.release();
    const rows: BenchRow[] = [];
    for (const mode of [...decodeModes(ctx, frames), ...cropModes(frames, faceres)])
      rows.push({
        ...(await measureLoop(mode.label, ctx.measure, mode.step)),
        key: mode.key,
        note: mode.note,
        rssAfterBytes: process.memoryUsage().rss,
      });
    return {
      title: `Pre-processing alternatives on the ${ctx.photos.length} demo photos (frames/s = operations per second)`,
      rows,
      ratios: [
        { label: '(d1)/(d1r) full decode vs before', numerator: 'd1', denominator: 'd1r' },
        { label: '(d2)/(d0) detector decode', numerator: 'd2', denominator: 'd0' },
        { label: '(d2)/(d1) detector decode vs full', numerator: 'd2', denominator: 'd1' },
        { label: '(d3)/(d1) shrink 3 vs full', numerator: 'd3', denominator: 'd1' },
        { label: '(d5)/(d1) shrink 5 vs full', numerator: 'd5', denominator: 'd1' },
        { label: '(k1)/(k0) kernel vs JS crops', numerator: 'k1', denominator: 'k0' },
        { label: '(k2)/(k0) native vs JS crops', numerator: 'k2', denominator: 'k0' },
      ],
    };
  },
};
