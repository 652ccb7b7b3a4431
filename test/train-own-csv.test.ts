// kt train on a user's own CSV: absolute paths and a subject column, missing files reported, separate export repository.
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodePng } from '../src/core/image.js';
import { cropFace } from '../src/models/processing/index.js';
import { defaultRepositoryPath } from '../src/models/repository.js';
import { runExperiment, type ExperimentOptions } from '../src/train/experiment.js';
import { demoFaces } from './helpers/faces.js';

let root: string;
let repo: string;
/** Absolute image paths and their subject (one per detected face, three crops each) and age. */
const images: { path: string; subject: string; age: number }[] = [];

/** Three crops (margins) of every face in face-api's demo photos: each face is one "person" with three images. */
async function makeFixtures(): Promise<void> {
  root = await mkdtemp(join(tmpdir(), 'kt-own-csv-'));
  repo = join(root, 'repo');
  for (const name of ['faceres', 'agegender']) await cp(join(defaultRepositoryPath(), name), join(repo, name), { recursive: true });
  const imageDir = join(root, 'photos');
  await mkdir(imageDir, { recursive: true });
  let person = 0;
  for (let n = 1; n <= 6; n++) {
    const { frame, faces } = await demoFaces(n);
    for (const face of faces) {
      for (const [k, margin] of [0.1, 0.25, 0.4].entries()) {
        const path = join(imageDir, `person${person}_${k}.png`);
        await writeFile(path, await encodePng(cropFace(frame, face.box, { size: 112, cropMargin: margin, cropSquare: true }).image));
        images.push({ path, subject: `person${person}`, age: 20 + ((person * 7) % 40) });
      }
      person++;
    }
  }
}

function recorder(): { lines: string[]; log: (line: string) => void } {
  const lines: string[] = [];
  return { lines, log: (line) => lines.push(line) };
}

const common = (): Partial<ExperimentOptions> => ({
  repo,
  cacheDir: join(root, 'cache'),
  epochs: 1,
  batchSize: 16,
  seed: 3,
  tsneSamples: 0,
  priors: ['faceres'],
});

beforeAll(makeFixtures, 300_000);
afterAll(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

describe('kt train on your own CSV', () => {
  it('reads absolute paths, splits by the subject column and exports into --export-repo', async () => {
    const csv = join(root, 'subjects.csv');
    await writeFile(csv, `file,age,person\n${images.map((i) => `${i.path},${i.age},${i.subject}`).join('\n')}\n`);
    const exportRepo = join(root, 'experiments', 'run1');
    const { lines, log } = recorder();
    const results = await runExperiment({
      ...common(),
      task: 'age',
      data: csv,
      subjectColumn: 'person',
      exportRepo,
      variants: ['kt'],
      paritySamples: 2,
      outDir: join(root, 'out-subjects'),
      log,
    });
    console.log(lines.filter((l) => /split by|exported|encoders from/.test(l)).join('\n'));
    const people = new Set(images.map((i) => i.subject)).size;
    const splitLine = lines.find((l) => l.includes('split by'))!;
    expect(splitLine).toMatch(
      new RegExp(
        `${images.length} samples; split by subject: train \\d+, val \\d+, test \\d+ \\(subjects: train \\d+, val \\d+, test \\d+\\)`,
      ),
    );
    const [, a, b, c] = /subjects: train (\d+), val (\d+), test (\d+)/.exec(splitLine)!.map(Number);
    expect(a! + b! + c!).toBe(people);
    expect(results.split.by).toBe('subject');
    expect(results.split.train + results.split.val + results.split.test).toBe(images.length);
    expect(lines.some((l) => l.includes('suggest several images per person'))).toBe(false);
    expect(lines).toContain(`encoders from ${repo}; the KT model is exported to ${exportRepo}`);
    expect(results.export?.dir.startsWith(exportRepo)).toBe(true);
    expect(existsSync(join(exportRepo, 'kt-age', '1', 'model.onnx'))).toBe(true);
    expect(existsSync(join(repo, 'kt-age'))).toBe(false);
  });

  it('reports 3 missing files by name, warns about repeated people and trains on the rest', async () => {
    const dir = join(root, 'relative');
    await mkdir(dir, { recursive: true });
    const missing = ['gone/missing_a.png', 'gone/missing_b.png', 'gone/missing_c.png'];
    const rows = [...images.map((i) => `../photos/${i.path.split('/').pop()},${i.age}`), ...missing.map((m) => `${m},33`)];
    await writeFile(join(dir, 'labels.csv'), `file,age\n${rows.join('\n')}\n`);
    const { lines, log } = recorder();
    const results = await runExperiment({
      ...common(),
      task: 'age',
      data: dir,
      variants: ['baseline'],
      outDir: join(root, 'out-missing'),
      log,
    });
    const report = lines.find((l) => l.includes('missing-file'))!;
    console.log(`${report}\n${lines.find((l) => l.startsWith('warning:'))}`);
    expect(report).toContain(`${rows.length} checked, ${images.length} kept, 3 excluded`);
    expect(report).toContain('missing-file (excluded): 3');
    for (const name of missing) expect(report).toContain(`${name}: file does not exist`);
    expect(lines.some((l) => l.startsWith('warning:') && l.includes('suggest several images per person'))).toBe(true);
    expect(results.split.by).toBe('sample');
    expect(results.split.train + results.split.val + results.split.test).toBe(images.length);
    expect(results.variants.map((v) => v.id)).toEqual(['pretrained', 'baseline']);
    expect(Number.isFinite(results.variants[1]!.metrics['mae'])).toBe(true);
  });

  it('stops with the problems report when no image is left', async () => {
    const dir = join(root, 'all-missing');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'labels.csv'), 'file,age\nnope1.png,20\nnope2.png,30\n');
    const run = runExperiment({
      ...common(),
      task: 'age',
      data: dir,
      variants: ['baseline'],
      outDir: join(root, 'out-none'),
      log: () => {},
    });
    await expect(run).rejects.toThrow(
      /no usable samples in .*labels\.csv; nothing to train on\.\n.*2 checked, 0 kept, 2 excluded[\s\S]*nope1\.png: file does not exist/,
    );
  });

  it('says which repository is missing the encoders', async () => {
    const empty = join(root, 'new-experiments');
    const run = runExperiment({
      ...common(),
      repo: empty,
      task: 'age',
      data: join(root, 'subjects.csv'),
      variants: ['baseline'],
      outDir: join(root, 'out-repo'),
      log: () => {},
    });
    await expect(run).rejects.toThrow(
      /the encoder repository --repo .*new-experiments does not exist; the encoders \(agegender, faceres\) are read from it\. .*--export-repo DIR/,
    );
    await mkdir(empty, { recursive: true });
    const again = runExperiment({
      ...common(),
      repo: empty,
      task: 'age',
      data: join(root, 'subjects.csv'),
      variants: ['baseline'],
      outDir: join(root, 'out-repo'),
      log: () => {},
    });
    await expect(again).rejects.toThrow(/encoder models agegender, faceres not found in the encoder repository --repo .*new-experiments/);
  });
});
