// Issue 11's KT changes without onnxruntime: distillation losses, gate parametrisation and learning rate, prior projection,
// std floor, flip keys, the fair ensemble, class reordering, and the statistics over seeds.
import { createHash } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Tensor2D } from '@tensorflow/tfjs';
import { loadTf, type Tf } from '../src/train/tfjs-backend.js';
import { createKtAdapter, createKtAdapterParams, disposeKtAdapterParams, effectiveGate, ktForwardTrain } from '../src/train/kt-adapter.js';
import { distillationKl, distillationL1 } from '../src/train/losses.js';
import { createAdamW } from '../src/train/optimizer.js';
import { evaluateModel, trainModel } from '../src/train/trainer.js';
import { computeTokenStats, disposeBatch, gatherBatch, gatherTargets, relativeStdFloor } from '../src/train/token-dataset.js';
import { imageKeyOf, mirrorImage } from '../src/train/token-cache.js';
import { createBaselineHead, createEnsembleHead } from '../src/train/heads.js';
import { classOrder } from '../src/train/pipeline-tasks.js';
import { meanInterval, pairedInterval, excludesZero, summariseSeeds, renderSeedSummary } from '../src/train/seeds.js';
import { seedsFlag } from '../src/train/cli-train.js';
import { exportNameOf } from '../src/train/experiment.js';
import type { ExperimentResults, VariantResult } from '../src/train/report.js';
import { adapterOptions, maxAbsDiff, perturb, read, stats, train, validation } from './helpers/kt-synthetic.js';

let tf: Tf;
beforeAll(async () => {
  ({ tf } = await loadTf());
});

describe('self-distillation losses', () => {
  it('KL is zero for equal logits and matches the closed form otherwise', () => {
    const teacher = tf.tensor2d([[1, 0, -1]]);
    const student = tf.tensor2d([[0, 0, 0]]);
    expect(distillationKl(tf, teacher, teacher).dataSync()[0]).toBeCloseTo(0, 6);
    const p = [Math.exp(1), 1, Math.exp(-1)].map((v, _, a) => v / a.reduce((x, y) => x + y, 0));
    const expected = p.reduce((a, pi) => a + pi * Math.log(pi / (1 / 3)), 0);
    expect(distillationKl(tf, student, teacher).dataSync()[0]).toBeCloseTo(expected, 5);
    teacher.dispose();
    student.dispose();
  });

  it('sends gradients into the student only (the teacher is held fixed)', () => {
    const student = tf.variable(tf.tensor2d([[0.3, -0.2, 0.1]]));
    const teacher = tf.variable(tf.tensor2d([[1, 0, -1]]));
    for (const loss of [distillationKl, distillationL1]) {
      const { grads } = tf.variableGrads(() => loss(tf, student, teacher), [student, teacher]);
      expect(Math.max(...Array.from(grads[student.name]!.dataSync()).map(Math.abs))).toBeGreaterThan(0);
      // The teacher has no path to the loss: its gradient is absent or zero.
      const g = grads[teacher.name];
      expect(g ? Math.max(...Array.from(g.dataSync()).map(Math.abs)) : 0).toBe(0);
      Object.values(grads).forEach((t) => t.dispose());
    }
    expect(distillationL1(tf, tf.tensor2d([[2], [5]]), tf.tensor2d([[3], [3]])).dataSync()[0]).toBeCloseTo(1.5, 6);
    student.dispose();
    teacher.dispose();
  });

  it('pulls the inference path toward the priors-present path', async () => {
    const gap = async (weight: number): Promise<number> => {
      const model = createKtAdapter(tf, adapterOptions({ seed: 5, decoder: { hidden: [24], outputs: 1 } }));
      await trainModel(model, train, validation, {
        task: { kind: 'regression', outputs: 1, loss: 'mse' },
        epochs: 6,
        batchSize: 32,
        learningRate: 3e-3,
        seed: 2,
        patience: 100,
        distillationWeight: weight,
        log: () => {},
      });
      const deployed = evaluateModel(model, validation, { kind: 'regression', outputs: 1 }).predictions;
      const withPriors = evaluateModel(model, validation, { kind: 'regression', outputs: 1 }, undefined, 256, 'with-priors').predictions;
      model.dispose();
      return deployed.reduce((a, v, i) => a + Math.abs(v - withPriors[i]!), 0) / deployed.length;
    };
    expect(await gap(5)).toBeLessThan(await gap(0));
  });
});

