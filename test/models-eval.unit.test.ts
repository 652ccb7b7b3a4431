// Unit tests of `kt models eval`'s parts: bootstrap intervals, metrics, landmark scheme maps, dataset readers' errors,
// one decoding per task (gender as sigmoid or two classes) and the manifest check that refuses a mismatch.
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidInputError, ModelFormatError, NotFoundError } from '../src/core/errors.js';
import { manifestTaskProblems, type OutputSpec } from '../src/models/manifest.js';
import { decodeGenderClasses, decodeOutput } from '../src/models/processing/decode.js';
import { clusterBootstrapCi, mean, pairedDifference, quantile, seededRandom } from '../src/models/eval/bootstrap.js';
import { parseCsv, readAgeUtkface, readEmotionFer, readLandmarksWflw, sampleItems, type EvalItem } from '../src/models/eval/datasets.js';
import { IBUG68_OUTER_EYES, MEDIAPIPE468_TO_IBUG68, WFLW98_TO_IBUG68, toIbug68 } from '../src/models/eval/landmark-schemes.js';
import { scoreFace } from '../src/models/eval/landmarks.js';
import { refinedBox, refinedBoxes } from '../src/models/processing/refine-crop.js';
import { ageBands, classificationReport, cumulativeScore, faceNme, meanAbsoluteError } from '../src/models/eval/metrics.js';
import { formatReport } from '../src/models/eval/report.js';
import { checkTask, manifestEntries, selectModels, type EvalReport } from '../src/models/eval/run.js';
import { canonicalEmotion } from '../src/models/eval/tasks.js';
import { defaultRepositoryPath, readManifest, type RepositoryEntry } from '../src/models/repository.js';
import type { EvalResult } from '../src/models/eval/types.js';

describe('bootstrap', () => {
  it('is reproducible with a seed and brackets the mean', () => {
    const r = seededRandom(5);
    const values = Array.from({ length: 200 }, () => r() * 10);
    const clusters = values.map((_, i) => String(i));
    const a = clusterBootstrapCi(clusters, (idx) => mean(values, idx), { resamples: 300, seed: 1 });
    const b = clusterBootstrapCi(clusters, (idx) => mean(values, idx), { resamples: 300, seed: 1 });
    expect(a).toEqual(b);
    expect(a[0]).toBeLessThan(mean(values));
    expect(a[1]).toBeGreaterThan(mean(values));
    expect(a[1] - a[0]).toBeLessThan(2);
  });

  it('clusters widen the interval when items of a cluster move together', () => {
    // 10 subjects x 20 faces: each subject's faces share one value, so there are really only 10 observations.
    const values = Array.from({ length: 200 }, (_, i) => Math.floor(i / 20) % 2);
    const byItem = clusterBootstrapCi(
      values.map((_, i) => String(i)),
      (idx) => mean(values, idx),
      { resamples: 400, seed: 2 },
    );
    const bySubject = clusterBootstrapCi(
      values.map((_, i) => String(Math.floor(i / 20))),
      (idx) => mean(values, idx),
      { resamples: 400, seed: 2 },
    );
    expect(bySubject[1] - bySubject[0]).toBeGreaterThan(2 * (byItem[1] - byItem[0]));
  });

  it('paired difference uses only shared ids and finds a consistent gap', () => {
    const ids = Array.from({ length: 50 }, (_, i) => `f${i}`);
    const a = { metric: 'mae', ids, clusters: ids, values: ids.map((_, i) => 5 + (i % 3)) };
    const b = { metric: 'mae', ids: [...ids, 'extra'], clusters: [...ids, 'extra'], values: [...ids.map((_, i) => 4 + (i % 3)), 100] };
    const d = pairedDifference(a, b, { resamples: 200, seed: 3 })!;
    expect(d.n).toBe(50);
    expect(d.difference).toBeCloseTo(1, 10);
    expect(d.ci95[0]).toBeCloseTo(1, 10);
    expect(pairedDifference(a, { ...b, metric: 'accuracy' }, { resamples: 10, seed: 1 })).toBeUndefined();
  });

  it('quantile interpolates', () => {
    expect(quantile([0, 10], 0.25)).toBe(2.5);
    expect(quantile([], 0.5)).toBeNaN();
  });
});

