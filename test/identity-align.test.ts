// 5-point alignment on the serving path: the server embeds facerec's aligned crop, alignment makes the descriptor
// robust to head roll, and the identity evaluation scores models aligned and not (ORL from ../shared/data).
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RgbImage } from '../src/core/image.js';
import { encodePng } from '../src/core/image.js';
import { Task } from '../src/gen/kt/v1/common.js';
import { runFaceModel } from '../src/models/aligned-run.js';
import { cosineSimilarity as cosine } from '../src/models/processing/index.js';
import { CALIBRATION_FAR, evaluateIdentity, readIdentityLabels, scoreIdentity } from '../src/models/eval/identity.js';
import type { EvalContext } from '../src/models/eval/types.js';
import { applySimilarity, invertSimilarity, warpSimilarity, type Similarity } from '../src/models/processing/align.js';
import type { Point } from '../src/models/processing/geometry.js';
import { detectFaces, type LoadedModel } from '../src/models/runner.js';
import type { RunningServer } from '../src/server/server.js';
import { demoPhoto, repositoryModel } from './helpers/faces.js';
import { analyze, analyzeRequest, encodedImage, faceAnalysisClient, startTestServer } from './helpers/server-fixture.js';

const ORL = join(import.meta.dirname, '..', '..', 'shared', 'data', 'identity-orl');
const hasOrl = existsSync(join(ORL, 'labels.csv'));
if (!hasOrl) console.warn(`identity-align: ${ORL} is absent, so the identity evaluation tests are skipped`);

/** The square centre of a frame turned by `deg` degrees (output pixel -> frame pixel), black where it leaves the frame. */
function turn(frame: RgbImage, deg: number): Similarity {
  const r = (deg * Math.PI) / 180;
  const [a, b] = [Math.cos(r), Math.sin(r)];
  const half = Math.min(frame.width, frame.height) / 2;
  return { a, b, tx: frame.width / 2 - (a - b) * half, ty: frame.height / 2 - (a + b) * half };
}
const turned = (frame: RgbImage, deg: number): RgbImage => warpSimilarity(frame, turn(frame, deg), Math.min(frame.width, frame.height));

/** The embedding of the face nearest `near` (default: the largest face), and where that face is. */
async function embedding(
  model: LoadedModel,
  frame: RgbImage,
  align: 'none' | '5point',
  near?: Point,
): Promise<{ vector: Float32Array; centre: Point }> {
  const faces = await detectFaces(await repositoryModel('blazeface'), frame);
  const centre = (f: (typeof faces)[number]): Point => ({ x: f.box.x + f.box.width / 2, y: f.box.y + f.box.height / 2 });
  const rank = (f: (typeof faces)[number]): number => (near ? Math.hypot(centre(f).x - near.x, centre(f).y - near.y) : -f.box.width);
  const face = faces.sort((x, y) => rank(x) - rank(y))[0]!;
  const out = (await runFaceModel(model, frame, [face], align)).decoded[0]!.find((d) => d.type === 'embedding');
  if (out?.type !== 'embedding') throw new Error('no embedding');
  return { vector: out.vector, centre: centre(face) };
}