describe('gate', () => {
  it('is per canonical channel by default, scalar in the ablation, and exported as g x canonical std', () => {
    const perChannel = createKtAdapterParams(tf, adapterOptions());
    const scalar = createKtAdapterParams(tf, adapterOptions({ gate: 'scalar' }));
    expect(perChannel.gate.shape).toEqual([12]);
    expect(scalar.gate.shape).toEqual([]);
    perturb(tf, perChannel);
    const g = Float32Array.from(perChannel.gate.dataSync() as Float32Array);
    expect(new Set(g).size).toBeGreaterThan(1);
    expect(
      maxAbsDiff(
        effectiveGate(perChannel),
        g.map((v, c) => v * stats.canonical.std[c]!),
      ),
    ).toBeLessThan(1e-6);
    scalar.gate.assign(tf.scalar(0.5));
    expect(
      maxAbsDiff(
        effectiveGate(scalar),
        stats.canonical.std.map((s) => 0.5 * s),
      ),
    ).toBeLessThan(1e-6);
    disposeKtAdapterParams(perChannel);
    disposeKtAdapterParams(scalar);
  });

  it('moves gateLearningRateScale times faster than the other weights under AdamW', () => {
    const model = createKtAdapter(tf, adapterOptions({ gateLearningRateScale: 10 }));
    const { gate, knowledgeToken } = model.params;
    const k0 = Float32Array.from(knowledgeToken.dataSync() as Float32Array);
    const adamW = createAdamW(tf, [gate, knowledgeToken], {
      schedule: { peakLearningRate: 1e-3, warmupSteps: 1, totalSteps: 100 },
      learningRateScale: (v) => model.learningRateScale!(v),
    });
    tf.tidy(() => adamW.applyGradients({ [gate.name]: tf.onesLike(gate), [knowledgeToken.name]: tf.onesLike(knowledgeToken) }));
    // First AdamW step: every parameter moves by lr x scale (m^/sqrt(v^) = 1).
    for (const v of gate.dataSync()) expect(v).toBeCloseTo(-1e-2, 6);
    (knowledgeToken.dataSync() as Float32Array).forEach((v, i) => expect(v - k0[i]!).toBeCloseTo(-1e-3, 6));
    adamW.dispose();
    model.dispose();
  });
});

describe('prior projection', () => {
  it('maps each prior to D = C_c with Dense + LayerNorm, whatever its width', () => {
    const { tokenWidth: _padded, ...o } = adapterOptions({ priorWidths: [16, 8], heads: 4 });
    const params = createKtAdapterParams(tf, o);
    expect(params.config.tokenWidth).toBe(12);
    expect(params.priorProjections.map((p) => p.linear.kernel.shape)).toEqual([
      [16, 12],
      [8, 12],
    ]);
    expect(params.priorProjections.map((p) => p.gamma.shape)).toEqual([[12], [12]]);
    const batch = gatherBatch(tf, train, [0, 1, 2]);
    expect(read(ktForwardTrain(tf, params, batch) as Tensor2D)).toHaveLength(3 * 3);
    disposeBatch(batch);
    disposeKtAdapterParams(params);
  });

  it('without projection needs D >= every prior width (zero padding, the paper form)', () => {
    expect(() => createKtAdapterParams(tf, adapterOptions({ priorProjection: false, tokenWidth: 12 }))).toThrow(/narrower than the widest/);
    const padded = createKtAdapterParams(tf, adapterOptions({ priorProjection: false }));
    expect(padded.priorProjections).toEqual([]);
    expect(padded.config.tokenWidth).toBe(16);
    disposeKtAdapterParams(padded);
  });
});