describe('metrics', () => {
  it('age MAE, CS@5 and bands', () => {
    const truth = [5, 25, 35, 85];
    const pred = [9, 25, 45, 80];
    expect(meanAbsoluteError(pred, truth)).toBe((4 + 0 + 10 + 5) / 4);
    expect(cumulativeScore(pred, truth)).toBe(75);
    const bands = ageBands(pred, truth);
    expect(bands.map((b) => b.band)).toEqual(['0-9', '20-29', '30-39', '80+']);
    expect(bands.find((b) => b.band === '80+')).toMatchObject({ n: 1, mae: 5, bias: -5 });
  });

  it('classification report: accuracy, macro-F1, recall, confusion', () => {
    const labels = ['a', 'b', 'c'];
    const truth = ['a', 'a', 'b', 'b', 'c', 'c'];
    const pred = ['a', 'a', 'b', 'a', 'a', 'x'];
    const r = classificationReport(pred, truth, labels);
    expect(r.accuracy).toBeCloseTo(50, 10);
    expect(r.recall).toEqual({ a: 100, b: 50, c: 0 });
    expect(r.confusion).toEqual([
      [2, 0, 0],
      [1, 1, 0],
      [1, 0, 0],
    ]);
    // F1: a = 2*0.5*1/1.5 = 0.667, b = 2*1*0.5/1.5 = 0.667, c = 0.
    expect(r.macroF1).toBeCloseTo((100 * (2 / 3 + 2 / 3 + 0)) / 3, 6);
  });

  it('NME is the mean point error over the outer-eye-corner distance, in percent', () => {
    const truth = Array.from({ length: 68 }, (_, i) => ({ x: i, y: 0 }));
    truth[36] = { x: 0, y: 0 };
    truth[45] = { x: 100, y: 0 };
    const pred = truth.map((p) => ({ x: p.x + 3, y: p.y + 4 }));
    expect(faceNme(pred, truth, IBUG68_OUTER_EYES)).toBeCloseTo(5, 10);
    expect(scoreFace(pred, truth).regions['jaw']).toBeCloseTo(5, 10);
  });
});

describe('landmark schemes', () => {
  it('WFLW-98 maps to 68 distinct points with the outer eye corners at WFLW 60 and 72', () => {
    expect(WFLW98_TO_IBUG68).toHaveLength(68);
    expect(new Set(WFLW98_TO_IBUG68).size).toBe(68);
    expect(WFLW98_TO_IBUG68[36]).toBe(60);
    expect(WFLW98_TO_IBUG68[45]).toBe(72);
    expect(WFLW98_TO_IBUG68[8]).toBe(16); // chin: the middle of WFLW's 33 contour points
    expect(Math.max(...WFLW98_TO_IBUG68)).toBe(95);
  });

  it('MediaPipe-468 maps to 68 points inside the mesh, averaging pairs', () => {
    expect(MEDIAPIPE468_TO_IBUG68).toHaveLength(68);
    expect(MEDIAPIPE468_TO_IBUG68.flat().every((i) => i >= 0 && i < 468)).toBe(true);
    const mesh = Array.from({ length: 468 }, (_, i) => ({ x: i, y: 2 * i }));
    const p = toIbug68('mediapipe468', mesh)!;
    expect(p[3]).toEqual({ x: (132 + 58) / 2, y: 132 + 58 });
    expect(p[36]).toEqual({ x: 33, y: 66 });
    expect(toIbug68('unknown', mesh)).toBeUndefined();
  });

  it('the refined box is centred on the first-pass points with the detector box size times the scale', () => {
    const pts = [
      { x: 10, y: 20 },
      { x: 30, y: 60 },
    ];
    expect(refinedBox(pts, { x: 0, y: 0, width: 50, height: 40 }, 1)).toEqual({ x: -5, y: 15, width: 50, height: 50 });
    expect(refinedBox(pts, { x: 0, y: 0, width: 50, height: 40 }, 1.2)).toEqual({ x: -10, y: 10, width: 60, height: 60 });
    const decoded = [[{ type: 'landmarks' as const, task: 'landmarks' as const, scheme: 'ibug68', points: pts }]];
    expect(refinedBoxes(decoded, [{ box: { x: 0, y: 0, width: 50, height: 40 } }], 1)).toEqual([{ x: -5, y: 15, width: 50, height: 50 }]);
    expect(refinedBoxes([[]], [{ box: { x: 0, y: 0, width: 50, height: 40 } }], 1)).toBeUndefined();
  });
});

