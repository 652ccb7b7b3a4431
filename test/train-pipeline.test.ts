// kt train end to end on tiny face fixtures: tables, JSON, plots, the exported ONE-graph model (ORT vs TF.js), `kt eval`, and serving it over gRPC.
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodePng } from '../src/core/image.js';
import { Task } from '../src/gen/kt/v1/common.js';
import type { ModelManifest } from '../src/models/manifest.js';
import { cropFace } from '../src/models/processing/index.js';
import { defaultRepositoryPath, listRepository } from '../src/models/repository.js';
import { createSession, runFloat } from '../src/onnx/runtime.js';
import { runExperiment } from '../src/train/experiment.js';
import { renderMarkdownTable, type ExperimentResults } from '../src/train/report.js';
import { demoFaces } from './helpers/faces.js';
import { demoJpeg } from './helpers/server-fixture.js';
import { runKt } from './helpers/cli.js';

const silent = (): void => {};
let root: string;
let repo: string;
let age: ExperimentResults;
let emotion: ExperimentResults;
const FER = ['angry', 'disgust', 'fear', 'happy', 'sad', 'surprise', 'neutral'];

/** Face crops from face-api's demo photos (two margins each), with invented labels; a copy of the encoders a run needs. */
async function makeFixtures(): Promise<void> {
  root = await mkdtemp(join(tmpdir(), 'kt-train-'));
  repo = join(root, 'repo');
  for (const name of ['blazeface', 'faceres', 'emotion', 'agegender', 'expression'])
    await cp(join(defaultRepositoryPath(), name), join(repo, name), { recursive: true });
  await mkdir(join(root, 'age', 'images'), { recursive: true });
  const ageRows = ['file,age'];
  let k = 0;
  for (let n = 1; n <= 6; n++) {
    const { frame, faces } = await demoFaces(n);
    for (const face of faces) {
      for (const margin of [0.15, 0.35]) {
        const crop = cropFace(frame, face.box, { size: 128, cropMargin: margin, cropSquare: true }).image;
        const png = await encodePng(crop);
        const file = `face${k}.png`;
        await writeFile(join(root, 'age', 'images', file), png);
        ageRows.push(`images/${file},${18 + ((k * 7) % 50)}`);
        const cls = FER[k % FER.length]!;
        await mkdir(join(root, 'emotion', cls), { recursive: true });
        await writeFile(join(root, 'emotion', cls, file), png);
        k++;
      }
    }
  }
  await writeFile(join(root, 'age', 'labels.csv'), `${ageRows.join('\n')}\n`);
}

beforeAll(async () => {
  await makeFixtures();
  const common = { repo, cacheDir: join(root, 'cache'), epochs: 1, batchSize: 16, seed: 3, tsneSamples: 50, log: silent };
  age = await runExperiment({
    ...common,
    task: 'age',
    data: join(root, 'age'),
    // The default canonical: the server's age model (agegender, an age-years head).
    priors: ['faceres', 'expression'],
    variants: ['baseline', 'ensemble', 'kt', 'kt-no-dm', 'kt-priors1'],
    exportVariants: ['kt', 'baseline', 'control'],
    outDir: join(root, 'out-age'),
  });
  emotion = await runExperiment({
    ...common,
    task: 'emotion',
    data: join(root, 'emotion'),
    // The conv-head path (the default canonical, expression, has a GAP+dense head).
    canonical: 'emotion',
    priors: ['expression'],
    variants: ['baseline', 'kt'],
    outDir: join(root, 'out-emotion'),
  });
}, 600_000);