describe('5-point alignment on the serving path', () => {
  let server: RunningServer;
  beforeAll(async () => {
    server = await startTestServer({ tasks: ['embedding'], taskModels: { embedding: 'facerec' } });
  });
  afterAll(async () => {
    await server?.close();
  });

  it("the server's facerec embedding is the aligned crop's, not the box crop's", async () => {
    const photo = await demoPhoto(2);
    const response = await analyze(faceAnalysisClient(server), analyzeRequest(encodedImage(await encodePng(photo)), [Task.TASK_EMBEDDING]));
    const largest = response.result!.faces.sort((x, y) => y.box!.widthPx - x.box!.widthPx)[0]!;
    expect(largest.embedding!.model).toMatchObject({ name: 'facerec' });
    const served = largest.embedding!.values;
    expect(served).toHaveLength(128);
    const model = await repositoryModel('facerec');
    const aligned = (await embedding(model, photo, '5point')).vector;
    const boxCrop = (await embedding(model, photo, 'none')).vector;
    const [withAligned, withBox] = [cosine(served, aligned), cosine(served, boxCrop)];
    console.info(`served vs aligned ${withAligned.toFixed(6)}, vs box crop ${withBox.toFixed(6)}`);
    expect(withAligned).toBeGreaterThan(0.9999);
    expect(withBox).toBeLessThan(withAligned);
  });

  it('alignment keeps the descriptor of a rolled head closer to the upright one', async () => {
    const model = await repositoryModel('facerec');
    const lines: string[] = [];
    for (const n of [1, 3]) {
      const photo = await demoPhoto(n);
      const upright = turned(photo, 0);
      for (const deg of [-25, 25]) {
        const rolled = turned(photo, deg);
        const base = await embedding(model, upright, '5point');
        // The same face in the rolled frame: the upright face's centre carried through both turns.
        const near = applySimilarity(invertSimilarity(turn(photo, deg)), applySimilarity(turn(photo, 0), base.centre));
        const aligned = cosine(base.vector, (await embedding(model, rolled, '5point', near)).vector);
        const boxCrop = cosine((await embedding(model, upright, 'none')).vector, (await embedding(model, rolled, 'none', near)).vector);
        lines.push(`sample${n} ${deg} deg: aligned ${aligned.toFixed(4)}, box crop ${boxCrop.toFixed(4)}`);
        expect(aligned).toBeGreaterThan(boxCrop);
      }
    }
    console.info(`facerec cosine upright vs rolled: ${lines.join('; ')}`);
  });
});

describe.skipIf(!hasOrl)('identity evaluation (ORL)', () => {
  let ctx: EvalContext;
  beforeAll(async () => {
    const detector = await repositoryModel('blazeface');
    ctx = {
      dataPath: ORL,
      dataset: 'identity-orl',
      repo: '',
      limit: 60,
      seed: 1,
      bootstrap: 100,
      detect: (frame) => detectFaces(detector, frame),
      load: (name) => repositoryModel(name),
      progress: () => {},
    };
  });

  it('scores every model aligned and not, with CIs, a calibrated threshold and paired items', async () => {
    const scores = await scoreIdentity(ctx, ['facerec']);
    // facerec runs aligned in the server: that is its plain row, the box crop a variant.
    expect(scores.map((s) => s.result.variant)).toEqual(['unaligned', undefined]);
    expect(scores.map((s) => s.calibration.align)).toEqual(['none', '5point']);
    for (const { result, calibration } of scores) {
      const byName = Object.fromEntries(result.metrics.map((m) => [m.name, m]));
      expect(Object.keys(byName)).toEqual(['accuracy', 'roc_auc', 'tar_at_far_0.1%', 'tar_at_far_1%', 'rank1', 'dir_at_far_0.1%']);
      // Six subjects of ORL: facerec separates them well; the figures are real measurements, not constants.
      expect(byName['accuracy']!.value).toBeGreaterThan(90);
      expect(byName['accuracy']!.value).toBeLessThanOrEqual(100);
      expect(byName['roc_auc']!.value).toBeGreaterThan(95);
      expect(byName['roc_auc']!.value).toBeLessThanOrEqual(100);
      const [lo, hi] = byName['accuracy']!.ci95!;
      expect(lo).toBeLessThanOrEqual(byName['accuracy']!.value);
      expect(hi).toBeGreaterThanOrEqual(byName['accuracy']!.value);
      expect(result.paired!.values).toHaveLength(result.n);
      expect(result.msPerFace).toBeGreaterThan(0);
      expect(calibration.far).toBe(CALIBRATION_FAR);
      expect(calibration.threshold).toBeGreaterThan(0.5);
      expect(calibration.threshold).toBeLessThan(1);
    }
  });

  it('samples whole subjects under --limit, and names a dataset without labels', async () => {
    const images = await readIdentityLabels(ORL, 25, 3);
    const subjects = new Set(images.map((i) => i.subject));
    expect(images.length).toBe(subjects.size * 10);
    const empty = await mkdtemp(join(tmpdir(), 'kt-noid-'));
    try {
      await expect(evaluateIdentity({ ...ctx, dataPath: empty }, ['facerec'])).rejects.toThrow(/no labels\.csv/);
      await writeFile(join(empty, 'labels.csv'), 'file,age\na.png,3\n');
      await expect(evaluateIdentity({ ...ctx, dataPath: empty }, ['facerec'])).rejects.toThrow(/needs the columns file and subject_id/);
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
  });
});