describe('token statistics and flipped views', () => {
  it('floors a nearly constant channel at a fraction of the median std; a dead channel keeps 1', () => {
    const count = 100;
    const values = new Float32Array(count * 4);
    for (let i = 0; i < count; i++) {
      values[i * 4] = i % 2; // std 0.5
      values[i * 4 + 1] = 2 * (i % 2); // std 1
      values[i * 4 + 2] = 1e-4 * (i % 2); // std 5e-5: below the floor
      values[i * 4 + 3] = 7; // dead
    }
    const s = computeTokenStats({ width: 4, values }, count);
    expect(s.std[0]).toBeCloseTo(0.5, 6);
    expect(s.std[1]).toBeCloseTo(1, 6);
    // Median of the live stds [5e-5, 0.5, 1] is 0.5.
    expect(s.std[2]).toBeCloseTo(relativeStdFloor * 0.5, 6);
    expect(s.std[3]).toBe(1);
  });

  it('keys a flipped image apart from the original, and leaves the original key as before', () => {
    const bytes = new Uint8Array([1, 2, 3, 4]);
    const legacy = createHash('sha1').update(bytes).update(JSON.stringify(null)).digest('hex');
    expect(imageKeyOf(bytes, {})).toBe(legacy);
    expect(imageKeyOf(bytes, { flip: true })).not.toBe(legacy);
    expect(imageKeyOf(bytes, { box: [1, 2, 3, 4], flip: true })).not.toBe(imageKeyOf(bytes, { flip: true }));
  });

  it('mirrors an image left-right', () => {
    const image = { width: 3, height: 1, data: Uint8Array.from([1, 1, 1, 2, 2, 2, 3, 4, 5]) };
    expect(Array.from(mirrorImage(image).data)).toEqual([3, 4, 5, 2, 2, 2, 1, 1, 1]);
    expect(Array.from(mirrorImage(mirrorImage(image)).data)).toEqual(Array.from(image.data));
  });

  it('trains on both views of a dataset with flipOffset and counts samples, not views', async () => {
    const doubled = {
      ...train,
      canonical: { ...train.canonical, values: new Float32Array([...train.canonical.values, ...train.canonical.values]) },
      priors: train.priors.map((p) => ({ ...p, values: new Float32Array([...p.values, ...p.values]) })),
      flipOffset: train.count,
    };
    const head = createBaselineHead(tf, { canonicalWidth: 12, canonicalStats: stats.canonical, decoder: { outputs: 1 } });
    const fit = await trainModel(head, doubled, validation, {
      task: { kind: 'regression', outputs: 1, loss: 'mse' },
      epochs: 1,
      batchSize: 64,
      log: () => {},
    });
    expect(fit.steps).toBe(Math.ceil(train.count / 64));
    // A flipped view's row has its original sample's target (the targets are stored once).
    expect(Array.from(gatherTargets(doubled, [train.count + 5, 5, train.count]))).toEqual([
      train.targets[5],
      train.targets[5],
      train.targets[0],
    ]);
    head.dispose();
  });
});