afterAll(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

describe('kt train (tiny fixtures)', () => {
  it('runs every comparator on one split and writes the paper-style table, JSON and plots', async () => {
    const ids = age.variants.map((v) => v.id);
    expect(ids).toEqual(['pretrained', 'baseline', 'ensemble', 'kt', 'kt-no-dm', 'kt-priors1', 'kt-zero']);
    for (const v of age.variants) {
      expect(Number.isFinite(v.metrics['mae'])).toBe(true);
      expect(v.metrics['cs5']).toBeGreaterThanOrEqual(0);
    }
    expect(age.split.train + age.split.val + age.split.test).toBeGreaterThanOrEqual(20);
    expect(age.canonical).toBe('agegender');
    expect(age.variants.find((v) => v.id === 'kt-priors1')!.priors).toEqual(['faceres']);
    expect(age.variants.find((v) => v.id === 'kt-zero')!.priors).toEqual([]);
    const kt = age.variants.find((v) => v.id === 'kt')!;
    expect(kt.trainableParams).toBeGreaterThan(age.variants.find((v) => v.id === 'baseline')!.trainableParams);
    expect(kt.adapterMacs).toBeGreaterThan(0);

    const out = join(root, 'out-age');
    const table = await readFile(join(out, 'table.md'), 'utf8');
    const lines = table.trim().split('\n');
    expect(lines[0]).toContain('MAE (years)');
    expect(lines[0]).toContain('vs capacity control');
    expect(lines[0]).toContain('Trainable params');
    expect(lines[0]).toContain('Inference MACs');
    expect(lines[0]).toContain('Train time');
    const labels = lines.slice(2).map((l) => l.split('|')[1]!.trim());
    expect(labels[0]).toMatch(/^pre-trained agegender/);
    expect(labels[1]).toMatch(/^baseline/);
    expect(labels[2]).toMatch(/^KT-Adapter \(2 priors\)/);
    expect(labels[3]).toMatch(/^capacity control/);
    expect(labels[labels.length - 1]).toMatch(/^ensemble/);
    // KT rows carry their gap to the capacity control; the control itself and the comparators do not.
    const ktLine = lines.find((l) => l.includes('KT-Adapter (2 priors)'))!;
    expect(ktLine).toMatch(/MAE [+-]\d/);
    expect(ktLine).toMatch(/\(([+-])\d+\.\d{3}\)/);
    expect(table).toBe(`${renderMarkdownTable(age)}\n`);
    expect(JSON.parse(await readFile(join(out, 'results.json'), 'utf8')).variants).toHaveLength(7);
    expect(await readFile(join(out, 'report.md'), 'utf8')).toContain('TF.js backend');
    for (const png of [
      'curves/kt.png',
      'curves/baseline.png',
      'curves/validation-metric.png',
      'curves/validation-loss.png',
      'tsne-tokens.png',
    ]) {
      const bytes = await readFile(join(out, png));
      expect(bytes.subarray(1, 4).toString()).toBe('PNG');
    }
    expect(age.tsne!.samples).toBe(age.split.test);
  });

  it('emotion starts from a linear decoder fitted to the shipped conv head and reports how well it reproduces it', () => {
    const fit = emotion.decoderFit as Record<string, { leastSquares: { top1AgreementPct: number }; tapSum: { top1AgreementPct: number } }>;
    expect(fit['train']!.leastSquares.top1AgreementPct).toBeGreaterThanOrEqual(fit['train']!.tapSum.top1AgreementPct - 1e-9);
    expect(fit['train']!.leastSquares.top1AgreementPct).toBeGreaterThan(50);
    expect(emotion.columns.map((c) => c.key)).toEqual(['accuracy', 'macroF1']);
    expect(emotion.variants.map((v) => v.id)).toEqual(['pretrained', 'baseline', 'kt', 'kt-zero']);
  });

  it('exports ONE graph with a kt-adapter manifest; ORT on the images matches TF.js on the cached tokens within 1e-4', async () => {
    for (const [r, output] of [
      [age, 'age'],
      [emotion, 'emotion'],
    ] as const) {
      const e = r.export!;
      expect(e.name).toBe(`kt-${r.task}`);
      expect(e.version).toBe(1);
      expect(e.parity!.samples).toBeGreaterThan(0);
      expect(e.parity!.maxAbsDiff).toBeLessThan(1e-4);
      expect(e.parity!.outputMaxAbsDiff).toBeLessThan(1e-4);
      const manifest = JSON.parse(await readFile(join(e.dir, 'model.json'), 'utf8')) as ModelManifest;
      expect(manifest.kind).toBe('kt-adapter');
      expect(manifest.tasks).toEqual([r.task]);
      expect(manifest.outputs.map((o) => o.name)).toEqual([output]);
      expect(manifest.training!.canonical).toBe(r.canonical);
      expect(manifest.training!.priors).toEqual(r.priors);
      expect(manifest.training!['seed']).toBe(3);
      expect(manifest.training!.adapterFlops).toBeGreaterThan(0);
      expect(manifest.training!.metrics).toEqual(r.variants.find((v) => v.id === 'kt')!.metrics);
      const canonical = JSON.parse(await readFile(join(repo, r.canonical, '1', 'model.json'), 'utf8')) as ModelManifest;
      expect(manifest.input).toEqual(canonical.input);
      // The export reads the canonical map only through GAP, whatever the canonical model's own head.
      expect(manifest.encoder).toEqual({ ...canonical.encoder, head: 'gap-dense' });
      // The graph takes the canonical model's image input and needs nothing else.
      const { session } = await createSession(join(e.dir, 'model.onnx'));
      expect(session.inputNames).toEqual([canonical.input.name]);
      const s = canonical.input.size;
      const ch = canonical.input.colorOrder === 'GRAY' ? 1 : 3;
      const res = await runFloat(session, {
        [canonical.input.name]: { data: new Float32Array(2 * s * s * ch).fill(0.3), dims: [2, s, s, ch] },
      });
      await session.release();
      const values = res[output]!;
      if (output === 'age') expect(values.dims).toEqual([2, 1]);
      else {
        expect(values.dims).toEqual([2, 7]);
        expect(values.data.subarray(0, 7).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
      }
    }
    // The baseline and the control are exported too, each checked against TF.js.
    expect(age.exports!.map((x) => [x.variant, x.name])).toEqual([
      ['baseline', 'kt-age-baseline'],
      ['kt', 'kt-age'],
      ['kt-zero', 'kt-age-control'],
    ]);
    for (const x of age.exports!) expect(x.parity!.outputMaxAbsDiff).toBeLessThan(1e-4);
    const baselineManifest = JSON.parse(await readFile(join(age.exports![0]!.dir, 'model.json'), 'utf8')) as ModelManifest;
    expect(baselineManifest.kind).toBe('baseline');
    // The repository lists the new versions next to the encoders.
    const names = (await listRepository(repo)).map((x) => `${x.manifest.name}/${x.manifest.version}`);
    expect(names).toContain('kt-age/1');
    expect(names).toContain('kt-emotion/1');
  });

  it('kt eval re-renders a run from results.json', async () => {
    const out = join(root, 'out-age');
    await rm(join(out, 'table.md'));
    const r = await runKt(['eval', '--run', out]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('| baseline (MLP on p_c) |');
    expect(existsSync(join(out, 'table.md'))).toBe(true);
    const bad = await runKt(['train', '--task', 'height']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('unknown task "height"');
  });
});

describe('serving the exported model', () => {
  it('Analyze with model overrides answers age and emotion from kt-age and kt-emotion', async () => {
    const { startTestServer, analyze, analyzeRequest, encodedImage, faceAnalysisClient } = await import('./helpers/server-fixture.js');
    const server = await startTestServer({ modelRepository: repo, tasks: ['age', 'emotion'] });
    const client = faceAnalysisClient(server);
    try {
      const overrides = [
        { task: Task.TASK_AGE, model: { name: 'kt-age', version: 0 } },
        { task: Task.TASK_EMOTION, model: { name: 'kt-emotion', version: 1 } },
      ];
      const res = await analyze(
        client,
        analyzeRequest(encodedImage(demoJpeg(1)), [Task.TASK_AGE, Task.TASK_EMOTION], 7, { modelOverrides: overrides }),
      );
      const result = res.result!;
      expect(result.faces.length).toBeGreaterThan(0);
      expect(result.models.map((m) => m.name)).toEqual(expect.arrayContaining(['kt-age', 'kt-emotion']));
      for (const face of result.faces) {
        expect(face.age!.years).toBeGreaterThanOrEqual(0);
        expect(face.age!.years).toBeLessThanOrEqual(99);
        expect(face.emotion!.scores.map((s) => s.label)).toEqual(FER);
      }
    } finally {
      client.close();
      await server.close();
    }
  });
});
