// `kt models eval` end to end on the shared labelled data (small seeded samples): tables with CIs and paired
// differences, the PNG and JSON report, --write into model.json shown by `kt models list`, and clear errors.
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultRepositoryPath } from '../src/models/repository.js';
import { servingDefaultModels } from '../src/models/zoo.js';
import { repoRoot, runKt } from './helpers/cli.js';

const shared = join(repoRoot, '..', 'shared', 'data');
const haveData = ['age-utkface', 'emotion-fer2013', 'landmarks-wflw'].every((d) => existsSync(join(shared, d)));
if (!haveData) console.warn(`models-eval.test: SKIPPED, the shared labelled data is not at ${shared}`);

const models = ['blazeface', 'faceres', 'agegender', 'emotion', 'expression', 'landmarks68', 'facemesh'];
let work: string;
let repo: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'kt-models-eval-'));
  repo = join(work, 'repo');
  // A repository of its own: --write must not touch the shared one. Weights are linked, manifests copied.
  for (const name of models) {
    const from = join(defaultRepositoryPath(), name, '1');
    const to = join(repo, name, '1');
    await mkdir(to, { recursive: true });
    await symlink(join(from, 'model.onnx'), join(to, 'model.onnx'));
    await copyFile(join(from, 'model.json'), join(to, 'model.json'));
  }
});

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

const evalArgs = (task: string, data: string, ...more: string[]): string[] => [
  'models',
  'eval',
  '--task',
  task,
  '--data',
  join(shared, data),
  '--repo',
  repo,
  '--out',
  join(work, 'out'),
  '--bootstrap',
  '100',
  ...more,
];

describe.skipIf(!haveData)('kt models eval on the shared data', () => {
  it('gender: every gender model (agegender included) with accuracy, CI, paired difference vs faceres; --write; list', async () => {
    const run = await runKt(evalArgs('gender', 'age-utkface', '--limit', '18', '--write'));
    expect(run.stderr).not.toMatch(/kt: error/);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/task gender on age-utkface/);
    expect(run.stdout).toMatch(new RegExp(`MODEL\\s+N\\s+ACCURACY \\(%\\)\\s+ΔACCURACY VS ${servingDefaultModels.gender}\\s+MS/FACE`));
    expect(run.stdout).toMatch(/faceres\s+\d+\/18\s+\d+\.\d\d \[\d+\.\d\d, \d+\.\d\d\]\s+\(baseline\)/);
    expect(run.stdout).toMatch(
      /agegender\s+\d+\/18\s+\d+\.\d\d \[\d+\.\d\d, \d+\.\d\d\]\s+-?\d+\.\d\d \[-?\d+\.\d\d, -?\d+\.\d\d\]\s+\d+\.\d/,
    );
    expect(run.stdout).toMatch(/agegender: agegender \(face-api AgeGenderNet\) was trained on UTKFace/);
    const png = await readFile(join(work, 'out', 'gender-age-utkface.png'));
    expect(png.subarray(1, 4).toString()).toBe('PNG');
    const json = JSON.parse(await readFile(join(work, 'out', 'gender-age-utkface.json'), 'utf8')) as {
      results: { model: string; n: number }[];
    };
    expect(json.results.map((r) => r.model).sort()).toEqual(['agegender', 'faceres']);

    const manifest = JSON.parse(await readFile(join(repo, 'agegender', '1', 'model.json'), 'utf8')) as {
      evaluations: { task: string; metric: string; n: number; value: number; ci95: number[] }[];
    };
    const entry = manifest.evaluations.find((e) => e.task === 'gender' && e.metric === 'accuracy')!;
    expect(entry.n).toBe(json.results.find((r) => r.model === 'agegender')!.n);
    expect(entry.ci95[0]).toBeLessThanOrEqual(entry.value);

    const list = await runKt(['models', 'list', '--repo', repo]);
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/EVALUATIONS/);
    expect(list.stdout).toMatch(
      /agegender v1: gender age-utkface: accuracy \d+\.\d\d % \[\d+\.\d\d, \d+\.\d\d\]; n \d+, [\d.]+ ms\/face, \d{4}-\d\d-\d\d; agegender \(face-api AgeGenderNet\) was trained on UTKFace/,
    );
  });

  it('emotion: accuracy, macro-F1, recall and confusion, expression labels mapped onto FER2013', async () => {
    const run = await runKt(evalArgs('emotion', 'emotion-fer2013', '--limit', '21'));
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(new RegExp(`ACCURACY \\(%\\)\\s+MACRO_F1 \\(%\\)\\s+ΔACCURACY VS ${servingDefaultModels.emotion}`));
    expect(run.stdout).toMatch(/expression recall %: angry [\d.]+, disgust [\d.]+, fear [\d.]+/);
    expect(run.stdout).toMatch(/emotion confusion \(rows true, columns predicted: angry disgust fear happy sad surprise neutral\)/);
  });

  it('landmarks: NME per region for landmarks68 (refined crop, and one pass) and facemesh (mapped to 68 points)', async () => {
    const run = await runKt(evalArgs('landmarks', 'landmarks-wflw', '--limit', '6'));
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/NME \(%\)\s+NME_JAW \(%\)\s+NME_BROWS/);
    for (const name of ['landmarks68', 'landmarks68:one-pass', 'facemesh', 'facemesh:refined'])
      expect(run.stdout).toMatch(new RegExp(`\\n${name}\\s+\\d+/6\\s+\\d+\\.\\d\\d`));
  });

  it('age: MAE with CI and the age-band bias table for the models named', async () => {
    const run = await runKt(evalArgs('age', 'age-utkface', '--limit', '9', '--models', 'agegender,faceres'));
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/MAE \(years\)\s+CS5 \(%\)/);
    expect(run.stdout).toMatch(/agegender by age band \(MAE \/ bias years\): 0-9 /);
  });
});

describe('kt models eval: bad input is a clear error', () => {
  it('a dataset folder without labels', async () => {
    const empty = join(work, 'empty');
    await mkdir(empty, { recursive: true });
    const run = await runKt(['models', 'eval', '--task', 'age', '--data', empty, '--repo', repo]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/kt: error: (InvalidInputError: )?dataset .*empty: no labels at .*labels\.csv/);
  });

  it('an unknown model, a model that does not answer the task, an unknown task', async () => {
    const unknown = await runKt(['models', 'eval', '--task', 'age', '--data', work, '--models', 'nope', '--repo', repo]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/kt: error: (NotFoundError: )?model nope not found in .* \(models: /);
    const wrong = await runKt(['models', 'eval', '--task', 'age', '--data', work, '--models', 'emotion', '--repo', repo]);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(
      /kt: error: (InvalidInputError: )?model emotion does not answer task age \(its outputs answer: emotion; models that do: agegender, faceres\)/,
    );
    const task = await runKt(['models', 'eval', '--task', 'mood', '--data', work, '--repo', repo]);
    expect(task.code).toBe(1);
    expect(task.stderr).toMatch(
      /kt: error: (InvalidInputError: )?unknown task "mood" for kt models eval \(expected one of age, gender, emotion, landmarks, identity\)/,
    );
  });
});