describe('fair ensemble and class order', () => {
  it('starts exactly at the shipped head (the prior branch is zero)', () => {
    const decoder = {
      pretrained: [
        { kernel: new Float32Array(12 * 3).fill(0.1), bias: Float32Array.of(1, 2, 3), inputs: 12, outputs: 3, activation: 'none' as const },
      ],
    };
    const ensemble = createEnsembleHead(tf, { stats, outputs: 3, head: { canonicalWidth: 12, decoder }, seed: 3 });
    const baseline = createBaselineHead(tf, { canonicalWidth: 12, canonicalStats: stats.canonical, decoder });
    const batch = gatherBatch(tf, train, [0, 1, 2, 3]);
    expect(maxAbsDiff(read(ensemble.predict(batch)), read(baseline.predict(batch)))).toBe(0);
    expect(ensemble.trainableVariables().length).toBe(2 + 4);
    disposeBatch(batch);
    ensemble.dispose();
    baseline.dispose();
  });

  it('reorders a model whose labels are in another order to the data classes', () => {
    const fer = ['angry', 'disgust', 'fear', 'happy', 'sad', 'surprise', 'neutral'];
    const faceApi = ['neutral', 'happy', 'sad', 'angry', 'fear', 'disgust', 'surprise'];
    expect(classOrder(faceApi, fer, 'expression')).toEqual([3, 5, 4, 1, 2, 6, 0]);
    expect(() => classOrder(['a', 'b'], ['a', 'c'], 'm')).toThrow(/no class "c"/);
  });
});

describe('statistics over seeds', () => {
  it('gives the t-interval (t 0.975 with n - 1 degrees of freedom) and paired differences', () => {
    const i = meanInterval([1, 2, 3]);
    expect(i.mean).toBe(2);
    expect(i.high - i.mean).toBeCloseTo((4.303 * 1) / Math.sqrt(3), 6);
    const d = pairedInterval([5.1, 5.3, 5.2], [5.0, 5.2, 5.1]);
    expect(d.mean).toBeCloseTo(0.1, 9);
    expect(excludesZero(d)).toBe(true); // the same shift in every seed
    expect(excludesZero(pairedInterval([1, 2, 3], [2, 1, 3]))).toBe(false);
    expect(meanInterval([4]).low).toBe(4);
  });

  it('summarises runs per variant with intervals against the control and the baseline', () => {
    const variant = (id: string, mae: number): VariantResult => ({
      id,
      label: id,
      kind: id === 'baseline' ? 'baseline' : 'kt',
      priors: [],
      ablation: false,
      metrics: { mae, cs5: 50 },
      trainableParams: 0,
      inferenceMacs: 0,
      inferenceNote: '',
    });
    const run = (seed: number, kt: number): ExperimentResults =>
      ({
        task: 'age',
        seed,
        columns: [
          { key: 'mae', label: 'MAE', higherIsBetter: false, digits: 3 },
          { key: 'cs5', label: 'CS@5', higherIsBetter: true, digits: 2 },
        ],
        variants: [variant('baseline', 5), variant('kt', kt), variant('kt-zero', kt + 0.2)],
      }) as unknown as ExperimentResults;
    const s = summariseSeeds([run(1, 4.5), run(2, 4.7), run(3, 4.6)]);
    const kt = s.rows.find((r) => r.id === 'kt')!;
    expect(kt.metrics['mae']!.mean).toBeCloseTo(4.6, 9);
    expect(kt.versus['kt-zero']!['mae']!.mean).toBeCloseTo(-0.2, 9);
    expect(excludesZero(kt.versus['kt-zero']!['mae']!)).toBe(true);
    expect(renderSeedSummary(s)).toContain('seeds 1, 2, 3');
  });

  it('reads --seeds as a count or a list, and names the exported variants', () => {
    expect(seedsFlag('3')).toEqual([1, 2, 3]);
    expect(seedsFlag('4,7')).toEqual([4, 7]);
    expect(() => seedsFlag('1,1')).toThrow(/twice/);
    expect(() => seedsFlag('x')).toThrow(/--seeds/);
    expect(exportNameOf('age', 'kt', ['kt', 'baseline', 'control'])).toBe('kt-age');
    expect(exportNameOf('age', 'baseline', ['kt', 'baseline', 'control'])).toBe('kt-age-baseline');
    expect(exportNameOf('emotion', 'kt-zero', ['control'])).toBe('kt-emotion-control');
    expect(exportNameOf('age', 'kt-zero', ['kt'])).toBeNull();
  });
});