describe('one decoding per task', () => {
  it('a two-class gender head decodes to the same gender result as a sigmoid one', () => {
    const fromClasses = decodeOutput(
      { task: 'gender', decoding: { type: 'classification', labels: ['male', 'female'], activation: 'none' } },
      Float32Array.of(0.2, 0.8),
    );
    const fromSigmoid = decodeOutput({ task: 'gender', decoding: { type: 'gender-sigmoid', positive: 'male' } }, Float32Array.of(0.2));
    expect(fromClasses.type).toBe('gender');
    expect(fromSigmoid.type).toBe('gender');
    if (fromClasses.type !== 'gender' || fromSigmoid.type !== 'gender') return;
    expect(fromClasses.value.gender).toBe('female');
    expect(fromClasses.value.probability).toBeCloseTo(fromSigmoid.value.probability, 6);
    expect(fromClasses.value.confidence).toBeCloseTo(fromSigmoid.value.confidence, 6);
    expect(decodeGenderClasses([2, 0], ['female', 'male'], 'softmax').gender).toBe('female');
  });

  it('emotion stays a classification', () => {
    const out = decodeOutput(
      { task: 'emotion', decoding: { type: 'classification', labels: ['a', 'b'], activation: 'none' } },
      Float32Array.of(0.3, 0.7),
    );
    expect(out.type).toBe('classification');
  });

  it('refuses a gender classifier without male/female labels, naming model and output', () => {
    expect(() => decodeGenderClasses([0.5, 0.5], ['yes', 'no'], 'none')).toThrow(ModelFormatError);
    const outputs: OutputSpec[] = [
      { name: 'age', task: 'age', decoding: { type: 'age-years', scale: 1 } },
      { name: 'gender', task: 'gender', decoding: { type: 'classification', labels: ['m', 'f'], activation: 'none' } },
      { name: 'mood', task: 'emotion', decoding: { type: 'scalar', activation: 'none' } },
    ];
    const problems = manifestTaskProblems({ name: 'bad', outputs });
    expect(problems).toHaveLength(2);
    expect(problems[0]).toMatch(/model bad output "gender" \(task gender, decoding classification\): needs the labels male and female/);
    expect(problems[1]).toMatch(/model bad output "mood" \(task emotion, decoding scalar\)/);
    expect(manifestTaskProblems({ name: 'ok', outputs: outputs.slice(0, 1) })).toEqual([]);
  });
});

describe('a manifest whose decoding cannot answer its task is refused on load', () => {
  it('names the model, the output and why', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kt-manifest-'));
    try {
      const manifest = JSON.parse(await readFile(join(defaultRepositoryPath(), 'agegender', '1', 'model.json'), 'utf8')) as {
        outputs: { name: string; decoding: { labels?: string[] } }[];
      };
      manifest.outputs.find((o) => o.name === 'gender')!.decoding.labels = ['man', 'woman'];
      const version = join(dir, 'agegender', '1');
      await mkdir(version, { recursive: true });
      await writeFile(join(version, 'model.json'), JSON.stringify(manifest));
      await expect(readManifest(version)).rejects.toThrow(
        /model agegender version 1 .*invalid model\.json: model agegender output "gender" \(task gender, decoding classification\): needs the labels male and female \(a two-class classifier\), has man, woman/,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('dataset readers', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kt-eval-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('a folder without labels is a clear error', async () => {
    await mkdir(join(dir, 'nolabels'));
    await expect(readAgeUtkface(join(dir, 'nolabels'), undefined, 1)).rejects.toThrow(/no labels at .*labels\.csv/);
    await expect(readEmotionFer(join(dir, 'nolabels'), undefined, 1)).rejects.toBeInstanceOf(InvalidInputError);
    await expect(readLandmarksWflw(join(dir, 'nolabels'), undefined, 1)).rejects.toThrow(/annotations_98pt\.txt/);
    await expect(readAgeUtkface(join(dir, 'absent'), undefined, 1)).rejects.toBeInstanceOf(NotFoundError);
  });

  it('labels without the needed columns or rows are clear errors', async () => {
    await mkdir(join(dir, 'wrong'));
    await writeFile(join(dir, 'wrong', 'labels.csv'), 'file,subject_id\na.pgm,1\n');
    await expect(readAgeUtkface(join(dir, 'wrong'), undefined, 1)).rejects.toThrow(/has no column age, gender/);
    expect(() => parseCsv('file,age\n', ['file'], 'x.csv')).toThrow(/header but no labelled rows/);
  });

  it('a limited sample keeps every stratum and is seeded', () => {
    const items: EvalItem<number>[] = Array.from({ length: 100 }, (_, i) => ({
      id: `i${i}`,
      cluster: `i${i}`,
      stratum: i < 90 ? 'big' : 'small',
      label: i,
    }));
    const a = sampleItems(items, 10, 4);
    expect(a).toHaveLength(10);
    expect(a.filter((x) => x.stratum === 'small').length).toBe(5);
    expect(sampleItems(items, 10, 4)).toEqual(a);
    expect(sampleItems(items, undefined, 4)).toHaveLength(100);
  });

  it('emotion synonyms map onto FER2013 labels', () => {
    expect(['fearful', 'disgusted', 'surprised', 'Happy'].map(canonicalEmotion)).toEqual(['fear', 'disgust', 'surprise', 'happy']);
  });
});

describe('model selection and reports', () => {
  const entry = (name: string, task: OutputSpec['task']): RepositoryEntry =>
    ({
      manifest: {
        name,
        version: 1,
        outputs: [
          { name: 'o', task, decoding: task === 'age' ? { type: 'age-years', scale: 1 } : { type: 'embedding', size: 4, normalize: 'l2' } },
        ],
      },
      dir: '',
      modelPath: '',
      bytes: 0,
    }) as unknown as RepositoryEntry;
  const entries = new Map([
    ['a1', entry('a1', 'age')],
    ['e1', entry('e1', 'embedding')],
  ]);

  it('defaults to every model answering the task; unknown models and tasks are clear errors', () => {
    expect(selectModels('age', entries, undefined, 'repo')).toEqual(['a1']);
    expect(selectModels('identity', entries, undefined, 'repo')).toEqual(['e1']);
    expect(() => selectModels('age', entries, ['nope'], 'repo')).toThrow(/model nope not found in repo/);
    expect(() => selectModels('age', entries, ['e1'], 'repo')).toThrow(
      /model e1 does not answer task age \(its outputs answer: embedding; models that do: a1\)/,
    );
    expect(() => selectModels('emotion', entries, undefined, 'repo')).toThrow(/no model in repo answers task emotion/);
    expect(() => checkTask('mood')).toThrow(/unknown task "mood"/);
  });

  it('formats a table with CIs, paired difference and notes, and manifest entries per metric', () => {
    const result = (model: string, value: number): EvalResult => ({
      task: 'age',
      dataset: 'toy',
      model,
      version: 1,
      n: 10,
      total: 11,
      metrics: [{ name: 'mae', value, ci95: [value - 1, value + 1], unit: 'years', higherIsBetter: false }],
      ciMethod: 'bootstrap-item',
      msPerFace: 2.5,
      notes: ['trained on toy'],
    });
    const report: EvalReport = {
      task: 'age',
      dataset: 'toy',
      baseline: 'base',
      results: [result('base', 5), result('other', 4)],
      paired: [{ name: 'other', baseline: 'base', metric: 'mae', n: 10, difference: -1, ci95: [-1.5, -0.5] }],
      date: '2026-01-02T00:00:00.000Z',
    };
    const text = formatReport(report);
    expect(text).toMatch(/MODEL\s+N\s+MAE \(years\)\s+ΔMAE VS base\s+MS\/FACE/);
    expect(text).toMatch(/other\s+10\/11\s+4\.00 \[3\.00, 5\.00\]\s+-1\.00 \[-1\.50, -0\.50\]\s+2\.5/);
    expect(text).toMatch(/base\s+10\/11\s+5\.00 \[4\.00, 6\.00\]\s+\(baseline\)/);
    expect(text).toMatch(/other: trained on toy/);
    expect(manifestEntries(result('x', 3), '2026-01-02')).toEqual([
      {
        task: 'age',
        dataset: 'toy',
        n: 10,
        metric: 'mae',
        value: 3,
        unit: 'years',
        ci95: [2, 4],
        ciMethod: 'bootstrap-item',
        msPerFace: 2.5,
        date: '2026-01-02',
        note: 'trained on toy',
      },
    ]);
  });
});
